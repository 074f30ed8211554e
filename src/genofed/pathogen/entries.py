"""Stored pathogen entries: their errors, state moves with history, sequences and lookups.

An entry is one version of one record (:class:`~genofed.db.PathogenEntry`). Every state change
goes through :func:`move`, so the history table says who moved which version where and when.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genofed import db
from genofed.db import PathogenEntry, PathogenEvent, PathogenState
from genofed.errors import GenofedError
from genofed.metadata.accessions import PATHOGEN_RECORD, InvalidAccession, parse_versioned

OK, WARNINGS, ERRORS = "ok", "warnings", "errors"
PUBLIC_STATES = (PathogenState.RELEASED, PathogenState.REVOKED)
LOOKUP_CHUNK = 500  # values per IN (...) query


class PathogenError(GenofedError):
    """A pathogen request that cannot be done as asked; the message says why and the fix."""


class InvalidInput(PathogenError):
    """The request itself is wrong (a date, a name, an accession): 400."""


class NotAllowed(PathogenError):
    """The caller may not do this (not a curator, not the submitter, terms not accepted): 403."""


class NotFound(PathogenError):
    """No such organism, record, version, submission or snapshot set: 404."""


class Conflict(PathogenError):
    """The record is not in a state that allows this (errors, not released, revoked): 409."""


def compress(sequence: str) -> bytes:
    # Genomes compress about fourfold; the database holds every version of every one. Level 1:
    # the higher levels gain little on DNA and cost several milliseconds a genome.
    return zlib.compress(sequence.encode("ascii"), 1)


def decompress(stored: bytes) -> str:
    return zlib.decompress(stored).decode("ascii")


def move(
    session: Session,
    entry: PathogenEntry,
    state: PathogenState,
    actor: str,
    detail: str | None = None,
) -> None:
    """Put ``entry`` in ``state`` and record the transition."""
    entry.state = state
    session.add(PathogenEvent(entry_id=entry.id, state=state, actor=actor, detail=detail))


def record_accession(text: str) -> tuple[str, int | None]:
    """A record accession with its optional version, checked (400 when mistyped)."""
    try:
        accession, version = parse_versioned(text)
    except InvalidAccession as error:
        raise InvalidInput(str(error)) from None
    if accession.kind != PATHOGEN_RECORD:
        raise InvalidInput(
            f"{text} is a {accession.kind} accession, not a pathogen record's (GF..V...)"
        )
    return str(accession), version


def versions(session: Session, accession: str) -> list[PathogenEntry]:
    """Every version of a record, oldest first (404 when there is none)."""
    found = list(
        session.scalars(
            select(PathogenEntry)
            .where(PathogenEntry.accession == accession)
            .order_by(PathogenEntry.version)
        )
    )
    if not found:
        raise NotFound(f"no pathogen record {accession} on this node: check the accession")
    return found


def find_entry(session: Session, text: str) -> PathogenEntry:
    """``GF..V...X.2`` names that version; without a version, the newest one."""
    accession, version = record_accession(text)
    found = versions(session, accession)
    if version is None:
        return found[-1]
    for entry in found:
        if entry.version == version:
            return entry
    raise NotFound(
        f"{accession} has no version {version} (it has 1 to {found[-1].version}): check it"
    )


def latest_public(session: Session, accession: str) -> PathogenEntry:
    """The newest released (or revoked) version of a record (409 when none is)."""
    public = [e for e in versions(session, accession) if e.state in PUBLIC_STATES]
    if not public:
        raise Conflict(f"{accession} has not been released yet: nothing public to act on")
    return public[-1]


CHANGES_LOCK_ID = 0x6766636867  # "gfchg": PostgreSQL advisory lock of release/revocation writers


def next_change(session: Session) -> int:
    """The next number of the release/revocation sequence the query stores and replication
    follow; taken under a lock held until commit, so numbers commit in order."""
    db.serialize_writers(session, CHANGES_LOCK_ID)
    current = session.scalar(select(func.max(PathogenEntry.change_seq)))
    return (current or 0) + 1


def by_accession_version(session: Session, names: Iterable[str]) -> list[PathogenEntry]:
    """The public entries named ``accession.version`` (newest public version when none is
    given), in the order given; unknown or unreleased names are refused, all named at once."""
    wanted = [(name, *record_accession(name)) for name in names]
    held: dict[str, list[PathogenEntry]] = {}
    accessions = sorted({accession for _, accession, _ in wanted})
    for start in range(0, len(accessions), LOOKUP_CHUNK):
        chunk = accessions[start : start + LOOKUP_CHUNK]
        for entry in session.scalars(
            select(PathogenEntry)
            .where(PathogenEntry.accession.in_(chunk))
            .order_by(PathogenEntry.version)
        ):
            held.setdefault(entry.accession, []).append(entry)
    chosen, unknown, unreleased = [], [], []
    for name, accession, version in wanted:
        versions_held = held.get(accession, [])
        public = [e for e in versions_held if e.state in PUBLIC_STATES]
        if version is None:
            found = public[-1] if public else None
        else:
            found = next((e for e in versions_held if e.version == version), None)
        if found is None and versions_held and version is None:
            unreleased.append(f"{name} (not released yet)")
        elif found is None:
            unknown.append(name)
        elif found.state not in PUBLIC_STATES:
            unreleased.append(f"{name} ({found.state.value})")
        else:
            chosen.append(found)
    if unknown:
        raise NotFound(f"no such record version on this node: {', '.join(unknown[:10])}")
    if unreleased:
        raise Conflict(f"not released: {', '.join(unreleased[:10])}; choose released versions")
    return chosen
