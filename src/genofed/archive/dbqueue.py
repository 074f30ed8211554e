"""The database-backed queue: the ``jobs`` table as a work queue, SQLite or PostgreSQL.

A worker *leases* a job: the row becomes RUNNING with ``lease_until`` and a claim token in
``worker``. While the delivery is held, the queue renews the lease every third of
``lease_seconds``, so a lease expires only when its worker died (or its event loop stalled);
an expired job is leased again by the next ``get``, and the expiry counts as a failed attempt,
so a message that kills its worker ends in the error queue instead of looping. ``ack``,
``retry`` and ``reject`` change the row only while the claim token still matches: a worker
that lost its lease cannot overwrite the outcome of the worker that took the job over.

Claiming is atomic with several processes: PostgreSQL locks the next row with
``FOR UPDATE SKIP LOCKED`` so workers never wait for each other; SQLite has one writer at a
time, and the claim is a conditional ``UPDATE ... WHERE id = :id AND <still ready>`` whose row
count says who won.

Deduplication: ``dedup_key`` is unique in the table. Publishing a key that a READY, RUNNING or
DONE job holds is a no-op: stages are idempotent, so work that is queued, running or finished
need not be queued again. A FAILED job with the key is replaced by the new message (attempts
reset), so a file fixed after a failure can be submitted again. DONE rows are kept (they are the
dedup memory) until :meth:`DatabaseQueue.purge_done` removes old ones; after that the same key
enqueues afresh.

Times come from the workers' clocks, which must agree to well within ``lease_seconds`` (NTP).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from genofed.archive import messages
from genofed.archive.messages import InvalidMessage, UnknownQueue
from genofed.archive.queue import Delivery, FailedMessage, backoff_delay, failed_body
from genofed.db import Job, JobState, make_engine
from genofed.db.models import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

_EXPIRED = "the worker's lease expired before it acknowledged the message (did it die?)"


@dataclass(frozen=True)
class _Lease:
    """A delivery's handle: the job and the token of this claim on it."""

    job_id: int
    token: str


class DatabaseQueue:
    """The :class:`~genofed.archive.queue.Queue` on the ``jobs`` table (see the module docstring).

    ``max_attempts`` deliveries are made before a message goes to the error queue; retry ``n``
    (from 0) waits ``min(max_delay, base_delay * 2**n)`` seconds. ``get`` polls every
    ``poll_interval`` seconds. ``renew_leases=False`` makes ``lease_seconds`` a hard deadline for
    processing a message. The engine stays the caller's unless the queue came from :meth:`open`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_attempts: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        lease_seconds: float = 600.0,
        poll_interval: float = 0.2,
        worker_name: str | None = None,
        renew_leases: bool = True,
    ) -> None:
        if max_attempts < 1 or lease_seconds <= 0 or poll_interval <= 0:
            raise ValueError("max_attempts, lease_seconds and poll_interval must be positive")
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self.max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._lease = timedelta(seconds=lease_seconds)
        self._poll_interval = poll_interval
        self._worker = (worker_name or f"{socket.gethostname()}:{os.getpid()}")[:230]
        self._renew = renew_leases
        # One small pool of our own: stages that fill the default pool with long work must not
        # delay lease renewals.
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="genofed-dbqueue")
        self._held: dict[int, str] = {}  # job id -> claim token of the deliveries we hold
        self._renewer: asyncio.Task[None] | None = None
        self._owns_engine = False
        self._closed = False

    @classmethod
    def open(cls, database_url: str, **options: Any) -> DatabaseQueue:
        """A queue on its own engine for ``database_url``, disposed of by :meth:`close`."""
        queue = cls(make_engine(database_url), **options)
        queue._owns_engine = True
        return queue

    # -- the Queue protocol ---------------------------------------------------------------------

    async def publish(
        self, queue: str, body: dict[str, Any], *, dedup_key: str | None = None
    ) -> None:
        """Add a job; a no-op if a job that is not FAILED holds ``dedup_key`` (module docstring)."""
        messages.validate_for(queue, body)
        if not await self._run(self._insert, queue, body, dedup_key):
            log.debug("%s: a job with dedup key %r exists; not enqueued again", queue, dedup_key)

    async def get(self, queues: Sequence[str], *, timeout: float) -> Delivery | None:
        """Lease the oldest ready job of ``queues``, polling until ``timeout`` seconds pass."""
        names = messages.check_queues(queues)
        self._check_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while not self._closed:  # a get waiting when the queue closes returns None
            delivery = await self._lease_next_async(names)
            if delivery is not None:
                return await self._hand_over(delivery)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(self._poll_interval, remaining))
        return None

    async def ack(self, delivery: Delivery) -> None:
        """Mark the job DONE; the row stays as the memory of its ``dedup_key``."""
        await self._finish(delivery, "ack", state=JobState.DONE)

    async def retry(self, delivery: Delivery, error: str) -> None:
        """Make the job READY again after the back-off delay, or FAILED once attempts run out."""
        attempts = delivery.attempts + 1
        if attempts >= self.max_attempts:
            reason = f"{error} (gave up after {attempts} attempts)"
            await self._finish(
                delivery, "retry", state=JobState.FAILED, attempts=attempts, last_error=reason
            )
            return
        delay = backoff_delay(delivery.attempts, self._base_delay, self._max_delay)
        available_at = utcnow() + timedelta(seconds=delay)
        await self._finish(
            delivery,
            "retry",
            state=JobState.READY,
            attempts=attempts,
            available_at=available_at,
            last_error=error,
        )

    async def reject(self, delivery: Delivery, error: str) -> None:
        """Mark the job FAILED with ``error`` as its reason: no retry will help."""
        await self._finish(
            delivery,
            "reject",
            state=JobState.FAILED,
            attempts=delivery.attempts + 1,
            last_error=error,
        )

    async def depths(self) -> dict[str, int]:
        """READY (including those waiting out a retry delay) plus RUNNING jobs, per queue."""
        counts = await self._run(self._count_waiting)
        return dict.fromkeys(messages.QUEUES, 0) | counts

    async def failed(self, limit: int = 100) -> list[FailedMessage]:
        """FAILED jobs, the most recently failed first."""
        return await self._run(self._select_failed, limit)

    async def requeue_failed(self, queue: str | None = None) -> int:
        """Make the FAILED jobs (of ``queue``, or all) READY with fresh attempts; how many."""
        if queue is not None:
            messages.check_queue(queue)
        return await self._run(self._requeue, queue)

    async def purge_done(self, older_than: timedelta) -> int:
        """Delete DONE jobs finished more than ``older_than`` ago; how many.

        Their dedup keys are forgotten: publishing one again enqueues new work.
        """
        return await self._run(self._delete_done, utcnow() - older_than)

    async def close(self) -> None:
        """Stop renewing leases and hand back the jobs still held, so others take them now."""
        if self._closed:
            return
        self._closed = True
        if self._renewer is not None:
            self._renewer.cancel()
        held, self._held = self._held, {}
        if held:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._release, held)
        self._executor.shutdown(wait=False)
        if self._owns_engine:
            self._engine.dispose()

    # -- running blocking calls -------------------------------------------------------------------

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        self._check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this DatabaseQueue is closed")

    async def _lease_next_async(self, queues: tuple[str, ...]) -> Delivery | None:
        """Lease in a thread; if the caller is cancelled meanwhile, hand back what it leased."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._lease_next, queues)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, future: asyncio.Future[Delivery | None]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        delivery = future.result()
        if delivery is not None and not self._closed:
            lease = _lease_of(delivery)
            self._executor.submit(self._release, {lease.job_id: lease.token})

    # -- leasing ----------------------------------------------------------------------------------

    def _lease_next(self, queues: tuple[str, ...]) -> Delivery | None:
        """The next valid job of ``queues``, leased to us, or None if none is ready now.

        Jobs found invalid or out of attempts on the way are failed, and the search goes on;
        so does it when another worker claimed the job first (SQLite).
        """
        while True:
            now = utcnow()
            if self._postgres:
                with self._engine.begin() as connection:
                    job_id = connection.scalar(
                        _next_ready(queues, now).with_for_update(skip_locked=True)
                    )
                    if job_id is None:
                        return None
                    delivery = self._claim(connection, job_id, now)
            else:
                # Find and claim in separate transactions: a SQLite transaction that has read
                # cannot take the write lock once another writer has committed.
                with self._engine.connect() as connection:
                    job_id = connection.scalar(_next_ready(queues, now))
                if job_id is None:
                    return None
                with self._engine.begin() as connection:
                    delivery = self._claim(connection, job_id, now)
            if delivery is not None:
                return delivery

    def _claim(self, connection: Connection, job_id: int, now: datetime) -> Delivery | None:
        """Lease ``job_id`` if it is still ready; None if it was not, or had to be failed."""
        token = f"{self._worker}/{secrets.token_hex(8)}"
        expired = Job.state == JobState.RUNNING
        claimed = connection.execute(
            update(Job)
            .where(Job.id == job_id, _ready(now))
            .values(
                state=JobState.RUNNING,
                lease_until=now + self._lease,
                worker=token,
                attempts=case((expired, Job.attempts + 1), else_=Job.attempts),
                last_error=case((expired, literal(_EXPIRED)), else_=Job.last_error),
                updated_at=now,
            )
        ).rowcount
        if claimed != 1:
            return None
        queue, body, attempts = connection.execute(
            select(Job.queue, Job.payload, Job.attempts).where(Job.id == job_id)
        ).one()
        problem = self._unusable(queue, body, attempts)
        if problem is not None:
            _set(connection, job_id, now, state=JobState.FAILED, last_error=problem)
            log.warning("%s: job %d failed: %s", queue, job_id, problem)
            return None
        return Delivery(queue=queue, body=body, attempts=attempts, handle=_Lease(job_id, token))

    def _unusable(self, queue: str, body: Any, attempts: int) -> str | None:
        """Why a leased job must go to the error queue instead of to a worker, if it must."""
        if attempts >= self.max_attempts:
            return f"{_EXPIRED} (gave up after {attempts} attempts)"
        try:
            messages.validate_for(queue, body)
        except (InvalidMessage, UnknownQueue) as error:
            return str(error)
        return None

    # -- holding, renewing and finishing leases ---------------------------------------------------

    async def _hand_over(self, delivery: Delivery) -> Delivery | None:
        """Hold a freshly leased delivery, or give it back if the queue closed meanwhile."""
        lease = _lease_of(delivery)
        if self._closed:
            await asyncio.to_thread(self._release, {lease.job_id: lease.token})
            return None
        self._hold(delivery)
        return delivery

    def _hold(self, delivery: Delivery) -> None:
        lease = _lease_of(delivery)
        self._held[lease.job_id] = lease.token
        if self._renew and (self._renewer is None or self._renewer.done()):
            self._renewer = asyncio.get_running_loop().create_task(self._renew_leases())

    async def _renew_leases(self) -> None:
        """Extend the leases we hold every third of a lease, for as long as we hold any."""
        interval = self._lease.total_seconds() / 3
        while self._held:
            await asyncio.sleep(interval)
            held = dict(self._held)
            if not held:
                return
            try:
                await self._run(self._extend, held)
            except Exception as error:  # the database may be back at the next round
                log.warning("could not renew %d job leases: %s", len(held), error)

    async def _finish(self, delivery: Delivery, action: str, **values: Any) -> None:
        lease = _lease_of(delivery)
        self._held.pop(lease.job_id, None)
        if not await self._run(self._update_leased, lease, values):
            log.warning(
                "%s: %s of job %d came after its lease passed to another worker; "
                "that worker processes it again (stages are idempotent)",
                delivery.queue,
                action,
                lease.job_id,
            )

    def _update_leased(self, lease: _Lease, values: dict[str, Any]) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(Job)
                .where(
                    Job.id == lease.job_id,
                    Job.state == JobState.RUNNING,
                    Job.worker == lease.token,
                )
                .values(lease_until=None, updated_at=utcnow(), **values)
            )
            return result.rowcount == 1

    def _extend(self, held: dict[int, str]) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(Job)
                .where(_leased_by(held))
                .values(lease_until=utcnow() + self._lease, updated_at=utcnow())
            )

    def _release(self, held: dict[int, str]) -> None:
        """Make held jobs READY again at once, without counting an attempt."""
        with self._engine.begin() as connection:
            connection.execute(
                update(Job)
                .where(_leased_by(held))
                .values(state=JobState.READY, lease_until=None, worker=None, updated_at=utcnow())
            )

    # -- publishing and the operator's queries ----------------------------------------------------

    def _insert(self, queue: str, body: dict[str, Any], dedup_key: str | None) -> bool:
        """Insert a job, or replace a FAILED one with the same key; False if neither happened."""
        now = utcnow()
        values = {
            "queue": queue,
            "payload": body,
            "dedup_key": dedup_key,
            "state": JobState.READY,
            "attempts": 0,
            "available_at": now,
            "lease_until": None,
            "worker": None,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
        }
        with self._engine.begin() as connection:
            if dedup_key is None:
                connection.execute(insert(Job).values(values))
                return True
            return connection.execute(self._upsert(values)).rowcount == 1

    def _upsert(self, values: dict[str, Any]) -> Any:
        """One atomic statement, so that concurrent publishers of one key cannot both insert."""
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(Job).values(values)
        replaced = {name: statement.excluded[name] for name in values if name != "created_at"}
        return statement.on_conflict_do_update(
            index_elements=[Job.dedup_key],
            set_=replaced,
            where=Job.state == JobState.FAILED,
        )

    def _count_waiting(self) -> dict[str, int]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(Job.queue, func.count())
                .where(Job.state.in_([JobState.READY, JobState.RUNNING]))
                .group_by(Job.queue)
            )
            return {queue: count for queue, count in rows}

    def _select_failed(self, limit: int) -> list[FailedMessage]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(Job.queue, Job.payload, Job.last_error, Job.attempts, Job.updated_at)
                .where(Job.state == JobState.FAILED)
                .order_by(Job.updated_at.desc(), Job.id.desc())
                .limit(limit)
            )
            return [
                FailedMessage(queue, failed_body(body), reason or "", attempts, failed_at)
                for queue, body, reason, attempts, failed_at in rows
            ]

    def _requeue(self, queue: str | None) -> int:
        now = utcnow()
        condition = Job.state == JobState.FAILED
        if queue is not None:
            condition = and_(condition, Job.queue == queue)
        with self._engine.begin() as connection:
            statement = update(Job).where(condition)
            return connection.execute(
                statement.values(
                    state=JobState.READY,
                    attempts=0,
                    available_at=now,
                    lease_until=None,
                    worker=None,
                    last_error=None,
                    updated_at=now,
                )
            ).rowcount

    def _delete_done(self, before: datetime) -> int:
        with self._engine.begin() as connection:
            statement = delete(Job).where(Job.state == JobState.DONE, Job.updated_at < before)
            return connection.execute(statement).rowcount


def _ready(now: datetime) -> ColumnElement[bool]:
    """READY and due, or RUNNING with a lease that has expired."""
    return or_(
        and_(Job.state == JobState.READY, Job.available_at <= now),
        and_(Job.state == JobState.RUNNING, Job.lease_until < now),
    )


def _next_ready(queues: tuple[str, ...], now: datetime) -> Any:
    """The id of the ready job that has waited longest (FIFO per queue)."""
    return (
        select(Job.id)
        .where(Job.queue.in_(queues), _ready(now))
        .order_by(Job.available_at, Job.id)
        .limit(1)
    )


def _leased_by(held: dict[int, str]) -> ColumnElement[bool]:
    # Claim tokens are unique, so matching ids and tokens as sets matches the pairs.
    return and_(
        Job.id.in_(list(held)),
        Job.worker.in_(list(held.values())),
        Job.state == JobState.RUNNING,
    )


def _set(connection: Connection, job_id: int, now: datetime, **values: Any) -> None:
    connection.execute(
        update(Job).where(Job.id == job_id).values(lease_until=None, updated_at=now, **values)
    )


def _lease_of(delivery: Delivery) -> _Lease:
    if not isinstance(delivery.handle, _Lease):
        raise TypeError(f"{delivery!r} was not delivered by a DatabaseQueue")
    return delivery.handle
