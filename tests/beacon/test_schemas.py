"""Every endpoint of the beacon, on GET and POST, for an anonymous, an identified and a
visa-holding caller, validated against the Beacon v2 schemas of ../shared/specs/beacon-v2: the
framework response of its kind, and every record against its entry type's default schema."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    BeaconSchemas,
    beacon_app,
    bearer,
    grant,
    load_cohort_variants,
    node_settings,
    release_cohort,
    set_security,
)
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from genofed import db
from genofed.beacon.api import router
from genofed.beacon.entities import catalogue
from genofed.beacon.framework import BY_PATH
from genofed.config import Settings

READER = "reader@ulb.be"
COLLECTION_PATHS = ("datasets", "cohorts")
INFO = {"", "/", "/info"}
VARIANT = "GRCh38:1:1000:A:G"
REGION = {"referenceName": "1", "start": [0], "end": [10_000]}


@dataclass
class Node:
    client: TestClient
    settings: Settings
    engine: Engine
    dataset: str
    ids: dict[str, str]  # a record id per entry path


@pytest.fixture(scope="module")
def schemas(shared_dir: Path) -> BeaconSchemas:
    return BeaconSchemas(shared_dir / "specs" / "beacon-v2")


@pytest.fixture
def node(db_engine: Engine, tmp_path: Path) -> Iterator[Node]:
    settings = node_settings(tmp_path)
    dataset = release_cohort(db_engine)
    load_cohort_variants(db_engine, dataset)
    grant(db_engine, READER, dataset)
    with db.session_scope(db_engine) as session:
        found = catalogue(session)
        ids = {
            path: found.ids(spec.id)[0] if spec.id != "genomicVariant" else VARIANT
            for path, spec in BY_PATH.items()
        }
    with TestClient(beacon_app(settings, db_engine)) as client:
        yield Node(client, settings, db_engine, dataset, ids)


def routes(node: Node) -> list[str]:
    """The beacon's paths, ``{id}`` filled with a record of the entry type before it."""
    paths = []
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        path = route.path.removeprefix("/beacon")
        if "{id}" in path:
            path = path.replace("{id}", node.ids[path.split("/")[1]])
        paths.append(path)
    return paths


def kind_of(path: str) -> str:
    parts = path.strip("/").split("/")
    if path in INFO:
        return "info"
    if parts[-1] == "filtering_terms":
        return "filtering_terms"
    if parts[0] in ("service-info", "configuration", "map", "entry_types"):
        return parts[0]
    if parts[0] in COLLECTION_PATHS and len(parts) <= 2:
        return "collections"
    return "entries"


def entry_folder(path: str) -> str:
    """The default-schema folder of the records an entries path returns."""
    parts = path.strip("/").split("/")
    return BY_PATH[parts[-1] if len(parts) == 3 else parts[0]].folder


def check(schemas: BeaconSchemas, path: str, response: Any) -> list[str]:
    """Every schema problem of one response, located."""
    body = response.json()
    kind = kind_of(path)
    if response.status_code != 200:
        return schemas.problems(body, "error")
    if kind != "entries":
        problems = schemas.problems(body, kind)
        if kind == "collections":
            folder = BY_PATH[path.strip("/").split("/")[0]].folder
            for item in body["response"]["collections"]:
                problems += schemas.record_problems(item, folder)
        return problems
    problems = schemas.problems(body, body["meta"]["returnedGranularity"])
    for result_set in body.get("response", {}).get("resultSets", []):
        for item in result_set["results"]:
            problems += schemas.record_problems(item, entry_folder(path))
    return problems


def walk(node: Node, schemas: BeaconSchemas, headers: dict[str, str]) -> dict[str, int]:
    """GET and POST every route with ``headers``; returns the status of each, fails on any
    schema problem."""
    statuses: dict[str, int] = {}
    problems: list[str] = []
    for path in routes(node):
        region = REGION if path.endswith("/g_variants") else {}
        for method in ("GET", "POST"):
            if method == "GET":
                params = {"requestedGranularity": "record", **region}
                response = node.client.get(f"/beacon{path}", params=params, headers=headers)
            else:
                query = {"requestedGranularity": "record", "requestParameters": region}
                body = {"meta": {"apiVersion": "v2.0.0"}, "query": query}
                response = node.client.post(f"/beacon{path}", json=body, headers=headers)
            assert response.status_code < 500, (path, response.text)
            statuses[f"{method} {path}"] = response.status_code
            problems += [f"{method} {path} {p}" for p in check(schemas, path, response)]
    assert not problems, "\n".join(problems[:20])
    return statuses


def test_every_endpoint_validates_for_every_caller(node: Node, schemas: BeaconSchemas) -> None:
    set_security(node.engine, node.dataset, "registered", budget_bits=1000)
    anonymous = walk(node, schemas, {})
    identified = walk(node, schemas, bearer(node.settings, "someone@uzleuven.be"))
    reader = walk(node, schemas, bearer(node.settings, READER))
    # anonymous callers get 401 from the registered dataset's entries, the rest answer them
    assert {status for path, status in anonymous.items() if kind_of(_path(path)) == "entries"} == {
        401
    }
    assert set(identified.values()) == set(reader.values()) == {200}
    assert len(reader) == 2 * len(routes(node))


def test_boolean_answers_validate_too(node: Node, schemas: BeaconSchemas) -> None:
    set_security(node.engine, node.dataset, "controlled", budget_bits=1000)
    walk(node, schemas, bearer(node.settings, "someone@uzleuven.be"))


def _path(key: str) -> str:
    return key.split(" ", 1)[1]
