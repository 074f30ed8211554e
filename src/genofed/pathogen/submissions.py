"""Submission: a validated batch becomes entries in state ``received``, with accessions.

Validation (:func:`~genofed.pathogen.batch.validate_batch`) lists every problem; on top of it
this module refuses what earlier submissions make a duplicate: a sequence id the same lab used
before, a virus name anyone on the node used before. With problems, nothing is stored unless the
submitter chooses to take the valid part (``accept_valid``); the rest is fixed and resubmitted.

A revision is a one-record batch for a released record: it becomes the record's next version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from genofed.db import PathogenEntry, PathogenEvent, PathogenState, PathogenSubmission
from genofed.metadata.accessions import PATHOGEN_RECORD, allocate_many
from genofed.pathogen.batch import (
    ID_COLUMN,
    NAME_COLUMN,
    BatchEntry,
    BatchReport,
    read_metadata,
    validate_batch,
)
from genofed.pathogen.entries import (
    Conflict,
    NotAllowed,
    NotFound,
    compress,
    latest_public,
    move,
    record_accession,
    versions,
)
from genofed.pathogen.organisms import Organism
from genofed.pathogen.problems import Problem, shown
from genofed.pathogen.terms import Terms

LOOKUP_CHUNK = 500  # values per IN (...) query


@dataclass
class SubmissionOutcome:
    """What became of a batch: its problems, and the accession of each stored sequence."""

    organism: str
    problems: list[Problem]
    accessions: dict[str, str] = field(default_factory=dict)  # sequence id → accession.version
    submission_id: str | None = None

    @property
    def stored(self) -> bool:
        return bool(self.accessions)

    def to_json(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "organism": self.organism,
            "stored": self.stored,
            "accessions": self.accessions,
            "problems": [{**asdict(p), "message": str(p)} for p in self.problems],
        }


def submit_batch(
    session: Session,
    *,
    country: str,
    submitter: str,
    organism: Organism,
    fasta: Path,
    sheet: Path,
    accept_valid: bool = False,
    terms: Terms = Terms(),
    today: date | None = None,
) -> SubmissionOutcome:
    """Validate a batch and store its entries as ``received``, in one session.

    With problems, nothing is stored unless ``accept_valid``: then the valid entries are.
    A server checks in a reading transaction and stores in a short writing one instead
    (:func:`check_batch`, then :func:`store_batch`): validating thousands of genomes must not
    hold the database's write lock.
    """
    report = check_batch(session, submitter, organism, fasta, sheet, today=today)
    return store_batch(
        session,
        report,
        country=country,
        submitter=submitter,
        organism=organism,
        names=(fasta.name, sheet.name),
        accept_valid=accept_valid,
        terms=terms,
    )


def check_batch(
    session: Session,
    submitter: str,
    organism: Organism,
    fasta: Path,
    sheet: Path,
    *,
    today: date | None = None,
) -> BatchReport:
    """Every problem of a batch, duplicates of earlier submissions included; stores nothing."""
    return _validated(session, submitter, organism, fasta, sheet, today, exclude=None)


def store_batch(
    session: Session,
    report: BatchReport,
    *,
    country: str,
    submitter: str,
    organism: Organism,
    names: tuple[str, str],
    accept_valid: bool = False,
    terms: Terms = Terms(),
) -> SubmissionOutcome:
    """Store a checked batch's valid entries (all of them, or none without ``accept_valid``
    when it has problems). Ids and names taken since the check are refused here."""
    _recheck(session, report, submitter, names[1])
    outcome = SubmissionOutcome(organism.name, report.problems)
    if not report.valid or (report.problems and not accept_valid):
        return outcome
    packed = [compress(entry.record.sequence) for entry in report.valid]
    submission = _submission(session, submitter, organism, names, report)
    numbers = allocate_many(session, country, PATHOGEN_RECORD, len(report.valid))
    for batch_entry, sequence, accession in zip(report.valid, packed, numbers, strict=True):
        session.add(_entry(submission, batch_entry, sequence, str(accession), 1, terms))
        outcome.accessions[batch_entry.sequence_id] = f"{accession}.1"
    session.flush()
    _received(session, submission, submitter)
    outcome.submission_id = submission.id
    return outcome


def _recheck(session: Session, report: BatchReport, submitter: str, sheet_name: str) -> None:
    """Another batch may have taken an id or a virus name between check and store."""
    ids = {entry.sequence_id for entry in report.valid}
    taken_ids = _taken(session, PathogenEntry.sequence_id, ids, None, submitter)
    for entry in [e for e in report.valid if e.sequence_id in taken_ids]:
        report.problems.append(
            Problem(
                sheet_name,
                entry.row,
                entry.sequence_id,
                ID_COLUMN,
                shown(entry.sequence_id),
                "was already submitted in an earlier batch",
                "give a new sequence a new id; to correct an earlier one, submit a revision",
            )
        )
        report.rejected_ids.add(entry.sequence_id)
    report.valid = [e for e in report.valid if e.sequence_id not in taken_ids]
    names = {_virus_name(entry) for entry in report.valid}
    _refuse_taken_names(
        report, _taken(session, PathogenEntry.virus_name, names, None, None), sheet_name
    )


def revise(
    session: Session,
    *,
    accession: str,
    submitter: str,
    organism: Organism,
    fasta: Path,
    sheet: Path,
    today: date | None = None,
) -> SubmissionOutcome:
    """A corrected sequence and metadata for a released record: its next version, ``received``.

    Only the record's submitter may revise it, one revision at a time, and never a revoked one.
    """
    base, _ = record_accession(accession)
    current = latest_public(session, base)
    newest = versions(session, base)[-1]
    if current.submitter != submitter:
        raise NotAllowed(f"{base} was submitted by {current.submitter}: only they may revise it")
    if current.state == PathogenState.REVOKED:
        raise Conflict(f"{base} is revoked: submit the sequence as a new record instead")
    if newest.version != current.version:
        raise Conflict(
            f"{base} has a revision in progress (version {newest.version}, "
            f"{newest.state.value}): wait for its curation"
        )
    if organism.name != current.organism:
        raise Conflict(f"{base} is a {current.organism} record, not {organism.name}")
    report = _validated(session, submitter, organism, fasta, sheet, today, exclude=base)
    outcome = SubmissionOutcome(organism.name, report.problems)
    if report.problems or len(report.valid) != 1:
        if not report.problems:
            outcome.problems.append(
                Problem(
                    sheet.name,
                    None,
                    None,
                    None,
                    None,
                    "holds more than one record",
                    "a revision is one sequence and one row",
                )
            )
        return outcome
    submission = _submission(session, submitter, organism, (fasta.name, sheet.name), report)
    terms = Terms(current.data_use_terms, current.restricted_until)
    sequence = compress(report.valid[0].record.sequence)
    entry = _entry(submission, report.valid[0], sequence, base, current.version + 1, terms)
    entry.host_sample, entry.host_dataset = current.host_sample, current.host_dataset
    session.add(entry)
    session.flush()
    move(session, entry, PathogenState.RECEIVED, submitter, f"revision of {base}.{current.version}")
    outcome.accessions[entry.sequence_id] = f"{base}.{entry.version}"
    outcome.submission_id = submission.id
    return outcome


def _validated(
    session: Session,
    submitter: str,
    organism: Organism,
    fasta: Path,
    sheet: Path,
    today: date | None,
    *,
    exclude: str | None,
) -> BatchReport:
    """The batch's report, with earlier submissions' ids and virus names as duplicates
    (``exclude``: the record being revised, whose own id and name are not duplicates).

    Only the batch's own ids and names are looked up: the node may hold millions of records.
    """
    rows = read_metadata(sheet, organism).rows
    ids = {row.values[ID_COLUMN] for row in rows if row.values.get(ID_COLUMN)}
    names = {row.values[NAME_COLUMN] for row in rows if row.values.get(NAME_COLUMN)}
    own_ids = _taken(session, PathogenEntry.sequence_id, ids | names, exclude, submitter)
    taken_names = _taken(session, PathogenEntry.virus_name, names, exclude, None)
    report = validate_batch(organism, fasta, sheet, known_ids=own_ids, today=today)
    _refuse_taken_names(report, taken_names, sheet.name)
    return report


def _taken(
    session: Session,
    column: InstrumentedAttribute[str],
    values: set[str],
    exclude: str | None,
    submitter: str | None,
) -> set[str]:
    """Which of ``values`` earlier entries (not rejected) hold in ``column``."""
    found: set[str] = set()
    ordered = sorted(values)
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        query = select(column).where(
            column.in_(ordered[start : start + LOOKUP_CHUNK]),
            PathogenEntry.state != PathogenState.REJECTED,
        )
        if exclude is not None:
            query = query.where(PathogenEntry.accession != exclude)
        if submitter is not None:
            query = query.where(PathogenEntry.submitter == submitter)
        found.update(session.scalars(query))
    return found


def _refuse_taken_names(report: BatchReport, taken: set[str], sheet_name: str) -> None:
    """Virus names identify records worldwide: one already on the node, or twice in the batch,
    is a problem (the batch already refuses repeated ids)."""
    seen: set[str] = set()
    kept = []
    for entry in report.valid:
        name = _virus_name(entry)
        if name in taken or name in seen:
            where = "an earlier submission" if name in taken else "another row of this batch"
            report.problems.append(
                Problem(
                    sheet_name,
                    entry.row,
                    entry.sequence_id,
                    "virus_name",
                    shown(name),
                    f"is the virus name of {where}",
                    "give every sequence its own virus name; to correct a released record, "
                    "submit a revision",
                )
            )
            report.rejected_ids.add(entry.sequence_id)
        else:
            kept.append(entry)
        seen.add(name)
    report.valid = kept


def _virus_name(entry: BatchEntry) -> str:
    return entry.metadata.get("virus_name") or entry.sequence_id


def _submission(
    session: Session,
    submitter: str,
    organism: Organism,
    names: tuple[str, str],
    report: BatchReport,
) -> PathogenSubmission:
    submission = PathogenSubmission(
        submitter=submitter,
        organism=organism.name,
        fasta_name=names[0],
        sheet_name=names[1],
        problems=[asdict(problem) for problem in report.problems],
    )
    session.add(submission)
    session.flush()
    return submission


def _entry(
    submission: PathogenSubmission,
    batch_entry: BatchEntry,
    sequence: bytes,
    accession: str,
    version: int,
    terms: Terms,
) -> PathogenEntry:
    return PathogenEntry(
        accession=accession,
        version=version,
        submission_id=submission.id,
        organism=submission.organism,
        submitter=submission.submitter,
        sequence_id=batch_entry.sequence_id,
        virus_name=_virus_name(batch_entry),
        sheet_metadata=dict(batch_entry.metadata),
        sequence=sequence,
        state=PathogenState.RECEIVED,
        data_use_terms=terms.kind,
        restricted_until=terms.until,
    )


def _received(session: Session, submission: PathogenSubmission, submitter: str) -> None:
    """The ``received`` event of every entry of a new batch, in one statement."""
    ids = session.scalars(
        select(PathogenEntry.id).where(PathogenEntry.submission_id == submission.id)
    ).all()
    session.add_all(
        PathogenEvent(entry_id=i, state=PathogenState.RECEIVED, actor=submitter) for i in ids
    )
    session.flush()


def submission_status(
    session: Session, submission_id: str, subject: str, *, curator: bool
) -> dict[str, Any]:
    """A batch's entries and where each stands (its submitter's, or any for a curator)."""
    submission = session.get(PathogenSubmission, submission_id)
    if submission is None or (submission.submitter != subject and not curator):
        raise NotFound(f"no submission {submission_id} of yours: check the id")
    entries = session.scalars(
        select(PathogenEntry)
        .where(PathogenEntry.submission_id == submission.id)
        .order_by(PathogenEntry.id)
    ).all()
    counts: dict[str, int] = {}
    for entry in entries:
        key = entry.state.value if entry.outcome is None else f"{entry.state.value}:{entry.outcome}"
        counts[key] = counts.get(key, 0) + 1
    return {
        "submission_id": submission.id,
        "organism": submission.organism,
        "submitter": submission.submitter,
        "created_at": submission.created_at.isoformat(),
        "counts": counts,
        "entries": [
            {
                "sequence_id": e.sequence_id,
                "accession": e.accession,
                "version": e.version,
                "state": e.state.value,
                "outcome": e.outcome,
            }
            for e in entries
        ],
    }
