"""Mutation trends: how often a mutation is seen among released pathogen genomes, over time by
country and in total per country, and the share of each clade per month, in charts.

The page holds the form; the browser draws the charts from the LAPIS queries of the same site
(``/pathogen/lapis/{organism}``, aggregated counts only) with ``pathogen-charts.js`` and
plotly.js, both served by the portal (no CDN), under the pages' CSP (scripts from the site only,
no eval). On a node the charts are of its records, for its signed-in users; on the hub, of the
whole federation's released records, for anyone (aggregated counts are public there too).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from genofed.pathogen import registry
from genofed.web import render
from genofed.web.routing import PortalRoute
from genofed.web.session import Visitor, visiting
from genofed.web.work import reading

LAPIS = "/pathogen/lapis/{organism}"
router = APIRouter(route_class=PortalRoute)


@router.get("/pathogen/mutations")
def mutations(
    request: Request,
    visitor: Annotated[Visitor | None, Depends(visiting)],
    organism: Annotated[str, Query(max_length=64)] = "",
    mutation: Annotated[str, Query(max_length=100)] = "",
    binning: Annotated[str, Query(pattern="^(week|month|year)$")] = "month",
    country: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The query form; the browser draws the charts from the LAPIS answers (the clade chart
    for ``country`` first, all countries without)."""
    with reading(request) as session:
        organisms = registry.organism_names(session)
        chosen = organism if organism in organisms else (organisms[0] if organisms else "")
        clades = registry.get_organism(session, chosen).clades if chosen else ()
    return render.page(
        request,
        "pathogen_mutations.html",
        identity=visitor.identity if visitor else None,
        csrf=visitor.csrf if visitor else "",
        title="Mutation trends",
        context={
            "organisms": organisms,
            "asked": {
                "organism": chosen,
                "mutation": mutation.strip(),
                "binning": binning,
                "country": country.strip(),
            },
            "lapis": LAPIS.format(organism=chosen) if chosen else "",
            "clade_labels": {clade.name: clade.label for clade in clades if clade.label},
        },
    )
