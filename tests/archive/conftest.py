"""Fixtures for the queue tests: one harness per backend, so one suite runs against all three.

``backend``, in a module marked ``pytestmark = ALL_BACKENDS``, runs each test on the database
queue over SQLite, over PostgreSQL (when GENOFED_TEST_POSTGRES_URL is set) and on RabbitMQ (when
GENOFED_TEST_RABBITMQ_URL is set, e.g. ``amqp://guest:guest@127.0.0.1:5672/``). Each RabbitMQ test
gets queues under a prefix of its own, deleted afterwards; each database test gets a database of
its own (see tests/conftest.py).

A test is a coroutine ``scenario(harness)`` given to ``harness.run``, which closes every queue
the scenario made, in the scenario's event loop, even when it fails.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from queue_support import DatabaseHarness, Harness, RabbitHarness

from genofed.db import upgrade

RABBITMQ_URL_ENV = "GENOFED_TEST_RABBITMQ_URL"


@pytest.fixture
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def rabbitmq_url() -> str:
    url = os.environ.get(RABBITMQ_URL_ENV)
    if not url:
        pytest.skip(f"{RABBITMQ_URL_ENV} is not set")
    return url


@pytest.fixture
def backend(backend_kind: str, database_url: str) -> Iterator[Harness]:
    """A harness for the database queue (SQLite, PostgreSQL) or for RabbitMQ."""
    if backend_kind == "rabbitmq":
        yield from _rabbit_harness()
    else:
        yield from _database_harness(backend_kind, database_url)


@pytest.fixture
def db_harness(database_url: str) -> Iterator[DatabaseHarness]:
    """The database queue only, on SQLite and PostgreSQL."""
    kind = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    yield from _database_harness(kind, database_url)


@pytest.fixture
def rabbit_harness() -> Iterator[RabbitHarness]:
    """RabbitMQ only."""
    yield from _rabbit_harness()


def _database_harness(kind: str, url: str) -> Iterator[DatabaseHarness]:
    upgrade(url)
    harness = DatabaseHarness(kind, url)
    try:
        yield harness
    finally:
        harness.engine.dispose()


def _rabbit_harness() -> Iterator[RabbitHarness]:
    harness = RabbitHarness(rabbitmq_url())
    try:
        yield harness
    finally:
        asyncio.run(harness.delete_queues())
