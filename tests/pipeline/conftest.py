"""A node with its pipeline, and helpers to upload files and run the workers."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from genofed import crypt4gh, db
from genofed.archive import inbox
from genofed.archive.dbqueue import DatabaseQueue
from genofed.archive.queue import Queue
from genofed.archive.stages import STAGES, Pipeline
from genofed.archive.worker import build_pipeline, run_worker
from genofed.config import Settings
from genofed.node.directory import init_node

sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass
class Node:
    settings: Settings
    pipeline: Pipeline

    @property
    def engine(self) -> Engine:
        return self.pipeline.engine

    def queue(self) -> Queue:
        """A queue for one event loop (each test step runs its own)."""
        return DatabaseQueue(self.engine, base_delay=0.01, max_delay=0.05, poll_interval=0.02)

    def encrypt(self, plain: bytes) -> bytes:
        out = io.BytesIO()
        public = crypt4gh.load_public_key(self.settings.crypt4gh.public_key)
        crypt4gh.encrypt(io.BytesIO(plain), out, [public])
        return out.getvalue()

    def upload(self, sealed: bytes, user: str = "alice", chunk: int = 1 << 20) -> str:
        """Upload through the inbox service in chunks, complete it, and submit it for ingestion;
        returns the file id."""
        # the inbox service commits as it goes (no transaction is held while bytes stream)
        with db.session_factory(self.engine)() as session:
            upload_id = inbox.create_upload(session, user, "data.c4gh").id
            for offset in range(0, len(sealed), chunk):
                part = io.BytesIO(sealed[offset : offset + chunk])
                inbox.put_chunk(session, self.pipeline.inbox, upload_id, user, offset, part)
            file = inbox.complete_upload(
                session,
                self.pipeline.inbox,
                upload_id,
                user,
                hashlib.sha256(sealed).hexdigest(),
                node_key=self.pipeline.node_secret,
            )
            file_id = file.id
        self.submit(file_id, user)
        return file_id

    def submit(self, file_id: str, user: str = "alice") -> None:
        with db.session_factory(self.engine)() as session:
            file = inbox.submit_file(session, file_id, user)

        async def publish() -> None:
            queue = self.queue()
            await inbox.request_ingestion(queue, file)
            await queue.close()

        asyncio.run(publish())

    def drain(self, workers: int = 1) -> int:
        """Run workers until the queue stays empty; returns the messages handled."""

        async def run() -> int:
            stop = asyncio.Event()
            queues = [self.queue() for _ in range(workers)]
            counts = await asyncio.gather(
                *(
                    run_worker(self.pipeline, queue, list(STAGES), stop, until_idle=0.3, poll=0.05)
                    for queue in queues
                )
            )
            for queue in queues:
                await queue.close()
            return sum(counts)

        return asyncio.run(run())

    def file(self, file_id: str) -> db.ArchiveFile:
        with db.session_scope(self.engine) as session:
            record = session.get(db.ArchiveFile, file_id)
            assert record is not None
            _ = record.events  # load the history before the session closes
            return record


@pytest.fixture
def node(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A node on each database backend (SQLite; PostgreSQL when the suite has one)."""
    monkeypatch.setenv("GENOFED_DATABASE_URL", database_url)
    made = init_node(tmp_path / "node", name="Test node", country="BE")
    pipeline = build_pipeline(made.settings)
    yield Node(made.settings, pipeline)
    pipeline.engine.dispose()


@pytest.fixture
def plain() -> bytes:
    """A little over three segments of random bytes."""
    return os.urandom(3 * crypt4gh.SEGMENT_SIZE + 1234)
