"""``genofed hub``: set up and run the federation hub, and decide which nodes are members.

The operator's commands work on the hub's directory (its database) directly, not over HTTP:
they run on the hub's machine, like ``genofed db``. Listings go to stdout (a table on a terminal,
tab-separated lines otherwise, or JSON with ``--json``); messages go to stderr.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from genofed.cli.common import err_console, fail, run_guarded, say
from genofed.cli.federation import print_table

if TYPE_CHECKING:
    from genofed.config import Settings

app = typer.Typer(
    help="The federation hub: create its directory, run it, approve and list nodes.",
    no_args_is_help=True,
)

ConfigOption = typer.Option(
    None,
    "--config",
    help="The hub directory (or its genofed.toml); default: GENOFED_CONFIG, else ./genofed.toml.",
    show_default=False,
)
NodeArgument = typer.Argument(..., help="The node's id (org.genofed.node.be), country or name.")


@app.command()
def init(
    folder: Path = typer.Argument(..., help="The hub directory to create (empty or new)."),
    name: str = typer.Option("genofed hub", help="The hub's name, e.g. 'European federation'."),
    port: int = typer.Option(8700, help="The port 'genofed hub serve' listens on."),
) -> None:
    """Write a ready hub directory: configuration, request-signing key, database."""
    from genofed.db import render_url
    from genofed.federation.hub import HUB_ID, init_hub

    made = run_guarded(lambda: init_hub(folder, name=name, port=port))
    settings = made.settings
    err_console.print("[bold green]hub directory ready[/]")
    say(f"  folder         {settings.home}")
    say(f"  configuration  {made.config_file}")
    say(f"  database       {render_url(settings.database_url)}")
    say(f"  hub id         {HUB_ID}")
    say(f"  signing key    {made.signing_key}")
    say(f"  fingerprint    {made.fingerprint}")
    say(f"  URL            {settings.http.public_url}")
    say(
        "Nodes join with 'genofed node join URL'; they may pin the key above first "
        "(federation.hub_key in their genofed.toml)."
    )
    say(f"Use it with: export GENOFED_CONFIG={made.config_file}")


@app.command()
def serve(config: Path | None = ConfigOption) -> None:
    """Run the hub's API on http.host:http.port."""
    settings = load_hub_settings(config)
    run_guarded(lambda: _serve(settings))


def _serve(settings: Settings) -> None:
    import uvicorn

    from genofed.federation.hub_app import create_hub_app, open_hub

    open_hub(settings).close()  # a bad schema or directory: one clear line before the server
    http = settings.http
    err_console.print(
        f"hub {settings.hub.name} serving on {http.host}:{http.port} ({http.public_url})",
        highlight=False,
    )
    uvicorn.run(create_hub_app(settings), host=http.host, port=http.port, log_level="info")


@app.command()
def approve(
    node: str = NodeArgument,
    config: Path | None = ConfigOption,
    by: str | None = typer.Option(
        None, "--by", help="Who approves, for the audit log; default: your login name."
    ),
) -> None:
    """Make a pending node a member: its catalogue becomes searchable, its keys published.

    Compare the node's key fingerprint ('genofed hub nodes') with its operator's first.
    """
    from genofed.federation.hub import approve_node

    settings = load_hub_settings(config)
    done = run_guarded(lambda: approve_node(settings, node, by or getpass.getuser()))
    say(f"node {done.node['id']} ({done.node['name']}, {done.node['country']}) approved")
    if done.notice_problem is None:
        say("  the node was told, and publishes its catalogue now")
    else:
        say(f"  the node was not told ({done.notice_problem}); it learns at its next heartbeat")


@app.command()
def remove(
    node: str = NodeArgument,
    config: Path | None = ConfigOption,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Forget a node and its catalogue entries (it may join again, as a pending node)."""
    from genofed.federation.hub import remove_node

    settings = load_hub_settings(config)
    if not yes:
        typer.confirm(f"remove node {node} and its datasets from the catalogue?", abort=True)
    removed = run_guarded(lambda: remove_node(settings, node, getpass.getuser()))
    say(f"node {removed} removed")


@app.command()
def nodes(
    config: Path | None = ConfigOption,
    json_output: bool = typer.Option(False, "--json", help="A JSON list instead of a table."),
) -> None:
    """The registered nodes: status, health from heartbeats, datasets, key fingerprint."""
    from genofed.federation.hub import node_listing

    settings = load_hub_settings(config)
    listed = run_guarded(lambda: node_listing(settings))
    if json_output:
        typer.echo(json.dumps(listed, indent=2))
        return
    if not listed:
        say("no node has joined yet: nodes join with 'genofed node join HUB_URL'")
        return
    header = ["id", "name", "country", "status", "health", "last heartbeat", "datasets", "key"]
    rows = [
        [
            n["id"],
            n["name"],
            n["country"],
            n["status"],
            n["health"],
            (n["last_heartbeat"] or "never")[:19],
            str(n["datasets"]),
            n["key_fingerprint"],
        ]
        for n in listed
    ]
    print_table(header, rows)


def load_hub_settings(config: Path | None) -> Settings:
    """The settings of an existing hub directory; refuses a node's or none."""
    from pydantic import ValidationError

    from genofed.config import CONFIG_ENV_VAR, CONFIG_FILE_NAME, load_settings
    from genofed.federation.hub import require_hub

    if (
        config is None
        and not os.environ.get(CONFIG_ENV_VAR)
        and not Path(CONFIG_FILE_NAME).is_file()
    ):
        raise fail(
            f"no hub configuration: give --config DIR, set {CONFIG_ENV_VAR}, or run in the hub "
            "directory (create one with 'genofed hub init DIR')"
        )
    try:
        settings = load_settings(config)
    except FileNotFoundError as error:
        raise fail(str(error)) from None
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise fail(f"the configuration is invalid at {where}: {problem['msg']}") from None
    run_guarded(lambda: require_hub(settings))
    return settings
