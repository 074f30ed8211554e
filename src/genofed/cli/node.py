"""``genofed node``: set up and run a national node."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from genofed.cli import federation
from genofed.cli.common import err_console, fail, run_guarded, say

if TYPE_CHECKING:  # the CLI imports the database layer only for commands that use it
    from genofed.config import Settings
    from genofed.node.directory import NodeDirectory

app = typer.Typer(help="A national node: create its directory, run it.", no_args_is_help=True)

ConfigOption = typer.Option(
    None,
    "--config",
    help="The node directory (or its genofed.toml); default: GENOFED_CONFIG, else ./genofed.toml.",
    show_default=False,
)


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
    err_console.print("[bold green]node directory ready[/]")
    say(f"  folder         {settings.home}")
    say(f"  configuration  {made.config_file}")
    say(f"  database       {render_url(settings.database_url)}")
    say(f"  node key       {settings.crypt4gh.public_key}")
    say(f"  fingerprint    {made.public_key_fingerprint}")
    for label, store in (
        ("inbox", settings.inbox),
        ("archive", settings.archive),
        ("backup", settings.backup),
    ):
        say(f"  {label:<14} {store.path}")
    if made.passphrase_file is not None:
        err_console.print(
            f"  [yellow]the node key's passphrase is in {made.passphrase_file} (owner-only); "
            "move it to your secret store and set GENOFED_CRYPT4GH__PASSPHRASE[/]"
        )
    say(f"Use it with: export GENOFED_CONFIG={made.config_file}")


@app.command()
def serve(config: Path | None = ConfigOption) -> None:
    """Run the node: its API on http.host:http.port, and the pipeline if embedded_workers is on."""
    settings = load_node_settings(config)
    run_guarded(lambda: _serve(settings))


def _serve(settings: Settings) -> None:
    import uvicorn

    from genofed.node.app import create_app, open_node

    open_node(settings).close()  # a bad schema or key: one clear line before the server starts
    http = settings.http
    err_console.print(
        f"node {settings.node_name} serving on {http.host}:{http.port} ({http.public_url})",
        highlight=False,
    )
    uvicorn.run(create_app(settings), host=http.host, port=http.port, log_level="info")


def load_node_settings(config: Path | None) -> Settings:
    """The settings of an existing node; refuses to go on without a configuration file, where
    the defaults would put keys and a database in the current folder."""
    import os

    from pydantic import ValidationError

    from genofed.config import CONFIG_ENV_VAR, CONFIG_FILE_NAME, load_settings

    if (
        config is None
        and not os.environ.get(CONFIG_ENV_VAR)
        and not Path(CONFIG_FILE_NAME).is_file()
    ):
        raise fail(
            f"no node configuration: give --config DIR, set {CONFIG_ENV_VAR}, or run in the node "
            "directory (create one with 'genofed node init DIR')"
        )
    try:
        return load_settings(config)
    except FileNotFoundError as error:
        raise fail(str(error)) from None
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise fail(
            f"the configuration is invalid at {where}: {problem['msg']}; fix genofed.toml or the "
            "GENOFED_* variables"
        ) from None


app.command()(federation.join)  # genofed node join HUB_URL
