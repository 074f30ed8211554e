"""``/g_variants`` over the cohort's VCF: sequence, range, bracket and gene queries (0-based,
half-open), N wildcards, types and lengths, assemblies, carriers joined with individuals and
filters, lookups both ways, and what the guard lets each caller see."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    beacon_app,
    bearer,
    grant,
    load_cohort_variants,
    node_settings,
    release_cohort,
    set_security,
)
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from genofed import db
from genofed.beacon.entities import catalogue
from genofed.beacon.index import load_genes
from genofed.config import Settings

READER = "reader@ulb.be"
OTHER = "other@ulb.be"
COMMON = "GRCh38:1:1000:A:G"  # 12 carriers: EPI-01..EPI-12
RARE = "GRCh38:1:2000:C:T"  # 1 carrier: EPI-01


@dataclass
class Node:
    client: TestClient
    settings: Settings
    engine: Engine
    dataset: str
    vcf: str

    def ask(self, who: str | None, path: str = "/g_variants", **query: Any) -> Any:
        body = {"meta": {"apiVersion": "v2.0.0"}, "query": query}
        headers = bearer(self.settings, who) if who else {}
        return self.client.post(f"/beacon{path}", json=body, headers=headers)

    def alleles(self, who: str = READER, path: str = "/g_variants", **parameters: Any) -> list[str]:
        response = self.ask(
            who,
            path,
            requestParameters=parameters,
            requestedGranularity="record",
            pagination={"limit": 0},
        )
        assert response.status_code == 200, response.text
        sets = response.json()["response"]["resultSets"]
        return [r["variantInternalId"] for s in sets for r in s["results"]]


@pytest.fixture
def node(db_engine: Engine, tmp_path: Path) -> Iterator[Node]:
    settings = node_settings(tmp_path)
    dataset = release_cohort(db_engine)
    vcf = load_cohort_variants(db_engine, dataset)
    grant(db_engine, READER, dataset)
    with TestClient(beacon_app(settings, db_engine)) as client:
        yield Node(client, settings, db_engine, dataset, vcf)


# -- queries ------------------------------------------------------------------------------------


def test_sequence_queries_in_every_form(node: Node) -> None:
    snv: dict[str, Any] = {"referenceName": "1", "start": [1000], "alternateBases": "G"}
    assert node.alleles(**snv) == [COMMON]
    assert node.alleles(g_variant={**snv, "referenceName": "chr1"}) == [COMMON]
    assert node.alleles(**{**snv, "referenceName": "refseq:NC_000001.11"}) == [COMMON]
    assert node.alleles(**{**snv, "start": 1000, "referenceBases": "A"}) == [COMMON]
    assert node.alleles(**{**snv, "alternateBases": "N"}) == [COMMON]  # N: any base
    assert node.alleles(**{**snv, "alternateBases": "T"}) == []
    assert node.alleles(**{**snv, "start": [1001]}) == []  # 0-based: POS 1001 starts at 1000
    get = node.client.get(
        "/beacon/g_variants",
        params={**snv, "start": "1000", "requestedGranularity": "record"},
        headers=bearer(node.settings, READER),
    )
    assert get.json()["response"]["resultSets"][0]["results"][0]["variantInternalId"] == COMMON


def test_range_and_bracket_queries(node: Node) -> None:
    everything = node.alleles(referenceName="1", start=[0], end=[10_000])
    assert everything == [COMMON, RARE, "GRCh38:1:3000:AT:A"]
    assert node.alleles(referenceName="1", start=[1000], end=[1001]) == [COMMON]
    assert node.alleles(referenceName="1", start=[1001], end=[2000]) == []  # half-open
    # the deletion spans [3000, 3002): a range ending inside it still finds it
    assert node.alleles(referenceName="1", start=[3001], end=[3002]) == ["GRCh38:1:3000:AT:A"]
    bracket: dict[str, Any] = {"referenceName": "1", "start": [2999, 3000], "end": [3001, 3002]}
    assert node.alleles(**bracket) == ["GRCh38:1:3000:AT:A"]
    assert node.alleles(**{**bracket, "end": [3003, 3004]}) == []


def test_types_lengths_and_assemblies(node: Node) -> None:
    region: dict[str, Any] = {"referenceName": "1", "start": [0], "end": [10_000]}
    assert node.alleles(**region, variantType="DEL") == ["GRCh38:1:3000:AT:A"]
    assert node.alleles(**region, variantType="SNP") == [COMMON, RARE]
    assert node.alleles(**region, variantMinLength=2) == ["GRCh38:1:3000:AT:A"]
    assert node.alleles(**region, variantMaxLength=1) == [COMMON, RARE]
    ins: dict[str, Any] = {
        "referenceName": "2",
        "start": [0],
        "end": [10_000],
        "variantType": "INS",
    }
    assert node.alleles(**ins) == ["GRCh38:2:5000:G:GA"]
    xs = node.alleles(referenceName="X", start=[99], end=[100])
    assert xs == ["GRCh38:X:99:A:C", "GRCh38:X:99:A:T"]  # a multi-allelic record, split
    assert node.alleles(**region, assemblyId="hg38") == [COMMON, RARE, "GRCh38:1:3000:AT:A"]
    assert node.alleles(**region, assemblyId="GRCh37") == []
    wrong = node.ask(READER, requestParameters={**region, "assemblyId": "mm10"})
    assert wrong.status_code == 400 and "mm10" in wrong.json()["error"]["errorMessage"]


def test_gene_queries_once_an_annotation_is_loaded(node: Node, tmp_path: Path) -> None:
    gene: dict[str, Any] = {"geneId": "EPIGENE"}
    missing = node.ask(READER, requestParameters=gene, requestedGranularity="record")
    assert missing.json()["responseSummary"]["exists"] is False
    assert "no loaded gene annotation" in missing.json()["info"]["warnings"][0]
    gtf = tmp_path / "genes.gtf"
    gtf.write_text('chr1\ttest\tgene\t900\t2500\t.\t+\t.\tgene_id "ENSG01"; gene_name "EPIGENE";\n')
    with db.session_scope(node.engine) as session:
        assert load_genes(session, "GRCh38", gtf) == 1
    assert node.alleles(**gene) == [COMMON, RARE]
    assert node.alleles(geneId="ENSG01", variantType="SNP", alternateBases="T") == [RARE]


def test_queries_without_a_variant_are_refused(node: Node) -> None:
    response = node.client.get("/beacon/g_variants", headers=bearer(node.settings, READER))
    assert response.status_code == 400
    assert "referenceName" in response.json()["error"]["errorMessage"]


# -- carriers, filters and lookups --------------------------------------------------------------


def test_filters_count_only_the_selected_carriers(node: Node) -> None:
    women = node.ask(
        READER,
        requestParameters={"referenceName": "1", "start": [1000], "alternateBases": "G"},
        filters=["NCIT:C16576"],
        requestedGranularity="record",
    ).json()
    (allele,) = women["response"]["resultSets"][0]["results"]
    assert len(allele["caseLevelData"]) == 6  # EPI-01, 03, 05, 07, 09, 11
    region: dict[str, Any] = {"referenceName": "1", "start": [0], "end": [10_000]}
    young = node.ask(
        READER, requestParameters=region, filters=["age<P20Y"], requestedGranularity="record"
    ).json()["response"]["resultSets"][0]["results"]
    assert [a["variantInternalId"] for a in young] == [COMMON, RARE]  # EPI-01 and 02 carry
    old = node.ask(READER, requestParameters=region, filters=["age>=P30Y"]).json()
    assert old["responseSummary"]["exists"] is False


def test_a_variant_and_its_carriers(node: Node) -> None:
    (found,) = node.alleles(path=f"/g_variants/{COMMON}")
    assert found == COMMON
    people = node.ask(READER, f"/g_variants/{COMMON}/individuals", requestedGranularity="record")
    (result_set,) = people.json()["response"]["resultSets"]
    assert result_set["resultsCount"] == 12 and len(result_set["results"]) == 10
    samples = node.ask(
        READER,
        f"/g_variants/{RARE}/biosamples",
        requestedGranularity="record",
    ).json()["response"]["resultSets"][0]["results"]
    assert [s["info"]["sampleName"] for s in samples] == ["EPI-01"]
    runs = node.ask(READER, f"/g_variants/{RARE}/runs", requestedGranularity="count").json()
    assert runs["responseSummary"]["numTotalResults"] == 1
    with_parameters = node.ask(
        READER, f"/g_variants/{COMMON}", requestParameters={"referenceName": "1"}
    )
    assert with_parameters.status_code == 400


def test_the_variants_of_a_record(node: Node) -> None:
    with db.session_scope(node.engine) as session:
        found = catalogue(session)
        first = next(s for s in found.samples.values() if s.alias == "EPI-01")
        last = next(s for s in found.samples.values() if s.alias == "EPI-20")
    region: dict[str, Any] = {"referenceName": "1", "start": [0], "end": [10_000]}
    assert node.alleles(path=f"/biosamples/{first.id}/g_variants", **region) == [COMMON, RARE]
    assert node.alleles(path=f"/individuals/{last.individual}/g_variants", **region) == []
    assert len(node.alleles(path=f"/datasets/{node.dataset}/g_variants", **region)) == 3
    refused = node.ask(READER, f"/biosamples/{first.id}/g_variants")
    assert refused.status_code == 400  # a record's variants need a region


# -- what the guard lets through ----------------------------------------------------------------


def test_without_access_rare_alleles_look_absent(node: Node) -> None:
    set_security(node.engine, node.dataset, "registered")
    rare = {"referenceName": "1", "start": [2000], "alternateBases": "T"}
    hidden = node.ask(OTHER, requestParameters=rare, requestedGranularity="count").json()
    assert hidden["responseSummary"] == {"exists": False, "numTotalResults": 0}
    shown = node.ask(READER, requestParameters=rare, requestedGranularity="count").json()
    assert shown["responseSummary"] == {"exists": True, "numTotalResults": 1}
    common = {"referenceName": "1", "start": [1000], "alternateBases": "G"}
    counted = node.ask(OTHER, requestParameters=common, requestedGranularity="record").json()
    assert counted["meta"]["returnedGranularity"] == "count"
    assert counted["responseSummary"]["numTotalResults"] == 12
    assert "individuals carrying" in counted["info"]["datasets"][0]["note"]
    carriers = node.ask(OTHER, f"/g_variants/{COMMON}/individuals", requestedGranularity="record")
    assert carriers.json()["meta"]["returnedGranularity"] == "count"
    assert "response" not in carriers.json()


def test_anonymous_allele_queries_on_controlled_data_need_a_login(node: Node) -> None:
    common = {"referenceName": "1", "start": [1000], "alternateBases": "G"}
    refused = node.ask(None, requestParameters=common)
    assert refused.status_code == 401
    assert refused.json()["error"]["errorCode"] == 401


def test_a_spent_budget_is_a_429_and_repeats_stay_free(node: Node) -> None:
    set_security(node.engine, node.dataset, "registered", budget_bits=0.5)
    first = {"referenceName": "1", "start": [2000], "alternateBases": "T"}
    assert node.ask(OTHER, requestParameters=first).status_code == 200  # crosses the budget
    second = {"referenceName": "2", "start": [5000], "alternateBases": "GA"}
    spent = node.ask(OTHER, requestParameters=second)
    assert spent.status_code == 429 and "budget" in spent.json()["error"]["errorMessage"]
    assert node.ask(OTHER, requestParameters=first).status_code == 200  # asked before: free
    assert node.ask(READER, requestParameters=second).status_code == 200  # readers: no budget


def test_readers_get_htsget_handovers(node: Node) -> None:
    common = {"referenceName": "1", "start": [1000], "alternateBases": "G"}
    body = node.ask(READER, requestParameters=common, requestedGranularity="record").json()
    urls = [h["url"] for h in body["response"]["resultSets"][0]["resultsHandovers"]]
    assert any(url.endswith(f"/htsget/variants/{node.vcf}") for url in urls)


def test_individuals_carrying_a_variant(node: Node) -> None:
    common = {"referenceName": "1", "start": [1000], "alternateBases": "G"}
    women = node.ask(
        READER,
        "/individuals",
        requestParameters=common,
        filters=["NCIT:C16576"],
        requestedGranularity="record",
    ).json()
    (result_set,) = women["response"]["resultSets"]
    assert result_set["resultsCount"] == 6
    assert {r["sex"]["label"] for r in result_set["results"]} == {"female"}
    set_security(node.engine, node.dataset, "registered")
    counted = node.ask(OTHER, "/biosamples", requestParameters=common, requestedGranularity="count")
    assert counted.json()["responseSummary"]["numTotalResults"] == 12  # individuals carrying


PARAMETER_VALUES: dict[str, Any] = {
    "referenceName": st.sampled_from(
        ["1", "chr1", "X", "MT", "refseq:NC_000001.11", "", "22", "?"]
    ),
    "start": st.one_of(st.integers(-2, 4000), st.lists(st.integers(-2, 4000), max_size=3)),
    "end": st.one_of(st.integers(-2, 4000), st.lists(st.integers(-2, 4000), max_size=3)),
    "referenceBases": st.sampled_from(["A", "AT", "N", "", "X", "acgt"]),
    "alternateBases": st.sampled_from(["G", "N", "NN", "", "A", "<DEL>"]),
    "variantType": st.sampled_from(["SNP", "DEL", "INS", "INDEL", "CNV", "x"]),
    "assemblyId": st.sampled_from(["GRCh38", "hg19", "mm10", ""]),
    "variantMinLength": st.integers(-1, 5),
    "variantMaxLength": st.integers(-1, 5),
    "geneId": st.sampled_from(["EPIGENE", "", "BRCA1"]),
}


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.fixed_dictionaries({}, optional=PARAMETER_VALUES),
    st.sampled_from(["/g_variants", "/individuals", "/biosamples", f"/g_variants/{COMMON}/runs"]),
    st.sampled_from(["boolean", "count", "record"]),
    st.lists(st.sampled_from(["NCIT:C16576", "age>P20Y", "DUO:0000007", "x"]), max_size=2),
)
def test_random_variant_queries_never_break_the_beacon(
    node: Node, parameters: dict[str, Any], path: str, granularity: str, filters: list[str]
) -> None:
    for who in (READER, OTHER):
        response = node.ask(
            who,
            path,
            requestParameters=parameters,
            requestedGranularity=granularity,
            filters=filters,
        )
        assert response.status_code in (200, 400, 429), response.text
        if response.status_code != 200:
            assert response.json()["error"]["errorMessage"]
