"""Identity routes of the node API: password login for embedded users, and a user's visas.

- ``POST /auth/token``: user name and password of an embedded user (``genofed user add``) for a
  bearer token of the node's issuer (the portal's login form and ``genofed login`` use it).
- ``GET /permissions/{user}``: the user's GA4GH visas, one signed ControlledAccessGrants visa per
  valid grant, in the manner of REMS ``/api/permissions/{user}``. Users read their own; operators
  anyone's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from genofed.access import audit, users, visas
from genofed.access.http import bearer_identity
from genofed.access.tokens import Identity, issue_token
from genofed.config import Settings
from genofed.db import for_writing, session_scope

router = APIRouter(tags=["identity"])
OPERATOR = "operator"


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=users.MAX_PASSWORD)


@router.post("/auth/token")
async def login(request: Request, credentials: Login) -> dict[str, Any]:
    """A bearer token for an embedded user (OAuth 2 token response shape)."""
    settings: Settings = request.app.state.settings
    engine = request.app.state.node.engine

    def check() -> list[str]:
        with session_scope(engine) as session:
            user = users.authenticate(session, credentials.username, credentials.password)
            return list(user.roles)

    try:
        roles = await anyio.to_thread.run_sync(check)
    except users.LoginFailed as error:
        await anyio.to_thread.run_sync(
            lambda: audit.append(
                engine, actor=credentials.username, action="login", outcome="denied"
            )
        )
        raise HTTPException(401, str(error), headers={"WWW-Authenticate": "Bearer"}) from None
    lifetime = timedelta(seconds=settings.tokens.lifetime_seconds)
    token = issue_token(settings, credentials.username, roles, lifetime)
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": settings.tokens.lifetime_seconds,
        "roles": roles,
    }


@router.get("/permissions/{user}")
async def permissions(
    request: Request, user: str, who: Identity = Depends(bearer_identity)
) -> dict[str, list[str]]:
    """The user's visas (REMS style): ``{"ga4gh_visa_v1": ["<JWT>", ...]}``."""
    if who.subject != user and not who.has_role(OPERATOR):
        raise HTTPException(403, "you may read only your own visas (/permissions/<your user name>)")
    settings: Settings = request.app.state.settings
    engine = request.app.state.node.engine

    def issue() -> list[str]:
        with session_scope(for_writing(engine)) as session:
            return visas.issue_for_subject(session, settings, user, requested_by=who.subject)

    return {"ga4gh_visa_v1": await anyio.to_thread.run_sync(issue)}
