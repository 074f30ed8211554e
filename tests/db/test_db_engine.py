"""Engines: SQLite pragmas and real transactions, URL handling, one-line connection errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from genofed.db import DatabaseError, make_engine, render_url
from genofed.db.engine import connect, parse_url


def test_sqlite_engine_creates_the_folder_and_sets_the_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'node' / 'db' / 'genofed.db'}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 15_000
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()
    assert (tmp_path / "node" / "db" / "genofed.db").is_file()


def test_ddl_is_transactional(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE scratch (id INTEGER)")
            connection.rollback()
            assert "scratch" not in inspect(connection).get_table_names()
    finally:
        engine.dispose()


def test_render_url_hides_the_password() -> None:
    rendered = render_url("postgresql+psycopg://genofed:s3cret@db.example.org:5432/node")
    assert "s3cret" not in rendered
    assert rendered == "postgresql+psycopg://genofed:***@db.example.org:5432/node"


def test_plain_postgresql_urls_use_psycopg() -> None:
    assert parse_url("postgresql://u@h/d").drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["not a url", "mysql://u@h/d"])
def test_unusable_urls_say_how_to_fix_them(url: str) -> None:
    with pytest.raises(DatabaseError, match="GENOFED_DATABASE_URL") as caught:
        make_engine(url)
    assert "\n" not in str(caught.value)


def test_unreachable_server_is_one_line_without_the_password() -> None:
    engine = make_engine("postgresql+psycopg://genofed:s3cret@127.0.0.1:1/node")
    with pytest.raises(DatabaseError) as caught, connect(engine):
        pass
    message = str(caught.value)
    assert message.startswith("cannot connect to database postgresql+psycopg://genofed:***@")
    assert "s3cret" not in message
    assert "\n" not in message
