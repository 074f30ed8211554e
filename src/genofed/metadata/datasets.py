"""Datasets: finding them, their life cycle, and the queries other features build on.

A dataset is a draft until released: drafts change freely (by submitting them again, or by
:func:`add_files`) and are seen only on the node. :func:`release_dataset` checks it is complete
(a policy, files, all ready) and fixes its content; from then on it is visible beyond the node
(:func:`released_datasets_query` is the query every such feature starts from) until
:func:`deprecate_dataset` withdraws it. A dataset's files are its own plus those of its runs and
analyses. Every function works in the caller's session (one transaction); ``country`` is the
node's, needed to read EGA-form accessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select, union
from sqlalchemy.orm import Session

from genofed.db import (
    ArchiveFile,
    FileState,
    MetadataLink,
    MetadataObject,
    ObjectFile,
    ObjectKind,
    ObjectStatus,
)
from genofed.metadata import accessions
from genofed.metadata.errors import DatasetError, InvalidSubmission, MetadataError, NotFound
from genofed.metadata.model import ACCESSION_LIKE, RECORDS, multi_valued
from genofed.metadata.references import FILE_CARRIERS
from genofed.metadata.sheets import Row, Submission
from genofed.metadata.store import submit_metadata

# -- finding objects ----------------------------------------------------------------------------


def find_object(
    session: Session,
    country: str,
    kind: ObjectKind,
    reference: str,
    *,
    submitter: str | None = None,
) -> MetadataObject:
    """The object of ``kind`` with the accession (ours or EGA form) or alias ``reference``.

    Without ``submitter`` an alias must be unique on the node.
    """
    text = reference.strip()
    if ACCESSION_LIKE.match(text):
        parsed = accessions.parse(text, country=country)
        if parsed.kind != kind:
            raise NotFound(f"{text} is a {parsed.kind} accession: give a {kind.value}'s")
        query = select(MetadataObject).where(MetadataObject.accession == str(parsed))
    else:
        query = select(MetadataObject).where(
            MetadataObject.kind == kind, MetadataObject.alias == text
        )
    if submitter is not None:
        query = query.where(MetadataObject.submitter == submitter)
    found = session.scalars(query.limit(2)).all()
    if not found:
        owner = f" of {submitter}" if submitter else ""
        raise NotFound(f"no {kind.value}{owner} with accession or alias {text!r}: check it")
    if len(found) > 1:
        raise MetadataError(
            f"{kind.value} alias {text!r} is used by several submitters: give the accession"
        )
    return found[0]


def find_dataset(
    session: Session, country: str, dataset: str, *, submitter: str | None = None
) -> MetadataObject:
    return find_object(session, country, ObjectKind.DATASET, dataset, submitter=submitter)


# -- dataset life cycle -------------------------------------------------------------------------


def create_dataset(
    session: Session,
    country: str,
    user: str,
    *,
    alias: str,
    title: str,
    policy: str | None = None,
    description: str | None = None,
) -> MetadataObject:
    """A new draft dataset of ``user``; add files with :func:`add_files`, then release it."""
    taken = session.scalars(
        select(MetadataObject).where(
            MetadataObject.submitter == user,
            MetadataObject.kind == ObjectKind.DATASET,
            MetadataObject.alias == alias.strip(),
        )
    ).first()
    if taken is not None:
        raise DatasetError(
            f"{user} already has dataset {alias!r} ({taken.accession}, {taken.status.value}): "
            "choose another alias, or change a draft by submitting a datasets sheet"
        )
    values = {"alias": alias, "title": title, "policy": policy, "description": description}
    row = Row(ObjectKind.DATASET, "dataset", 1, values)
    try:
        result = submit_metadata(session, country, user, Submission(rows=[row]))
    except InvalidSubmission as error:
        raise DatasetError(f"cannot create dataset {alias!r}: {_listed(error)}") from None
    accession = result.objects[0].accession
    return find_dataset(session, country, accession)


def add_files(
    session: Session,
    country: str,
    dataset: str,
    files: Sequence[str],
    *,
    user: str | None = None,
) -> list[ArchiveFile]:
    """Add archive files (accessions or ids) to a draft dataset; returns those newly added.

    Every file must be ``ready`` and the dataset submitter's; if one is not, none is added.
    """
    target = find_dataset(session, country, dataset, submitter=user)
    _require_draft(target, "add files to")
    found, errors = [], []
    for reference in files:
        try:
            found.append(_ready_file(session, country, reference, target.submitter))
        except MetadataError as error:
            errors.append(str(error))
    if errors:
        raise DatasetError(f"no file was added to dataset {target.accession}: {'; '.join(errors)}")
    present = set(
        session.scalars(select(ObjectFile.file_id).where(ObjectFile.object_id == target.id))
    )
    added = []
    for file in found:
        if file.id not in present:
            session.add(ObjectFile(object_id=target.id, file_id=file.id))
            present.add(file.id)
            added.append(file)
    session.flush()
    return added


def release_dataset(
    session: Session, country: str, dataset: str, *, user: str | None = None
) -> MetadataObject:
    """Release a complete draft: it needs a policy and files, all of them ``ready``."""
    target = find_dataset(session, country, dataset, submitter=user)
    if target.status is ObjectStatus.RELEASED:
        raise DatasetError(f"dataset {target.accession} is already released")
    _require_draft(target, "release")
    missing = _release_blockers(session, target)
    if missing:
        raise DatasetError(f"dataset {target.accession} cannot be released: {'; '.join(missing)}")
    target.status = ObjectStatus.RELEASED
    session.flush()
    return target


def deprecate_dataset(
    session: Session, country: str, dataset: str, *, user: str | None = None
) -> MetadataObject:
    """Withdraw a released dataset: no longer visible beyond the node; its content stays."""
    target = find_dataset(session, country, dataset, submitter=user)
    if target.status is not ObjectStatus.RELEASED:
        raise DatasetError(
            f"dataset {target.accession} is {target.status.value}: only a released dataset can be "
            "deprecated"
        )
    target.status = ObjectStatus.DEPRECATED
    session.flush()
    return target


def _require_draft(dataset: MetadataObject, action: str) -> None:
    if dataset.status in (ObjectStatus.RELEASED, ObjectStatus.DEPRECATED):
        raise DatasetError(
            f"cannot {action} dataset {dataset.accession}: it is {dataset.status.value} and its "
            "content is fixed; create a new dataset instead"
        )


def _release_blockers(session: Session, dataset: MetadataObject) -> list[str]:
    blockers = []
    if _linked(session, dataset, "policy") is None:
        blockers.append(
            "it has no policy (submit it again with one in the policy column of datasets)"
        )
    files = dataset_files(session, dataset)
    if not files:
        blockers.append("it has no files (add some with 'genofed dataset add-files')")
    waiting = [file for file in files if file.state is not FileState.READY]
    if waiting:
        shown = ", ".join(f"{_file_name(file)} ({file.state.value})" for file in waiting[:5])
        more = f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""
        blockers.append(
            f"{len(waiting)} file(s) are not ready: {shown}{more} (wait until their ingestion "
            "completes, or remove them)"
        )
    return blockers


def _ready_file(session: Session, country: str, reference: str, owner: str) -> ArchiveFile:
    text = reference.strip()
    if ACCESSION_LIKE.match(text):
        try:
            parsed = accessions.parse(text, country=country)
        except accessions.InvalidAccession as error:
            raise MetadataError(str(error)) from None
        if parsed.kind != "file":
            raise MetadataError(f"{text} is a {parsed.kind} accession, not a file's")
        file = session.scalars(
            select(ArchiveFile).where(ArchiveFile.accession == str(parsed))
        ).first()
    else:
        file = session.get(ArchiveFile, text.lower())
    if file is None:
        raise MetadataError(f"{text} is not in the archive (check the accession or file id)")
    if file.submitter != owner:
        raise MetadataError(f"{text} belongs to {file.submitter}, not to {owner}")
    if file.state is not FileState.READY:
        raise MetadataError(
            f"{text} is {file.state.value}, not ready (wait until its ingestion completes)"
        )
    return file


def _listed(error: InvalidSubmission) -> str:
    return "; ".join(
        f"{problem.column or 'row'} {problem.value!r}: {problem.problem}, {problem.fix}"
        if problem.value is not None
        else f"{problem.column or 'row'}: {problem.problem}, {problem.fix}"
        for problem in error.problems
    )


# -- queries ------------------------------------------------------------------------------------


def released_datasets_query() -> Select[MetadataObject]:
    """Datasets visible beyond the node: filter, join or page it further as needed."""
    return select(MetadataObject).where(
        MetadataObject.kind == ObjectKind.DATASET,
        MetadataObject.status == ObjectStatus.RELEASED,
    )


def released_datasets(session: Session) -> list[MetadataObject]:
    return list(session.scalars(released_datasets_query().order_by(MetadataObject.accession)))


def list_datasets(
    session: Session, *, released_only: bool = False, submitter: str | None = None
) -> list[tuple[MetadataObject, int]]:
    """Datasets with their number of files, by accession."""
    query = (
        released_datasets_query()
        if released_only
        else select(MetadataObject).where(MetadataObject.kind == ObjectKind.DATASET)
    )
    if submitter is not None:
        query = query.where(MetadataObject.submitter == submitter)
    found = session.scalars(query.order_by(MetadataObject.accession)).all()
    return [(dataset, _count_files(session, dataset.id)) for dataset in found]


def dataset_files_query(dataset_id: str) -> Select[ArchiveFile]:
    """A dataset's files: its own and those of its runs and analyses."""
    own = select(ObjectFile.file_id).where(ObjectFile.object_id == dataset_id)
    carried = (
        select(ObjectFile.file_id)
        .join(MetadataLink, MetadataLink.target_id == ObjectFile.object_id)
        .where(MetadataLink.source_id == dataset_id, MetadataLink.relation.in_(FILE_CARRIERS))
    )
    return select(ArchiveFile).where(ArchiveFile.id.in_(union(own, carried).scalar_subquery()))


def dataset_files(session: Session, dataset: MetadataObject) -> list[ArchiveFile]:
    query = dataset_files_query(dataset.id).order_by(ArchiveFile.accession, ArchiveFile.id)
    return list(session.scalars(query))


def _count_files(session: Session, dataset_id: str) -> int:
    counted = dataset_files_query(dataset_id).with_only_columns(func.count(ArchiveFile.id))
    return int(session.scalar(counted) or 0)


def _linked(session: Session, source: MetadataObject, relation: str) -> MetadataObject | None:
    return session.scalars(
        select(MetadataObject)
        .join(MetadataLink, MetadataLink.target_id == MetadataObject.id)
        .where(MetadataLink.source_id == source.id, MetadataLink.relation == relation)
    ).first()


def describe(session: Session, obj: MetadataObject) -> dict[str, Any]:
    """An object as the CLI and API show it: its fields, references as accessions, files."""
    links = session.execute(
        select(MetadataLink.relation, MetadataObject.accession)
        .join(MetadataObject, MetadataObject.id == MetadataLink.target_id)
        .where(MetadataLink.source_id == obj.id)
        .order_by(MetadataLink.relation, MetadataObject.accession)
    ).all()
    multi = multi_valued(RECORDS[obj.kind])
    references: dict[str, Any] = {}
    for relation, accession in links:
        if relation in multi:
            references.setdefault(relation, []).append(str(accession))
        else:
            references[relation] = str(accession)
    own_files = session.scalars(
        select(ArchiveFile)
        .join(ObjectFile, ObjectFile.file_id == ArchiveFile.id)
        .where(ObjectFile.object_id == obj.id)
        .order_by(ArchiveFile.accession)
    ).all()
    described: dict[str, Any] = {
        "accession": obj.accession,
        "kind": obj.kind.value,
        "alias": obj.alias,
        "submitter": obj.submitter,
        "status": obj.status.value,
        **obj.body,
        **references,
    }
    if own_files:
        described["files"] = [_file_name(file) for file in own_files]
    return described


def _file_name(file: ArchiveFile) -> str:
    return file.accession or file.id
