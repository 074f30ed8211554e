"""Entry point of the ``genofed`` command: one typer app with a sub-command per concept."""

from __future__ import annotations

from pathlib import Path

import typer

from genofed import __version__
from genofed.cli import archive, audit, crypt4gh, db, download, node, submit, token, user
from genofed.cli import beacon as beacon_cli
from genofed.cli import metadata as metadata_cli
from genofed.cli import pathogen as pathogen_cli
from genofed.cli.access import access_app, dac_app
from genofed.cli.beacon_guard import configure as beacon_configure
from genofed.cli.beacon_terms import terms as beacon_terms
from genofed.cli.common import run_guarded
from genofed.cli.cross_border import app as cross_border_app
from genofed.cli.federation import search
from genofed.cli.hub import app as hub_app
from genofed.cli.pathogen_query import query as pathogen_query
from genofed.cli.stats import app as stats_app

app = typer.Typer(
    name="genofed",
    help="Federated genomic data sharing: national nodes, a federation hub, Crypt4GH archives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(crypt4gh.app, name="crypt4gh")
app.add_typer(node.app, name="node")
app.add_typer(db.app, name="db")
app.add_typer(metadata_cli.app, name="metadata")
app.add_typer(metadata_cli.datasets, name="dataset")
app.add_typer(submit.app, name="submit")
app.add_typer(token.app, name="token")
app.add_typer(archive.app, name="archive")
app.command()(archive.worker)
app.add_typer(user.app, name="user")
app.add_typer(audit.app, name="audit")
app.add_typer(access_app, name="access")
app.add_typer(dac_app, name="dac")
app.command()(download.download)
app.command()(user.login)
app.command()(user.logout)
app.add_typer(hub_app, name="hub")
beacon_cli.app.command("configure")(beacon_configure)
beacon_cli.app.command("terms")(beacon_terms)
app.add_typer(beacon_cli.app, name="beacon")
app.add_typer(stats_app, name="stats")
app.add_typer(cross_border_app, name="federation")
app.command()(search)
pathogen_cli.app.command("query")(pathogen_query)
app.add_typer(pathogen_cli.app, name="pathogen")


@app.command()
def demo(
    workdir: Path = typer.Option(
        Path("demo-output"),
        help="Folder for the federation's hub, nodes and people; emptied first.",
    ),
    size_mib: float = typer.Option(
        4, min=0.1, help="Size of each node's synthetic cohort VCF, in MiB (before compression)."
    ),
    check: bool = typer.Option(
        False, "--check", help="Play the story and exit (0 only if every step succeeded)."
    ),
) -> None:
    """A living federation on this machine: a hub and three national nodes, each person using
    the real commands. Serves until Ctrl-C unless --check."""
    from genofed.demo.story import run_story

    run_guarded(lambda: run_story(workdir, size_mib, check=check))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"genofed {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Federated genomic data sharing."""
