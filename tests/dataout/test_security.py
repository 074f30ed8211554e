"""Who gets no data: each refused request is 401 or 403 with a clear message, serves zero data
bytes, and is recorded as denied in the audit log."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dataout_support import archive_file, auth, grant, make_node, release_dataset
from fastapi.testclient import TestClient
from sqlalchemy import select

from genofed import crypt4gh, db
from genofed.access import audit
from genofed.access.tokens import issue_token, public_jwk, signing_key
from genofed.config import Settings, TrustedIssuer
from genofed.node.app import create_app

READER = "bob@ulb.be"
PARTNER = "https://node.partner.example"


@dataclass
class World:
    settings: Settings
    client: TestClient
    dataset: str
    other_dataset: str
    file: str
    revoked_grant: str
    partner_key: Ed25519PrivateKey


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    partner_key = Ed25519PrivateKey.generate()
    jwks_file = tmp_path / "partner-jwks.json"
    partner_public = partner_key.public_key().public_bytes_raw()
    jwks_file.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "kty": "OKP",
                        "crv": "Ed25519",
                        "kid": "partner-1",
                        "x": base64.urlsafe_b64encode(partner_public).rstrip(b"=").decode(),
                    }
                ]
            }
        )
    )
    trusted = TrustedIssuer(issuer=PARTNER, jwks_file=jwks_file, accept=["visas"])
    settings = make_node(tmp_path / "node")
    settings.tokens.trusted_issuers = [trusted]
    engine = db.make_engine(settings.database_url)
    with db.session_scope(engine) as session:
        file = archive_file(session, settings, os.urandom(100_000))
        other = archive_file(session, settings, b"other")
        dataset = release_dataset(session, settings, [file], "Controlled")
        other_dataset = release_dataset(session, settings, [other], "Other")
        grant(session, READER, other_dataset)  # a grant, but for the other dataset
        revoked = grant(session, READER, dataset, revoked=True)
        names = (dataset, other_dataset, str(file.accession), revoked.id)
    engine.dispose()
    with TestClient(create_app(settings)) as client:
        yield World(settings, client, *names, partner_key)


def _key_header() -> dict[str, str]:
    public = crypt4gh.generate_keypair().public
    return {"X-C4GH-Public-Key": base64.b64encode(public).decode()}


def _visa(
    world: World,
    *,
    key: Ed25519PrivateKey | None = None,
    issuer: str | None = None,
    dataset: str | None = None,
    subject: str = READER,
    asserted: datetime | None = None,
    expires: datetime | None = None,
    jti: str | None = None,
    **visa_changes: Any,
) -> str:
    now = datetime.now(UTC)
    issuer = issuer or world.settings.tokens.issuer
    body = {
        "type": "ControlledAccessGrants",
        "asserted": int((asserted or now - timedelta(days=1)).timestamp()),
        "value": f"{issuer}/datasets/{dataset or world.dataset}",
        "source": f"{issuer}/dacs/1",
        "by": "dac",
        **visa_changes,
    }
    claims = {
        "iss": issuer,
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int((expires or now + timedelta(hours=1)).timestamp()),
        "jti": jti or str(uuid.uuid4()),
        "ga4gh_visa_v1": {k: v for k, v in body.items() if v is not None},
    }
    own = key is None
    signer = signing_key(world.settings) if own else key
    kid = public_jwk(world.settings)["kid"] if own else "partner-1"
    return jwt.encode(claims, signer, algorithm="EdDSA", headers={"kid": kid})


def _fetch(world: World, headers: dict[str, str]) -> Any:
    return world.client.get(f"/data/files/{world.file}", headers={**_key_header(), **headers})


def _expired_token(world: World) -> dict[str, str]:
    token = issue_token(world.settings, READER, ["requester"], timedelta(seconds=1))
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["exp"] = claims["iat"] - 3600
    forged = jwt.encode(
        claims,
        signing_key(world.settings),
        algorithm="EdDSA",
        headers={"kid": public_jwk(world.settings)["kid"]},
    )
    return {"Authorization": f"Bearer {forged}"}


def _with_visa(**changes: Any) -> Callable[[World], dict[str, str]]:
    def headers(world: World) -> dict[str, str]:
        values = {key: value(world) if callable(value) else value for key, value in changes.items()}
        return {**auth(world.settings, READER), "X-GA4GH-Passport": _visa(world, **values)}

    return headers


CASES: dict[str, tuple[Callable[[World], dict[str, str]], int, str]] = {
    "no token": (lambda world: {}, 401, "no bearer token"),
    "expired token": (_expired_token, 401, "expired"),
    "token but no visa": (lambda world: auth(world.settings, READER), 403, "no valid visa"),
    "visa for another dataset": (
        _with_visa(dataset=lambda w: w.other_dataset),
        403,
        "no valid visa",
    ),
    "expired visa": (
        _with_visa(expires=datetime.now(UTC) - timedelta(minutes=5)),
        403,
        "expired",
    ),
    "revoked visa": (_with_visa(jti=lambda w: w.revoked_grant), 403, "revoked"),
    "visa with a jti naming no grant": (_with_visa(), 403, "no grant"),
    "not yet asserted visa": (
        _with_visa(asserted=datetime.now(UTC) + timedelta(days=2)),
        403,
        "future",
    ),
    "forged visa signature": (
        _with_visa(key=Ed25519PrivateKey.generate()),
        403,
        "forged",
    ),
    "issuer not on the allow-list": (
        _with_visa(key=lambda w: w.partner_key, issuer="https://rogue.example"),
        403,
        "allow-list",
    ),
    "visa without 'by'": (_with_visa(by=None), 403, "'by'"),
    "visa for another user": (_with_visa(subject="mallory"), 403, "another user"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_requests_serve_no_data_byte(world: World, case: str) -> None:
    make_headers, status, reason = CASES[case]
    response = _fetch(world, make_headers(world))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert reason in detail
    assert b"crypt4gh" not in response.content
    assert len(response.content) < 2000
    head = world.client.head(
        f"/data/files/{world.file}", headers={**_key_header(), **make_headers(world)}
    )
    assert head.status_code == status
    if status == 403:  # authenticated: the refusal is in the audit log under the caller's name
        engine = db.make_engine(world.settings.database_url)
        with db.session_scope(engine) as session:
            denied = audit.query(session, actor=READER, action="data.download")
        engine.dispose()
        assert denied and all(entry.outcome == "denied" for entry in denied)
        assert denied[0].file == world.file


def test_a_visa_of_an_allow_listed_partner_opens_the_file(world: World) -> None:
    visa = _visa(world, key=world.partner_key, issuer=PARTNER)
    response = _fetch(world, {**auth(world.settings, READER), "X-GA4GH-Passport": visa})
    assert response.status_code == 200
    assert response.content.startswith(b"crypt4gh")


def test_a_valid_own_visa_opens_the_file_and_too_many_visas_are_cut(world: World) -> None:
    engine = db.make_engine(world.settings.database_url)
    with db.session_scope(engine) as session:
        fresh = grant(session, READER, world.dataset)
        session.delete(session.get(db.Grant, world.revoked_grant))
        fresh_id = fresh.id
    engine.dispose()
    visas = world.client.get(f"/permissions/{READER}", headers=auth(world.settings, READER))
    assert visas.status_code == 200
    issued = visas.json()["ga4gh_visa_v1"]
    assert len(issued) == 2  # the other dataset and this one
    claims = [jwt.decode(v, options={"verify_signature": False}) for v in issued]
    assert {c["jti"] for c in claims} >= {fresh_id}
    assert all(c["ga4gh_visa_v1"]["type"] == "ControlledAccessGrants" for c in claims)
    junk = " ".join(["x.y.z"] * 150)
    response = _fetch(world, {**auth(world.settings, READER), "X-GA4GH-Passport": junk})
    assert response.status_code == 200  # the node's own grant still counts


def test_users_read_only_their_own_visas(world: World) -> None:
    response = world.client.get(f"/permissions/{READER}", headers=auth(world.settings, "mallory"))
    assert response.status_code == 403
    operator = world.client.get(
        f"/permissions/{READER}", headers=auth(world.settings, "root", "operator")
    )
    assert operator.status_code == 200


def test_a_tampered_audit_log_is_detected(world: World) -> None:
    _fetch(world, auth(world.settings, READER))
    _fetch(world, auth(world.settings, READER))
    engine = db.make_engine(world.settings.database_url)
    with db.session_scope(engine) as session:
        assert audit.verify(session).ok
        first = session.scalars(select(db.AuditEntry).order_by(db.AuditEntry.seq)).first()
        assert first is not None
        first.outcome = "allowed" if first.outcome == "denied" else "denied"
    with db.session_scope(engine) as session:
        report = audit.verify(session)
    engine.dispose()
    assert not report.ok


def test_visa_conditions_need_the_visas_they_name(world: World) -> None:
    terms = "https://partner.example/terms/v2"
    conditions = [[{"type": "AcceptedTermsAndPolicies", "value": f"const:{terms}", "by": "self"}]]
    grant_visa = _visa(world, key=world.partner_key, issuer=PARTNER, conditions=conditions)
    alone = _fetch(world, {**auth(world.settings, READER), "X-GA4GH-Passport": grant_visa})
    assert alone.status_code == 403 and "conditions are not met" in alone.json()["detail"]
    accepted = _visa(
        world,
        key=world.partner_key,
        issuer=PARTNER,
        type="AcceptedTermsAndPolicies",
        value=terms,
        by="self",
    )
    both = f"{grant_visa}, {accepted}"
    response = _fetch(world, {**auth(world.settings, READER), "X-GA4GH-Passport": both})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("conditions", "met"),
    [
        (None, True),
        ([], True),
        ([[{"type": "ResearcherStatus", "value": "pattern:https://*.example/*"}]], True),
        ([[{"type": "ResearcherStatus", "value": "pattern:https://[a]*"}]], False),
        ([[{"type": "ResearcherStatus", "by": "so"}]], True),
        ([[{"type": "ResearcherStatus", "by": "peer"}]], False),
        ([[{"type": "ResearcherStatus"}, {"type": "AffiliationAndRole"}]], False),
        ([[{"type": "AffiliationAndRole"}], [{"type": "ResearcherStatus"}]], True),
        ([[]], False),
        ("not a list", False),
    ],
)
def test_conditions_are_an_or_of_ands(conditions: object, met: bool) -> None:
    from genofed.access.visas import conditions_met

    passport = [
        {"type": "ResearcherStatus", "value": "https://lab.example/bona-fide", "by": "so"},
        {"type": "ControlledAccessGrants", "value": "x", "by": "dac"},
    ]
    assert conditions_met(conditions, passport) is met
