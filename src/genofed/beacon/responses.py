"""Beacon v2 answers: each dataset asked through the privacy guard, put together as responses.

:func:`answer` takes the records from the catalogue (:mod:`genofed.beacon.entities`), narrows them
by the filters (:mod:`genofed.beacon.filters`) and by the ``{id}`` of a lookup route, and asks the
guard (:mod:`genofed.beacon.guard`) what each dataset may say to this caller:
:func:`~genofed.beacon.guard.answer_count` for individuals, biosamples, runs and analyses,
:func:`~genofed.beacon.guard.answer_variants` whenever alleles select the records (``/g_variants``,
a variant's carriers, variant parameters given to another entry type). A dataset that refuses
(login needed, budget spent) is left out with a note in ``info.notAnswered``; when every dataset
refuses, the first refusal is the answer (:class:`Refused`, returned rather than raised so that
the guard's audit entries of the refusals commit).

The response puts the datasets' answers together:

- ``meta.returnedGranularity`` is the finest granularity any dataset answered at, never finer
  than requested: a record response may hold datasets that gave only a count (``results`` empty)
  or only a yes/no (``resultsCount`` 0, ``info.returnedGranularity`` "boolean" says why);
- ``responseSummary.exists`` is true when any dataset says so; ``numTotalResults`` adds the
  counts the datasets disclosed (``info.countsWithheld`` names those that did not);
- boolean and count responses have no result sets, so each dataset's own answer is in
  ``info.datasets``: what the guard allowed, no more;
- ``includeResultsetResponses`` keeps the sets that hit (HIT, the default), missed (MISS), all
  of them or none;
- records are paged per dataset: ``skip`` pages of ``limit`` records (``limit`` 0: the beacon's
  largest page);
- variants: a record-level set counts its alleles; a count-level one counts the individuals
  carrying them, the only count the guard discloses (its note says so);
- handovers: the dataset's files (and htsget tickets for its indexed VCFs) to those whose visas
  open it; a way to apply for access where a dataset answered yes to someone without.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.beacon import guard, index
from genofed.beacon.entities import (
    COLLECTIONS,
    MAX_CASES,
    Catalogue,
    EntryType,
    catalogue,
    record,
    variant_query,
    variant_record,
)
from genofed.beacon.filters import Selection, filtering_terms, select_records
from genofed.beacon.framework import ENTRY_TYPES, EntryTypeSpec, beacon_id
from genofed.beacon.ontology import Ontologies
from genofed.beacon.requests import API_VERSION, BeaconRequest, Granularity, InvalidRequest
from genofed.config import Settings
from genofed.db import ArchiveFile, BeaconSource
from genofed.errors import GenofedError

T = TypeVar("T")
LEVEL: dict[Granularity, int] = {"boolean": 0, "count": 1, "record": 2}


@dataclass(frozen=True)
class ResultSet:
    """One dataset's answer, as the guard allowed it."""

    id: str
    granularity: Granularity
    exists: bool
    count: int | None  # None: not disclosed (boolean granularity)
    results: Sequence[dict[str, Any]] = ()
    exact: bool = True
    note: str | None = None
    handovers: Sequence[dict[str, Any]] = ()
    set_type: str = "dataset"

    def as_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {"returnedGranularity": self.granularity}
        if not self.exact:
            info["countIsExact"] = False
        if self.note:
            info["note"] = self.note
        shown: dict[str, Any] = {
            "id": self.id,
            "setType": self.set_type,
            "exists": self.exists,
            "resultsCount": self.count or 0,
            "results": list(self.results),
            "info": info,
        }
        if self.handovers:
            shown["resultsHandovers"] = list(self.handovers)
        return shown

    def summary(self) -> dict[str, Any]:
        """The set as ``info.datasets`` of a boolean or count response shows it."""
        shown: dict[str, Any] = {
            "id": self.id,
            "exists": self.exists,
            "returnedGranularity": self.granularity,
        }
        if self.count is not None and self.granularity != "boolean":
            shown["count"] = self.count
            if not self.exact:
                shown["countIsExact"] = False
        if self.note:
            shown["note"] = self.note
        return shown


@dataclass
class Answer:
    """What the datasets said to one request, and what the response adds around them."""

    sets: list[ResultSet] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # datasets that would not answer, and why
    handovers: list[dict[str, Any]] = field(default_factory=list)
    errors: list[GenofedError] = field(default_factory=list)


@dataclass(frozen=True)
class Refused:
    """Every dataset refused the caller: the first refusal is the answer. Returned, not raised,
    so that the transaction commits the guard's audit entries of the refusals."""

    error: GenofedError


def page(items: Sequence[T], request: BeaconRequest) -> list[T]:
    """The requested page of one dataset's records."""
    return list(items[request.offset : request.offset + request.page_size])


def returned_granularity(request: BeaconRequest, sets: Sequence[ResultSet]) -> Granularity:
    """The finest granularity a dataset answered at; the requested one when no dataset
    answered (there is nothing to protect then)."""
    if not sets:
        return request.granularity
    return max((s.granularity for s in sets), key=LEVEL.__getitem__)


def meta(
    settings: Settings, request: BeaconRequest, spec: EntryTypeSpec | None, returned: Granularity
) -> dict[str, Any]:
    return {
        "beaconId": beacon_id(settings),
        "apiVersion": API_VERSION,
        "returnedSchemas": [spec.returned_schema()] if spec is not None else [],
        "returnedGranularity": returned,
        "receivedRequestSummary": request.summary(),
        "testMode": request.test_mode,
    }


def entries_response(
    settings: Settings, request: BeaconRequest, spec: EntryTypeSpec, answer: Answer
) -> dict[str, Any]:
    """A boolean, count or resultsets response, by the granularity the datasets gave."""
    returned = returned_granularity(request, answer.sets)
    kept = _included(answer.sets, request)
    summary: dict[str, Any] = {"exists": any(s.exists for s in answer.sets)}
    if returned != "boolean":
        summary["numTotalResults"] = sum(s.count or 0 for s in answer.sets if s.count is not None)
    body: dict[str, Any] = {
        "meta": meta(settings, request, spec, returned),
        "responseSummary": summary,
    }
    if returned == "record":
        body["response"] = {"resultSets": [s.as_json() for s in kept]}
    info = _info(answer, kept, returned)
    if info:
        body["info"] = info
    if answer.handovers:
        body["beaconHandovers"] = answer.handovers
    return body


def _included(sets: Sequence[ResultSet], request: BeaconRequest) -> list[ResultSet]:
    if request.include == "ALL":
        return list(sets)
    if request.include == "NONE":
        return []
    wanted = request.include == "HIT"
    return [s for s in sets if s.exists == wanted]


def _info(answer: Answer, kept: Sequence[ResultSet], returned: Granularity) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if returned != "record" and kept:
        info["datasets"] = [s.summary() for s in kept]
    withheld = [s.id for s in answer.sets if s.count is None or s.granularity == "boolean"]
    if returned != "boolean" and withheld:
        info["countsWithheld"] = withheld
    if answer.warnings:
        info["warnings"] = list(dict.fromkeys(answer.warnings))
    if answer.refused:
        info["notAnswered"] = answer.refused
    return info


def collections_response(
    settings: Settings,
    request: BeaconRequest,
    spec: EntryTypeSpec,
    records: Sequence[dict[str, Any]],
    *,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """``/datasets`` and ``/cohorts``: public descriptions, at record granularity for anyone
    (they are the node's catalogue, not its data)."""
    body: dict[str, Any] = {
        "meta": meta(settings, request, spec, "record"),
        "responseSummary": {"exists": bool(records), "numTotalResults": len(records)},
        "response": {"collections": page(records, request)},
    }
    if warnings:
        body["info"] = {"warnings": list(dict.fromkeys(warnings))}
    return body


def filtering_terms_response(settings: Settings, listing: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": {"beaconId": beacon_id(settings), "apiVersion": API_VERSION, "returnedSchemas": []},
        "response": listing,
    }


def error_response(
    settings: Settings, status: int, message: str, request: BeaconRequest | None = None
) -> dict[str, Any]:
    """A beaconErrorResponse; the summary is the request's when it could be read."""
    asked = request or BeaconRequest()
    return {
        "meta": meta(settings, asked, None, "boolean"),
        "error": {"errorCode": status, "errorMessage": message},
    }


def handover(kind: tuple[str, str], url: str, note: str) -> dict[str, Any]:
    """A typed link: ``kind`` is the (CURIE, label) of what is behind ``url``."""
    return {"handoverType": {"id": kind[0], "label": kind[1]}, "url": url, "note": note}


# -- answering ----------------------------------------------------------------------------------

FILES = ("CUSTOM:genofed-dataset-files", "dataset files (genofed download)")
ACCESS = ("CUSTOM:genofed-access-request", "request access to a dataset")


@dataclass(frozen=True)
class Context:
    """One request: the node, its ontologies, the request as read, and who asks."""

    settings: Settings
    ontologies: Ontologies
    request: BeaconRequest
    caller: guard.Caller
    warnings: Sequence[str] = ()


@dataclass(frozen=True)
class Lookup:
    """An ``{id}`` route: the record of ``source`` whose related records are asked for."""

    source: EntryType
    id: str


def answer(
    session: Session, context: Context, entry: EntryType, lookup: Lookup | None
) -> dict[str, Any] | Refused:
    """The response to a query of ``entry`` (records related to ``lookup`` when given)."""
    found = catalogue(session)
    spec = ENTRY_TYPES[entry]
    selection = select_records(context.request.filters, entry, found, context.ontologies)
    warnings = [*context.warnings, *selection.warnings]
    if entry in COLLECTIONS:
        return _collections(found, context, spec, selection, lookup, warnings)
    result = Answer(warnings=warnings)
    datasets = _datasets(found, context.request, selection, lookup)
    if context.request.test_mode:
        datasets = []  # a test is answered without data
    if entry == "genomicVariant" or _by_variant(context.request, lookup):
        alleles = _alleles(session, context, found, selection, lookup, datasets, result.warnings)
        if entry == "genomicVariant":
            _answer_variants(session, context, found, alleles, result, lookup)
        else:
            _answer_carriers(session, context, found, entry, alleles, result, lookup)
    else:
        samples = _narrowed(selection.samples, _lookup_samples(found, lookup))
        _answer_records(session, context, found, entry, datasets, samples, result)
    return _finished(result, context, spec)


def _answer_records(
    session: Session,
    context: Context,
    found: Catalogue,
    entry: EntryType,
    datasets: list[str],
    samples: frozenset[str] | None,
    result: Answer,
) -> None:
    """Individuals, biosamples, runs or analyses: each dataset's count, as the guard allows,
    and its page of records when it allows them."""
    for dataset in datasets:
        ids = _members(found, entry, dataset, samples)
        asked = context.request.granularity
        ask = partial(guard.answer_count, session, context.caller, dataset, len(ids), asked)
        given = _guarded(result, dataset, ask)
        if given is not None:
            shown = page(ids, context.request) if given.granularity == "record" else []
            records = [record(found, context.ontologies, entry, r) for r in shown]
            result.sets.append(result_set(context, given, records))


def _by_variant(request: BeaconRequest, lookup: Lookup | None) -> bool:
    """Whether records are selected through alleles (their carriers): a variant's routes, or
    variant parameters given to another entry type ("individuals carrying ...")."""
    return request.variant is not None or (lookup is not None and lookup.source == "genomicVariant")


def _guarded(
    result: Answer, dataset: str, ask: Callable[[], guard.DatasetAnswer]
) -> guard.DatasetAnswer | None:
    """What the guard lets ``dataset`` say; None, with the reason noted, when it refuses."""
    try:
        return ask()
    except (guard.LoginRequired, guard.BudgetExhausted) as error:
        result.refused.append(f"{dataset}: {error}")
        result.errors.append(error)
        return None


def result_set(
    context: Context,
    given: guard.DatasetAnswer,
    records: Sequence[dict[str, Any]],
    handovers: Sequence[dict[str, Any]] = (),
) -> ResultSet:
    """A dataset's result set from the guard's answer; records and handovers only at record
    granularity, the files' handover only to those who may read them."""
    record_level = given.granularity == "record"
    return ResultSet(
        id=given.dataset,
        granularity=given.granularity,
        exists=given.exists,
        count=given.count,
        results=list(records) if record_level else [],
        exact=given.exact,
        note=given.note,
        handovers=[*_files_handover(context, given.dataset), *handovers] if record_level else [],
    )


def _finished(result: Answer, context: Context, spec: EntryTypeSpec) -> dict[str, Any] | Refused:
    """The response; a refusal when every dataset refused. Datasets that answered yes but do
    not open to the caller get a handover to apply for access."""
    if result.errors and not result.sets:
        return Refused(result.errors[0])
    closed = [s.id for s in result.sets if s.exists and s.id not in context.caller.readable]
    if closed:
        url = f"{context.settings.http.public_url}/access/requests"
        note = f"apply for {', '.join(closed)} with 'genofed access request'"
        result.handovers.append(handover(ACCESS, url, note))
    return entries_response(context.settings, context.request, spec, result)


def _files_handover(context: Context, dataset: str) -> list[dict[str, Any]]:
    if dataset not in context.caller.readable:
        return []
    url = f"{context.settings.http.public_url}/data/datasets/{dataset}/files"
    return [handover(FILES, url, f"the files of {dataset}: 'genofed download {dataset}'")]


def _lookup_samples(found: Catalogue, lookup: Lookup | None) -> frozenset[str] | None:
    """The samples an ``{id}`` route narrows to (none for a missing id); None for no lookup or
    a dataset's (that narrows datasets instead)."""
    if lookup is None or lookup.source in ("dataset", "genomicVariant"):
        return None
    if not found.exists(lookup.source, lookup.id):
        return frozenset()
    return found.samples_of(lookup.source, lookup.id)


def _narrowed(*sets: frozenset[str] | None) -> frozenset[str] | None:
    given = [s for s in sets if s is not None]
    return frozenset.intersection(*given) if given else None


def _datasets(
    found: Catalogue, request: BeaconRequest, selection: Selection, lookup: Lookup | None
) -> list[str]:
    """The datasets that answer: those asked (datasetIds), left by dataset filters, the one of a
    dataset's route."""
    unknown = sorted(set(request.datasets) - set(found.datasets))
    if unknown:
        raise InvalidRequest(
            "datasetIds", f"no released dataset {unknown[0][:40]!r} here: see /beacon/datasets"
        )
    return [
        dataset
        for dataset in found.datasets
        if (not request.datasets or dataset in request.datasets)
        and selection.allows_dataset(dataset)
        and (lookup is None or lookup.source != "dataset" or lookup.id == dataset)
    ]


def _members(
    found: Catalogue, entry: EntryType, dataset: str, samples: frozenset[str] | None
) -> list[str]:
    ids = found.in_dataset(entry, dataset)
    if samples is None:
        return ids
    return [r for r in ids if not found.samples_of(entry, r).isdisjoint(samples)]


def _collections(
    found: Catalogue,
    context: Context,
    spec: EntryTypeSpec,
    selection: Selection,
    lookup: Lookup | None,
    warnings: list[str],
) -> dict[str, Any]:
    """Datasets or cohorts: the node's public catalogue, listed without the guard (test mode
    too: it holds nothing sensitive)."""
    chosen = _datasets(found, context.request, selection, None)
    if spec.id == "dataset":
        ids = chosen
    else:
        reached = frozenset().union(*(found.datasets[d].samples for d in chosen))
        ids = [c for c in found.cohorts if not found.cohorts[c].samples.isdisjoint(reached)]
    if lookup is not None:
        ids = [i for i in ids if i == lookup.id]
    records = [record(found, context.ontologies, spec.id, i) for i in ids]
    return collections_response(context.settings, context.request, spec, records, warnings=warnings)


def terms(
    session: Session, context: Context, scope: EntryTypeSpec | None, record_id: str | None
) -> dict[str, Any]:
    """``/filtering_terms``: of the whole beacon, of individuals, or of one dataset or cohort."""
    found = catalogue(session)
    datasets: list[str] | None = None
    if scope is not None and scope.id == "dataset" and record_id is not None:
        datasets = [record_id] if record_id in found.datasets else []
    if scope is not None and scope.id == "cohort" and record_id is not None:
        members = found.cohorts[record_id].samples if record_id in found.cohorts else frozenset()
        datasets = [d for d in found.datasets if not found.datasets[d].samples.isdisjoint(members)]
    scopes: list[EntryType] | None = (
        ["individual"] if scope is not None and scope.id == "individual" else None
    )
    listing = filtering_terms(
        found, context.ontologies, min_counts(session, found), datasets=datasets, scopes=scopes
    )
    return filtering_terms_response(context.settings, listing)


def min_counts(session: Session, found: Catalogue) -> dict[str, int]:
    """Each dataset's minimum count, as the guard applies it."""
    return {d: guard.guard_settings(session, d).min_count for d in found.datasets}


# -- variants -----------------------------------------------------------------------------------

VCF = ("EDAM:3016", "VCF")
MAX_ALLELES = 10_000  # per query: a wider region must be asked in parts
COUNT_OF_CARRIERS = "the count is of individuals carrying the matching alleles"


def _alleles(
    session: Session,
    context: Context,
    found: Catalogue,
    selection: Selection,
    lookup: Lookup | None,
    datasets: list[str],
    warnings: list[str],
) -> dict[str, list[index.Allele]]:
    """The matching alleles of each answering dataset; with filters or a lookup, only their
    carriers among the selected samples count (an allele no selected sample carries drops)."""
    try:
        matched = _matched(session, context.request, datasets, lookup, warnings)
    except index.InvalidVariantQuery as error:
        raise InvalidRequest("requestParameters", str(error)) from None
    grouped: dict[str, list[index.Allele]] = {dataset: [] for dataset in datasets}
    for allele in matched:
        grouped[allele.dataset].append(allele)
    samples = _narrowed(selection.samples, _lookup_samples(found, lookup))
    if samples is None:
        return grouped
    for dataset, alleles in grouped.items():
        numbers = index.sample_numbers(session, dataset, samples)
        narrowed = [replace(a, carriers=a.carriers & numbers) for a in alleles]
        grouped[dataset] = [a for a in narrowed if a.carriers]
    return grouped


def _matched(
    session: Session,
    request: BeaconRequest,
    datasets: list[str],
    lookup: Lookup | None,
    warnings: list[str],
) -> list[index.Allele]:
    if lookup is not None and lookup.source == "genomicVariant":
        if request.variant is not None:
            raise InvalidRequest(
                "requestParameters", "a variant's own routes take no variant parameters"
            )
        return index.allele_by_id(session, datasets, lookup.id)
    parameters = request.variant
    if parameters is None:
        raise InvalidRequest(
            "requestParameters",
            "missing: give referenceName with start and end (0-based, end exclusive), start "
            "with alternateBases, or a geneId",
        )
    region = None
    if parameters.shape == "gene":
        region = index.gene_region(session, parameters.assembly, parameters.gene_id or "")
        if region is None:
            warnings.append(f"no loaded gene annotation has {parameters.gene_id}")
            return []
    query = variant_query(parameters, region)
    alleles = index.find_alleles(session, datasets, query, limit=MAX_ALLELES + 1)
    if len(alleles) > MAX_ALLELES:
        warnings.append(f"more than {MAX_ALLELES} alleles match: the first {MAX_ALLELES} answer")
    return alleles[:MAX_ALLELES]


def _digest(context: Context, lookup: Lookup | None) -> str:
    """The guard's digest of the question: the variant asked and the records it is asked of."""
    parameters: dict[str, Any] = (
        context.request.variant.as_json()["g_variant"] if context.request.variant else {}
    )
    if lookup is not None:
        parameters["lookup"] = f"{lookup.source}/{lookup.id}"
    return guard.query_digest(parameters, [item.text() for item in context.request.filters])


def _answer_variants(
    session: Session,
    context: Context,
    found: Catalogue,
    alleles: dict[str, list[index.Allele]],
    result: Answer,
    lookup: Lookup | None,
) -> None:
    """``/g_variants``: each dataset's alleles, as the guard lets it show them."""
    digest = _digest(context, lookup)
    for dataset, matched in alleles.items():
        asked = context.request.granularity
        ask = partial(
            guard.answer_variants, session, context.caller, dataset, matched, asked, digest
        )
        given = _guarded(result, dataset, ask)
        if given is None:
            continue
        url = f"{context.settings.http.public_url}/beacon/datasets/{dataset}"
        shown = page(given.alleles, context.request) if given.granularity == "record" else []
        records = [
            variant_record(found, a, _carrier_samples(session, a, MAX_CASES + 1), url)
            for a in shown
        ]
        answered = result_set(context, given, records, _vcf_handovers(session, context, dataset))
        if given.granularity == "record":
            answered = replace(answered, count=len(given.alleles))
        else:
            answered = replace(answered, note=_joined(answered.note, COUNT_OF_CARRIERS))
        result.sets.append(answered)


def _answer_carriers(
    session: Session,
    context: Context,
    found: Catalogue,
    entry: EntryType,
    alleles: dict[str, list[index.Allele]],
    result: Answer,
    lookup: Lookup | None,
) -> None:
    """``/g_variants/{id}/<entry>``, or ``<entry>`` with variant parameters: the records of the
    alleles' carriers. Who carries an allele is an allele answer: the guard decides it as one."""
    digest = _digest(context, lookup)
    for dataset, matched in alleles.items():
        asked = context.request.granularity
        ask = partial(
            guard.answer_variants, session, context.caller, dataset, matched, asked, digest
        )
        given = _guarded(result, dataset, ask)
        if given is None:
            continue
        if given.granularity != "record":
            counted = result_set(context, given, [])
            result.sets.append(replace(counted, note=_joined(counted.note, COUNT_OF_CARRIERS)))
            continue
        carriers = frozenset(s for a in given.alleles for s in _carrier_samples(session, a) if s)
        ids = _members(found, entry, dataset, carriers)
        records = [record(found, context.ontologies, entry, r) for r in page(ids, context.request)]
        result.sets.append(replace(result_set(context, given, records), count=len(ids)))


def _carrier_samples(
    session: Session, allele: index.Allele, limit: int | None = None
) -> list[str | None]:
    numbers = list(allele.carriers) if limit is None else list(allele.carriers)[:limit]
    return index.sample_accessions(session, allele.dataset, numbers)


def _vcf_handovers(session: Session, context: Context, dataset: str) -> list[dict[str, Any]]:
    """htsget tickets for the dataset's indexed variant files, for those who may read them."""
    if dataset not in context.caller.readable:
        return []
    files = session.scalars(
        select(ArchiveFile.accession)
        .join(BeaconSource, BeaconSource.file_id == ArchiveFile.id)
        .where(BeaconSource.dataset_accession == dataset, ArchiveFile.accession.is_not(None))
        .order_by(ArchiveFile.accession)
    )
    base = context.settings.http.public_url
    note = "an htsget ticket for the variant file; add referenceName, start and end for a region"
    return [handover(VCF, f"{base}/htsget/variants/{accession}", note) for accession in files]


def _joined(*notes: str | None) -> str | None:
    kept = [note for note in notes if note]
    return "; ".join(kept) if kept else None
