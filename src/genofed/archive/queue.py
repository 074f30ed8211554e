"""The work queue between pipeline stages: one interface, two implementations.

- the database-backed queue (the ``jobs`` table): the embedded default, so one
  ``genofed node serve`` does everything on one machine;
- RabbitMQ (aio-pika), so that ``genofed worker --stage verify`` processes on many machines share
  the work.

Delivery is at least once: a worker that dies before ``ack`` gets its message delivered again,
so every stage must be idempotent. Message bodies are FEGA broker messages, validated against
their JSON schemas when published and when received (see :mod:`genofed.archive.messages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Delivery:
    """A message handed to a worker, to be acknowledged, retried or rejected."""

    queue: str
    body: dict[str, Any]
    attempts: int  # deliveries before this one
    handle: object  # the implementation's own reference to the message


@dataclass(frozen=True)
class FailedMessage:
    """A message in the error queue, with the reason it could not be processed."""

    queue: str
    body: dict[str, Any]
    reason: str
    attempts: int
    failed_at: datetime


class Queue(Protocol):
    async def publish(
        self, queue: str, body: dict[str, Any], *, dedup_key: str | None = None
    ) -> None:
        """Send ``body`` to ``queue``; a second publish with the same ``dedup_key`` is a no-op
        while the first is not done (database queue) or is dropped by the stage (RabbitMQ)."""

    async def get(self, queues: Sequence[str], *, timeout: float) -> Delivery | None:
        """The next message from any of ``queues``, or None after ``timeout`` seconds."""

    async def ack(self, delivery: Delivery) -> None:
        """The message was processed: remove it."""

    async def retry(self, delivery: Delivery, error: str) -> None:
        """Processing failed transiently: deliver again after a growing delay, or move the
        message to the error queue once the attempts are used up."""

    async def reject(self, delivery: Delivery, error: str) -> None:
        """Processing failed for good (bad input): move the message to the error queue."""

    async def depths(self) -> dict[str, int]:
        """Messages waiting per queue (for the operator's dashboard)."""

    async def failed(self, limit: int = 100) -> list[FailedMessage]:
        """The error queue's messages, newest first."""

    async def close(self) -> None: ...
