"""Reading Beacon requests: GET and POST alike, nested and flat variant parameters, filters in
every form, and refusals that name the parameter; random input never breaks the parser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genofed.beacon.requests import (
    AlphanumericFilter,
    BeaconRequest,
    CustomFilter,
    InvalidRequest,
    OntologyFilter,
    VariantParameters,
    from_body,
    from_query,
    parse_filter,
)

SNV = {"referenceName": "1", "start": [1000], "referenceBases": "A", "alternateBases": "G"}


def test_defaults() -> None:
    read = from_body({"meta": {"apiVersion": "v2.0.0"}})
    assert read == BeaconRequest()
    assert (read.granularity, read.include, read.skip, read.limit) == ("boolean", "HIT", 0, 10)
    assert from_query([]) == read
    assert from_body(None, default="record").granularity == "record"


def test_nested_and_flat_variant_parameters_are_one_request() -> None:
    nested = from_body({"meta": {}, "query": {"requestParameters": {"g_variant": SNV}}})
    flat = from_body({"query": {"requestParameters": SNV}})
    scalar = from_body({"query": {"requestParameters": {**SNV, "start": 1000}}})
    query = from_query(
        [
            ("referenceName", "1"),
            ("start", "1000"),
            ("referenceBases", "a"),
            ("alternateBases", "G"),
        ]
    )
    assert nested == flat == scalar == query
    assert nested.variant == VariantParameters(
        reference_name="1", start=(1000,), reference_bases="A", alternate_bases="G"
    )
    assert nested.variant is not None and nested.variant.shape == "sequence"


def test_query_shapes() -> None:
    ranged = from_query([("referenceName", "chr2"), ("start", "100"), ("end", "200")])
    assert ranged.variant is not None and ranged.variant.shape == "range"
    bracket = from_query(
        [("referenceName", "2"), ("start", "100,110"), ("end", "200"), ("end", "210")]
    )
    assert bracket.variant is not None
    assert (bracket.variant.shape, bracket.variant.start, bracket.variant.end) == (
        "bracket",
        (100, 110),
        (200, 210),
    )
    gene = from_body({"query": {"requestParameters": {"geneId": "SCN1A", "variantType": "DEL"}}})
    assert gene.variant is not None and gene.variant.shape == "gene"
    typed = from_query([("referenceName", "2"), ("start", "5"), ("variantType", "SNP")])
    assert typed.variant is not None and typed.variant.shape == "sequence"


def test_granularity_from_query_or_meta() -> None:
    assert from_body({"query": {"requestedGranularity": "count"}}).granularity == "count"
    assert from_body({"meta": {"requestedGranularity": "record"}}).granularity == "record"
    assert from_query([("requestedGranularity", "count")]).granularity == "count"


def test_filters_in_every_form() -> None:
    body = {
        "query": {
            "filters": [
                "HP:0001250",
                {"id": "ICD10:G40", "includeDescendantTerms": False, "similarity": "high"},
                {"id": "age", "operator": ">=", "value": "P70Y", "scope": "individuals"},
                {"id": "sex", "value": "female"},
                {"id": "population:European"},
                "sex!male",
                "my-custom-term",
            ]
        }
    }
    assert from_body(body).filters == (
        OntologyFilter("HP:0001250"),
        OntologyFilter("ICD10:G40", False, "high"),
        AlphanumericFilter("age", ">=", "P70Y", "individuals"),
        AlphanumericFilter("sex", "=", "female"),
        OntologyFilter("population:European"),
        AlphanumericFilter("sex", "!", "male"),
        CustomFilter("my-custom-term"),
    )
    query = from_query([("filters", "HP:0001250,age>=P70Y"), ("filters", "NCIT:C16576")])
    assert [f.text() for f in query.filters] == ["HP:0001250", "age>=P70Y", "NCIT:C16576"]


def test_the_summary_shows_the_request_as_understood() -> None:
    read = from_body(
        {
            "meta": {"apiVersion": "v2.0.1", "requestedSchemas": [{"schema": "x"}]},
            "query": {
                "requestParameters": {**SNV, "datasetIds": ["D1"]},
                "filters": [{"id": "age", "operator": "<", "value": "P9Y"}],
                "pagination": {"skip": 2, "limit": 5},
                "includeResultsetResponses": "ALL",
                "testMode": True,
            },
        }
    )
    assert read.summary() == {
        "apiVersion": "v2.0.1",
        "requestedSchemas": [{"schema": "x"}],
        "pagination": {"skip": 2, "limit": 5},
        "requestedGranularity": "boolean",
        "includeResultsetResponses": "ALL",
        "testMode": True,
        "filters": ["age<P9Y"],
        "requestParameters": {
            "g_variant": {**SNV, "start": [1000]},
            "datasets": {"datasetIds": ["D1"]},
        },
    }
    assert (read.offset, read.page_size) == (10, 5)
    assert from_query([("limit", "0"), ("skip", "3")]).offset == 3000


@pytest.mark.parametrize(
    ("body", "parameter", "message"),
    [
        ([], "body", "JSON object"),
        ({"qeury": {}}, "qeury", "unknown body key"),
        ({"query": {"requestedGranularity": "all"}}, "query.requestedGranularity", "not one of"),
        ({"query": {"pagination": {"limit": -1}}}, "query.pagination.limit", "whole number"),
        ({"query": {"pagination": {"limit": 5000}}}, "query.pagination.limit", "at most"),
        ({"query": {"pagination": {"skip": "x"}}}, "query.pagination.skip", "whole number"),
        (
            {"query": {"includeResultsetResponses": "SOME"}},
            "query.includeResultsetResponses",
            "not one of",
        ),
        ({"query": {"testMode": "yes"}}, "query.testMode", "true or false"),
        ({"query": {"filters": "HP:0001250"}}, "query.filters", "JSON array"),
        ({"query": {"filters": [{"operator": "="}]}}, "filters[].id", "needs an id"),
        (
            {"query": {"filters": [{"id": "age", "operator": "~", "value": "1"}]}},
            "filters[].operator",
            "not one of",
        ),
        (
            {"query": {"filters": [{"id": "age", "operator": ">"}]}},
            "filters[].value",
            "needs a value",
        ),
        (
            {"query": {"filters": [{"id": "x", "includeDescendantTerms": "no"}]}},
            "filters[].includeDescendantTerms",
            "true or false",
        ),
        (
            {"query": {"filters": [{"id": "plain", "similarity": "high"}]}},
            "filters[].id",
            "not an ontology term",
        ),
        ({"query": {"filters": ["HP:1"] * 51}}, "filters", "at most"),
        (
            {"query": {"requestParameters": {"start": [5]}}},
            "query.requestParameters.referenceName",
            "missing",
        ),
        (
            {"query": {"requestParameters": {"referenceName": "1"}}},
            "query.requestParameters.start",
            "missing",
        ),
        (
            {"query": {"requestParameters": {"referenceName": "1", "start": [5]}}},
            "query.requestParameters.alternateBases",
            "start only",
        ),
        (
            {"query": {"requestParameters": {"referenceName": "1", "start": [5], "end": [5]}}},
            "query.requestParameters.end",
            "not after",
        ),
        (
            {
                "query": {
                    "requestParameters": {"referenceName": "1", "start": [5, 1], "end": [6, 7]}
                }
            },
            "query.requestParameters.start",
            "increasing",
        ),
        (
            {"query": {"requestParameters": {"referenceName": "1", "start": [5, 6]}}},
            "query.requestParameters.end",
            "two ends",
        ),
        (
            {
                "query": {
                    "requestParameters": {"referenceName": "1", "start": [1, 2, 3], "end": [9]}
                }
            },
            "query.requestParameters.start",
            "one or two",
        ),
        (
            {"query": {"requestParameters": {**SNV, "alternateBases": "X"}}},
            "query.requestParameters.alternateBases",
            "A, C, G, T and N",
        ),
        (
            {"query": {"requestParameters": {**SNV, "aminoacidChange": "V600E"}}},
            "query.requestParameters.aminoacidChange",
            "not supported",
        ),
        ({"query": {"requestParameters": {**SNV, "chromosome": "1"}}}, "chromosome", "unknown"),
        (
            {"query": {"requestParameters": {"g_variant": SNV, "referenceName": "1"}}},
            "query.requestParameters",
            "beside g_variant",
        ),
        (
            {"query": {"requestParameters": {"geneId": "SCN1A", "start": [5]}}},
            "query.requestParameters.start",
            "geneId",
        ),
        (
            {"query": {"requestParameters": {**SNV, "variantMinLength": 5, "variantMaxLength": 2}}},
            "query.requestParameters.variantMinLength",
            "greater",
        ),
    ],
)
def test_bad_bodies_name_the_parameter(body: Any, parameter: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as refused:
        from_body(body)
    assert refused.value.parameter == parameter


@pytest.mark.parametrize(
    ("items", "parameter"),
    [
        ([("limt", "5")], "limt"),
        ([("skip", "1"), ("skip", "2")], "skip"),
        ([("start", "-5"), ("referenceName", "1"), ("end", "9")], "requestParameters.start"),
        ([("filters", "age>=")], "filters[].value"),
    ],
)
def test_bad_query_parameters_name_the_parameter(
    items: list[tuple[str, str]], parameter: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        from_query(items)
    assert refused.value.parameter == parameter


def test_parse_filter_keeps_ids_that_look_alphanumeric_when_they_are_objects() -> None:
    assert parse_filter({"id": "age>P1Y"}) == CustomFilter("age>P1Y")


# -- property tests -----------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**50), 2**50)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
KEYS = [
    "referenceName",
    "start",
    "end",
    "referenceBases",
    "alternateBases",
    "variantType",
    "assemblyId",
    "geneId",
    "variantMinLength",
    "variantMaxLength",
]
VALUES = st.one_of(
    JSON,
    st.sampled_from(["1", "chrX", "A", "N", "ACGTN", "", "DEL", "GRCh38", "hg19"]),
    st.lists(st.integers(-5, 10**6), max_size=3),
    st.integers(-5, 10**6),
)


def _body(parameters: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {"meta": {"apiVersion": "v2.0.0"}, "query": {"requestParameters": parameters, **extra}}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6),
    st.dictionaries(
        st.sampled_from(
            [
                "filters",
                "pagination",
                "requestedGranularity",
                "includeResultsetResponses",
                "testMode",
            ]
        ),
        JSON,
        max_size=3,
    ),
)
def test_random_bodies_are_read_or_refused_with_a_parameter(
    parameters: dict[str, Any], extra: dict[str, Any]
) -> None:
    try:
        read = from_body(_body(parameters, extra))
    except InvalidRequest as refused:
        assert refused.parameter and str(refused)
        return
    json.dumps(read.summary())  # what is read can always be shown


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [*KEYS, "filters", "skip", "limit", "requestedGranularity", "testMode", "x"]
            ),
            st.text(max_size=12),
        ),
        max_size=6,
    )
)
def test_random_query_strings_are_read_or_refused_with_a_parameter(
    items: list[tuple[str, str]],
) -> None:
    try:
        read = from_query(items)
    except InvalidRequest as refused:
        assert refused.parameter
        return
    json.dumps(read.summary())
