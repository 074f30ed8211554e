"""A dataset's public summary: what a node tells the hub's catalogue about one of its datasets.

Only public metadata crosses the border: the dataset's and its studies' descriptions, how many
individuals and samples it holds, sex and phenotype summaries as ontology terms, its data types
and assembly, its data-use conditions in DUO terms, the DAC that decides and how to apply. Never
an individual's record: counts of sex and of each phenotype or disease below the node's
``federation.min_count`` are published as ``null`` ("fewer than min_count"), so a rare phenotype
in a small cohort does not single anyone out. The term itself stays (a dataset is found by it).

:class:`DatasetSummary` is both what the node builds (:func:`build_summary`) and what the hub
validates, with bounds on every string and list: the hub does not trust a node's input blindly.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genofed.config import Settings
from genofed.db import ArchiveFile, MetadataLink, MetadataObject, ObjectKind, ObjectStatus
from genofed.federation import terms
from genofed.metadata import duo
from genofed.metadata.datasets import dataset_files_query

Text = Annotated[str, Field(max_length=20_000)]
Short = Annotated[str, Field(min_length=1, max_length=500)]
Accession = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Curie = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,31}:[^\s]{1,64}$")]
Count = Annotated[int, Field(ge=0)]
PUBLISHED = ("released", "deprecated")
Sex = Literal["female", "male", "unknown"]
SEXES: tuple[Sex, ...] = ("female", "male", "unknown")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TermCount(_Strict):
    id: Curie
    label: Short | None = None
    count: Count | None = None  # None: fewer than min_count individuals


class DuoTerm(_Strict):
    code: Annotated[str, Field(pattern=r"^[A-Z]{1,8}$")]
    id: Annotated[str, Field(pattern=r"^DUO:\d{7}$")]
    label: Short
    value: Short | None = None  # a modifier's parameter: GS=EU, TS=P2Y, ...


class PolicySummary(_Strict):
    accession: Accession
    title: Short
    permission: DuoTerm
    modifiers: Annotated[list[DuoTerm], Field(max_length=32)] = []
    diseases: Annotated[list[TermCount], Field(max_length=200)] = []  # what DS allows
    url: Short | None = None


class DacSummary(_Strict):
    accession: Accession
    title: Short
    contacts: Annotated[list[Short], Field(max_length=20)] = []


class StudySummary(_Strict):
    accession: Accession
    title: Short
    study_type: Short | None = None
    description: Text | None = None


class HowToApply(_Strict):
    node_url: Short
    requests_url: Short
    command: Text


class DatasetSummary(_Strict):
    """The public part of a released (or deprecated) dataset's metadata."""

    accession: Accession
    status: Literal["released", "deprecated"]
    title: Short
    description: Text | None = None
    studies: Annotated[list[StudySummary], Field(max_length=50)] = []
    individuals: Count
    samples: Count
    sex: dict[Sex, Count | None] = {}
    phenotypes: Annotated[list[TermCount], Field(max_length=5000)] = []
    diseases: Annotated[list[TermCount], Field(max_length=5000)] = []
    data_types: Annotated[list[Short], Field(max_length=50)] = []
    assemblies: Annotated[list[Short], Field(max_length=10)] = []
    access: Literal["open", "registered", "controlled"] = "controlled"
    policy: PolicySummary | None = None
    dac: DacSummary | None = None
    files: Count = 0
    size_bytes: Count | None = None
    min_count: Count = 0
    how_to_apply: HowToApply

    def digest(self) -> str:
        """sha-256 of the canonical JSON: what tells the node it changed since published."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def terms(self) -> set[str]:
        """Every phenotype and disease term of its individuals."""
        return {term.id for term in (*self.phenotypes, *self.diseases)}


# -- building it on the node ------------------------------------------------------------------


def published_datasets(session: Session) -> list[MetadataObject]:
    """The datasets a node tells its hub about: released ones, and deprecated ones (which the
    hub then removes from search)."""
    statuses = (ObjectStatus.RELEASED, ObjectStatus.DEPRECATED)
    query = select(MetadataObject).where(
        MetadataObject.kind == ObjectKind.DATASET, MetadataObject.status.in_(statuses)
    )
    return list(session.scalars(query.order_by(MetadataObject.accession)))


def build_summary(session: Session, settings: Settings, dataset: MetadataObject) -> DatasetSummary:
    """The public summary of ``dataset``, read in the caller's session."""
    runs = _targets(session, [dataset.id], "runs")
    analyses = _targets(session, [dataset.id], "analyses")
    experiments = _targets(session, [run.id for run in runs], "experiment")
    samples = _unique(
        [
            *_targets(session, [exp.id for exp in experiments], "sample"),
            *_targets(session, [analysis.id for analysis in analyses], "samples"),
        ]
    )
    studies = _unique(
        _targets(session, [obj.id for obj in (*experiments, *analyses, *samples)], "study")
    )
    policy = _one(_targets(session, [dataset.id], "policy"))
    dac = _one(_targets(session, [policy.id], "dac")) if policy is not None else None
    individuals = _individuals(samples)
    minimum = settings.federation.min_count
    files, size = _files(session, dataset)
    return DatasetSummary(
        accession=str(dataset.accession),
        status="deprecated" if dataset.status is ObjectStatus.DEPRECATED else "released",
        title=str(dataset.body.get("title") or dataset.alias),
        description=dataset.body.get("description"),
        studies=[_study(study) for study in studies],
        individuals=len(individuals),
        samples=len(samples),
        sex=_sex_counts(individuals, minimum),
        phenotypes=_term_counts(individuals, "phenotypes", minimum),
        diseases=_term_counts(individuals, "diseases", minimum),
        data_types=_sorted_values(
            [*(exp.body.get("library_strategy") for exp in experiments)]
            + [analysis.body.get("analysis_type") for analysis in analyses]
        ),
        assemblies=_sorted_values(analysis.body.get("assembly") for analysis in analyses),
        policy=_policy(policy) if policy is not None else None,
        dac=_dac(dac) if dac is not None else None,
        files=files,
        size_bytes=size,
        min_count=minimum,
        how_to_apply=_how_to_apply(settings, str(dataset.accession), policy),
    )


def _targets(session: Session, sources: Sequence[str], relation: str) -> list[MetadataObject]:
    """The objects ``sources`` link to by ``relation``, in accession order."""
    if not sources:
        return []
    found = session.scalars(
        select(MetadataObject)
        .join(MetadataLink, MetadataLink.target_id == MetadataObject.id)
        .where(MetadataLink.source_id.in_(sources), MetadataLink.relation == relation)
        .order_by(MetadataObject.accession)
    )
    return _unique(found)


def _unique(objects: Iterable[MetadataObject]) -> list[MetadataObject]:
    seen: dict[str, MetadataObject] = {}
    for obj in objects:
        seen.setdefault(obj.id, obj)
    return sorted(seen.values(), key=lambda obj: str(obj.accession))


def _one(objects: list[MetadataObject]) -> MetadataObject | None:
    return objects[0] if objects else None


def _individuals(samples: list[MetadataObject]) -> dict[str, list[dict[str, Any]]]:
    """Samples grouped by individual (``subject_id``; a sample without one is its own)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        subject = sample.body.get("subject_id") or f"sample:{sample.id}"
        grouped.setdefault(str(subject), []).append(sample.body)
    return grouped


def _sex_counts(
    individuals: dict[str, list[dict[str, Any]]], minimum: int
) -> dict[Sex, int | None]:
    counted = Counter(_sex(bodies) for bodies in individuals.values())
    return {sex: _shown(counted[sex], minimum) for sex in SEXES if counted[sex]}


def _sex(bodies: list[dict[str, Any]]) -> Sex:
    known = {body.get("sex") for body in bodies} - {None, "unknown"}
    if len(known) == 1:
        value = known.pop()
        return "female" if value == "female" else "male" if value == "male" else "unknown"
    return "unknown"  # none recorded, or samples of one individual disagree


def _term_counts(
    individuals: dict[str, list[dict[str, Any]]], field: str, minimum: int
) -> list[TermCount]:
    counted: Counter[str] = Counter()
    for bodies in individuals.values():
        counted.update({term for body in bodies for term in body.get(field) or []})
    return [
        TermCount(id=term, label=terms.label(term), count=_shown(count, minimum))
        for term, count in sorted(counted.items())
    ]


def _shown(count: int, minimum: int) -> int | None:
    return count if count >= minimum else None


def _sorted_values(values: Iterable[object]) -> list[str]:
    return sorted({str(value) for value in values if value})


def _files(session: Session, dataset: MetadataObject) -> tuple[int, int | None]:
    query = dataset_files_query(dataset.id).with_only_columns(
        func.count(ArchiveFile.id), func.sum(ArchiveFile.decrypted_size)
    )
    count, size = session.execute(query).one()
    return int(count or 0), int(size) if size is not None else None


def _study(study: MetadataObject) -> StudySummary:
    return StudySummary(
        accession=str(study.accession),
        title=str(study.body.get("title") or study.alias),
        study_type=study.body.get("study_type"),
        description=study.body.get("description"),
    )


def _policy(policy: MetadataObject) -> PolicySummary:
    body = policy.body
    return PolicySummary(
        accession=str(policy.accession),
        title=str(body.get("title") or policy.alias),
        permission=_duo(str(body.get("permission")), None),
        modifiers=[_duo(item["code"], item.get("value")) for item in body.get("modifiers", [])],
        diseases=[TermCount(id=term, label=terms.label(term)) for term in body.get("diseases", [])],
        url=body.get("url"),
    )


def _duo(code: str, value: str | None) -> DuoTerm:
    term = duo.lookup(code)
    return DuoTerm(code=term.code, id=term.id, label=term.label, value=value)


def _dac(dac: MetadataObject) -> DacSummary:
    contacts = [_contact(item) for item in dac.body.get("contacts", [])]
    return DacSummary(
        accession=str(dac.accession),
        title=str(dac.body.get("title") or dac.alias),
        contacts=contacts,
    )


def _contact(item: dict[str, Any] | str) -> str:
    if isinstance(item, str):
        return item
    name, email = item.get("name"), item.get("email", "")
    return f"{name} <{email}>" if name else str(email)


def _how_to_apply(settings: Settings, accession: str, policy: MetadataObject | None) -> HowToApply:
    """Where and how a researcher asks this node's DAC for the dataset, as commands to run."""
    node = settings.http.public_url.rstrip("/")
    body = policy.body if policy is not None else {}
    diseases = "".join(f" --disease {term}" for term in body.get("diseases", []))
    return HowToApply(
        node_url=node,
        requests_url=f"{node}/access/requests",
        command=(
            f"genofed login --node {node} --user <you>; genofed access request {accession} "
            f'--node {node} --title "<your project>" --permission {body.get("permission", "HMB")}'
            f"{diseases} --days <days>"
        ),
    )
