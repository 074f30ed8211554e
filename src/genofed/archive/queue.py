"""The work queue between pipeline stages: one interface, two implementations.

- the database-backed queue (the ``jobs`` table): the embedded default, so one
  ``genofed node serve`` does everything on one machine;
- RabbitMQ (aio-pika), so that ``genofed worker --stage verify`` processes on many machines share
  the work.

Delivery is at least once: a worker that dies before ``ack`` gets its message delivered again,
so every stage must be idempotent. Message bodies are FEGA broker messages, validated against
the FEGA message forms when published and when received (see :mod:`genofed.archive.messages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from genofed.errors import GenofedError

if TYPE_CHECKING:
    from genofed.config import Settings


_MAX_EXPONENT = 60  # 2**60 s is beyond any max_delay; a larger power overflows a float


class QueueUnavailable(GenofedError):
    """The queue's broker or database cannot be reached or refuses us."""


class InvalidQueueUrl(GenofedError):
    """``queue_url`` names no queue genofed can use."""


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
        """Send ``body`` to ``queue`` (after validating it: InvalidMessage, UnknownQueue).

        A second publish with the same ``dedup_key`` is a no-op unless the first one failed
        (database queue); RabbitMQ has no deduplication, so the stage drops the duplicate (it is
        idempotent)."""

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

    async def requeue_failed(self, queue: str | None = None) -> int:
        """Move the error queue's messages (of ``queue``, or all) back to work, with fresh
        attempts, once an operator fixed the cause; returns how many."""

    async def close(self) -> None:
        """Release the connection; messages received and not yet acknowledged are delivered
        again (to another worker)."""


def backoff_delay(attempts: int, base_delay: float, max_delay: float) -> float:
    """Seconds to wait before the delivery that follows ``attempts`` failed ones:
    ``min(max_delay, base_delay * 2**attempts)``, growing fast so a broken dependency (storage
    down) is not hammered, and capped so a recovered one is used again soon."""
    return float(min(max_delay, base_delay * 2 ** min(attempts, _MAX_EXPONENT)))


def failed_body(value: Any) -> dict[str, Any]:
    """A stored or received body for :class:`FailedMessage`: one that is not a JSON object is
    kept under ``"payload"``, so the operator still sees it."""
    return value if isinstance(value, dict) else {"payload": value}


def open_queue(settings: Settings) -> Queue:
    """The queue ``settings.queue_url`` names: empty for the database queue on
    ``settings.database_url``, ``amqp://`` or ``amqps://`` for RabbitMQ."""
    url = settings.queue_url.get_secret_value().strip()
    if not url:
        from genofed.archive.dbqueue import DatabaseQueue

        return DatabaseQueue.open(
            settings.database_url,
            lease_seconds=settings.queue_lease_seconds,
            max_attempts=settings.queue_max_attempts,
        )
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("amqp", "amqps"):
        from genofed.archive.rabbitmq import RabbitQueue

        return RabbitQueue(url, max_attempts=settings.queue_max_attempts)
    shown = f"a {scheme!r} URL" if scheme else "not a URL"
    raise InvalidQueueUrl(
        f"queue_url is {shown}: leave it empty for the database queue or set "
        "amqp://USER:PASSWORD@HOST:5672/VHOST (amqps:// for TLS) for RabbitMQ, "
        "in genofed.toml or GENOFED_QUEUE_URL"
    )
