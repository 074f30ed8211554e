"""``genofed node``: set up and run a national node."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from genofed.cli.common import err_console, run_guarded

if TYPE_CHECKING:  # the CLI imports the database layer only for commands that use it
    from genofed.node.directory import NodeDirectory

app = typer.Typer(help="A national node: create its directory, run it.", no_args_is_help=True)


@app.command()
def init(
    folder: Path = typer.Argument(..., help="The node directory to create (empty or new)."),
    name: str = typer.Option("genofed-node", help="The node's name, e.g. 'Belgian node'."),
    country: str = typer.Option("XX", help="The node's ISO 3166-1 alpha-2 country code."),
    ask_passphrase: bool = typer.Option(
        False,
        "--ask-passphrase",
        help="Prompt for the node key's passphrase instead of generating one into "
        "secrets/crypt4gh.passphrase.",
    ),
) -> None:
    """Write a ready node directory: configuration, Crypt4GH key pair, database, storage."""
    from genofed.node.directory import init_node

    passphrase = _ask_twice() if ask_passphrase else None
    made = run_guarded(lambda: init_node(folder, name=name, country=country, passphrase=passphrase))
    _report(made)


def _ask_twice() -> str:
    return str(
        typer.prompt(
            "Passphrase for the node's private key", hide_input=True, confirmation_prompt=True
        )
    )


def _report(made: NodeDirectory) -> None:
    from genofed.db import render_url

    settings = made.settings
    err_console.print(f"[bold green]node directory ready:[/] {settings.home}")
    err_console.print(f"  configuration  {made.config_file}")
    err_console.print(f"  database       {render_url(settings.database_url)}")
    err_console.print(f"  node key       {settings.crypt4gh.public_key}")
    err_console.print(f"  fingerprint    {made.public_key_fingerprint}")
    for label, store in (
        ("inbox", settings.inbox),
        ("archive", settings.archive),
        ("backup", settings.backup),
    ):
        err_console.print(f"  {label:<14} {store.path}")
    if made.passphrase_file is not None:
        err_console.print(
            f"  [yellow]the node key's passphrase is in {made.passphrase_file} (owner-only); "
            "move it to your secret store and set GENOFED_CRYPT4GH__PASSPHRASE[/]"
        )
    err_console.print(f"Use it with: export GENOFED_CONFIG={made.config_file}")
