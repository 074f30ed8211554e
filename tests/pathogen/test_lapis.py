"""The LAPIS-style routes: parameters (GET and POST), formats, headers and 400s."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from query_support import ORGANISM, analysis, holds, random_records, record

from genofed.pathogen.lapis import VERSION_HEADER, SequenceSource, lapis_router
from genofed.pathogen.store import PathogenStore
from genofed.pathogen.variant_query import parse_variant_query

PREFIX = "/pathogen/sars-cov-2"
RECORDS = random_records(11, 300)


class Sequences:
    """Sequences made up from the accession, so that a test can tell them apart."""

    def unaligned(self, accession_version: str) -> str:
        return "ACGT" + accession_version[-5:].replace(".", "N")

    def aligned(self, accession_version: str) -> str:
        return "-" + self.unaligned(accession_version)


def accepted_terms(request: Request) -> None:
    if request.headers.get("x-accepted-terms") != "yes":
        raise HTTPException(403, "accept the data-use terms first")


@pytest.fixture(scope="module")
def store() -> PathogenStore:
    store = PathogenStore(ORGANISM)
    store.add_many(RECORDS)
    return store


@pytest.fixture(scope="module")
def client(store: PathogenStore) -> Iterator[TestClient]:
    def sequences(request: Request) -> SequenceSource:
        return Sequences()

    app = FastAPI()
    router = lapis_router(
        lambda request: store, sequences=sequences, sequence_access=accepted_terms
    )
    app.include_router(router, prefix=PREFIX)
    with TestClient(app) as client:
        yield client


def test_aggregated_by_get_and_post(client: TestClient, store: PathogenStore) -> None:
    query = "C241T | S:E484K"
    got = client.get(
        f"{PREFIX}/sample/aggregated",
        params={"fields": "country,host", "variantQuery": query, "collectionDateFrom": "2021"},
    )
    assert got.status_code == 200
    body = got.json()
    assert got.headers[VERSION_HEADER] == body["info"]["dataVersion"] == str(store.data_version)
    expression = parse_variant_query(query)
    chosen = [
        r for r in RECORDS if holds(expression, r) and r.metadata["collection_date"] >= "2021"
    ]
    assert sum(e["count"] for e in body["data"]) == len(chosen)
    assert [(e["country"], e["host"]) for e in body["data"]] == sorted(
        (e["country"], e["host"]) for e in body["data"]
    )
    posted = client.post(
        f"{PREFIX}/sample/aggregated",
        json={"fields": ["country", "host"], "variantQuery": query, "collectionDateFrom": "2021"},
    )
    assert posted.json() == body


def test_equality_repeats_mean_any_of(client: TestClient) -> None:
    got = client.get(
        f"{PREFIX}/sample/aggregated", params=[("country", "Japan"), ("country", "Finland")]
    )
    expected = sum(r.metadata["location"].split(" / ")[1] in ("Japan", "Finland") for r in RECORDS)
    assert got.json()["data"] == [{"count": expected}]
    posted = client.post(f"{PREFIX}/sample/aggregated", json={"country": ["Japan", "Finland"]})
    assert posted.json()["data"] == [{"count": expected}]


@pytest.mark.parametrize("data_format", ["csv", "tsv"])
def test_tables_hold_what_json_holds(client: TestClient, data_format: str) -> None:
    params = {"fields": "country,qcStatus", "orderBy": "-count,country"}
    wanted = client.get(f"{PREFIX}/sample/aggregated", params=params).json()["data"]
    table = client.get(f"{PREFIX}/sample/aggregated", params={**params, "dataFormat": data_format})
    assert table.headers["content-type"].startswith(
        "text/csv" if data_format == "csv" else "text/tab-separated-values"
    )
    assert VERSION_HEADER in table.headers
    rows = list(
        csv.DictReader(io.StringIO(table.text), delimiter="," if data_format == "csv" else "\t")
    )
    assert rows == [{k: str(v) for k, v in e.items()} for e in wanted]
    counts = [e["count"] for e in wanted]
    assert counts == sorted(counts, reverse=True)


def test_mutation_lists_all_must_hold(client: TestClient) -> None:
    params = {"nucleotideMutations": "C241T, 3037.", "aminoAcidMutations": "S:501Y"}
    got = client.get(f"{PREFIX}/sample/details", params={**params, "fields": "accession"})
    expression = parse_variant_query("C241T & 3037. & S:501Y")
    assert {e["accession"] for e in got.json()["data"]} == {
        r.accession for r in RECORDS if holds(expression, r)
    }


def test_mutation_frequencies(client: TestClient) -> None:
    got = client.get(f"{PREFIX}/sample/nucleotideMutations", params={"minProportion": "0.1"})
    data = got.json()["data"]
    assert data and all(e["proportion"] >= 0.1 for e in data)
    everything = client.get(f"{PREFIX}/sample/nucleotideMutations", params={"minProportion": "0"})
    assert len(everything.json()["data"]) > len(data)
    amino = client.post(
        f"{PREFIX}/sample/aminoAcidMutations",
        json={"minProportion": 0.01, "orderBy": [{"field": "count", "type": "descending"}]},
    ).json()["data"]
    assert amino and all(":" in e["mutation"] for e in amino)
    assert [e["count"] for e in amino] == sorted((e["count"] for e in amino), reverse=True)


def test_insertions(client: TestClient) -> None:
    nucleotide = client.get(f"{PREFIX}/sample/nucleotideInsertions").json()["data"]
    assert {e["insertion"] for e in nucleotide} <= {
        "ins_22204:GAGCCAGAA",
        "ins_22204:GAG",
        "ins_28262:AACA",
    }
    amino = client.get(
        f"{PREFIX}/sample/aminoAcidInsertions", params={"aminoAcidInsertions": "ins_S:214:EP?"}
    ).json()["data"]
    assert {e["insertion"] for e in amino} == {"ins_S:214:EPE"}


def test_details_fields_order_and_paging(client: TestClient) -> None:
    got = client.get(
        f"{PREFIX}/sample/details",
        params={
            "fields": "accessionVersion,date",
            "orderBy": "accessionVersion",
            "limit": "4",
            "offset": "2",
        },
    ).json()["data"]
    ordered = sorted(RECORDS, key=lambda r: r.accession_version)[2:6]
    assert got == [
        {"accessionVersion": r.accession_version, "date": r.metadata["collection_date"] or None}
        for r in ordered
    ]


def test_mutations_over_time(client: TestClient) -> None:
    got = client.get(
        f"{PREFIX}/sample/mutationsOverTime",
        params={"mutations": "S:E484K,C241T", "binning": "month", "country": "Belgium"},
    ).json()
    assert {e["mutation"] for e in got["data"]} == {"S:E484K", "C241T"}
    assert all(e["date"][:4] in ("2021", "2022") for e in got["data"])
    assert got["info"]["undated"] > 0


def test_sequences_stream_fasta_behind_the_hosts_guard(client: TestClient) -> None:
    params = {"variantQuery": "S:E484K", "limit": "3"}
    refused = client.get(f"{PREFIX}/sample/unalignedNucleotideSequences", params=params)
    assert refused.status_code == 403
    headers = {"x-accepted-terms": "yes"}
    got = client.get(
        f"{PREFIX}/sample/unalignedNucleotideSequences", params=params, headers=headers
    )
    assert got.status_code == 200 and VERSION_HEADER in got.headers
    names = [line[1:] for line in got.text.splitlines() if line.startswith(">")]
    assert len(names) == 3
    assert got.text.splitlines()[1] == Sequences().unaligned(names[0])
    aligned = client.post(
        f"{PREFIX}/sample/alignedNucleotideSequences", json=params, headers=headers
    )
    assert aligned.text.splitlines()[1] == Sequences().aligned(names[0])


def test_without_a_sequence_source_there_are_no_sequence_routes(store: PathogenStore) -> None:
    app = FastAPI()
    app.include_router(lapis_router(lambda request: store))
    with TestClient(app) as client:
        assert client.get("/sample/unalignedNucleotideSequences").status_code == 404
        info = client.get("/sample/info").json()
        assert info["data"][0]["records"] == len(RECORDS)
        assert "country" in info["data"][0]["fields"]


@pytest.mark.parametrize(
    ("path", "params", "words"),
    [
        ("aggregated", {"contry": "Japan"}, "unknown field 'contry'; did you mean country"),
        ("aggregated", {"fields": "nope"}, "unknown field 'nope'"),
        ("aggregated", {"variantQuery": "C241T & & 1A"}, "variantQuery: at column 9"),
        ("aggregated", {"nucleotideMutations": "S:E484K"}, "list it under aminoAcidMutations"),
        ("aggregated", {"collectionDateFrom": "March"}, "collectionDateFrom='March' is not a date"),
        ("aggregated", {"coverageFrom": "lots"}, "coverageFrom='lots' is not a number"),
        ("aggregated", {"hostFrom": "a"}, "hostFrom: host is neither a date nor a number"),
        ("aggregated", {"dataFormat": "xml"}, "dataFormat 'xml' is not offered"),
        ("aggregated", {"limit": "-1"}, "limit='-1': write a whole number"),
        ("aggregated", {"fields": "country", "orderBy": "host"}, "orderBy 'host'"),
        ("aggregated", {"includeRevoked": "maybe"}, "includeRevoked='maybe'"),
        ("aggregated", {"variantQuery": "G241T"}, "reference base at 241 is C"),
        ("nucleotideMutations", {"minProportion": "2"}, "between 0 and 1"),
        ("mutationsOverTime", {}, "mutations is missing"),
        ("mutationsOverTime", {"mutations": "C241T", "binning": "hour"}, "binning='hour'"),
        ("mutationsOverTime", {"mutations": "C241T", "dateField": "host"}, "not a date field"),
    ],
)
def test_bad_requests_say_what_where_and_how(
    client: TestClient, path: str, params: dict[str, str], words: str
) -> None:
    got = client.get(f"{PREFIX}/sample/{path}", params=params)
    assert got.status_code == 400
    assert VERSION_HEADER in got.headers
    assert words in got.json()["error"]["detail"]


def test_bad_bodies(client: TestClient) -> None:
    not_json = client.post(
        f"{PREFIX}/sample/aggregated", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]["detail"]
    listed = client.post(f"{PREFIX}/sample/aggregated", json=["country"])
    assert listed.status_code == 400 and "JSON object" in listed.json()["error"]["detail"]


def test_data_version_moves_with_the_store() -> None:
    store = PathogenStore(ORGANISM)
    app = FastAPI()
    app.include_router(lapis_router(lambda request: store))
    with TestClient(app) as client:
        before = client.get("/sample/aggregated").headers[VERSION_HEADER]
        store.add(record("V1", analysis(["C241T"])))
        after = client.get("/sample/aggregated")
        assert after.headers[VERSION_HEADER] != before
        assert after.json()["data"] == [{"count": 1}]
