"""Signing in and out: the node's own users by password, anyone with a token of a trusted issuer
(pasted), and the trusted OIDC providers that have a client id by redirect (:mod:`.oidc`).

On the hub, which has no users of its own, only the providers and pasted tokens are offered.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from genofed.access import users
from genofed.access.tokens import Identity, InvalidToken, verify_token
from genofed.web import oidc, render
from genofed.web.place import on_hub
from genofed.web.routing import PortalRoute
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
    start_session,
)

router = APIRouter(route_class=PortalRoute)
FLOW_COOKIE = "genofed_portal_oidc"


@router.get("/login")
def login_page(
    request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The sign-in page: a password for the node's own users, the trusted providers' buttons,
    or a pasted token of a trusted issuer."""
    return login_form(request, next_path)


def login_form(
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
            "passwords": not on_hub(request),
            "providers": [issuer.issuer for issuer in oidc.redirect_providers(settings)],
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
    if on_hub(request):
        return login_form(request, next_path, "The hub has no accounts: paste a token instead.")
    if not username or not password:
        return login_form(request, next_path, "Give your user name and your password.", username)
    try:
        issued = await anyio.to_thread.run_sync(password_token, request, username, password)
    except users.LoginFailed as error:
        return login_form(request, next_path, str(error), username)
    return await _token_login(request, issued, next_path)


async def _token_login(request: Request, token: str, next_path: str) -> Response:
    settings = settings_of(request)
    try:
        identity = await anyio.to_thread.run_sync(verify_token, settings, token)
    except InvalidToken as error:
        return login_form(request, next_path, f"This token cannot be used: {error}")
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


# -- by redirect to an OIDC provider ------------------------------------------------------------


@router.get("/login/oidc")
async def oidc_start(
    request: Request,
    issuer: Annotated[str, Query(max_length=2048)],
    next_path: Annotated[str, Query(alias="next")] = "",
) -> Response:
    """Off to the provider's sign-in page, with a new state, nonce and PKCE challenge. A link,
    not a form: the pages' CSP lets forms post to this site only, redirects included; and only
    the way back needs protecting (by the state)."""
    settings = settings_of(request)
    flow = oidc.Flow.start(issuer, safe_next(next_path))
    try:
        trusted = oidc.provider_named(settings, issuer)
        provider = await anyio.to_thread.run_sync(oidc.discover, trusted.issuer)
    except oidc.SignInFailed as error:
        return login_form(request, next_path, str(error))
    callback = oidc.redirect_uri(settings, render.PREFIX)
    response = RedirectResponse(
        oidc.authorization_url(provider, trusted, flow, callback),
        status_code=303,
        headers=render.SECURITY_HEADERS,
    )
    response.set_cookie(
        FLOW_COOKIE,
        oidc.seal(settings, flow),
        max_age=oidc.FLOW_SECONDS,
        path=render.PREFIX + "/login",
        httponly=True,
        samesite="lax",  # the provider sends the browser back from another site
        secure=render.secure_cookies(request),
    )
    return response


@router.get(oidc.CALLBACK_PATH)
async def oidc_callback(
    request: Request,
    state: Annotated[str, Query(max_length=512)] = "",
    code: Annotated[str, Query(max_length=4096)] = "",
    error: Annotated[str, Query(max_length=256)] = "",
    error_description: Annotated[str, Query(max_length=1024)] = "",
) -> Response:
    """Back from the provider: the state checked, the code exchanged, the session started."""
    settings = settings_of(request)
    try:
        flow = oidc.unseal(settings, request.cookies.get(FLOW_COOKIE))
        if not state or state != flow.state:
            raise oidc.SignInFailed("this answer belongs to another sign-in (state): start again")
        if error:
            raise oidc.SignInFailed(f"the sign-in service refused: {error_description or error}")
        trusted = oidc.provider_named(settings, flow.issuer)
        callback = oidc.redirect_uri(settings, render.PREFIX)
        token, identity = await anyio.to_thread.run_sync(
            oidc.finish, settings, trusted, flow, code, callback
        )
    except oidc.SignInFailed as failed:
        response = login_form(request, None, str(failed))
    else:
        response = _signed_in(request, flow.next_path, identity)
        start_session(response, request, token, identity)
    response.delete_cookie(FLOW_COOKIE, path=render.PREFIX + "/login")
    return response


def _signed_in(request: Request, next_path: str, identity: Identity) -> Response:
    """A page that moves on by itself: after a redirect chain that began at the provider's site
    the browser would not send the (SameSite=Strict) session cookie; from this page it does."""
    return render.page(
        request,
        "signed_in.html",
        identity=None,
        title="Signed in",
        context={"target": render.PREFIX + next_path, "subject": identity.subject},
    )
