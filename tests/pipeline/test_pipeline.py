"""The ingestion pipeline, end to end on the database queue: inbox → ready."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from conftest import Node
from genofed import crypt4gh, db
from genofed.archive import messages, stages
from genofed.archive.stages import PermanentError, archive_key
from genofed.metadata import accessions
from genofed.node.directory import init_node

S = db.FileState
HAPPY_STATES = [S.UPLOADED, S.SUBMITTED, S.INGESTED, S.ARCHIVED, S.VERIFIED, S.BACKED_UP, S.READY]


def test_a_file_goes_from_inbox_to_ready(node: Node, plain: bytes) -> None:
    sealed = node.encrypt(plain)
    file_id = node.upload(sealed)
    handled = node.drain()
    assert handled == 4  # ingest, verify, accession, backup

    file = node.file(file_id)
    assert file.state == S.READY and file.error is None
    assert [e.state for e in file.events if "accession" not in (e.detail or "")] == HAPPY_STATES
    assert file.decrypted_sha256 == hashlib.sha256(plain).hexdigest()
    assert file.decrypted_md5 == hashlib.md5(plain).hexdigest()
    assert file.decrypted_size == len(plain)
    assert file.upload_sha256 == hashlib.sha256(sealed).hexdigest()
    assert accessions.parse(file.accession or "").kind == "file"
    assert file.archive_key == node.pipeline.node_key_fingerprint

    # the header is in the database, the body alone in the archive and the backup
    header = crypt4gh.split(io.BytesIO(sealed))
    assert file.header == header
    body = node.pipeline.archive.open(archive_key(file_id)).read()
    assert body == sealed[len(header) :]
    assert node.pipeline.backup.open(archive_key(file_id)).read() == body
    assert file.archive_sha256 == hashlib.sha256(body).hexdigest()
    assert list(node.pipeline.archive.list()) == [archive_key(file_id)]
    assert list(node.pipeline.inbox.list()) == []  # the upload is gone once the file is ready


def test_every_stage_is_idempotent(node: Node, plain: bytes) -> None:
    file_id = node.upload(node.encrypt(plain))
    file = node.file(file_id)
    body = messages.ingestion_trigger(file.submitter, file.inbox_path, file.upload_sha256)
    for stage in (stages.ingest, stages.verify, stages.accession, stages.backup):
        first = stage(node.pipeline, body)
        again = stage(node.pipeline, body)
        assert again == first
        body = first[0].body if first else body
    file = node.file(file_id)
    assert file.state == S.READY
    states = [event.state for event in file.events]
    assert states.count(S.READY) == 1 and states.count(S.ARCHIVED) == 1
    with db.session_scope(node.engine) as session:
        counter = session.get(db.AccessionCounter, "file")
        assert counter is not None and counter.next_value == 2  # one accession, not two


def test_many_files_with_two_workers_get_distinct_accessions(node: Node) -> None:
    ids = [node.upload(node.encrypt(bytes([n]) * 70_000)) for n in range(6)]
    node.drain(workers=2)
    files = [node.file(file_id) for file_id in ids]
    assert all(file.state == S.READY for file in files)
    numbers = sorted(accessions.parse(file.accession or "").number for file in files)
    assert numbers == list(range(1, 7))


def test_a_file_for_another_key_ends_in_error_and_harms_nothing(node: Node, plain: bytes) -> None:
    good = node.upload(node.encrypt(plain))
    node.drain()
    # a file the inbox let through (e.g. from an older genofed) that is for someone else
    stranger = crypt4gh.generate_keypair()
    sealed = io.BytesIO()
    crypt4gh.encrypt(io.BytesIO(plain), sealed, [stranger.public])
    with db.session_scope(node.engine) as session:
        upload_id = _raw_upload(node, session, sealed.getvalue())
        bad = db.ArchiveFile(
            submitter="alice",
            inbox_path=f"uploads/{upload_id}",
            state=S.UPLOADED,
            upload_sha256="0" * 64,
        )
        session.add(bad)
        session.flush()
        bad_id = bad.id
    node.submit(bad_id)
    node.drain()
    failed = node.file(bad_id)
    assert failed.state == S.ERROR
    assert "node key" in (failed.error or "") and node.pipeline.node_key_fingerprint in (
        failed.error or ""
    )
    assert not node.pipeline.archive.exists(archive_key(bad_id))
    assert node.file(good).state == S.READY  # the earlier file is untouched
    assert node.pipeline.archive.exists(archive_key(good))


def test_a_body_damaged_in_the_archive_is_caught_by_verification(node: Node, plain: bytes) -> None:
    file_id = node.upload(node.encrypt(plain))
    file = node.file(file_id)
    trigger = messages.ingestion_trigger(file.submitter, file.inbox_path, file.upload_sha256)
    (verification,) = stages.ingest(node.pipeline, trigger)
    key = archive_key(file_id)
    damaged = bytearray(node.pipeline.archive.open(key).read())
    damaged[100] ^= 1
    node.pipeline.archive.put(key, io.BytesIO(bytes(damaged)))
    with pytest.raises(PermanentError, match=r"segment 0 fails authentication|changed"):
        stages.verify(node.pipeline, verification.body)


def test_a_transient_storage_failure_is_retried(
    node: Node, plain: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = node.pipeline.backup.put
    calls = {"n": 0}

    def flaky_put(key: str, source: object) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("backup disk unavailable")
        return real_put(key, source)  # type: ignore[arg-type]

    monkeypatch.setattr(node.pipeline.backup, "put", flaky_put)
    file_id = node.upload(node.encrypt(plain))
    node.drain()
    file = node.file(file_id)
    assert file.state == S.READY and file.error is None
    assert calls["n"] == 2


def test_key_rotation_reseals_every_header_and_reverifies(node: Node, plain: bytes) -> None:
    file_id = node.upload(node.encrypt(plain))
    node.drain()
    old_secret = node.pipeline.node_secret
    new = crypt4gh.generate_keypair()
    node.pipeline.node_secret, node.pipeline.previous_secrets = new.secret, [old_secret]

    (reverify,) = stages.rotate_key(node.pipeline, messages.rotate_key(file_id))
    assert reverify.body["re_verify"] is True
    assert stages.verify(node.pipeline, reverify.body) == []
    file = node.file(file_id)
    assert file.archive_key == crypt4gh.fingerprint(new.public)
    assert file.state == S.READY
    header = crypt4gh.parse_header(file.header or b"")
    crypt4gh.open_header(header, new.secret)
    with pytest.raises(crypt4gh.NoPacketForKey):
        crypt4gh.open_header(header, old_secret)
    assert "re-verified" in [event.detail for event in file.events]


def test_cancel_removes_the_bytes(node: Node, plain: bytes) -> None:
    file_id = node.upload(node.encrypt(plain))
    node.drain()
    stages.cancel(node.pipeline, file_id, "alice")
    file = node.file(file_id)
    assert file.state == S.DISABLED
    assert not node.pipeline.archive.exists(archive_key(file_id))
    assert not node.pipeline.backup.exists(archive_key(file_id))
    with pytest.raises(PermanentError, match="another submitter"):
        stages.cancel(node.pipeline, file_id, "mallory")


def test_queue_messages_are_fega_messages(node: Node, plain: bytes) -> None:
    file_id = node.upload(node.encrypt(plain))
    file = node.file(file_id)
    body = messages.ingestion_trigger(file.submitter, file.inbox_path, file.upload_sha256)
    for stage in (stages.ingest, stages.verify, stages.accession):
        (outgoing,) = stage(node.pipeline, body)
        messages.validate(messages.schema_for(outgoing.queue, outgoing.body), outgoing.body)
        body = outgoing.body
    assert body["accession_id"].startswith("EGAF")


def test_the_node_refuses_an_old_schema(tmp_path: Path) -> None:
    made = init_node(tmp_path / "n", name="n", country="BE")
    engine = db.make_engine(made.settings.database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num='0001_archive_files'")
    from genofed.archive.worker import build_pipeline

    with pytest.raises(db.SchemaOutOfDate, match="genofed db upgrade"):
        build_pipeline(made.settings)
    engine.dispose()


def _raw_upload(node: Node, session: Session, data: bytes) -> str:
    upload = db.UploadSession(
        submitter="alice", filename="x.c4gh", received=len(data), state=db.UploadState.COMPLETED
    )
    session.add(upload)
    session.flush()
    key = f"uploads/{upload.id}/{0:020d}"
    node.pipeline.inbox.put(key, io.BytesIO(data))
    session.add(db.UploadPart(upload_id=upload.id, offset=0, size=len(data), storage_key=key))
    return upload.id


def test_dataset_messages_from_the_broker_map_and_release(node: Node, plain: bytes) -> None:
    from genofed.metadata import service

    file_id = node.upload(node.encrypt(plain))
    node.drain()
    policy = {
        "dacs": [{"alias": "DAC", "title": "Node DAC", "contacts": ["dac@example.be"]}],
        "policies": [{"alias": "GRU", "title": "Any research", "dac": "DAC", "permission": "GRU"}],
    }
    with db.session_scope(node.engine) as session:
        service.submit_metadata(session, "BE", "alice", policy)
        dataset = service.create_dataset(
            session, "BE", "alice", alias="DS", title="Cohort", policy="GRU"
        )
        dataset_ega = accessions.parse(str(dataset.accession)).ega
        dataset_accession = str(dataset.accession)
    file_ega = accessions.parse(node.file(file_id).accession or "").ega

    async def publish() -> None:
        queue = node.queue()
        await queue.publish(messages.MAPPING, messages.dataset_mapping(dataset_ega, [file_ega]))
        await queue.publish(messages.MAPPING, messages.dataset_release(dataset_ega))
        await queue.publish(messages.MAPPING, messages.dataset_release("EGAD99999999999"))
        failed = await queue.failed()
        await queue.close()
        assert failed == []

    asyncio.run(publish())
    node.drain()
    with db.session_scope(node.engine) as session:
        released = service.find_dataset(session, "BE", dataset_accession)
        assert released.status == db.ObjectStatus.RELEASED
        assert [f.id for f in service.dataset_files(session, released)] == [file_id]

    async def failures() -> list[str]:
        queue = node.queue()
        failed = await queue.failed()
        await queue.close()
        return [message.body["dataset_id"] for message in failed]

    assert asyncio.run(failures()) == ["EGAD99999999999"]  # unknown dataset: error queue


def test_the_pipeline_runs_on_rabbitmq(node: Node, plain: bytes) -> None:
    url = os.environ.get("GENOFED_TEST_RABBITMQ_URL")
    if not url:
        pytest.skip("GENOFED_TEST_RABBITMQ_URL is not set")
    import aio_pika

    from genofed.archive.rabbitmq import RabbitQueue

    prefix = f"gfpipe-{uuid.uuid4().hex[:12]}"
    node.queue = lambda: RabbitQueue(url, prefix=prefix, base_delay=0.01)  # type: ignore[method-assign]
    try:
        file_id = node.upload(node.encrypt(plain))
        assert node.drain(workers=2) == 4
        file = node.file(file_id)
        assert file.state == S.READY
        assert file.decrypted_sha256 == hashlib.sha256(plain).hexdigest()
    finally:

        async def delete_queues() -> None:
            connection = await aio_pika.connect(url)
            async with connection:
                for name in messages.QUEUES:
                    for suffix in ("", ".delay", ".error"):
                        channel = await connection.channel()
                        with contextlib.suppress(Exception):
                            await channel.queue_delete(f"{prefix}.{name}{suffix}")

        asyncio.run(delete_queues())
