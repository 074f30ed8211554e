"""``genofed node serve`` and the app's start-up: checks first, then the server and workers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inbox_support import FakeQueue, make_node

from genofed.cli.main import app as cli
from genofed.config import load_settings
from genofed.node.app import create_app


def test_serve_runs_uvicorn_on_the_configured_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_node(tmp_path / "node")
    (settings.home / "genofed.toml").write_text(
        (settings.home / "genofed.toml").read_text() + "\n[http]\nport = 8765\n"
    )
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: calls.append((app, options)))
    result = CliRunner().invoke(cli, ["node", "serve", "--config", str(settings.home)])
    assert result.exit_code == 0, result.output
    [(app, options)] = calls
    assert isinstance(app, FastAPI)
    assert (options["host"], options["port"]) == ("127.0.0.1", 8765)
    assert "serving on 127.0.0.1:8765" in result.output


def test_serve_refuses_an_old_schema_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_node(tmp_path / "node")
    Path(settings.database_url.removeprefix("sqlite:///")).unlink()
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("the server must not start"))
    result = CliRunner().invoke(cli, ["node", "serve", "--config", str(settings.home)])
    assert result.exit_code == 1
    assert "run 'genofed db upgrade'" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_a_public_key_that_is_not_the_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_node(tmp_path / "node")
    other = make_node(tmp_path / "other")
    settings.crypt4gh.public_key.write_bytes(other.crypt4gh.public_key.read_bytes())
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("the server must not start"))
    result = CliRunner().invoke(cli, ["node", "serve", "--config", str(settings.home)])
    assert result.exit_code == 1
    assert "is not the pair of its private key" in result.output


def test_serve_needs_a_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["node", "serve"])
    assert result.exit_code == 1
    assert "no node configuration" in result.output
    missing = CliRunner().invoke(cli, ["node", "serve", "--config", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    assert "does not exist" in missing.output


def test_embedded_workers_start_with_the_app_and_stop_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []

    class Worker:
        async def stop(self) -> None:
            events.append("stopped")

    def start_embedded(app: FastAPI, settings: object) -> Worker:
        assert app.state.queue is queue  # the queue is open before the stages start
        events.append("started")
        return Worker()

    monkeypatch.setattr("genofed.node.app.start_embedded", start_embedded)
    made = make_node(tmp_path / "node")
    settings = load_settings(made.home, embedded_workers=True)
    queue = FakeQueue()
    with TestClient(create_app(settings, queue=queue)) as http:
        assert http.get("/service-info").status_code == 200
        assert events == ["started"]
    assert events == ["started", "stopped"]
