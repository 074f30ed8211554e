"""``genofed node join`` and ``genofed search``: a node joining its hub, anyone searching it.

``join`` is mounted under ``genofed node`` (see :mod:`genofed.cli.node`); ``search`` is a
top-level command for researchers. Results go to stdout (a table on a terminal, tab-separated
lines otherwise, or the hub's JSON with ``--json``); notes and warnings go to stderr.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from genofed.cli.common import err_console, fail, run_guarded, say

HUB_ENV = "GENOFED_FEDERATION__HUB_URL"
HubOption = typer.Option(
    None, "--hub", envvar=HUB_ENV, help="The hub's URL; default: the node's federation.hub_url."
)
out_console = Console(soft_wrap=True, emoji=False)


def join(
    hub_url: str = typer.Argument(..., help="The hub's URL, e.g. https://hub.example.org."),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="The node directory (or its genofed.toml); default: GENOFED_CONFIG, else "
        "./genofed.toml.",
        show_default=False,
    ),
) -> None:
    """Join a federation hub: send this node's service-info, URL and public keys.

    The hub's operator then approves the node ('genofed hub approve'); the running node
    heartbeats and publishes its released datasets' public metadata from then on.
    """
    from genofed.cli.node import load_node_settings  # cli.node mounts this command
    from genofed.federation.node_sync import join_hub
    from genofed.federation.signing import key_fingerprint

    settings = load_node_settings(config)
    joined = run_guarded(lambda: join_hub(settings, hub_url))
    say(f"node {joined.node_id} joined the hub at {joined.hub_url}: {joined.status}")
    say(f"  this node's key fingerprint  {key_fingerprint(joined.node_key)}")
    say(f"  the hub's key (now pinned)   {joined.hub_key}")
    if joined.status != "approved":
        say(
            f"  ask the hub's operator to compare the fingerprint and run "
            f"'genofed hub approve {joined.node_id}'"
        )
    _remember_hub(config, joined.hub_url)


def _remember_hub(config: Path | None, url: str) -> None:
    """Add ``federation.hub_url`` to the node's genofed.toml, never rewriting what is there."""
    from genofed.config import CONFIG_ENV_VAR, CONFIG_FILE_NAME

    path = Path(config or os.environ.get(CONFIG_ENV_VAR) or CONFIG_FILE_NAME)
    if path.is_dir():
        path = path / CONFIG_FILE_NAME
    current = tomllib.loads(path.read_text()).get("federation", {})
    if current.get("hub_url", "").rstrip("/") == url:
        say("restart the node ('genofed node serve') if it runs, to start its heartbeats")
        return
    if "federation" in tomllib.loads(path.read_text()):
        say(f"set hub_url = {json.dumps(url)} in the [federation] section of {path}")
        return
    with path.open("a") as out:
        out.write(f"\n[federation]\nhub_url = {json.dumps(url)}\n")
    say(f"hub_url written to {path}: restart the node if it runs, to start its heartbeats")


def search(
    text: list[str] | None = typer.Argument(None, help="Words every dataset found contains."),
    country: list[str] | None = typer.Option(None, "--country", help="A node's country, e.g. BE."),
    phenotype: list[str] | None = typer.Option(
        None,
        "--phenotype",
        help="A phenotype or disease term, e.g. HP:0001250 (its descendants match too).",
    ),
    data_type: list[str] | None = typer.Option(
        None, "--data-type", help="WGS, WXS, RNA-Seq, SEQUENCE_VARIATION, ..."
    ),
    assembly: list[str] | None = typer.Option(None, "--assembly", help="GRCh37 or GRCh38."),
    access: list[str] | None = typer.Option(
        None, "--access", help="open, registered or controlled."
    ),
    duo: list[str] | None = typer.Option(
        None, "--duo", help="A data-use term of the dataset's policy: GRU, HMB, DS, IRB, ..."
    ),
    page: int = typer.Option(1, "--page", min=1),
    page_size: int = typer.Option(20, "--page-size", min=1, max=100),
    hub: str | None = HubOption,
    json_output: bool = typer.Option(False, "--json", help="Print the hub's JSON answer."),
) -> None:
    """Search the federation's catalogue of datasets (repeat an option for OR; options AND)."""
    import httpx

    url = hub_url(hub)
    params: dict[str, Any] = {
        "q": " ".join(text or []),
        "country": country or [],
        "phenotype": phenotype or [],
        "data_type": data_type or [],
        "assembly": assembly or [],
        "access": access or [],
        "duo": duo or [],
        "page": page,
        "page_size": page_size,
    }
    try:
        response = httpx.get(f"{url}/catalogue/search", params=params, timeout=30)
    except httpx.HTTPError as error:
        raise fail(f"the hub at {url} cannot be reached ({type(error).__name__})") from None
    if response.status_code != 200:
        raise fail(f"the hub refused the search ({response.status_code}): {_detail(response)}")
    found = response.json()
    if json_output:
        typer.echo(json.dumps(found, indent=2))
    else:
        _print_results(found)


def hub_url(given: str | None) -> str:
    """The hub to ask: as given, else the node's ``federation.hub_url``."""
    if not given:
        from genofed.config import load_settings

        try:
            given = load_settings().federation.hub_url
        except (FileNotFoundError, ValueError):
            given = ""
    if not given:
        raise fail(f"which hub? give --hub URL or set {HUB_ENV}")
    return given.rstrip("/")


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return str(response.text[:200])


def _print_results(found: dict[str, Any]) -> None:
    header = ["accession", "node", "title", "individuals", "data types", "assembly", "DUO"]
    rows = [
        [
            result["accession"],
            f"{result['node']['country']} {result['node']['health'] or ''}".strip(),
            result["title"],
            str(result["individuals"]),
            ", ".join(result["data_types"]),
            ", ".join(result["assemblies"]),
            " ".join(result["duo"]),
        ]
        for result in found["results"]
    ]
    if rows:
        print_table(header, rows)
    pages = max(found["pages"], 1)
    say(f"{found['total']} dataset(s); page {found['page']} of {pages}")
    for term in found["unexpanded_terms"]:
        say(f"note: {term} matched exactly (its ontology's hierarchy is not loaded at the hub)")
    for node in found["unavailable_nodes"]:
        err_console.print(Text.assemble(("warning:", "yellow"), " ", node["message"]))


def print_table(header: list[str], rows: Sequence[Sequence[str]]) -> None:
    """A drawn table on a terminal; tab-separated lines with a header row otherwise."""
    if out_console.is_terminal:
        table = Table(*header, highlight=False)
        for row in rows:
            table.add_row(*row)
        out_console.print(table, markup=False)
        return
    for line in [header, *rows]:
        typer.echo("\t".join(" ".join(cell.split()) for cell in line))
