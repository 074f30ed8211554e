"""Access across borders: one application at the hub for datasets held by several nodes.

``POST /access/requests`` on the hub takes what a node's ``POST /access/requests`` takes
(datasets, title, purpose in DUO terms, duration) for datasets of any members. The catalogue
says which node holds each dataset; each node gets its part, as a request of its own to its own
DAC, sent with the requester's bearer token unchanged (each member trusts the others' tokens,
see :mod:`genofed.federation.node_sync`: the requester is known there as ``user@<their node>``).
The answer puts the parts together: per node, the request the node created (its id, items and
the DUO check of each item) or why there is none.

``GET /access/requests`` asks every member for the caller's requests and lists them together,
each naming its node, newest first: the decisions of every DAC in one view.

The hub keeps nothing: the requests, decisions and grants live at the nodes that hold the data
(their DACs decide, their grants open the data, their visas say so, and the data is downloaded
from them only), and the hub's answer is built from theirs each time. Parts are not atomic
across nodes: a part a node refuses (an unusable purpose, a dataset it no longer releases) does
not undo the parts other nodes accepted; the answer says which, with status 207 (201 when every
part was created).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from genofed.beacon.requests import InvalidRequest
from genofed.federation.beacon_network import (
    Call,
    Member,
    Reply,
    client_of,
    current_members,
    dataset_holders,
    fan_out,
    forwarded_headers,
)

router = APIRouter(tags=["access"])
PATH = "/access/requests"
MAX_DATASETS = 100


class CrossBorderRequest(BaseModel):
    """What a node's ``POST /access/requests`` takes, for datasets of any members."""

    datasets: list[str] = Field(min_length=1, max_length=MAX_DATASETS)
    title: str = Field(min_length=1, max_length=500)
    purpose: dict[str, Any]
    duration_days: int = Field(ge=1)


@router.post(PATH, response_model=None)
async def create(body: CrossBorderRequest, request: Request) -> JSONResponse:
    """Send each node its part of the request; the parts together (201, or 207 when a part
    was not created)."""
    if not request.headers.get("authorization"):
        return _login_first()
    try:
        holders = await anyio.to_thread.run_sync(
            dataset_holders, request.app.state.hub.engine, body.datasets
        )
    except InvalidRequest as error:
        return JSONResponse({"detail": str(error).split(": ", 1)[-1]}, status_code=404)
    everyone = {member.id: member for member in await current_members(request)}
    parts: dict[str, list[str]] = defaultdict(list)
    for dataset in dict.fromkeys(body.datasets):
        parts[holders[dataset]].append(dataset)
    calls = [
        (everyone[node], Call("POST", PATH, body={**body.model_dump(), "datasets": datasets}))
        for node, datasets in parts.items()
    ]
    replies = await _ask(request, calls)
    return _created(replies, parts)


@router.get(PATH, response_model=None)
async def list_all(request: Request) -> JSONResponse:
    """The caller's requests at every member, newest first, each naming its node."""
    if not request.headers.get("authorization"):
        return _login_first()
    calls = [(member, Call("GET", PATH)) for member in await current_members(request)]
    replies = await _ask(request, calls)
    found = [
        {**item, "node": reply.member.tag()}
        for reply in replies
        if reply.state == "answered"
        for item in _listed(reply)
    ]
    found.sort(key=lambda item: str(item.get("created_at", "")), reverse=True)
    answered = any(reply.state == "answered" for reply in replies)
    status = 200 if answered or not replies else _failure_status(replies)
    body = {"requests": found, "nodes": [reply.report() for reply in replies]}
    return JSONResponse(body, status_code=status)


async def _ask(request: Request, calls: list[tuple[Member, Call]]) -> list[Reply]:
    """The calls with the requester's identity; a DAC's database write may take longer than a
    beacon answer, so the federation's call timeout applies, not the beacon network's."""
    timeout = request.app.state.settings.federation.timeout_seconds
    return await fan_out(client_of(request), calls, forwarded_headers(request), timeout)


def _listed(reply: Reply) -> list[dict[str, Any]]:
    """A node's ``GET /access/requests`` answer: a list of requests."""
    found = (reply.body or {}).get("items")
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _created(replies: list[Reply], parts: dict[str, list[str]]) -> JSONResponse:
    shown = [_part(reply, parts[reply.member.id]) for reply in replies]
    created = [reply for reply in replies if reply.state == "answered"]
    if len(created) == len(replies):
        status = 201
    elif created:
        status = 207
    else:
        status = _failure_status(replies)
    body = {"complete": status == 201, "parts": shown}
    return JSONResponse(body, status_code=status)


def _part(reply: Reply, datasets: list[str]) -> dict[str, Any]:
    part: dict[str, Any] = {"node": reply.member.tag(), "datasets": datasets}
    if reply.state == "answered":
        return {**part, "status": "submitted", "request": reply.body}
    return {**part, "status": reply.state, "httpStatus": reply.status, "detail": reply.reason}


def _failure_status(replies: list[Reply]) -> int:
    """No node did what was asked: the nodes' own status when they refused or rejected it,
    401 first (the token), else 503 (none could be reached)."""
    statuses = [reply.status for reply in replies if reply.status is not None]
    if 401 in statuses:
        return 401
    return statuses[0] if statuses else 503


def _login_first() -> JSONResponse:
    return JSONResponse(
        {
            "detail": "no bearer token: send 'Authorization: Bearer <token>' with a token of "
            "your node ('genofed login --node URL'); the hub passes it to each node"
        },
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )
