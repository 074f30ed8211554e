"""Engines and sessions: SQLite (WAL) for a small node, PostgreSQL when a node grows.

Every SQLite connection gets the pragmas a multi-process node needs: WAL so readers never block the
writer, ``foreign_keys`` (off by default in SQLite), a ``busy_timeout`` so writers queue instead of
failing, and ``synchronous=NORMAL`` (durable in WAL mode, much faster than FULL). SQLAlchemy emits
``BEGIN`` itself instead of Python's sqlite3 module, whose legacy mode runs SELECT and DDL outside
transactions; SQLite then behaves like PostgreSQL (repeatable reads, savepoints, transactional DDL).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from genofed.db.errors import DatabaseError

SQLITE_BUSY_TIMEOUT_MS = 15_000
CONNECT_TIMEOUT_S = 10  # PostgreSQL
_URL_HELP = (
    "set database_url in genofed.toml or GENOFED_DATABASE_URL to sqlite:///PATH "
    "or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
)


def parse_url(url: str | URL) -> URL:
    """Parse a database URL; ``postgresql://`` means psycopg 3, the driver genofed ships."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"the database URL is not a valid URL: {_URL_HELP}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseError(f"genofed supports SQLite and PostgreSQL, not {backend}: {_URL_HELP}")
    return parsed


def render_url(url: str | URL) -> str:
    """The URL for messages and logs, its password replaced by ``***``."""
    return parse_url(url).render_as_string(hide_password=True)


def make_engine(url: str | URL) -> Engine:
    """An engine for the application: SQLite with its pragmas, or PostgreSQL with pre-ping."""
    return _make_engine(parse_url(url), foreign_keys=True, begin="BEGIN")


WRITE_INTENT = "genofed_write_intent"


def for_writing(engine: Engine) -> Engine:
    """The same engine, for transactions that read and then write.

    On SQLite their transactions take the write lock at ``BEGIN``: concurrent writers then wait
    their turn (``busy_timeout``) instead of failing with "database is locked" when the read lock
    cannot be upgraded. PostgreSQL needs nothing of the kind; the option is ignored there.
    """
    return engine.execution_options(**{WRITE_INTENT: True})


def serialize_writers(session: Session, lock_id: int) -> None:
    """Let one transaction at a time past this point until it commits, so numbers it takes
    (``max + 1``) commit in order: a reader following them never skips one committed late.
    SQLite's writers already hold its one write lock from ``BEGIN`` (:func:`for_writing`);
    PostgreSQL takes an advisory lock released at commit or rollback."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


def make_migration_engine(url: str | URL) -> Engine:
    """An engine for schema changes, following SQLite's procedure for altering tables.

    On SQLite, foreign keys are off (rebuilding a table drops the old one, and with foreign keys on
    that drop would cascade-delete the rows that reference it) and every transaction takes the
    write lock at ``BEGIN`` so that concurrent upgrades queue instead of failing. On PostgreSQL it
    is the same as :func:`make_engine`.
    """
    return _make_engine(parse_url(url), foreign_keys=False, begin="BEGIN IMMEDIATE")


def _make_engine(url: URL, *, foreign_keys: bool, begin: str) -> Engine:
    if url.get_backend_name() == "postgresql":
        return _postgres_engine(url)
    return _sqlite_engine(url, foreign_keys=foreign_keys, begin=begin)


def _postgres_engine(url: URL) -> Engine:
    # Pre-ping replaces connections the server or a proxy dropped; the timeout turns an
    # unreachable host into an error instead of a hang.
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: URL, *, foreign_keys: bool, begin: str) -> Engine:
    _create_sqlite_folder(url)
    engine = create_engine(url)
    pragmas = (
        f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}",
        "PRAGMA synchronous=NORMAL",
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the "begin" listener below starts transactions
        cursor = dbapi_connection.cursor()
        _enable_wal(cursor)
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_INTENT, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else begin)

    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    # WAL persists in the file, so only a new database switches. When two connections switch it
    # at once, SQLite fails one immediately (a deadlock, not a wait): retry as busy_timeout would.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _create_sqlite_folder(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    folder = Path(database).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseError(
            f"cannot create {folder} for the SQLite database: {error.strerror}; "
            "fix the folder's permissions or point database_url elsewhere"
        ) from None


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """A connection whose failure to open is a one-line :class:`DatabaseError`, not a traceback."""
    try:
        connection = engine.connect()
    except OperationalError as error:
        reason = " ".join(str(error.orig).split())
        raise DatabaseError(
            f"cannot connect to database {render_url(engine.url)}: {reason}; "
            "check database_url (GENOFED_DATABASE_URL) and that the database is reachable"
        ) from None
    with connection:
        yield connection


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit, e.g. when returned to a caller."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    with session_factory(engine).begin() as session:
        yield session
