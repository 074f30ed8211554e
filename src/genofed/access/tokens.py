"""The node's embedded bearer-token issuer: Ed25519-signed JWTs (EdDSA) for its own users.

The node signs with one private key kept beside its other keys (``tokens.signing_key``, owner
only) and publishes the public half as a JWKS, so other services (the hub, a later portal) can
check the node's tokens without sharing a secret. A token names its subject, its roles, the node
that issued it (``iss``) and the node it is for (``aud``, the node's public URL): a token from one
node is useless at another even if both trusted the same issuer.

Errors say why a token is refused in one line and never repeat the token itself (it is a
credential, and error messages end up in logs).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from genofed.access import jwks as jwks_cache
from genofed.config import Settings, TrustedIssuer
from genofed.errors import GenofedError

ROLES = frozenset({"submitter", "requester", "dac_member", "operator", "curator"})
ALGORITHM = "EdDSA"
LEEWAY = timedelta(seconds=30)  # clock skew tolerated between the issuer and the node
REQUIRED_CLAIMS = ("iss", "sub", "aud", "iat", "exp", "jti")
MAX_SUBJECT = 255
_ISSUE_HELP = "ask the node operator for a new one ('genofed token issue')"


class InvalidToken(GenofedError):
    """A bearer token the node refuses; the message says why, without the token."""


class TokenRequestError(GenofedError):
    """A token that cannot be issued as asked (unknown role, bad user name, bad lifetime)."""


class SigningKeyError(GenofedError):
    """The node's token signing key file cannot be used."""


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for."""

    subject: str
    roles: frozenset[str]
    expires_at: datetime
    token_id: str  # the jti, for audit trails

    def has_role(self, role: str) -> bool:
        return role in self.roles


# -- the signing key ----------------------------------------------------------------------------


def ensure_signing_key(settings: Settings) -> Path:
    """Create the node's token signing key unless it exists; returns its path."""
    return ensure_ed25519_key(settings.tokens.signing_key)


def ensure_ed25519_key(path: Path) -> Path:
    """Create an Ed25519 private key file (PEM, owner only) at ``path`` unless one exists.

    The key is written to a private temporary file and hard-linked into place, so two processes
    starting at once on a new node agree on one key and no reader sees a half-written file.
    Shared by every key the node signs with (tokens, federation requests).
    """
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    path = settings.tokens.signing_key
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SigningKeyError(
            f"the token signing key {path} does not exist: run 'genofed node serve' once or "
            "'genofed node init', which create it"
        ) from None
    return _load_key(path, info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=4)
def _load_key(path: Path, mtime_ns: int, size: int) -> Ed25519PrivateKey:
    """The key at ``path``, read once per version of the file (a replaced key is reloaded)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as error:
        raise SigningKeyError(
            f"the token signing key {path} cannot be read ({type(error).__name__}): it must be an "
            "unencrypted Ed25519 private key in PEM; move it away and restart the node to create "
            "a new one (tokens signed by the old key then stop working)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"the token signing key {path} is a {type(key).__name__}, not an Ed25519 key: move it "
            "away and restart the node to create a new one"
        )
    return key


def public_jwk(settings: Settings) -> dict[str, str]:
    """The public signing key as a JWK, with its RFC 7638 thumbprint as ``kid``."""
    raw = signing_key(settings).public_key().public_bytes_raw()
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return {
        **jwk,
        "kid": _b64url(hashlib.sha256(canonical).digest()),
        "alg": ALGORITHM,
        "use": "sig",
    }


def jwks(settings: Settings) -> dict[str, list[dict[str, str]]]:
    """The JSON Web Key Set other services use to check this node's tokens."""
    return {"keys": [public_jwk(settings)]}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- issuing ------------------------------------------------------------------------------------


def issue_token(
    settings: Settings,
    subject: str,
    roles: list[str] | tuple[str, ...] | frozenset[str],
    lifetime: timedelta | None = None,
) -> str:
    """A signed token for ``subject`` with ``roles``, valid for ``lifetime`` (default: settings)."""
    check_subject(subject)
    chosen = check_roles(roles)
    lifetime = (
        lifetime if lifetime is not None else timedelta(seconds=settings.tokens.lifetime_seconds)
    )
    if lifetime <= timedelta(0):
        raise TokenRequestError(f"a token's lifetime must be positive, not {lifetime}")
    now = datetime.now(UTC)
    claims = {
        "iss": settings.tokens.issuer,
        "sub": subject,
        "aud": settings.http.public_url,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
        "roles": sorted(chosen),
    }
    kid = public_jwk(settings)["kid"]
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM, headers={"kid": kid})


def check_subject(subject: str) -> None:
    # FEGA messages need at least two characters for the user; control characters would let a
    # user name forge lines in logs.
    if not 2 <= len(subject) <= MAX_SUBJECT or subject != subject.strip():
        raise TokenRequestError(
            f"user name {_shown(subject)} must be 2 to {MAX_SUBJECT} characters without leading "
            "or trailing spaces"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in subject):
        raise TokenRequestError(f"user name {_shown(subject)} contains a control character")


def check_roles(roles: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        raise TokenRequestError(
            f"unknown role(s) {', '.join(map(_shown, unknown))}: "
            f"choose from {', '.join(sorted(ROLES))}"
        )
    if not roles:
        raise TokenRequestError(f"give at least one role: {', '.join(sorted(ROLES))}")
    return frozenset(roles)


# -- verifying ----------------------------------------------------------------------------------


def verify_token(settings: Settings, token: str) -> Identity:
    """The identity ``token`` proves, or :class:`InvalidToken` saying precisely why not.

    Tokens of the node's own issuer are checked against its signing key; tokens of an issuer in
    ``tokens.trusted_issuers`` (an OIDC provider) against that issuer's JWKS.
    """
    issuer = _claimed_issuer(token)
    if issuer is not None and issuer != settings.tokens.issuer:
        trusted = trusted_issuer(settings, issuer, "tokens")
        if trusted is None:
            raise InvalidToken(_untrusted(issuer, settings))
        return _verify_external(settings, token, trusted)
    _check_algorithm(token)
    public_key = signing_key(settings).public_key()
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            audience=settings.http.public_url,
            issuer=settings.tokens.issuer,
            leeway=LEEWAY,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(_reason(error, token, settings)) from None
    return _identity(claims)


def trusted_issuer(settings: Settings, issuer: object, use: str) -> TrustedIssuer | None:
    """The configured issuer named ``issuer`` if it is trusted for ``use`` (tokens or visas)."""
    for trusted in settings.tokens.trusted_issuers:
        if trusted.issuer == issuer and use in trusted.accept:
            return trusted
    return None


def _claimed_issuer(token: str) -> object:
    try:
        return _unverified(token).get("iss")
    except jwt.PyJWTError:
        return None  # malformed: the node's own checks say so precisely


def _verify_external(settings: Settings, token: str, trusted: TrustedIssuer) -> Identity:
    """A token from an OIDC provider: its signature, expiry, audience; roles from its claims."""
    claims = verify_signed(token, trusted, audience=trusted.audience or None)
    roles = claims.get(trusted.roles_claim) if trusted.roles_claim else None
    if not isinstance(roles, list):
        roles = trusted.default_roles
    claims["roles"] = sorted(ROLES.intersection(role for role in roles if isinstance(role, str)))
    claims.setdefault("jti", "")
    if not isinstance(claims["sub"], str):
        raise InvalidToken(f"the token from {trusted.issuer!r} has a subject that is not text")
    if trusted.subject_suffix:  # another node's users: "alice" there is not "alice" here
        claims["sub"] = f"{claims['sub']}{trusted.subject_suffix}"
    try:  # the provider's subject goes into logs and the audit trail: same rules as our own
        check_subject(claims["sub"])
    except TokenRequestError as error:
        raise InvalidToken(f"the token from {trusted.issuer!r} is refused: {error}") from None
    return _identity(claims)


def verify_signed(
    token: str,
    trusted: TrustedIssuer,
    *,
    audience: str | None = None,
    require: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The claims of ``token`` signed by ``trusted`` (whose keys come from its JWKS)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("the token is malformed (not a JWT of three base64url parts)") from None
    algorithm = header.get("alg")
    if algorithm not in jwks_cache.ALGORITHMS:
        raise InvalidToken(
            f"the token is signed with {_shown(algorithm)}, which this node does not accept "
            f"from {trusted.issuer!r} (only asymmetric signatures)"
        )
    try:
        key = jwks_cache.KEYS.key(trusted, header.get("kid"))
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[str(algorithm)],
            audience=audience,
            issuer=trusted.issuer,
            leeway=LEEWAY,
            options={"require": ["iss", "sub", "exp", *require], "verify_aud": bool(audience)},
        )
    except jwks_cache.KeyUnavailable as error:
        raise InvalidToken(str(error)) from None
    except jwt.ExpiredSignatureError:
        expired = datetime.fromtimestamp(_unverified(token).get("exp", 0), UTC)
        raise InvalidToken(
            f"the token from {trusted.issuer!r} expired at {expired:%Y-%m-%d %H:%M:%S} UTC: "
            "get a new one"
        ) from None
    except jwt.InvalidSignatureError:
        raise InvalidToken(
            f"the token's signature does not verify with the keys of {trusted.issuer!r}: it was "
            "forged or altered"
        ) from None
    except jwt.PyJWTError as error:
        raise InvalidToken(f"the token from {trusted.issuer!r} is refused: {error}") from None
    return claims


def _check_algorithm(token: str) -> None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken(
            "the bearer token is malformed (not a JWT of three base64url parts): send it exactly "
            f"as issued, or {_ISSUE_HELP}"
        ) from None
    algorithm = header.get("alg")
    if algorithm != ALGORITHM:
        raise InvalidToken(
            f"the token is signed with {_shown(algorithm)}; this node accepts only {ALGORITHM} "
            f"tokens it issued: {_ISSUE_HELP}"
        )


def _reason(error: jwt.PyJWTError, token: str, settings: Settings) -> str:
    """One line saying why ``error`` refused the token. Claims are read back only for errors
    PyJWT raises after the signature verified, so they are the issuer's own words."""
    if isinstance(error, jwt.ExpiredSignatureError):
        expired = datetime.fromtimestamp(_unverified(token).get("exp", 0), UTC)
        return f"the token expired at {expired:%Y-%m-%d %H:%M:%S} UTC: {_ISSUE_HELP}"
    if isinstance(error, jwt.InvalidSignatureError):
        return (
            "the token's signature does not verify with this node's signing key: it was not "
            f"issued by this node or it was altered; {_ISSUE_HELP}"
        )
    if isinstance(error, jwt.InvalidIssuerError):
        return _untrusted(_unverified(token).get("iss"), settings)
    if isinstance(error, jwt.InvalidAudienceError):
        audience = _shown(_unverified(token).get("aud"))
        return (
            f"the token is meant for {audience}, not for this node "
            f"({settings.http.public_url!r}): use a token issued for this node"
        )
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the token lacks the {error.claim!r} claim: {_ISSUE_HELP}"
    if isinstance(error, jwt.ImmatureSignatureError | jwt.InvalidIssuedAtError):
        return (
            "the token's issue time is in the future: the clocks of the issuer and this node "
            "disagree; synchronise them (NTP)"
        )
    return f"the token is malformed ({error}): send it exactly as issued, or {_ISSUE_HELP}"


def _untrusted(issuer: object, settings: Settings) -> str:
    return (
        f"the token was issued by {_shown(issuer)}, which this node does not trust (its own "
        f"issuer is {settings.tokens.issuer!r}; operators trust others in "
        f"[[tokens.trusted_issuers]]): {_ISSUE_HELP}"
    )


def _unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _identity(claims: dict[str, Any]) -> Identity:
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidToken(f"the token's 'roles' claim is not a list of names: {_ISSUE_HELP}")
    return Identity(
        subject=claims["sub"],
        roles=frozenset(roles),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        token_id=str(claims["jti"]),
    )


def _shown(value: object) -> str:
    """A claim or name for a message: quoted, and cut short so it cannot flood a log line."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...{text[-10:]}"
