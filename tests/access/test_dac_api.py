"""The /access and /dac routes: tokens and roles, the requester sees the decision, DAC members
decide only for their DACs, errors as statuses with one-line details."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dac_support import (
    BOB,
    FITS_EPI,
    JANE,
    MARC,
    OPS,
    Catalogue,
    audit_actions,
    bearer,
    build_catalogue,
    dac_app,
    node_settings,
)

from genofed.config import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return node_settings(tmp_path)


@pytest.fixture
def catalogue(db_engine: Engine) -> Catalogue:
    return build_catalogue(db_engine)


@pytest.fixture
def client(db_engine: Engine, settings: Settings, catalogue: Catalogue) -> TestClient:
    return TestClient(dac_app(settings, db_engine))


@pytest.fixture
def users(settings: Settings) -> dict[str, dict[str, str]]:
    """Authorization headers by user, each with the role they act in."""
    return {
        BOB: bearer(settings, BOB, "requester"),
        JANE: bearer(settings, JANE, "dac_member"),
        MARC: bearer(settings, MARC, "dac_member"),
        OPS: bearer(settings, OPS, "operator"),
    }


def new_request(
    client: TestClient, headers: dict[str, str], datasets: list[str], **changes: Any
) -> dict[str, Any]:
    body = {
        "datasets": datasets,
        "title": "Epilepsy genetics",
        "purpose": FITS_EPI,
        "duration_days": 365,
    } | changes
    created = client.post("/access/requests", json=body, headers=headers)
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


def test_a_request_from_application_to_revocation(
    client: TestClient, catalogue: Catalogue, users: dict[str, dict[str, str]]
) -> None:
    created = new_request(client, users[BOB], [catalogue.epi, catalogue.open])
    epi, open_ = created["items"]
    assert (epi["dataset"], epi["dac"], epi["status"]) == (
        catalogue.epi,
        catalogue.uzl,
        "submitted",
    )
    assert epi["mismatches"] == [] and epi["grant"] is None
    assert created["purpose"]["modifiers"] == ["IRB", "PUB", "NPU", "GS=BE"]

    queue = client.get("/dac/requests", params={"status": "submitted"}, headers=users[JANE]).json()
    assert queue["dacs"] == [catalogue.uzl]
    [waiting] = queue["items"]
    assert (waiting["id"], waiting["requester"], waiting["duration_days"]) == (epi["id"], BOB, 365)
    assert client.get("/dac/requests", headers=users[MARC]).json()["items"][0]["id"] == open_["id"]

    approved = client.post(
        f"/dac/requests/{epi['id']}/approve",
        json={"days": 90, "comment": "Welcome"},
        headers=users[JANE],
    )
    assert approved.status_code == 200, approved.text
    grant = approved.json()["grant"]
    assert (grant["subject"], grant["granted_by"], grant["active"]) == (BOB, JANE, True)
    assert grant["conditions"][0] == "DS=MONDO:0005027"
    refused = client.post(
        f"/dac/requests/{open_['id']}/reject",
        json={"comment": "Not this panel"},
        headers=users[MARC],
    )
    assert refused.status_code == 200 and refused.json()["status"] == "rejected"

    # The requester sees both decisions, with the DAC's comments and the grant.
    [mine] = client.get("/access/requests", headers=users[BOB]).json()
    seen = {item["dataset"]: item for item in mine["items"]}
    assert seen[catalogue.epi]["status"] == "approved"
    assert seen[catalogue.epi]["comment"] == "Welcome"
    assert seen[catalogue.epi]["grant"]["id"] == grant["id"]
    assert (seen[catalogue.open]["status"], seen[catalogue.open]["comment"]) == (
        "rejected",
        "Not this panel",
    )
    shown = client.get(f"/access/requests/{created['id']}", headers=users[BOB]).json()
    assert [event["status"] for event in shown["items"][0]["events"]] == ["submitted", "approved"]
    assert shown["items"][0]["events"][1]["actor"] == JANE
    # A DAC member sees the request's items of their own DACs only.
    seen_by_marc = client.get(f"/access/requests/{created['id']}", headers=users[MARC]).json()
    assert [item["dataset"] for item in seen_by_marc["items"]] == [catalogue.open]

    assert [g["id"] for g in client.get("/dac/grants", headers=users[JANE]).json()] == [grant["id"]]
    assert client.get("/dac/grants", headers=users[MARC]).json() == []
    revoked = client.post(
        f"/dac/grants/{grant['id']}/revoke", json={"comment": "Breach"}, headers=users[JANE]
    )
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["revoked_by"], revoked.json()["active"]) == (JANE, False)
    assert client.get("/dac/grants", params={"active": True}, headers=users[OPS]).json() == []
    after = client.get(f"/access/requests/{created['id']}", headers=users[BOB]).json()
    assert after["items"][0]["status"] == "revoked"


def test_roles(client: TestClient, catalogue: Catalogue, users: dict[str, dict[str, str]]) -> None:
    created = new_request(client, users[BOB], [catalogue.epi])
    item = created["items"][0]["id"]
    assert client.get("/access/requests").status_code == 401
    denied = {
        ("POST", "/access/requests", JANE): "requesting access to datasets needs the requester",
        ("GET", "/dac/requests", BOB): "deciding on access requests needs the dac_member role",
        ("POST", f"/dac/requests/{item}/approve", OPS): "needs the dac_member role",
        ("GET", "/dac/grants", BOB): "managing grants needs the dac_member or operator role",
        ("POST", f"/dac/{catalogue.uzl}/members", JANE): "managing DAC members needs the operator",
        ("DELETE", f"/dac/{catalogue.uzl}/members/{JANE}", JANE): "needs the operator role",
    }
    for (method, path, user), said in denied.items():
        answer = client.request(method, path, json={}, headers=users[user])
        assert answer.status_code == 403, (method, path)
        assert said in answer.json()["detail"]


def test_a_member_of_another_dac_cannot_decide(
    client: TestClient,
    catalogue: Catalogue,
    users: dict[str, dict[str, str]],
    db_engine: Engine,
) -> None:
    item = new_request(client, users[BOB], [catalogue.epi])["items"][0]["id"]
    for action, body in (("approve", {}), ("reject", {"comment": "no"})):
        refused = client.post(f"/dac/requests/{item}/{action}", json=body, headers=users[MARC])
        assert refused.status_code == 403
        assert (
            f"decided by DAC {catalogue.uzl}, which you are not a member"
            in refused.json()["detail"]
        )
    assert client.get(f"/dac/requests/{item}", headers=users[MARC]).status_code == 404
    request_id = client.get("/access/requests", headers=users[BOB]).json()[0]["id"]
    assert client.get(f"/access/requests/{request_id}", headers=users[MARC]).status_code == 404
    # The refusals are in the audit log, although nothing else of them was kept.
    assert audit_actions(db_engine)[-2:] == [
        (MARC, "dac.approved", "denied"),
        (MARC, "dac.rejected", "denied"),
    ]
    assert client.get(f"/dac/requests/{item}", headers=users[JANE]).json()["status"] == "submitted"


def test_statuses_of_refused_steps(
    client: TestClient, catalogue: Catalogue, users: dict[str, dict[str, str]]
) -> None:
    created = new_request(client, users[BOB], [catalogue.hmb], purpose={"permission": "HMB"})
    item = created["items"][0]
    assert item["mismatches"] == [
        "the dataset requires non-commercial use only (NCU): add NCU to accept it"
    ]
    cases: list[tuple[str, str, dict[str, Any], dict[str, str], int, str]] = [
        (
            "POST",
            f"/dac/requests/{item['id']}/approve",
            {},
            users[JANE],
            409,
            "--acknowledge-mismatches",
        ),
        ("POST", f"/dac/requests/{item['id']}/reject", {}, users[JANE], 422, "give a comment"),
        ("POST", "/dac/requests/999/approve", {}, users[JANE], 404, "no request item 999"),
        ("GET", "/dac/requests?status=maybe", {}, users[JANE], 422, "unknown status 'maybe'"),
        (
            "POST",
            "/access/requests",
            {"datasets": [catalogue.hmb], "title": "T", "purpose": FITS_EPI, "duration_days": 5},
            users[BOB],
            409,
            "you already requested dataset",
        ),
        (
            "POST",
            "/access/requests",
            {"datasets": [catalogue.draft], "title": "T", "purpose": FITS_EPI, "duration_days": 5},
            users[BOB],
            409,
            "is not released",
        ),
        (
            "POST",
            "/access/requests",
            {"datasets": ["NOPE"], "title": "T", "purpose": FITS_EPI, "duration_days": 5},
            users[BOB],
            404,
            "no dataset 'NOPE' to request",
        ),
        (
            "POST",
            "/access/requests",
            {
                "datasets": [catalogue.open],
                "title": "T",
                "purpose": {"permission": "X"},
                "duration_days": 5,
            },
            users[BOB],
            422,
            "the purpose is not valid: permission: unknown DUO code",
        ),
        (
            "PATCH",
            f"/access/requests/{created['id']}/items/{item['id']}",
            {"title": "New"},
            users[BOB],
            409,
            "only an item whose DAC requested changes can be updated",
        ),
        ("POST", "/dac/grants/nope/revoke", {"comment": "x"}, users[JANE], 404, "no grant 'nope'"),
    ]
    for method, path, body, headers, status, said in cases:
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code == status, (path, answer.text)
        assert said in answer.json()["detail"], path
    approved = client.post(
        f"/dac/requests/{item['id']}/approve",
        json={"acknowledge_mismatches": True},
        headers=users[JANE],
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    again = client.post(
        f"/dac/requests/{item['id']}/approve",
        json={"acknowledge_mismatches": True},
        headers=users[JANE],
    )
    assert again.status_code == 409 and "already approved" in again.json()["detail"]


def test_changes_requested_update_and_withdraw(
    client: TestClient, catalogue: Catalogue, users: dict[str, dict[str, str]]
) -> None:
    created = new_request(client, users[BOB], [catalogue.epi, catalogue.open])
    epi, open_ = (item["id"] for item in created["items"])
    sent = client.post(
        f"/dac/requests/{epi}/request-changes",
        json={"comment": "Name the centres"},
        headers=users[JANE],
    )
    assert sent.json()["status"] == "changes_requested"
    updated = client.patch(
        f"/access/requests/{created['id']}/items/{epi}",
        json={"duration_days": 100, "comment": "UZ Leuven only"},
        headers=users[BOB],
    )
    assert updated.status_code == 200, updated.text
    moved = updated.json()
    assert moved["id"] != created["id"] and moved["duration_days"] == 100
    assert [item["id"] for item in moved["items"]] == [epi]
    assert moved["items"][0]["status"] == "submitted"
    withdrawn = client.post(f"/access/requests/{created['id']}/withdraw", headers=users[BOB])
    assert withdrawn.status_code == 200, withdrawn.text
    assert [(item["id"], item["status"]) for item in withdrawn.json()["items"]] == [
        (open_, "withdrawn")
    ]
    one = client.post(
        f"/access/requests/{moved['id']}/withdraw",
        json={"item": epi, "comment": "Project cancelled"},
        headers=users[BOB],
    )
    assert one.json()["items"][0]["events"][-1]["comment"] == "Project cancelled"
    others = client.post(f"/access/requests/{moved['id']}/withdraw", headers=users[MARC])
    assert others.status_code == 403  # MARC's token has no requester role


def test_operators_manage_members(
    client: TestClient, catalogue: Catalogue, users: dict[str, dict[str, str]]
) -> None:
    added = client.post(
        "/dac/UZL-DAC/members", json={"subject": "anna@uzleuven.be"}, headers=users[OPS]
    )
    assert added.status_code == 201, added.text
    assert added.json() == {"dac": catalogue.uzl, "members": ["anna@uzleuven.be", JANE]}
    twice = client.post(f"/dac/{catalogue.uzl}/members", json={"subject": JANE}, headers=users[OPS])
    assert twice.status_code == 409
    listed = client.get(f"/dac/{catalogue.uzl}/members", headers=users[JANE]).json()
    assert listed["members"] == ["anna@uzleuven.be", JANE]
    removed = client.delete(f"/dac/{catalogue.uzl}/members/{JANE}", headers=users[OPS])
    assert removed.json()["members"] == ["anna@uzleuven.be"]
    gone = client.delete(f"/dac/{catalogue.uzl}/members/{JANE}", headers=users[OPS])
    assert gone.status_code == 404
    unknown = client.post("/dac/NOPE/members", json={"subject": JANE}, headers=users[OPS])
    assert (
        unknown.status_code == 404
        and "no dac with accession or alias 'NOPE'" in unknown.json()["detail"]
    )
    # Off the DAC, JANE's queue is empty.
    assert client.get("/dac/requests", headers=users[JANE]).json() == {"dacs": [], "items": []}
