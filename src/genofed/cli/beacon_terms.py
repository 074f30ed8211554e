"""``genofed beacon terms``: the filters the node's Beacon understands, and what a term stands for.

An operator adding an ontology (an OBO file in ``[beacon] obo_files``) checks here that its terms
load and expand as expected, before researchers' filters depend on it::

    genofed beacon terms                       # the node's filtering terms, as /filtering_terms
    genofed beacon terms MONDO:0005027 --obo mondo.obo
    genofed beacon terms HP:0001250 --exact    # without descendants
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from genofed.cli.common import run_guarded, say

if TYPE_CHECKING:
    from genofed.beacon.ontology import Ontologies
    from genofed.config import Settings

SHOWN = 20  # terms of an expansion printed


def terms(
    term: str | None = typer.Argument(
        None, help="An ontology term (CURIE) to expand; without it, list the node's terms."
    ),
    obo: list[Path] = typer.Option(
        [], "--obo", help="An OBO file to load besides the node's (repeat for several)."
    ),
    exact: bool = typer.Option(False, "--exact", help="The term alone, without descendants."),
    similarity: str = typer.Option(
        "exact", "--similarity", help="exact, high, medium or low: widen to ancestors' subtrees."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="The node directory or its genofed.toml (default: GENOFED_CONFIG)."
    ),
) -> None:
    """List the Beacon's filtering terms, or show what one ontology term matches."""
    if similarity not in ("exact", "high", "medium", "low"):
        raise typer.BadParameter("choose exact, high, medium or low", param_hint="--similarity")
    if term is None:
        run_guarded(lambda: _list(_settings(config), obo))
        return
    ontologies = run_guarded(lambda: _ontologies(_settings(config), obo))
    _expand(ontologies, term, descendants=not exact, similarity=similarity)


def _settings(config: Path | None) -> Settings:
    from genofed.config import load_settings

    return load_settings(config)


def _ontologies(settings: Settings, extra: list[Path]) -> Ontologies:
    from genofed.beacon.framework import beacon_settings
    from genofed.beacon.ontology import load_ontologies

    files = [*beacon_settings(settings).obo_files, *extra]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise typer.BadParameter(f"no such file: {', '.join(missing)}", param_hint="--obo")
    return load_ontologies(files)


def _expand(ontologies: Ontologies, term: str, *, descendants: bool, similarity: str) -> None:
    label = ontologies.label(term)
    found = ontologies.expand(term, descendants=descendants, similarity=similarity)
    if not found.known:
        source = ontologies.source(term)
        where = f"not in {source.resource.name}" if source else "of no loaded ontology"
        say(f"{term} is {where}: a filter on it matches records carrying exactly {term}")
        return
    typer.echo(f"{term}\t{label}")
    others = sorted(found.terms - {term})
    say(f"a filter on {term} matches {len(found.terms)} terms: it and {len(others)} more")
    for other in others[:SHOWN]:
        typer.echo(f"  {other}\t{ontologies.label(other) or ''}")
    if len(others) > SHOWN:
        say(f"  ... and {len(others) - SHOWN} more")


def _list(settings: Settings, extra: list[Path]) -> None:
    from genofed import db
    from genofed.beacon.entities import catalogue
    from genofed.beacon.filters import filtering_terms
    from genofed.beacon.responses import min_counts

    ontologies = _ontologies(settings, extra)
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            found = catalogue(session)
            listing = filtering_terms(found, ontologies, min_counts(session, found))
    finally:
        engine.dispose()
    for item in listing["filteringTerms"]:
        typer.echo(_line(item))
    say(
        f"{len(listing['filteringTerms'])} filtering terms over {len(found.datasets)} released "
        "datasets; terms of fewer individuals than a dataset's minimum count are not listed"
    )


def _line(item: dict[str, Any]) -> str:
    values = f"  values: {', '.join(item['values'])}" if item.get("values") else ""
    scopes = ", ".join(item["scopes"])
    return f"{item['id']}\t{item.get('label', '')}\t[{item['type']}; {scopes}]{values}"
