"""The hub and nodes as real servers on loopback: join, approval, the catalogue's life, faults.

Test nodes heartbeat every 0.2 s; the test hub calls a node late after 0.6 s without a
heartbeat and down after 1.2 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from federation_support import (
    hub_server,
    make_hub,
    make_node,
    node_server,
    release_cohort,
    wait_for,
    with_hub,
)
from metadata_support import COUNTRY, SUBMITTER, session_of
from sqlalchemy import select

from genofed.config import Settings
from genofed.db import for_writing, make_engine, session_scope
from genofed.db.models import AuditEntry
from genofed.federation.hub import HUB_ID, approve_node, remove_node
from genofed.federation.node_sync import join_request, node_id
from genofed.federation.signing import SignedAuth, load_private_key, public_key_text
from genofed.metadata import service

BE = "org.genofed.node.be"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    with hub_server(make_hub(tmp_path / "hub")) as served:
        yield served


@pytest.fixture
def node(tmp_path: Path) -> Settings:
    """A Belgian node with the metadata_support cohort released."""
    settings = make_node(tmp_path / "be", COUNTRY)
    release_cohort(settings)
    return settings


def _search(hub_url: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{hub_url}/catalogue/search", params=params)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _found(hub_url: str, **params: Any) -> list[str]:
    return [result["accession"] for result in _search(hub_url, **params)["results"]]


def _change_study_title(settings: Settings, title: str) -> None:
    engine = make_engine(settings.database_url)
    study = {
        "alias": "EPI-BE",
        "title": title,
        "description": "Trio-free WGS of 20 patients with early-onset epilepsy.",
        "study_type": "Whole Genome Sequencing",
    }
    with session_scope(for_writing(engine)) as session:
        service.submit_metadata(session, settings.country, SUBMITTER, {"studies": [study]})
    engine.dispose()


def _deprecate(settings: Settings, accession: str) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(for_writing(engine)) as session:
        service.deprecate_dataset(session, settings.country, accession)
    engine.dispose()


def _audit_actions(settings: Settings) -> list[tuple[str, str, str]]:
    engine = make_engine(settings.database_url)
    with session_of(engine) as session:
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.outcome).order_by(AuditEntry.seq)
        ).all()
    engine.dispose()
    return [(actor, action, outcome) for actor, action, outcome in rows]


def _approved_and_published(hub: tuple[str, Settings]) -> None:
    hub_url, hub_settings = hub
    wait_for(lambda: _search(hub_url)["nodes"] or _pending(hub_settings), what="the join")
    approval = approve_node(hub_settings, "BE", "operator")
    assert approval.notice_problem is None  # the node heard at once
    wait_for(lambda: _search(hub_url)["total"] == 1, what="the publication")


def _node_health(hub_url: str) -> str:
    [entry] = httpx.get(f"{hub_url}/services").json()
    return str(entry["federation"]["health"])


def _pending(hub_settings: Settings) -> bool:
    from genofed.federation.hub import node_listing

    return bool(node_listing(hub_settings))


# -- the catalogue's life -------------------------------------------------------------------------


def test_join_approve_publish_update_deprecate(hub: tuple[str, Settings], node: Settings) -> None:
    hub_url, hub_settings = hub
    with node_server(with_hub(node, hub_url)) as (node_url, served):
        wait_for(lambda: _pending(hub_settings), what="the join")
        assert httpx.get(f"{hub_url}/services").json() == []  # pending: not listed
        assert _search(hub_url)["total"] == 0
        _approved_and_published(hub)
        [result] = _search(hub_url, phenotype="HP:0001250")["results"]
        shown = dict(result["node"])
        assert shown.pop("health") in ("up", "late", "down")
        assert shown == {"id": BE, "name": "Node BE", "country": "BE"}
        # health follows heartbeats (every 0.2 s, down after 1.2 s here): a loaded machine may
        # stall one, so wait for it rather than catch one instant
        wait_for(lambda: _node_health(hub_url) == "up", what="the node's health")
        accession = result["accession"]
        assert result["individuals"] == 20
        assert _found(hub_url, q="belgian epilepsy", data_type="wgs", assembly="GRCh38") == [
            accession
        ]

        detail = httpx.get(f"{hub_url}{result['href']}").json()
        assert detail["sex"] == {"female": 10, "male": 5, "unknown": 5}
        assert detail["how_to_apply"]["requests_url"] == f"{node_url}/access/requests"
        [entry] = httpx.get(f"{hub_url}/services").json()
        assert (entry["id"], entry["url"], entry["country"]) == (BE, node_url, "BE")
        assert entry["federation"]["health"] in ("up", "late", "down")
        assert httpx.get(f"{hub_url}/services/{BE}").json()["name"] == "Node BE"
        own_keys = httpx.get(f"{node_url}/.well-known/jwks.json").json()
        assert httpx.get(f"{hub_url}/nodes/jwks").json() == own_keys
        assert httpx.get(f"{hub_url}/nodes/{BE}/jwks").json() == own_keys

        _change_study_title(served, "Whole genomes of an epilepsy cohort, second release")
        wait_for(lambda: _found(hub_url, q="second release") == [accession], what="the update")

        _deprecate(served, accession)
        wait_for(lambda: _search(hub_url)["total"] == 0, what="the deprecation")
        assert httpx.get(f"{hub_url}{result['href']}").status_code == 410
    actions = {action for _, action, _ in _audit_actions(hub_settings)}
    assert {"federation.join", "federation.approve", "federation.publish"} <= actions


def test_a_stopped_node_is_named_and_rejoins_by_itself(
    hub: tuple[str, Settings], node: Settings
) -> None:
    hub_url, _ = hub
    federated = with_hub(node, hub_url)
    with node_server(federated) as (first_url, _):
        _approved_and_published(hub)
    down = wait_for(lambda: _search(hub_url)["unavailable_nodes"], what="the node to be missed")
    wait_for(lambda: _search(hub_url)["unavailable_nodes"][0]["health"] == "down", what="down")
    answer = _search(hub_url, q="epilepsy")
    assert answer["total"] == 1  # the catalogue still answers, from what the node published
    assert answer["results"][0]["node"]["health"] == "down"
    [missing] = answer["unavailable_nodes"]
    assert (missing["id"], missing["health"]) == (BE, "down")
    assert "Node BE (BE) is" in down[0]["message"]

    _change_study_title(node, "Changed while the node was stopped")  # as an operator might
    with node_server(federated) as (second_url, _):  # restarted, on another port
        assert second_url != first_url
        wait_for(lambda: not _search(hub_url)["unavailable_nodes"], what="the node to be back")
        assert httpx.get(f"{hub_url}/services/{BE}").json()["url"] == second_url
        wait_for(lambda: _found(hub_url, q="while the node was stopped"), what="the republication")


def test_a_hub_that_forgot_the_node(hub: tuple[str, Settings], node: Settings) -> None:
    """Removed at the hub (or a registry reset): the node joins again by itself, and once
    approved again publishes everything, although nothing changed on the node."""
    hub_url, hub_settings = hub
    with node_server(with_hub(node, hub_url)):
        _approved_and_published(hub)
        remove_node(hub_settings, BE, "operator")
        assert _search(hub_url)["total"] == 0
        wait_for(lambda: _pending(hub_settings), what="the join again")
        approve_node(hub_settings, BE, "operator")
        wait_for(lambda: _search(hub_url)["total"] == 1, what="the catalogue again")


# -- refusals ---------------------------------------------------------------------------------


def _client(key: Ed25519PrivateKey, keyid: str, **options: Any) -> httpx.Client:
    return httpx.Client(auth=SignedAuth(key, keyid, **options), timeout=10)


def _refusal(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["X-Refusal-Reason"] == code
    detail: str = response.json()["detail"]
    return detail


def test_unsigned_unknown_forged_replayed_stale_refused(
    hub: tuple[str, Settings], node: Settings
) -> None:
    hub_url, hub_settings = hub
    key = load_private_key(node.federation.signing_key)
    beat = {"url": "http://127.0.0.1:1"}
    with _client(key, BE) as client:  # the node joins, signed with its own key
        joined = client.post(f"{hub_url}/federation/join", json=join_request(node))
        assert joined.status_code == 201, joined.text
        assert joined.json()["hub"]["id"] == HUB_ID
        assert client.post(f"{hub_url}/federation/heartbeat", json=beat).status_code == 200
        refused = client.post(f"{hub_url}/catalogue/publish", json={"datasets": []})
        assert "is pending: the hub operator approves it first" in _refusal(
            refused, 403, "forbidden"
        )

    unsigned = httpx.post(f"{hub_url}/federation/heartbeat", json=beat)
    assert "not signed" in _refusal(unsigned, 401, "unsigned")

    stranger = Ed25519PrivateKey.generate()
    with _client(stranger, "org.genofed.node.xx") as client:
        unknown = client.post(f"{hub_url}/federation/heartbeat", json=beat)
        assert "not a node this service knows" in _refusal(unknown, 401, "unknown_key")
    with _client(stranger, BE) as client:
        forged = client.post(f"{hub_url}/federation/heartbeat", json=beat)
        assert "does not verify" in _refusal(forged, 401, "bad_signature")
        other = {**join_request(node), "signing_key": public_key_text(stranger)}
        taken = client.post(f"{hub_url}/federation/join", json=other)
        assert "registered with another signing key" in _refusal(taken, 409, "forbidden")

    with httpx.Client(timeout=10) as plain:
        request = plain.build_request("POST", f"{hub_url}/federation/heartbeat", json=beat)
        signed = next(SignedAuth(key, BE).auth_flow(request))
        assert plain.send(signed).status_code == 200
        _refusal(plain.send(signed), 401, "replay")
        request = plain.build_request("POST", f"{hub_url}/federation/heartbeat", json=beat)
        tampered = next(SignedAuth(key, BE).auth_flow(request))
        tampered.stream = httpx.ByteStream(tampered.content.replace(b':1"', b':2"'))
        _refusal(plain.send(tampered), 401, "digest")
    with _client(key, BE, clock=lambda: 1_000_000_000.0) as client:
        stale = client.post(f"{hub_url}/federation/heartbeat", json=beat)
        assert "beyond ±300 s" in _refusal(stale, 401, "clock")

    denied = [
        (actor, action)
        for actor, action, outcome in _audit_actions(hub_settings)
        if outcome == "denied"
    ]
    assert denied == [
        (BE, "federation.refused.forbidden"),
        ("unknown", "federation.refused.unsigned"),
        ("org.genofed.node.xx", "federation.refused.unknown_key"),
        (BE, "federation.refused.bad_signature"),
        (BE, "federation.refused.forbidden"),
        (BE, "federation.refused.replay"),
        (BE, "federation.refused.digest"),
        (BE, "federation.refused.clock"),
    ]


def test_a_node_accepts_notices_from_its_hub_only(
    hub: tuple[str, Settings], node: Settings
) -> None:
    hub_url, hub_settings = hub
    with node_server(with_hub(node, hub_url)) as (node_url, served):
        wait_for(lambda: _pending(hub_settings), what="the join")
        impostor = Ed25519PrivateKey.generate()
        with _client(impostor, HUB_ID) as client:
            forged = client.post(f"{node_url}/federation/notify", json={"event": "resync"})
            _refusal(forged, 401, "bad_signature")
        with _client(load_private_key(hub_settings.federation.signing_key), HUB_ID) as client:
            heard = client.post(f"{node_url}/federation/notify", json={"event": "approved"})
            assert heard.status_code == 202, heard.text
    assert ("unknown", "federation.refused.bad_signature") not in _audit_actions(served)
    assert (HUB_ID, "federation.refused.bad_signature", "denied") in _audit_actions(served)
    assert node_id(served) == BE
