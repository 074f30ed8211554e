"""What only the database queue does: leases, deduplication, purging, and claims that hold
across threads and processes (on SQLite and PostgreSQL, fixture ``db_harness``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

from queue_support import DatabaseHarness, Harness
from sqlalchemy import func, select

from genofed.archive import messages
from genofed.archive.dbqueue import DatabaseQueue
from genofed.archive.messages import INGEST
from genofed.archive.queue import Delivery, Queue
from genofed.db import Job, JobState


def trigger(n: int) -> dict[str, Any]:
    return messages.ingestion_trigger("submitter@example.org", f"inbox/file-{n}.c4gh")


async def take(queue: Queue, timeout: float = 2.0) -> Delivery:
    delivery = await queue.get([INGEST], timeout=timeout)
    assert delivery is not None, f"nothing arrived within {timeout} s"
    return delivery


def states(h: DatabaseHarness) -> list[tuple[str, int]]:
    with h.engine.connect() as connection:
        rows = connection.execute(select(Job.state, Job.attempts).order_by(Job.id))
        return [(state.value, attempts) for state, attempts in rows]


def test_the_job_of_a_dead_worker_is_leased_again_after_its_lease(
    db_harness: DatabaseHarness,
) -> None:
    async def scenario(h: Harness) -> None:
        assert isinstance(h, DatabaseHarness)
        dead = h.make(lease_seconds=0.3, renew_leases=False)  # stops renewing: as if it died
        alive = h.make()
        await dead.publish(INGEST, trigger(1))
        lost = await take(dead)
        started = time.monotonic()
        again = await take(alive, timeout=3)
        assert time.monotonic() - started >= 0.25
        assert (again.body, again.attempts) == (trigger(1), 1)
        await dead.retry(lost, "too late")  # the lease passed on: no effect
        await dead.ack(lost)
        assert states(h) == [("running", 1)]
        await alive.ack(again)
        assert states(h) == [("done", 1)]

    db_harness.run(scenario)


def test_a_live_worker_keeps_its_lease_beyond_lease_seconds(db_harness: DatabaseHarness) -> None:
    async def scenario(h: Harness) -> None:
        assert isinstance(h, DatabaseHarness)
        worker, other = h.make(lease_seconds=0.3), h.make()
        await worker.publish(INGEST, trigger(1))
        delivery = await take(worker)
        await asyncio.sleep(0.9)  # three leases long: renewed meanwhile
        assert await other.get([INGEST], timeout=0) is None
        await worker.ack(delivery)
        assert states(h) == [("done", 0)]

    db_harness.run(scenario)


def test_a_job_whose_workers_keep_dying_goes_to_the_error_queue(
    db_harness: DatabaseHarness,
) -> None:
    async def scenario(h: Harness) -> None:
        options = {"lease_seconds": 0.1, "renew_leases": False, "max_attempts": 2}
        first, second, third = (h.make(**options) for _ in range(3))
        await first.publish(INGEST, trigger(1))
        await take(first)
        assert (await take(second, timeout=2)).attempts == 1
        assert await third.get([INGEST], timeout=0.5) is None
        [failed] = await third.failed()
        assert failed.attempts == 2
        assert "lease expired" in failed.reason
        assert failed.reason.endswith("(gave up after 2 attempts)")

    db_harness.run(scenario)


def test_dedup_key_semantics(db_harness: DatabaseHarness) -> None:
    """Queued, running or done: a no-op. Failed: replaced, so a fixed file can go again."""

    async def scenario(h: Harness) -> None:
        assert isinstance(h, DatabaseHarness)
        queue = h.make()
        await queue.publish(INGEST, trigger(1), dedup_key="done")
        await queue.ack(await take(queue))
        await queue.publish(INGEST, trigger(1), dedup_key="done")
        assert await queue.get([INGEST], timeout=0) is None

        await queue.publish(INGEST, trigger(2), dedup_key="running")
        running = await take(queue)
        await queue.publish(INGEST, trigger(2), dedup_key="running")
        assert await queue.get([INGEST], timeout=0) is None
        await queue.reject(running, "bad upload")

        await queue.publish(INGEST, trigger(3), dedup_key="running")  # replaces the failed one
        fixed = await take(queue)
        assert (fixed.body, fixed.attempts) == (trigger(3), 0)
        await queue.ack(fixed)
        assert await queue.failed() == []
        assert states(h) == [("done", 0), ("done", 0)]

    db_harness.run(scenario)


def test_concurrent_publishers_of_one_key_make_one_job(db_harness: DatabaseHarness) -> None:
    async def scenario(h: Harness) -> None:
        assert isinstance(h, DatabaseHarness)
        producers = [h.make() for _ in range(4)]
        await asyncio.gather(
            *(p.publish(INGEST, trigger(1), dedup_key="same") for p in producers for _ in range(3))
        )
        assert states(h) == [("ready", 0)]

    db_harness.run(scenario)


def test_purge_done_forgets_old_finished_jobs(db_harness: DatabaseHarness) -> None:
    async def scenario(h: Harness) -> None:
        assert isinstance(h, DatabaseHarness)
        queue = h.make()
        assert isinstance(queue, DatabaseQueue)
        for n in range(3):
            await queue.publish(INGEST, trigger(n), dedup_key=f"k{n}")
        for _ in range(2):
            await queue.ack(await take(queue))
        assert await queue.purge_done(timedelta(hours=1)) == 0
        assert await queue.purge_done(timedelta(0)) == 2
        assert states(h) == [("ready", 0)]
        await queue.publish(INGEST, trigger(0), dedup_key="k0")  # forgotten: enqueued afresh
        assert (await queue.depths())[INGEST] == 2

    db_harness.run(scenario)


def test_a_cancelled_get_hands_back_the_job_it_leased(db_harness: DatabaseHarness) -> None:
    async def scenario(h: Harness) -> None:
        assert isinstance(h, DatabaseHarness)
        impatient, other = h.make(), h.make()
        await impatient.publish(INGEST, trigger(1))
        getting = asyncio.create_task(impatient.get([INGEST], timeout=5))
        await asyncio.sleep(0)  # the lease is being taken in a thread
        getting.cancel()
        delivery = await take(other, timeout=2)
        assert delivery.attempts == 0  # handed back, not expired
        await other.ack(delivery)

    db_harness.run(scenario)


CONSUMER = """
import asyncio, json, sys
from genofed.archive.dbqueue import DatabaseQueue

async def main(url):
    queue = DatabaseQueue.open(url, poll_interval=0.01)
    print("ready", flush=True)
    sys.stdin.readline()
    taken = []
    while (delivery := await queue.get(["ingest"], timeout=0.5)) is not None:
        taken.append(delivery.body["filepath"])
        await queue.ack(delivery)
    await queue.close()
    print(json.dumps(taken), flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_consumers_in_separate_processes_never_share_a_job(db_harness: DatabaseHarness) -> None:
    jobs = 120

    async def publish(h: Harness) -> None:
        queue = h.make()
        for n in range(jobs):
            await queue.publish(INGEST, trigger(n))

    db_harness.run(publish)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CONSUMER, db_harness.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:  # both started before either takes a job
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0
        results.append(json.loads(output.strip().splitlines()[-1]))
    everything = [path for taken in results for path in taken]
    assert sorted(everything) == sorted(f"inbox/file-{n}.c4gh" for n in range(jobs))
    assert all(results), "both processes should have taken jobs"
    with db_harness.engine.connect() as connection:
        done = connection.scalar(select(func.count()).where(Job.state == JobState.DONE))
    assert done == jobs
