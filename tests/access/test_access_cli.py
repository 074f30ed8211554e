"""``genofed access`` and ``genofed dac`` against the routes served by uvicorn on a free port:
a request's whole life, refusals as one-line errors, tab-separated output for scripts."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dac_support import (
    BOB,
    EPILEPSY,
    JANE,
    MARC,
    OPS,
    Catalogue,
    build_catalogue,
    dac_app,
    node_settings,
    token,
)

from genofed.cli.access import access_app
from genofed.cli.access import dac_app as dac_cli
from genofed.config import Settings
from genofed.node.server import serving

ROLES = {BOB: "requester", JANE: "dac_member", MARC: "dac_member", OPS: "operator"}

cli = typer.Typer()
cli.add_typer(access_app, name="access")
cli.add_typer(dac_cli, name="dac")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)
    monkeypatch.delenv("GENOFED_TOKEN", raising=False)
    monkeypatch.delenv("GENOFED_NODE", raising=False)
    monkeypatch.chdir(tmp_path)
    return node_settings(tmp_path)


@pytest.fixture
def node(settings: Settings, db_engine: Engine) -> Iterator[tuple[str, Catalogue]]:
    """The node's URL, and its catalogue."""
    catalogue = build_catalogue(db_engine)
    with serving(dac_app(settings, db_engine)) as url:
        yield url, catalogue


def run(settings: Settings, url: str, user: str, *arguments: str) -> Result:
    """``genofed ARGUMENTS`` as ``user``, whose token is in GENOFED_TOKEN."""
    environment = {"GENOFED_TOKEN": token(settings, user, ROLES[user]), "GENOFED_NODE": url}
    return CliRunner().invoke(cli, list(arguments), env=environment)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def rows(result: Result) -> list[dict[str, str]]:
    """The tab-separated lines of a listing, as {column: value}."""
    header, *lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    return [dict(zip(header, line, strict=True)) for line in lines]


def test_a_request_through_the_cli(settings: Settings, node: tuple[str, Catalogue]) -> None:
    url, catalogue = node
    made = ok(
        run(
            settings,
            url,
            BOB,
            "access",
            "request",
            catalogue.epi,
            catalogue.open,
            "--title",
            "Epilepsy genetics",
            "--permission",
            "DS",
            "--disease",
            EPILEPSY,
            "--modifier",
            "IRB",
            "--modifier",
            "PUB",
            "--modifier",
            "GS=BE",
            "--days",
            "365",
        )
    )
    request_id = made.stdout.strip()
    assert "2 dataset(s) sent to their DACs" in made.stderr
    # NPU was not accepted: the requester is told at once.
    assert f"DUO check {catalogue.epi}: the dataset requires use by not-for-profit" in made.stderr

    [waiting] = rows(ok(run(settings, url, JANE, "dac", "list", "--status", "submitted")))
    assert (waiting["dataset"], waiting["requester"], waiting["DUO check"]) == (
        catalogue.epi,
        BOB,
        "1 mismatch(es)",
    )
    item = waiting["item"]
    shown = ok(run(settings, url, JANE, "dac", "show", item)).stdout
    assert f"requester: {BOB}" in shown
    assert f"purpose: DS ({EPILEPSY}); IRB; PUB; GS=BE" in shown
    assert "DUO check: 1 mismatch(es)" in shown and "add NPU to accept it" in shown

    refused = run(settings, url, JANE, "dac", "approve", item)
    assert refused.exit_code == 1
    assert f"error: approving item {item}: the node answered 409" in refused.stderr
    ok(run(settings, url, JANE, "dac", "changes", item, "--comment", "Accept NPU, please"))

    [epi_row, open_row] = rows(ok(run(settings, url, BOB, "access", "status")))
    assert (epi_row["status"], epi_row["comment"]) == ("changes_requested", "Accept NPU, please")
    assert open_row["status"] == "submitted"

    updated = ok(
        run(
            settings,
            url,
            BOB,
            "access",
            "update",
            request_id,
            item,
            "--modifier",
            "IRB",
            "--modifier",
            "PUB",
            "--modifier",
            "GS=BE",
            "--modifier",
            "NPU",
            "--days",
            "200",
            "--comment",
            "NPU accepted",
        )
    )
    moved = updated.stdout.strip()
    assert moved != request_id and f"(now request {moved})" in updated.stderr
    assert "DUO check" not in updated.stderr

    approved = ok(run(settings, url, JANE, "dac", "approve", item, "--days", "100"))
    grant = approved.stdout.strip()
    assert f"{BOB} may read {catalogue.epi} until" in approved.stderr
    shown = ok(run(settings, url, BOB, "access", "status", moved)).stdout
    assert "status: approved" in shown and f"grant: {grant} (active, until" in shown
    assert "DUO check: the purpose fits" in shown

    [listed] = rows(ok(run(settings, url, JANE, "dac", "grants")))
    assert (listed["grant"], listed["user"], listed["state"]) == (grant, BOB, "active")
    assert listed["conditions"] == f"DS={EPILEPSY} IRB PUB GS=EU TS=P2Y NPU"
    ok(run(settings, url, JANE, "dac", "revoke", item, "--comment", "Project ended"))
    [listed] = rows(ok(run(settings, url, JANE, "dac", "grants")))
    assert listed["state"].startswith("revoked 20") and listed["state"].endswith(f"by {JANE}")

    withdrawn = ok(run(settings, url, BOB, "access", "withdraw", request_id))
    assert "withdrawn" in withdrawn.stderr
    statuses = {
        row["dataset"]: row["status"]
        for row in rows(ok(run(settings, url, BOB, "access", "status")))
    }
    assert statuses == {catalogue.epi: "revoked", catalogue.open: "withdrawn"}


def test_refusals_are_one_line_errors(settings: Settings, node: tuple[str, Catalogue]) -> None:
    url, catalogue = node
    made = ok(
        run(
            settings,
            url,
            BOB,
            "access",
            "request",
            catalogue.open,
            "--title",
            "Panel",
            "--permission",
            "GRU",
            "--days",
            "30",
        )
    )
    [item] = rows(ok(run(settings, url, MARC, "dac", "list")))
    refused = run(settings, url, JANE, "dac", "approve", item["item"])
    assert refused.exit_code == 1
    assert "which you are not a member of" in refused.stderr
    assert refused.stderr.count("error:") == 1
    wrong_role = run(settings, url, BOB, "dac", "list")
    assert wrong_role.exit_code == 1 and "needs the dac_member role" in wrong_role.stderr
    bad = run(
        settings,
        url,
        BOB,
        "access",
        "request",
        catalogue.hmb,
        "--title",
        "T",
        "--permission",
        "DS",
        "--days",
        "5",
    )
    assert bad.exit_code == 1 and "DS (disease-specific research) needs its diseases" in bad.stderr
    no_days = run(
        settings,
        url,
        BOB,
        "access",
        "request",
        catalogue.hmb,
        "--title",
        "T",
        "--permission",
        "HMB",
        "--days",
        "0",
    )
    assert no_days.exit_code == 2  # refused by the CLI itself
    assert made.stdout.strip() in ok(run(settings, url, BOB, "access", "status")).stdout


def test_members_through_the_cli(settings: Settings, node: tuple[str, Catalogue]) -> None:
    url, catalogue = node
    ok(run(settings, url, OPS, "dac", "members", "add", "UZL-DAC", "anna@uzleuven.be"))
    listed = ok(run(settings, url, JANE, "dac", "members", "list", catalogue.uzl))
    assert listed.stdout.splitlines() == ["anna@uzleuven.be", JANE]
    ok(run(settings, url, OPS, "dac", "members", "remove", catalogue.uzl, JANE))
    empty = ok(run(settings, url, JANE, "dac", "list"))
    assert "you sit on no DAC" in empty.stderr
    refused = run(settings, url, JANE, "dac", "members", "add", catalogue.uzl, JANE)
    assert refused.exit_code == 1 and "needs the operator role" in refused.stderr


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["access", "--help"], "Request access to a node's datasets"),
        (["access", "request", "--help"], "--permission"),
        (["access", "update", "--help"], "Answer a DAC's request for changes"),
        (["dac", "--help"], "Decide on access requests"),
        (["dac", "approve", "--help"], "--acknowledge-mismatches"),
        (["dac", "revoke", "--help"], "The grant's id, or the number of the approved item"),
        (["dac", "members", "--help"], "Who sits on a DAC"),
    ],
)
def test_help(command: list[str], said: str) -> None:
    shown = CliRunner().invoke(cli, command, env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and said in shown.stdout
