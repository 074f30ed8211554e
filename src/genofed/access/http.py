"""Bearer tokens on HTTP routes: the FastAPI dependencies every API of the node shares.

Errors are ``HTTPException``\\ s with the RFC 6750 ``WWW-Authenticate`` header, so a router works
the same in the node app and on its own in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, HTTPException, Request

from genofed.access.tokens import Identity, InvalidToken, verify_token
from genofed.config import Settings


async def bearer_identity(request: Request) -> Identity:
    """The identity the request's bearer token proves (401 without a valid one)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401,
            "no bearer token: send the header 'Authorization: Bearer <token>' with a token from "
            "the node operator ('genofed token issue')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    settings: Settings = request.app.state.settings
    try:
        return verify_token(settings, token.strip())
    except InvalidToken as error:
        raise HTTPException(
            401, str(error), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


def require_role(*roles: str, doing: str) -> Callable[[Identity], Coroutine[Any, Any, Identity]]:
    """A dependency admitting callers that hold any of ``roles`` (403 for the others)."""

    async def check(identity: Identity = Depends(bearer_identity)) -> Identity:
        if not any(identity.has_role(role) for role in roles):
            held = ", ".join(sorted(identity.roles)) or "none"
            raise HTTPException(
                403,
                f"{doing} needs the {' or '.join(roles)} role; your token grants: {held}; ask "
                f"the node operator for a token with --role {roles[0]}",
            )
        return identity

    return check
