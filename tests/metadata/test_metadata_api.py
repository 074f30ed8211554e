"""The /metadata and /datasets routes: tokens and roles, problems as 422, the dataset life cycle."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from metadata_support import (
    COUNTRY,
    SAMPLES,
    SUBMITTER,
    add_files,
    as_document,
    cohort,
    cohort_files,
    count_objects,
    session_of,
)
from sqlalchemy import Engine

from genofed.access.tokens import ensure_signing_key, issue_token
from genofed.config import Settings
from genofed.metadata.accessions import Accession
from genofed.metadata.api import router


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    made = Settings(home=tmp_path, country=COUNTRY)
    ensure_signing_key(made)
    return made


@pytest.fixture
def client(db_engine: Engine, settings: Settings) -> TestClient:
    """The routes as the node app mounts them: settings and the node's engine in app.state."""
    app = FastAPI()
    app.include_router(router)
    app.state.settings = settings
    app.state.node = SimpleNamespace(engine=db_engine)
    return TestClient(app)


def _as(settings: Settings, user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, user, list(roles))}"}


def test_a_cohort_is_submitted_released_and_seen_by_others(
    client: TestClient, settings: Settings, db_engine: Engine
) -> None:
    alice = _as(settings, SUBMITTER, "submitter")
    bob = _as(settings, "bob@ulb.be", "requester")
    with session_of(db_engine) as session:
        files = cohort_files(session)
    document = as_document(cohort(files))

    checked = client.post("/metadata/validate", json=document, headers=alice)
    assert checked.status_code == 200 and checked.json() == {"problems": []}
    stored = client.post("/metadata", json=document, headers=alice)
    assert stored.status_code == 201, stored.text
    dataset = stored.json()["accessions"]["dataset"]["EPI-BE-WGS"]
    assert dataset == str(Accession(COUNTRY, "dataset", 1))

    assert client.get("/datasets", headers=bob).json() == []  # a draft is not there for bob
    assert client.get(f"/datasets/{dataset}", headers=bob).status_code == 404
    assert client.post(f"/datasets/{dataset}/release", headers=bob).status_code == 403

    released = client.post("/datasets/EPI-BE-WGS/release", headers=alice)
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "released"
    assert len(released.json()["files"]) == 2 * SAMPLES + 2

    (listed,) = client.get("/datasets", params={"released": True}, headers=bob).json()
    assert (listed["accession"], listed["files"]) == (dataset, 2 * SAMPLES + 2)
    shown = client.get(f"/datasets/{dataset}", headers=bob).json()
    assert shown["policy"] == stored.json()["accessions"]["policy"]["EPI-POLICY"]


def test_an_invalid_submission_is_422_with_every_problem(
    client: TestClient, settings: Settings, db_engine: Engine
) -> None:
    alice = _as(settings, SUBMITTER, "submitter")
    document = {
        "samples": [{"alias": "S1", "sex": "F", "phenotypes": ["HP:1"]}],
        "policies": [{"alias": "P", "title": "T", "dac": "nope", "permission": "DS"}],
    }
    refused = client.post("/metadata", json=document, headers=alice)
    assert refused.status_code == 422
    body = refused.json()
    assert body["detail"].startswith("the submission has 4 problem(s) and nothing was stored")
    assert [(p["sheet"], p["row"], p["column"]) for p in body["problems"]] == [
        ("samples", 1, "sex"),
        ("samples", 1, "phenotypes"),
        ("policies", 1, "diseases"),
        ("policies", 1, "dac"),
    ]
    with session_of(db_engine) as session:
        assert count_objects(session)["objects"] == 0
    validated = client.post("/metadata/validate", json=document, headers=alice).json()
    assert validated["problems"] == body["problems"]


def test_tokens_and_roles(client: TestClient, settings: Settings) -> None:
    no_token = client.get("/datasets")
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == "Bearer"
    forged = client.get("/datasets", headers={"Authorization": "Bearer a.b.c"})
    assert forged.status_code == 401
    assert "malformed" in forged.json()["detail"]
    requester = _as(settings, "bob@ulb.be", "requester")
    denied = client.post("/metadata", json={}, headers=requester)
    assert denied.status_code == 403
    assert "submitter or operator role" in denied.json()["detail"]


def test_dataset_routes_keep_the_rules_and_answer_with_statuses(
    client: TestClient, settings: Settings, db_engine: Engine
) -> None:
    alice = _as(settings, SUBMITTER, "submitter")
    operator = _as(settings, "ops@node.be", "operator")
    mallory = _as(settings, "mallory@x.be", "submitter")
    policy = {
        "dacs": [{"alias": "DAC", "title": "DAC", "contacts": ["dac@node.be"]}],
        "policies": [{"alias": "POL", "title": "Open", "dac": "DAC", "permission": "GRU"}],
    }
    assert client.post("/metadata", json=policy, headers=alice).status_code == 201
    with session_of(db_engine) as session:
        ready = [str(f.accession) for f in add_files(session, 2)]

    created = client.post(
        "/datasets", json={"alias": "D", "title": "T", "policy": "POL"}, headers=alice
    )
    assert created.status_code == 201, created.text
    dataset = created.json()["accession"]
    again = client.post("/datasets", json={"alias": "D", "title": "T"}, headers=alice)
    assert again.status_code == 409

    assert client.post(f"/datasets/{dataset}/release", headers=alice).status_code == 409
    files = {"files": ready}
    theirs = client.post(f"/datasets/{dataset}/files", json=files, headers=mallory)
    assert theirs.status_code == 404  # mallory has no dataset D: alice's is not for her to fill
    mistyped = ready[0][:-1] + ("0" if ready[0][-1] != "0" else "1")
    bad = client.post(f"/datasets/{dataset}/files", json={"files": [mistyped]}, headers=alice)
    assert bad.status_code == 409 and "wrong check character" in bad.json()["detail"]
    added = client.post(f"/datasets/{dataset}/files", json=files, headers=alice)
    assert added.json() == {"added": ready}

    # an operator releases and deprecates on the submitter's behalf
    assert client.post(f"/datasets/{dataset}/release", headers=operator).status_code == 200
    deprecated = client.post(f"/datasets/{dataset}/deprecate", headers=operator)
    assert deprecated.json()["status"] == "deprecated"
    assert client.get("/datasets", params={"released": True}, headers=alice).json() == []
