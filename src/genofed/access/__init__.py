"""Who is calling: the node's bearer tokens (an embedded issuer today, external issuers later)."""

from genofed.access.tokens import (
    ROLES,
    Identity,
    InvalidToken,
    ensure_signing_key,
    issue_token,
    jwks,
    verify_token,
)

__all__ = [
    "ROLES",
    "Identity",
    "InvalidToken",
    "ensure_signing_key",
    "issue_token",
    "jwks",
    "verify_token",
]
