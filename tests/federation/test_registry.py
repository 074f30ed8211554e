"""The hub's registry (join, approve, heartbeat, health) and the nonce store, on each backend."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from federation_support import add_hub_node, join_request
from metadata_support import session_of
from pydantic import ValidationError
from sqlalchemy import Engine, func, select

from genofed.config import HubSettings
from genofed.db.models import FederationNonce, HubNodeStatus, utcnow
from genofed.federation import registry
from genofed.federation.guard import DatabaseNonces

THRESHOLDS = HubSettings(name="hub", late_after_seconds=90, down_after_seconds=300)


def test_join_approve_heartbeat_and_health(db_engine: Engine) -> None:
    request = join_request("org.genofed.node.be", "BE")
    with session_of(db_engine) as session:
        node, created = registry.join(session, request)
        assert created and node.status is HubNodeStatus.PENDING
        assert registry.list_nodes(session, approved_only=True) == []
    with session_of(db_engine) as session:
        node = registry.approve(session, "be", by="operator")  # a country code names it too
        assert (node.status, node.approved_by) == (HubNodeStatus.APPROVED, "operator")
        beat = registry.Heartbeat(url="http://moved.example/")
        registry.heartbeat(session, node, beat)
        assert node.url == "http://moved.example"
        now = node.last_heartbeat_at
        assert now is not None
        assert registry.health(node, THRESHOLDS, now + timedelta(seconds=10)) == "up"
        assert registry.health(node, THRESHOLDS, now + timedelta(seconds=91)) == "late"
        assert registry.health(node, THRESHOLDS, now + timedelta(seconds=301)) == "down"
        entry = registry.service_entry(node, THRESHOLDS, now)
    assert entry["id"] == "org.genofed.node.be"
    assert entry["url"] == "http://moved.example"
    assert entry["type"] == {"group": "org.ga4gh", "artifact": "genofed-node"}
    assert entry["federation"]["health"] == "up"
    assert entry["federation"]["jwks_url"] == "/nodes/org.genofed.node.be/jwks"


def test_joining_again_keeps_the_status_another_key_is_refused(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        node = add_hub_node(session, "org.genofed.node.be", "BE")
        key = node.signing_key
    again = join_request("org.genofed.node.be", "BE", key=key).model_copy(
        update={"name": "Belgian node", "url": "http://be2.example"}
    )
    with session_of(db_engine) as session:
        node, created = registry.join(session, again)
        assert not created
        assert (node.status, node.name, node.url) == (
            HubNodeStatus.APPROVED,
            "Belgian node",
            "http://be2.example",
        )
    with session_of(db_engine) as session, pytest.raises(registry.KeyConflict, match="hub remove"):
        registry.join(session, join_request("org.genofed.node.be", "BE"))


def test_finding_nodes(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        add_hub_node(session, "org.genofed.node.be", "BE")
        add_hub_node(session, "org.genofed.node.be2", "BE")
        assert registry.find_node(session, "org.genofed.node.be2").id == "org.genofed.node.be2"
    with session_of(db_engine) as session:
        for ambiguous in ("BE", "Node BE"):
            with pytest.raises(registry.RegistryError, match="several nodes"):
                registry.find_node(session, ambiguous)
        with pytest.raises(registry.UnknownNode, match=r"registered: org\.genofed\.node\.be, "):
            registry.find_node(session, "FI")


def test_a_join_request_is_checked() -> None:
    good = join_request("org.genofed.node.be", "BE").model_dump()
    for field, value, message in [
        ("id", "BE node", "should match pattern"),
        ("country", "Belgium", "should match pattern"),
        ("url", "ftp://x", "http"),
        ("signing_key", "not-a-key", "Ed25519"),
        ("jwks", {"keys": [{"kty": "OKP", "x": "AAAA", "d": "secret"}]}, "private"),
        ("jwks", {"keys": []}, "1 to 10 keys"),
    ]:
        with pytest.raises(ValidationError, match=message):
            registry.JoinRequest.model_validate({**good, field: value})


def test_the_nonce_store_refuses_a_second_use_and_sweeps(db_engine: Engine) -> None:
    nonces = DatabaseNonces(db_engine)
    later = time.time() + 600
    assert nonces.remember("org.genofed.node.be", "n" * 22, later)
    assert not nonces.remember("org.genofed.node.be", "n" * 22, later)
    assert nonces.remember("org.genofed.node.fi", "n" * 22, later)  # per key id
    nonces._swept = 0.0  # the next insert sweeps
    assert nonces.remember("org.genofed.node.be", "old" * 8, time.time() - 1)
    with session_of(db_engine) as session:
        left = session.scalar(select(func.count()).select_from(FederationNonce))
        expired = session.scalar(select(func.count()).where(FederationNonce.expires_at < utcnow()))
    assert (left, expired) == (2, 0)
