"""``genofed stats allele-frequency``: an allele's frequency across the federation, asked at the
hub, which asks every node (:mod:`genofed.federation.stats`).

The variant is written as in a VCF or gnomAD, 1-based: ``1-55516888-G-GA`` (or with ``:``). The
caller's token (``--token``, ``GENOFED_TOKEN``, or the stored login of ``--node``) goes with the
question, so each node answers what its guard allows this caller; without one the nodes answer
anonymous callers only from their public data. Rows go to stdout (a table on a terminal,
tab-separated otherwise, the hub's JSON with ``--json``); notes go to stderr.
"""

from __future__ import annotations

import json
import re
from typing import Any

import typer

from genofed.cli.common import fail, say
from genofed.cli.federation import HubOption, hub_url, print_table
from genofed.cli.remote import NodeOption, TokenOption, bearer_token, node_url

app = typer.Typer(
    help="Statistics computed at each node and combined at the hub; no genotype leaves a node.",
    no_args_is_help=True,
)
VARIANT = re.compile(r"^(?P<chrom>[\w.]+)[-:](?P<pos>\d+)[-:](?P<ref>[ACGT]+)[-:](?P<alt>[ACGT]+)$")


@app.callback()
def _group() -> None:
    """Statistics computed at each node and combined at the hub; no genotype leaves a node."""


COLUMNS = ["scope", "group", "individuals", "carriers", "carrier freq.", "AC", "AN", "AF"]


def parse_variant(text: str, assembly: str) -> dict[str, Any]:
    """``CHROM-POS-REF-ALT`` (1-based) as the hub takes it (Beacon's 0-based start)."""
    found = VARIANT.match(text.strip().upper().replace("CHR", "", 1))
    if found is None or int(found["pos"]) < 1:
        raise fail(
            f"--variant {text!r}: write CHROM-POS-REF-ALT with a 1-based position, as in a VCF, "
            "e.g. 1-55516888-G-GA"
        )
    return {
        "assemblyId": assembly,
        "referenceName": found["chrom"],
        "start": int(found["pos"]) - 1,
        "referenceBases": found["ref"],
        "alternateBases": found["alt"],
    }


@app.command("allele-frequency")
def allele_frequency(
    variant: str = typer.Option(
        ..., "--variant", help="CHROM-POS-REF-ALT, 1-based as in a VCF, e.g. 1-55516888-G-GA."
    ),
    assembly: str = typer.Option("GRCh38", "--assembly", help="GRCh38 or GRCh37."),
    hub: str | None = HubOption,
    node: str | None = NodeOption,
    token: str | None = TokenOption,
    json_output: bool = typer.Option(False, "--json", help="Print the hub's JSON answer."),
) -> None:
    """The allele's frequency in every node's datasets, by sex and population, and across the
    federation (counts each node's guard withholds are left out, and said so)."""
    import httpx

    url = hub_url(hub)
    headers = _identity(node, token)
    try:
        response = httpx.post(
            f"{url}/stats/allele_frequency",
            json=parse_variant(variant, assembly),
            headers=headers,
            timeout=60,
        )
    except httpx.HTTPError as error:
        raise fail(f"the hub at {url} cannot be reached ({type(error).__name__})") from None
    if response.status_code != 200:
        raise fail(f"the hub answered {response.status_code}: {_detail(response)}")
    found = response.json()
    if json_output:
        typer.echo(json.dumps(found, indent=2))
        return
    print_table(COLUMNS, rows(found))
    _notes(found)


def _identity(node: str | None, token: str | None) -> dict[str, str]:
    """The bearer token to send: given, or the stored login of ``--node``; none: anonymous."""
    if not token and node:
        token = bearer_token(node_url(node), None)
    if not token:
        say("asking anonymously (no --token or --node login): only public data answers")
        return {}
    return {"Authorization": f"Bearer {token}"}


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail"))
    except (ValueError, AttributeError):
        return str(response.text[:200])


def rows(found: dict[str, Any]) -> list[list[str]]:
    """The table: the federation's cells, then each node's datasets' totals."""
    federation = found["federation"]
    shown = [_row("federation", "all", federation["total"])]
    shown += [_row("federation", f"sex: {c['label']}", c) for c in federation["bySex"]]
    shown += [
        _row("federation", f"population: {c['label']}", c) for c in federation["byPopulation"]
    ]
    for node in found["nodes"]:
        country = node["node"]["country"]
        shown += [_row(f"{country} {d['id']}", "all", d["total"]) for d in node["datasets"]]
    return shown


def _row(scope: str, group: str, cell: dict[str, Any]) -> list[str]:
    values = [
        cell.get(name)
        for name in (
            "individuals",
            "carriers",
            "carrierFrequency",
            "alleleCount",
            "alleleNumber",
            "alleleFrequency",
        )
    ]
    return [scope, group, *("-" if value is None else f"{value:g}" for value in values)]


def _notes(found: dict[str, Any]) -> None:
    for node in found["info"]["nodes"]:
        if node["status"] != "answered":
            say(f"{node['name']} ({node['country']}) {node['status']}: {node.get('reason', '')}")
    for node in found["nodes"]:
        for refusal in node["notAnswered"]:
            say(f"{node['node']['country']} did not answer for {refusal}")
    say(f"note: '-' is a number a node did not disclose; {found['federation']['note']}")
