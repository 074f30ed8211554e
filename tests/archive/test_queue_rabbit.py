"""What only the RabbitMQ queue does: its topology, message properties, the delay queue, and
one-line errors when the broker cannot be used (fixture ``rabbit_harness``)."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import pytest
from queue_support import Harness, RabbitHarness

from genofed.archive import messages
from genofed.archive.messages import INGEST
from genofed.archive.queue import Delivery, Queue, QueueUnavailable
from genofed.archive.rabbitmq import RabbitQueue


def trigger(n: int) -> dict[str, Any]:
    return messages.ingestion_trigger("submitter@example.org", f"inbox/file-{n}.c4gh")


async def take(queue: Queue, timeout: float = 2.0) -> Delivery:
    delivery = await queue.get([INGEST], timeout=timeout)
    assert delivery is not None, f"nothing arrived within {timeout} s"
    return delivery


def test_messages_are_persistent_json_with_the_dedup_key_as_id(
    rabbit_harness: RabbitHarness,
) -> None:
    async def scenario(h: Harness) -> None:
        assert isinstance(h, RabbitHarness)
        queue = h.make()
        await queue.publish(INGEST, trigger(1), dedup_key="ingest:file-1")
        connection = await aio_pika.connect(h.url)
        async with connection:
            channel = await connection.channel()
            for kind in ("delay", "error"):  # the whole topology exists
                await channel.declare_queue(h.name(INGEST, kind), passive=True)
            work = await channel.declare_queue(h.name(INGEST), passive=True)
            message = await work.get(no_ack=True)
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.message_id == "ingest:file-1"
        assert message.content_type == "application/json"
        assert message.headers == {"x-attempts": 0}

    rabbit_harness.run(scenario)


def test_a_retry_waits_in_the_delay_queue(rabbit_harness: RabbitHarness) -> None:
    async def scenario(h: Harness) -> None:
        assert isinstance(h, RabbitHarness)
        queue = h.make(base_delay=0.4)
        await queue.publish(INGEST, trigger(1))
        await queue.retry(await take(queue), "storage unreachable")
        assert await h.count(INGEST, "delay") == 1
        assert await h.count(INGEST) == 0
        again = await take(queue, timeout=3)
        assert again.attempts == 1
        assert await h.count(INGEST, "delay") == 0

    rabbit_harness.run(scenario)


def test_a_body_that_is_not_json_goes_to_the_error_queue(rabbit_harness: RabbitHarness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make()
        await queue.get([INGEST], timeout=0)
        await h.inject(INGEST, b"\xff not json")
        await h.inject(INGEST, b"[" * 100_000 + b"]" * 100_000)
        assert await queue.get([INGEST], timeout=0.5) is None
        deep, bad = await queue.failed()
        assert bad.reason.startswith("ingest message: not JSON:")
        assert bad.body == {"payload": "\ufffd not json"}
        assert deep.reason == "ingest message: not JSON: nested too deeply (at $)"

    rabbit_harness.run(scenario)


def test_reading_the_error_queue_leaves_it_whole(rabbit_harness: RabbitHarness) -> None:
    async def scenario(h: Harness) -> None:
        assert isinstance(h, RabbitHarness)
        queue = h.make()
        for n in range(3):
            await queue.publish(INGEST, trigger(n))
            await queue.reject(await take(queue), f"bad {n}")
        assert [f.reason for f in await queue.failed(limit=2)] == ["bad 2", "bad 1"]
        assert await h.count(INGEST, "error") == 3

    rabbit_harness.run(scenario)


def test_the_queue_reconnects_after_losing_the_broker(rabbit_harness: RabbitHarness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make()
        assert isinstance(queue, RabbitQueue)
        await queue.publish(INGEST, trigger(1))
        held = await take(queue)
        assert queue._connection is not None
        await queue._connection.close()  # as a broker restart would
        await queue.ack(held)  # too late: logged, and the broker delivers it again
        again = await take(queue, timeout=3)
        assert again.body == trigger(1)
        await queue.ack(again)

    rabbit_harness.run(scenario)


def test_an_unreachable_broker_is_a_one_line_error_without_the_password() -> None:
    async def scenario() -> None:
        queue = RabbitQueue("amqp://genofed:Sup3r-Secret@127.0.0.1:1/node", connect_timeout=2)
        with pytest.raises(QueueUnavailable) as raised:
            await queue.publish(INGEST, trigger(1))
        text = str(raised.value)
        assert text.startswith("RabbitMQ at 127.0.0.1:1 (vhost node): cannot connect:")
        assert "Sup3r-Secret" not in text and "\n" not in text
        assert "queue_url (GENOFED_QUEUE_URL)" in text
        await queue.close()

    asyncio.run(scenario())


def test_a_wrong_password_is_an_error_that_does_not_repeat_it(
    rabbit_harness: RabbitHarness,
) -> None:
    url = rabbit_harness.url.replace("guest:guest@", "guest:Wr0ng-Pa55@")
    assert "Wr0ng-Pa55" in url

    async def scenario() -> None:
        queue = RabbitQueue(url, connect_timeout=5)
        with pytest.raises(QueueUnavailable) as raised:
            await queue.depths()
        assert "Wr0ng-Pa55" not in str(raised.value)
        assert "cannot connect" in str(raised.value)
        await queue.close()

    asyncio.run(scenario())
