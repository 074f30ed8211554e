"""`genofed beacon configure` (genofed.cli.beacon_guard), against GENOFED_DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from guard_support import DATASET, entries
from typer.testing import CliRunner, Result

from genofed import db
from genofed.beacon.guard import GuardSettings, guard_settings
from genofed.cli.beacon_guard import configure

app = typer.Typer()
app.command()(configure)  # one command: invoked without its name, as `genofed beacon configure`


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A migrated node database that the CLI finds through GENOFED_DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'node.db'}"
    db.upgrade(url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)
    monkeypatch.setenv("GENOFED_DATABASE_URL", url)
    return url


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _stored(url: str) -> GuardSettings:
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as session:
            return guard_settings(session, DATASET)
    finally:
        engine.dispose()


def test_without_options_it_shows_the_defaults(node: str) -> None:
    result = _run(DATASET)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"dataset\t{DATASET}\nlevel\tcontrolled\nmin_count\t5\nbudget_bits\t3\nguard\ton\n"
    )
    assert f"warning: no dataset {DATASET} on this node yet" in result.stderr
    assert "has no beacon settings of its own: these are the defaults" in result.stderr
    assert not _stored(node).stored


def test_options_change_the_settings_and_the_change_is_audited(node: str) -> None:
    result = _run(DATASET, "--level", "registered", "--budget-bits", "8", "--no-guard")
    assert result.exit_code == 0, result.output
    assert "level\tregistered\n" in result.stdout and "guard\toff\n" in result.stdout
    assert f"beacon settings of {DATASET} saved" in result.stderr
    assert _stored(node) == GuardSettings(DATASET, "registered", 5, 8.0, False, stored=True)
    assert _run(DATASET, "--guard", "--min-count", "10").exit_code == 0
    assert _stored(node) == GuardSettings(DATASET, "registered", 10, 8.0, True, stored=True)
    engine = db.make_engine(node)
    try:
        logged = entries(engine, "beacon.configure")
    finally:
        engine.dispose()
    assert len(logged) == 2 and logged[0]["actor"].startswith("operator")


def test_a_bad_setting_is_one_line_saying_what_is_allowed(node: str) -> None:
    result = _run(DATASET, "--min-count", "1")
    assert result.exit_code == 1
    assert "error: min_count 1: give 3 to 100 individuals" in result.stderr
    assert "Traceback" not in result.output
    assert not _stored(node).stored
