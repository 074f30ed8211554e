"""Submitting batches: accessions, duplicates against earlier submissions, the valid part,
data-use terms; processing received entries into outcomes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from records_support import COUNTRY, TODAY, quick_analyser, samples, submit
from sqlalchemy import Engine, select

from genofed import db
from genofed.db import PathogenEntry, PathogenEvent, PathogenState
from genofed.metadata.accessions import (
    PATHOGEN_RECORD,
    Accession,
    InvalidAccession,
    parse_versioned,
)
from genofed.pathogen import processing
from genofed.pathogen.entries import InvalidInput, NotFound, decompress
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.record import RESTRICTED
from genofed.pathogen.registry import get_organism
from genofed.pathogen.submissions import check_batch, store_batch
from genofed.pathogen.synthetic import write_submission
from genofed.pathogen.terms import Terms, check_terms


def entries(engine: Engine) -> list[PathogenEntry]:
    with db.session_scope(engine) as session:
        return list(session.scalars(select(PathogenEntry).order_by(PathogenEntry.id)))


def test_a_valid_batch_becomes_received_entries_with_accessions(
    db_engine: Engine, tmp_path: Path
) -> None:
    batch = samples(3)
    outcome = submit(db_engine, tmp_path, batch)
    assert outcome.problems == [] and outcome.submission_id
    assert list(outcome.accessions) == [s.sequence_id for s in batch]
    for name in outcome.accessions.values():
        accession, version = parse_versioned(name)
        assert (accession.country, accession.kind, version) == (COUNTRY, PATHOGEN_RECORD, 1)
    stored = entries(db_engine)
    assert [e.state for e in stored] == [PathogenState.RECEIVED] * 3
    assert [decompress(e.sequence) for e in stored] == [s.sequence for s in batch]
    assert stored[0].sheet_metadata["virus_name"] == batch[0].metadata["virus_name"]
    with db.session_scope(db_engine) as session:
        events = session.scalars(select(PathogenEvent)).all()
        assert {(e.state, e.actor) for e in events} == {(PathogenState.RECEIVED, "lab-be")}


def test_problems_store_nothing_unless_the_valid_part_is_taken(
    db_engine: Engine, tmp_path: Path
) -> None:
    batch = samples(3)
    batch[1].metadata["collection_date"] = "2031-01-01"  # in the future
    refused = submit(db_engine, tmp_path / "a", batch)
    assert not refused.stored and refused.submission_id is None
    [problem] = refused.problems
    assert (problem.record, problem.field, problem.line) == (
        batch[1].sequence_id,
        "collection_date",
        3,
    )
    assert entries(db_engine) == []

    taken = submit(db_engine, tmp_path / "b", batch, accept_valid=True)
    assert list(taken.accessions) == [batch[0].sequence_id, batch[2].sequence_id]
    assert [p.record for p in taken.problems] == [batch[1].sequence_id]
    assert len(entries(db_engine)) == 2


def test_earlier_submissions_make_duplicates(db_engine: Engine, tmp_path: Path) -> None:
    first = samples(2)
    submit(db_engine, tmp_path / "a", first)
    again = submit(db_engine, tmp_path / "b", first)
    assert not again.stored
    assert {(p.record, "earlier" in p.problem) for p in again.problems} == {
        (first[0].sequence_id, True),
        (first[1].sequence_id, True),
    }
    # another lab may use the same sequence ids, not the same virus names
    other = submit(db_engine, tmp_path / "c", first, submitter="lab-nl")
    assert [(p.field, "earlier submission" in p.problem) for p in other.problems] == [
        ("virus_name", True),
        ("virus_name", True),
    ]
    renamed = samples(2)
    for sample in renamed:
        sample.metadata["virus_name"] += "-nl"
    assert submit(db_engine, tmp_path / "d", renamed, submitter="lab-nl").stored
    assert len(entries(db_engine)) == 4


def test_a_virus_name_twice_in_one_batch_is_refused(db_engine: Engine, tmp_path: Path) -> None:
    batch = samples(2)
    batch[1].metadata["virus_name"] = batch[0].metadata["virus_name"]
    outcome = submit(db_engine, tmp_path, batch, accept_valid=True)
    assert list(outcome.accessions) == [batch[0].sequence_id]
    [problem] = outcome.problems
    assert (problem.record, problem.field, problem.line) == (batch[1].sequence_id, "virus_name", 3)
    assert "another row of this batch" in problem.problem


def test_a_malformed_fasta_is_located_and_nothing_is_stored(
    db_engine: Engine, tmp_path: Path
) -> None:
    batch = samples(2)
    batch[0] = type(batch[0])(batch[0].sequence_id, "B.1", "ACGT!!JJ" * 20, batch[0].metadata)
    outcome = submit(db_engine, tmp_path, batch)
    assert not outcome.stored
    assert outcome.problems and all(p.record == batch[0].sequence_id for p in outcome.problems)
    assert entries(db_engine) == []


def test_an_unknown_organism_names_the_known_ones(db_engine: Engine) -> None:
    with db.session_scope(db_engine) as session, pytest.raises(NotFound) as caught:
        get_organism(session, "sars-cov-3")
    assert "sars-cov-2" in str(caught.value) and "flu-h3n2-ha" in str(caught.value)


def test_restricted_terms_end_within_a_year() -> None:
    assert check_terms("open", None, TODAY) == Terms()
    year = check_terms(RESTRICTED, TODAY + timedelta(days=365), TODAY)
    assert year.on(TODAY) == RESTRICTED and year.on(TODAY + timedelta(days=365)) == "open"
    for until, says in (
        (TODAY + timedelta(days=366), "more than a year ahead"),
        (TODAY, "not after today"),
        (TODAY - timedelta(days=3), "not after today"),
        (None, "need restricted_until"),
    ):
        with pytest.raises(InvalidInput, match=says):
            check_terms(RESTRICTED, until, TODAY)
    with pytest.raises(InvalidInput, match="unknown"):
        check_terms("embargoed", None, TODAY)


def test_terms_are_stored_with_each_entry(db_engine: Engine, tmp_path: Path) -> None:
    until = TODAY + timedelta(days=90)
    submit(db_engine, tmp_path, samples(2), terms=Terms(RESTRICTED, until))
    assert {(e.data_use_terms, e.restricted_until) for e in entries(db_engine)} == {
        (RESTRICTED, until)
    }


def test_processing_gives_every_entry_an_outcome(db_engine: Engine, tmp_path: Path) -> None:
    batch = samples(4)
    sequence = batch[1].sequence
    batch[1] = type(batch[1])(
        batch[1].sequence_id, "B.1", "N" * (len(sequence) - 50) + sequence[-50:], batch[1].metadata
    )
    batch[2] = type(batch[2])(
        batch[2].sequence_id,
        "B.1",
        sequence[:3000] + "N" * 2500 + sequence[5500:],
        batch[2].metadata,
    )
    batch[3] = type(batch[3])(batch[3].sequence_id, "B.1", "ACGT" * 10, batch[3].metadata)
    outcome = submit(db_engine, tmp_path, batch, accept_valid=True)
    assert len(outcome.accessions) == 4
    assert processing.process_pending(db_engine, analyse=quick_analyser, chunk=3) == 4
    stored = entries(db_engine)
    assert [e.state for e in stored] == [PathogenState.PROCESSED] * 4
    assert [e.outcome for e in stored] == ["ok", "errors", "warnings", "errors"]
    assert stored[0].analysis is not None and stored[0].analysis["substitutions"] == ["C241T"]
    assert stored[3].analysis is None and "do not align" in (stored[3].error or "")
    assert processing.process_pending(db_engine, analyse=quick_analyser) == 0


def test_a_failing_analyser_gives_its_chunk_back(db_engine: Engine, tmp_path: Path) -> None:
    submit(db_engine, tmp_path, samples(2))

    def broken(*_: object) -> list[object]:
        raise RuntimeError("aligner crashed")

    with pytest.raises(RuntimeError):
        processing.process_pending(db_engine, analyse=broken)  # type: ignore[arg-type]
    assert {e.state for e in entries(db_engine)} == {PathogenState.RECEIVED}
    assert processing.process_pending(db_engine, analyse=quick_analyser) == 2


def test_entries_left_processing_are_taken_up_again(db_engine: Engine, tmp_path: Path) -> None:
    submit(db_engine, tmp_path, samples(2))
    with db.session_scope(db_engine) as session:
        for entry in session.scalars(select(PathogenEntry)):
            entry.state = PathogenState.PROCESSING
    assert processing.recover(db_engine) == 2
    assert processing.process_pending(db_engine, analyse=quick_analyser) == 2


def test_the_processor_thread_processes_what_is_submitted(
    db_engine: Engine, tmp_path: Path
) -> None:
    processor = processing.Processor(db_engine, analyse=quick_analyser, poll=0.05).start()
    try:
        submit(db_engine, tmp_path, samples(2))
        processor.wake()
        processed = until(
            lambda: {e.state for e in entries(db_engine)} == {PathogenState.PROCESSED}
        )
    finally:
        processor.stop()
    assert processed


def until(check: Callable[[], bool], tries: int = 600) -> bool:
    """Whether ``check`` comes true while a thread works (polled, not timed)."""
    for _ in range(tries):
        if check():
            return True
        time.sleep(0.05)
    return False


@given(st.integers(0, 10**11 - 1), st.integers(1, 10**6), st.sampled_from(["BE", "FI", "SE"]))
def test_versioned_accessions_read_back(number: int, version: int, country: str) -> None:
    accession = Accession(country, PATHOGEN_RECORD, number)
    assert parse_versioned(f"{accession}.{version}") == (accession, version)
    assert parse_versioned(str(accession)) == (accession, None)


@given(st.text(min_size=1, max_size=3))
def test_a_bad_version_suffix_is_refused(suffix: str) -> None:
    accession = Accession("BE", PATHOGEN_RECORD, 42)
    if suffix.isascii() and suffix.isdigit() and int(suffix) >= 1:
        return
    with pytest.raises(InvalidAccession):
        parse_versioned(f"{accession}.{suffix}")


def test_a_batch_checked_twice_is_stored_once(db_engine: Engine, tmp_path: Path) -> None:
    """Two submissions of the same batch, both checked before either is stored."""
    organism = load_organism("sars-cov-2")
    fasta, sheet = write_submission(samples(2), tmp_path)
    with db.session_scope(db_engine) as session:
        first = check_batch(session, "lab-be", organism, fasta, sheet, today=TODAY)
        second = check_batch(session, "lab-be", organism, fasta, sheet, today=TODAY)
    assert first.problems == second.problems == []
    options = {"country": COUNTRY, "submitter": "lab-be", "organism": organism}
    names = (fasta.name, sheet.name)
    with db.session_scope(db.for_writing(db_engine)) as session:
        assert store_batch(session, first, names=names, **options).stored  # type: ignore[arg-type]
    with db.session_scope(db.for_writing(db_engine)) as session:
        late = store_batch(session, second, names=names, accept_valid=True, **options)  # type: ignore[arg-type]
    assert not late.stored
    assert [(p.field, p.problem) for p in late.problems] == [
        ("sequence_id", "was already submitted in an earlier batch")
    ] * 2
    assert len(entries(db_engine)) == 2
