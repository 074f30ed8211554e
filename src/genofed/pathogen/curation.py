"""Curation: a node's curators review processed entries, approve or reject them; approved
versions are released; released records are revoked (kept, flagged) when they must go.

Entries whose processing found errors cannot be approved, hence never released. Every decision
is a history event and an audit entry. :func:`released_records` is what leaves the node: the
public records as :class:`~genofed.pathogen.record.PathogenRecord` objects for the query store
and the hub, with :func:`sequences` for their genomes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genofed.access import audit
from genofed.db import PathogenEntry, PathogenState
from genofed.db.models import utcnow
from genofed.pathogen.alignment import aligned_sequence
from genofed.pathogen.analysis import Analysis
from genofed.pathogen.batch import ID_COLUMN
from genofed.pathogen.entries import (
    ERRORS,
    PUBLIC_STATES,
    Conflict,
    InvalidInput,
    NotAllowed,
    decompress,
    find_entry,
    latest_public,
    move,
    next_change,
    record_accession,
    versions,
)
from genofed.pathogen.record import PathogenRecord
from genofed.pathogen.registry import get_organism

CURATOR, OPERATOR = "curator", "operator"
MAX_REASON = 2000


def review_queue(
    session: Session, *, organism: str | None = None, outcome: str | None = None, limit: int = 500
) -> list[PathogenEntry]:
    """Processed entries awaiting a curator, oldest first."""
    query = select(PathogenEntry).where(PathogenEntry.state == PathogenState.PROCESSED)
    if organism is not None:
        query = query.where(PathogenEntry.organism == organism)
    if outcome is not None:
        query = query.where(PathogenEntry.outcome == outcome)
    return list(session.scalars(query.order_by(PathogenEntry.id).limit(limit)))


def approve(
    session: Session, accession: str, curator: str, *, release: bool = True
) -> PathogenEntry:
    """Approve the processed version of a record; with ``release``, release it at once."""
    entry = _pending(session, accession, PathogenState.PROCESSED, "approved")
    if entry.outcome == ERRORS:
        reason = entry.error or "; ".join(_qc_errors(entry)) or "processing found errors"
        raise Conflict(
            f"{entry.accession}.{entry.version} cannot be approved: {reason}; reject it so that "
            "the submitter fixes and resubmits the sequence"
        )
    move(session, entry, PathogenState.APPROVED, curator)
    _audit(session, curator, "pathogen.approve", entry)
    if release:
        _release(session, entry, curator)
    return entry


def release(session: Session, accession: str, actor: str) -> PathogenEntry:
    """Release an approved version: public from now on, under its data-use terms."""
    entry = _pending(session, accession, PathogenState.APPROVED, "released")
    _release(session, entry, actor)
    return entry


def _release(session: Session, entry: PathogenEntry, actor: str) -> None:
    entry.released_at = utcnow()
    entry.change_seq = next_change(session)
    move(session, entry, PathogenState.RELEASED, actor)
    _audit(session, actor, "pathogen.release", entry)


def reject(session: Session, accession: str, curator: str, reason: str) -> PathogenEntry:
    """Turn down a processed (or approved, unreleased) version, saying why."""
    entry = _pending(session, accession, None, "rejected")
    if entry.state not in (PathogenState.PROCESSED, PathogenState.APPROVED):
        raise Conflict(
            f"{entry.accession}.{entry.version} is {entry.state.value}: only processed or "
            "approved versions can be rejected"
        )
    move(session, entry, PathogenState.REJECTED, curator, _reason(reason))
    _audit(session, curator, "pathogen.reject", entry, reason=_reason(reason))
    return entry


def revoke(
    session: Session, accession: str, actor: str, reason: str, *, curator: bool
) -> PathogenEntry:
    """Withdraw a released record (its submitter or a curator): it stays, flagged revoked."""
    base, _ = record_accession(accession)
    entry = latest_public(session, base)
    if entry.state == PathogenState.REVOKED:
        raise Conflict(f"{base} is revoked already")
    if not curator and entry.submitter != actor:
        raise NotAllowed(f"{base} was submitted by {entry.submitter}: only they or a curator may")
    entry.change_seq = next_change(session)
    move(session, entry, PathogenState.REVOKED, actor, _reason(reason))
    _audit(session, actor, "pathogen.revoke", entry, reason=_reason(reason))
    return entry


def _pending(
    session: Session, accession: str, state: PathogenState | None, becoming: str
) -> PathogenEntry:
    """The version a curation decision is about: the one named, or the newest."""
    entry = find_entry(session, accession)
    if state is not None and entry.state != state:
        raise Conflict(
            f"{entry.accession}.{entry.version} is {entry.state.value}"
            f"{f' ({entry.outcome})' if entry.outcome else ''}: only {state.value} versions "
            f"can be {becoming}"
        )
    return entry


def _reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise InvalidInput("say why, in a few words: the submitter reads it")
    if len(cleaned) > MAX_REASON:
        raise InvalidInput(f"the reason is longer than {MAX_REASON} characters: shorten it")
    return cleaned


def _qc_errors(entry: PathogenEntry) -> list[str]:
    return list((entry.analysis or {}).get("qc", {}).get("errors", []))


def _audit(session: Session, actor: str, action: str, entry: PathogenEntry, **detail: str) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        file=f"{entry.accession}.{entry.version}",
        detail={"organism": entry.organism, **detail},
    )


# -- views --------------------------------------------------------------------------------------


def entry_view(entry: PathogenEntry, *, full: bool = False) -> dict[str, Any]:
    """An entry for submitters and curators: state, QC and, with ``full``, the mutations and
    the history."""
    analysis = entry.analysis or {}
    view: dict[str, Any] = {
        "accession": entry.accession,
        "version": entry.version,
        "accession_version": f"{entry.accession}.{entry.version}",
        "organism": entry.organism,
        "submitter": entry.submitter,
        "sequence_id": entry.sequence_id,
        "virus_name": entry.virus_name,
        "state": entry.state.value,
        "outcome": entry.outcome,
        "error": entry.error,
        "qc": analysis.get("qc"),
        "data_use_terms": entry.data_use_terms,
        "restricted_until": entry.restricted_until.isoformat() if entry.restricted_until else None,
        "released_at": entry.released_at.isoformat() if entry.released_at else None,
    }
    if full:
        view["metadata"] = dict(entry.sheet_metadata)
        view["analysis"] = analysis or None
        view["history"] = [
            {
                "state": event.state.value,
                "actor": event.actor,
                "detail": event.detail,
                "at": event.created_at.isoformat(),
            }
            for event in entry.events
        ]
    return view


def record_of(entry: PathogenEntry) -> PathogenRecord:
    """A released (or revoked) entry as the queries and the hub see it."""
    if entry.analysis is None or entry.released_at is None:
        raise Conflict(f"{entry.accession}.{entry.version} is not released")
    return PathogenRecord(
        accession=entry.accession,
        version=entry.version,
        organism=entry.organism,
        node=entry.accession[2:4],  # GF + the node's country
        metadata={k: v for k, v in entry.sheet_metadata.items() if k != ID_COLUMN},
        analysis=Analysis.from_json(entry.analysis),
        data_use_terms=entry.data_use_terms,
        restricted_until=entry.restricted_until,
        released_at=entry.released_at,
        revoked=entry.state == PathogenState.REVOKED,
    )


def released_records(
    session: Session,
    *,
    organism: str | None = None,
    since: int = 0,
    all_versions: bool = False,
) -> Iterator[PathogenRecord]:
    """The node's public records: released and revoked (flagged), by change.

    By default the newest public version of each record; ``all_versions`` adds the superseded
    ones (replication carries them). ``since`` skips what changed at or before that
    :func:`data_version`.
    """
    query = select(PathogenEntry).where(
        PathogenEntry.state.in_(PUBLIC_STATES), PathogenEntry.change_seq > since
    )
    if organism is not None:
        query = query.where(PathogenEntry.organism == organism)
    if not all_versions:
        newest = (
            select(PathogenEntry.accession, func.max(PathogenEntry.version).label("version"))
            .where(PathogenEntry.state.in_(PUBLIC_STATES))
            .group_by(PathogenEntry.accession)
            .subquery()
        )
        query = query.join(
            newest,
            (PathogenEntry.accession == newest.c.accession)
            & (PathogenEntry.version == newest.c.version),
        )
    rows = session.execute(
        query.order_by(PathogenEntry.change_seq).execution_options(yield_per=1000)
    )
    for entry in rows.scalars():
        yield record_of(entry)


def data_version(session: Session) -> int:
    """Grows with every release and revocation: a query's answer is for this version."""
    return session.scalar(select(func.max(PathogenEntry.change_seq))) or 0


def sequences(
    session: Session, names: Iterable[str], *, aligned: bool = False
) -> Iterator[tuple[str, str]]:
    """``(accession.version, genome)`` of public records; ``aligned`` puts the genome in the
    reference's coordinates (deletions as ``-``, insertions left out)."""
    for name in names:
        entry = find_entry(session, name)
        if entry.state not in PUBLIC_STATES:
            raise Conflict(f"{name} is not released")
        yield f"{entry.accession}.{entry.version}", _sequence(session, entry, aligned)


def _sequence(session: Session, entry: PathogenEntry, aligned: bool) -> str:
    sequence = decompress(entry.sequence)
    if not aligned:
        return sequence
    organism = get_organism(session, entry.organism)
    assert entry.analysis is not None  # public entries were analysed
    return aligned_sequence(organism, Analysis.from_json(entry.analysis))


def history(session: Session, accession: str) -> list[dict[str, Any]]:
    """Every version of a record with its events."""
    base, _ = record_accession(accession)
    return [entry_view(entry, full=True) for entry in versions(session, base)]
