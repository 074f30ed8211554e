"""The Beacon v2 routes of a node, under ``/beacon``: thin, over :mod:`genofed.beacon.responses`.

Mount with ``app.include_router(router)``; like the other routers it reads the node's Settings from
``app.state.settings`` and its engine from ``app.state.node.engine``.

- framework: ``/``, ``/info``, ``/service-info``, ``/configuration``, ``/map``, ``/entry_types``,
  ``/filtering_terms``;
- entry types: ``/g_variants``, ``/individuals``, ``/biosamples``, ``/runs``, ``/analyses``,
  ``/datasets``, ``/cohorts``, each with ``/{id}`` and the lookups of
  :data:`genofed.beacon.framework.LOOKUPS` (``/g_variants/{id}/individuals``, ...), and
  ``/individuals/filtering_terms``, ``/datasets/{id}/filtering_terms``,
  ``/cohorts/{id}/filtering_terms``.

Every route takes GET (query parameters) and POST (a Beacon request body). A caller without a
token is anonymous; a bearer token makes them registered, and their visas (the node's grants and
``X-GA4GH-Passport``) name the controlled datasets they may read. Every error is a
``beaconErrorResponse``: 400 for a request the beacon cannot read, 401 for a bad token or a query
that needs a login, 429 when the caller's information budget is spent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from genofed.access import visas
from genofed.access.http import bearer_identity
from genofed.beacon import framework, guard, responses
from genofed.beacon.framework import BY_PATH, ENTRY_TYPES, LOOKUPS, beacon_settings
from genofed.beacon.ontology import load_ontologies
from genofed.beacon.requests import BeaconRequest, InvalidRequest, from_body, from_query
from genofed.config import Settings
from genofed.dataout.api import PASSPORT_HEADER, in_session
from genofed.db import for_writing
from genofed.errors import GenofedError

router = APIRouter(prefix="/beacon", tags=["beacon"])
BOTH = ["GET", "POST"]
Work = Callable[[Session, responses.Context], dict[str, Any] | responses.Refused]


# -- framework ----------------------------------------------------------------------------------


def _framework(build: Callable[[Settings], dict[str, Any]]) -> Callable[[Request], Awaitable[Any]]:
    async def endpoint(request: Request) -> Any:
        return build(request.app.state.settings)

    endpoint.__doc__ = build.__doc__
    return endpoint


for _path, _build in (
    ("", framework.info),
    ("/", framework.info),
    ("/info", framework.info),
    ("/service-info", framework.service_info),
    ("/configuration", framework.configuration),
    ("/map", framework.beacon_map),
    ("/entry_types", framework.entry_types),
):
    router.add_api_route(
        _path, _framework(_build), methods=BOTH, include_in_schema=_path != "/", name=_path
    )


# -- queries ------------------------------------------------------------------------------------


async def _respond(request: Request, work: Work, *, write: bool = True) -> JSONResponse:
    """Read the request and its caller, run ``work`` in one transaction, and answer; every
    refusal becomes a beaconErrorResponse."""
    settings: Settings = request.app.state.settings
    asked: BeaconRequest | None = None
    try:
        asked = await _read(request, settings)
        context = await _context(request, settings, asked)
        engine = request.app.state.node.engine
        body = await in_session(
            for_writing(engine) if write else engine, lambda s: work(s, context)
        )
    except InvalidRequest as error:
        return _error(settings, 400, str(error), asked)
    except HTTPException as error:  # the bearer token
        headers = dict(error.headers or {})
        return _error(settings, error.status_code, str(error.detail), asked, headers)
    except GenofedError as error:
        message = f"the beacon cannot answer now ({type(error).__name__}): try again later"
        return _error(settings, 503, message, asked)
    if isinstance(body, responses.Refused):
        return _refusal(settings, body.error, asked)
    return JSONResponse(body)


def _refusal(settings: Settings, error: GenofedError, asked: BeaconRequest | None) -> JSONResponse:
    """The guard's refusal: 401 to log in, 429 when the information budget is spent."""
    if isinstance(error, guard.LoginRequired):
        return _error(settings, 401, str(error), asked, {"WWW-Authenticate": "Bearer"})
    return _error(settings, 429, str(error), asked)


async def _read(request: Request, settings: Settings) -> BeaconRequest:
    default = beacon_settings(settings).default_granularity
    if request.method == "GET":
        return from_query(request.query_params.multi_items(), default=default)
    raw = await request.body()
    if not raw.strip():
        return from_body({}, default=default)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("body", "is not JSON: send a Beacon request body") from None
    return from_body(body, default=default)


async def _context(request: Request, settings: Settings, asked: BeaconRequest) -> responses.Context:
    """Who asks: anonymous without a token; otherwise their subject and readable datasets."""
    files = beacon_settings(settings).obo_files
    ontologies = await anyio.to_thread.run_sync(load_ontologies, files)  # the first load reads
    if not request.headers.get("authorization"):
        return responses.Context(settings, ontologies, asked, guard.Caller.anonymous())
    identity = await bearer_identity(request)
    presented = visas.presented_visas(request.headers.getlist(PASSPORT_HEADER))
    permissions = await in_session(
        request.app.state.node.engine,
        lambda s: visas.permissions(s, settings, identity.subject, presented),
    )
    refused = [f"visa refused: {reason}" for reason in permissions.refused]
    return responses.Context(settings, ontologies, asked, guard.Caller.of(permissions), refused)


def _error(
    settings: Settings,
    status: int,
    message: str,
    asked: BeaconRequest | None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = responses.error_response(settings, status, message, asked)
    return JSONResponse(body, status_code=status, headers=headers)


def _entries(entry: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        wanted = BY_PATH[entry].id
        return await _respond(request, lambda s, c: responses.answer(s, c, wanted, None))

    endpoint.__doc__ = f"Query {BY_PATH[entry].name.lower()}, per dataset."
    return endpoint


def _related(source: str, target: str) -> Callable[[Request, str], Awaitable[JSONResponse]]:
    """``/<source>/{id}/<target>``; ``/<source>/{id}`` is the record itself (target = source)."""

    async def endpoint(request: Request, id: str) -> JSONResponse:
        wanted = BY_PATH[target].id
        lookup = responses.Lookup(BY_PATH[source].id, id)
        return await _respond(request, lambda s, c: responses.answer(s, c, wanted, lookup))

    endpoint.__doc__ = (
        f"One of the {source}, by id."
        if source == target
        else f"The {target} of one of the {source}."
    )
    return endpoint


def _terms(entry: str | None) -> Callable[[Request], Awaitable[JSONResponse]]:
    scope = ENTRY_TYPES[BY_PATH[entry].id] if entry else None

    async def endpoint(request: Request) -> JSONResponse:
        return await _respond(request, lambda s, c: responses.terms(s, c, scope, None), write=False)

    endpoint.__doc__ = "The filters this beacon understands, and their ontologies."
    return endpoint


def _terms_of(entry: str) -> Callable[[Request, str], Awaitable[JSONResponse]]:
    scope = ENTRY_TYPES[BY_PATH[entry].id]

    async def endpoint(request: Request, id: str) -> JSONResponse:
        return await _respond(request, lambda s, c: responses.terms(s, c, scope, id), write=False)

    endpoint.__doc__ = f"The filters of one of the {entry}: its individuals' terms."
    return endpoint


router.add_api_route("/filtering_terms", _terms(None), methods=BOTH)
router.add_api_route("/individuals/filtering_terms", _terms("individuals"), methods=BOTH)
router.add_api_route("/datasets/{id}/filtering_terms", _terms_of("datasets"), methods=BOTH)
router.add_api_route("/cohorts/{id}/filtering_terms", _terms_of("cohorts"), methods=BOTH)
for _path in BY_PATH:
    router.add_api_route(f"/{_path}", _entries(_path), methods=BOTH)
    router.add_api_route(f"/{_path}/{{id}}", _related(_path, _path), methods=BOTH)
    for _target in LOOKUPS.get(_path, ()):
        router.add_api_route(f"/{_path}/{{id}}/{_target}", _related(_path, _target), methods=BOTH)
