"""LAPIS-style HTTP queries over a :class:`~genofed.pathogen.store.PathogenStore`.

:func:`lapis_router` builds the routes; the host app mounts them (per organism, on a node or on
the hub) and decides who may call what. Every route answers GET (query parameters) and POST (a
JSON object of the same names). Filters: any field by equality (repeat it for "any of"),
``location`` by level prefix, ``<dateField>From``/``To`` and ``<numberField>From``/``To``
ranges, ``nucleotideMutations``, ``aminoAcidMutations``, ``nucleotideInsertions``,
``aminoAcidInsertions`` (comma-separated, all must hold), ``variantQuery`` and
``includeRevoked``. Answers are ``{"data": [...], "info": {"dataVersion": ...}}`` or, with
``dataFormat=csv|tsv``, a table; every answer carries a ``Lapis-Data-Version`` header. A bad
request is a 400 whose detail names the parameter, the problem and the fix.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, Literal, Protocol, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from genofed.pathogen.batch import date_range
from genofed.pathogen.store import (
    BINNINGS,
    DATE_FIELDS,
    NUMBER_FIELDS,
    Answer,
    Binning,
    PathogenStore,
    SampleFilter,
    camel,
)
from genofed.pathogen.variant_query import (
    And,
    Expression,
    Leaf,
    QueryError,
    parse_leaf,
    parse_variant_query,
)

VERSION_HEADER = "Lapis-Data-Version"
FORMATS = {"json": "application/json", "csv": "text/csv", "tsv": "text/tab-separated-values"}
_MUTATION_LISTS: dict[str, Literal["nucleotide", "aminoAcid"]] = {
    "nucleotideMutations": "nucleotide",
    "aminoAcidMutations": "aminoAcid",
    "nucleotideInsertions": "nucleotide",
    "aminoAcidInsertions": "aminoAcid",
}
_LISTS = {"fields", "orderBy", "mutations", *_MUTATION_LISTS}  # comma-separated values
_CONTROLS = {
    "fields",
    "orderBy",
    "limit",
    "offset",
    "dataFormat",
    "minProportion",
    "mutations",
    "binning",
    "dateField",
    "groupBy",
}
Params = dict[str, list[str]]


class SequenceSource(Protocol):
    """Where the sequences of released records live (the host's archive)."""

    def unaligned(self, accession_version: str) -> str: ...

    def aligned(self, accession_version: str) -> str: ...


def lapis_router(
    get_store: Callable[[Request], PathogenStore],
    *,
    sequences: Callable[[Request], SequenceSource] | None = None,
    sequence_access: Callable[..., Any] | None = None,
) -> APIRouter:
    """The LAPIS routes over the store ``get_store`` picks for a request.

    The sequence routes exist when ``sequences`` is given; ``sequence_access``, a FastAPI
    dependency, runs before them (e.g. to require a registered user who accepted the terms).
    """
    router = APIRouter(tags=["pathogen queries"])

    def route(path: str, dependencies: Sequence[Any] = ()) -> Callable[[Handler], Handler]:
        return router.api_route(path, methods=["GET", "POST"], dependencies=list(dependencies))

    @route("/sample/info")
    async def info(request: Request) -> Response:
        store = get_store(request)
        answer = Answer(
            [{"organism": store.organism.name, "records": len(store), "fields": store.fields}],
            store.data_version,
        )
        return _respond(answer, "json")

    @route("/sample/aggregated")
    async def aggregated(request: Request) -> Response:
        return await _answer(request, get_store, _aggregated)

    @route("/sample/details")
    async def details(request: Request) -> Response:
        return await _answer(request, get_store, _details)

    @route("/sample/nucleotideMutations")
    async def nucleotide_mutations(request: Request) -> Response:
        return await _answer(request, get_store, _mutations("nucleotide"))

    @route("/sample/aminoAcidMutations")
    async def amino_acid_mutations(request: Request) -> Response:
        return await _answer(request, get_store, _mutations("aminoAcid"))

    @route("/sample/nucleotideInsertions")
    async def nucleotide_insertions(request: Request) -> Response:
        return await _answer(request, get_store, _insertions("nucleotide"))

    @route("/sample/aminoAcidInsertions")
    async def amino_acid_insertions(request: Request) -> Response:
        return await _answer(request, get_store, _insertions("aminoAcid"))

    @route("/sample/mutationsOverTime")
    async def mutations_over_time(request: Request) -> Response:
        return await _answer(request, get_store, _over_time)

    if sequences is not None:
        source = sequences
        guard = [Depends(sequence_access)] if sequence_access else []

        @route("/sample/unalignedNucleotideSequences", guard)
        async def unaligned(request: Request) -> Response:
            return await _fasta(request, get_store, source(request).unaligned)

        @route("/sample/alignedNucleotideSequences", guard)
        async def aligned(request: Request) -> Response:
            return await _fasta(request, get_store, source(request).aligned)

    return router


Handler = Callable[[Request], Awaitable[Response]]
Query = Callable[[PathogenStore, Params], Answer]


async def _answer(
    request: Request, get_store: Callable[[Request], PathogenStore], query: Query
) -> Response:
    """Read the parameters, answer on a worker thread (queries are CPU work), format."""
    store = get_store(request)
    try:
        params = await read_params(request)
        data_format = _one(params, "dataFormat", "json").lower()
        if data_format not in FORMATS:
            raise QueryError(
                f"dataFormat {data_format!r} is not offered; use one of {', '.join(FORMATS)}"
            )
        answer = await run_in_threadpool(query, store, params)
    except QueryError as error:
        return _bad_request(error, store)
    return _respond(answer, data_format, params.get("fields"))


async def _fasta(
    request: Request,
    get_store: Callable[[Request], PathogenStore],
    sequence: Callable[[str], str],
) -> Response:
    """The matching records' sequences as FASTA, streamed as they are read."""
    store = get_store(request)
    try:
        params = await read_params(request)
        chosen = parse_filter(params, store)
        limit, offset = _paging(params)
        answer = await run_in_threadpool(store.accession_versions, chosen, limit, offset)
    except QueryError as error:
        return _bad_request(error, store)

    def records() -> Iterator[str]:
        for entry in answer.data:
            name = entry["accessionVersion"]
            yield f">{name}\n{sequence(name)}\n"

    headers = {VERSION_HEADER: str(answer.data_version)}
    return StreamingResponse(records(), media_type="text/x-fasta", headers=headers)


async def read_params(request: Request) -> Params:
    """Parameters as name → values, from the query string and, for POST, a JSON object."""
    params: Params = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).extend(_split(name, value))
    if request.method == "POST" and await request.body():
        try:
            body = await request.json()
        except json.JSONDecodeError as error:
            raise QueryError(f"the request body is not JSON ({error}); send an object") from None
        if not isinstance(body, dict):
            raise QueryError("the request body must be a JSON object of parameters")
        for name, value in body.items():
            params.setdefault(name, []).extend(_body_values(name, value))
    return params


def _split(name: str, value: str) -> list[str]:
    if name in _LISTS:
        return [part.strip() for part in value.split(",") if part.strip()]
    return [value]


def _body_values(name: str, value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    found = []
    for item in values:
        if item is None:
            continue
        if name == "orderBy" and isinstance(item, dict):  # {"field": f, "type": "descending"}
            prefix = "-" if item.get("type") == "descending" else ""
            found.append(f"{prefix}{item.get('field', '')}")
        elif isinstance(item, bool):
            found.append("true" if item else "false")
        elif isinstance(item, str) and not isinstance(value, list):
            found.extend(_split(name, item))
        else:
            found.append(str(item))
    return found


def parse_filter(params: Mapping[str, list[str]], store: PathogenStore) -> SampleFilter:
    """The records a request's parameters ask about; unknown names and bad values raise
    :class:`QueryError` naming the parameter."""
    equals: dict[str, tuple[str, ...]] = {}
    dates: dict[str, tuple[date | None, date | None]] = {}
    numbers: dict[str, tuple[float | None, float | None]] = {}
    parts: list[Expression] = []
    include_revoked = False
    for name, values in params.items():
        if name in _CONTROLS:
            continue
        if name in _MUTATION_LISTS:
            parts += [_leaf(name, value) for value in values]
        elif name == "variantQuery":
            parts += [_variant(value) for value in values]
        elif name == "includeRevoked":
            include_revoked = _boolean(name, _one(params, name, "false"))
        elif (bound := _range_bound(name, store)) is not None:
            field, is_from = bound
            if field in DATE_FIELDS:
                low, high = dates.get(field, (None, None))
                day = _date(name, _one(params, name, ""), is_from)
                dates[field] = (day, high) if is_from else (low, day)
            else:
                low_number, high_number = numbers.get(field, (None, None))
                number = _number(name, _one(params, name, ""))
                numbers[field] = (number, high_number) if is_from else (low_number, number)
        else:
            store.field(name)  # raises, naming the known fields, when unknown
            equals[name] = tuple(values)
    variant = None if not parts else parts[0] if len(parts) == 1 else And(tuple(parts))
    return SampleFilter(equals, dates, numbers, variant, include_revoked)


def _range_bound(name: str, store: PathogenStore) -> tuple[str, bool] | None:
    """(field, is the lower bound) for ``collectionDateFrom``, ``coverageTo``, ...; None for a
    name that is no range bound."""
    for suffix, is_from in (("From", True), ("To", False)):
        if name.endswith(suffix) and name not in store.fields:
            base = name[: -len(suffix)]
            try:
                field = store.field(base)
            except QueryError:
                return None
            if field in DATE_FIELDS or field in NUMBER_FIELDS:
                return field, is_from
            raise QueryError(
                f"{name}: {base} is neither a date nor a number; ranges apply to "
                f"{', '.join(camel(f) for f in DATE_FIELDS + NUMBER_FIELDS)}"
            )
    return None


def _leaf(name: str, value: str) -> Leaf:
    try:
        return parse_leaf(value, _MUTATION_LISTS.get(name))
    except QueryError as error:
        raise QueryError(f"{name}: {error}") from None


def _variant(value: str) -> Expression:
    try:
        return parse_variant_query(value)
    except QueryError as error:
        raise QueryError(f"variantQuery: {error}") from None


def _one(params: Mapping[str, list[str]], name: str, default: str) -> str:
    values = params.get(name) or [default]
    if len(values) > 1:
        raise QueryError(f"{name} is given {len(values)} times; give it once")
    return values[0]


def _boolean(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise QueryError(f"{name}={value!r}: write true or false")
    return value.lower() == "true"


def _date(name: str, value: str, is_from: bool) -> date:
    span = date_range(value)
    if span is None:
        raise QueryError(f"{name}={value!r} is not a date; write YYYY-MM-DD (or YYYY-MM, YYYY)")
    return span[0] if is_from else span[1]


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise QueryError(f"{name}={value!r} is not a number; write e.g. 100 or 12.5") from None


def _integer(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise QueryError(f"{name}={value!r}: write a whole number, 0 or more")
    return int(value)


def _paging(params: Mapping[str, list[str]]) -> tuple[int | None, int]:
    limit = _integer("limit", params["limit"][0]) if params.get("limit") else None
    offset = _integer("offset", params["offset"][0]) if params.get("offset") else 0
    return limit, offset or 0


def _order(params: Mapping[str, list[str]]) -> list[tuple[str, bool]]:
    """``orderBy=date,-count``: field names, a leading '-' for descending."""
    return [(item.lstrip("-"), item.startswith("-")) for item in params.get("orderBy", [])]


def _aggregated(store: PathogenStore, params: Params) -> Answer:
    fields = params.get("fields", [])
    answer = store.aggregated(parse_filter(params, store), fields)
    order = _order(params) or [(name, False) for name in fields]
    return _arranged(answer, order, params, {*fields, "count"})


def _details(store: PathogenStore, params: Params) -> Answer:
    limit, offset = _paging(params)
    return store.details(
        parse_filter(params, store), params.get("fields", []), _order(params), limit, offset
    )


def _mutations(kind: Literal["nucleotide", "aminoAcid"]) -> Query:
    def query(store: PathogenStore, params: Params) -> Answer:
        minimum = _number("minProportion", _one(params, "minProportion", "0.05"))
        if not 0 <= minimum <= 1:
            raise QueryError(f"minProportion={minimum} must lie between 0 and 1")
        answer = store.mutations(parse_filter(params, store), kind, minimum)
        return _arranged(answer, _order(params), params, _MUTATION_KEYS)

    return query


_MUTATION_KEYS = {"mutation", "count", "coverage", "proportion", "sequenceName", "position"}
_INSERTION_KEYS = {"insertion", "count", "sequenceName", "position", "insertedSymbols"}


def _insertions(kind: Literal["nucleotide", "aminoAcid"]) -> Query:
    def query(store: PathogenStore, params: Params) -> Answer:
        answer = store.insertions(parse_filter(params, store), kind)
        return _arranged(answer, _order(params), params, _INSERTION_KEYS)

    return query


def _over_time(store: PathogenStore, params: Params) -> Answer:
    mutations = [_leaf("mutations", m) for m in params.get("mutations", [])]
    if not mutations:
        raise QueryError("mutations is missing; list them, e.g. mutations=S:E484K,C241T")
    binning = _one(params, "binning", "month")
    if binning not in BINNINGS:
        raise QueryError(f"binning={binning!r}: use one of {', '.join(BINNINGS)}")
    group_by = params.get("groupBy", [None])[0]
    date_field = _one(params, "dateField", "collection_date")
    chosen = parse_filter(params, store)
    answer = store.mutations_over_time(
        chosen, mutations, cast(Binning, binning), date_field, group_by
    )
    return _arranged(answer, _order(params), params, None)


def _arranged(
    answer: Answer,
    order: list[tuple[str, bool]],
    params: Mapping[str, list[str]],
    allowed: set[str] | None,
) -> Answer:
    """The answer's rows ordered by ``order`` (null first) and paged."""
    data = answer.data
    for key, descending in reversed(order):
        if allowed is not None and key not in allowed:
            raise QueryError(f"orderBy {key!r}: order by one of {', '.join(sorted(allowed))}")
        data = sorted(data, key=lambda entry: _sort_key(entry.get(key)), reverse=descending)
    limit, offset = _paging(params)
    data = data[offset : None if limit is None else offset + limit]
    return Answer(data, answer.data_version, answer.info)


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is not None, 0 if value is None else value)


def _respond(answer: Answer, data_format: str, fields: list[str] | None = None) -> Response:
    headers = {VERSION_HEADER: str(answer.data_version)}
    if data_format == "json":
        info = {"dataVersion": str(answer.data_version), **answer.info}
        return JSONResponse({"data": answer.data, "info": info}, headers=headers)
    columns = list(fields or [])
    for entry in answer.data:
        columns += [key for key in entry if key not in columns]
    out = io.StringIO()
    writer = csv.writer(out, delimiter="," if data_format == "csv" else "\t", lineterminator="\n")
    writer.writerow(columns)
    for entry in answer.data:
        writer.writerow(["" if entry.get(c) is None else entry.get(c) for c in columns])
    media = f"{FORMATS[data_format]}; charset=utf-8"
    return Response(out.getvalue(), media_type=media, headers=headers)


def _bad_request(error: QueryError, store: PathogenStore) -> JSONResponse:
    body = {
        "error": {"status": 400, "title": "Bad Request", "detail": str(error)},
        "info": {"dataVersion": str(store.data_version)},
    }
    return JSONResponse(body, status_code=400, headers={VERSION_HEADER: str(store.data_version)})
