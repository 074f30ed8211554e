"""The Beacon entry types built from the node's metadata, and their records.

Only what released datasets reach is visible: a dataset, its runs (through their experiments, the
samples) and analyses (their samples), the studies of these, and its policy. The mapping:

==============  ==================================================================================
Beacon          genofed metadata
==============  ==================================================================================
dataset         a released dataset: name = title; dataUseConditions = its policy's DUO terms (the
                permission with DS diseases as modifiers, then each modifier, a parameter in the
                label); create/updateDateTime
cohort          a study whose samples a released dataset reaches: cohortType ``study-defined``,
                name = title, cohortSize = its individuals there
individual      a person: the samples sharing a submitter's ``subject_id`` (a sample without one
                is a person of its own). id = ``ind-`` + 16 hex of sha256(submitter, subject):
                stable and without the hospital's own pseudonym. sex (NCIT), phenotypicFeatures
                and diseases (union over the samples), ages and population in ``info``
biosample       a sample: id = accession, individualId, collectionMoment = age at collection,
                phenotypicFeatures, notes = description; sampleOriginType ``OBI:0001479``
                (specimen from organism) and biosampleStatus ``NCIT:C17998`` (unknown), which the
                metadata does not record
run             a run with its experiment: biosampleId, runDate = date submitted, library fields,
                librarySource as a term (GENOMIC = ``GENEPIO:0001966``), platform; the instrument
                in ``info``
analysis        an analysis: analysisDate = date submitted, pipelineName = title; biosampleId only
                when it has one sample (a joint call has many: ``info.biosampleIds``)
==============  ==================================================================================

Ages are not given as ``onset`` or ``ageOfOnset``: the schemas' ``oneOf`` there accepts no age
object (Age and AgeRange both match any object), so an age lives in ``collectionMoment`` and
``info``. The catalogue is read once and kept until the metadata changes (:func:`catalogue`).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genofed.beacon.index import Allele, VariantQuery
from genofed.beacon.ontology import Ontologies
from genofed.beacon.requests import VariantParameters
from genofed.db import MetadataLink, MetadataObject, ObjectKind
from genofed.metadata import duo
from genofed.metadata.datasets import released_datasets
from genofed.metadata.ontology import SEX_TERMS

EntryType = Literal[
    "individual", "biosample", "run", "analysis", "dataset", "cohort", "genomicVariant"
]
MEMBERS: tuple[EntryType, ...] = ("individual", "biosample", "run", "analysis")
COLLECTIONS: tuple[EntryType, ...] = ("dataset", "cohort")
# The DUO release with NPU and NCU (NPUNCU obsolete), the codes genofed.metadata.duo knows.
DUO_VERSION = "2021-02-23"
SPECIMEN = {"id": "OBI:0001479", "label": "specimen from organism"}
UNKNOWN_STATUS = {"id": "NCIT:C17998", "label": "Unknown"}
LIBRARY_SOURCES = {"GENOMIC": {"id": "GENEPIO:0001966", "label": "genomic source"}}
_CHUNK = 500  # ids per IN (...): well below SQLite's limit on bound parameters
T = TypeVar("T")


# -- the views ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    id: str
    alias: str
    individual: str
    sex: str  # female, male or unknown
    age: str | None
    phenotypes: tuple[str, ...]
    diseases: tuple[str, ...]
    population: str | None
    description: str | None
    study: str | None


@dataclass(frozen=True)
class Individual:
    id: str
    samples: tuple[str, ...]  # by accession: the first one speaks first


@dataclass(frozen=True)
class Run:
    id: str
    sample: str | None
    submitted: datetime
    experiment: Mapping[str, Any]
    file_type: str | None


@dataclass(frozen=True)
class Analysis:
    id: str
    title: str
    samples: tuple[str, ...]
    study: str | None
    submitted: datetime
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Dataset:
    id: str
    title: str
    description: str | None
    created: datetime
    updated: datetime
    policy: Mapping[str, Any]
    samples: frozenset[str]
    runs: frozenset[str]
    analyses: frozenset[str]


@dataclass(frozen=True)
class Cohort:
    id: str
    title: str
    description: str | None
    study_type: str | None
    samples: frozenset[str]


@dataclass(frozen=True)
class Catalogue:
    """Everything the beacon may describe, keyed by id, each kind in id order."""

    datasets: Mapping[str, Dataset]
    cohorts: Mapping[str, Cohort]
    individuals: Mapping[str, Individual]
    samples: Mapping[str, Sample]
    runs: Mapping[str, Run]
    analyses: Mapping[str, Analysis]
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def memo(self, key: Any, build: Callable[[], T]) -> T:
        """``build()``, once per catalogue: what is derived from it (filter facts, say) lives as
        long as it does, and a changed catalogue starts afresh."""
        if key not in self._memo:
            self._memo[key] = build()
        found: T = self._memo[key]
        return found

    def ids(self, entry: EntryType) -> Sequence[str]:
        return list(self._table(entry))

    def _table(self, entry: EntryType) -> Mapping[str, Any]:
        tables: dict[str, Mapping[str, Any]] = {
            "individual": self.individuals,
            "biosample": self.samples,
            "run": self.runs,
            "analysis": self.analyses,
            "dataset": self.datasets,
            "cohort": self.cohorts,
        }
        return tables[entry]

    def exists(self, entry: EntryType, record: str) -> bool:
        return record in self._table(entry)

    def samples_of(self, entry: EntryType, record: str) -> frozenset[str]:
        """The samples (biosample ids) a record stands on: how entry types relate."""
        if entry == "biosample":
            return frozenset({record}) if record in self.samples else frozenset()
        if entry == "individual":
            return (
                frozenset(self.individuals[record].samples)
                if record in self.individuals
                else frozenset()
            )
        if entry == "run":
            run = self.runs.get(record)
            return frozenset({run.sample}) if run is not None and run.sample else frozenset()
        if entry == "analysis":
            return (
                frozenset(self.analyses[record].samples) if record in self.analyses else frozenset()
            )
        if entry == "dataset":
            return self.datasets[record].samples if record in self.datasets else frozenset()
        if entry == "cohort":
            return self.cohorts[record].samples if record in self.cohorts else frozenset()
        raise ValueError(f"{entry} records are not made of samples")

    def in_dataset(self, entry: EntryType, dataset: str) -> list[str]:
        """The records of ``entry`` a dataset holds, in id order: runs and analyses it lists, the
        samples and individuals these reach."""
        return self.memo(("in", entry, dataset), lambda: self._held(entry, self.datasets[dataset]))

    def _held(self, entry: EntryType, held: Dataset) -> list[str]:
        if entry == "run":
            return sorted(held.runs)
        if entry == "analysis":
            return sorted(held.analyses)
        if entry == "biosample":
            return sorted(held.samples)
        if entry == "individual":
            return sorted({self.samples[s].individual for s in held.samples})
        raise ValueError(f"a dataset does not hold {entry} records")


# -- reading the catalogue ------------------------------------------------------------------------

_cache: dict[str, tuple[tuple[Any, ...], Catalogue]] = {}
_cache_lock = threading.Lock()


def catalogue(session: Session) -> Catalogue:
    """The catalogue, read again only when the metadata changed (objects or links added, an
    object updated, a dataset released or deprecated)."""
    stamp = _stamp(session)
    key = str(session.get_bind().engine.url)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    built = load_catalogue(session)
    with _cache_lock:
        _cache[key] = (stamp, built)
    return built


def _stamp(session: Session) -> tuple[Any, ...]:
    objects = session.execute(
        select(func.count(MetadataObject.id), func.max(MetadataObject.updated_at))
    ).one()
    links = session.scalar(select(func.count()).select_from(MetadataLink))
    return (objects[0], objects[1], links)


def load_catalogue(session: Session) -> Catalogue:
    """Read the released datasets and everything they reach, in a few queries per level."""
    roots = released_datasets(session)
    objects, links = _reachable(session, roots)
    linked: dict[str, dict[str, list[MetadataObject]]] = defaultdict(lambda: defaultdict(list))
    for link in links:
        linked[link.source_id][link.relation].append(objects[link.target_id])
    samples = _samples(objects.values(), linked)
    runs = _runs(objects.values(), linked)
    analyses = _analyses(objects.values(), linked)
    datasets = {str(d.accession): _dataset(d, linked, runs, analyses) for d in roots if d.accession}
    return Catalogue(
        datasets=datasets,
        cohorts=_cohorts(objects.values(), samples, datasets),
        individuals=_individuals(samples),
        samples=samples,
        runs=runs,
        analyses=analyses,
    )


def _reachable(
    session: Session, roots: Sequence[MetadataObject]
) -> tuple[dict[str, MetadataObject], list[MetadataLink]]:
    """The objects the roots reach by links, level by level (dataset → run → experiment →
    sample → study), and those links."""
    objects = {root.id: root for root in roots}
    links: list[MetadataLink] = []
    frontier = list(objects)
    while frontier:
        found = [
            link
            for chunk in _chunks(frontier)
            for link in session.scalars(
                select(MetadataLink).where(MetadataLink.source_id.in_(chunk))
            )
        ]
        links.extend(found)
        new = sorted({link.target_id for link in found} - objects.keys())
        for chunk in _chunks(new):
            objects.update(
                (o.id, o)
                for o in session.scalars(select(MetadataObject).where(MetadataObject.id.in_(chunk)))
            )
        frontier = new
    return objects, links


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


Linked = Mapping[str, Mapping[str, list[MetadataObject]]]


def _of_kind(objects: Any, kind: ObjectKind) -> list[MetadataObject]:
    return sorted((o for o in objects if o.kind == kind and o.accession), key=lambda o: o.accession)


def _first(linked: Linked, source: MetadataObject, relation: str) -> MetadataObject | None:
    found = linked.get(source.id, {}).get(relation, [])
    return found[0] if found else None


def _accession(obj: MetadataObject | None) -> str | None:
    return str(obj.accession) if obj is not None and obj.accession else None


def _samples(objects: Any, linked: Linked) -> dict[str, Sample]:
    found = {}
    for obj in _of_kind(objects, ObjectKind.SAMPLE):
        body = obj.body
        subject = body.get("subject_id") or f"sample {obj.accession}"
        found[str(obj.accession)] = Sample(
            id=str(obj.accession),
            alias=obj.alias,
            individual=individual_id(obj.submitter, subject),
            sex=body.get("sex", "unknown"),
            age=body.get("age"),
            phenotypes=tuple(body.get("phenotypes", [])),
            diseases=tuple(body.get("diseases", [])),
            population=body.get("population"),
            description=body.get("description"),
            study=_accession(_first(linked, obj, "study")),
        )
    return found


def individual_id(submitter: str, subject: str) -> str:
    """A person's id: stable, unique per submitter, and not their pseudonym at the hospital."""
    return "ind-" + hashlib.sha256(f"{submitter}\x00{subject}".encode()).hexdigest()[:16]


def _individuals(samples: Mapping[str, Sample]) -> dict[str, Individual]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for sample in samples.values():  # in accession order
        grouped[sample.individual].append(sample.id)
    return {person: Individual(person, tuple(ids)) for person, ids in sorted(grouped.items())}


def _runs(objects: Any, linked: Linked) -> dict[str, Run]:
    found = {}
    for obj in _of_kind(objects, ObjectKind.RUN):
        experiment = _first(linked, obj, "experiment")
        sample = _first(linked, experiment, "sample") if experiment is not None else None
        found[str(obj.accession)] = Run(
            id=str(obj.accession),
            sample=_accession(sample),
            submitted=obj.created_at,
            experiment={
                **(experiment.body if experiment is not None else {}),
                "accession": _accession(experiment),
            },
            file_type=obj.body.get("file_type"),
        )
    return found


def _analyses(objects: Any, linked: Linked) -> dict[str, Analysis]:
    found = {}
    for obj in _of_kind(objects, ObjectKind.ANALYSIS):
        samples = sorted(filter(None, map(_accession, linked.get(obj.id, {}).get("samples", []))))
        found[str(obj.accession)] = Analysis(
            id=str(obj.accession),
            title=obj.body.get("title", obj.alias),
            samples=tuple(samples),
            study=_accession(_first(linked, obj, "study")),
            submitted=obj.created_at,
            body=obj.body,
        )
    return found


def _dataset(
    obj: MetadataObject,
    linked: Linked,
    runs: Mapping[str, Run],
    analyses: Mapping[str, Analysis],
) -> Dataset:
    relations = linked.get(obj.id, {})
    run_ids = frozenset(filter(None, map(_accession, relations.get("runs", []))))
    analysis_ids = frozenset(filter(None, map(_accession, relations.get("analyses", []))))
    samples = {runs[r].sample for r in run_ids if r in runs and runs[r].sample}
    samples.update(s for a in analysis_ids if a in analyses for s in analyses[a].samples)
    policy = _first(linked, obj, "policy")
    return Dataset(
        id=str(obj.accession),
        title=obj.body.get("title", obj.alias),
        description=obj.body.get("description"),
        created=obj.created_at,
        updated=obj.updated_at,
        policy=policy.body if policy is not None else {},
        samples=frozenset(s for s in samples if s is not None),
        runs=run_ids,
        analyses=analysis_ids,
    )


def _cohorts(
    objects: Any, samples: Mapping[str, Sample], datasets: Mapping[str, Dataset]
) -> dict[str, Cohort]:
    reached = frozenset().union(*(d.samples for d in datasets.values()))
    found = {}
    for obj in _of_kind(objects, ObjectKind.STUDY):
        members = frozenset(
            s.id for s in samples.values() if s.study == obj.accession and s.id in reached
        )
        if members:
            found[str(obj.accession)] = Cohort(
                id=str(obj.accession),
                title=obj.body.get("title", obj.alias),
                description=obj.body.get("description"),
                study_type=obj.body.get("study_type"),
                samples=members,
            )
    return found


# -- records ----------------------------------------------------------------------------------


def record(
    catalogue: Catalogue, ontologies: Ontologies, entry: EntryType, record_id: str
) -> dict[str, Any]:
    """The record of ``entry`` with id ``record_id``, as its Beacon default schema has it."""
    builders = {
        "individual": individual_record,
        "biosample": biosample_record,
        "run": run_record,
        "analysis": analysis_record,
        "dataset": dataset_record,
        "cohort": cohort_record,
    }
    built: dict[str, Any] = builders[entry](catalogue, ontologies, record_id)
    return built


def term(ontologies: Ontologies, curie: str) -> dict[str, str]:
    """An ontology term with its label when the ontology is loaded."""
    label = ontologies.label(curie)
    return {"id": curie, "label": label} if label else {"id": curie}


def sex_term(sex: str) -> dict[str, str]:
    return {"id": SEX_TERMS.get(sex, SEX_TERMS["unknown"]), "label": sex}


def individual_record(catalogue: Catalogue, ontologies: Ontologies, person: str) -> dict[str, Any]:
    samples = [catalogue.samples[s] for s in catalogue.individuals[person].samples]
    sexes = [s.sex for s in samples if s.sex != "unknown"]
    phenotypes = _union(s.phenotypes for s in samples)
    diseases = _union(s.diseases for s in samples)
    built: dict[str, Any] = {"id": person, "sex": sex_term(sexes[0] if sexes else "unknown")}
    if phenotypes:
        built["phenotypicFeatures"] = [{"featureType": term(ontologies, p)} for p in phenotypes]
    if diseases:
        built["diseases"] = [{"diseaseCode": term(ontologies, d)} for d in diseases]
    info: dict[str, Any] = {"biosampleIds": [s.id for s in samples]}
    ages = [s.age for s in samples if s.age]
    if ages:
        info["agesAtCollection"] = ages
    populations = _union((s.population,) for s in samples if s.population)
    if populations:
        info["population"] = populations[0] if len(populations) == 1 else populations
    built["info"] = info
    return built


def biosample_record(
    catalogue: Catalogue, ontologies: Ontologies, sample_id: str
) -> dict[str, Any]:
    sample = catalogue.samples[sample_id]
    built: dict[str, Any] = {
        "id": sample.id,
        "individualId": sample.individual,
        "biosampleStatus": dict(UNKNOWN_STATUS),
        "sampleOriginType": dict(SPECIMEN),
    }
    if sample.age:
        built["collectionMoment"] = sample.age
    if sample.phenotypes:
        built["phenotypicFeatures"] = [
            {"featureType": term(ontologies, p)} for p in sample.phenotypes
        ]
    if sample.description:
        built["notes"] = sample.description
    info: dict[str, Any] = {"sampleName": sample.alias, "sex": sample.sex}
    if sample.diseases:
        info["diseases"] = [term(ontologies, d) for d in sample.diseases]
    if sample.population:
        info["population"] = sample.population
    if sample.study:
        info["studyId"] = sample.study
    built["info"] = info
    return built


def run_record(catalogue: Catalogue, ontologies: Ontologies, run_id: str) -> dict[str, Any]:
    run = catalogue.runs[run_id]
    experiment = run.experiment
    built: dict[str, Any] = {
        "id": run.id,
        "biosampleId": run.sample or "",
        "runDate": run.submitted.date().isoformat(),
    }
    if run.sample:
        built["individualId"] = catalogue.samples[run.sample].individual
    for name, key in (
        ("libraryLayout", "library_layout"),
        ("librarySelection", "library_selection"),
        ("libraryStrategy", "library_strategy"),
        ("platform", "platform"),
    ):
        if experiment.get(key):
            built[name] = experiment[key]
    source = experiment.get("library_source")
    if source:
        built["librarySource"] = LIBRARY_SOURCES.get(
            source, {"id": f"INSDC:{source.replace(' ', '_')}", "label": source.lower()}
        )
    info = {
        "experimentId": experiment.get("accession"),
        "instrumentModel": experiment.get("instrument"),
        "fileType": run.file_type,
    }
    built["info"] = {key: value for key, value in info.items() if value}
    return built


def analysis_record(
    catalogue: Catalogue, ontologies: Ontologies, analysis_id: str
) -> dict[str, Any]:
    analysis = catalogue.analyses[analysis_id]
    built: dict[str, Any] = {
        "id": analysis.id,
        "analysisDate": analysis.submitted.date().isoformat(),
        "pipelineName": analysis.title,
    }
    if len(analysis.samples) == 1:
        built["biosampleId"] = analysis.samples[0]
        built["individualId"] = catalogue.samples[analysis.samples[0]].individual
    info = {
        "analysisType": analysis.body.get("analysis_type"),
        "assembly": analysis.body.get("assembly"),
        "description": analysis.body.get("description"),
        "studyId": analysis.study,
        "biosampleIds": list(analysis.samples),
    }
    built["info"] = {key: value for key, value in info.items() if value}
    return built


def dataset_record(catalogue: Catalogue, ontologies: Ontologies, dataset_id: str) -> dict[str, Any]:
    dataset = catalogue.datasets[dataset_id]
    built: dict[str, Any] = {
        "id": dataset.id,
        "name": dataset.title,
        "createDateTime": _timestamp(dataset.created),
        "updateDateTime": _timestamp(dataset.updated),
    }
    if dataset.description:
        built["description"] = dataset.description
    conditions = data_use(ontologies, dataset.policy)
    if conditions:
        built["dataUseConditions"] = {"duoDataUse": conditions}
    built["info"] = {
        "individuals": len({catalogue.samples[s].individual for s in dataset.samples}),
        "biosamples": len(dataset.samples),
    }
    return built


def data_use(ontologies: Ontologies, policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A policy's DUO terms: the permission (DS with its diseases), then each modifier."""
    permission = duo.TERMS.get(policy.get("permission", ""))
    if permission is None:
        return []
    first: dict[str, Any] = {"id": permission.id, "label": permission.label, "version": DUO_VERSION}
    if policy.get("diseases"):
        first["modifiers"] = [term(ontologies, d) for d in policy["diseases"]]
    conditions = [first]
    for modifier in policy.get("modifiers", []):
        code, value = modifier.get("code", ""), modifier.get("value")
        known = duo.TERMS.get(code)
        if known is not None:
            label = f"{known.label}: {value}" if value else known.label
            conditions.append({"id": known.id, "label": label, "version": DUO_VERSION})
    return conditions


def duo_ids(policy: Mapping[str, Any]) -> frozenset[str]:
    """The DUO ids and disease terms of a policy, which dataset filters match."""
    codes = [policy.get("permission", "")] + [
        m.get("code", "") for m in policy.get("modifiers", [])
    ]
    ids = {duo.TERMS[code].id for code in codes if code in duo.TERMS}
    return frozenset(ids | set(policy.get("diseases", [])))


def cohort_record(catalogue: Catalogue, ontologies: Ontologies, cohort_id: str) -> dict[str, Any]:
    cohort = catalogue.cohorts[cohort_id]
    built: dict[str, Any] = {
        "id": cohort.id,
        "name": cohort.title,
        "cohortType": "study-defined",
        "cohortSize": len({catalogue.samples[s].individual for s in cohort.samples}),
    }
    info = {"description": cohort.description, "studyType": cohort.study_type}
    built["info"] = {key: value for key, value in info.items() if value}
    return built


def _union(groups: Any) -> list[str]:
    """Items of several sequences, once each, in first-seen order."""
    return list(dict.fromkeys(item for group in groups for item in group))


def _timestamp(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- genomic variants -----------------------------------------------------------------------------

# RefSeq versions of the primary chromosomes in GRCh37; GRCh38's are one more.
_GRCH37_VERSIONS = dict(
    zip(
        [str(n) for n in range(1, 23)] + ["X", "Y"],
        [10, 11, 11, 11, 9, 11, 13, 10, 11, 10, 9, 11, 10, 8, 9, 9, 10, 9, 9, 10, 8, 10, 10, 9],
        strict=True,
    )
)
MAX_CASES = 100  # carriers listed in a variant record; the rest through /g_variants/{id}/...


def sequence_id(assembly: str, chrom: str) -> str:
    """The RefSeq accession of a primary chromosome (``refseq:NC_000001.11``), else the
    assembly's own name for the contig."""
    if chrom == "MT":
        return "refseq:NC_012920.1"
    version = _GRCH37_VERSIONS.get(chrom)
    if version is None or assembly not in ("GRCh37", "GRCh38"):
        return f"{assembly}:{chrom}"
    number = {"X": 23, "Y": 24}.get(chrom) or int(chrom)
    return f"refseq:NC_{number:06d}.{version + (assembly == 'GRCh38')}"


def variant_query(
    parameters: VariantParameters, region: tuple[str, int, int] | None = None
) -> VariantQuery:
    """The index query of Beacon's request parameters; ``region`` is the gene's, for a geneId
    query. Bracket queries bound the start by ``start`` and the end by ``end``, both inclusive."""
    alleles = VariantQuery(
        assembly=parameters.assembly,
        reference_bases=parameters.reference_bases,
        alternate_bases=parameters.alternate_bases,
        variant_type=parameters.variant_type,
        min_length=parameters.min_length,
        max_length=parameters.max_length,
    )
    if region is not None:
        return replace(alleles, chrom=region[0], start=region[1], end=region[2])
    chrom = re.sub(r"(?i)^refseq:", "", parameters.reference_name or "")  # refseq:NC_000001.11
    located = replace(alleles, chrom=chrom, start=parameters.start[0])
    if parameters.shape == "bracket":
        return replace(
            located,
            start_max=parameters.start[1],
            end_min=parameters.end[0],
            end=parameters.end[1],
        )
    return replace(located, end=parameters.end[0] if parameters.end else None)


def variant_record(
    found: Catalogue, allele: Allele, carriers: Sequence[str | None], dataset_url: str
) -> dict[str, Any]:
    """An allele of one dataset as a genomicVariation: where and what it is, its frequency in
    the dataset, and (up to :data:`MAX_CASES`) the biosamples carrying it."""
    cases = [
        {"biosampleId": sample, "individualId": found.samples[sample].individual}
        for sample in carriers
        if sample is not None and sample in found.samples
    ]
    info: dict[str, Any] = {
        "datasetId": allele.dataset,
        "alleleCount": allele.ac,
        "alleleNumber": allele.an,
        "homozygotes": allele.hom,
        "carriers": len(allele.carriers),
    }
    if len(cases) > MAX_CASES:
        info["caseLevelDataTruncated"] = (
            f"the first {MAX_CASES}: page /g_variants/{{id}}/biosamples"
        )
    built: dict[str, Any] = {
        "variantInternalId": allele.variant_id,
        "variation": {
            "location": {
                "type": "SequenceLocation",
                "sequence_id": sequence_id(allele.assembly, allele.chrom),
                "interval": {
                    "type": "SequenceInterval",
                    "start": {"type": "Number", "value": allele.start},
                    "end": {"type": "Number", "value": allele.end},
                },
            },
            "referenceBases": allele.ref,
            "alternateBases": allele.alt,
            "variantType": allele.variant_type,
        },
        "frequencyInPopulations": [
            {
                "source": f"dataset {allele.dataset}",
                "sourceReference": dataset_url,
                "frequencies": [
                    {"population": f"dataset {allele.dataset}", "alleleFrequency": allele.af}
                ],
            }
        ],
        "info": info,
    }
    if cases:
        built["caseLevelData"] = cases[:MAX_CASES]
    return built
