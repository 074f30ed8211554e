"""GA4GH Passport v1 visas of type ControlledAccessGrants: issued from grants, and verified.

A visa is a JWT signed by the node's issuer key (published at ``/.well-known/jwks.json``)::

    {"iss": <node issuer>, "sub": <user>, "iat": .., "exp": .., "jti": <grant id>,
     "ga4gh_visa_v1": {"type": "ControlledAccessGrants", "asserted": <grant time>,
                       "value": "<node URL>/datasets/<accession>",
                       "source": "<node URL>/dacs/<DAC accession>", "by": "dac"}}

Its ``exp`` is the earlier of the grant's expiry and ``tokens.visa_lifetime_seconds`` from now, so
a leaked visa dies soon; its ``jti`` is the grant, so revoking the grant revokes every visa of it at
this node at once. Visas of other issuers are accepted only from issuers the operator allow-listed
for visas (``[[tokens.trusted_issuers]]`` with ``accept = ["visas"]``), checked against their JWKS.
A visa with ``conditions`` counts only when the other visas sent with it satisfy them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.access import audit
from genofed.access.tokens import (
    ALGORITHM,
    LEEWAY,
    InvalidToken,
    public_jwk,
    signing_key,
    trusted_issuer,
    verify_signed,
)
from genofed.config import Settings
from genofed.db import AccessRequestItem, Grant
from genofed.errors import GenofedError

VISA_TYPE = "ControlledAccessGrants"
VISA_CLAIM = "ga4gh_visa_v1"
MAX_VISAS = 100  # per request: a passport is small; thousands of visas would be an attack
MAX_VISA_BYTES = 16 * 1024


class InvalidVisa(GenofedError):
    """A visa the node refuses; the message says why, without the visa itself."""


@dataclass(frozen=True)
class Visa:
    """What a verified visa grants: ``subject`` may read ``dataset`` until ``expires_at``."""

    issuer: str
    subject: str
    dataset: str  # the accession
    asserted: datetime
    expires_at: datetime
    source: str
    by: str
    grant_id: str | None = None  # visas of this node: the grant they stand for


@dataclass
class Permissions:
    """The datasets a caller may read, with the visa behind each, and the visas refused."""

    subject: str
    datasets: dict[str, Visa] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    def allows(self, dataset: str | None) -> bool:
        return dataset is not None and dataset in self.datasets


# -- issuing ------------------------------------------------------------------------------------


def dataset_url(settings: Settings, accession: str) -> str:
    return f"{settings.http.public_url}/datasets/{accession}"


def active_grants(session: Session, subject: str, now: datetime | None = None) -> list[Grant]:
    now = now or datetime.now(UTC)
    return list(
        session.scalars(
            select(Grant)
            .where(Grant.subject == subject, Grant.revoked_at.is_(None), Grant.expires_at > now)
            .order_by(Grant.dataset_accession, Grant.granted_at)
        )
    )


def issue_visa(settings: Settings, grant: Grant, source: str, now: datetime | None = None) -> str:
    """A signed visa for ``grant``; ``source`` names the DAC that approved it."""
    now = now or datetime.now(UTC)
    expires = min(grant.expires_at, now + timedelta(seconds=settings.tokens.visa_lifetime_seconds))
    claims = {
        "iss": settings.tokens.issuer,
        "sub": grant.subject,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": grant.id,
        VISA_CLAIM: {
            "type": VISA_TYPE,
            "asserted": int(grant.granted_at.timestamp()),
            "value": dataset_url(settings, grant.dataset_accession),
            "source": source,
            "by": "dac",
        },
    }
    headers = {
        "kid": public_jwk(settings)["kid"],
        "jku": f"{settings.http.public_url}/.well-known/jwks.json",
        "typ": "JWT",
    }
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM, headers=headers)


def issue_for_subject(
    session: Session, settings: Settings, subject: str, *, requested_by: str
) -> list[str]:
    """Visas for every valid grant of ``subject``, each issue written to the audit log."""
    issued = []
    for grant in active_grants(session, subject):
        source = _grant_source(session, settings, grant)
        issued.append(issue_visa(settings, grant, source))
        audit.record(
            session,
            actor=requested_by,
            action="visa.issued",
            dataset=grant.dataset_accession,
            detail={"subject": subject, "grant": grant.id, "expires": grant.expires_at.isoformat()},
        )
    return issued


def _grant_source(session: Session, settings: Settings, grant: Grant) -> str:
    item = session.get(AccessRequestItem, grant.item_id) if grant.item_id is not None else None
    base = settings.http.public_url
    return f"{base}/dacs/{item.dac_accession}" if item is not None else base


# -- verifying ----------------------------------------------------------------------------------


def permissions(
    session: Session,
    settings: Settings,
    subject: str,
    presented: Sequence[str] = (),
    now: datetime | None = None,
) -> Permissions:
    """What ``subject`` may read: the node's own valid grants, plus the presented visas that
    verify. Refused visas are listed with the reason (for the caller and the audit log)."""
    now = now or datetime.now(UTC)
    allowed = Permissions(subject)
    for grant in active_grants(session, subject, now):
        allowed.datasets[grant.dataset_accession] = _visa_of_grant(settings, grant)
    if len(presented) > MAX_VISAS:
        allowed.refused.append(f"{len(presented)} visas sent; at most {MAX_VISAS} are read")
        presented = presented[:MAX_VISAS]
    checked: list[tuple[int, dict[str, Any], dict[str, Any]]] = []  # (number, claims, body)
    for index, token in enumerate(presented, 1):
        try:
            claims = _verified_claims(settings, token, len(token))
            checked.append((index, claims, _visa_body(claims, subject, now)))
        except InvalidVisa as error:
            allowed.refused.append(f"visa {index}: {error}")
    bodies = [body for _, _, body in checked]
    for index, claims, body in checked:
        if body.get("type") != VISA_TYPE:
            continue  # other visa types only ever satisfy conditions
        try:
            visa = _grant_of(session, settings, claims, body, bodies)
        except InvalidVisa as error:
            allowed.refused.append(f"visa {index}: {error}")
            continue
        allowed.datasets.setdefault(visa.dataset, visa)
    return allowed


def _visa_of_grant(settings: Settings, grant: Grant) -> Visa:
    return Visa(
        issuer=settings.tokens.issuer,
        subject=grant.subject,
        dataset=grant.dataset_accession,
        asserted=grant.granted_at,
        expires_at=grant.expires_at,
        source=settings.http.public_url,
        by="dac",
        grant_id=grant.id,
    )


def verify_visa(
    session: Session,
    settings: Settings,
    token: str,
    subject: str,
    now: datetime | None = None,
    passport: Sequence[dict[str, Any]] = (),
) -> Visa:
    """The grant ``token`` proves for ``subject``, or :class:`InvalidVisa` saying why not.
    ``passport``: the other visas' bodies, against which its conditions are checked."""
    now = now or datetime.now(UTC)
    claims = _verified_claims(settings, token, len(token))
    body = _visa_body(claims, subject, now)
    if body.get("type") != VISA_TYPE:
        raise InvalidVisa(f"it is of type {_shown(body.get('type'))}, not {VISA_TYPE}")
    return _grant_of(session, settings, claims, body, [body, *passport])


def _grant_of(
    session: Session,
    settings: Settings,
    claims: dict[str, Any],
    body: dict[str, Any],
    passport: Sequence[dict[str, Any]],
) -> Visa:
    """What a verified ControlledAccessGrants visa grants, once its conditions hold."""
    visa = _read_grant(claims, body)
    if not conditions_met(body.get("conditions"), passport):
        raise InvalidVisa(
            "its conditions are not met by the other visas sent (e.g. accepted terms or a "
            "researcher status): send them too, in X-GA4GH-Passport"
        )
    if visa.issuer == settings.tokens.issuer:
        jti = str(claims.get("jti", ""))
        _check_not_revoked(session, visa, jti)
        visa = Visa(**{**visa.__dict__, "grant_id": jti})
    return visa


def _verified_claims(settings: Settings, token: str, size: int) -> dict[str, Any]:
    if size > MAX_VISA_BYTES:
        raise InvalidVisa(f"it is larger than {MAX_VISA_BYTES} bytes")
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise InvalidVisa("it is not a JWT") from None
    try:
        if issuer == settings.tokens.issuer:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key(settings).public_key(),
                algorithms=[ALGORITHM],
                issuer=issuer,
                leeway=LEEWAY,
                options={"require": ["iss", "sub", "iat", "exp", "jti"], "verify_aud": False},
            )
            return claims
        trusted = trusted_issuer(settings, issuer, "visas")
        if trusted is None:
            raise InvalidVisa(
                f"its issuer {_shown(issuer)} is not on this node's allow-list of visa issuers"
            )
        return verify_signed(token, trusted, require=("iat",))
    except jwt.ExpiredSignatureError:
        raise InvalidVisa("it has expired: fetch fresh visas from /permissions/<you>") from None
    except jwt.InvalidSignatureError:
        raise InvalidVisa("its signature does not verify: it was forged or altered") from None
    except jwt.PyJWTError as error:
        raise InvalidVisa(f"it is invalid ({error})") from None
    except InvalidToken as error:
        raise InvalidVisa(str(error).replace("the token", "the visa")) from None


def _visa_body(claims: dict[str, Any], subject: str, now: datetime) -> dict[str, Any]:
    """The ``ga4gh_visa_v1`` object of verified ``claims``, checked for every visa type."""
    body = claims.get(VISA_CLAIM)
    if not isinstance(body, dict):
        raise InvalidVisa(f"it has no {VISA_CLAIM} object")
    if claims.get("sub") != subject:
        raise InvalidVisa("it was issued to another user than the token's")
    if not isinstance(body.get("type"), str):
        raise InvalidVisa("it has no type")
    asserted = body.get("asserted")
    if not isinstance(asserted, int) or isinstance(asserted, bool):
        raise InvalidVisa("its 'asserted' is not a time in seconds")
    if datetime.fromtimestamp(asserted, UTC) > now + LEEWAY:
        raise InvalidVisa("it is asserted in the future: the grant it claims has not started")
    return body


def _read_grant(claims: dict[str, Any], body: dict[str, Any]) -> Visa:
    by, value, source = body.get("by"), body.get("value"), body.get("source")
    if not isinstance(by, str) or not by:
        raise InvalidVisa("it does not say 'by' whom the grant was made")
    if not isinstance(value, str) or not value.rstrip("/"):
        raise InvalidVisa("its 'value' names no dataset")
    return Visa(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        dataset=value.rstrip("/").rsplit("/", 1)[-1],
        asserted=datetime.fromtimestamp(body["asserted"], UTC),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        source=str(source or ""),
        by=by,
    )


def conditions_met(conditions: object, passport: Sequence[dict[str, Any]]) -> bool:
    """GA4GH visa conditions: a list of alternatives (OR), each a list of clauses (AND); a
    clause holds when some visa of the passport has its type and matches its value, source and
    by (``const:`` exact, ``pattern:`` with ``*`` and ``?`` wildcards; a bare value is exact)."""
    if conditions in (None, []):
        return True
    if not isinstance(conditions, list):
        return False
    return any(
        isinstance(alternative, list)
        and bool(alternative)
        and all(_clause_met(clause, passport) for clause in alternative)
        for alternative in conditions
    )


def _clause_met(clause: object, passport: Sequence[dict[str, Any]]) -> bool:
    if not isinstance(clause, dict) or not isinstance(clause.get("type"), str):
        return False
    return any(
        visa.get("type") == clause["type"]
        and all(
            _matches(clause[field], visa.get(field))
            for field in ("value", "source", "by")
            if field in clause
        )
        for visa in passport
    )


def _matches(wanted: object, actual: object) -> bool:
    if not isinstance(wanted, str) or not isinstance(actual, str):
        return False
    if wanted.startswith("pattern:"):  # only * and ? are special, unlike fnmatch's [...]
        glob = re.escape(wanted.removeprefix("pattern:"))
        return re.fullmatch(glob.replace(r"\*", ".*").replace(r"\?", "."), actual) is not None
    return actual == wanted.removeprefix("const:")


def _check_not_revoked(session: Session, visa: Visa, jti: str) -> None:
    """A visa of this node stands for a grant, which must still exist, unrevoked, for the same
    user and dataset (the jti is checked as an id: a forged jti finds no grant)."""
    try:
        uuid.UUID(jti)
    except ValueError:
        raise InvalidVisa("its jti names no grant of this node") from None
    grant = session.get(Grant, jti)
    if grant is None or grant.subject != visa.subject or grant.dataset_accession != visa.dataset:
        raise InvalidVisa("its jti names no grant of this node for this user and dataset")
    if grant.revoked_at is not None:
        raise InvalidVisa(f"its grant was revoked at {grant.revoked_at:%Y-%m-%d %H:%M} UTC")


def presented_visas(header_values: Iterable[str]) -> list[str]:
    """Visa JWTs from ``X-GA4GH-Passport`` headers: separated by commas or whitespace."""
    found: list[str] = []
    for value in header_values:
        found.extend(part for part in value.replace(",", " ").split() if part)
    return found


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...{text[-10:]}"
