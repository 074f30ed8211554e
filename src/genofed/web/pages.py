"""The portal's routers: static files, the home page, signing in, and every page module.

Mount :data:`router` on a node app (``app.include_router(router)``), :data:`hub_router` on the
hub's: their paths start with ``/portal``, they serve their own stylesheet and scripts (no CDN:
the portal works offline), and they read the app's ``app.state.settings`` (a node's pages also
``app.state.node``, its engine and stores, and ``app.state.queue``). The hub serves the pages of
public data only: the catalogue, the beacon network and the mutation trends.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from genofed.web import (
    access_pages,
    beacon_pages,
    catalogue_pages,
    dac_pages,
    login_pages,
    operator_pages,
    pathogen_chart_pages,
    pathogen_pages,
    pathogen_records_pages,
    render,
    submitter_pages,
)
from genofed.web.routing import PortalRoute, missing
from genofed.web.session import Visitor, visiting

STATIC = render.TEMPLATES.parent / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _installed(package: str, *parts: str) -> Path | None:
    """A file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent.joinpath(*parts)


# JavaScript libraries installed from a package registry, served as they were installed
VENDORED = {"plotly.min.js": _installed("plotly", "package_data", "plotly.min.js")}

_common = APIRouter(route_class=PortalRoute)


@_common.get("/static/{name}")
def static(name: str) -> Response:
    """The portal's own CSS and JavaScript: only the files shipped in the package."""
    path = STATIC / name
    if path.suffix not in STATIC_TYPES or path.parent != STATIC or not path.is_file():
        raise missing(f"no static file {name!r}")
    return FileResponse(
        path,
        media_type=STATIC_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@_common.get("/static/vendor/{name}")
def vendored(name: str) -> Response:
    """A library the charts use (plotly.js from the installed ``plotly`` package)."""
    path = VENDORED.get(name)
    if path is None or not path.is_file():
        raise missing(f"no library {name!r}: install the project's dependencies (plotly)")
    return FileResponse(
        path,
        media_type=STATIC_TYPES[".js"],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@_common.get("")
def no_slash() -> Response:
    return RedirectResponse(render.PREFIX + "/", status_code=307)


@_common.get("/")
def home(request: Request, visitor: Annotated[Visitor | None, Depends(visiting)]) -> Response:
    """What the visitor can do here: one card per page their roles open (on the hub, its
    public pages)."""
    return render.page(
        request,
        "home.html",
        identity=visitor.identity if visitor else None,
        csrf=visitor.csrf if visitor else "",
        title="Home",
    )


def _portal(*pages: APIRouter) -> APIRouter:
    portal = APIRouter(route_class=PortalRoute)
    for included in (_common, login_pages.router, *pages):
        portal.include_router(included, prefix=render.PREFIX, include_in_schema=False)
    return portal


router = _portal(
    catalogue_pages.router,
    beacon_pages.router,
    access_pages.router,
    dac_pages.router,
    submitter_pages.router,
    operator_pages.router,
    pathogen_pages.router,
    pathogen_records_pages.router,
    pathogen_chart_pages.router,
)
hub_router = _portal(catalogue_pages.router, beacon_pages.router, pathogen_chart_pages.router)
