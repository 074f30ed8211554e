"""The RabbitMQ queue (aio-pika): workers on many machines share the pipeline's queues.

Topology, declared when connecting, for each pipeline queue ``q`` (all durable):

- ``{prefix}.q``: the work queue. Messages are persistent and confirmed by the broker before
  ``publish`` returns; consumers acknowledge by hand and take one message at a time (prefetch 1
  per consumer), so an idle worker never sits on messages a busy one could take.
- ``{prefix}.q.delay``: retries wait here. A retried message is republished with its attempt
  count in the ``x-attempts`` header and a per-message TTL of the back-off delay; on expiry the
  broker dead-letters it back to ``{prefix}.q``. No worker sleeps, and no timer is lost if a
  worker dies. The broker expires messages only at the head of a queue, so a short retry behind a
  longer one waits for it: a retry can be late by up to ``max_delay``.
- ``{prefix}.q.error``: messages that failed for good, with ``x-reason``, ``x-attempts``,
  ``x-failed-at`` and ``x-queue`` headers.

RabbitMQ does not deduplicate: ``dedup_key`` travels as the AMQP ``message_id`` (for tracing),
and a duplicate reaches its stage, which is idempotent and finds its work done. A worker that dies
holding a message gets it redelivered by the broker without ``x-attempts`` growing.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
    DeliveryMode,
)
from aio_pika.exceptions import ChannelInvalidStateError
from aiormq.exceptions import AMQPError
from pamqp.exceptions import PAMQPException
from yarl import URL

from genofed.archive import messages
from genofed.archive.messages import InvalidMessage, UnknownQueue
from genofed.archive.queue import (
    Delivery,
    FailedMessage,
    InvalidQueueUrl,
    QueueUnavailable,
    backoff_delay,
    failed_body,
)
from genofed.db.models import utcnow

log = logging.getLogger(__name__)

_BROKER_ERRORS = (AMQPError, PAMQPException, ChannelInvalidStateError, OSError, TimeoutError)
_CHECK = (
    "check that the broker is running and reachable, and the user, password, vhost and "
    "permissions in queue_url (GENOFED_QUEUE_URL)"
)
_MAX_HEADER = 4000  # characters of a reason kept in a header (a frame holds ~128 KiB)
_LIVENESS = 1.0  # seconds between checks of the connection while get() waits


class RabbitQueue:
    """The :class:`~genofed.archive.queue.Queue` on RabbitMQ (see the module docstring).

    ``max_attempts`` deliveries are made before a message goes to the error queue; retry ``n``
    (from 0) waits ``min(max_delay, base_delay * 2**n)`` seconds. The connection is opened on
    first use and again after it was lost; failures raise :class:`QueueUnavailable`. One instance
    holds at most one unacknowledged message per queue: run more instances for parallelism.
    """

    def __init__(
        self,
        url: str,
        *,
        max_attempts: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        prefix: str = "genofed",
        connect_timeout: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._url = url
        self._password = _password_of(url)
        self._where = broker_address(url)
        try:
            _ = URL(url).port  # parsing checks the port
        except ValueError as error:
            raise InvalidQueueUrl(
                f"queue_url is not a valid RabbitMQ URL: {self._scrub(error)}; "
                "write it as amqp://USER:PASSWORD@HOST:5672/VHOST in genofed.toml or "
                "GENOFED_QUEUE_URL"
            ) from None
        self.max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._prefix = prefix
        self._timeout = connect_timeout
        self._connection: AbstractConnection | None = None
        self._publisher: AbstractChannel | None = None  # with publisher confirms
        # A channel per consumed queue, prefetch 1: when the broker closes one (a consumer
        # timeout), only the message waiting on it is requeued, not one being processed.
        self._receivers: dict[str, AbstractChannel] = {}
        self._starting: set[str] = set()
        self._buffered: dict[str, deque[tuple[int, AbstractIncomingMessage]]] = defaultdict(deque)
        self._arrivals = itertools.count()
        self._arrived = asyncio.Condition()
        self._connecting = asyncio.Lock()
        self._closed = False

    def name(self, queue: str, kind: str = "") -> str:
        """The broker's name for a pipeline queue (``kind``: "", "delay" or "error")."""
        return ".".join(part for part in (self._prefix, queue, kind) if part)

    # -- the Queue protocol ---------------------------------------------------------------------

    async def publish(
        self, queue: str, body: dict[str, Any], *, dedup_key: str | None = None
    ) -> None:
        """Send a persistent message and wait for the broker's confirm."""
        messages.validate_for(queue, body)
        data = json.dumps(body, separators=(",", ":")).encode()
        await self._send(self.name(queue), data, {"x-attempts": 0}, message_id=dedup_key)

    async def get(self, queues: Sequence[str], *, timeout: float) -> Delivery | None:
        """The next valid message of ``queues``; invalid ones go to their error queue."""
        names = messages.check_queues(queues)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        await self._channels()  # refuses a closed queue
        while not self._closed:  # a get waiting when the queue closes returns None
            await self._consume(names)
            try:
                taken = await self._next_buffered(names, deadline)
            except TimeoutError:
                return None
            if taken is not None:  # None: a channel closed; reopen it and wait on
                delivery = await self._accept(*taken)
                if delivery is not None:
                    return delivery
        return None

    async def ack(self, delivery: Delivery) -> None:
        await self._settle(delivery.queue, _message_of(delivery), "ack")

    async def retry(self, delivery: Delivery, error: str) -> None:
        """Park the message in the delay queue for the back-off delay, or fail it for good."""
        message = _message_of(delivery)
        attempts = delivery.attempts + 1
        if attempts >= self.max_attempts:
            reason = f"{error} (gave up after {attempts} attempts)"
            await self._fail(delivery.queue, message, reason, attempts)
            return
        delay = backoff_delay(delivery.attempts, self._base_delay, self._max_delay)
        headers = {"x-attempts": attempts, "x-last-error": _clip(error)}
        await self._send(
            self.name(delivery.queue, "delay"),
            message.body,
            headers,
            message_id=message.message_id,
            expiration=delay,
        )
        await self._settle(delivery.queue, message, "retry")

    async def reject(self, delivery: Delivery, error: str) -> None:
        await self._fail(delivery.queue, _message_of(delivery), error, delivery.attempts + 1)

    async def depths(self) -> dict[str, int]:
        """Messages waiting in each work queue and its delay queue; not those being processed
        (the broker does not report unacknowledged messages to a client)."""
        publisher = await self._channels()
        depths: dict[str, int] = {}
        async with self._broker("count messages"):
            for queue in messages.QUEUES:
                depths[queue] = 0
                for name in (self.name(queue), self.name(queue, "delay")):
                    declared = await publisher.declare_queue(name, passive=True)
                    depths[queue] += declared.declaration_result.message_count or 0
        return depths

    async def failed(self, limit: int = 100) -> list[FailedMessage]:
        """The error queues' messages, newest first, left in place.

        They are fetched unacknowledged (``basic.get``) on a channel of their own; closing that
        channel hands them back to the broker, which requeues them at their positions. While this
        runs, a concurrent ``failed`` or ``requeue_failed`` does not see them.
        """
        found: list[FailedMessage] = []
        async with self._side_channel("read the error queues") as channel:
            for queue in messages.QUEUES:
                async for message in self._drain(channel, queue):
                    found.append(_failed_message(queue, message))
        found.sort(key=lambda failed: failed.failed_at, reverse=True)
        return found[:limit]

    async def requeue_failed(self, queue: str | None = None) -> int:
        """Move the error queues' messages (of ``queue``, or all) back to their work queues with
        fresh attempts; returns how many. Each is acknowledged only once it is republished."""
        queues = messages.QUEUES if queue is None else (messages.check_queue(queue),)
        moved = 0
        async with self._side_channel("requeue failed messages") as channel:
            for name in queues:
                async for message in self._drain(channel, name):
                    await self._send(
                        self.name(name), message.body, {"x-attempts": 0}, message.message_id
                    )
                    await message.ack()
                    moved += 1
        return moved

    async def close(self) -> None:
        """Close the connection; the broker requeues the messages still unacknowledged."""
        self._closed = True
        await self._drop()
        async with self._arrived:
            self._arrived.notify_all()  # a waiting get returns None

    # -- connection and topology ----------------------------------------------------------------

    async def _channels(self) -> AbstractChannel:
        """The publishing channel, connecting (and declaring the topology) when needed."""
        if self._closed:
            raise RuntimeError("this RabbitQueue is closed")
        if not self._lost():
            assert self._publisher is not None
            return self._publisher
        async with self._connecting:
            if self._lost():
                await self._connect()
        assert self._publisher is not None
        return self._publisher

    def _lost(self) -> bool:
        return self._publisher is None or self._publisher.is_closed

    def _deaf(self, queue: str) -> bool:
        """No open channel consumes ``queue`` (what came on a closed one is being requeued)."""
        channel = self._receivers.get(queue)
        return channel is None or channel.is_closed

    async def _connect(self) -> None:
        await self._drop()
        async with self._broker("connect"):
            try:
                self._connection = await aio_pika.connect(self._url, timeout=self._timeout)
            except ValueError as error:  # a malformed URL (port, query)
                raise QueueUnavailable(
                    f"queue_url for RabbitMQ at {self._where} is malformed: {self._scrub(error)}; "
                    "fix queue_url (GENOFED_QUEUE_URL)"
                ) from None
            # on_return_raises: a message the broker cannot route fails instead of vanishing
            publisher = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            await self._declare(publisher)
            self._publisher = publisher

    async def _declare(self, channel: AbstractChannel) -> None:
        for queue in messages.QUEUES:
            work = self.name(queue)
            await channel.declare_queue(work, durable=True)
            await channel.declare_queue(self.name(queue, "error"), durable=True)
            await channel.declare_queue(
                self.name(queue, "delay"),
                durable=True,
                arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": work},
            )

    async def _drop(self) -> None:
        """Forget the connection and everything received on it (the broker requeues that)."""
        connection, self._connection = self._connection, None
        self._publisher = None
        self._receivers.clear()
        self._buffered.clear()
        if connection is not None and not connection.is_closed:
            with suppress(*_BROKER_ERRORS):
                await connection.close()

    @asynccontextmanager
    async def _broker(self, doing: str) -> AsyncIterator[None]:
        """Turn the broker's failures into one-line :class:`QueueUnavailable` errors."""
        try:
            yield
        except _BROKER_ERRORS as error:
            await self._drop()
            raise QueueUnavailable(
                f"RabbitMQ at {self._where}: cannot {doing}: {self._scrub(error)}; {_CHECK}"
            ) from None

    @asynccontextmanager
    async def _side_channel(self, doing: str) -> AsyncIterator[AbstractChannel]:
        """A channel for basic.get, closed afterwards (returning what was not acknowledged)."""
        await self._channels()
        assert self._connection is not None
        async with self._broker(doing):
            channel = await self._connection.channel(publisher_confirms=False)
            try:
                yield channel
            finally:
                with suppress(*_BROKER_ERRORS):
                    await channel.close()

    def _scrub(self, error: BaseException) -> str:
        """The error as one line, without the password (connection errors may quote the URL)."""
        text = " ".join(f"{type(error).__name__}: {error}".split())
        for secret in {self._password, unquote(self._password)} - {""}:
            text = text.replace(secret, "***")
        return text

    # -- receiving ------------------------------------------------------------------------------

    async def _consume(self, queues: tuple[str, ...]) -> None:
        """Make sure a consumer on an open channel feeds each of ``queues`` into the buffer."""
        await self._channels()
        for queue in queues:
            if queue in self._starting or not self._deaf(queue):
                continue
            self._starting.add(queue)  # before awaiting: concurrent gets start one consumer
            try:
                self._buffered.pop(queue, None)
                self._receivers[queue] = await self._start_consumer(queue)
            finally:
                self._starting.discard(queue)

    async def _start_consumer(self, queue: str) -> AbstractChannel:
        assert self._connection is not None
        async with self._broker(f"consume from {self.name(queue)}"):
            channel = await self._connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=1)
            declared = await channel.declare_queue(self.name(queue), durable=True)
            await declared.consume(functools.partial(self._on_message, queue))
            return channel

    async def _on_message(self, queue: str, message: AbstractIncomingMessage) -> None:
        async with self._arrived:
            self._buffered[queue].append((next(self._arrivals), message))
            self._arrived.notify_all()

    async def _next_buffered(
        self, queues: tuple[str, ...], deadline: float
    ) -> tuple[str, AbstractIncomingMessage] | None:
        """The message of ``queues`` that arrived first, waiting until the loop time
        ``deadline`` (TimeoutError after); None if a channel closed meanwhile."""
        loop = asyncio.get_running_loop()

        def ready() -> bool:
            return self._lost() or any(self._buffered[q] or self._deaf(q) for q in queues)

        async with self._arrived:
            while not ready():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError
                with suppress(TimeoutError):  # wake now and then to notice a lost connection
                    await asyncio.wait_for(self._arrived.wait(), min(remaining, _LIVENESS))
            if self._lost() or any(self._deaf(queue) for queue in queues):
                return None
            first = min((q for q in queues if self._buffered[q]), key=self._arrival_of)
            return first, self._buffered[first].popleft()[1]

    def _arrival_of(self, queue: str) -> int:
        return self._buffered[queue][0][0]

    async def _accept(self, queue: str, message: AbstractIncomingMessage) -> Delivery | None:
        """The message as a Delivery, or None after sending an invalid one to the error queue."""
        attempts = _attempts(message)
        try:
            body = _parse(message.body)
            messages.validate_for(queue, body)
        except (InvalidMessage, UnknownQueue) as error:
            await self._fail(queue, message, str(error), attempts + 1)
            return None
        except ValueError as error:  # not JSON, not UTF-8, or nested beyond reason
            reason = f"{queue} message: not JSON: {' '.join(str(error).split())} (at $)"
            await self._fail(queue, message, reason, attempts + 1)
            return None
        return Delivery(queue=queue, body=body, attempts=attempts, handle=message)

    # -- sending and settling -------------------------------------------------------------------

    async def _send(
        self,
        routing_key: str,
        body: bytes,
        headers: dict[str, Any],
        message_id: str | None = None,
        expiration: float | None = None,
    ) -> None:
        publisher = await self._channels()
        message = aio_pika.Message(
            body,
            headers=headers,
            message_id=message_id,
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            expiration=expiration,
        )
        async with self._broker(f"publish to {routing_key}"):
            await publisher.default_exchange.publish(
                message, routing_key=routing_key, mandatory=True, timeout=30
            )

    async def _fail(
        self, queue: str, message: AbstractIncomingMessage, reason: str, attempts: int
    ) -> None:
        """Copy the message to the error queue with why it failed, then acknowledge it."""
        headers = {
            "x-reason": _clip(reason),
            "x-attempts": attempts,
            "x-failed-at": utcnow().isoformat(),
            "x-queue": queue,
        }
        await self._send(self.name(queue, "error"), message.body, headers, message.message_id)
        await self._settle(queue, message, "failure")
        log.warning("%s: message failed: %s", queue, reason)

    async def _settle(self, queue: str, message: AbstractIncomingMessage, action: str) -> None:
        """Acknowledge; if the channel it came on is gone, the broker already requeued it."""
        try:
            await message.ack()
        except _BROKER_ERRORS as error:
            log.warning(
                "%s: %s of message %s came after its channel closed (%s); the broker delivers "
                "it again and the stage, being idempotent, finds its work done",
                queue,
                action,
                message.message_id,
                self._scrub(error),
            )

    async def _drain(
        self, channel: AbstractChannel, queue: str
    ) -> AsyncIterator[AbstractIncomingMessage]:
        """The messages in ``queue``'s error queue when we looked, fetched unacknowledged."""
        declared: AbstractQueue = await channel.declare_queue(
            self.name(queue, "error"), passive=True
        )
        for _ in range(declared.declaration_result.message_count or 0):
            message = await declared.get(no_ack=False, fail=False)
            if message is None:
                return
            yield message


def broker_address(url: str) -> str:
    """Where a broker URL points, for messages: host, port and vhost, never the credentials."""
    try:
        parsed = URL(url)
        port = parsed.port or (5671 if parsed.scheme.lower() == "amqps" else 5672)
    except ValueError:
        return "(unparsable queue_url)"
    vhost = unquote(parsed.path[1:]) if len(parsed.path) > 1 else "/"
    return f"{parsed.host or 'localhost'}:{port} (vhost {vhost})"


def _parse(data: bytes) -> Any:
    """JSON from the broker, which may carry anything other systems sent."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _password_of(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def _message_of(delivery: Delivery) -> AbstractIncomingMessage:
    if not isinstance(delivery.handle, AbstractIncomingMessage):
        raise TypeError(f"{delivery!r} was not delivered by a RabbitQueue")
    return delivery.handle


def _attempts(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get("x-attempts")
    return value if isinstance(value, int) and value >= 0 else 0


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_HEADER else text[: _MAX_HEADER - 1] + "…"


def _failed_message(queue: str, message: AbstractIncomingMessage) -> FailedMessage:
    headers = message.headers or {}
    try:
        body: Any = _parse(message.body)
    except ValueError:
        body = message.body.decode("utf-8", "replace")
    return FailedMessage(
        queue=queue,
        body=failed_body(body),
        reason=str(headers.get("x-reason", "")),
        attempts=_attempts(message),
        failed_at=_failed_at(headers.get("x-failed-at")),
    )


def _failed_at(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return utcnow()  # not written by us: when we first saw it is the best we know
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
