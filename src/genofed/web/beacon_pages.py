"""The beacon query builder: a variant (by position and alleles, or by gene) with a phenotype
filter, asked of the whole federation (or of this node alone), answered per node.

The page asks the hub's beacon network (``federation.hub_url`` + ``/beacon/g_variants``, or the
hub's own when the portal runs on the hub) on the visitor's behalf, forwarding their session
token as a bearer token (none for an anonymous visitor of the hub): each node's privacy guard
then decides, for this visitor, what each of its datasets may say. A node without a hub asks its
own beacon at its public URL, so that the answer is exactly the one the API gives. The page never
decides anything about the data: it only shows, in plain words, what the guards answered and
why an answer was coarsened or refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query, Request, Response

from genofed.config import Settings
from genofed.federation.node_sync import node_id
from genofed.web import render
from genofed.web.place import hub_url
from genofed.web.routing import PortalRoute
from genofed.web.session import Visitor, visiting

router = APIRouter(route_class=PortalRoute)
BEACON_TIMEOUT_S = 10.0  # the hub answers within its per-node timeout; this is a backstop
TERMS_TTL_S = 600.0
ASSEMBLIES = ("GRCh38", "GRCh37")
GRANULARITIES = ("boolean", "count")
# the beacon's parameter names (as its 400s name them) → the form's labels
FIELD_LABELS = {
    "assemblyId": "Assembly",
    "referenceName": "Chromosome",
    "start": "Start",
    "end": "End",
    "referenceBases": "Reference bases",
    "alternateBases": "Alternate bases",
    "geneId": "Gene id",
    "filters": "Phenotype filter",
    "requestedGranularity": "Granularity",
}
# the form's fields → the beacon's query parameters
PARAMETERS = {
    "assembly": "assemblyId",
    "chromosome": "referenceName",
    "start": "start",
    "end": "end",
    "reference": "referenceBases",
    "alternate": "alternateBases",
    "gene": "geneId",
    "phenotype": "filters",
    "granularity": "requestedGranularity",
}
REFUSALS = {
    401: "a login is needed: sign in again, or apply for access to the datasets",
    403: "you may not query these datasets",
    429: "your information budget for these datasets is spent for now: try again later",
    503: "no node could answer in time",
}
Primitive = str | int | float | bool | None  # a query parameter's value, as httpx takes it
_terms_cache: dict[str, tuple[float, list[tuple[str, str]]]] = {}


@dataclass(frozen=True)
class DatasetAnswer:
    """One dataset's answer as a node's guard allowed it."""

    id: str
    exists: bool
    count: int | None
    exact: bool
    note: str | None


@dataclass
class NodeRow:
    """A node's line in the table: its outcome and its datasets' answers, or its reason."""

    id: str
    name: str
    country: str
    status: str
    reason: str | None = None
    datasets: list[DatasetAnswer] = field(default_factory=list)


@dataclass
class Outcome:
    """What the page shows: the network total, each node, the guards' notes, or the problem."""

    exists: bool | None = None
    count: int | None = None
    granularity: str = "boolean"
    nodes: list[NodeRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: str | None = None
    bad_field: str | None = None  # the form's field a 400 names


@router.get("/beacon")
async def beacon(
    request: Request,
    visitor: Annotated[Visitor | None, Depends(visiting)],
    assembly: Annotated[str, Query(max_length=16)] = "GRCh38",
    chromosome: Annotated[str, Query(max_length=16)] = "",
    start: Annotated[str, Query(max_length=16)] = "",
    end: Annotated[str, Query(max_length=16)] = "",
    reference: Annotated[str, Query(max_length=200)] = "",
    alternate: Annotated[str, Query(max_length=200)] = "",
    gene: Annotated[str, Query(max_length=64)] = "",
    phenotype: Annotated[str, Query(max_length=64)] = "",
    granularity: Annotated[str, Query(max_length=8)] = "count",
) -> Response:
    """The query form, and the federation's answer once the visitor has asked."""
    settings: Settings = request.app.state.settings
    asked = {
        "assembly": assembly.strip(),
        "chromosome": chromosome.strip(),
        "start": start.strip(),
        "end": end.strip(),
        "reference": reference.strip().upper(),
        "alternate": alternate.strip().upper(),
        "gene": gene.strip(),
        "phenotype": phenotype.strip(),
        "granularity": granularity.strip(),
    }
    outcome = None
    if any(asked[name] for name in ("chromosome", "start", "gene", "phenotype")):
        token = request.cookies.get(render.SESSION_COOKIE, "") if visitor else ""
        outcome = await ask(settings, beacon_params(asked), token)
        outcome.notes[:0] = lowered(asked["granularity"], outcome)
    return render.page(
        request,
        "beacon.html",
        identity=visitor.identity if visitor else None,
        csrf=visitor.csrf if visitor else "",
        title="Beacon",
        context={
            "asked": asked,
            "outcome": outcome,
            "terms": await filtering_terms(settings),
            "assemblies": ASSEMBLIES,
            "granularities": GRANULARITIES,
            "network": bool(hub_url(settings)),
        },
    )


def beacon_params(asked: dict[str, str]) -> list[tuple[str, Primitive]]:
    """The form as the beacon's GET parameters; empty fields are left out, so the beacon's own
    rules (and its 400 naming the field) decide what a query needs."""
    return [(PARAMETERS[name], value) for name, value in asked.items() if value]


def beacon_url(settings: Settings) -> str:
    """The hub's network beacon when the node has joined one, else this node's own."""
    base = hub_url(settings) or str(settings.http.public_url).rstrip("/")
    return base + "/beacon/g_variants"


async def ask(settings: Settings, params: list[tuple[str, Primitive]], token: str) -> Outcome:
    """The beacon's answer read for the page; an unreachable beacon is a problem, not a crash."""
    url = beacon_url(settings)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=BEACON_TIMEOUT_S) as client:
            response = await client.get(url, params=params, headers=headers)
        body = response.json()
    except httpx.HTTPError as error:
        return Outcome(problem=f"The beacon ({url}) cannot be reached ({type(error).__name__}).")
    except ValueError:
        return Outcome(problem=f"The beacon ({url}) did not answer with JSON.")
    if not isinstance(body, dict):
        return Outcome(problem=f"The beacon ({url}) answered something unreadable.")
    if hub_url(settings):
        return read_network(response.status_code, body)
    return read_node(response.status_code, body, settings)


def read_network(status: int, body: dict[str, Any]) -> Outcome:
    """The hub's merged answer: its total, ``info.nodes`` with each node's datasets."""
    outcome = _summary(status, body)
    info = _dict(body.get("info"))
    datasets = [item for item in _list(info.get("datasets")) if isinstance(item, dict)]
    for node in _list(info.get("nodes")):
        if not isinstance(node, dict):
            continue
        own = [item for item in datasets if _dict(item.get("node")).get("id") == node.get("id")]
        outcome.nodes.append(
            NodeRow(
                str(node.get("id", "")),
                str(node.get("name", node.get("id", ""))),
                str(node.get("country", "")),
                str(node.get("status", "unknown")),
                _text(node.get("reason")),
                [_dataset(item) for item in own],
            )
        )
    outcome.notes += guard_notes(info)
    return outcome


def read_node(status: int, body: dict[str, Any], settings: Settings) -> Outcome:
    """This node's own answer, shown as a network of one."""
    outcome = _summary(status, body)
    info = _dict(body.get("info"))
    if status != 400:  # a query it cannot read is the form's problem, not the node's
        outcome.nodes.append(
            NodeRow(
                node_id(settings),
                settings.node_name,
                settings.country,
                "answered" if status < 400 else "refused",
                outcome.problem,
                [_dataset(item) for item in _list(info.get("datasets")) if isinstance(item, dict)],
            )
        )
    outcome.notes += guard_notes(info)
    return outcome


def _summary(status: int, body: dict[str, Any]) -> Outcome:
    """The total, or the beacon's refusal in plain words (a 400 names the form's field)."""
    if status == 400:
        message = _text(_dict(body.get("error")).get("errorMessage")) or "the query is not valid"
        parameter, _, reason = message.partition(": ")
        parts = [part.removesuffix("[]") for part in parameter.split(".")]
        name = next((part for part in parts if part in FIELD_LABELS), None)
        if name is None:
            return Outcome(problem=f"The beacon cannot read this query: {message}")
        wrong = next(form for form, beacon in PARAMETERS.items() if beacon == name)
        return Outcome(problem=f"{FIELD_LABELS[name]}: {reason}", bad_field=wrong)
    if status >= 400:
        message = _text(_dict(body.get("error")).get("errorMessage")) or f"HTTP {status}"
        plain = REFUSALS.get(status, "the beacon could not answer")
        return Outcome(problem=f"No answer: {plain} ({message}).")
    summary = _dict(body.get("responseSummary"))
    count = summary.get("numTotalResults")
    granularity = _dict(body.get("meta")).get("returnedGranularity", "boolean")
    return Outcome(
        exists=summary.get("exists") is True,
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        granularity=str(granularity),
    )


def lowered(wanted: str, outcome: Outcome) -> list[str]:
    """A note when the answer is coarser than asked: a yes/no total looks like a count of
    nothing otherwise."""
    if wanted == "count" and outcome.exists is not None and outcome.granularity == "boolean":
        return [
            "You asked for counts, but every answer is yes or no only: the guards did not "
            "allow counts to you (see the notes below)."
        ]
    return []


def guard_notes(info: dict[str, Any]) -> list[str]:
    """Every way the privacy guards changed the answer, as sentences: notes per dataset,
    withheld counts, datasets not answered (login, budget) and the nodes' warnings."""
    notes = []
    for item in _list(info.get("datasets")):
        if isinstance(item, dict) and item.get("note"):
            where = _dict(item.get("node")).get("name")
            held = f" (held by {where})" if where else ""
            notes.append(f"Dataset {item.get('id')}{held}: {_sentence(item['note'])}")
        if isinstance(item, dict) and item.get("countIsExact") is False:
            notes.append(f"The count of dataset {item.get('id')} is coarsened: not exact.")
    withheld = [str(item) for item in _list(info.get("countsWithheld"))]
    if withheld:
        notes.append(
            "Counts withheld (these datasets answered yes or no only, so they are not in "
            f"the total): {', '.join(withheld)}."
        )
    notes += [f"Not answered: {_sentence(item)}" for item in _list(info.get("notAnswered"))]
    notes += [f"Warning: {_sentence(item)}" for item in _list(info.get("warnings"))]
    return notes


def _dataset(item: dict[str, Any]) -> DatasetAnswer:
    count = item.get("count")
    return DatasetAnswer(
        str(item.get("id", "")),
        item.get("exists") is True,
        count if isinstance(count, int) and not isinstance(count, bool) else None,
        item.get("countIsExact") is not False,
        _text(item.get("note")),
    )


async def filtering_terms(settings: Settings) -> list[tuple[str, str]]:
    """This node's filtering terms (id, label) for the phenotype field's autocomplete: fetched
    once per :data:`TERMS_TTL_S`, since they change only when metadata is released; none when
    the beacon does not answer (the field still takes any term)."""
    url = str(settings.http.public_url).rstrip("/") + "/beacon/filtering_terms"
    cached = _terms_cache.get(url)
    if cached is not None and time.monotonic() - cached[0] < TERMS_TTL_S:
        return cached[1]
    try:
        async with httpx.AsyncClient(timeout=BEACON_TIMEOUT_S) as client:
            response = await client.get(url)
        body = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return []
    terms = [
        (str(term["id"]), str(term.get("label", "")))
        for term in _list(_dict(_dict(body).get("response")).get("filteringTerms"))
        if isinstance(term, dict) and isinstance(term.get("id"), str)
    ]
    _terms_cache[url] = (time.monotonic(), terms)
    return terms


def _sentence(value: Any) -> str:
    """A node's message as a sentence: one full stop, whether or not the node wrote one."""
    return str(value).rstrip(". ") + "."


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None
