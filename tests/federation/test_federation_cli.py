"""``genofed hub ...``, ``genofed node join`` and ``genofed search`` as an operator and a
researcher run them."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from federation_support import hub_server, make_hub, make_node, release_cohort
from metadata_support import COUNTRY
from typer.testing import CliRunner

from genofed.cli.main import app as cli
from genofed.config import load_settings
from genofed.db import make_engine
from genofed.federation.node_sync import sync_once

runner = CliRunner()


def _run(*args: str) -> Any:
    result = runner.invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def test_hub_init_and_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = _run("hub", "init", str(tmp_path / "hub"), "--name", "EU hub", "--port", "8765")
    assert made.exit_code == 0, made.output
    assert "hub directory ready" in made.output and "org.genofed.hub" in made.output
    config = tomllib.loads((tmp_path / "hub" / "genofed.toml").read_text())
    assert config["hub"] == {"name": "EU hub"}
    assert (tmp_path / "hub" / "keys" / "hub-signing.pem").stat().st_mode & 0o077 == 0
    again = _run("hub", "init", str(tmp_path / "hub"))
    assert again.exit_code == 1 and "choose an empty folder" in again.output

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: calls.append((app, options)))
    served = _run("hub", "serve", "--config", str(tmp_path / "hub"))
    assert served.exit_code == 0, served.output
    [(app, options)] = calls
    assert isinstance(app, FastAPI)
    assert options["port"] == 8765
    assert "hub EU hub serving on 127.0.0.1:8765" in served.output


def test_hub_commands_refuse_a_node_directory(tmp_path: Path) -> None:
    node = make_node(tmp_path / "be", COUNTRY)
    result = _run("hub", "nodes", "--config", str(node.home))
    assert result.exit_code == 1
    assert "is not a hub directory" in result.output


def test_join_approve_and_search_from_the_command_line(tmp_path: Path) -> None:
    node = make_node(tmp_path / "be", COUNTRY)
    accession = release_cohort(node)
    hub_dir = make_hub(tmp_path / "hub").home
    with hub_server(load_settings(hub_dir)) as (hub_url, _):
        assert "no node has joined yet" in _run("hub", "nodes", "--config", str(hub_dir)).output

        joined = _run("node", "join", hub_url, "--config", str(node.home))
        assert joined.exit_code == 0, joined.output
        assert f"joined the hub at {hub_url}: pending" in joined.output
        assert "genofed hub approve org.genofed.node.be" in joined.output
        written = tomllib.loads((node.home / "genofed.toml").read_text())["federation"]
        assert written == {"hub_url": hub_url}

        listed = _run("hub", "nodes", "--config", str(hub_dir))
        header, row = listed.stdout.splitlines()
        assert header.split("\t")[:5] == ["id", "name", "country", "status", "health"]
        assert row.split("\t")[:5] == ["org.genofed.node.be", "Node BE", "BE", "pending", "up"]
        fingerprint = row.split("\t")[-1]
        assert f"this node's key fingerprint  {fingerprint}" in joined.output

        approved = _run("hub", "approve", "BE", "--config", str(hub_dir), "--by", "ops")
        assert approved.exit_code == 0, approved.output
        assert "node org.genofed.node.be (Node BE, BE) approved" in approved.output
        assert "it learns at its next heartbeat" in approved.output  # the node is not running

        empty = _run("search", "--hub", hub_url)
        assert empty.exit_code == 0 and "0 dataset(s)" in empty.output
        settings = load_settings(node.home)
        engine = make_engine(settings.database_url)
        report = sync_once(settings, engine)  # what the running node's loop does
        engine.dispose()
        assert (report.status, report.published) == ("approved", 1)

        found = _run("search", "epilepsy", "--phenotype", "HP:0001250", "--hub", hub_url)
        assert found.exit_code == 0, found.output
        lines = found.stdout.splitlines()
        assert lines[0].split("\t")[:3] == ["accession", "node", "title"]
        assert lines[1].split("\t")[:4] == [
            accession,
            "BE up",
            "Epilepsy cohort genomes and variant calls",
            "20",
        ]
        assert "1 dataset(s); page 1 of 1" in found.output
        as_json = json.loads(_run("search", "--json", "--country", "FI", "--hub", hub_url).stdout)
        assert (as_json["total"], as_json["query"]["country"]) == (0, ["FI"])
        bad = _run("search", "--duo", "NOPE", "--hub", hub_url)
        assert bad.exit_code == 1 and "not a DUO term" in bad.output


def test_search_needs_a_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)
    monkeypatch.delenv("GENOFED_FEDERATION__HUB_URL", raising=False)
    result = _run("search", "epilepsy")
    assert result.exit_code == 1
    assert "give --hub URL" in result.output
    unreachable = _run("search", "--hub", "http://127.0.0.1:9")
    assert unreachable.exit_code == 1 and "cannot be reached" in unreachable.output
