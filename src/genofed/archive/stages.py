"""The ingestion pipeline, one function per stage, as in a FEGA node.

    inbox ──ingest──▶ archived ──verify──▶ verified ──accession──▶ accessioned
          ──backup──▶ backed_up → ready

Each stage takes the FEGA message it was sent, does its work, commits the file's new state and
returns the messages for the next stage. Stages are idempotent: the queue delivers at least once,
so a stage that finds its work already done returns the same next message and does nothing else.
Storage keys are derived from the file id, so a repeated write replaces, never duplicates.
Errors caused by the input (wrong key, corrupted data) are :class:`PermanentError`: the file goes
to ``error`` with a reason the submitter can act on. Anything else is retried by the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.orm import Session

from genofed import crypt4gh, db
from genofed.archive import inbox, messages
from genofed.archive.checksums import HashingReader, HashingWriter, ParallelDigests
from genofed.config import Settings
from genofed.crypt4gh.errors import Crypt4GHError
from genofed.crypt4gh.header import reencrypt
from genofed.db import ArchiveFile, FileEvent, FileState
from genofed.errors import GenofedError
from genofed.metadata import accessions
from genofed.storage import ObjectStore
from genofed.storage.fanout import put_everywhere

S = FileState


class PermanentError(GenofedError):
    """The file itself is at fault: retrying cannot help; the submitter must act."""


@dataclass(frozen=True)
class Outgoing:
    """A message a stage asks the worker to publish once the stage has committed."""

    queue: str
    body: dict[str, Any]
    dedup_key: str


@dataclass
class Pipeline:
    """What the stages work with: settings, database, stores and the node's keys."""

    settings: Settings
    engine: Engine
    inbox: ObjectStore
    archive: ObjectStore
    backup: ObjectStore
    node_secret: bytes
    previous_secrets: Sequence[bytes] = ()  # keys retired by rotation, still able to open headers

    @property
    def node_key_fingerprint(self) -> str:
        return crypt4gh.fingerprint(crypt4gh.public_key_of(self.node_secret))


Stage = Callable[[Pipeline, dict[str, Any]], list[Outgoing]]


# -- ingest -------------------------------------------------------------------------------------


def ingest(pipeline: Pipeline, body: dict[str, Any]) -> list[Outgoing]:
    """Split the upload: header (opened with the node key) to the database, body to the archive."""
    file = _find(pipeline, body)
    if _beyond(file, S.ARCHIVED):
        return _verify_message(file)
    # The inbox checked the upload's sha256 when the upload completed; here the body is hashed
    # as it is archived, so that verification can prove the archive copy unchanged. The backup
    # copy is written in the same pass (the two writes overlap); the backup stage checks it.
    with _inbox_stream(pipeline, file) as upload:
        try:
            header_bytes = crypt4gh.split(upload)
            crypt4gh.open_header(crypt4gh.parse_header(header_bytes), pipeline.node_secret)
        except Crypt4GHError as error:
            raise PermanentError(
                f"the upload is not a Crypt4GH file for this node: {error}; encrypt it for the "
                f"node key {pipeline.node_key_fingerprint} and upload it again"
            ) from None
        key = archive_key(file.id)
        with ParallelDigests("sha256") as digests:
            hashed = HashingReader(upload, digests)
            size = put_everywhere((pipeline.archive, pipeline.backup), key, hashed)  # type: ignore[arg-type]
            body_sha256 = digests.hexdigests()["sha256"]
    with db.session_scope(pipeline.engine) as session:
        record = _load(session, file.id)
        record.header = header_bytes
        record.archive_key = pipeline.node_key_fingerprint
        record.archive_path, record.archive_size = key, size
        record.archive_sha256 = body_sha256
        _advance(
            session,
            record,
            (S.SUBMITTED, S.UPLOADED),
            S.INGESTED,
            "header opened with the node key",
        )
        _advance(session, record, (S.INGESTED,), S.ARCHIVED, f"body archived at {key}")
        return _verify_message(record)


def archive_key(file_id: str) -> str:
    """Where a file's body lives in the archive (and the backup): derived, so never duplicated."""
    return f"files/{file_id[:2]}/{file_id}.c4gh"


def _verify_message(file: ArchiveFile) -> list[Outgoing]:
    assert file.archive_path and file.archive_sha256
    body = messages.ingestion_verification(
        file.submitter, file.inbox_path, file.id, file.archive_path, file.archive_sha256
    )
    return [Outgoing(messages.VERIFY, body, f"verify:{file.id}")]


# -- verify -------------------------------------------------------------------------------------


def verify(pipeline: Pipeline, body: dict[str, Any]) -> list[Outgoing]:
    """Stream-decrypt the archived body: sha256 and md5 of the plaintext, sha256 of the body."""
    file = _find(pipeline, body)
    re_verify = bool(body.get("re_verify"))
    if _beyond(file, S.VERIFIED) and not re_verify:
        return _accession_message(file)
    found = checksums_of_archived(pipeline, file)
    with db.session_scope(pipeline.engine) as session:
        record = _load(session, file.id)
        if re_verify:
            _check_same(record, found)
            session.add(FileEvent(file_id=record.id, state=record.state, detail="re-verified"))
            return []
        record.decrypted_sha256, record.decrypted_md5, record.decrypted_size = found.plain
        _advance(session, record, (S.ARCHIVED,), S.VERIFIED, "plaintext sha256 and md5 computed")
        return _accession_message(record)


@dataclass(frozen=True)
class Checksums:
    plain: tuple[str, str, int]  # sha256, md5, size of the plaintext
    body_sha256: str


def checksums_of_archived(pipeline: Pipeline, file: ArchiveFile) -> Checksums:
    """Read the archived body once: decrypt it and hash plaintext and body on the way."""
    assert file.header is not None and file.archive_path is not None
    header = _open_stored_header(pipeline, file.header)
    with (
        pipeline.archive.open(file.archive_path) as stored,
        ParallelDigests("sha256") as body_digests,
        ParallelDigests("sha256", "md5") as plain_digests,
    ):
        sink = HashingWriter(plain_digests)
        try:
            crypt4gh.decrypt_body(HashingReader(stored, body_digests), sink, header)  # type: ignore[arg-type]
        except Crypt4GHError as error:
            raise PermanentError(
                f"the archived body of file {file.id} is damaged: {error}"
            ) from None
        body_sha256 = body_digests.hexdigests()["sha256"]
        plain = plain_digests.hexdigests()
    if body_sha256 != file.archive_sha256:
        raise PermanentError(
            f"the archived body of file {file.id} changed since ingestion (sha256 "
            f"{body_sha256}, recorded {file.archive_sha256}): restore it from the backup"
        )
    return Checksums((plain["sha256"], plain["md5"], sink.size), body_sha256)


def _check_same(record: ArchiveFile, found: Checksums) -> None:
    recorded = (record.decrypted_sha256, record.decrypted_md5, record.decrypted_size)
    if found.plain != recorded:
        raise PermanentError(f"re-verification of file {record.id} found other checksums")


def _accession_message(file: ArchiveFile) -> list[Outgoing]:
    assert file.decrypted_sha256 and file.decrypted_md5
    body = messages.accession_request(
        file.submitter, file.inbox_path, file.decrypted_sha256, file.decrypted_md5
    )
    return [Outgoing(messages.ACCESSION, body, f"accession:{file.id}")]


# -- accession ----------------------------------------------------------------------------------


def accession(pipeline: Pipeline, body: dict[str, Any]) -> list[Outgoing]:
    """Give the verified file its stable accession (once, whatever the retries)."""
    file = _find(pipeline, body)
    with db.session_scope(pipeline.engine) as session:
        record = _load(session, file.id)
        if record.accession is None:
            given = accessions.allocate(session, pipeline.settings.country, "file")
            record.accession = str(given)
            session.add(
                FileEvent(
                    file_id=record.id, state=record.state, detail=f"accession {record.accession}"
                )
            )
        return _backup_message(record, pipeline.settings.country)


def _backup_message(file: ArchiveFile, country: str) -> list[Outgoing]:
    assert file.accession and file.decrypted_sha256 and file.decrypted_md5
    ega = accessions.parse(file.accession).ega
    body = messages.ingestion_accession(
        file.submitter, file.inbox_path, ega, file.decrypted_sha256, file.decrypted_md5
    )
    return [Outgoing(messages.BACKUP, body, f"backup:{file.id}")]


# -- backup -------------------------------------------------------------------------------------


def backup(pipeline: Pipeline, body: dict[str, Any]) -> list[Outgoing]:
    """Check the backup copy (made at ingestion; made again if it is missing or differs) and
    make the file ready."""
    file = _find(pipeline, body)
    if file.state != S.READY:
        assert file.archive_path is not None
        if not _backup_intact(pipeline, file):
            with pipeline.archive.open(file.archive_path) as source:
                pipeline.backup.put(file.archive_path, source)
            if not _backup_intact(pipeline, file):
                pipeline.backup.delete(file.archive_path)
                raise RuntimeError(f"backup copy of file {file.id} differs from the archive")
        with db.session_scope(pipeline.engine) as session:
            record = _load(session, file.id)
            record.backup_path = file.archive_path
            _advance(session, record, (S.VERIFIED,), S.BACKED_UP, "backup copy verified")
            _advance(session, record, (S.BACKED_UP,), S.READY, "ready for datasets")
    _remove_upload(pipeline, file)
    return []


# -- key rotation -------------------------------------------------------------------------------


def rotate_key(pipeline: Pipeline, body: dict[str, Any]) -> list[Outgoing]:
    """Seal the file's header for the current node key, then have the body re-verified."""
    file_id = str(body["file_id"])
    with db.session_scope(pipeline.engine) as session:
        record = _load(session, file_id)
        if record.header is None:
            raise PermanentError(f"file {file_id} has no archived header to rotate")
        if record.archive_key != pipeline.node_key_fingerprint:
            header = _open_stored_header(pipeline, record.header)
            own_public = crypt4gh.public_key_of(pipeline.node_secret)
            record.header = reencrypt(header, [own_public])
            record.archive_key = pipeline.node_key_fingerprint
            session.add(
                FileEvent(
                    file_id=record.id,
                    state=record.state,
                    detail=f"header sealed for node key {record.archive_key}",
                )
            )
        assert record.archive_path and record.archive_sha256
        verification = messages.ingestion_verification(
            record.submitter,
            record.inbox_path,
            record.id,
            record.archive_path,
            record.archive_sha256,
            re_verify=True,
        )
    return [
        Outgoing(
            messages.VERIFY, verification, f"re-verify:{file_id}:{pipeline.node_key_fingerprint}"
        )
    ]


# -- dataset mapping ----------------------------------------------------------------------------


def mapping(pipeline: Pipeline, body: dict[str, Any]) -> list[Outgoing]:
    """Apply a FEGA dataset message (mapping, release, deprecate) sent through the broker."""
    from genofed.metadata.errors import MetadataError
    from genofed.metadata.fega import apply_dataset_message

    with db.session_scope(pipeline.engine) as session:
        try:
            apply_dataset_message(session, pipeline.settings.country, body)
        except MetadataError as error:
            raise PermanentError(str(error)) from None
    return []


# -- cancel -------------------------------------------------------------------------------------


def cancel(pipeline: Pipeline, file_id: str, user: str) -> None:
    """Withdraw a file that is not yet in a released dataset: disabled, its bytes removed."""
    with db.session_scope(pipeline.engine) as session:
        record = _load(session, file_id)
        if record.submitter != user:
            raise PermanentError(f"file {file_id} belongs to another submitter")
        if _in_released_dataset(session, file_id):
            raise PermanentError(
                f"file {file_id} is in a released dataset: deprecate the dataset first"
            )
        _advance(
            session,
            record,
            tuple(s for s in S if s != S.DISABLED),
            S.DISABLED,
            f"cancelled by {user}",
        )
        paths = (record.archive_path, record.backup_path)
    for store, path in ((pipeline.archive, paths[0]), (pipeline.backup, paths[1])):
        if path:
            store.delete(path)
    _remove_upload(pipeline, record)


# -- the stage table and error handling ---------------------------------------------------------

STAGES: dict[str, Stage] = {
    messages.INGEST: ingest,
    messages.VERIFY: verify,
    messages.ACCESSION: accession,
    messages.BACKUP: backup,
    messages.ROTATE: rotate_key,
    messages.MAPPING: mapping,
}


def record_failure(pipeline: Pipeline, body: dict[str, Any], reason: str, *, final: bool) -> None:
    """Note why a stage failed on the file; a final failure puts the file in ``error``."""
    try:
        file = _find(pipeline, body)
    except PermanentError:
        return  # the message names no file we know: nothing to mark
    with db.session_scope(pipeline.engine) as session:
        record = _load(session, file.id)
        record.error = reason
        if final:
            _advance(
                session,
                record,
                tuple(s for s in S if s not in (S.ERROR, S.DISABLED)),
                S.ERROR,
                reason,
            )


# -- helpers ------------------------------------------------------------------------------------


def _find(pipeline: Pipeline, body: dict[str, Any]) -> ArchiveFile:
    """The file a message is about: by file id, or by submitter and inbox path."""
    with db.session_scope(pipeline.engine) as session:
        query = select(ArchiveFile)
        if "file_id" in body:
            query = query.where(ArchiveFile.id == body["file_id"])
        else:
            query = query.where(
                ArchiveFile.submitter == body.get("user"),
                ArchiveFile.inbox_path == body.get("filepath"),
                ArchiveFile.state.not_in((S.ERROR, S.DISABLED)),
            )
        file = session.scalars(query).first()
        if file is None:
            raise PermanentError(f"no file in the archive matches the message {body}")
        if file.state == S.DISABLED:
            raise PermanentError(f"file {file.id} was cancelled")
        session.expunge(file)
        return file


def _load(session: Session, file_id: str) -> ArchiveFile:
    record = session.get(ArchiveFile, file_id, with_for_update=True)
    if record is None:
        raise PermanentError(f"file {file_id} is no longer in the archive")
    return record


ORDER = [
    S.REGISTERED,
    S.UPLOADED,
    S.SUBMITTED,
    S.INGESTED,
    S.ARCHIVED,
    S.VERIFIED,
    S.BACKED_UP,
    S.READY,
]


def _beyond(file: ArchiveFile, state: FileState) -> bool:
    """Whether the file has reached ``state`` or a later one on the way to ready."""
    return file.state in ORDER and ORDER.index(file.state) >= ORDER.index(state)


def _advance(
    session: Session,
    record: ArchiveFile,
    expected: Iterable[FileState],
    state: FileState,
    detail: str,
) -> None:
    """Move to ``state`` only from an expected state, so a repeated stage adds no event."""
    result = session.execute(
        update(ArchiveFile)
        .where(ArchiveFile.id == record.id, ArchiveFile.state.in_(list(expected)))
        .values(state=state, error=None if state != S.ERROR else record.error)
        .execution_options(synchronize_session=False)
    )
    if cast("CursorResult[Any]", result).rowcount:
        record.state = state
        session.add(FileEvent(file_id=record.id, state=state, detail=detail))


def _open_stored_header(pipeline: Pipeline, header_bytes: bytes) -> crypt4gh.Header:
    raw = crypt4gh.parse_header(header_bytes)
    for secret in (pipeline.node_secret, *pipeline.previous_secrets):
        try:
            return crypt4gh.open_header(raw, secret)
        except crypt4gh.NoPacketForKey:
            continue
    raise PermanentError(
        "the stored header opens with none of the node's keys: configure the retired key in "
        "crypt4gh.previous_secret_keys and rotate again"
    )


def _backup_intact(pipeline: Pipeline, file: ArchiveFile) -> bool:
    """Whether the backup store holds the archived body, byte for byte (by its sha256)."""
    assert file.archive_path is not None
    if not pipeline.backup.exists(file.archive_path):
        return False
    with ParallelDigests("sha256") as digests:
        for chunk in pipeline.backup.iter_range(file.archive_path, 0, None, 4 << 20):
            digests.update(chunk)
        return digests.hexdigests()["sha256"] == file.archive_sha256


def _inbox_stream(pipeline: Pipeline, file: ArchiveFile) -> BinaryIO:
    with db.session_scope(pipeline.engine) as session:
        return inbox.open_upload(pipeline.inbox, session, inbox.upload_id_of(file.inbox_path))


def _remove_upload(pipeline: Pipeline, file: ArchiveFile) -> None:
    """The inbox copy is not needed once the file is ready (or cancelled)."""
    for key in list(pipeline.inbox.list(f"{file.inbox_path}/")):
        pipeline.inbox.delete(key)


def _in_released_dataset(session: Session, file_id: str) -> bool:
    query = (
        select(db.ObjectFile.object_id)
        .join(db.MetadataObject, db.MetadataObject.id == db.ObjectFile.object_id)
        .where(
            db.ObjectFile.file_id == file_id,
            db.MetadataObject.kind == db.ObjectKind.DATASET,
            db.MetadataObject.status == db.ObjectStatus.RELEASED,
        )
    )
    return session.execute(query).first() is not None
