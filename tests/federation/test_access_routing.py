"""Access across borders: a Belgian requester applies once at the hub for datasets of NL and FI;
each part goes to its node's DAC, NL's approves, and the requester sees both together; the data
and the visas then come from NL, and FI verifies NL's visas through the hub's keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from federation_support import make_node
from network_support import Network, fake_member, federation, seat_on_dac
from typer.testing import CliRunner

from genofed.access.tokens import issue_token
from genofed.cli.cross_border import app as cross_border_app

PURPOSE = {
    "permission": "DS",
    "diseases": ["MONDO:0005027"],
    "modifiers": ["IRB", "PUB", "NPU"],
    "country": "BE",
}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with federation(tmp_path_factory.mktemp("access"), {}) as built:  # all controlled
        yield built


def _apply(network: Network, datasets: list[str], headers: Any) -> httpx.Response:
    body = {"datasets": datasets, "title": "Epilepsy genetics", "purpose": PURPOSE}
    return httpx.post(
        f"{network.hub_url}/access/requests",
        json={**body, "duration_days": 365},
        headers=headers,
        timeout=30,
    )


def _approve_all(network: Network, country: str) -> None:
    """The node's DAC approves every submitted item."""
    node = network.nodes[country]
    seat_on_dac(node.settings, "dac-chair")
    chair = node.bearer("dac-chair", "dac_member")
    queue = httpx.get(f"{node.url}/dac/requests", params={"status": "submitted"}, headers=chair)
    assert queue.status_code == 200, queue.text
    for item in queue.json()["items"]:
        decided = httpx.post(
            f"{node.url}/dac/requests/{item['id']}/approve",
            json={"comment": "fine", "acknowledge_mismatches": True},
            headers=chair,
        )
        assert decided.status_code == 200, decided.text


def test_one_application_parts_per_node_decisions_seen_together(network: Network) -> None:
    nl, fi = network.nodes["NL"], network.nodes["FI"]
    alice = network.nodes["BE"].bearer("alice")
    created = _apply(network, [nl.dataset, fi.dataset], alice)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["complete"] is True
    parts = {part["node"]["country"]: part for part in body["parts"]}
    assert {country: part["datasets"] for country, part in parts.items()} == {
        "NL": [nl.dataset],
        "FI": [fi.dataset],
    }
    requester = network.subject("BE", "alice")
    for part in parts.values():
        assert part["status"] == "submitted"
        assert part["request"]["requester"] == requester  # as the other nodes know her
        assert [item["status"] for item in part["request"]["items"]] == ["submitted"]

    _approve_all(network, "NL")
    seen = httpx.get(f"{network.hub_url}/access/requests", headers=alice, timeout=30)
    assert seen.status_code == 200, seen.text
    statuses = {
        (request["node"]["country"], item["dataset"]): item["status"]
        for request in seen.json()["requests"]
        for item in request["items"]
    }
    assert statuses == {("NL", nl.dataset): "approved", ("FI", fi.dataset): "submitted"}
    assert {node["status"] for node in seen.json()["nodes"]} == {"answered"}

    # the data comes from the node that holds it, for her token of her own node
    readable = httpx.get(f"{nl.url}/data/datasets", headers=alice).json()
    assert [d["accession"] for d in readable["datasets"]] == [nl.dataset]


def test_visas_of_the_holder_verify_at_other_members(network: Network, tmp_path: Path) -> None:
    nl, fi = network.nodes["NL"], network.nodes["FI"]
    alice = network.nodes["BE"].bearer("alice")
    if not httpx.get(f"{nl.url}/data/datasets", headers=alice).json()["datasets"]:
        _apply(network, [nl.dataset], alice)
        _approve_all(network, "NL")
    subject = network.subject("BE", "alice")
    issued = httpx.get(f"{nl.url}/permissions/{subject}", headers=alice)
    assert issued.status_code == 200, issued.text
    [visa] = issued.json()["ga4gh_visa_v1"]
    at_fi = httpx.get(f"{fi.url}/data/datasets", headers={**alice, "X-GA4GH-Passport": visa})
    assert at_fi.json() == {"datasets": [], "refused_visas": []}  # verified; opens nothing at FI

    outsider = make_node(tmp_path / "de", "DE")
    forged = issue_token(outsider, "alice", ["requester"])  # any JWT of a non-member
    refused = httpx.get(f"{fi.url}/data/datasets", headers={**alice, "X-GA4GH-Passport": forged})
    [reason] = refused.json()["refused_visas"]
    assert "allow-list" in reason


def _failing_node() -> FastAPI:
    app = FastAPI()

    @app.post("/access/requests")
    async def down() -> JSONResponse:
        return JSONResponse({"detail": "the node cannot serve this request now"}, 503)

    return app


def test_a_part_that_fails_leaves_the_others_and_says_so(network: Network) -> None:
    nl = network.nodes["NL"]
    dave = network.nodes["BE"].bearer("dave")
    with fake_member(network, "LU", _failing_node(), datasets=("GFLUD00000000001X",)):
        partial = _apply(network, [nl.dataset, "GFLUD00000000001X"], dave)
    assert partial.status_code == 207, partial.text
    parts = {part["node"]["country"]: part for part in partial.json()["parts"]}
    assert partial.json()["complete"] is False
    assert parts["NL"]["status"] == "submitted"
    assert (parts["LU"]["status"], parts["LU"]["httpStatus"]) == ("error", 503)
    assert "cannot serve" in parts["LU"]["detail"]


def test_refusals(network: Network, tmp_path: Path) -> None:
    nl = network.nodes["NL"]
    alice = network.nodes["BE"].bearer("alice")
    assert _apply(network, [nl.dataset], {}).status_code == 401
    unknown = _apply(network, [nl.dataset, "GFXXD00000000009Z"], alice)
    assert unknown.status_code == 404
    assert "GFXXD00000000009Z" in unknown.json()["detail"]
    outsider = make_node(tmp_path / "de", "DE")
    stranger = {"Authorization": f"Bearer {issue_token(outsider, 'eve', ['requester'])}"}
    refused = _apply(network, [nl.dataset], stranger)
    assert refused.status_code == 401
    [part] = refused.json()["parts"]
    assert "does not trust" in part["detail"]


def test_the_commands(network: Network) -> None:
    nl, fi = network.nodes["NL"], network.nodes["FI"]
    token = issue_token(network.nodes["BE"].settings, "carol", ["requester"])
    runner = CliRunner()
    common = ["--hub", network.hub_url, "--token", token]
    sent = runner.invoke(
        cross_border_app,
        ["request", nl.dataset, fi.dataset, "--title", "Seizures", "--permission", "DS",
         "--disease", "MONDO:0005027", "--modifier", "IRB", "--days", "90", *common],
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    assert sorted(line.split("\t")[0] for line in sent.stdout.splitlines()) == ["FI", "NL"]
    shown = runner.invoke(cross_border_app, ["status", *common])
    assert shown.exit_code == 0, shown.output
    rows = [line.split("\t") for line in shown.stdout.splitlines()]
    assert rows[0] == ["node", "request", "item", "dataset", "status", "comment"]
    assert sorted((row[0], row[3], row[4]) for row in rows[1:]) == [
        ("FI", fi.dataset, "submitted"),
        ("NL", nl.dataset, "submitted"),
    ]
