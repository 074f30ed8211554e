"""The entry types over HTTP: granularity by security level and caller (the guard decides),
filters, pagination, result sets, lookups between entry types, collections, filtering terms,
handovers, errors and the audit of every dataset answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    SAMPLES,
    beacon_app,
    bearer,
    grant,
    node_settings,
    release_cohort,
    set_security,
)
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from genofed import db
from genofed.access import audit
from genofed.beacon.entities import catalogue
from genofed.config import BeaconSettings, Settings

READER = "reader@ulb.be"
OTHER = "other@ulb.be"


@dataclass
class Node:
    client: TestClient
    settings: Settings
    engine: Engine
    dataset: str

    def get(self, path: str, who: str | None = None, **params: Any) -> dict[str, Any]:
        response = self.client.get(f"/beacon{path}", params=params, headers=self.auth(who))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def post(self, path: str, query: dict[str, Any], who: str | None = None) -> Any:
        body = {"meta": {"apiVersion": "v2.0.0"}, "query": query}
        return self.client.post(f"/beacon{path}", json=body, headers=self.auth(who))

    def auth(self, who: str | None) -> dict[str, str]:
        return bearer(self.settings, who) if who else {}

    def ids(self, entry: Any) -> list[str]:
        with db.session_scope(self.engine) as session:
            return list(catalogue(session).ids(entry))


@pytest.fixture
def node(db_engine: Engine, tmp_path: Path) -> Iterator[Node]:
    settings = node_settings(tmp_path)
    dataset = release_cohort(db_engine)
    grant(db_engine, READER, dataset)
    with TestClient(beacon_app(settings, db_engine)) as client:
        yield Node(client, settings, db_engine, dataset)


def granularity(body: dict[str, Any]) -> str:
    return str(body["meta"]["returnedGranularity"])


# -- who gets what ------------------------------------------------------------------------------


GIVEN = [  # (security level, caller, granularity given for "record")
    ("public", None, "count"),
    ("public", OTHER, "count"),
    ("registered", OTHER, "count"),
    ("controlled", OTHER, "boolean"),
    ("controlled", READER, "record"),
]


def test_granularity_follows_the_security_level_and_the_visas(node: Node) -> None:
    for level, who, expected in GIVEN:
        set_security(node.engine, node.dataset, level)
        body = node.get("/individuals", who, requestedGranularity="record")
        assert granularity(body) == expected, (level, who)
        assert body["responseSummary"]["exists"] is True
        if expected != "boolean":
            assert body["responseSummary"]["numTotalResults"] == SAMPLES
        if expected == "record":
            (result_set,) = body["response"]["resultSets"]
            assert result_set["resultsCount"] == SAMPLES and len(result_set["results"]) == 10
        else:
            (dataset,) = body["info"]["datasets"]
            assert dataset["id"] == node.dataset and "note" in dataset  # why less than asked


def test_a_login_is_needed_beyond_public_data(node: Node) -> None:
    set_security(node.engine, node.dataset, "registered")
    refused = node.client.get("/beacon/individuals")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert "log in" in refused.json()["error"]["errorMessage"]
    with db.session_scope(node.engine) as session:  # the refusal is in the audit log
        (entry,) = audit.query(session, action="beacon.query", dataset=node.dataset)
        assert entry.outcome == "denied"


def test_open_data_without_the_guard_gives_records_to_anyone(node: Node) -> None:
    set_security(node.engine, node.dataset, "public", guard_enabled=False)
    assert granularity(node.get("/biosamples", requestedGranularity="record")) == "record"


def test_small_counts_are_not_disclosed_without_access(node: Node) -> None:
    set_security(node.engine, node.dataset, "public")
    few = node.get("/individuals", filters="HP:0002069", requestedGranularity="count")
    assert few["responseSummary"] == {"exists": False, "numTotalResults": 0}
    assert "datasets" not in few.get("info", {})  # HIT: a set that did not hit is not listed
    shown = node.get(
        "/individuals",
        filters="HP:0002069",
        requestedGranularity="count",
        includeResultsetResponses="MISS",
    )
    (missed,) = shown["info"]["datasets"]
    assert missed["countIsExact"] is False and "fewer than 5" in missed["note"]
    exact = node.get("/individuals", READER, filters="HP:0002069", requestedGranularity="count")
    assert exact["responseSummary"] == {"exists": True, "numTotalResults": 4}


def test_every_answer_is_audited(node: Node) -> None:
    node.get("/runs", READER, requestedGranularity="count")
    with db.session_scope(node.engine) as session:
        (entry,) = audit.query(session, action="beacon.query")
        assert (entry.actor, entry.dataset, entry.outcome) == (READER, node.dataset, "allowed")


# -- filters, pages and result sets -------------------------------------------------------------


def test_filters_over_http(node: Node) -> None:
    def count(*filters: Any, path: str = "/individuals") -> int:
        body = node.post(path, {"filters": list(filters), "requestedGranularity": "count"}, READER)
        assert body.status_code == 200, body.text
        return int(body.json()["responseSummary"]["numTotalResults"])

    assert count("HP:0001250") == 12
    assert count({"id": "HP:0001250", "includeDescendantTerms": False}) == 8
    assert count({"id": "age", "operator": ">=", "value": "P30Y"}, "NCIT:C16576") == 4
    assert count("sex=male", path="/biosamples") == SAMPLES // 4
    assert count("libraryStrategy=WGS", "ICD10:G40", path="/runs") == 8
    assert count("DUO:0000042") == 0  # no dataset under general research use


def test_pages_of_records(node: Node) -> None:
    everyone = node.ids("individual")
    body = node.get("/individuals", READER, requestedGranularity="record", limit=3, skip=2)
    (result_set,) = body["response"]["resultSets"]
    assert [r["id"] for r in result_set["results"]] == everyone[6:9]
    assert result_set["resultsCount"] == SAMPLES
    assert body["meta"]["receivedRequestSummary"]["pagination"] == {"skip": 2, "limit": 3}
    last = node.get("/individuals", READER, requestedGranularity="record", limit=0)
    assert len(last["response"]["resultSets"][0]["results"]) == SAMPLES


def test_result_sets_by_include(node: Node) -> None:
    def sets(include: str, *filters: str) -> int:
        body = node.post(
            "/biosamples",
            {
                "requestedGranularity": "record",
                "includeResultsetResponses": include,
                "filters": list(filters),
            },
            READER,
        ).json()
        return len(body["response"]["resultSets"])

    assert (sets("HIT"), sets("MISS"), sets("ALL"), sets("NONE")) == (1, 0, 1, 0)
    assert (sets("HIT", "HP:0000001x"), sets("MISS", "ZZ:1")) == (0, 1)


def test_test_mode_answers_without_data(node: Node) -> None:
    body = node.get("/individuals", READER, testMode="true", requestedGranularity="count")
    assert body["responseSummary"] == {"exists": False, "numTotalResults": 0}
    assert body["meta"]["testMode"] is True


def test_dataset_ids_choose_the_datasets(node: Node) -> None:
    body = node.post(
        "/individuals",
        {"requestParameters": {"datasetIds": [node.dataset]}, "requestedGranularity": "count"},
        READER,
    )
    assert body.json()["responseSummary"]["numTotalResults"] == SAMPLES
    unknown = node.post("/individuals", {"requestParameters": {"datasetIds": ["GFBED0"]}})
    assert unknown.status_code == 400 and "datasetIds" in unknown.json()["error"]["errorMessage"]


# -- lookups ------------------------------------------------------------------------------------


def records(node: Node, path: str) -> list[dict[str, Any]]:
    body = node.get(path, READER, requestedGranularity="record", limit=0)
    sets = body["response"]["resultSets"]
    return [r for s in sets for r in s["results"]]


def test_lookups_between_entry_types(node: Node) -> None:
    person = node.ids("individual")[0]
    (me,) = records(node, f"/individuals/{person}")
    (sample,) = records(node, f"/individuals/{person}/biosamples")
    assert sample["individualId"] == person and sample["id"] in me["info"]["biosampleIds"]
    (run,) = records(node, f"/biosamples/{sample['id']}/runs")
    assert run["biosampleId"] == sample["id"]
    (analysis,) = records(node, f"/runs/{run['id']}/analyses")
    assert sample["id"] in analysis["info"]["biosampleIds"]
    assert [r["id"] for r in records(node, f"/individuals/{person}/runs")] == [run["id"]]
    assert len(records(node, f"/datasets/{node.dataset}/individuals")) == SAMPLES
    (study,) = node.ids("cohort")
    assert len(records(node, f"/cohorts/{study}/biosamples")) == SAMPLES
    assert records(node, "/individuals/ind-0000000000000000") == []


# -- collections and terms ----------------------------------------------------------------------


def test_datasets_and_cohorts_are_the_public_catalogue(node: Node) -> None:
    (dataset,) = node.get("/datasets")["response"]["collections"]
    assert dataset["id"] == node.dataset
    duo = [term["id"] for term in dataset["dataUseConditions"]["duoDataUse"]]
    assert duo[0] == "DUO:0000007" and "DUO:0000022" in duo
    assert node.get("/datasets", filters="DUO:0000042")["responseSummary"]["exists"] is False
    (cohort,) = node.get("/cohorts")["response"]["collections"]
    assert (cohort["cohortType"], cohort["cohortSize"]) == ("study-defined", SAMPLES)
    assert node.get(f"/cohorts/{cohort['id']}")["responseSummary"]["numTotalResults"] == 1
    people = node.client.get("/beacon/datasets", params={"filters": "HP:0001250"})
    assert people.status_code == 400 and "/individuals" in people.json()["error"]["errorMessage"]


def test_filtering_terms_of_the_beacon_and_of_a_dataset(node: Node) -> None:
    listed = {t["id"] for t in node.get("/filtering_terms")["response"]["filteringTerms"]}
    assert {"HP:0001250", "NCIT:C16576", "DUO:0000007", "age", "population:European"} <= listed
    people = node.get("/individuals/filtering_terms")["response"]["filteringTerms"]
    assert all("individual" in t["scopes"] for t in people)
    own = node.get(f"/datasets/{node.dataset}/filtering_terms")["response"]["filteringTerms"]
    assert {t["id"] for t in own} == listed
    assert all(
        t["type"] == "alphanumeric"
        for t in node.get("/datasets/nothing/filtering_terms")["response"]["filteringTerms"]
    )


# -- handovers ----------------------------------------------------------------------------------


def test_readers_get_the_files_others_the_way_to_apply(node: Node) -> None:
    read = node.get("/biosamples", READER, requestedGranularity="record")
    (handover,) = read["response"]["resultSets"][0]["resultsHandovers"]
    assert handover["url"].endswith(f"/data/datasets/{node.dataset}/files")
    assert "beaconHandovers" not in read
    other = node.get("/biosamples", OTHER)
    (apply,) = other["beaconHandovers"]
    assert apply["url"].endswith("/access/requests") and node.dataset in apply["note"]


# -- errors -------------------------------------------------------------------------------------


BAD = [  # (method, path, what is sent, words of the message)
    ("GET", "/individuals", {"limt": "5"}, "limt"),
    ("GET", "/individuals", {"requestedGranularity": "all"}, "requestedGranularity"),
    ("POST", "/individuals", b"{not json", "not JSON"),
    ("POST", "/runs", {"query": {"filters": [{"id": "age", "operator": "~"}]}}, "operator"),
]


def test_bad_requests_are_beacon_errors(node: Node) -> None:
    for method, path, sent, words in BAD:
        if method == "GET":
            response = node.client.get(f"/beacon{path}", params=sent)
        elif isinstance(sent, bytes):
            response = node.client.post(f"/beacon{path}", content=sent)
        else:
            response = node.client.post(f"/beacon{path}", json=sent)
        assert response.status_code == 400, (path, sent)
        error = response.json()["error"]
        assert error["errorCode"] == 400 and words in error["errorMessage"]
        assert response.json()["meta"]["beaconId"] == "org.genofed.be.beacon"


def test_a_bad_token_is_refused_not_taken_for_anonymous(node: Node) -> None:
    response = node.client.get("/beacon/individuals", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json()["error"]["errorCode"] == 401


def test_refused_visas_are_reported(node: Node) -> None:
    set_security(node.engine, node.dataset, "public")
    headers = {**node.auth(OTHER), "X-GA4GH-Passport": "not-a-jwt"}
    body = node.client.get("/beacon/individuals", headers=headers).json()
    assert any("visa refused" in w for w in body["info"]["warnings"])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "filters",
                "skip",
                "limit",
                "requestedGranularity",
                "includeResultsetResponses",
                "testMode",
                "datasetIds",
                "start",
                "x",
            ]
        ),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
        max_size=4,
    )
)
def test_random_queries_never_break_the_beacon(node: Node, params: dict[str, str]) -> None:
    response = node.client.get("/beacon/biosamples", params=params, headers=node.auth(OTHER))
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]["errorMessage"]


# -- the node's beacon settings -----------------------------------------------------------------


class WithBeacon(Settings):
    """Settings with the ``[beacon]`` section the node's Settings are to carry."""

    beacon: BeaconSettings = BeaconSettings()


def test_operator_ontologies_and_settings(node: Node, tmp_path: Path) -> None:
    (tmp_path / "mondo.obo").write_text(
        "ontology: mondo\n\n[Term]\nid: MONDO:0000001\nname: disease\n\n"
        "[Term]\nid: MONDO:0005027\nname: epilepsy\nis_a: MONDO:0000001 ! disease\n"
    )
    chosen = BeaconSettings(
        obo_files=[Path("mondo.obo")], environment="test", default_granularity="count"
    )
    set_security(node.engine, node.dataset, "public")
    before = node.get("/individuals", filters="MONDO:0000001")
    assert before["responseSummary"]["exists"] is False and before["info"]["warnings"]
    node.client.app.state.settings = WithBeacon(  # type: ignore[attr-defined]
        home=tmp_path, country="BE", beacon=chosen
    )
    after = node.get("/individuals", filters="MONDO:0000001")
    assert after["responseSummary"] == {"exists": True, "numTotalResults": SAMPLES}
    assert "warnings" not in after.get("info", {})
    assert node.get("/info")["response"]["environment"] == "test"
    terms = {t["id"]: t for t in node.get("/filtering_terms")["response"]["filteringTerms"]}
    assert terms["MONDO:0005027"]["label"] == "epilepsy"
