"""How the portal's routes answer when a page cannot be shown: as pages, not JSON.

The portal is mounted on the node app, whose exception handlers answer JSON for the API. The
portal's own routes use :class:`PortalRoute`, which turns the portal's refusals into what a
browser needs: a redirect to the sign-in page, or an error page with the menu still there.
Doing it in the route class rather than in app-wide handlers keeps the portal a router that the
node (or the hub) includes with one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from genofed.errors import GenofedError
from genofed.web import render

log = logging.getLogger(__name__)


class SignInRequired(Exception):
    """No valid session: the visitor must sign in (again); ``reason`` says why, for the page."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "sign in to continue")
        self.reason = reason


class PageRefused(Exception):
    """The page cannot be shown to this visitor: ``status`` and a message saying why."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def forbidden(message: str) -> PageRefused:
    return PageRefused(403, "Not allowed", message)


def missing(message: str) -> PageRefused:
    return PageRefused(404, "Not found", message)


class PortalRoute(APIRoute):
    """An APIRoute whose refusals become a sign-in redirect or an HTML error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as refused:
                return sign_in_redirect(request, refused.reason)
            except PageRefused as refused:
                return error_page(request, refused.status, refused.title, refused.message)
            except RequestValidationError as error:
                return error_page(request, 422, "Incomplete form", _form_problems(error))
            except GenofedError as error:  # the database, storage or queue: the operator's
                log.error("%s %s failed: %s", request.method, request.url.path, error)
                return error_page(request, 503, "Not available now", _unavailable(error))

        return guarded


def sign_in_redirect(request: Request, reason: str | None) -> Response:
    """To the sign-in page, coming back here afterwards (GET pages only: a form is not
    replayed)."""
    back = request.url.path if request.method == "GET" else render.PREFIX + "/"
    target = f"/login?next={quote(back, safe='/')}"
    flash = render.Flash("error", reason) if reason else None
    response = render.redirect(request, target, flash)
    if reason:  # the session cookie is expired or was tampered with: drop it
        response.delete_cookie(render.SESSION_COOKIE, path=render.PREFIX)
    return response


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    visitor = getattr(request.state, "visitor", None)
    return render.page(
        request,
        "error.html",
        identity=visitor.identity if visitor is not None else None,
        csrf=visitor.csrf if visitor is not None else "",
        title=title,
        status=status,
        context={"message": message},
    )


def _form_problems(error: RequestValidationError) -> str:
    """What the form lacked, in one sentence: 'title: Field required; ...'."""
    said = []
    for problem in error.errors():
        where = [str(part) for part in problem.get("loc", ()) if part not in ("body", "query")]
        said.append(f"{'.'.join(where) or 'form'}: {problem.get('msg', 'invalid')}")
    return "The form is incomplete or invalid: " + "; ".join(said) + ". Go back and fix it."


def _unavailable(error: GenofedError) -> str:
    return (
        f"The node cannot show this page now ({type(error).__name__}). Try again later; the "
        "node's operator finds the cause in its log."
    )
