"""Messages print paths and names literally: '[' in a user's path is not rich markup."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from genofed.cli.main import app


def test_errors_and_reports_show_bracketed_paths_as_they_are(tmp_path: Path) -> None:
    folder = tmp_path / "[bold]lab[/bold] keys"
    sk, pk = folder / "me.sec", folder / "me.pub"
    runner = CliRunner()
    keygen = ["crypt4gh", "keygen", "--sk", str(sk), "--pk", str(pk), "--nocrypt"]
    made = runner.invoke(app, keygen)
    assert made.exit_code == 0, made.output
    assert str(pk) in made.output
    again = runner.invoke(
        app, ["crypt4gh", "keygen", "--sk", str(sk), "--pk", str(pk), "--nocrypt"]
    )
    assert again.exit_code == 1
    assert f"{sk} exists already" in again.output
    node = runner.invoke(app, ["node", "init", str(tmp_path / "[node]"), "--country", "BE"])
    assert node.exit_code == 0, node.output
    assert str(tmp_path / "[node]" / "genofed.toml") in node.output
