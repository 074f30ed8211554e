"""Keeping the Beacon index up to date without anyone asking: released datasets whose variant
files are not indexed yet are loaded by a periodic sweep in the node's embedded pipeline.

A sweep rather than a hook on release: a dataset can be released by the CLI on the node's
machine, by the API, or before a restart, and the sweep catches every case within one period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from genofed import db
from genofed.beacon.index import index_dataset, pending_datasets
from genofed.config import Settings
from genofed.errors import GenofedError

log = logging.getLogger(__name__)


def sweep_once(
    engine: Engine, settings: Settings, keys: Sequence[bytes], failed: set[str]
) -> list[str]:
    """Index every pending dataset but those that failed before; returns those indexed."""
    with db.session_scope(engine) as session:
        pending = [dataset for dataset in pending_datasets(session) if dataset not in failed]
    indexed = []
    for dataset in pending:
        try:
            report = index_dataset(engine, settings, dataset, node_keys=list(keys))
        except GenofedError as error:  # a bad file: not retried until the node restarts
            failed.add(dataset)
            log.warning("beacon index of %s failed: %s", dataset, error)
            continue
        indexed.append(dataset)
        log.info("beacon index of %s: %s", dataset, report)
    return indexed


async def sweep_forever(
    engine: Engine, settings: Settings, keys: Sequence[bytes], stop: asyncio.Event
) -> None:
    """Sweep every ``beacon.index_every_seconds`` until ``stop`` is set."""
    failed: set[str] = set()
    while not stop.is_set():
        await asyncio.to_thread(sweep_once, engine, settings, keys, failed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.beacon.index_every_seconds)
