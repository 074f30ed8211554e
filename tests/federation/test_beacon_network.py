"""The beacon network on loopback: a hub and three nodes (BE and NL public, FI controlled), their
answers merged, each node's guard applied to the caller the hub forwards, members' tokens
accepted across borders and others' refused, a stopped and a late node named in time, and every
merged answer valid against the Beacon v2 framework schemas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from federation_support import make_node
from network_support import (
    MARGIN,
    TIMEOUT,
    VARIANT,
    BeaconSchemas,
    Network,
    Node,
    extra_node,
    fake_member,
    federation,
    grant,
)
from sqlalchemy import select

from genofed.access.tokens import issue_token
from genofed.db import make_engine, session_scope
from genofed.db.models import FederationNonce
from genofed.federation.hub import HUB_ID
from genofed.federation.signing import SignedAuth

LEVELS = {"BE": "public", "NL": "public", "FI": "controlled"}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with federation(tmp_path_factory.mktemp("network"), LEVELS) as built:
        yield built


@pytest.fixture(scope="module")
def schemas(shared_dir: Path) -> BeaconSchemas:
    return BeaconSchemas(shared_dir / "specs" / "beacon-v2")


def _get(url: str, path: str, params: Any = None, headers: Any = None) -> httpx.Response:
    return httpx.get(f"{url}{path}", params=params, headers=headers, timeout=30)


def _valid(schemas: BeaconSchemas, body: dict[str, Any], kind: str) -> dict[str, Any]:
    assert schemas.problems(body, kind) == [], body
    return body


def _statuses(body: dict[str, Any]) -> dict[str, str]:
    return {node["country"]: node["status"] for node in body["info"]["nodes"]}


COUNT = {**VARIANT, "requestedGranularity": "count"}


# -- merging ------------------------------------------------------------------------------------


def test_counts_add_up_over_the_nodes_that_answered(
    network: Network, schemas: BeaconSchemas
) -> None:
    merged = _get(network.hub_url, "/beacon/g_variants", COUNT)
    assert merged.status_code == 200, merged.text
    body = _valid(schemas, merged.json(), "count")
    own = {
        country: _get(network.nodes[country].url, "/beacon/g_variants", COUNT).json()
        for country in ("BE", "NL")
    }
    totals = [own[country]["responseSummary"]["numTotalResults"] for country in ("BE", "NL")]
    assert totals == [12, 8]  # carriers, as each node's guard gives them
    assert body["responseSummary"] == {"exists": True, "numTotalResults": 20}
    assert body["meta"]["beaconId"] == "org.genofed.hub.beacon"
    assert body["meta"]["returnedGranularity"] == "count"
    assert _statuses(body) == {"BE": "answered", "NL": "answered", "FI": "refused"}
    listed = {item["node"]["country"]: item for item in body["info"]["datasets"]}
    assert listed["BE"]["id"] == network.nodes["BE"].dataset
    assert (listed["BE"]["count"], listed["NL"]["count"]) == (12, 8)
    [refusal] = body["info"]["notAnswered"]
    assert refusal.startswith(network.nodes["FI"].id) and "identified users only" in refusal

    as_post = httpx.post(
        f"{network.hub_url}/beacon/g_variants",
        json={
            "query": {
                "requestParameters": {k: v for k, v in VARIANT.items()},
                "requestedGranularity": "count",
            }
        },
        timeout=30,
    )
    assert as_post.status_code == 200, as_post.text
    assert as_post.json()["responseSummary"] == body["responseSummary"]


def test_record_answers_name_their_node_and_a_token_works_abroad(
    network: Network, schemas: BeaconSchemas
) -> None:
    """A Belgian user's token at every node: NL's grant to them opens NL's records, BE gives
    its public count, FI (controlled) a yes/no; every set names its node."""
    nl = network.nodes["NL"]
    grant(nl.settings, network.subject("BE", "alice"), nl.dataset)
    alice = network.nodes["BE"].bearer("alice")
    params = {**VARIANT, "requestedGranularity": "record", "includeResultsetResponses": "ALL"}
    merged = _get(network.hub_url, "/beacon/g_variants", params, alice)
    assert merged.status_code == 200, merged.text
    body = _valid(schemas, merged.json(), "record")
    assert _statuses(body) == {"BE": "answered", "NL": "answered", "FI": "answered"}
    sets = {item["info"]["node"]["country"]: item for item in body["response"]["resultSets"]}
    assert sets["NL"]["id"] == nl.dataset
    assert sets["NL"]["info"]["returnedGranularity"] == "record"
    [record] = sets["NL"]["results"]
    assert schemas.record_problems(record, "genomicVariations") == []
    assert (sets["BE"]["info"]["returnedGranularity"], sets["BE"]["resultsCount"]) == ("count", 12)
    assert sets["BE"]["results"] == []
    assert sets["FI"]["info"]["returnedGranularity"] == "boolean"
    assert sets["FI"]["exists"] is False  # 3 carriers: below FI's threshold for her
    assert body["responseSummary"]["exists"] is True


def test_another_nodes_user_is_not_the_local_user_of_that_name(network: Network) -> None:
    """NL's own 'bob' may read NL's dataset; BE's 'bob' is someone else there."""
    nl = network.nodes["NL"]
    grant(nl.settings, "bob", nl.dataset)
    params = {**VARIANT, "requestedGranularity": "record"}
    local = _get(nl.url, "/beacon/g_variants", params, nl.bearer("bob")).json()
    assert local["meta"]["returnedGranularity"] == "record"
    abroad = _get(nl.url, "/beacon/g_variants", params, network.nodes["BE"].bearer("bob")).json()
    assert abroad["meta"]["returnedGranularity"] == "count"


def test_a_non_members_token_is_refused_everywhere(
    network: Network, schemas: BeaconSchemas, tmp_path: Path
) -> None:
    outsider = make_node(tmp_path / "de", "DE")
    token = issue_token(outsider, "mallory", ["requester"])
    headers = {"Authorization": f"Bearer {token}"}
    refused = _get(network.hub_url, "/beacon/g_variants", COUNT, headers)
    assert refused.status_code == 401, refused.text
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    body = _valid(schemas, refused.json(), "error")
    assert set(_statuses(body).values()) == {"refused"}
    assert "does not trust" in body["error"]["errorMessage"]


def test_anonymous_on_controlled_data_only(network: Network, schemas: BeaconSchemas) -> None:
    """datasetIds naming FI's dataset: only FI is asked, and it wants a login."""
    fi = network.nodes["FI"]
    params = {**COUNT, "datasetIds": fi.dataset}
    refused = _get(network.hub_url, "/beacon/g_variants", params)
    assert refused.status_code == 401, refused.text
    body = _valid(schemas, refused.json(), "error")
    assert _statuses(body) == {"BE": "skipped", "NL": "skipped", "FI": "refused"}
    assert "identified users only" in body["error"]["errorMessage"]

    unknown = _get(network.hub_url, "/beacon/g_variants", {**COUNT, "datasetIds": "GFXXD0"})
    assert unknown.status_code == 400
    assert (
        "federation's catalogue"
        in _valid(schemas, unknown.json(), "error")["error"]["errorMessage"]
    )
    unreadable = _get(network.hub_url, "/beacon/g_variants", {"referenceName": "1"})
    assert unreadable.status_code == 400
    assert "info" not in _valid(schemas, unreadable.json(), "error")  # nobody was asked


def test_the_network_describes_itself_and_merges_terms_and_collections(
    network: Network, schemas: BeaconSchemas
) -> None:
    for path, kind in (
        ("/beacon/service-info", "service-info"),
        ("/beacon/configuration", "configuration"),
        ("/beacon/map", "map"),
        ("/beacon/entry_types", "entry_types"),
    ):
        answer = _get(network.hub_url, path)
        assert answer.status_code == 200, (path, answer.text)
        _valid(schemas, answer.json(), kind)
    info = _valid(schemas, _get(network.hub_url, "/beacon/info").json(), "info")
    beacons = info["response"]["info"]["beacons"]
    assert sorted(beacon["node"]["country"] for beacon in beacons) == ["BE", "FI", "NL"]
    assert {beacon["id"] for beacon in beacons} == {
        "org.genofed.be.beacon",
        "org.genofed.nl.beacon",
        "org.genofed.fi.beacon",
    }

    terms = _valid(
        schemas, _get(network.hub_url, "/beacon/filtering_terms").json(), "filtering_terms"
    )
    own = _get(network.nodes["BE"].url, "/beacon/filtering_terms").json()["response"]
    ids = [term["id"] for term in terms["response"]["filteringTerms"]]
    assert len(ids) == len(set(ids))  # the same terms at three nodes, listed once
    assert {term["id"] for term in own["filteringTerms"]} <= set(ids)

    datasets = _get(network.hub_url, "/beacon/datasets").json()
    _valid(schemas, datasets, "collections")
    held = {(d["id"], d["info"]["node"]["country"]) for d in datasets["response"]["collections"]}
    assert held == {(node.dataset, node.country) for node in network.nodes.values()}
    assert datasets["responseSummary"]["numTotalResults"] == 3


# -- faults -------------------------------------------------------------------------------------


def test_a_stopped_node_is_named_and_the_answer_comes_in_time(
    network: Network, tmp_path: Path, schemas: BeaconSchemas
) -> None:
    with extra_node(network, tmp_path / "se", "SE", "public") as (sweden, stop):
        before = _get(network.hub_url, "/beacon/g_variants", COUNT).json()
        assert _statuses(before)["SE"] == "answered"
        assert before["responseSummary"]["numTotalResults"] == 20  # SE has none of them
        stop()
        started = time.monotonic()
        after = _get(network.hub_url, "/beacon/g_variants", COUNT)
        assert time.monotonic() - started < TIMEOUT + MARGIN
        body = _valid(schemas, after.json(), "count")
        [down] = [node for node in body["info"]["nodes"] if node["country"] == "SE"]
        assert (down["status"], down["id"]) == ("down", sweden.id)
        assert "cannot be reached" in down["reason"]
        assert any("Node SE (SE) is down" in warning for warning in body["info"]["warnings"])
        assert body["responseSummary"]["numTotalResults"] == 20


def _slow_beacon() -> FastAPI:
    app = FastAPI()

    @app.api_route("/beacon/{path:path}", methods=["GET", "POST"])
    async def slow(path: str) -> JSONResponse:
        await asyncio.sleep(TIMEOUT * 3)
        return JSONResponse({})

    return app


def test_a_late_node_is_reported_late(network: Network, schemas: BeaconSchemas) -> None:
    with fake_member(network, "LU", _slow_beacon()) as late:
        started = time.monotonic()
        answer = _get(network.hub_url, "/beacon/g_variants", COUNT)
        took = time.monotonic() - started
    assert TIMEOUT - 0.1 < took < TIMEOUT + MARGIN
    body = _valid(schemas, answer.json(), "count")
    [slow] = [node for node in body["info"]["nodes"] if node["id"] == late]
    assert (slow["status"], slow["reason"]) == ("late", f"no answer within {TIMEOUT:g} s")
    assert body["responseSummary"]["numTotalResults"] == 20


# -- every call the hub fans out is signed, and nodes check it ------------------------------------


def _hub_nonces(node: Node) -> int:
    engine = make_engine(node.settings.database_url)
    try:
        with session_scope(engine) as session:
            return len(
                session.scalars(
                    select(FederationNonce).where(FederationNonce.keyid == HUB_ID)
                ).all()
            )
    finally:
        engine.dispose()


def test_the_hub_signs_its_calls_and_a_forged_hub_call_is_refused(network: Network) -> None:
    node = network.nodes["BE"]
    before = _hub_nonces(node)
    assert _get(network.hub_url, "/beacon/g_variants", VARIANT).status_code == 200
    assert _hub_nonces(node) > before  # the node verified a signature by the pinned hub key

    forger = httpx.Client(auth=SignedAuth(Ed25519PrivateKey.generate(), HUB_ID), timeout=30)
    with forger:
        forged = forger.get(f"{node.url}/beacon/g_variants", params=VARIANT)
    assert forged.status_code == 401
    assert "signature" in forged.json()["detail"]
    assert "resultSets" not in forged.text  # refused before the beacon answered
    assert _get(node.url, "/beacon/g_variants", VARIANT).status_code == 200  # unsigned: public
