"""A submission's references, resolved to objects in it, objects stored before, and files.

A reference is an alias or an accession (anything shaped like one is read as one):

- an alias names the submitter's own object of the expected kind, in this submission or stored
  by an earlier one (aliases are unique per submitter and kind);
- an accession (our form or the EGA form) names a stored object of this node. Only DACs and
  policies may be another submitter's: a node's DAC office commonly writes them for everyone.
  Everything else must be the submitter's own.

Files are referenced by archive accession or file id; they must be in the archive, the
submitter's, and not failed or withdrawn (``ready`` is needed only to release a dataset).

Objects whose content is fixed, released or deprecated datasets and the runs and analyses in
them, may be submitted again only unchanged: the files a released dataset shares never change.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticCustomError
from sqlalchemy import select
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
from genofed.metadata.model import ACCESSION_LIKE, RECORDS, SHEET_NAMES, multi_valued, split
from genofed.metadata.problems import Problem, plain_text

# An object id, or the (kind, alias) of a row of this submission (whose id may not exist yet).
Target = str | tuple[ObjectKind, str]
Key = tuple[ObjectKind, str]

SHARED_KINDS = frozenset({ObjectKind.DAC, ObjectKind.POLICY})
FIXED = frozenset({ObjectStatus.RELEASED, ObjectStatus.DEPRECATED})
FILE_CARRIERS = ("runs", "analyses")  # the dataset relations that bring files with them
UNUSABLE_FILE_STATES = {
    FileState.ERROR: ("the file failed ingestion", "upload it again and reference the new file"),
    FileState.DISABLED: ("the file was withdrawn", "reference a file that is still archived"),
}
_FILE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
MAX_ALIAS = 255  # MetadataObject.alias
_CHUNK = 500  # values per IN (...): well below every backend's limit on bound parameters


@dataclass(frozen=True)
class Content:
    """What an object says: its body, its links and its files; equal contents mean no change."""

    body: dict[str, Any]
    links: frozenset[tuple[str, str]]  # (relation, target object id)
    files: frozenset[str]


@dataclass
class Resolution:
    """Where each row's references lead, by the row's position in the submission."""

    existing: dict[Key, MetadataObject] = field(default_factory=dict)  # rows already stored
    links: dict[int, list[tuple[str, Target]]] = field(default_factory=lambda: defaultdict(list))
    files: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def content(self, index: int, body: dict[str, Any]) -> Content | None:
        """Row ``index``'s content with every target as an object id; None if a target is new."""
        links = set()
        for relation, target in self.links[index]:
            if isinstance(target, tuple):
                stored = self.existing.get(target)
                if stored is None:
                    return None
                target = stored.id
            links.add((relation, target))
        return Content(body, frozenset(links), frozenset(self.files[index]))


@dataclass(frozen=True)
class _Reference:
    index: int  # the row's position
    column: str
    kind: ObjectKind | None  # None: a file
    value: str


def resolve(
    parsed: Sequence[Any],
    *,
    session: Session | None,
    country: str | None,
    submitter: str | None,
) -> tuple[Resolution, list[Problem]]:
    """Resolve the references of ``parsed`` (:class:`genofed.metadata.sheets.Parsed` rows).

    Without a session only references within the submission are checked, and accessions and
    file references only for their form.
    """
    return _Resolver(parsed, session, country or "XX", submitter or "").run()


class _Resolver:
    def __init__(
        self, parsed: Sequence[Any], session: Session | None, country: str, submitter: str
    ) -> None:
        self.parsed = parsed
        self.session = session
        self.country = country.upper()
        self.submitter = submitter
        self.resolution = Resolution()
        self.problems: list[Problem] = []
        self.rows: dict[Key, int] = {}  # the row that defines each (kind, alias)
        self.stored: dict[Key, MetadataObject] = {}  # the submitter's objects by kind and alias
        self.by_accession: dict[str, MetadataObject] = {}
        self.files_by_key: dict[str, ArchiveFile] = {}  # by accession and by id

    def run(self) -> tuple[Resolution, list[Problem]]:
        self._index_rows()
        references = list(self._references())
        if self.session is not None:
            self._load(self.session, references)
        for reference in references:
            if reference.kind is None:
                self._resolve_file(reference)
            else:
                self._resolve_object(reference, reference.kind)
        if self.session is not None:
            self._check_fixed(self.session)
        return self.resolution, self.problems

    # -- the rows of the submission -------------------------------------------------------------

    def _index_rows(self) -> None:
        for index, item in enumerate(self.parsed):
            row = item.row
            if row.alias is None or ("alias", None) in item.bad:
                continue
            key = (row.kind, row.alias)
            first = self.rows.setdefault(key, index)
            if first != index:
                earlier = self.parsed[first].row
                self.problems.append(
                    row.problem(
                        "alias",
                        row.alias,
                        f"the alias is also on row {earlier.number} of {earlier.sheet}",
                        f"give each {row.kind.value} its own alias",
                    )
                )

    def _references(self) -> Iterator[_Reference]:
        for index, item in enumerate(self.parsed):
            model = RECORDS[item.row.kind]
            wanted: list[tuple[str, ObjectKind | None]] = list(model.REFERENCES.items())
            if model.FILES:
                wanted.append((model.FILES, None))
            for column, kind in wanted:
                cell = item.row.values.get(column)
                for position, value in _values(cell, column in multi_valued(model)):
                    if (column, position) not in item.bad and (column, None) not in item.bad:
                        yield _Reference(index, column, kind, value)

    # -- loading what the references may name ----------------------------------------------------

    def _load(self, session: Session, references: list[_Reference]) -> None:
        aliases = {alias for _, alias in self.rows}
        wanted_accessions: set[str] = set()
        file_accessions: set[str] = set()
        file_ids: set[str] = set()
        for reference in references:
            if ACCESSION_LIKE.match(reference.value):
                parsed = self._parse(reference.value)
                if parsed is not None:
                    target = file_accessions if reference.kind is None else wanted_accessions
                    target.add(str(parsed))
            elif reference.kind is None:
                file_ids.add(reference.value.lower())
            else:
                aliases.add(reference.value)
        aliases = {alias for alias in aliases if _storable(alias)}
        file_ids = {file_id for file_id in file_ids if _FILE_ID.match(file_id)}
        for found in _chunked_objects(session, self.submitter, aliases):
            self.stored[(found.kind, found.alias)] = found
        for found in _inchunks(
            session, MetadataObject, MetadataObject.accession, wanted_accessions
        ):
            self.by_accession[str(found.accession)] = found
        for file in _inchunks(session, ArchiveFile, ArchiveFile.accession, file_accessions):
            self.files_by_key[str(file.accession)] = file
        for file in _inchunks(session, ArchiveFile, ArchiveFile.id, file_ids):
            self.files_by_key[file.id] = file
        self.resolution.existing = {
            key: self.stored[key] for key in self.rows if key in self.stored
        }

    def _parse(self, text: str) -> accessions.Accession | None:
        try:
            return accessions.parse(text, country=self.country)
        except accessions.InvalidAccession:
            return None

    # -- objects ---------------------------------------------------------------------------------

    def _resolve_object(self, reference: _Reference, kind: ObjectKind) -> None:
        target = (
            self._by_accession(reference, kind)
            if ACCESSION_LIKE.match(reference.value)
            else self._by_alias(reference, kind)
        )
        if target is not None:
            self.resolution.links[reference.index].append((reference.column, target))

    def _by_alias(self, reference: _Reference, kind: ObjectKind) -> Target | None:
        key = (kind, reference.value)
        if key in self.rows:
            return key
        stored = self.stored.get(key)
        if stored is not None:
            return stored.id
        if self.session is None:
            return None  # perhaps stored before: cannot tell without the database
        other = self._other_kind(reference.value, kind)
        if other is not None:
            self._problem(
                reference,
                f"the alias of a {other.value}, not of a {kind.value}",
                f"give the alias or accession of a {kind.value}",
            )
        else:
            self._problem(
                reference, f"unknown {kind.value} alias", self._alias_fix(kind, reference)
            )
        return None

    def _other_kind(self, alias: str, kind: ObjectKind) -> ObjectKind | None:
        for other in ObjectKind:
            if other != kind and ((other, alias) in self.rows or (other, alias) in self.stored):
                return other
        return None

    def _alias_fix(self, kind: ObjectKind, reference: _Reference) -> str:
        known = [alias for k, alias in (*self.rows, *self.stored) if k == kind]
        close = difflib.get_close_matches(reference.value, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return (
            f"{hint}add a {kind.value} with this alias to {SHEET_NAMES[kind]}, or reference one "
            "stored before (aliases are case-sensitive)"
        )

    def _by_accession(self, reference: _Reference, kind: ObjectKind) -> Target | None:
        parsed = self._checked_accession(reference, str(kind))
        if parsed is None or self.session is None:
            return None
        found = self.by_accession.get(str(parsed))
        if found is None:
            self._problem(
                reference, f"no {kind.value} with this accession on this node", "check it"
            )
            return None
        if found.submitter != self.submitter and kind not in SHARED_KINDS:
            self._problem(
                reference,
                f"the {kind.value} belongs to another submitter",
                f"reference your own {kind.value}s",
            )
            return None
        return found.id

    def _checked_accession(self, reference: _Reference, kind: str) -> accessions.Accession | None:
        """The accession in ``reference`` if it is one of this node's, of ``kind``."""
        try:
            parsed = accessions.parse(reference.value, country=self.country)
        except accessions.InvalidAccession as error:
            self._problem(reference, str(error), "copy the accession again from genofed's output")
            return None
        wanted = "file" if kind == "file" else f"{kind}"
        if parsed.kind != kind:
            self._problem(
                reference,
                f"a {parsed.kind} accession, not a {wanted} one",
                f"give the {'accession or id' if kind == 'file' else 'alias or accession'} "
                f"of a {wanted}",
            )
            return None
        if parsed.country != self.country and self.session is not None:
            self._problem(
                reference,
                f"an accession of the {parsed.country} node, not of this one ({self.country})",
                "reference objects and files stored on this node",
            )
            return None
        return parsed

    # -- files -----------------------------------------------------------------------------------

    def _resolve_file(self, reference: _Reference) -> None:
        if ACCESSION_LIKE.match(reference.value):
            parsed = self._checked_accession(reference, "file")
            if parsed is None:
                return
            key = str(parsed)
        elif _FILE_ID.match(reference.value):
            key = reference.value.lower()
        else:
            self._problem(
                reference,
                "not a file accession or file id",
                "give the file's accession (e.g. GFBEF00000000001?, EGAF00000000001) or its id",
            )
            return
        if self.session is None:
            return
        file = self.files_by_key.get(key)
        if file is None:
            self._problem(
                reference, "no such file in the archive", "upload it first, or check the reference"
            )
        elif file.submitter != self.submitter:
            self._problem(
                reference, "the file belongs to another submitter", "reference files you uploaded"
            )
        elif file.state in UNUSABLE_FILE_STATES:
            self._problem(reference, *UNUSABLE_FILE_STATES[file.state])
        else:
            self.resolution.files[reference.index].append(file.id)

    # -- fixed objects ---------------------------------------------------------------------------

    def _check_fixed(self, session: Session) -> None:
        """Released datasets, and the runs and analyses in them, may only come again unchanged."""
        existing = self.resolution.existing
        holders = _fixed_datasets_holding(session, [obj.id for obj in existing.values()])
        fixed = [obj for obj in existing.values() if obj.status in FIXED or obj.id in holders]
        contents = stored_contents(session, fixed)
        for key, index in self.rows.items():
            stored = existing.get(key)
            record = self.parsed[index].record
            if stored is None or record is None:
                continue
            if stored.status in FIXED:
                reason = f"dataset {stored.accession} is {stored.status.value}"
                fix = (
                    "deprecate it ('genofed dataset deprecate') and submit the new content "
                    "under a new alias"
                    if stored.status is ObjectStatus.RELEASED
                    else "submit the new content under a new alias"
                )
            elif stored.id in holders:
                reason = f"the {key[0].value} is in {holders[stored.id]}"
                fix = f"submit the changed {key[0].value} under a new alias"
            else:
                continue
            new = self.resolution.content(index, record.body())
            if new is None or new != contents[stored.id]:
                row = self.parsed[index].row
                self.problems.append(
                    row.problem("alias", row.alias, f"{reason}: it cannot change", fix)
                )

    def _problem(self, reference: _Reference, problem: str, fix: str) -> None:
        row = self.parsed[reference.index].row
        self.problems.append(row.problem(reference.column, reference.value, problem, fix))


def _values(raw: Any, multi: bool) -> Iterator[tuple[int | None, str]]:
    """The text values of a cell, with their index in a multi-valued cell."""
    if multi:
        items = split(raw)
        if isinstance(items, list):
            for position, item in enumerate(items):
                if isinstance(item, str):
                    yield position, item
    elif isinstance(raw, str) and raw.strip():
        yield None, raw.strip()


def _storable(text: str) -> bool:
    """Whether ``text`` can be looked up at all: no database holds what it cannot store."""
    try:
        plain_text(text)
    except PydanticCustomError:
        return False
    return len(text) <= MAX_ALIAS


def stored_contents(session: Session, objects: Sequence[MetadataObject]) -> dict[str, Content]:
    """What each of ``objects`` says now, by id, to compare with a new submission of it."""
    links: dict[str, set[tuple[str, str]]] = defaultdict(set)
    files: dict[str, set[str]] = defaultdict(set)
    for chunk in chunks([obj.id for obj in objects]):
        for source, relation, target in session.execute(
            select(MetadataLink.source_id, MetadataLink.relation, MetadataLink.target_id).where(
                MetadataLink.source_id.in_(chunk)
            )
        ):
            links[source].add((relation, target))
        for owner, file_id in session.execute(
            select(ObjectFile.object_id, ObjectFile.file_id).where(ObjectFile.object_id.in_(chunk))
        ):
            files[owner].add(file_id)
    return {
        obj.id: Content(dict(obj.body), frozenset(links[obj.id]), frozenset(files[obj.id]))
        for obj in objects
    }


def _fixed_datasets_holding(session: Session, ids: Sequence[str]) -> dict[str, str]:
    """For each of ``ids`` held by a released or deprecated dataset: a dataset's description."""
    holders: dict[str, str] = {}
    for chunk in chunks(ids):
        rows = session.execute(
            select(MetadataLink.target_id, MetadataObject.accession, MetadataObject.status)
            .join(MetadataObject, MetadataObject.id == MetadataLink.source_id)
            .where(
                MetadataLink.target_id.in_(chunk),
                MetadataLink.relation.in_(FILE_CARRIERS),
                MetadataObject.status.in_(FIXED),
            )
        ).all()
        for target, accession, status in rows:
            holders[target] = f"{status.value} dataset {accession}"
    return holders


def _chunked_objects(
    session: Session, submitter: str, aliases: Iterable[str]
) -> Iterator[MetadataObject]:
    for chunk in chunks(sorted(aliases)):
        yield from session.scalars(
            select(MetadataObject).where(
                MetadataObject.submitter == submitter, MetadataObject.alias.in_(chunk)
            )
        )


def _inchunks(session: Session, entity: Any, column: Any, values: Iterable[str]) -> Iterator[Any]:
    for chunk in chunks(sorted(values)):
        yield from session.scalars(select(entity).where(column.in_(chunk)))


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    """``values`` in slices small enough for one IN (...) on every backend."""
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
