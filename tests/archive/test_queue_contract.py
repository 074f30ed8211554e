"""The behaviour every queue must have, run on SQLite, PostgreSQL and RabbitMQ (``backend``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from queue_support import ALL_BACKENDS, Harness

from genofed.archive import messages
from genofed.archive.messages import INGEST, VERIFY, InvalidMessage, UnknownQueue
from genofed.archive.queue import Delivery, Queue

pytestmark = ALL_BACKENDS
SHA = "ab" * 32


def trigger(n: int) -> dict[str, Any]:
    return messages.ingestion_trigger("submitter@example.org", f"inbox/file-{n}.c4gh")


def verification(n: int) -> dict[str, Any]:
    return messages.ingestion_verification(
        "submitter@example.org", f"inbox/file-{n}.c4gh", f"id-{n}", f"files/{n}.c4gh", SHA
    )


async def take(queue: Queue, queues: list[str], timeout: float = 2.0) -> Delivery:
    delivery = await queue.get(queues, timeout=timeout)
    assert delivery is not None, f"nothing arrived on {queues} within {timeout} s"
    return delivery


async def drain(queue: Queue, queues: list[str], timeout: float = 0.3) -> list[Delivery]:
    """Get and acknowledge until nothing comes for ``timeout`` seconds."""
    taken = []
    while (delivery := await queue.get(queues, timeout=timeout)) is not None:
        taken.append(delivery)
        await queue.ack(delivery)
    return taken


def test_publish_get_ack(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make()
        await queue.publish(INGEST, trigger(1))
        assert (await queue.depths())[INGEST] == 1
        delivery = await take(queue, [INGEST])
        assert (delivery.queue, delivery.body, delivery.attempts) == (INGEST, trigger(1), 0)
        await queue.ack(delivery)
        assert await queue.get([INGEST], timeout=0.2) is None
        assert await queue.depths() == dict.fromkeys(messages.QUEUES, 0)
        assert await queue.failed() == []

    backend.run(scenario)


def test_fifo_per_queue_and_any_of_several_queues(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make()
        for n in range(5):
            await queue.publish(INGEST, trigger(n))
        await queue.publish(VERIFY, verification(9))
        assert (await queue.depths())[INGEST] == 5
        order = [d.body["filepath"] for d in await drain(queue, [INGEST])]
        assert order == [f"inbox/file-{n}.c4gh" for n in range(5)]
        only = await take(queue, [INGEST, VERIFY])
        assert (only.queue, only.body) == (VERIFY, verification(9))
        await queue.ack(only)

    backend.run(scenario)


def test_get_returns_none_after_the_timeout(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make()
        await queue.publish(VERIFY, verification(1))  # another queue's message is not taken
        started = time.monotonic()
        assert await queue.get([INGEST], timeout=0.3) is None
        assert 0.29 <= time.monotonic() - started < 1.5
        started = time.monotonic()
        assert await queue.get([INGEST], timeout=0) is None
        assert time.monotonic() - started < 0.5

    backend.run(scenario)


def test_get_waits_for_a_message_published_meanwhile(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        consumer, producer = h.make(), h.make()
        await consumer.get([INGEST], timeout=0)  # connected and consuming

        async def publish_later() -> None:
            await asyncio.sleep(0.2)
            await producer.publish(INGEST, trigger(1))

        task = asyncio.create_task(publish_later())
        delivery = await take(consumer, [INGEST], timeout=3)
        await task
        assert delivery.body == trigger(1)
        await consumer.ack(delivery)

    backend.run(scenario)


def test_retry_delays_redelivery_and_counts_attempts(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make(base_delay=0.3, max_delay=0.6)
        await queue.publish(INGEST, trigger(1))
        first = await take(queue, [INGEST])
        retried_at = time.monotonic()
        await queue.retry(first, "storage unreachable")
        assert await queue.get([INGEST], timeout=0.1) is None  # still waiting out the delay
        second = await take(queue, [INGEST], timeout=3)
        assert time.monotonic() - retried_at >= 0.28
        assert (second.body, second.attempts) == (trigger(1), 1)
        await queue.retry(second, "storage unreachable")
        third = await take(queue, [INGEST], timeout=3)
        assert third.attempts == 2
        assert time.monotonic() - retried_at >= 0.28 + 0.58
        await queue.ack(third)
        assert await queue.failed() == []

    backend.run(scenario)


def test_a_message_out_of_attempts_goes_to_the_error_queue(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make(max_attempts=3, base_delay=0.01)
        await queue.publish(INGEST, trigger(1))
        for attempt in range(3):
            delivery = await take(queue, [INGEST])
            assert delivery.attempts == attempt
            await queue.retry(delivery, f"boom {attempt}")
        assert await queue.get([INGEST], timeout=0.3) is None
        [failed] = await queue.failed()
        assert (failed.queue, failed.body, failed.attempts) == (INGEST, trigger(1), 3)
        assert failed.reason == "boom 2 (gave up after 3 attempts)"
        assert failed.failed_at.tzinfo is not None
        assert (await queue.depths())[INGEST] == 0

    backend.run(scenario)


def test_reject_goes_to_the_error_queue_at_once(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make()
        await queue.publish(INGEST, trigger(1))
        await queue.publish(INGEST, trigger(2))
        await queue.reject(await take(queue, [INGEST]), "not a Crypt4GH file")
        await queue.reject(await take(queue, [INGEST]), "wrong key")
        assert await queue.get([INGEST], timeout=0.2) is None
        failed = await queue.failed()
        assert [(f.body, f.reason, f.attempts) for f in failed] == [
            (trigger(2), "wrong key", 1),  # newest first
            (trigger(1), "not a Crypt4GH file", 1),
        ]
        assert await queue.failed(limit=1) == failed[:1]
        assert await queue.failed() == failed  # reading the error queue does not empty it

    backend.run(scenario)


def test_an_invalid_body_is_refused_on_publish(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make()
        with pytest.raises(InvalidMessage, match=r"^ingestion-trigger message: 'user' is a"):
            await queue.publish(INGEST, {"type": "ingest", "filepath": "inbox/x.c4gh"})
        with pytest.raises(InvalidMessage, match=r"ingestion-verification message"):
            await queue.publish(VERIFY, trigger(1))  # right message, wrong queue
        with pytest.raises(UnknownQueue, match="'ingset'"):
            await queue.publish("ingset", trigger(1))
        with pytest.raises(UnknownQueue):
            await queue.get(["nope"], timeout=0)
        assert await queue.get([INGEST, VERIFY], timeout=0.1) is None
        assert await queue.failed() == []

    backend.run(scenario)


def test_an_invalid_body_behind_the_api_is_failed_on_get(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make()
        await queue.get([INGEST], timeout=0)  # topology declared
        await h.inject(INGEST, {"type": "ingest", "filepath": "inbox/x.c4gh"})
        await h.inject(INGEST, ["not", "an", "object"])
        await h.inject(INGEST, trigger(1))
        delivery = await take(queue, [INGEST])
        assert delivery.body == trigger(1)
        await queue.ack(delivery)
        reasons = {f.reason: f.body for f in await queue.failed()}
        assert reasons == {
            "ingestion-trigger message: 'user' is a required property (at $)": {
                "type": "ingest",
                "filepath": "inbox/x.c4gh",
            },
            "ingest message: a list is not a JSON object (at $)": {
                "payload": ["not", "an", "object"]
            },
        }

    backend.run(scenario)


def test_dedup_key(backend: Harness) -> None:
    """The database queue drops a duplicate; RabbitMQ delivers it (the stage is idempotent)."""

    async def scenario(h: Harness) -> None:
        queue = h.make()
        await queue.publish(INGEST, trigger(1), dedup_key="ingest:file-1")
        await queue.publish(INGEST, trigger(1), dedup_key="ingest:file-1")
        await queue.publish(INGEST, trigger(2), dedup_key="ingest:file-2")
        got = [d.body["filepath"] for d in await drain(queue, [INGEST])]
        if h.kind == "rabbitmq":
            assert sorted(got) == ["inbox/file-1.c4gh"] * 2 + ["inbox/file-2.c4gh"]
        else:
            assert got == ["inbox/file-1.c4gh", "inbox/file-2.c4gh"]

    backend.run(scenario)


def test_concurrent_consumers_never_share_a_message(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        producer = h.make()
        consumers = [h.make() for _ in range(3)]
        for n in range(30):
            await producer.publish(INGEST, trigger(n))

        async def consume(queue: Queue) -> list[str]:
            taken = []
            while (delivery := await queue.get([INGEST], timeout=0.5)) is not None:
                taken.append(delivery.body["filepath"])
                await asyncio.sleep(0.001)  # let the others in
                await queue.ack(delivery)
            return taken

        results = await asyncio.gather(*(consume(queue) for queue in consumers))
        everything = [path for taken in results for path in taken]
        assert sorted(everything) == sorted(f"inbox/file-{n}.c4gh" for n in range(30))
        assert sum(1 for taken in results if taken) >= 2  # the work was shared

    backend.run(scenario)


def test_requeue_failed_after_the_cause_is_fixed(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make()
        await queue.publish(INGEST, trigger(1))
        await queue.publish(VERIFY, verification(1))
        await queue.reject(await take(queue, [INGEST]), "archive full")
        await queue.reject(await take(queue, [VERIFY]), "archive full")
        assert await queue.requeue_failed(INGEST) == 1
        again = await take(queue, [INGEST])
        assert (again.body, again.attempts) == (trigger(1), 0)
        await queue.ack(again)
        assert [f.queue for f in await queue.failed()] == [VERIFY]
        assert await queue.requeue_failed() == 1
        assert (await take(queue, [VERIFY])).body == verification(1)
        assert await queue.failed() == []
        assert await queue.requeue_failed() == 0

    backend.run(scenario)


def test_closing_hands_unacknowledged_messages_to_other_workers(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        first, second = h.make(), h.make()
        await first.publish(INGEST, trigger(1))
        await take(first, [INGEST])
        await first.close()
        delivery = await take(second, [INGEST], timeout=3)
        assert (delivery.body, delivery.attempts) == (trigger(1), 0)
        await second.ack(delivery)

    backend.run(scenario)


def test_depths_count_waiting_messages_per_queue(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue = h.make(base_delay=5)
        for n in range(3):
            await queue.publish(INGEST, trigger(n))
        await queue.publish(VERIFY, verification(1))
        depths = await queue.depths()
        assert depths == {**dict.fromkeys(messages.QUEUES, 0), INGEST: 3, VERIFY: 1}
        await queue.retry(await take(queue, [VERIFY]), "later")  # waiting out a delay counts
        assert (await queue.depths())[VERIFY] == 1

    backend.run(scenario)


def test_closing_ends_a_waiting_get_and_refuses_further_use(backend: Harness) -> None:
    async def scenario(h: Harness) -> None:
        queue, other = h.make(), h.make()
        await queue.get([INGEST], timeout=0)
        waiting = asyncio.create_task(queue.get([INGEST], timeout=10))
        await asyncio.sleep(0.1)
        await queue.close()
        assert await asyncio.wait_for(waiting, 3) is None
        with pytest.raises(RuntimeError, match="closed"):
            await queue.get([INGEST], timeout=0)
        await other.publish(INGEST, trigger(1))  # nothing was leased by the closed queue
        assert (await take(other, [INGEST])).attempts == 0

    backend.run(scenario)
