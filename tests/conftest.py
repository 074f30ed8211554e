"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url

from genofed.db import make_engine, upgrade

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's ../shared folder (specs and public test data); skips when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED


@pytest.fixture(autouse=True)
def _private_logins(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test's stored logins ('genofed login') away from the user's own."""
    folder = tmp_path_factory.mktemp("logins")
    monkeypatch.setenv("GENOFED_CREDENTIALS", str(folder / "credentials.json"))


# --- Databases --------------------------------------------------------------------------------
# `database_url` runs a test once per backend: SQLite always, PostgreSQL when
# GENOFED_TEST_POSTGRES_URL names a server (CI sets it), e.g.
#   GENOFED_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test pytest tests/db
# Each PostgreSQL test gets a schema of its own, dropped afterwards, so parallel runs (pytest -n)
# and other users of the same database never see each other's tables. Tests must dispose of the
# engines they create (`engine.dispose()`), or the schema cannot be dropped.

POSTGRES_URL_ENV = "GENOFED_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once on SQLite (a temporary file) and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'genofed.db'}"
        return
    server_url = os.environ.get(POSTGRES_URL_ENV)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set")
    yield from _postgres_schema(server_url)


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine on `database_url`, migrated to the newest schema; disposed after the test."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _postgres_schema(server_url: str) -> Iterator[str]:
    """Create a fresh schema, yield a URL whose connections use only it, then drop it."""
    schema = f"genofed_t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as connection:
            # An engine the test did not dispose of holds locks: fail in 10 s rather than hang.
            connection.exec_driver_sql("SET lock_timeout = '10s'")
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    finally:
        admin.dispose()
