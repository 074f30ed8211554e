"""`genofed db upgrade` and `genofed db current`, configured through GENOFED_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from genofed.cli.db import app
from genofed.db import head_revision, render_url


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    """Point the CLI at a database URL, away from any genofed.toml of the developer's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)

    def use(url: str) -> None:
        monkeypatch.setenv("GENOFED_DATABASE_URL", url)

    return use


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_upgrade_then_current(database_url: str, use_database: Callable[[str], None]) -> None:
    use_database(database_url)
    where = render_url(database_url)
    head = head_revision()

    first = _run("upgrade")
    assert first.exit_code == 0, first.output
    assert first.stderr == f"upgraded database {where}: none → {head}\n"

    again = _run("upgrade", "--revision", "head")
    assert again.exit_code == 0, again.output
    assert again.stderr == f"database {where} is already at {head}, nothing to do\n"

    current = _run("current")
    assert current.exit_code == 0, current.output
    assert current.stdout == f"{head}\n"
    assert current.stderr == f"database {where} is up to date\n"


def test_current_on_an_empty_database_says_how_to_upgrade(
    database_url: str, use_database: Callable[[str], None]
) -> None:
    use_database(database_url)
    result = _run("current")
    assert result.exit_code == 0, result.output
    assert result.stdout == "none\n"
    assert result.stderr.endswith(f"needs {head_revision()}: run 'genofed db upgrade'\n")


def test_errors_are_one_line_without_the_password(use_database: Callable[[str], None]) -> None:
    use_database("postgresql+psycopg://genofed:s3cret@127.0.0.1:1/node")
    for command in ("upgrade", "current"):
        result = _run(command)
        assert result.exit_code == 1
        assert result.stderr.startswith("error: cannot connect to database ")
        assert result.stderr.count("\n") == 1
        assert "s3cret" not in result.output
        assert "genofed:***@127.0.0.1:1/node" in result.stderr


def test_help_describes_the_commands() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    assert "upgrade" in result.stdout and "current" in result.stdout
