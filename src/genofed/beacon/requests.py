"""Beacon v2 requests: GET query parameters and POST bodies, read into one :class:`BeaconRequest`.

Clients differ in how they write the same question, so both forms are read alike:

- the request parameters of ``g_variants`` nested (``{"g_variant": {"referenceName": ..}}``, the
  default model's form) or flat (``{"referenceName": .., "start": [..]}``, what most clients send);
  ``start``/``end`` as a list, a single number, or in a GET ``start=100,200`` / repeated;
- the requested granularity in ``query`` (the schema's place) or in ``meta`` (where many clients
  put it);
- filters as ids (``"HP:0001250"``) or objects (``{"id": .., "includeDescendantTerms": false}``,
  ``{"id": "age", "operator": ">=", "value": "P70Y"}``); in a GET, ``filters=a,b`` and, for
  alphanumeric filters, ``filters=age>=P70Y``.

Anything else is refused with :class:`InvalidRequest`, which names the parameter and the fix:
a client learns what to change instead of getting a silent empty answer. Coordinates are 0-based,
``end`` exclusive, as Beacon v2 defines them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from genofed.errors import GenofedError

API_VERSION = "v2.0.0"
Granularity = Literal["boolean", "count", "record"]
Include = Literal["ALL", "HIT", "MISS", "NONE"]
Similarity = Literal["exact", "high", "medium", "low"]
GRANULARITIES: tuple[Granularity, ...] = get_args(Granularity)
INCLUDES: tuple[Include, ...] = get_args(Include)
SIMILARITIES: tuple[Similarity, ...] = get_args(Similarity)
OPERATORS = ("=", "<", ">", "!", ">=", "<=")
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000  # a page; `limit=0` ("all") means this many
MAX_FILTERS = 50
MAX_COORDINATE = 2**40  # longer than any chromosome; keeps numbers sane in the index
BASES = re.compile(r"^[ACGTN]*$")
_ALPHANUMERIC = re.compile(r"^([A-Za-z_][\w.]*)(>=|<=|=|<|>|!)(.*)$")
_CURIE = re.compile(r"^\w[^:]+:.+$")

VARIANT_PARAMETERS = {
    "assemblyId": "assembly",
    "referenceName": "reference_name",
    "start": "start",
    "end": "end",
    "referenceBases": "reference_bases",
    "alternateBases": "alternate_bases",
    "variantType": "variant_type",
    "variantMinLength": "min_length",
    "variantMaxLength": "max_length",
    "geneId": "gene_id",
}
UNSUPPORTED_PARAMETERS = {
    "mateName": "fusions are not indexed",
    "aminoacidChange": "the index holds genomic alleles, not protein changes",
    "genomicAlleleShortForm": "HGVS names are not indexed: give referenceName, start and bases",
}
GET_PARAMETERS = (
    "requestedGranularity",
    "includeResultsetResponses",
    "skip",
    "limit",
    "filters",
    "testMode",
    "requestedSchema",
    "apiVersion",
    "datasetIds",
)


class InvalidRequest(GenofedError):
    """A request the beacon cannot read: ``parameter`` is what to change, the message says how."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


# -- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OntologyFilter:
    id: str
    include_descendants: bool = True
    similarity: Similarity = "exact"
    scope: str | None = None

    def text(self) -> str:
        return self.id


@dataclass(frozen=True)
class AlphanumericFilter:
    id: str
    operator: str
    value: str
    scope: str | None = None

    def text(self) -> str:
        return f"{self.id}{self.operator}{self.value}"


@dataclass(frozen=True)
class CustomFilter:
    id: str
    scope: str | None = None

    def text(self) -> str:
        return self.id


Filter = OntologyFilter | AlphanumericFilter | CustomFilter


@dataclass(frozen=True)
class VariantParameters:
    """The ``g_variant`` request parameters, checked for one of the query shapes Beacon defines:
    sequence (start + bases), range (one start, one end), bracket (two starts, two ends) or gene
    (geneId)."""

    assembly: str | None = None
    reference_name: str | None = None
    start: tuple[int, ...] = ()
    end: tuple[int, ...] = ()
    reference_bases: str | None = None
    alternate_bases: str | None = None
    variant_type: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    gene_id: str | None = None

    @property
    def shape(self) -> Literal["sequence", "range", "bracket", "gene"]:
        if self.gene_id is not None and self.reference_name is None:
            return "gene"
        if len(self.start) == 2:
            return "bracket"
        return "range" if self.end else "sequence"

    def as_json(self) -> dict[str, Any]:
        """The parameters in the nested form of the default model, for the response summary."""
        shown: dict[str, Any] = {}
        for name, attribute in VARIANT_PARAMETERS.items():
            value = getattr(self, attribute)
            if value not in (None, ()):
                shown[name] = list(value) if isinstance(value, tuple) else value
        return {"g_variant": shown}


@dataclass(frozen=True)
class BeaconRequest:
    """One request, whatever its form; defaults as the Beacon v2 schemas define them."""

    granularity: Granularity = "boolean"
    include: Include = "HIT"
    skip: int = 0
    limit: int = DEFAULT_LIMIT
    filters: tuple[Filter, ...] = ()
    variant: VariantParameters | None = None
    datasets: tuple[str, ...] = ()  # datasetIds: only these datasets' result sets
    test_mode: bool = False
    api_version: str = API_VERSION
    requested_schemas: tuple[dict[str, str], ...] = field(default=())

    @property
    def offset(self) -> int:
        """The first record of the page: Beacon's ``skip`` counts pages, not records."""
        return self.skip * self.page_size

    @property
    def page_size(self) -> int:
        return self.limit or MAX_LIMIT

    def summary(self) -> dict[str, Any]:
        """``meta.receivedRequestSummary``: the request as the beacon understood it."""
        summary: dict[str, Any] = {
            "apiVersion": self.api_version,
            "requestedSchemas": [dict(schema) for schema in self.requested_schemas],
            "pagination": {"skip": self.skip, "limit": self.limit},
            "requestedGranularity": self.granularity,
            "includeResultsetResponses": self.include,
            "testMode": self.test_mode,
        }
        if self.filters:
            summary["filters"] = [item.text() for item in self.filters]
        parameters: dict[str, Any] = self.variant.as_json() if self.variant else {}
        if self.datasets:
            parameters["datasets"] = {"datasetIds": list(self.datasets)}
        if parameters:
            summary["requestParameters"] = parameters
        return summary


# -- GET ----------------------------------------------------------------------------------------


def from_query(
    items: Iterable[tuple[str, str]], *, default: Granularity = "boolean"
) -> BeaconRequest:
    """A request from GET query parameters (``request.query_params.multi_items()``)."""
    values: dict[str, list[str]] = {}
    for key, value in items:
        values.setdefault(key, []).append(value)
    unknown = set(values) - set(GET_PARAMETERS) - set(VARIANT_PARAMETERS)
    _refuse_unknown(unknown, "query parameter", [*GET_PARAMETERS, *VARIANT_PARAMETERS])
    raw_variant: dict[str, Any] = {}
    for name in VARIANT_PARAMETERS:
        if name in values:
            raw_variant[name] = (
                _split(values[name]) if name in ("start", "end") else _one(values, name)
            )
    return BeaconRequest(
        granularity=_choice(
            _one(values, "requestedGranularity"), GRANULARITIES, "requestedGranularity"
        )
        or default,
        include=_choice(
            _one(values, "includeResultsetResponses"), INCLUDES, "includeResultsetResponses"
        )
        or "HIT",
        skip=_count(_one(values, "skip"), "skip", 0),
        limit=_limit(_one(values, "limit")),
        filters=_filters(_split(values.get("filters", []))),
        variant=variant_parameters(raw_variant),
        datasets=tuple(_split(values.get("datasetIds", []))),
        test_mode=_flag(_one(values, "testMode"), "testMode"),
        api_version=_one(values, "apiVersion") or API_VERSION,
        requested_schemas=tuple(
            {"schema": schema} for schema in _split(values.get("requestedSchema", []))
        ),
    )


def _one(values: Mapping[str, list[str]], name: str) -> str | None:
    given = values.get(name)
    if not given:
        return None
    if len(given) > 1:
        raise InvalidRequest(name, f"given {len(given)} times: give it once")
    return given[0]


def _split(values: Sequence[str]) -> list[str]:
    """``a,b`` and repeated parameters alike, as one list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


# -- POST ---------------------------------------------------------------------------------------

BODY_KEYS = ("$schema", "meta", "query")
META_KEYS = ("$schema", "apiVersion", "requestedSchemas", "requestedGranularity", "beaconId")
QUERY_KEYS = (
    "requestParameters",
    "filters",
    "includeResultsetResponses",
    "pagination",
    "requestedGranularity",
    "testMode",
)


def from_body(body: object, *, default: Granularity = "boolean") -> BeaconRequest:
    """A request from a POST body (``beaconRequestBody``); an empty body asks the defaults."""
    if body is None:
        body = {}
    document = _object(body, "body")
    _refuse_unknown(set(document) - set(BODY_KEYS), "body key", BODY_KEYS)
    meta = _object(document.get("meta", {}), "meta")
    query = _object(document.get("query", {}), "query")
    _refuse_unknown(set(meta) - set(META_KEYS), "meta key", META_KEYS)
    _refuse_unknown(set(query) - set(QUERY_KEYS), "query key", QUERY_KEYS)
    pagination = _object(query.get("pagination", {}), "query.pagination")
    granularity = query.get("requestedGranularity", meta.get("requestedGranularity"))
    parameters, datasets = _request_parameters(query.get("requestParameters", {}))
    return BeaconRequest(
        granularity=_choice(granularity, GRANULARITIES, "query.requestedGranularity") or default,
        include=_choice(
            query.get("includeResultsetResponses"), INCLUDES, "query.includeResultsetResponses"
        )
        or "HIT",
        skip=_count(pagination.get("skip"), "query.pagination.skip", 0),
        limit=_limit(pagination.get("limit"), "query.pagination.limit"),
        filters=_filters(_list(query.get("filters", []), "query.filters")),
        variant=variant_parameters(parameters, "query.requestParameters"),
        datasets=datasets,
        test_mode=_flag(query.get("testMode"), "query.testMode"),
        api_version=_text(meta.get("apiVersion"), "meta.apiVersion") or API_VERSION,
        requested_schemas=_schemas(meta.get("requestedSchemas", [])),
    )


def _request_parameters(raw: object) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The ``g_variant`` parameters (nested or flat) and any ``datasetIds``."""
    where = "query.requestParameters"
    parameters = dict(_object(raw, where))
    parameters.pop("$schema", None)
    datasets = parameters.pop("datasetIds", None)
    nested = parameters.pop("datasets", None)
    if isinstance(nested, Mapping) and datasets is None:
        datasets = nested.get("datasetIds")
    if "g_variant" in parameters:
        variant = _object(parameters.pop("g_variant"), f"{where}.g_variant")
        if parameters:
            raise InvalidRequest(
                where,
                f"{', '.join(sorted(parameters))} beside g_variant: put every variant parameter "
                "inside g_variant, or write them all flat",
            )
        parameters = dict(variant)
    listed = [] if datasets is None else _list(datasets, f"{where}.datasetIds")
    return parameters, tuple(_text(item, f"{where}.datasetIds") or "" for item in listed)


def _schemas(raw: object) -> tuple[dict[str, str], ...]:
    schemas = []
    for item in _list(raw, "meta.requestedSchemas"):
        entry = _object(item, "meta.requestedSchemas")
        schemas.append({key: str(value) for key, value in entry.items() if isinstance(value, str)})
    return tuple(schemas)


# -- filters ------------------------------------------------------------------------------------


def _filters(raw: Sequence[object]) -> tuple[Filter, ...]:
    if len(raw) > MAX_FILTERS:
        raise InvalidRequest("filters", f"{len(raw)} filters: at most {MAX_FILTERS} are read")
    return tuple(parse_filter(item) for item in raw)


def parse_filter(raw: object) -> Filter:
    """One filter: a string (an id, or ``field{operator}value``) or a filter object. Which kind
    an id is (ontology term or custom term) is settled here by its shape, and checked against
    what the beacon knows when the filter is applied."""
    if isinstance(raw, str):
        return _filter_text(raw)
    item = _object(raw, "filters")
    term = _text(item.get("id"), "filters[].id")
    if not term:
        raise InvalidRequest("filters[].id", 'every filter needs an id, e.g. {"id": "HP:0001250"}')
    scope = _text(item.get("scope"), "filters[].scope")
    if "operator" in item or "value" in item:
        return _alphanumeric(term, item.get("operator", "="), item.get("value"), scope)
    extra = set(item) - {"id", "scope", "includeDescendantTerms", "similarity"}
    _refuse_unknown(
        extra,
        "filter key",
        ("id", "scope", "includeDescendantTerms", "similarity", "operator", "value"),
    )
    descendants = item.get("includeDescendantTerms", True)
    if not isinstance(descendants, bool):
        raise InvalidRequest("filters[].includeDescendantTerms", "write true or false")
    similarity: Similarity = (
        _choice(item.get("similarity"), SIMILARITIES, "filters[].similarity") or "exact"
    )
    if not _CURIE.match(term):
        if not descendants or similarity != "exact":
            raise InvalidRequest(
                "filters[].id",
                f"{term!r} is not an ontology term (PREFIX:ID): includeDescendantTerms and "
                "similarity apply to ontology terms only",
            )
        return CustomFilter(term, scope)
    return OntologyFilter(term, descendants, similarity, scope)


def _filter_text(text: str) -> Filter:
    term = text.strip()
    if not term:
        raise InvalidRequest("filters", "an empty filter: remove it")
    match = _ALPHANUMERIC.match(term)
    if match:
        return _alphanumeric(match.group(1), match.group(2), match.group(3), None)
    return OntologyFilter(term) if _CURIE.match(term) else CustomFilter(term)


def _alphanumeric(term: str, operator: object, value: object, scope: str | None) -> Filter:
    if operator not in OPERATORS:
        raise InvalidRequest(
            "filters[].operator", f"{str(operator)[:20]!r} is not one of {' '.join(OPERATORS)}"
        )
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidRequest(
            "filters[].value",
            f"filter {term!r} with operator {operator} needs a value, e.g. "
            '{"id": "age", "operator": ">=", "value": "P70Y"}',
        )
    text = str(value).strip()
    if not text:
        raise InvalidRequest("filters[].value", f"filter {term!r} has an empty value")
    return AlphanumericFilter(term, str(operator), text, scope)


# -- g_variant parameters -----------------------------------------------------------------------


def variant_parameters(
    raw: Mapping[str, Any], where: str = "requestParameters"
) -> VariantParameters | None:
    """The variant parameters, checked for a query shape; None when there are none."""
    if not raw:
        return None
    for name, reason in UNSUPPORTED_PARAMETERS.items():
        if name in raw:
            raise InvalidRequest(f"{where}.{name}", f"not supported by this beacon ({reason})")
    _refuse_unknown(set(raw) - set(VARIANT_PARAMETERS), f"{where} key", VARIANT_PARAMETERS)
    values: dict[str, Any] = {}
    for name in ("assemblyId", "referenceName", "variantType", "geneId"):
        values[VARIANT_PARAMETERS[name]] = _text(raw.get(name), f"{where}.{name}")
    for name in ("referenceBases", "alternateBases"):
        values[VARIANT_PARAMETERS[name]] = _bases(raw.get(name), f"{where}.{name}")
    for name in ("start", "end"):
        values[name] = _positions(raw.get(name), f"{where}.{name}")
    values["min_length"] = _optional_count(raw.get("variantMinLength"), f"{where}.variantMinLength")
    values["max_length"] = _optional_count(raw.get("variantMaxLength"), f"{where}.variantMaxLength")
    parameters = VariantParameters(**values)
    _check_shape(parameters, where)
    return parameters


def _check_shape(p: VariantParameters, where: str) -> None:
    """Refuse combinations that name no query of Beacon v2, with the closest valid one."""
    if p.reference_name is not None and p.gene_id is not None:
        raise InvalidRequest(
            f"{where}.geneId", "give a geneId or a referenceName with positions, not both"
        )
    if p.reference_name is None:
        if p.gene_id is not None:
            if p.start or p.end:
                raise InvalidRequest(f"{where}.start", "a geneId query takes no start or end")
            return
        raise InvalidRequest(
            f"{where}.referenceName",
            "missing: give referenceName with start (and end, or alternateBases), or a geneId",
        )
    if not p.start:
        raise InvalidRequest(
            f"{where}.start", "missing: give the 0-based start of the variant or range"
        )
    if len(p.start) != len(p.end) and p.end:
        raise InvalidRequest(
            f"{where}.end",
            "a bracket query gives two starts and two ends; a range query one start and one end",
        )
    if len(p.start) == 2 and not p.end:
        raise InvalidRequest(f"{where}.end", "a bracket query (two starts) needs two ends")
    if not p.end and p.alternate_bases is None and p.variant_type is None:
        raise InvalidRequest(
            f"{where}.alternateBases",
            "a query with a start only needs alternateBases (or variantType); for a range, "
            "give an end",
        )
    _ordered(p.start, f"{where}.start")
    _ordered(p.end, f"{where}.end")
    if len(p.start) == 1 and p.end and p.end[0] <= p.start[0]:
        raise InvalidRequest(
            f"{where}.end", f"end {p.end[0]} is not after start {p.start[0]} (end is exclusive)"
        )
    if p.min_length is not None and p.max_length is not None and p.min_length > p.max_length:
        raise InvalidRequest(f"{where}.variantMinLength", "is greater than variantMaxLength")


def _ordered(values: tuple[int, ...], where: str) -> None:
    if len(values) == 2 and values[0] > values[1]:
        raise InvalidRequest(where, f"[{values[0]}, {values[1]}] is not in increasing order")


def _positions(raw: object, where: str) -> tuple[int, ...]:
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    if not 1 <= len(items) <= 2:
        raise InvalidRequest(where, f"give one or two positions, not {len(items)}")
    positions = tuple(_count(item, where, None) for item in items)
    return tuple(p for p in positions if p is not None)


def _bases(raw: object, where: str) -> str | None:
    text = _text(raw, where)
    if text is None:
        return None
    bases = text.upper()
    if not BASES.match(bases):
        raise InvalidRequest(
            where,
            f"{text[:30]!r} is not a sequence of A, C, G, T and N (N matches any base); leave "
            "it empty for a deletion's alternate or an insertion's reference",
        )
    return bases


# -- small readers ------------------------------------------------------------------------------


def _object(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidRequest(where, f"must be a JSON object, not {type(raw).__name__}")
    return raw


def _list(raw: object, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise InvalidRequest(where, f"must be a JSON array, not {type(raw).__name__}")
    return raw


def _text(raw: object, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidRequest(where, f"must be a string, not {type(raw).__name__}")
    return raw.strip() or None


def _choice(raw: object, allowed: Sequence[str], where: str) -> Any:
    if raw is None:
        return None
    if raw not in allowed:
        raise InvalidRequest(where, f"{str(raw)[:30]!r} is not one of {', '.join(allowed)}")
    return raw


def _count(raw: object, where: str, default: int | None) -> Any:
    """A non-negative integer, from JSON or from a query string."""
    if raw is None:
        return default
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise InvalidRequest(where, f"{str(raw)[:30]!r} is not a whole number of 0 or more")
    if raw > MAX_COORDINATE:
        raise InvalidRequest(where, f"{raw} is too large")
    return raw


def _optional_count(raw: object, where: str) -> int | None:
    value: int | None = _count(raw, where, None)
    return value


def _limit(raw: object, where: str = "limit") -> int:
    limit: int = _count(raw, where, DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        raise InvalidRequest(where, f"at most {MAX_LIMIT} records per page: page with skip")
    return limit


def _flag(raw: object, where: str) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise InvalidRequest(where, "write true or false")


def _refuse_unknown(unknown: set[str], what: str, known: Iterable[str]) -> None:
    if unknown:
        names = ", ".join(sorted(repr(name[:40]) for name in unknown)[:5])
        raise InvalidRequest(
            sorted(unknown)[0][:40], f"unknown {what} {names}: use {', '.join(known)}"
        )
