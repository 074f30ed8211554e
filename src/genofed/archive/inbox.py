"""The submission inbox: resumable uploads of Crypt4GH files, one stored chunk at a time.

Each chunk becomes its own inbox object under ``uploads/<upload_id>/`` and is recorded as an
:class:`~genofed.db.UploadPart` only after the store holds it whole. A dropped connection so loses
at most the chunk in flight, on every backend (S3 cannot append), and the upload's offset, the
bytes received, is always the end of its last recorded chunk.

No database transaction is held while bytes stream in or are hashed: a chunk can take minutes,
and on SQLite an open write would block the whole node. Instead every state change is a
conditional UPDATE ("open, and still at the offset I checked"), so of two requests that raced,
exactly one wins and the other is told what happened. A chunk's object key carries a random
suffix, so the loser of such a race never overwrites the winner's bytes; it deletes its own.

The functions commit their own work (they must, to release the database between steps), and
every transaction that writes starts with its write.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, cast

from sqlalchemy import CursorResult, Select, delete, select, update
from sqlalchemy.orm import Session, selectinload

from genofed import crypt4gh
from genofed.archive import messages
from genofed.archive.queue import Queue
from genofed.crypt4gh.header import PREAMBLE
from genofed.db import ArchiveFile, FileEvent, FileState, UploadPart, UploadSession, UploadState
from genofed.errors import GenofedError
from genofed.storage import ObjectStore, StorageError
from genofed.storage.base import CHUNK_SIZE, iter_source

MiB = 1024 * 1024
MAX_CHUNK_BYTES = 256 * MiB
MAX_FILENAME = 1024  # the column's length
UPLOADS = "uploads"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A file is a duplicate of one the submitter has unless that one failed or was withdrawn.
_SETTLED_ELSEWHERE = (FileState.ERROR, FileState.DISABLED)


# -- errors -------------------------------------------------------------------------------------


class InboxError(GenofedError):
    """A request the inbox refuses; the message says what to do instead."""


class InvalidRequest(InboxError):
    """A malformed argument: file name, checksum, empty chunk."""


class UploadNotFound(InboxError):
    def __init__(self, upload_id: str) -> None:
        super().__init__(
            f"no upload {upload_id!r} on this node: check the id, or start a new upload "
            "(POST /inbox/uploads)"
        )


class FileNotFound(InboxError):
    def __init__(self, file_id: str) -> None:
        super().__init__(f"no file {file_id!r} on this node: list yours with GET /inbox/files")


class NotYours(InboxError):
    """An upload or file that belongs to another submitter."""


class UploadClosed(InboxError):
    """The upload is completed or cancelled: it takes no more chunks and cannot complete."""


class UploadOffsetMismatch(InboxError):
    """A chunk that does not start where the upload ends; ``offset`` is where to resume."""

    def __init__(self, upload_id: str, offset: int, given: int) -> None:
        super().__init__(
            f"upload {upload_id} holds {offset} bytes, but this chunk starts at byte {given}: "
            f"resume from offset {offset}"
        )
        self.offset = offset


class ChunkTooLarge(InboxError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the chunk is larger than this node accepts ({limit} bytes, {limit / MiB:g} MiB): "
            "send the file in smaller chunks (genofed submit upload --chunk-mib)"
        )
        self.limit = limit


class EmptyUpload(InboxError):
    """Completing an upload that holds no bytes."""


class ChecksumMismatch(InboxError):
    """The bytes received are not the file the submitter declared; the upload stays open."""


class RejectedFile(InboxError):
    """The file can never be archived as uploaded (not Crypt4GH for this node's key)."""


class WrongRecipient(RejectedFile):
    """A Crypt4GH file encrypted for someone else's key."""


class DuplicateFile(InboxError):
    """The submitter already has this exact file in the archive."""


class FileStateConflict(InboxError):
    """The file is not in a state that allows what was asked."""


# -- uploads ------------------------------------------------------------------------------------


def inbox_path(upload_id: str) -> str:
    """Where an upload's parts live; the ``filepath`` of its FEGA ingestion message."""
    return f"{UPLOADS}/{upload_id}"


def submitted_name(session: Session, file: ArchiveFile) -> str:
    """The name the submitter gave ``file``, without ``.c4gh`` (``sample.bam``): the name of the
    upload that brought it, else the last part of its inbox path. Formats are told by it."""
    filename = session.scalars(
        select(UploadSession.filename)
        .where(UploadSession.file_id == file.id)
        .order_by(UploadSession.created_at.desc())
        .limit(1)
    ).first()
    name = (filename or file.inbox_path).rsplit("/", 1)[-1]
    return name[: -len(".c4gh")] if name.lower().endswith(".c4gh") else name


def upload_id_of(path: str) -> str:
    """The upload id in an inbox path made by :func:`inbox_path` (for the ingest stage)."""
    prefix, _, upload_id = path.partition("/")
    if prefix != UPLOADS or not upload_id or "/" in upload_id:
        raise InvalidRequest(f"{path!r} is not an inbox path of the form '{UPLOADS}/<upload id>'")
    return upload_id


def create_upload(session: Session, user: str, filename: str) -> UploadSession:
    """Open a new, empty upload of ``filename`` (the submitter's own name for the file)."""
    _check_filename(filename)
    upload = UploadSession(submitter=user, filename=filename, received=0)
    session.add(upload)
    session.commit()
    return upload


def get_upload(session: Session, upload_id: str, user: str) -> UploadSession:
    """The caller's upload as the database has it now."""
    upload = session.get(UploadSession, upload_id, populate_existing=True)
    if upload is None:
        raise UploadNotFound(upload_id)
    if upload.submitter != user:
        raise NotYours(f"upload {upload_id} belongs to another submitter: use your own uploads")
    return upload


def put_chunk(
    session: Session,
    store: ObjectStore,
    upload_id: str,
    user: str,
    offset: int,
    stream: BinaryIO | Iterable[bytes],
    *,
    max_bytes: int = MAX_CHUNK_BYTES,
    node_key: bytes | None = None,
) -> int:
    """Store the chunk that ``stream`` yields at ``offset``; returns the new offset.

    ``offset`` must be the bytes received so far. With ``node_key``, a first chunk that already
    shows the file is not Crypt4GH for this node cancels the upload at once, rather than after
    the submitter sent every byte.
    """
    upload = _open_upload(session, upload_id, user)
    if offset != upload.received:
        raise UploadOffsetMismatch(upload_id, upload.received, offset)
    _end_read(session)  # no transaction is held while the chunk streams in
    key = f"{inbox_path(upload_id)}/{offset:020d}-{secrets.token_hex(4)}"
    size = store.put(key, _at_most(iter_source(stream, CHUNK_SIZE), max_bytes))
    try:
        if size == 0:
            raise InvalidRequest(
                "the chunk is empty: send at least one byte, or complete the upload"
            )
        if node_key is not None and offset == 0:
            _check_first_chunk(store, key, size, node_key)
        _record_part(session, upload_id, offset, size, key)
    except RejectedFile as error:
        abandon_upload(session, store, upload_id, str(error))  # deletes this chunk too
        raise
    except BaseException:
        store.delete(key)
        raise
    return offset + size


def _at_most(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise ChunkTooLarge(limit)
        yield chunk


def _record_part(session: Session, upload_id: str, offset: int, size: int, key: str) -> None:
    if not _claim(session, upload_id, offset, received=offset + size):
        session.rollback()
        upload = _open_upload(session, upload_id, None)
        raise UploadOffsetMismatch(upload_id, upload.received, offset)  # another chunk won
    session.add(UploadPart(upload_id=upload_id, offset=offset, size=size, storage_key=key))
    session.commit()


def _check_first_chunk(store: ObjectStore, key: str, size: int, node_key: bytes) -> None:
    """Refuse at once what a first chunk proves (not Crypt4GH, or for another key), sparing the
    submitter the rest of the upload. A chunk shorter than the preamble proves nothing."""
    if size >= PREAMBLE.size:
        with store.open(key) as stream:
            check_header(stream, node_key, whole=False)


def complete_upload(
    session: Session,
    store: ObjectStore,
    upload_id: str,
    user: str,
    sha256: str,
    *,
    node_key: bytes,
) -> ArchiveFile:
    """Check the upload and make it an archive file in state ``uploaded``.

    The checks, in order: the bytes received hash to ``sha256`` (else the upload stays open, to
    be continued or completed again); the file is Crypt4GH and opens with ``node_key`` (else
    the upload is cancelled: no retry can fix it); the submitter has no identical file already.
    """
    declared = _check_sha256(sha256)
    upload = _open_upload(session, upload_id, user)
    size, filename = upload.received, upload.filename
    if size == 0:
        raise EmptyUpload(
            f"upload {upload_id} holds no bytes yet: send the file first "
            f"(PUT /inbox/uploads/{upload_id}?offset=0)"
        )
    with (
        open_upload(store, session, upload_id) as contents,
        open_upload(store, session, upload_id) as header,
    ):
        _end_read(session)  # the streams hold their parts: no transaction while hashing
        received = _sha256(contents)
        if received != declared:
            raise ChecksumMismatch(
                f"the {size} bytes received for upload {upload_id} have sha256 {received}, but "
                f"you declared {declared}: send the rest of the file if it is larger (from offset"
                f" {size}), or cancel the upload and send the file again; the upload stays open"
            )
        try:
            check_header(header, node_key)
        except RejectedFile as error:
            abandon_upload(session, store, upload_id, str(error))
            raise
    return _record_file(session, upload_id, size, declared, filename, user)


def _record_file(
    session: Session, upload_id: str, size: int, sha256: str, filename: str, user: str
) -> ArchiveFile:
    if not _claim(session, upload_id, size, state=UploadState.COMPLETED, declared_sha256=sha256):
        session.rollback()
        upload = _open_upload(session, upload_id, None)
        raise UploadClosed(
            f"upload {upload_id} received more bytes ({upload.received}) while it was being "
            "completed: complete it again with the checksum of the whole file"
        )
    existing = _same_file(session, user, sha256)
    if existing is not None:
        session.rollback()  # the upload stays open: it is the submitter's to cancel
        raise DuplicateFile(
            f"you already uploaded this file (sha256 {sha256}): it is file {existing.id} "
            f"({_filename_of(session, existing.id)!r}, {existing.state.value}); nothing to do, "
            f"cancel this upload (DELETE /inbox/uploads/{upload_id})"
        )
    file = ArchiveFile(
        submitter=user,
        inbox_path=inbox_path(upload_id),
        state=FileState.UPLOADED,
        upload_sha256=sha256,
    )
    file.events.append(
        FileEvent(state=FileState.UPLOADED, detail=f"uploaded {filename!r}: {size} bytes")
    )
    session.add(file)
    session.flush()
    session.execute(
        update(UploadSession).where(UploadSession.id == upload_id).values(file_id=file.id)
    )
    session.commit()
    return file


def _same_file(session: Session, user: str, sha256: str) -> ArchiveFile | None:
    return session.scalars(
        select(ArchiveFile)
        .where(
            ArchiveFile.submitter == user,
            ArchiveFile.upload_sha256 == sha256,
            ArchiveFile.state.not_in(_SETTLED_ELSEWHERE),
        )
        .limit(1)
    ).first()


def cancel_upload(session: Session, store: ObjectStore, upload_id: str, user: str) -> UploadSession:
    """Cancel an open upload and delete its parts; cancelling again finishes a cut-off cleanup."""
    upload = get_upload(session, upload_id, user)
    if upload.state is UploadState.COMPLETED:
        raise UploadClosed(
            f"upload {upload_id} is complete (file {upload.file_id}): it cannot be cancelled"
        )
    _end_read(session)
    abandon_upload(session, store, upload_id)
    return get_upload(session, upload_id, user)


def abandon_upload(
    session: Session, store: ObjectStore, upload_id: str, reason: str | None = None
) -> None:
    """Mark the upload cancelled (so no chunk is recorded any more), keeping the ``reason`` the
    node refused it for, then delete its parts.

    Deletes every object under the upload's path, not only the recorded ones: a chunk whose
    request died between storing and recording leaves an object no part names.
    """
    session.execute(
        update(UploadSession)
        .where(UploadSession.id == upload_id, UploadSession.state == UploadState.OPEN)
        .values(state=UploadState.CANCELLED, error=reason)
    )
    session.commit()
    for key in list(store.list(inbox_path(upload_id) + "/")):
        store.delete(key)
    session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
    session.commit()


def _open_upload(session: Session, upload_id: str, user: str | None) -> UploadSession:
    """The upload if it is open (and, with ``user``, theirs)."""
    upload = session.get(UploadSession, upload_id, populate_existing=True)
    if upload is None:
        raise UploadNotFound(upload_id)
    if user is not None and upload.submitter != user:
        raise NotYours(f"upload {upload_id} belongs to another submitter: use your own uploads")
    if upload.state is UploadState.COMPLETED:
        raise UploadClosed(
            f"upload {upload_id} is complete already (file {upload.file_id}): see GET /inbox/files"
        )
    if upload.state is UploadState.CANCELLED:
        raise UploadClosed(f"upload {upload_id} was cancelled: start a new upload")
    return upload


def _end_read(session: Session) -> None:
    """End the transaction of the checks just made, so that the next statement, a write, starts
    a new one: on SQLite a transaction that reads and then writes fails at once (instead of
    waiting) when another writer committed in between. The writes re-check what they rely on."""
    session.commit()


def _claim(session: Session, upload_id: str, at: int, **values: Any) -> bool:
    """Apply ``values`` if the upload is still open with ``at`` bytes received; whether it was."""
    result = session.execute(
        update(UploadSession)
        .where(
            UploadSession.id == upload_id,
            UploadSession.state == UploadState.OPEN,
            UploadSession.received == at,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount == 1


def _check_filename(filename: str) -> None:
    if not filename.strip() or len(filename) > MAX_FILENAME or _CONTROL.search(filename):
        raise InvalidRequest(
            f"file name {filename[:80]!r} must be 1 to {MAX_FILENAME} characters, not blank, "
            "without control characters"
        )


def _check_sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise InvalidRequest(f"{value[:80]!r} is not a sha256 checksum: give 64 hexadecimal digits")
    return value.lower()


def _sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(CHUNK_SIZE))
    while n := stream.readinto(buffer):  # type: ignore[attr-defined]
        digest.update(buffer[:n])
    return digest.hexdigest()


# -- the file inside --------------------------------------------------------------------------


def check_header(stream: BinaryIO, node_key: bytes, *, whole: bool = True) -> None:
    """Refuse a stream that does not start with a Crypt4GH header this node's key opens.

    Unless ``whole``, the stream is only the start of the file, so a header that it cuts short
    (or that looks malformed) is let through: completion judges the whole file.
    """
    try:
        crypt4gh.open_header(crypt4gh.read_header(stream), node_key)
    except crypt4gh.MalformedHeader as error:
        if whole:
            raise RejectedFile(
                f"the file's Crypt4GH header is damaged ({error}); this upload is cancelled"
            ) from None
    except crypt4gh.NoPacketForKey:
        fingerprint = crypt4gh.fingerprint(crypt4gh.public_key_of(node_key))
        raise WrongRecipient(
            "the file is encrypted for another key, not for this node: encrypt it for the node's "
            f"public key (fingerprint {fingerprint}, from GET /crypt4gh/public-key; "
            "'genofed submit upload' does this for you) and upload it again; this upload is "
            "cancelled"
        ) from None
    except crypt4gh.Crypt4GHError as error:
        raise RejectedFile(
            f"the file is not a Crypt4GH file this node can read ({error}); this upload is "
            "cancelled"
        ) from None


def open_upload(store: ObjectStore, session: Session, upload_id: str) -> BinaryIO:
    """A readable stream of the upload's bytes: its parts in order (for checks and ingestion).

    A part shorter in the store than its record fails the read, naming the object: the upload
    is damaged and must be sent again.
    """
    upload = session.get(UploadSession, upload_id, populate_existing=True)
    if upload is None:
        raise UploadNotFound(upload_id)
    if upload.state is UploadState.CANCELLED:
        raise UploadClosed(f"upload {upload_id} was cancelled: its parts are deleted")
    parts = session.execute(
        select(UploadPart.storage_key, UploadPart.size)
        .where(UploadPart.upload_id == upload_id)
        .order_by(UploadPart.offset)
    ).all()
    raw = _PartsReader(store, [(key, size) for key, size in parts])
    return cast(BinaryIO, io.BufferedReader(raw, CHUNK_SIZE))


class _PartsReader(io.RawIOBase):
    """The concatenation of the parts' objects, each read to its recorded size."""

    def __init__(self, store: ObjectStore, parts: list[tuple[str, int]]) -> None:
        self._store = store
        self._parts = iter(parts)
        self._current: BinaryIO | None = None
        self._key = ""
        self._left = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._left == 0:
            if not self._next_part():
                return 0
        assert self._current is not None
        data = self._current.read(min(len(view), self._left))
        if not data:
            raise StorageError(
                f"inbox object {self._key} ends {self._left} bytes short of its recorded size: "
                "the upload is damaged; cancel it and send the file again"
            )
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def _next_part(self) -> bool:
        if self._current is not None:
            self._current.close()
            self._current = None
        part = next(self._parts, None)
        if part is None:
            return False
        self._key, self._left = part
        self._current = self._store.open(self._key)
        return True

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()


# The upload columns are None for a file no upload made (none today; the outer join allows it).
_FileRows = Select[ArchiveFile, str, int]


# -- archive files --------------------------------------------------------------------------


@dataclass(frozen=True)
class EventView:
    state: str
    detail: str | None
    at: datetime


@dataclass(frozen=True)
class FileView:
    """A file as its submitter sees it: where it is in the pipeline, and why it stopped."""

    id: str
    filename: str | None
    state: str
    error: str | None
    accession: str | None
    upload_sha256: str | None
    upload_size: int | None
    created_at: datetime
    updated_at: datetime
    events: tuple[EventView, ...]


def list_files(session: Session, user: str) -> list[FileView]:
    """The submitter's files, oldest first, with their history."""
    return _views(session, _file_query().where(ArchiveFile.submitter == user))


def describe_file(session: Session, file_id: str, user: str) -> FileView:
    """One of the submitter's files."""
    _own_file(session, file_id, user)
    return _views(session, _file_query().where(ArchiveFile.id == file_id))[0]


def submit_file(session: Session, file_id: str, user: str) -> ArchiveFile:
    """Move an uploaded file to ``submitted`` (asking for ingestion); idempotent.

    A file already submitted is returned as it is, so that a caller whose message was lost can
    publish it again (the queue drops duplicates by key).
    """
    file = _own_file(session, file_id, user)
    if file.state is FileState.SUBMITTED:
        return file
    if file.state is not FileState.UPLOADED:
        raise FileStateConflict(
            f"file {file_id} is {file.state.value}: only an uploaded file can be submitted for "
            "ingestion"
        )
    _end_read(session)
    moved = session.execute(
        update(ArchiveFile)
        .where(ArchiveFile.id == file_id, ArchiveFile.state == FileState.UPLOADED)
        .values(state=FileState.SUBMITTED)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], moved).rowcount == 1:
        session.add(
            FileEvent(file_id=file_id, state=FileState.SUBMITTED, detail="submitted for ingestion")
        )
    session.commit()
    return _own_file(session, file_id, user)


async def request_ingestion(queue: Queue, file: ArchiveFile) -> None:
    """Ask the pipeline to ingest a submitted file: the FEGA ingestion-trigger message, once per
    file (the queue drops a repeat by its key)."""
    body = messages.ingestion_trigger(
        file.submitter, filepath=file.inbox_path, sha256=file.upload_sha256
    )
    await queue.publish(messages.INGEST, body, dedup_key=f"ingest:{file.id}")


def _own_file(session: Session, file_id: str, user: str) -> ArchiveFile:
    file = session.get(ArchiveFile, file_id, populate_existing=True)
    if file is None:
        raise FileNotFound(file_id)
    if file.submitter != user:
        raise NotYours(f"file {file_id} belongs to another submitter: use your own files")
    return file


def _file_query() -> _FileRows:
    return (
        select(ArchiveFile, UploadSession.filename, UploadSession.received)
        .outerjoin(UploadSession, UploadSession.file_id == ArchiveFile.id)
        .options(selectinload(ArchiveFile.events))
        .order_by(ArchiveFile.created_at, ArchiveFile.id)
    )


def _views(session: Session, query: _FileRows) -> list[FileView]:
    return [
        FileView(
            id=file.id,
            filename=filename,
            state=file.state.value,
            error=file.error,
            accession=file.accession,
            upload_sha256=file.upload_sha256,
            upload_size=size,
            created_at=file.created_at,
            updated_at=file.updated_at,
            events=tuple(
                EventView(event.state.value, event.detail, event.created_at)
                for event in file.events
            ),
        )
        for file, filename, size in session.execute(query.execution_options(populate_existing=True))
    ]


def _filename_of(session: Session, file_id: str) -> str | None:
    return session.scalar(select(UploadSession.filename).where(UploadSession.file_id == file_id))
