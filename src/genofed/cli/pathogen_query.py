"""``genofed pathogen query``: LAPIS-style questions to a node, or to the hub for the whole
federation, e.g. how common S:E484K has been in Belgium since March.

Filters are LAPIS's own parameter names, written ``name=value`` (see the README), so what works
here works with curl and in the portal: the command only picks the route and prints the table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from genofed.cli.common import fail
from genofed.cli.federation import hub_url
from genofed.cli.remote import NodeOption, node_url

if TYPE_CHECKING:
    import httpx


class Route(StrEnum):
    aggregated = "aggregated"
    details = "details"
    nucleotide_mutations = "nucleotide-mutations"
    amino_acid_mutations = "amino-acid-mutations"
    nucleotide_insertions = "nucleotide-insertions"
    amino_acid_insertions = "amino-acid-insertions"
    over_time = "over-time"


LAPIS_PATHS = {
    Route.aggregated: "aggregated",
    Route.details: "details",
    Route.nucleotide_mutations: "nucleotideMutations",
    Route.amino_acid_mutations: "aminoAcidMutations",
    Route.nucleotide_insertions: "nucleotideInsertions",
    Route.amino_acid_insertions: "aminoAcidInsertions",
    Route.over_time: "mutationsOverTime",
}


class Format(StrEnum):
    tsv = "tsv"
    csv = "csv"
    json = "json"


def query(
    route: Route = typer.Argument(..., help="What to count or list."),
    filters: list[str] = typer.Argument(
        None,
        help="LAPIS parameters as name=value, e.g. aminoAcidMutations=S:E484K country=Belgium "
        "collectionDateFrom=2021-03-01 fields=country; repeat a name for 'any of'.",
        show_default=False,
    ),
    organism: str = typer.Option("sars-cov-2", help="The organism's name at the node or hub."),
    hub: str | None = typer.Option(
        None, "--hub", help="Ask the hub (every released record of the federation)."
    ),
    node: str | None = NodeOption,
    data_format: Format = typer.Option(Format.tsv, "--format", help="Table or JSON on stdout."),
) -> None:
    """Ask the released records of a node (default) or, with --hub, of the whole federation.

    Examples: 'genofed pathogen query aggregated aminoAcidMutations=S:E484K fields=country
    --hub URL'; 'genofed pathogen query amino-acid-mutations country=Belgium minProportion=0.5'.
    Counts are open; sequences are downloaded with 'genofed pathogen download'.
    """
    import httpx

    base = hub_url(hub) if hub is not None else node_url(node)
    params: list[tuple[str, str | int | float | bool | None]] = [
        _pair(item) for item in filters or []
    ]
    params.append(("dataFormat", data_format.value))
    url = f"{base}/pathogen/lapis/{organism}/sample/{LAPIS_PATHS[route]}"
    try:
        response = httpx.get(url, params=params, timeout=60)
    except httpx.TransportError as error:
        raise fail(f"no answer from {base} ({type(error).__name__}); check the URL") from None
    if not response.is_success:
        raise fail(f"{base} answered {response.status_code}: {_detail(response)}")
    typer.echo(response.text.rstrip("\n"))


def _pair(item: str) -> tuple[str, str]:
    name, equals, value = item.partition("=")
    if not equals or not name.strip():
        raise fail(f"{item!r} is not a filter: write name=value, e.g. country=Belgium")
    return name.strip(), value.strip()


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return str(response.text[:200])
