"""Storing a submission: every row validated first, then all of it in one savepoint, or none.

A row whose alias the submitter has not used for its kind becomes a new draft object with a
fresh accession. A row whose alias exists updates that object: its body, links and files are
replaced by the new ones (a reference left out is removed), and it keeps its accession and status.
A row identical to what is stored changes nothing, which makes sending the same sheets twice
harmless. (Which rows may update what, released datasets being fixed, was checked before.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from genofed.db import MetadataLink, MetadataObject, ObjectFile, ObjectKind, ObjectStatus
from genofed.db.models import new_file_id
from genofed.metadata.accessions import allocate
from genofed.metadata.errors import InvalidSubmission, MetadataError
from genofed.metadata.references import Key, Resolution, stored_content
from genofed.metadata.sheets import Checked, Submission, check_submission, read_document

Change = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class StoredObject:
    kind: ObjectKind
    alias: str
    accession: str
    change: Change


@dataclass(frozen=True)
class SubmissionResult:
    """Each object of the submission with its accession and what storing it changed."""

    objects: tuple[StoredObject, ...]

    def accessions(self) -> dict[str, dict[str, str]]:
        """Accessions by kind, then alias: ``{"sample": {"S1": "GFBEN…"}}``."""
        found: dict[str, dict[str, str]] = {}
        for stored in self.objects:
            found.setdefault(stored.kind.value, {})[stored.alias] = stored.accession
        return found

    def counts(self) -> Mapping[Change, int]:
        return Counter(stored.change for stored in self.objects)


def submit_metadata(
    session: Session, country: str, user: str, submission: Submission | Mapping[str, Any]
) -> SubmissionResult:
    """Validate ``submission`` (read sheets, or a JSON document) and store it for ``user``.

    Raises :class:`InvalidSubmission`, listing every problem, and stores nothing if there is one.
    """
    if not user.strip():
        raise MetadataError("no submitter given: name the user the objects belong to")
    if not isinstance(submission, Submission):
        submission = read_document(submission)
    checked = check_submission(submission, session=session, country=country, submitter=user)
    if checked.problems:
        raise InvalidSubmission(checked.problems)
    return store(session, country, user, checked)


def store(session: Session, country: str, submitter: str, checked: Checked) -> SubmissionResult:
    """Store ``checked``, which must have no problems, in the caller's transaction."""
    if checked.problems or checked.resolution is None:
        raise ValueError("only a submission checked against the database without problems")
    try:
        with session.begin_nested():
            return _store(session, country, submitter, checked, checked.resolution)
    except IntegrityError:
        raise MetadataError(
            "another submission stored some of these aliases at the same time: submit again "
            "(your objects will then be updated, not duplicated)"
        ) from None


def _store(
    session: Session, country: str, submitter: str, checked: Checked, resolution: Resolution
) -> SubmissionResult:
    ids: dict[Key, str] = {}
    results: list[StoredObject] = []
    changed: list[int] = []
    for index, item in enumerate(checked.parsed):
        record = item.record
        assert record is not None
        key = (record.KIND, record.alias)
        body = record.body()
        stored = resolution.existing.get(key)
        if stored is None:
            stored = _create(session, country, submitter, key, body)
            change: Change = "created"
        elif resolution.content(index, body) == stored_content(session, stored):
            change = "unchanged"
        else:
            stored.body = body
            change = "updated"
        if change != "unchanged":
            changed.append(index)
        ids[key] = stored.id
        results.append(StoredObject(key[0], key[1], str(stored.accession), change))
    session.flush()
    _replace_links(session, checked, resolution, changed, ids)
    return SubmissionResult(tuple(results))


def _create(
    session: Session, country: str, submitter: str, key: Key, body: dict[str, object]
) -> MetadataObject:
    kind, alias = key
    created = MetadataObject(
        id=new_file_id(),
        kind=kind,
        alias=alias,
        submitter=submitter,
        status=ObjectStatus.DRAFT,
        accession=str(allocate(session, country, kind)),
        body=body,
    )
    session.add(created)
    return created


def _replace_links(
    session: Session,
    checked: Checked,
    resolution: Resolution,
    changed: list[int],
    ids: dict[Key, str],
) -> None:
    sources = [ids[_key(checked, index)] for index in changed]
    if not sources:
        return
    session.execute(delete(MetadataLink).where(MetadataLink.source_id.in_(sources)))
    session.execute(delete(ObjectFile).where(ObjectFile.object_id.in_(sources)))
    links: set[tuple[str, str, str]] = set()
    files: set[tuple[str, str]] = set()
    for index in changed:
        source = ids[_key(checked, index)]
        for relation, target in resolution.links[index]:
            target_id = ids[target] if isinstance(target, tuple) else target
            links.add((source, target_id, relation))
        files.update((source, file_id) for file_id in resolution.files[index])
    if links:
        session.execute(
            insert(MetadataLink),
            [{"source_id": s, "target_id": t, "relation": r} for s, t, r in sorted(links)],
        )
    if files:
        session.execute(
            insert(ObjectFile), [{"object_id": o, "file_id": f} for o, f in sorted(files)]
        )


def _key(checked: Checked, index: int) -> Key:
    record = checked.parsed[index].record
    assert record is not None
    return record.KIND, record.alias
