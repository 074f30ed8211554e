"""Signing in to the portal, the session cookie, role checks and CSRF protection.

The session is the bearer token itself: after the password form (the same check as
``POST /auth/token``), or after pasting a token of a trusted OIDC issuer, the portal keeps the
JWT in a cookie that scripts cannot read (HttpOnly), that no other site's request carries
(SameSite=Strict), sent over HTTPS only when the node's public URL is HTTPS, and only to the
portal's paths. Every page verifies it with :func:`~genofed.access.tokens.verify_token`, exactly
as the API verifies a bearer header, and checks the same roles as the matching API route: the
portal never shows what the API would refuse.

CSRF: every form that changes something carries a token derived from the session
(HMAC of the session token under a key derived from the node's signing key). A forged form from
another site can neither read it nor guess it; it also changes with every sign-in, and works
across restarts and several server processes without shared state. The sign-in form, which has
no session yet, uses a random double-submit cookie instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi import Depends, Request, Response
from sqlalchemy import Engine

from genofed.access import audit, users
from genofed.access.tokens import Identity, InvalidToken, issue_token, signing_key, verify_token
from genofed.config import Settings
from genofed.db import session_scope
from genofed.web import render
from genofed.web.place import on_hub
from genofed.web.routing import PageRefused, SignInRequired, forbidden

LOGIN_COOKIE = "genofed_portal_login"
CSRF_FIELD = "csrf"
_SAFE_NEXT = re.compile(r"/portal(/[A-Za-z0-9._~/-]*)?")


@dataclass(frozen=True)
class Visitor:
    """A signed-in user: who the session token proves, and the CSRF token for their forms."""

    identity: Identity
    csrf: str

    @property
    def subject(self) -> str:
        return self.identity.subject


# -- the session --------------------------------------------------------------------------------


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def engine_of(request: Request) -> Engine:
    """The database of the node, or of the hub when the portal runs there."""
    holder = request.app.state.hub if on_hub(request) else request.app.state.node
    engine: Engine = holder.engine
    return engine


def csrf_for(settings: Settings, token: str) -> str:
    """The CSRF token of the session ``token``: only the node can compute it."""
    raw = signing_key(settings).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    key = hashlib.sha256(b"genofed-portal-csrf\0" + raw).digest()
    digest = hmac.new(key, hashlib.sha256(token.encode()).digest(), "sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_in(request: Request) -> Visitor:
    """The visitor the session cookie proves, or :class:`SignInRequired` saying why not.

    A plain function, so that FastAPI runs it in a worker thread: checking a token of an
    external issuer may fetch its keys.
    """
    token = request.cookies.get(render.SESSION_COOKIE)
    if not token:
        raise SignInRequired()
    settings = settings_of(request)
    try:
        identity = verify_token(settings, token)
    except InvalidToken as error:
        raise SignInRequired(f"Your session ended: {error}. Sign in again.") from None
    visitor = Visitor(identity, csrf_for(settings, token))
    request.state.visitor = visitor  # for error pages, which keep the menu
    return visitor


def visiting(request: Request) -> Visitor | None:
    """On the hub, whose pages show public data only: the signed-in visitor, or ``None`` for an
    anonymous one. On a node: :func:`signed_in` (every node page needs a session)."""
    if on_hub(request) and not request.cookies.get(render.SESSION_COOKIE):
        return None
    return signed_in(request)


def viewing(*roles: str, doing: str) -> Callable[[Visitor], Visitor]:
    """A dependency admitting signed-in visitors holding any of ``roles`` (no roles: anyone
    signed in), like :func:`genofed.access.http.require_role` does for the API."""

    def check(visitor: Visitor = Depends(signed_in)) -> Visitor:
        if roles and not any(visitor.identity.has_role(role) for role in roles):
            held = ", ".join(sorted(visitor.identity.roles)) or "none"
            raise forbidden(
                f"{doing} needs the {' or '.join(roles)} role; you hold: {held}. Ask the node "
                "operator if you need it."
            )
        return visitor

    return check


def acting(*roles: str, doing: str) -> Callable[..., Coroutine[Any, Any, Visitor]]:
    """:func:`viewing` for a form that changes something: its CSRF token must match too."""
    allowed = viewing(*roles, doing=doing)

    async def check(request: Request, visitor: Visitor = Depends(allowed)) -> Visitor:
        form = await request.form()
        given = form.get(CSRF_FIELD)
        if not isinstance(given, str) or not hmac.compare_digest(given, visitor.csrf):
            raise csrf_refused()
        return visitor

    return check


def csrf_refused() -> PageRefused:
    return forbidden(
        "This form was not sent from a page of this portal (its security token is missing or "
        "out of date). Reload the page and send it again."
    )


def start_session(response: Response, request: Request, token: str, identity: Identity) -> None:
    """Keep ``token`` in the session cookie until it expires."""
    seconds = int((identity.expires_at - datetime.now(UTC)).total_seconds())
    response.set_cookie(
        render.SESSION_COOKIE,
        token,
        max_age=max(seconds, 1),
        path=render.PREFIX,
        httponly=True,
        samesite="strict",
        secure=render.secure_cookies(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=render.PREFIX)


def end_session(response: Response) -> None:
    response.delete_cookie(render.SESSION_COOKIE, path=render.PREFIX)


# -- signing in ---------------------------------------------------------------------------------


def login_nonce(request: Request) -> str:
    """The sign-in form's CSRF value: the one in the visitor's cookie, or a new one."""
    current = request.cookies.get(LOGIN_COOKIE)
    return current if current and len(current) == 43 else secrets.token_urlsafe(32)


def keep_login_nonce(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path=render.PREFIX,
        httponly=True,
        samesite="strict",
        secure=render.secure_cookies(request),
    )


def check_login_nonce(request: Request, given: str) -> None:
    """Double submit: the form's value must be the cookie's, which only this site can set."""
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), given.encode()):
        raise csrf_refused()


def password_token(request: Request, username: str, password: str) -> str:
    """A token for an embedded user, checked as ``POST /auth/token`` checks it (and a failure
    audited the same way); :class:`~genofed.access.users.LoginFailed` otherwise."""
    settings, engine = settings_of(request), engine_of(request)
    try:
        with session_scope(engine) as session:
            roles = list(users.authenticate(session, username, password).roles)
    except users.LoginFailed:
        audit.append(engine, actor=username, action="login", outcome="denied")
        raise
    lifetime = timedelta(seconds=settings.tokens.lifetime_seconds)
    return issue_token(settings, username, roles, lifetime)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a portal path only, never another site."""
    if value and _SAFE_NEXT.fullmatch(value) and "//" not in value:
        return value.removeprefix(render.PREFIX) or "/"
    return "/"
