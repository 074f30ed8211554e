"""The queue-test harnesses: make queues of one backend, inject raw messages, run scenarios."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import aio_pika
import pytest
from sqlalchemy import insert

from genofed.archive import messages
from genofed.archive.dbqueue import DatabaseQueue
from genofed.archive.queue import Queue
from genofed.archive.rabbitmq import RabbitQueue
from genofed.db import Job, make_engine

SCENARIO_TIMEOUT = 30.0
# Tiny back-off so that retries take milliseconds; database queues poll often.
FAST: dict[str, Any] = {"base_delay": 0.05, "max_delay": 1.0}
FAST_DB: dict[str, Any] = {**FAST, "poll_interval": 0.01}

# (backend_kind, database_url): RabbitMQ needs no database, its database_url is the cheap
# SQLite one, unused. A mark rather than a hook, because pytest lets a parametrize mark (only)
# take precedence over the database_url fixture's own parameters.
_BACKENDS = [("sqlite", "sqlite"), ("postgresql", "postgresql"), ("rabbitmq", "sqlite")]
ALL_BACKENDS = pytest.mark.parametrize(
    ("backend_kind", "database_url"),
    _BACKENDS,
    indirect=True,
    ids=[kind for kind, _ in _BACKENDS],
)


class Harness:
    """Makes queues of one backend, injects raw messages behind their API, runs scenarios."""

    kind: str

    def __init__(self) -> None:
        self.queues: list[Queue] = []

    def make(self, **options: Any) -> Queue:
        raise NotImplementedError

    async def inject(self, queue: str, payload: Any) -> None:
        """Put ``payload`` on ``queue`` without the validation ``publish`` does."""
        raise NotImplementedError

    def run(self, scenario: Callable[[Harness], Awaitable[None]]) -> None:
        async def main() -> None:
            try:
                await asyncio.wait_for(scenario(self), SCENARIO_TIMEOUT)
            finally:
                for queue in self.queues:
                    await queue.close()
                self.queues.clear()

        asyncio.run(main())


class DatabaseHarness(Harness):
    def __init__(self, kind: str, url: str) -> None:
        super().__init__()
        self.kind = kind
        self.url = url
        self.engine = make_engine(url)

    def make(self, **options: Any) -> DatabaseQueue:
        queue = DatabaseQueue.open(self.url, **{**FAST_DB, **options})
        self.queues.append(queue)
        return queue

    async def inject(self, queue: str, payload: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(insert(Job).values(queue=queue, payload=payload))


class RabbitHarness(Harness):
    kind = "rabbitmq"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.prefix = f"gftest-{uuid.uuid4().hex[:12]}"

    def make(self, **options: Any) -> RabbitQueue:
        queue = RabbitQueue(self.url, prefix=self.prefix, **{**FAST, **options})
        self.queues.append(queue)
        return queue

    def name(self, queue: str, kind: str = "") -> str:
        return ".".join(part for part in (self.prefix, queue, kind) if part)

    async def inject(self, queue: str, payload: Any) -> None:
        body = payload if isinstance(payload, bytes) else _json_bytes(payload)
        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(self.name(queue), durable=True)
            await channel.default_exchange.publish(
                aio_pika.Message(body), routing_key=self.name(queue)
            )

    async def count(self, queue: str, kind: str = "") -> int:
        """Messages ready in one broker queue, asked independently of RabbitQueue."""
        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel()
            declared = await channel.declare_queue(self.name(queue, kind), passive=True)
            return declared.declaration_result.message_count or 0

    async def delete_queues(self) -> None:
        connection = await aio_pika.connect(self.url)
        async with connection:
            for queue in messages.QUEUES:
                for kind in ("", "delay", "error"):
                    # a channel each: deleting a queue that does not exist may close it
                    with suppress(Exception):
                        channel = await connection.channel()
                        await channel.queue_delete(self.name(queue, kind))
                        await channel.close()


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload).encode()
