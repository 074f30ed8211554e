"""Pipeline workers: take a message, run its stage, publish what follows, then acknowledge.

The acknowledgement comes last, so a worker killed at any moment leaves its message to be
delivered again; the stages are idempotent, so the repeat finishes the work exactly once.
``genofed worker`` runs stages as a process of its own (many can share a RabbitMQ queue);
``genofed node serve`` runs them all in-process with :func:`start_embedded`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from genofed import crypt4gh, db
from genofed.archive.queue import Delivery, Queue
from genofed.archive.stages import STAGES, PermanentError, Pipeline, record_failure
from genofed.config import Settings
from genofed.node.directory import node_key_passphrase, node_secret_key
from genofed.storage import open_store

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)
DEFAULT_MAX_ATTEMPTS = 5


def build_pipeline(settings: Settings) -> Pipeline:
    """Everything the stages need, checked at start: schema, stores, the node's keys."""
    engine = db.make_engine(settings.database_url)
    db.check_schema(engine)
    previous = [
        crypt4gh.load_private_key(path, lambda: node_key_passphrase(settings))
        for path in settings.crypt4gh.previous_secret_keys
    ]
    inbox, archive, backup = (
        open_store(s) for s in (settings.inbox, settings.archive, settings.backup)
    )
    for store in (inbox, archive, backup):
        swept = store.sweep_temporary()
        if swept:
            log.info("removed %d temp files of killed writes from %s", swept, store.describe())
    return Pipeline(
        settings=settings,
        engine=db.for_writing(engine),  # every pipeline transaction writes
        inbox=inbox,
        archive=archive,
        backup=backup,
        node_secret=node_secret_key(settings),
        previous_secrets=previous,
    )


async def handle(pipeline: Pipeline, queue: Queue, delivery: Delivery) -> None:
    """Process one message: run its stage, publish the next messages, acknowledge."""
    stage = STAGES[delivery.queue]
    try:
        outgoing = await asyncio.to_thread(stage, pipeline, delivery.body)
    except PermanentError as error:
        log.warning("%s: %s", delivery.queue, error)
        await asyncio.to_thread(record_failure, pipeline, delivery.body, str(error), final=True)
        await queue.reject(delivery, str(error))
        return
    except Exception as error:  # storage, database or broker trouble: worth another try
        reason = f"{delivery.queue} stage failed: {type(error).__name__}: {error}"
        log.warning("%s (attempt %d)", reason, delivery.attempts + 1)
        final = delivery.attempts + 1 >= getattr(queue, "max_attempts", DEFAULT_MAX_ATTEMPTS)
        await asyncio.to_thread(record_failure, pipeline, delivery.body, reason, final=final)
        await queue.retry(delivery, reason)
        return
    for message in outgoing:
        await queue.publish(message.queue, message.body, dedup_key=message.dedup_key)
    await queue.ack(delivery)


async def run_worker(
    pipeline: Pipeline,
    queue: Queue,
    stages: Sequence[str],
    stop: asyncio.Event,
    *,
    until_idle: float | None = None,
    poll: float = 1.0,
) -> int:
    """Process messages of ``stages`` until ``stop`` is set (or, with ``until_idle``, until no
    message came for that many seconds). Returns the number of messages handled."""
    handled = 0
    idle_since = asyncio.get_running_loop().time()
    while not stop.is_set():
        delivery = await queue.get(stages, timeout=poll)
        now = asyncio.get_running_loop().time()
        if delivery is None:
            if until_idle is not None and now - idle_since >= until_idle:
                break
            await asyncio.sleep(0)  # let a stop request in, whatever the queue's waiting
            continue
        await handle(pipeline, queue, delivery)
        handled += 1
        idle_since = asyncio.get_running_loop().time()
    return handled


@dataclass
class EmbeddedWorker:
    """The pipeline running inside ``genofed node serve``."""

    task: asyncio.Task[int]
    pipeline: Pipeline
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    beacon_sweep: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Finish the message in hand, then stop and release the pipeline's database."""
        self.stop_event.set()
        try:
            await self.task
            if self.beacon_sweep is not None:
                await self.beacon_sweep
        finally:
            self.pipeline.engine.dispose()


def start_embedded(app: FastAPI, settings: Settings) -> EmbeddedWorker:
    """Run every stage in the app's event loop (stages themselves run in threads), and the
    sweep that indexes released datasets for the beacon."""
    from genofed.beacon.sweep import sweep_forever

    pipeline = build_pipeline(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(pipeline, app.state.queue, list(STAGES), stop))
    keys = [pipeline.node_secret, *pipeline.previous_secrets]
    sweep = asyncio.create_task(sweep_forever(pipeline.engine, settings, keys, stop))
    worker = EmbeddedWorker(task, pipeline, stop, sweep)
    app.state.embedded_worker = worker
    return worker
