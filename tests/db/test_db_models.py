"""The archive tables: round trips, the state CHECK constraint, cascades, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from genofed.db import ArchiveFile, FileEvent, FileState, session_scope

INSERT_FILE = text(
    "INSERT INTO archive_files (id, submitter, inbox_path, state, created_at, updated_at) "
    "VALUES (:id, 'alice', 'a.c4gh', :state, :now, :now)"
)


def _new_file(**fields: object) -> ArchiveFile:
    return ArchiveFile(submitter="alice@example.org", inbox_path="run1/sample.bam.c4gh", **fields)


def test_a_file_and_its_events_round_trip(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        archived = _new_file(
            accession="EGAF00000000001",
            state=FileState.ARCHIVED,
            header=b"crypt4gh\x01\x00\x00\x00",
            archive_size=2**40,
            decrypted_sha256="e3b0c442" * 8,
        )
        archived.events = [FileEvent(state=FileState.UPLOADED), FileEvent(state="archived")]
        session.add(archived)
    with session_scope(db_engine) as session:
        loaded = session.scalars(select(ArchiveFile)).one()
        assert loaded.id == archived.id and len(loaded.id) == 36
        assert loaded.state is FileState.ARCHIVED
        assert loaded.header == b"crypt4gh\x01\x00\x00\x00"
        assert loaded.archive_size == 2**40
        assert [event.state for event in loaded.events] == ["uploaded", "archived"]


def test_timestamps_are_timezone_aware_utc(db_engine: Engine) -> None:
    paris = timezone(timedelta(hours=2))
    with session_scope(db_engine) as session:
        session.add(_new_file(created_at=datetime(2026, 6, 1, 14, 0, tzinfo=paris)))
    with session_scope(db_engine) as session:
        loaded = session.scalars(select(ArchiveFile)).one()
    assert loaded.created_at == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert loaded.created_at.tzinfo is UTC
    assert loaded.updated_at.tzinfo is UTC


def test_naive_timestamps_are_refused(db_engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), session_scope(db_engine) as s:
        s.add(_new_file(created_at=datetime(2026, 6, 1, 12, 0)))


def test_updated_at_moves_on_update(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        session.add(file := _new_file())
    with session_scope(db_engine) as session:
        session.get_one(ArchiveFile, file.id).state = FileState.UPLOADED
    with session_scope(db_engine) as session:
        assert session.get_one(ArchiveFile, file.id).updated_at > file.updated_at


@pytest.mark.parametrize("state", list(FileState))
def test_the_schema_accepts_every_file_state(db_engine: Engine, state: FileState) -> None:
    """Fails when a state is added to FileState without a migration widening the CHECK."""
    with db_engine.begin() as connection:
        connection.execute(
            INSERT_FILE, {"id": "f1", "state": state.value, "now": datetime.now(UTC)}
        )


def test_the_schema_rejects_an_unknown_state(db_engine: Engine) -> None:
    with pytest.raises(IntegrityError), db_engine.begin() as connection:
        connection.execute(INSERT_FILE, {"id": "f1", "state": "lost", "now": datetime.now(UTC)})


def test_accessions_are_unique(db_engine: Engine) -> None:
    with pytest.raises(IntegrityError), session_scope(db_engine) as session:
        session.add_all([_new_file(accession="EGAF1"), _new_file(accession="EGAF1")])


def test_deleting_a_file_deletes_its_events(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        session.add(file := _new_file(events=[FileEvent(state=FileState.REGISTERED)]))
        session.add(_new_file(events=[FileEvent(state=FileState.REGISTERED)]))
    with db_engine.begin() as connection:
        connection.execute(delete(ArchiveFile).where(ArchiveFile.id == file.id))
        assert connection.scalar(select(func.count()).select_from(FileEvent)) == 1


def test_events_need_an_existing_file(db_engine: Engine) -> None:
    with pytest.raises(IntegrityError), session_scope(db_engine) as session:
        session.add(FileEvent(file_id="no-such-file", state=FileState.ERROR))
