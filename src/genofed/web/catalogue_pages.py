"""The federation's catalogue in the portal: search the hub with text and facets.

The node asks the hub it joined (``federation.hub_url``) on the visitor's behalf, the hub asks
itself; the hub holds only public summaries, so any signed-in visitor of a node, and anyone on
the hub, may search. A dataset of this node links to the portal's application form; a dataset
held abroad shows the one command that applies for it through the hub (its DAC is the one of
the node that holds it), and a link to its node's portal.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query, Request, Response

from genofed.config import Settings
from genofed.federation.node_sync import node_id
from genofed.web import render
from genofed.web.place import hub_url, is_hub
from genofed.web.routing import PortalRoute
from genofed.web.session import Visitor, visiting

router = APIRouter(route_class=PortalRoute)
HUB_TIMEOUT_S = 5.0
FACETS = ("country", "phenotype", "data_type", "assembly", "access", "duo")


@router.get("/catalogue")
async def catalogue(
    request: Request,
    visitor: Annotated[Visitor | None, Depends(visiting)],
    q: Annotated[str, Query(max_length=200)] = "",
    country: Annotated[str, Query(max_length=8)] = "",
    phenotype: Annotated[str, Query(max_length=64)] = "",
    data_type: Annotated[str, Query(max_length=64)] = "",
    assembly: Annotated[str, Query(max_length=16)] = "",
    access: Annotated[str, Query(max_length=16)] = "",
    duo: Annotated[str, Query(max_length=16)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """Search the federation's datasets; results say where each is held and how to apply."""
    settings: Settings = request.app.state.settings
    asked = {
        "q": q.strip(),
        "country": country.strip().upper(),
        "phenotype": phenotype.strip(),
        "data_type": data_type.strip(),
        "assembly": assembly.strip(),
        "access": access.strip(),
        "duo": duo.strip().upper(),
    }
    answer, problem = await _search(settings, {**asked, "page": str(page)})
    portals = {
        node.get("id"): str(node["url"]).rstrip("/") + render.PREFIX + "/"
        for node in answer.get("nodes", [])
        if isinstance(node, dict) and node.get("url")
    }
    return render.page(
        request,
        "catalogue.html",
        identity=visitor.identity if visitor else None,
        csrf=visitor.csrf if visitor else "",
        title="Catalogue",
        context={
            "asked": asked,
            "answer": answer,
            "problem": problem,
            "results": [
                _with_apply(result, settings, portals) for result in answer.get("results", [])
            ],
        },
    )


async def _search(settings: Settings, asked: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """The hub's answer, or an empty one and why there is none."""
    hub = hub_url(settings)
    if not hub:
        return {}, (
            "This node has not joined a federation: its operator joins one with "
            "'genofed node join HUB_URL'."
        )
    params = {key: value for key, value in asked.items() if value}
    try:
        async with httpx.AsyncClient(timeout=HUB_TIMEOUT_S) as client:
            response = await client.get(f"{hub}/catalogue/search", params=params)
    except httpx.HTTPError as error:
        return {}, f"The federation's hub ({hub}) cannot be reached ({type(error).__name__})."
    if response.status_code == 422:
        return {}, str(response.json().get("detail", "the search was not understood"))
    if response.status_code != 200:
        return {}, f"The federation's hub answered {response.status_code}; try again later."
    found: dict[str, Any] = response.json()
    return found, None


def _with_apply(
    result: dict[str, Any], settings: Settings, portals: dict[Any, str]
) -> dict[str, Any]:
    """The result with how to apply: this node's form, or the command through the hub and the
    portal of the node that holds it."""
    holder = result.get("node", {}).get("id")
    here = not is_hub(settings) and holder == node_id(settings)
    command = (
        f"genofed federation request {result['accession']} --title ... --permission HMB "
        f"--days 365 --hub {hub_url(settings)}"
    )
    return {**result, "here": here, "apply_command": command, "portal": portals.get(holder)}
