"""The beacon network: the hub answers Beacon v2 queries for the whole federation.

Every query route of a node's beacon (:mod:`genofed.beacon.api`: ``/beacon/g_variants``,
``/individuals``, their ``{id}`` and lookup routes, ``/datasets``, ``/cohorts``,
``/filtering_terms``, ...) exists on the hub with the same path, GET and POST. The hub reads the
request as a node would (a request no node could read is refused once, 400, without asking
anyone), then asks every approved member at once and merges their answers. ``/``, ``/info``,
``/service-info``, ``/configuration``, ``/map`` and ``/entry_types`` describe the network itself
(``/info`` lists the members' beacons, as they describe themselves).

Identity: the caller's ``Authorization`` and ``X-GA4GH-Passport`` headers go to each node
unchanged, so each node decides with its own privacy guard what this caller gets from each of
its datasets (its budgets, thresholds, visas). The hub holds no key that opens any dataset and
decides nothing about the data; it only forwards and merges. A token issued by one member is
accepted by the others because each member trusts the others' issuers
(:mod:`genofed.federation.node_sync`).

Fan-out: one shared HTTP client, every node asked concurrently, each within
``hub.beacon_timeout_seconds`` (2 s): a node that does not answer in time is ``late``, one that
cannot be reached (or has not heartbeaten for ``hub.down_after_seconds``, so is not asked) is
``down``, one that refuses the caller (401, 403, 429) is ``refused``, any other failure is an
``error``. So the answer always comes within the timeout, whatever the nodes do. With
``datasetIds``, each node is asked for its own datasets only (the catalogue says which node
holds which) and nodes holding none of them are ``skipped``.

Merge rules (:func:`merge_entries`):

- ``responseSummary.exists`` is true when any node says so;
- ``numTotalResults`` adds the counts of the nodes that gave one; datasets whose count was not
  given (a node or a dataset that answered yes/no only) are named in ``info.countsWithheld``;
- ``meta.returnedGranularity`` is the finest any node answered at (never finer than asked);
- result sets keep their dataset ids and name their node in ``info.node`` (the result set's
  ``info``: the framework schema leaves other members to the specification); boolean and count
  answers list each dataset's answer in ``info.datasets``, each with its ``node``; at record
  granularity, datasets a node answered only with a count become result sets without records,
  as a node's own record answers show them;
- ``info.nodes`` has every member's outcome (answered, refused, late, down, error, skipped,
  with the reason and the time it took); nodes' warnings and refusals are kept, prefixed with
  the node's id (``info.warnings``, ``info.notAnswered``); handovers are concatenated;
- when no node answers, the answer is an error: the nodes' refusal (401 if any node wants a
  login, else their status, e.g. 429) or 503 when none could be reached in time, with
  ``info.nodes`` saying why each did not answer.

Collections (``/datasets``, ``/cohorts``) are concatenated, each record naming its node in its
``info``; filtering terms are the union of the nodes' terms (scopes united) and resources.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import Engine, select

from genofed import __version__, db
from genofed.beacon import framework
from genofed.beacon.api import router as node_beacon
from genofed.beacon.framework import BY_PATH
from genofed.beacon.requests import (
    API_VERSION,
    BeaconRequest,
    Granularity,
    InvalidRequest,
    from_body,
    from_query,
)
from genofed.config import HubSettings, Settings
from genofed.db.models import HubDataset, HubNode, HubNodeStatus
from genofed.federation import registry
from genofed.federation.hub import HUB_ID

HUB_BEACON_ID = f"{HUB_ID}.beacon"
FORWARDED_HEADERS = frozenset({"authorization", "x-ga4gh-passport"})
REFUSALS = frozenset({401, 403, 429})
LEVEL: dict[str, int] = {"boolean": 0, "count": 1, "record": 2}
FRAMEWORK_PATHS = frozenset(
    {"", "/", "/info", "/service-info", "/configuration", "/map", "/entry_types"}
)
State = Literal["answered", "refused", "late", "down", "error", "skipped"]
Kind = Literal["entries", "collections", "terms"]


# -- the members and the calls to them ----------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """An approved node, as the hub asks it."""

    id: str
    name: str
    country: str
    url: str
    health: str  # from heartbeats: up, late, down, unknown

    def tag(self) -> dict[str, str]:
        """How an answer names the node it came from."""
        return {"id": self.id, "name": self.name, "country": self.country}


def members(engine: Engine, settings: HubSettings) -> list[Member]:
    """The approved nodes with their heartbeat health (blocking: run in a worker thread)."""
    with db.session_scope(engine) as session:
        return [
            Member(node.id, node.name, node.country, node.url, registry.health(node, settings))
            for node in registry.list_nodes(session, approved_only=True)
        ]


@dataclass(frozen=True)
class Call:
    """What one node is asked: a path of its API, with query parameters or a JSON body."""

    method: str
    path: str
    params: Sequence[tuple[str, str]] = ()
    body: Any = None


@dataclass(frozen=True)
class Reply:
    """One node's outcome: its answer, or why there is none."""

    member: Member
    state: State
    status: int | None = None
    body: dict[str, Any] | None = None  # a JSON object; a JSON array is under "items"
    reason: str | None = None
    ms: float = 0.0

    def report(self) -> dict[str, Any]:
        """The node's line in ``info.nodes``."""
        shown: dict[str, Any] = {**self.member.tag(), "status": self.state, "ms": round(self.ms)}
        if self.status is not None:
            shown["httpStatus"] = self.status
        if self.reason:
            shown["reason"] = self.reason
        return shown


def open_client(auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    """The hub's one client for every fan-out: kept-alive connections to the nodes make a
    network query cost about what one node's answer costs. Deadlines are per call
    (:func:`ask`); this timeout is only a backstop."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(60.0), limits=limits, follow_redirects=False, auth=auth
    )


def forwarded_headers(request: Request) -> list[tuple[str, str]]:
    """The caller's identity exactly as sent (bearer token and passport visas, every value)."""
    return [(name, value) for name, value in request.headers.items() if name in FORWARDED_HEADERS]


async def ask(
    client: httpx.AsyncClient,
    member: Member,
    call: Call,
    headers: Sequence[tuple[str, str]],
    timeout: float,
) -> Reply:
    """Ask one node, never waiting longer than ``timeout``; every failure becomes a Reply."""
    started = time.perf_counter()

    def took() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        async with asyncio.timeout(timeout):
            response = await client.request(
                call.method,
                f"{member.url}{call.path}",
                params=list(call.params) or None,
                json=call.body if call.method == "POST" else None,
                headers=list(headers),
            )
    except (TimeoutError, httpx.TimeoutException):
        return Reply(member, "late", reason=f"no answer within {timeout:g} s", ms=took())
    except httpx.HTTPError as error:
        return Reply(
            member, "down", reason=f"cannot be reached ({type(error).__name__})", ms=took()
        )
    return _reply(member, response, took())


def _reply(member: Member, response: httpx.Response, ms: float) -> Reply:
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if isinstance(body, list):  # a listing (e.g. GET /access/requests): kept under "items"
        body = {"items": body}
    if not isinstance(body, dict):
        return Reply(member, "error", status, reason="its answer is not a JSON object", ms=ms)
    if 200 <= status < 300:
        return Reply(member, "answered", status, body, ms=ms)
    state: State = "refused" if status in REFUSALS else "error"
    return Reply(member, state, status, body, _message(body, status), ms)


def _message(body: dict[str, Any], status: int) -> str:
    """A node's error message: a beaconErrorResponse's, or a ``{"detail"}``."""
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("errorMessage"), str):
        return str(error["errorMessage"])
    if isinstance(body.get("detail"), str):
        return str(body["detail"])
    return f"HTTP {status}"


async def fan_out(
    client: httpx.AsyncClient,
    calls: Sequence[tuple[Member, Call]],
    headers: Sequence[tuple[str, str]],
    timeout: float,
) -> list[Reply]:
    """Ask every node of ``calls`` at once (nodes without a heartbeat for ``down`` are not
    asked: they are reported down at no cost in time); replies in the order of ``calls``."""

    async def one(member: Member, call: Call) -> Reply:
        if member.health == "down":
            reason = "no heartbeat for longer than the hub allows: not asked"
            return Reply(member, "down", reason=reason)
        return await ask(client, member, call, headers, timeout)

    return list(await asyncio.gather(*(one(member, call) for member, call in calls)))


# -- the hub's routes ---------------------------------------------------------------------------


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.hub.engine
    return engine


def client_of(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.fanout
    return client


async def current_members(request: Request) -> list[Member]:
    """The approved nodes, read in a worker thread (the database blocks)."""
    return await anyio.to_thread.run_sync(members, _engine(request), _settings(request).hub)


async def ask_members(request: Request, calls: Sequence[tuple[Member, Call]]) -> list[Reply]:
    """:func:`fan_out` with the caller's identity and the hub's per-node timeout."""
    timeout = _settings(request).hub.beacon_timeout_seconds
    return await fan_out(client_of(request), calls, forwarded_headers(request), timeout)


router = APIRouter(tags=["beacon network"])
Endpoint = Callable[[Request], Awaitable[JSONResponse]]


def _own(build: Callable[[Settings], dict[str, Any]]) -> Endpoint:
    """A framework answer about the network itself, from the node's builder with the hub's
    identity put in."""

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(_as_network(build(_settings(request)), _settings(request)))

    endpoint.__doc__ = build.__doc__
    return endpoint


def _as_network(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    if isinstance(body.get("meta"), dict):
        body["meta"]["beaconId"] = HUB_BEACON_ID
    if "type" in body and "id" in body:  # service-info
        body.update(
            id=HUB_BEACON_ID,
            name=f"{settings.hub.name} beacon network",
            description=_description(settings),
        )
    return body


def _description(settings: Settings) -> str:
    return (
        f"The beacon network of {settings.hub.name}: every query goes to each member node's "
        "beacon, which answers per dataset at the granularity its privacy guard allows the "
        "caller; the answers are merged, each result naming its node."
    )


async def _info(request: Request) -> JSONResponse:
    """``/``, ``/info``: the network as a beacon, with each member's own description."""
    settings = _settings(request)
    calls = [(member, Call("GET", "/beacon/info")) for member in await current_members(request)]
    replies = await ask_members(request, calls)
    beacons = [
        {**reply.body["response"], "node": reply.member.tag()}
        for reply in replies
        if reply.state == "answered" and reply.body and isinstance(reply.body.get("response"), dict)
    ]
    url = settings.http.public_url.rstrip("/")
    body = {
        "meta": _informational_meta(),
        "response": {
            "id": HUB_BEACON_ID,
            "name": f"{settings.hub.name} beacon network",
            "apiVersion": API_VERSION,
            "environment": framework.beacon_settings(settings).environment,
            "organization": {"id": HUB_ID, "name": settings.hub.name, "welcomeUrl": url},
            "description": _description(settings),
            "version": API_VERSION,
            "welcomeUrl": f"{url}/beacon",
            "info": {"software": f"genofed {__version__}", "beacons": beacons},
        },
        "info": {"nodes": [reply.report() for reply in replies]},
    }
    return JSONResponse(body)


def _informational_meta() -> dict[str, Any]:
    return {"beaconId": HUB_BEACON_ID, "apiVersion": API_VERSION, "returnedSchemas": []}


def _query_route(kind: Kind) -> Endpoint:
    async def endpoint(request: Request) -> JSONResponse:
        return await network_query(request, kind)

    endpoint.__doc__ = {
        "entries": "Asked of every member node; their answers merged (see the rules above).",
        "collections": "Every member's collections, each naming its node.",
        "terms": "The filtering terms of every member, united.",
    }[kind]
    return endpoint


def path_kind(path: str) -> Kind:
    """How answers to a node path merge: entries, collections or filtering terms."""
    parts = path.removeprefix("/beacon").strip("/").split("/")
    if parts[-1] == "filtering_terms":
        return "terms"
    if parts[0] in ("datasets", "cohorts") and len(parts) <= 2:
        return "collections"
    return "entries"


def _returned_schemas(path: str) -> list[dict[str, str]]:
    """The schema of the records an entries path returns (the lookup's target, if any)."""
    parts = path.removeprefix("/beacon").strip("/").split("/")
    target = parts[2] if len(parts) == 3 else parts[0]
    spec = BY_PATH.get(target)
    return [spec.returned_schema()] if spec is not None else []


_DESCRIBED: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "/service-info": framework.service_info,
    "/configuration": framework.configuration,
    "/map": framework.beacon_map,  # its URLs are the hub's: built from the hub's public URL
    "/entry_types": framework.entry_types,
}
for _route in node_beacon.routes:  # the same paths as a node's beacon, so clients need no map
    if not isinstance(_route, APIRoute):
        continue
    _path = _route.path.removeprefix("/beacon")
    if _path in ("", "/", "/info"):
        _endpoint: Endpoint = _info
    elif _path in FRAMEWORK_PATHS:
        _endpoint = _own(_DESCRIBED[_path])
    else:
        _endpoint = _query_route(path_kind(_route.path))
    router.add_api_route(
        _route.path,
        _endpoint,
        methods=["GET", "POST"],
        include_in_schema=_path != "/",
        name=f"network{_route.path}",
    )


# -- one network query --------------------------------------------------------------------------


async def network_query(request: Request, kind: Kind) -> JSONResponse:
    """Read the request, ask the nodes, merge; the path is the node path asked."""
    path = request.url.path[request.url.path.index("/beacon") :]
    asked: BeaconRequest | None = None
    try:
        asked, raw = await _read(request)
        holders = await _holders(request, asked.datasets)
    except InvalidRequest as error:
        return _error(400, str(error), asked)
    everyone = await current_members(request)
    calls = _calls(request.method, path, raw, asked, everyone, holders)
    replies = await ask_members(request, calls)
    replies += [_skipped(member) for member in everyone if member not in dict(calls)]
    if kind == "terms":
        status, body = merge_terms(replies)
    elif kind == "collections":
        status, body = merge_collections(asked, replies)
    else:
        status, body = merge_entries(asked, _returned_schemas(path), replies)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


Raw = list[tuple[str, str]] | dict[str, Any]


async def _read(request: Request) -> tuple[BeaconRequest, Raw]:
    """The request as a node reads it (parsed), and as sent (to forward)."""
    if request.method == "GET":
        items = request.query_params.multi_items()
        return from_query(items), items
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("body", "is not JSON: send a Beacon request body") from None
    return from_body(body), body


async def _holders(request: Request, datasets: Sequence[str]) -> dict[str, str] | None:
    """Which node holds each of ``datasetIds`` (None when none are asked)."""
    if not datasets:
        return None
    return await anyio.to_thread.run_sync(dataset_holders, _engine(request), list(datasets))


def dataset_holders(engine: Engine, accessions: Sequence[str]) -> dict[str, str]:
    """The member holding each released dataset of ``accessions``, from the catalogue;
    :class:`InvalidRequest` naming one the federation does not have."""
    with db.session_scope(engine) as session:
        rows = session.execute(
            select(HubDataset.accession, HubDataset.node_id)
            .join(HubNode, HubNode.id == HubDataset.node_id)
            .where(
                HubDataset.accession.in_(sorted(set(accessions))),
                HubDataset.status == "released",
                HubNode.status == HubNodeStatus.APPROVED,
            )
        ).all()
    holders = {str(accession): str(node) for accession, node in rows}
    unknown = [accession for accession in accessions if accession not in holders]
    if unknown:
        raise InvalidRequest(
            "datasetIds",
            f"no released dataset {unknown[0][:40]!r} in the federation's catalogue: see "
            "/catalogue/search",
        )
    return holders


def _calls(
    method: str,
    path: str,
    raw: Raw,
    asked: BeaconRequest,
    everyone: Sequence[Member],
    holders: dict[str, str] | None,
) -> list[tuple[Member, Call]]:
    """What to ask each node: the request as sent, with the granularity the hub read made
    explicit (a node's own default could differ) and, with ``datasetIds``, only its own."""
    calls = []
    for member in everyone:
        wanted = None
        if holders is not None:
            wanted = [dataset for dataset in asked.datasets if holders[dataset] == member.id]
            if not wanted:
                continue
        if isinstance(raw, dict):
            calls.append((member, Call("POST", path, body=_body_for(raw, asked, wanted))))
        else:
            calls.append((member, Call("GET", path, params=_params_for(raw, asked, wanted))))
    return calls


def _params_for(
    items: list[tuple[str, str]], asked: BeaconRequest, wanted: list[str] | None
) -> list[tuple[str, str]]:
    dropped = {"requestedGranularity"} | ({"datasetIds"} if wanted is not None else set())
    params = [(key, value) for key, value in items if key not in dropped]
    params.append(("requestedGranularity", asked.granularity))
    if wanted is not None:
        params.append(("datasetIds", ",".join(wanted)))
    return params


def _body_for(body: dict[str, Any], asked: BeaconRequest, wanted: list[str] | None) -> Any:
    sent = copy.deepcopy(body)
    query = sent.setdefault("query", {})
    query["requestedGranularity"] = asked.granularity
    if wanted is not None:
        parameters = query.setdefault("requestParameters", {})
        parameters.pop("datasets", None)
        parameters["datasetIds"] = wanted
    return sent


def _skipped(member: Member) -> Reply:
    return Reply(member, "skipped", reason="holds none of the datasetIds asked")


# -- merging ------------------------------------------------------------------------------------


def _meta(
    asked: BeaconRequest | None, returned: Granularity, schemas: list[dict[str, str]]
) -> dict[str, Any]:
    request = asked or BeaconRequest()
    return {
        "beaconId": HUB_BEACON_ID,
        "apiVersion": API_VERSION,
        "returnedSchemas": schemas,
        "returnedGranularity": returned,
        "receivedRequestSummary": request.summary(),
        "testMode": request.test_mode,
    }


def _error(
    status: int,
    message: str,
    asked: BeaconRequest | None,
    replies: Sequence[Reply] = (),
) -> JSONResponse:
    body = _error_body(status, message, asked, replies)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _error_body(
    status: int, message: str, asked: BeaconRequest | None, replies: Sequence[Reply]
) -> dict[str, Any]:
    """A beaconErrorResponse, with each node's outcome when nodes were asked."""
    body: dict[str, Any] = {
        "meta": _meta(asked, "boolean", []),
        "error": {"errorCode": status, "errorMessage": message},
    }
    if replies:
        body["info"] = {"nodes": [reply.report() for reply in replies]}
    return body


def no_answer(asked: BeaconRequest | None, replies: Sequence[Reply]) -> tuple[int, dict[str, Any]]:
    """Nobody answered: the nodes' refusal (a login first), else 503; each node's reason."""
    refused = [reply for reply in replies if reply.state == "refused"]
    if refused:
        statuses = {reply.status for reply in refused}
        status = 401 if 401 in statuses else int(refused[0].status or 403)
        reasons = "; ".join(f"{reply.member.id}: {reply.reason}" for reply in refused)
        return status, _error_body(status, f"no node answered you: {reasons}", asked, replies)
    reasons = "; ".join(
        f"{reply.member.id} {reply.state}: {reply.reason}"
        for reply in replies
        if reply.state != "skipped"
    )
    message = f"no node of the federation answered: {reasons or 'it has no member node'}"
    return 503, _error_body(503, message, asked, replies)


def _answered(replies: Sequence[Reply]) -> list[Reply]:
    return [reply for reply in replies if reply.state == "answered" and reply.body is not None]


def _granularity(reply: Reply) -> Granularity:
    meta = (reply.body or {}).get("meta", {})
    given = meta.get("returnedGranularity") if isinstance(meta, dict) else None
    return given if given in ("boolean", "count", "record") else "boolean"


def _node_info(reply: Reply) -> dict[str, Any]:
    info = (reply.body or {}).get("info")
    return info if isinstance(info, dict) else {}


def merge_entries(
    asked: BeaconRequest, schemas: list[dict[str, str]], replies: Sequence[Reply]
) -> tuple[int, dict[str, Any]]:
    """Boolean, count or result-set answers of the nodes as one (module docstring)."""
    answered = _answered(replies)
    if not answered and any(reply.state != "skipped" for reply in replies):
        return no_answer(asked, replies)
    returned: Granularity = max(
        (_granularity(reply) for reply in answered),
        key=LEVEL.__getitem__,
        default=asked.granularity,
    )
    summary: dict[str, Any] = {"exists": any(_exists(reply) for reply in answered)}
    if returned != "boolean":
        summary["numTotalResults"] = sum(
            _total(reply) or 0 for reply in answered if _granularity(reply) != "boolean"
        )
    body: dict[str, Any] = {"meta": _meta(asked, returned, schemas), "responseSummary": summary}
    listed = [item for reply in answered for item in _dataset_answers(reply)]
    if returned == "record":
        sets = [item for reply in answered for item in _result_sets(reply)]
        body["response"] = {"resultSets": sets + [_as_result_set(item) for item in listed]}
    info = _merged_info(replies, answered, listed if returned != "record" else [])
    withheld = _withheld(answered)
    if returned != "boolean" and withheld:
        info["countsWithheld"] = withheld
    body["info"] = info
    handovers = [
        handover for reply in answered for handover in (reply.body or {}).get("beaconHandovers", [])
    ]
    if handovers:
        body["beaconHandovers"] = handovers
    return 200, body


def _exists(reply: Reply) -> bool:
    summary = (reply.body or {}).get("responseSummary", {})
    return isinstance(summary, dict) and summary.get("exists") is True


def _total(reply: Reply) -> int | None:
    summary = (reply.body or {}).get("responseSummary", {})
    total = summary.get("numTotalResults") if isinstance(summary, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def _result_sets(reply: Reply) -> list[dict[str, Any]]:
    """A node's result sets, each naming the node in its ``info``."""
    response = (reply.body or {}).get("response", {})
    sets = response.get("resultSets", []) if isinstance(response, dict) else []
    return [
        {**item, "info": {**item.get("info", {}), "node": reply.member.tag()}}
        for item in sets
        if isinstance(item, dict)
    ]


def _dataset_answers(reply: Reply) -> list[dict[str, Any]]:
    """A node's per-dataset answers of a boolean or count response, each naming the node."""
    listed = _node_info(reply).get("datasets", [])
    return [
        {**item, "node": reply.member.tag()}
        for item in listed
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]


def _as_result_set(item: dict[str, Any]) -> dict[str, Any]:
    """A dataset's count or yes/no answer as a result set without records."""
    info = {"returnedGranularity": item.get("returnedGranularity", "boolean"), "node": item["node"]}
    if item.get("countIsExact") is False:
        info["countIsExact"] = False
    if item.get("note"):
        info["note"] = item["note"]
    count = item.get("count")
    return {
        "id": item["id"],
        "setType": "dataset",
        "exists": item.get("exists") is True,
        "resultsCount": count if isinstance(count, int) else 0,
        "results": [],
        "info": info,
    }


def _withheld(answered: Sequence[Reply]) -> list[str]:
    """Datasets whose count is not in ``numTotalResults``: those a node withheld, and every
    dataset of a node that answered yes/no only."""
    withheld: list[str] = []
    for reply in answered:
        named = _node_info(reply).get("countsWithheld", [])
        withheld += [item for item in named if isinstance(item, str)]
        if _granularity(reply) == "boolean":
            withheld += [item["id"] for item in _dataset_answers(reply)]
    return list(dict.fromkeys(withheld))


def _merged_info(
    replies: Sequence[Reply], answered: Sequence[Reply], listed: list[dict[str, Any]]
) -> dict[str, Any]:
    info: dict[str, Any] = {"nodes": [reply.report() for reply in replies]}
    if listed:
        info["datasets"] = listed
    warnings = [
        f"{reply.member.id}: {warning}"
        for reply in answered
        for warning in _node_info(reply).get("warnings", [])
        if isinstance(warning, str)
    ]
    warnings += [
        f"{reply.member.name} ({reply.member.country}) is {reply.state}: {reply.reason}; its "
        "datasets are not in this answer"
        for reply in replies
        if reply.state in ("late", "down", "error")
    ]
    if warnings:
        info["warnings"] = warnings
    refused = [
        f"{reply.member.id}: {item}"
        for reply in answered
        for item in _node_info(reply).get("notAnswered", [])
        if isinstance(item, str)
    ]
    refused += [
        f"{reply.member.id}: {reply.reason}" for reply in replies if reply.state == "refused"
    ]
    if refused:
        info["notAnswered"] = refused
    return info


def merge_collections(asked: BeaconRequest, replies: Sequence[Reply]) -> tuple[int, dict[str, Any]]:
    """Datasets or cohorts of every node, each record naming its node in ``info``."""
    answered = _answered(replies)
    if not answered and any(reply.state != "skipped" for reply in replies):
        return no_answer(asked, replies)
    records: list[dict[str, Any]] = []
    for reply in answered:
        response = (reply.body or {}).get("response", {})
        found = response.get("collections", []) if isinstance(response, dict) else []
        records += [
            {**item, "info": {**item.get("info", {}), "node": reply.member.tag()}}
            for item in found
            if isinstance(item, dict)
        ]
    meta = (answered[0].body or {}).get("meta", {}) if answered else {}
    schemas = meta.get("returnedSchemas", []) if isinstance(meta, dict) else []
    body = {
        "meta": _meta(asked, "record", schemas),
        "responseSummary": {
            "exists": any(_exists(reply) for reply in answered),
            "numTotalResults": sum(_total(reply) or 0 for reply in answered),
        },
        "response": {"collections": records},
        "info": _merged_info(replies, answered, []),
    }
    return 200, body


def merge_terms(replies: Sequence[Reply]) -> tuple[int, dict[str, Any]]:
    """The union of the nodes' filtering terms (their scopes united) and resources."""
    answered = _answered(replies)
    if not answered and any(reply.state != "skipped" for reply in replies):
        return no_answer(None, replies)
    terms: dict[tuple[str, str], dict[str, Any]] = {}
    resources: dict[str, dict[str, Any]] = {}
    for reply in answered:
        response = (reply.body or {}).get("response", {})
        if not isinstance(response, dict):
            continue
        for term in response.get("filteringTerms", []):
            _add_term(terms, term)
        for resource in response.get("resources", []):
            if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                resources.setdefault(resource["id"], resource)
    body = {
        "meta": _informational_meta(),
        "response": {"filteringTerms": list(terms.values()), "resources": list(resources.values())},
        "info": _merged_info(replies, answered, []),
    }
    return 200, body


def _add_term(terms: dict[tuple[str, str], dict[str, Any]], term: Any) -> None:
    if not isinstance(term, dict) or not isinstance(term.get("id"), str):
        return
    key = (str(term.get("type", "")), term["id"])
    known = terms.get(key)
    if known is None:
        terms[key] = dict(term)
        return
    scopes = [*known.get("scopes", []), *term.get("scopes", [])]
    if scopes:
        known["scopes"] = list(dict.fromkeys(scopes))
