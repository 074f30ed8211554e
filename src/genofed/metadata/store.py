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
from genofed.metadata.accessions import allocate_many
from genofed.metadata.errors import InvalidSubmission, MetadataError
from genofed.metadata.references import Key, Resolution, chunks, stored_contents
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
    contents = stored_contents(session, list(resolution.existing.values()))
    keys: list[Key] = []  # the rows' objects, in submission order
    objects: dict[Key, MetadataObject] = {}
    changes: dict[Key, Change] = {}
    new: list[tuple[Key, dict[str, Any]]] = []
    for index, item in enumerate(checked.parsed):
        record = item.record
        assert record is not None
        key, body = (record.KIND, record.alias), record.body()
        keys.append(key)
        stored = resolution.existing.get(key)
        if stored is None:
            new.append((key, body))
            changes[key] = "created"
        elif resolution.content(index, body) == contents[stored.id]:
            objects[key], changes[key] = stored, "unchanged"
        else:
            stored.body = body
            objects[key], changes[key] = stored, "updated"
    objects.update(_create(session, country, submitter, new))
    session.flush()
    changed = [index for index, key in enumerate(keys) if changes[key] != "unchanged"]
    _replace_links(session, keys, resolution, changed, {k: o.id for k, o in objects.items()})
    return SubmissionResult(
        tuple(StoredObject(*key, str(objects[key].accession), changes[key]) for key in keys)
    )


def _create(
    session: Session, country: str, submitter: str, new: list[tuple[Key, dict[str, Any]]]
) -> dict[Key, MetadataObject]:
    """New draft objects, their accessions taken one block per kind (in submission order)."""
    created: dict[Key, MetadataObject] = {}
    for kind in ObjectKind:
        of_kind = [(key, body) for key, body in new if key[0] is kind]
        numbers = allocate_many(session, country, kind, len(of_kind))
        for ((_, alias), body), accession in zip(of_kind, numbers, strict=True):
            created[(kind, alias)] = MetadataObject(
                id=new_file_id(),
                kind=kind,
                alias=alias,
                submitter=submitter,
                status=ObjectStatus.DRAFT,
                accession=str(accession),
                body=body,
            )
    session.add_all(created.values())
    return created


def _replace_links(
    session: Session,
    keys: list[Key],
    resolution: Resolution,
    changed: list[int],
    ids: dict[Key, str],
) -> None:
    """The links and files of the ``changed`` rows: the old ones out, the new ones in."""
    sources = [ids[keys[index]] for index in changed]
    if not sources:
        return
    for chunk in chunks(sources):
        session.execute(delete(MetadataLink).where(MetadataLink.source_id.in_(chunk)))
        session.execute(delete(ObjectFile).where(ObjectFile.object_id.in_(chunk)))
    links: set[tuple[str, str, str]] = set()
    files: set[tuple[str, str]] = set()
    for index in changed:
        source = ids[keys[index]]
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
