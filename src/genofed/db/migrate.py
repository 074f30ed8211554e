"""Schema migrations with Alembic, shipped inside the package: no alembic.ini, no CWD lookups.

Processes call :func:`check_schema` at start-up and refuse to run on a schema that is older (run
``genofed db upgrade``) or newer (a newer genofed wrote it) than the one they were built for.

Migrations run in one transaction that holds a lock (PostgreSQL: an advisory lock; SQLite: the
write lock), so concurrent upgrades queue and a failed upgrade leaves the database as it was.

To add a revision after changing :mod:`genofed.db.models`, autogenerate it against a database at
head, then review it (autogenerate misses CHECK constraints and renames)::

    with migration_connection("sqlite:////tmp/dev.db") as connection:
        command.revision(alembic_config(connection), "what changed", autogenerate=True,
                         rev_id="0002_short_name")

Revision ids are ``NNNN_short_name`` and the file is named after the id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

from genofed import __version__
from genofed.db.engine import connect, make_engine, make_migration_engine, render_url
from genofed.db.errors import DatabaseError, SchemaOutOfDate, SchemaTooNew

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_POSTGRES_LOCK_ID = 0x67656E6F666564  # "genofed": one migration at a time per database


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands relative to the migrations this genofed ships."""

    database: str  # the URL, password hidden
    current: str | None  # None: no genofed schema yet
    head: str
    relation: Literal["up to date", "behind", "ahead"]

    def problem(self) -> SchemaOutOfDate | SchemaTooNew | None:
        """The error that keeps this genofed from using the database, if any."""
        at = f"database {self.database} is at revision {self.current or 'none'}"
        if self.relation == "behind":
            return SchemaOutOfDate(
                f"{at}, this genofed needs {self.head}: run 'genofed db upgrade'"
            )
        if self.relation == "ahead":
            return SchemaTooNew(
                f"{at}, unknown to genofed {__version__} (newest: {self.head}): a newer genofed "
                "migrated it; run that version, or restore a backup taken before the upgrade"
            )
        return None


def alembic_config(connection: Connection) -> Config:
    """An Alembic configuration that runs this package's migrations on ``connection``."""
    config = _config()
    config.attributes["connection"] = connection
    return config


def _config() -> Config:
    config = Config()  # values are %-interpolated, hence the doubled percent signs
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s")
    config.set_main_option("path_separator", "os")
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest revision this genofed ships: the schema its code expects."""
    head = _scripts().get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS_DIR}"
    return head


@contextmanager
def migration_connection(url: str) -> Iterator[Connection]:
    """A connection in one locked transaction, committed when the block ends without error."""
    engine = make_migration_engine(url)
    try:
        with connect(engine) as connection, connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _POSTGRES_LOCK_ID}
                )
            yield connection
            if connection.dialect.name == "sqlite":
                _check_foreign_keys(connection)
    finally:
        engine.dispose()


def _check_foreign_keys(connection: Connection) -> None:
    # Foreign keys are off while SQLite tables are rebuilt: verify them before committing.
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise DatabaseError(
            f"migrating database {render_url(connection.engine.url)} would break "
            f"{len(broken)} foreign key(s), e.g. in table {broken[0][0]}; nothing was changed: "
            "report this as a genofed bug"
        )


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database to ``revision``; return its revisions (before, after).

    Idempotent: a database already at ``revision`` is left alone.
    """
    with migration_connection(url) as connection:
        status = _status(connection)
        problem = status.problem()
        if isinstance(problem, SchemaTooNew):
            raise problem
        try:
            command.upgrade(alembic_config(connection), revision)
        except (CommandError, RevisionError) as error:
            raise DatabaseError(
                f"cannot upgrade database {status.database} from {status.current or 'none'} "
                f"to {revision}: {error}; give 'head' or a later revision this genofed ships"
            ) from None
        return status.current, _current(connection)


def current_revision(url: str) -> str | None:
    """The database's schema revision, or None when genofed has not created its schema there."""
    return schema_status(url).current


def schema_status(engine_or_url: Engine | str) -> SchemaStatus:
    """Compare the database's revision with :func:`head_revision`."""
    if isinstance(engine_or_url, Engine):
        with connect(engine_or_url) as connection:
            return _status(connection)
    engine = make_engine(engine_or_url)
    try:
        with connect(engine) as connection:
            return _status(connection)
    finally:
        engine.dispose()


def check_schema(engine_or_url: Engine | str) -> None:
    """Refuse to run on a schema other than the one this genofed was built for.

    Raises :class:`SchemaOutOfDate` when the database is behind (or empty), :class:`SchemaTooNew`
    when it was migrated by a newer genofed.
    """
    problem = schema_status(engine_or_url).problem()
    if problem is not None:
        raise problem


def _status(connection: Connection) -> SchemaStatus:
    current = _current(connection)
    head = head_revision()
    known = {script.revision for script in _scripts().walk_revisions()}
    relation: Literal["up to date", "behind", "ahead"]
    if current == head:
        relation = "up to date"
    elif current is None or current in known:
        relation = "behind"
    else:
        relation = "ahead"
    return SchemaStatus(render_url(connection.engine.url), current, head, relation)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
