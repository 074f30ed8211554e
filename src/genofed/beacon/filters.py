"""Beacon filters: which records they select, and the terms ``/filtering_terms`` offers.

Every filter applies to one *scope* (an entry type) and comes down to a set of samples, or, for
dataset filters, a set of datasets: a run matches when its sample does, an analysis when one of
its samples does, a variant when one of its carriers does. Filters are ANDed. Scope, when the
filter does not give one, is the endpoint's entry type if that type knows the term or field, else
the individual (the home of phenotypes, sex and age), else the dataset.

- **ontology terms** (``HP:0001250``, ``NCIT:C16576``, ``ICD10:G40``, ``DUO:0000007``,
  ``MONDO:...``): records carrying the term or, with ``includeDescendantTerms`` (the default), any
  term below it; ``similarity`` widens to the ancestors' subtrees (:mod:`genofed.beacon.ontology`);
- **alphanumeric** (``{"id": "age", "operator": ">=", "value": "P70Y"}``, ``sex!female``): the
  fields of :data:`FIELDS`; ages are ISO 8601 durations compared as lengths of time, text with
  ``=``/``!`` and ``%`` wildcards, case-insensitive;
- **custom** terms of this beacon: ``population:<name>``.

Individual-scoped filters match a person as a whole (any of their samples); biosample-scoped
ones a sample alone. Collections (datasets, cohorts) are listed without the privacy guard, so
they take dataset filters only: a filter on people must go through ``/individuals``, whose answer
per dataset the guard governs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic_core import PydanticCustomError

from genofed.beacon.entities import COLLECTIONS, Catalogue, EntryType, duo_ids
from genofed.beacon.ontology import Ontologies
from genofed.beacon.requests import (
    AlphanumericFilter,
    CustomFilter,
    Filter,
    InvalidRequest,
    OntologyFilter,
)
from genofed.metadata.ontology import SEX_TERMS
from genofed.metadata.ontology import sex as read_sex

SCOPES: Mapping[str, EntryType] = {
    **{name: name for name in ("individual", "biosample", "run", "analysis", "dataset", "cohort")},
    "individuals": "individual",
    "biosamples": "biosample",
    "runs": "run",
    "analyses": "analysis",
    "datasets": "dataset",
    "cohorts": "cohort",
    "genomicVariant": "genomicVariant",
    "genomicVariation": "genomicVariant",
    "g_variants": "genomicVariant",
}
CUSTOM_PREFIXES = ("population",)
Values = tuple[str, ...]


@dataclass(frozen=True)
class Field:
    """An alphanumeric filter field: how its values compare, and where it is found."""

    kind: str  # "age", "sex" or "text"
    label: str
    scopes: tuple[EntryType, ...]


FIELDS: Mapping[str, Field] = {
    "sex": Field(
        "sex", "sex: female, male or unknown (or an NCIT term)", ("individual", "biosample")
    ),
    "age": Field(
        "age", "age at sample collection, an ISO 8601 duration", ("individual", "biosample")
    ),
    "population": Field("text", "population, as submitted", ("individual", "biosample")),
    "libraryStrategy": Field("text", "library strategy (WGS, WXS, RNA-Seq...)", ("run",)),
    "librarySource": Field("text", "library source (GENOMIC...)", ("run",)),
    "librarySelection": Field("text", "library selection (RANDOM, PCR...)", ("run",)),
    "libraryLayout": Field("text", "library layout (PAIRED or SINGLE)", ("run",)),
    "platform": Field("text", "sequencing platform (ILLUMINA...)", ("run",)),
    "instrumentModel": Field("text", "sequencing instrument model", ("run",)),
    "analysisType": Field("text", "analysis type (SEQUENCE_VARIATION...)", ("analysis",)),
    "assembly": Field("text", "reference assembly (GRCh37, GRCh38)", ("analysis",)),
    "name": Field("text", "dataset title", ("dataset",)),
}


@dataclass(frozen=True)
class Facts:
    """What filters see of one record: its ontology terms and its field values."""

    terms: frozenset[str]
    fields: Mapping[str, Values]


@dataclass(frozen=True)
class Selection:
    """What the filters leave: None means no restriction of that kind."""

    samples: frozenset[str] | None = None
    datasets: frozenset[str] | None = None
    warnings: tuple[str, ...] = ()

    def allows_dataset(self, dataset: str) -> bool:
        return self.datasets is None or dataset in self.datasets


# -- facts of each scope ------------------------------------------------------------------------


def facts(catalogue: Catalogue, scope: EntryType, record: str) -> Facts:
    """What filters see of a record, worked out once per catalogue."""
    return catalogue.memo(("facts", scope, record), lambda: _facts(catalogue, scope, record))


def _facts(catalogue: Catalogue, scope: EntryType, record: str) -> Facts:
    if scope == "biosample":
        return _sample_facts(catalogue, (record,))
    if scope == "individual":
        return _sample_facts(catalogue, catalogue.individuals[record].samples)
    if scope == "run":
        run = catalogue.runs[record]
        experiment = run.experiment
        fields = {
            name: _values(experiment.get(key))
            for name, key in (
                ("libraryStrategy", "library_strategy"),
                ("librarySource", "library_source"),
                ("librarySelection", "library_selection"),
                ("libraryLayout", "library_layout"),
                ("platform", "platform"),
                ("instrumentModel", "instrument"),
            )
        }
        return Facts(frozenset(), fields)
    if scope == "analysis":
        body = catalogue.analyses[record].body
        return Facts(
            frozenset(),
            {
                "analysisType": _values(body.get("analysis_type")),
                "assembly": _values(body.get("assembly")),
            },
        )
    if scope == "dataset":
        dataset = catalogue.datasets[record]
        return Facts(duo_ids(dataset.policy), {"name": (dataset.title,)})
    return Facts(frozenset(), {})


def _sample_facts(catalogue: Catalogue, sample_ids: Sequence[str]) -> Facts:
    samples = [catalogue.samples[s] for s in sample_ids]
    terms = {SEX_TERMS.get(s.sex, "") for s in samples}
    terms.update(t for s in samples for t in (*s.phenotypes, *s.diseases))
    terms.update(f"population:{s.population}" for s in samples if s.population)
    fields = {
        "sex": tuple(dict.fromkeys(s.sex for s in samples)),
        "age": tuple(s.age for s in samples if s.age),
        "population": tuple(s.population for s in samples if s.population),
    }
    return Facts(frozenset(terms - {""}), fields)


def _values(value: object) -> Values:
    return (str(value),) if value else ()


# -- applying filters ---------------------------------------------------------------------------


def select_records(
    filters: Sequence[Filter], entry: EntryType, catalogue: Catalogue, ontologies: Ontologies
) -> Selection:
    """The samples and datasets the filters leave for a query of ``entry``; raises
    :class:`InvalidRequest` for a filter it cannot apply."""
    samples: frozenset[str] | None = None
    datasets: frozenset[str] | None = None
    warnings: list[str] = []
    for item in filters:
        scope = _scope(item, entry, catalogue)
        test = _test(item, ontologies, warnings)
        if scope in ("dataset", "cohort"):
            if scope == "cohort":
                raise InvalidRequest("filters[].scope", "cohorts take no filters of their own")
            matched = frozenset(
                d for d in catalogue.datasets if test(facts(catalogue, "dataset", d))
            )
            datasets = matched if datasets is None else datasets & matched
            continue
        if entry in COLLECTIONS:
            raise InvalidRequest(
                "filters",
                f"{item.text()!r} filters {scope} records, and {entry} lists take dataset filters "
                f"only: ask /individuals (or /biosamples) with it, each dataset answers there",
            )
        matched = _matching_samples(catalogue, scope, test)
        samples = matched if samples is None else samples & matched
    return Selection(samples, datasets, tuple(dict.fromkeys(warnings)))


def _matching_samples(
    catalogue: Catalogue, scope: EntryType, test: Callable[[Facts], bool]
) -> frozenset[str]:
    if scope == "genomicVariant":
        raise InvalidRequest(
            "filters[].scope", "variants are selected by request parameters, not filters"
        )
    return frozenset(
        sample
        for record in catalogue.ids(scope)
        if test(facts(catalogue, scope, record))
        for sample in catalogue.samples_of(scope, record)
    )


def _scope(item: Filter, entry: EntryType, catalogue: Catalogue) -> EntryType:
    if item.scope is not None:
        scope = SCOPES.get(item.scope)
        if scope is None:
            raise InvalidRequest(
                "filters[].scope",
                f"{item.scope[:30]!r} is not an entry type: use individual, biosample, run, "
                "analysis or dataset",
            )
        return scope
    member = entry if entry not in ("genomicVariant",) else "individual"
    if isinstance(item, AlphanumericFilter):
        field = _field(item.id)
        if member in field.scopes:
            return member
        return "individual" if "individual" in field.scopes else field.scopes[0]
    if _is_custom(item):
        return member if member in ("individual", "biosample") else "individual"
    prefix = item.id.partition(":")[0]
    for candidate in dict.fromkeys((member, "individual", "dataset")):
        if prefix in _prefixes(catalogue, candidate):
            return candidate
    return member


def _prefixes(catalogue: Catalogue, scope: EntryType) -> frozenset[str]:
    """The CURIE prefixes that records of ``scope`` carry."""
    return catalogue.memo(("prefixes", scope), lambda: _carried_prefixes(catalogue, scope))


def _carried_prefixes(catalogue: Catalogue, scope: EntryType) -> frozenset[str]:
    if scope in ("individual", "biosample"):
        return frozenset(
            term.partition(":")[0]
            for s in catalogue.samples.values()
            for term in (*s.phenotypes, *s.diseases, "NCIT:sex")
        )
    if scope == "dataset":
        return frozenset(
            term.partition(":")[0]
            for d in catalogue.datasets.values()
            for term in duo_ids(d.policy)
        )
    return frozenset()


def _is_custom(item: Filter) -> bool:
    return isinstance(item, CustomFilter) or item.id.partition(":")[0] in CUSTOM_PREFIXES


def _field(name: str) -> Field:
    field = FIELDS.get(name)
    if field is None:
        raise InvalidRequest(
            "filters[].id",
            f"{name[:30]!r} is not a field this beacon filters on: use one of "
            f"{', '.join(FIELDS)} (see /filtering_terms)",
        )
    return field


def _test(item: Filter, ontologies: Ontologies, warnings: list[str]) -> Callable[[Facts], bool]:
    """A predicate over a record's facts for one filter."""
    if isinstance(item, AlphanumericFilter):
        return _alphanumeric_test(item)
    if _is_custom(item):
        return _custom_test(item)
    assert isinstance(item, OntologyFilter)
    expansion = ontologies.expand(
        item.id, descendants=item.include_descendants, similarity=item.similarity
    )
    if not expansion.known and (item.include_descendants or item.similarity != "exact"):
        source = ontologies.source(item.id)
        where = f"not in {source.resource.name}" if source else "of an ontology not loaded here"
        warnings.append(f"{item.id} is {where}: it matched exactly, without descendants")
    terms = expansion.terms
    return lambda found: not terms.isdisjoint(found.terms)


def _custom_test(item: Filter) -> Callable[[Facts], bool]:
    prefix, colon, value = item.id.partition(":")
    if prefix not in CUSTOM_PREFIXES or not colon or not value:
        raise InvalidRequest(
            "filters[].id",
            f"{item.id[:40]!r} is not a custom term of this beacon: custom terms are "
            f"{', '.join(p + ':<value>' for p in CUSTOM_PREFIXES)} (see /filtering_terms)",
        )
    wanted = f"{prefix}:{value}".lower()
    return lambda found: any(t.lower() == wanted for t in found.terms)


def _alphanumeric_test(item: AlphanumericFilter) -> Callable[[Facts], bool]:
    field = _field(item.id)
    if field.kind == "age":
        return _age_test(item)
    if item.operator not in ("=", "!"):
        raise InvalidRequest(
            "filters[].operator",
            f"{item.id} compares with = and ! only; < and > compare ages (e.g. age>=P70Y)",
        )
    value = _sex_value(item.value) if field.kind == "sex" else item.value
    pattern = _wildcard(value)
    if item.operator == "=":
        return lambda found: any(pattern.fullmatch(v) for v in found.fields.get(item.id, ()))
    return lambda found: not any(pattern.fullmatch(v) for v in found.fields.get(item.id, ()))


def _sex_value(value: str) -> str:
    if "%" in value:
        return value
    try:
        return read_sex(value)
    except PydanticCustomError:
        raise InvalidRequest(
            "filters[].value", f"{value[:30]!r} is not a sex: write female, male or unknown"
        ) from None


def _wildcard(value: str) -> re.Pattern[str]:
    """``%`` matches any text, as in SQL LIKE; everything else literally, ignoring case."""
    return re.compile(".*".join(re.escape(part) for part in value.split("%")), re.IGNORECASE)


_COMPARE: Mapping[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _age_test(item: AlphanumericFilter) -> Callable[[Facts], bool]:
    wanted = duration_days(item.value)
    if wanted is None:
        raise InvalidRequest(
            "filters[].value",
            f"{item.value[:30]!r} is not an age: write an ISO 8601 duration, e.g. P70Y or P6M",
        )
    compare = _COMPARE[item.operator]
    if item.operator == "!":
        return lambda found: (
            not any(duration_days(age) == wanted for age in found.fields.get("age", ()))
        )
    return lambda found: any(
        compare(days, wanted)
        for days in map(duration_days, found.fields.get("age", ()))
        if days is not None
    )


_DURATION = re.compile(
    r"P(?=\d|T\d)(?:(?P<Y>\d+(?:\.\d+)?)Y)?(?:(?P<M>\d+(?:\.\d+)?)M)?(?:(?P<W>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<D>\d+(?:\.\d+)?)D)?(?:T(?=\d)(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_DAYS = {"Y": 365.25, "M": 30.4375, "W": 7.0, "D": 1.0, "h": 1 / 24, "m": 1 / 1440, "s": 1 / 86400}


@lru_cache(maxsize=8192)  # the same few ages, over and over
def duration_days(text: str) -> float | None:
    """An ISO 8601 duration as days (a year is 365.25, a month a twelfth of it): P1Y > P11M,
    P18M = P1Y6M. None when ``text`` is not a duration."""
    match = _DURATION.fullmatch(text.strip().upper()) if len(text) < 64 else None
    if match is None:
        return None
    return sum(float(v) * _DAYS[unit] for unit, v in match.groupdict().items() if v)


# -- /filtering_terms ---------------------------------------------------------------------------


def filtering_terms(
    catalogue: Catalogue,
    ontologies: Ontologies,
    min_counts: Mapping[str, int],
    *,
    datasets: Iterable[str] | None = None,
    scopes: Sequence[EntryType] | None = None,
) -> dict[str, Any]:
    """The filters a client may use, for ``beaconFilteringTermsResults``.

    Terms found on people are listed only when, in some dataset, at least that dataset's
    minimum count of individuals carry them (``min_counts``, the guard's setting): the list is
    public, and a term carried by one person would tell that such a person is here.
    """
    chosen = sorted(catalogue.datasets if datasets is None else datasets)
    people_terms = _frequent_terms(catalogue, chosen, min_counts)
    dataset_terms = {t for d in chosen for t in duo_ids(catalogue.datasets[d].policy)}
    listed: dict[str, dict[str, Any]] = {}
    for curie in sorted(people_terms | dataset_terms):
        where = ["individual", "biosample"] if curie in people_terms else []
        where += ["dataset"] if curie in dataset_terms else []
        listed[curie] = _ontology_term(ontologies, curie, where)
    terms = list(listed.values())
    for name, field in FIELDS.items():
        terms.append(_field_term(catalogue, chosen, name, field, people_terms))
    wanted = set(scopes) if scopes is not None else None
    if wanted is not None:
        terms = [t for t in terms if wanted & set(t["scopes"])]
    prefixes = {
        t["id"].partition(":")[0] for t in terms if t["type"] not in ("alphanumeric", "custom")
    }
    return {"filteringTerms": terms, "resources": ontologies.resources(prefixes)}


def _frequent_terms(
    catalogue: Catalogue, datasets: Sequence[str], min_counts: Mapping[str, int]
) -> set[str]:
    listed: set[str] = set()
    for dataset in datasets:
        counted: Counter[str] = Counter()
        for person in catalogue.in_dataset("individual", dataset):
            counted.update(facts(catalogue, "individual", person).terms)
        threshold = min_counts[dataset]
        listed.update(t for t, n in counted.items() if n >= threshold)
    return listed


def _ontology_term(ontologies: Ontologies, curie: str, scopes: list[str]) -> dict[str, Any]:
    if curie.partition(":")[0] in CUSTOM_PREFIXES:
        return {"type": "custom", "id": curie, "label": curie.replace(":", ": "), "scopes": scopes}
    source = ontologies.source(curie)
    described: dict[str, Any] = {
        "type": source.resource.name if source is not None else "ontologyTerm",
        "id": curie,
        "scopes": scopes,
    }
    label = ontologies.label(curie)
    if label:
        described["label"] = label
    return described


def _field_term(
    catalogue: Catalogue, datasets: Sequence[str], name: str, field: Field, people: set[str]
) -> dict[str, Any]:
    """An alphanumeric field, with its values where they are few: for fields of people only the
    values frequent enough to list (see :func:`filtering_terms`)."""
    described: dict[str, Any] = {
        "type": "alphanumeric",
        "id": name,
        "label": field.label,
        "scopes": list(field.scopes),
    }
    if field.kind == "sex":
        described["values"] = list(SEX_TERMS)
    elif name == "population":
        values = sorted(t.partition(":")[2] for t in people if t.startswith("population:"))
        if values:
            described["values"] = values
    elif field.kind == "text" and name != "name":
        values = sorted(
            {
                value
                for dataset in datasets
                for scope in field.scopes
                for record in catalogue.in_dataset(scope, dataset)
                for value in facts(catalogue, scope, record).fields.get(name, ())
            }
        )
        if values:
            described["values"] = values[:50]
    return described
