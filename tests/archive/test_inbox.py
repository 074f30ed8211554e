"""The inbox service: resumable chunks, completion checks, cancelling, the submitter's view."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))

from inbox_support import chunks, encrypt_for, sha256

from genofed import crypt4gh, db
from genofed.archive import inbox
from genofed.db import ArchiveFile, FileEvent, FileState, UploadPart, UploadSession, UploadState
from genofed.storage import LocalStore, StorageError

CHUNK = 40_000


@dataclass
class Inbox:
    session: Session
    store: LocalStore
    node: crypt4gh.KeyPair
    engine: Engine

    def new_session(self) -> Session:
        return db.session_factory(self.engine)()

    def upload(self, data: bytes, user: str = "alice", size: int = CHUNK) -> str:
        """Create an upload and send ``data`` in chunks of ``size``; returns its id."""
        upload = inbox.create_upload(self.session, user, "reads.bam.c4gh")
        for offset, chunk in chunks(data, size):
            inbox.put_chunk(self.session, self.store, upload.id, user, offset, [chunk])
        return upload.id

    def complete(self, upload_id: str, data_sha: str, user: str = "alice") -> ArchiveFile:
        return inbox.complete_upload(
            self.session, self.store, upload_id, user, data_sha, node_key=self.node.secret
        )

    def files(self) -> int:
        return self.session.scalar(select(func.count()).select_from(ArchiveFile)) or 0

    def keys(self, upload_id: str) -> list[str]:
        return list(self.store.list(inbox.inbox_path(upload_id) + "/"))


@pytest.fixture
def box(db_engine: Engine, tmp_path: Path) -> Iterator[Inbox]:
    with db.session_factory(db_engine)() as session:
        yield Inbox(session, LocalStore(tmp_path / "inbox"), crypt4gh.generate_keypair(), db_engine)


@pytest.fixture
def data(box: Inbox) -> bytes:
    """A Crypt4GH file for the node, a little over three chunks long."""
    return encrypt_for(box.node.public, os.urandom(3 * CHUNK))


def test_chunks_become_one_archive_file(box: Inbox, data: bytes) -> None:
    upload_id = box.upload(data)
    file = box.complete(upload_id, sha256(data).upper())  # hex case does not matter

    assert file.state is FileState.UPLOADED
    assert file.inbox_path == f"uploads/{upload_id}"
    assert inbox.submitted_name(box.session, file) == "reads.bam"  # formats are told by it
    assert file.upload_sha256 == sha256(data)
    assert file.submitter == "alice"
    assert [event.state for event in file.events] == [FileState.UPLOADED]
    upload = inbox.get_upload(box.session, upload_id, "alice")
    assert (upload.state, upload.file_id, upload.received) == (
        UploadState.COMPLETED,
        file.id,
        len(data),
    )
    # each chunk is an object of its own, in offset order, and reads back as the whole file
    assert len(box.keys(upload_id)) == 4
    with inbox.open_upload(box.store, box.session, upload_id) as stream:
        buffer = bytearray(len(data) + 10)
        view, got = memoryview(buffer), 0
        while n := stream.readinto(view[got:]):  # type: ignore[attr-defined]
            got += n
    assert bytes(buffer[:got]) == data


def test_chunk_at_the_wrong_offset_says_where_to_resume(box: Inbox, data: bytes) -> None:
    upload = inbox.create_upload(box.session, "alice", "x.c4gh")
    inbox.put_chunk(box.session, box.store, upload.id, "alice", 0, [data[:CHUNK]])
    for wrong in (0, CHUNK - 1, CHUNK + 1):
        with pytest.raises(inbox.UploadOffsetMismatch, match=f"resume from offset {CHUNK}") as e:
            inbox.put_chunk(box.session, box.store, upload.id, "alice", wrong, [data[:10]])
        assert e.value.offset == CHUNK
    assert len(box.keys(upload.id)) == 1


def test_chunk_over_the_limit_is_refused_and_leaves_nothing(box: Inbox, data: bytes) -> None:
    upload = inbox.create_upload(box.session, "alice", "x.c4gh")
    pieces = [data[i : i + 1000] for i in range(0, 5000, 1000)]
    with pytest.raises(inbox.ChunkTooLarge, match="4000 bytes"):
        inbox.put_chunk(box.session, box.store, upload.id, "alice", 0, pieces, max_bytes=4000)
    assert box.keys(upload.id) == []
    assert not any((box.store.root / ".genofed-tmp").iterdir())
    assert inbox.get_upload(box.session, upload.id, "alice").received == 0


def test_a_dropped_connection_loses_only_the_chunk_in_flight(box: Inbox, data: bytes) -> None:
    upload = inbox.create_upload(box.session, "alice", "x.c4gh")
    inbox.put_chunk(box.session, box.store, upload.id, "alice", 0, [data[:CHUNK]])

    def cut_off() -> Iterator[bytes]:
        yield data[CHUNK : CHUNK + 1000]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        inbox.put_chunk(box.session, box.store, upload.id, "alice", CHUNK, cut_off())
    assert inbox.get_upload(box.session, upload.id, "alice").received == CHUNK
    assert len(box.keys(upload.id)) == 1
    for offset, chunk in chunks(data, CHUNK)[1:]:  # resume
        inbox.put_chunk(box.session, box.store, upload.id, "alice", offset, [chunk])
    assert box.complete(upload.id, sha256(data)).upload_sha256 == sha256(data)


def test_of_two_racing_chunks_one_wins_and_the_other_leaves_no_trace(
    box: Inbox, data: bytes
) -> None:
    upload = inbox.create_upload(box.session, "alice", "x.c4gh")

    def slow_then_raced() -> Iterator[bytes]:
        yield b"stale bytes of a first attempt"
        # the client gave up on this request and sent the chunk again, which arrives first
        with box.new_session() as other:
            inbox.put_chunk(other, box.store, upload.id, "alice", 0, [data[:CHUNK]])

    with pytest.raises(inbox.UploadOffsetMismatch, match=f"resume from offset {CHUNK}"):
        inbox.put_chunk(box.session, box.store, upload.id, "alice", 0, slow_then_raced())
    [key] = box.keys(upload.id)
    assert b"".join(box.store.iter_range(key)) == data[:CHUNK]


def test_wrong_checksum_keeps_the_upload_open(box: Inbox, data: bytes) -> None:
    upload_id = box.upload(data)
    wrong = sha256(b"something else")
    with pytest.raises(inbox.ChecksumMismatch) as error:
        box.complete(upload_id, wrong)
    message = str(error.value)
    assert sha256(data) in message and wrong in message and "stays open" in message
    assert inbox.get_upload(box.session, upload_id, "alice").state is UploadState.OPEN
    assert box.files() == 0
    assert box.complete(upload_id, sha256(data)).state is FileState.UPLOADED


def test_truncated_upload_fails_its_checksum_then_completes(box: Inbox, data: bytes) -> None:
    upload = inbox.create_upload(box.session, "alice", "x.c4gh")
    parts = chunks(data, CHUNK)
    for offset, chunk in parts[:2]:
        inbox.put_chunk(box.session, box.store, upload.id, "alice", offset, [chunk])
    with pytest.raises(inbox.ChecksumMismatch, match=f"from offset {2 * CHUNK}"):
        box.complete(upload.id, sha256(data))
    for offset, chunk in parts[2:]:
        inbox.put_chunk(box.session, box.store, upload.id, "alice", offset, [chunk])
    assert box.complete(upload.id, sha256(data)).upload_sha256 == sha256(data)


def test_file_for_another_key_cancels_its_upload_and_touches_nothing_else(
    box: Inbox, data: bytes
) -> None:
    kept_id = box.upload(data, size=len(data))  # an upload of the same user, left alone
    foreign = encrypt_for(crypt4gh.generate_keypair().public, b"x" * 5000)
    upload_id = box.upload(foreign, size=10)  # too small a first chunk to judge early

    with pytest.raises(inbox.WrongRecipient) as error:
        box.complete(upload_id, sha256(foreign))
    fingerprint = crypt4gh.fingerprint(box.node.public)
    assert fingerprint in str(error.value)
    assert "encrypt it for the node's public key" in str(error.value)
    assert inbox.get_upload(box.session, upload_id, "alice").state is UploadState.CANCELLED
    assert box.keys(upload_id) == []
    assert box.files() == 0
    assert inbox.get_upload(box.session, kept_id, "alice").state is UploadState.OPEN
    assert len(box.keys(kept_id)) == 1


def test_first_chunk_for_another_key_is_refused_at_once(box: Inbox) -> None:
    foreign = encrypt_for(crypt4gh.generate_keypair().public, b"x" * 5000)
    upload = inbox.create_upload(box.session, "alice", "x.c4gh")
    with pytest.raises(inbox.WrongRecipient, match=crypt4gh.fingerprint(box.node.public)):
        inbox.put_chunk(
            box.session, box.store, upload.id, "alice", 0, [foreign], node_key=box.node.secret
        )
    assert inbox.get_upload(box.session, upload.id, "alice").state is UploadState.CANCELLED
    assert box.keys(upload.id) == []


def test_a_first_chunk_that_cuts_the_header_short_is_judged_at_completion(
    box: Inbox, data: bytes
) -> None:
    upload = inbox.create_upload(box.session, "alice", "x.c4gh")
    for offset, chunk in [(0, data[:20]), (20, data[20:])]:  # the header is ~120 bytes
        inbox.put_chunk(
            box.session, box.store, upload.id, "alice", offset, [chunk], node_key=box.node.secret
        )
    assert box.complete(upload.id, sha256(data)).state is FileState.UPLOADED


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"plain text, not encrypted at all", "not a Crypt4GH file this node can read"),
        (b"crypt4gh\x01\0\0\0", "header is damaged \\(header is truncated"),
    ],
)
def test_a_file_that_is_not_crypt4gh_is_rejected(box: Inbox, content: bytes, reason: str) -> None:
    upload_id = box.upload(content)
    with pytest.raises(inbox.RejectedFile, match=reason):
        box.complete(upload_id, sha256(content))
    assert inbox.get_upload(box.session, upload_id, "alice").state is UploadState.CANCELLED


def test_same_file_again_is_refused_naming_the_first(box: Inbox, data: bytes) -> None:
    first = box.complete(box.upload(data), sha256(data))
    again = box.upload(data)
    with pytest.raises(inbox.DuplicateFile, match=f"file {first.id} \\('reads.bam.c4gh'"):
        box.complete(again, sha256(data))
    assert inbox.get_upload(box.session, again, "alice").state is UploadState.OPEN
    assert box.files() == 1
    # another submitter may hold the same bytes; and a failed first copy does not block a retry
    assert box.complete(box.upload(data, user="bob"), sha256(data), user="bob")
    first.state = FileState.ERROR
    box.session.commit()
    assert box.complete(again, sha256(data)).id != first.id


def test_uploads_and_files_of_others_are_out_of_reach(box: Inbox, data: bytes) -> None:
    upload_id = box.upload(data)
    attempts = [
        lambda: inbox.get_upload(box.session, upload_id, "mallory"),
        lambda: inbox.put_chunk(box.session, box.store, upload_id, "mallory", len(data), [b"x"]),
        lambda: box.complete(upload_id, sha256(data), user="mallory"),
        lambda: inbox.cancel_upload(box.session, box.store, upload_id, "mallory"),
    ]
    for attempt in attempts:
        with pytest.raises(inbox.NotYours, match="another submitter"):
            attempt()
    file = box.complete(upload_id, sha256(data))
    for file_attempt in (inbox.submit_file, inbox.describe_file):
        with pytest.raises(inbox.NotYours):
            file_attempt(box.session, file.id, "mallory")
    assert inbox.list_files(box.session, "mallory") == []


def test_cancel_deletes_every_part_even_unrecorded_ones(box: Inbox, data: bytes) -> None:
    upload_id = box.upload(data[: 2 * CHUNK])
    box.store.put(f"uploads/{upload_id}/00000000000000080000-orphan", [b"from a dead request"])
    cancelled = inbox.cancel_upload(box.session, box.store, upload_id, "alice")
    assert cancelled.state is UploadState.CANCELLED
    assert box.keys(upload_id) == []
    count = select(func.count()).select_from(UploadPart).where(UploadPart.upload_id == upload_id)
    assert box.session.scalar(count) == 0
    inbox.cancel_upload(box.session, box.store, upload_id, "alice")  # again: a no-op
    with pytest.raises(inbox.UploadClosed, match="was cancelled"):
        inbox.put_chunk(box.session, box.store, upload_id, "alice", 2 * CHUNK, [b"x"])
    done = box.complete(box.upload(data), sha256(data))
    with pytest.raises(inbox.UploadClosed, match="cannot be cancelled"):
        inbox.cancel_upload(box.session, box.store, done.inbox_path.split("/")[1], "alice")


def test_a_damaged_part_is_named_when_read(box: Inbox, data: bytes) -> None:
    upload_id = box.upload(data)
    first = box.keys(upload_id)[0]
    box.store.put(first, [data[:100]])  # the object lost bytes behind the inbox's back
    with (
        pytest.raises(StorageError, match=first),
        inbox.open_upload(box.store, box.session, upload_id) as stream,
    ):
        stream.read()


def test_empty_chunks_uploads_and_bad_names_are_refused(box: Inbox) -> None:
    upload = inbox.create_upload(box.session, "alice", "x.c4gh")
    with pytest.raises(inbox.InvalidRequest, match="chunk is empty"):
        inbox.put_chunk(box.session, box.store, upload.id, "alice", 0, [])
    assert box.keys(upload.id) == []
    with pytest.raises(inbox.EmptyUpload, match="holds no bytes"):
        box.complete(upload.id, "0" * 64)
    with pytest.raises(inbox.InvalidRequest, match="64 hexadecimal"):
        box.complete(upload.id, "abc")
    for name in ("", "   ", "a\nb", "x" * 1025):
        with pytest.raises(inbox.InvalidRequest, match="file name"):
            inbox.create_upload(box.session, "alice", name)
    with pytest.raises(inbox.UploadNotFound, match="no upload"):
        inbox.get_upload(box.session, "nope", "alice")


def test_submitting_moves_an_uploaded_file_once(box: Inbox, data: bytes) -> None:
    file = box.complete(box.upload(data), sha256(data))
    submitted = inbox.submit_file(box.session, file.id, "alice")
    again = inbox.submit_file(box.session, file.id, "alice")
    assert submitted.state is again.state is FileState.SUBMITTED
    events = box.session.scalars(select(FileEvent.state).where(FileEvent.file_id == file.id))
    assert list(events) == [FileState.UPLOADED, FileState.SUBMITTED]
    submitted.state = FileState.ERROR
    box.session.commit()
    with pytest.raises(inbox.FileStateConflict, match="is error"):
        inbox.submit_file(box.session, file.id, "alice")
    with pytest.raises(inbox.FileNotFound):
        inbox.submit_file(box.session, "nope", "alice")


def test_the_submitters_view_lists_their_files_with_history(box: Inbox, data: bytes) -> None:
    mine = box.complete(box.upload(data), sha256(data))
    box.complete(box.upload(data, user="bob"), sha256(data), user="bob")
    inbox.submit_file(box.session, mine.id, "alice")
    [view] = inbox.list_files(box.session, "alice")
    assert (view.id, view.filename, view.state, view.upload_size) == (
        mine.id,
        "reads.bam.c4gh",
        "submitted",
        len(data),
    )
    assert [event.state for event in view.events] == ["uploaded", "submitted"]
    assert view.error is None


def test_inbox_paths_name_their_upload() -> None:
    assert inbox.upload_id_of(inbox.inbox_path("abc")) == "abc"
    for bad in ("abc", "uploads/", "uploads/a/b", "other/abc"):
        with pytest.raises(inbox.InvalidRequest):
            inbox.upload_id_of(bad)


def test_session_rows_match_the_store(box: Inbox, data: bytes) -> None:
    """Every recorded part names an object of exactly its size (what resuming relies on)."""
    upload_id = box.upload(data, size=7777)
    parts = box.session.scalars(select(UploadPart).where(UploadPart.upload_id == upload_id))
    position = 0
    for part in parts:
        assert part.offset == position
        assert box.store.size(part.storage_key) == part.size
        position += part.size
    assert position == box.session.get(UploadSession, upload_id).received  # type: ignore[union-attr]


def test_completing_while_others_write_neither_fails_nor_blocks_them(
    box: Inbox, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashing a large upload takes a while: other requests write meanwhile (on SQLite, a
    transaction held across that time would block them, or fail when it writes afterwards)."""
    upload_id = box.upload(data)
    real_sha256 = inbox._sha256

    def slow_sha256(stream: object) -> str:
        with box.new_session() as other:  # another request, committing during the hashing
            inbox.create_upload(other, "bob", "other.c4gh")
        return real_sha256(stream)  # type: ignore[arg-type]

    monkeypatch.setattr(inbox, "_sha256", slow_sha256)
    assert box.complete(upload_id, sha256(data)).state is FileState.UPLOADED
