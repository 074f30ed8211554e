"""Migrations: upgrade, idempotence, models in step with migrations, start-up schema checks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select, text

from genofed.db import (
    ArchiveFile,
    Base,
    DatabaseError,
    FileEvent,
    SchemaOutOfDate,
    SchemaTooNew,
    check_schema,
    current_revision,
    head_revision,
    make_engine,
    render_url,
    upgrade,
)
from genofed.db.migrate import alembic_config, migration_connection

# Every model has its table, and Alembic keeps its version table beside them.
TABLES = {"alembic_version", *Base.metadata.tables}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_the_tables(database_url: str) -> None:
    assert current_revision(database_url) is None
    assert upgrade(database_url) == (None, head_revision())
    assert _tables(database_url) == TABLES
    assert current_revision(database_url) == head_revision()


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    upgrade(database_url)
    assert upgrade(database_url) == (head_revision(), head_revision())
    assert _tables(database_url) == TABLES


def test_models_match_the_migrations(db_engine: Engine) -> None:
    """Fails when a model changes without a migration (CHECK constraints excepted)."""
    with db_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_back(database_url: str) -> None:
    upgrade(database_url)
    with migration_connection(database_url) as connection:
        command.downgrade(alembic_config(connection), "base")
    assert _tables(database_url) == {"alembic_version"}
    assert upgrade(database_url) == (None, head_revision())


def test_check_schema_refuses_an_empty_database(database_url: str) -> None:
    with pytest.raises(SchemaOutOfDate) as caught:
        check_schema(database_url)
    assert str(caught.value) == (
        f"database {render_url(database_url)} is at revision none, "
        f"this genofed needs {head_revision()}: run 'genofed db upgrade'"
    )


def test_check_schema_passes_after_upgrade(db_engine: Engine, database_url: str) -> None:
    check_schema(db_engine)
    check_schema(database_url)


def test_a_newer_schema_is_refused(db_engine: Engine, database_url: str) -> None:
    with db_engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaTooNew, match="at revision 9999_from_the_future, unknown to genofed"):
        check_schema(db_engine)
    with pytest.raises(SchemaTooNew):
        upgrade(database_url)


def test_an_unknown_target_revision_is_a_one_line_error(database_url: str) -> None:
    with pytest.raises(DatabaseError, match=r"to nonsense: .*give 'head'") as caught:
        upgrade(database_url, "nonsense")
    assert "\n" not in str(caught.value)
    assert current_revision(database_url) is None


def test_a_failed_migration_changes_nothing(database_url: str) -> None:
    with pytest.raises(RuntimeError), migration_connection(database_url) as connection:
        command.upgrade(alembic_config(connection), "head")
        raise RuntimeError("the next revision failed")
    assert current_revision(database_url) is None
    assert _tables(database_url) == set()


def test_concurrent_upgrades_queue(database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(upgrade, [database_url] * 3))
    head = head_revision()
    assert sorted(results, key=lambda result: result[0] or "") == [
        (None, head),
        (head, head),
        (head, head),
    ]


def test_rebuilding_a_sqlite_table_keeps_the_rows_that_reference_it(tmp_path: Path) -> None:
    """SQLite drops a table to alter it; with foreign keys on, that would cascade to events."""
    url = f"sqlite:///{tmp_path / 'genofed.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(insert(ArchiveFile).values(id="f1", submitter="s", inbox_path="p"))
        connection.execute(insert(FileEvent).values(file_id="f1", state="registered"))
    with migration_connection(url) as connection:
        operations = Operations(MigrationContext.configure(connection))
        with operations.batch_alter_table("archive_files", recreate="always"):
            pass
    with engine.connect() as connection:
        assert connection.scalar(select(FileEvent.file_id)) == "f1"
    engine.dispose()
