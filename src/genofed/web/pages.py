"""The portal's router: sign-in, sign-out, the home page, static files, and every page module.

Mount it on a node app with ``app.include_router(router)``: its paths start with ``/portal``,
it serves its own stylesheet and script (no CDN: the portal works offline), and it reads the
node's ``app.state.settings``, ``app.state.node`` (engine, stores) and ``app.state.queue``.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from genofed.access import users
from genofed.access.tokens import InvalidToken, verify_token
from genofed.web import (
    access_pages,
    beacon_pages,
    catalogue_pages,
    dac_pages,
    operator_pages,
    render,
    submitter_pages,
)
from genofed.web.routing import PortalRoute, missing
from genofed.web.session import (
    Visitor,
    acting,
    check_login_nonce,
    end_session,
    keep_login_nonce,
    login_nonce,
    password_token,
    safe_next,
    settings_of,
    signed_in,
    start_session,
)

STATIC = render.TEMPLATES.parent / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

router = APIRouter(prefix=render.PREFIX, route_class=PortalRoute, include_in_schema=False)


# -- static files -------------------------------------------------------------------------------


@router.get("/static/{name}")
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


# -- signing in and out -------------------------------------------------------------------------


@router.get("/login")
def login_page(
    request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The sign-in page: a password for the node's own users, or a token of a trusted issuer."""
    return _login_form(request, next_path)


def _login_form(
    request: Request, next_path: str | None, error: str | None = None, username: str = ""
) -> Response:
    nonce = login_nonce(request)
    settings = settings_of(request)
    response = render.page(
        request,
        "login.html",
        identity=None,
        title="Sign in",
        status=401 if error else 200,
        context={
            "nonce": nonce,
            "next": render.PREFIX + safe_next(next_path),
            "error": error,
            "username": username,
            "external": [issuer.issuer for issuer in settings.tokens.trusted_issuers],
        },
    )
    keep_login_nonce(response, request, nonce)
    return response


@router.post("/login")
async def login(
    request: Request,
    nonce: Annotated[str, Form()],
    username: Annotated[str, Form(max_length=255)] = "",
    password: Annotated[str, Form(max_length=users.MAX_PASSWORD)] = "",
    token: Annotated[str, Form(max_length=16_384)] = "",
    next_path: Annotated[str, Form(alias="next")] = "",
) -> Response:
    """Sign in with a password (as ``POST /auth/token``), or with a pasted bearer token."""
    check_login_nonce(request, nonce)
    if token.strip():
        return await _token_login(request, token.strip(), next_path)
    if not username or not password:
        return _login_form(request, next_path, "Give your user name and your password.", username)
    try:
        issued = await anyio.to_thread.run_sync(password_token, request, username, password)
    except users.LoginFailed as error:
        return _login_form(request, next_path, str(error), username)
    return await _token_login(request, issued, next_path)


async def _token_login(request: Request, token: str, next_path: str) -> Response:
    settings = settings_of(request)
    try:
        identity = await anyio.to_thread.run_sync(verify_token, settings, token)
    except InvalidToken as error:
        return _login_form(request, next_path, f"This token cannot be used: {error}")
    response = render.redirect(request, safe_next(next_path))
    start_session(response, request, token, identity)
    return response


@router.post("/logout")
def logout(
    request: Request, visitor: Annotated[Visitor, Depends(acting(doing="signing out"))]
) -> Response:
    """End the session here: the cookie is dropped (the token itself lapses at its expiry)."""
    response = render.redirect(request, "/login", render.Flash("ok", "You are signed out."))
    end_session(response)
    return response


# -- home ---------------------------------------------------------------------------------------


@router.get("")
def no_slash() -> Response:
    return RedirectResponse(render.PREFIX + "/", status_code=307)


@router.get("/")
def home(request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> Response:
    """What the visitor can do here: one card per page their roles open."""
    return render.page(
        request,
        "home.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Home",
    )


router.include_router(catalogue_pages.router)
router.include_router(beacon_pages.router)
router.include_router(access_pages.router)
router.include_router(dac_pages.router)
router.include_router(submitter_pages.router)
router.include_router(operator_pages.router)
