"""The federation hub's HTTP API.

Public (anyone may read; only public metadata is here)::

    GET  /service-info                          the hub (a GA4GH service registry)
    GET  /services, /services/types, /services/{id}   approved nodes, service-registry shape
    GET  /catalogue/search?q=&country=&phenotype=&data_type=&assembly=&access=&duo=&page=
    GET  /catalogue/datasets/{node}/{accession}  a dataset's public summary (410 if deprecated)
    GET  /nodes/jwks, /nodes/{id}/jwks           visa-issuing keys of approved nodes
    GET|POST /pathogen/lapis/{organism}/...      LAPIS queries over every replicated pathogen
                                                 record; sequences for users of member nodes
                                                 who accepted the terms (:mod:`.pathogen_hub`)
    GET  /pathogen/organisms, /pathogen/terms, /pathogen/acknowledgements,
         /pathogen/snapshots/{id}

For the caller, asking every member node (their answers merged, each node applying its own
rules to the caller's forwarded ``Authorization`` and ``X-GA4GH-Passport``)::

    GET|POST /beacon/...                         the beacon network (:mod:`.beacon_network`)
    GET|POST /stats/allele_frequency             federated allele frequencies (:mod:`.stats`)
    POST|GET /access/requests                    cross-border access requests
                                                 (:mod:`.access_routing`)

Signed by a node (RFC 9421, see :mod:`genofed.federation.signing`)::

    POST /federation/join        self-signed with the key it registers; pending until approved
    POST /federation/heartbeat   pending or approved; answers what the hub holds of its catalogue
    POST /catalogue/publish      approved nodes only; summaries of released/deprecated datasets
    POST /pathogen/replicate     approved nodes only; their released pathogen records and
                                 revocations (:mod:`.pathogen_hub`)

Routes are thin: :mod:`~genofed.federation.registry` and :mod:`~genofed.federation.catalogue`
do the work in a worker thread (the database is blocking).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from genofed import __version__, db, web
from genofed.access import audit
from genofed.access.tokens import ensure_signing_key
from genofed.config import Settings
from genofed.db.models import HubNode, HubNodeStatus
from genofed.federation import (
    access_routing,
    beacon_network,
    catalogue,
    pathogen_hub,
    registry,
    stats,
)
from genofed.federation.catalogue import CatalogueIndex, InvalidQuery, UnknownDataset
from genofed.federation.guard import DatabaseNonces, read_body, refuse, verify_call
from genofed.federation.hub import HUB_ID, hub_service_info, require_hub
from genofed.federation.signing import (
    KeyLookup,
    SignatureRefused,
    SignedAuth,
    Verified,
    load_private_key,
    public_key_from_text,
    public_key_text,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class HubResources:
    engine: Engine
    index: CatalogueIndex
    nonces: DatabaseNonces
    signing_key: str
    pathogen: pathogen_hub.FederationRecords

    def close(self) -> None:
        self.engine.dispose()


def open_hub(settings: Settings) -> HubResources:
    """Open what the hub needs, refusing to start on a node's directory or an old schema."""
    require_hub(settings)
    engine = db.make_engine(settings.database_url)
    try:
        db.check_schema(engine)
        key = public_key_text(load_private_key(settings.federation.signing_key))
    except BaseException:
        engine.dispose()
        raise
    records = pathogen_hub.FederationRecords(engine)
    return HubResources(engine, CatalogueIndex(), DatabaseNonces(engine), key, records)


def create_hub_app(settings: Settings) -> FastAPI:
    """The hub's API; resources open in the lifespan."""
    app = FastAPI(
        title=f"genofed hub {settings.hub.name}",
        version=__version__,
        lifespan=partial(_lifespan, settings=settings),
    )
    app.state.settings = settings
    app.include_router(_public)
    app.include_router(_signed)
    app.include_router(beacon_network.router)
    app.include_router(stats.router)
    app.include_router(access_routing.router)
    app.include_router(pathogen_hub.hub_router())
    app.include_router(web.hub_router)  # the portal's public pages: catalogue, beacon network
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI, *, settings: Settings) -> AsyncIterator[None]:
    hub = await anyio.to_thread.run_sync(open_hub, settings)
    app.state.hub = hub
    hub.pathogen.start()  # loads the replicated pathogen records in the background
    # the portal's forms and sign-ins are MACed under a key derived from this one
    await anyio.to_thread.run_sync(ensure_signing_key, settings)
    # one client for every call to the nodes, each call signed with the hub's key
    signer = SignedAuth(load_private_key(settings.federation.signing_key), HUB_ID)
    app.state.fanout = beacon_network.open_client(signer)
    try:
        yield
    finally:
        await app.state.fanout.aclose()
        hub.close()


def _hub(request: Request) -> HubResources:
    hub: HubResources = request.app.state.hub
    return hub


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _read(request: Request, work: Callable[[Session], T]) -> T:
    with db.session_scope(_hub(request).engine) as session:
        return work(session)


async def _write(request: Request, work: Callable[[Session], T]) -> T:
    def run() -> T:
        with db.session_scope(db.for_writing(_hub(request).engine)) as session:
            return work(session)

    return await anyio.to_thread.run_sync(run)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in error.errors()
    ]
    return JSONResponse({"detail": "invalid request: " + "; ".join(problems)}, status_code=422)


# -- public: registry -------------------------------------------------------------------------

_public = APIRouter()


@_public.get("/service-info")
def _service_info(request: Request) -> dict[str, Any]:
    """GA4GH service-info of the hub, with the key it signs its calls to nodes with."""
    return hub_service_info(_settings(request))


@_public.get("/services")
def _services(request: Request) -> list[dict[str, Any]]:
    """The approved nodes, each as its service-info plus ``url`` and the hub's view of it."""
    hub_settings = _settings(request).hub
    nodes = _read(request, partial(registry.list_nodes, approved_only=True))
    return [registry.service_entry(node, hub_settings) for node in nodes]


@_public.get("/services/types")
def _service_types(request: Request) -> list[dict[str, Any]]:
    """The service types registered (GA4GH service-registry)."""
    nodes = _read(request, partial(registry.list_nodes, approved_only=True))
    types = {str(node.service_info.get("type")): node.service_info.get("type") for node in nodes}
    return [kind for kind in types.values() if isinstance(kind, dict)]


@_public.get("/services/{service_id}")
def _service(service_id: str, request: Request) -> dict[str, Any]:
    node = _read(request, lambda session: session.get(HubNode, service_id))
    if node is None or node.status is not HubNodeStatus.APPROVED:
        raise HTTPException(404, f"no approved node {service_id!r} in this registry")
    return registry.service_entry(node, _settings(request).hub)


@_public.get("/nodes/jwks")
def _all_jwks(request: Request) -> dict[str, list[dict[str, Any]]]:
    """The visa-issuing keys of every approved node: verify a visa from anywhere in the
    federation with this one key set (keys are told apart by ``kid``)."""
    nodes = _read(request, partial(registry.list_nodes, approved_only=True))
    return {"keys": [key for node in nodes for key in node.jwks.get("keys", [])]}


@_public.get("/nodes/{node_id}/jwks")
def _node_jwks(node_id: str, request: Request) -> dict[str, Any]:
    """One approved node's visa-issuing keys (a trusted issuer's ``jwks_url``)."""
    node = _read(request, lambda session: session.get(HubNode, node_id))
    if node is None or node.status is not HubNodeStatus.APPROVED:
        raise HTTPException(404, f"no approved node {node_id!r} at this hub")
    return node.jwks


# -- public: catalogue ------------------------------------------------------------------------


@_public.get("/catalogue/search")
def _search(
    request: Request,
    q: str = Query("", max_length=500, description="Words every dataset found contains."),
    country: list[str] = Query([], description="ISO country codes of nodes, e.g. BE."),
    phenotype: list[str] = Query(
        [], description="Phenotype or disease terms (HP:, ICD10:, ...), with their descendants."
    ),
    data_type: list[str] = Query([], description="Library strategies or analysis types."),
    assembly: list[str] = Query([], description="GRCh37 or GRCh38."),
    access: list[str] = Query([], description="open, registered or controlled."),
    duo: list[str] = Query([], description="DUO terms of the data-use conditions: GRU, DS, ..."),
    page: int = Query(1, ge=1, le=100_000),
    page_size: int = Query(20, ge=1, le=catalogue.MAX_PAGE_SIZE),
) -> dict[str, Any]:
    """Search the catalogue: text and facets, paginated. Names the nodes that are not up (their
    datasets are listed as last published)."""
    query = catalogue.Query(
        text=q.strip(),
        country=tuple(country),
        phenotype=tuple(phenotype),
        data_type=tuple(data_type),
        assembly=tuple(assembly),
        access=tuple(access),
        duo=tuple(duo),
        page=page,
        page_size=page_size,
    )
    hub = _hub(request)
    nodes = _read(request, hub.index.refresh)
    try:
        found = hub.index.search(query)
    except InvalidQuery as error:
        raise HTTPException(422, str(error)) from None
    return _search_response(_settings(request), query, found, nodes)


def _search_response(
    settings: Settings, query: catalogue.Query, found: catalogue.SearchResult, nodes: list[HubNode]
) -> dict[str, Any]:
    members = [
        registry.node_status(node, settings.hub)
        for node in nodes
        if node.status is HubNodeStatus.APPROVED
    ]
    health = {node["id"]: node["health"] for node in members}
    unavailable = [
        {
            **node,
            "message": f"{node['name']} ({node['country']}) is {node['health']}: its "
            "datasets are listed as last published and its services may not answer",
        }
        for node in members
        if node["health"] != "up"
    ]
    results = [
        {**result, "node": {**result["node"], "health": health.get(result["node"]["id"])}}
        for result in found.results
    ]
    return {
        "query": {
            "q": query.text,
            **{f: list(v) for f, v in query.filters()},
            "phenotype": list(query.phenotype),
        },
        "total": found.total,
        "page": query.page,
        "page_size": query.page_size,
        "pages": -(-found.total // query.page_size),
        "results": results,
        "facets": found.facets,
        "phenotypes": found.phenotypes,
        "unexpanded_terms": found.unexpanded,
        "nodes": members,
        "unavailable_nodes": unavailable,
    }


@_public.get("/catalogue/datasets/{node_id}/{accession}", response_model=None)
def _dataset(node_id: str, accession: str, request: Request) -> JSONResponse:
    """A dataset's public summary, with its node's standing; 410 once deprecated."""

    def load(session: Session) -> tuple[dict[str, Any], str, dict[str, Any]]:
        row = catalogue.find_dataset(session, node_id, accession)
        node = session.get(HubNode, node_id)
        if node is None or node.status is not HubNodeStatus.APPROVED:
            raise UnknownDataset(f"node {node_id} is not a member of this federation")
        return row.summary, row.status, registry.node_status(node, _settings(request).hub)

    try:
        summary, status, node = _read(request, load)
    except UnknownDataset as error:
        raise HTTPException(404, str(error)) from None
    if status != "released":
        return JSONResponse(
            {"detail": f"dataset {accession} of {node['name']} was deprecated by its node"},
            status_code=410,
        )
    return JSONResponse({"node": node, **summary})


# -- signed by nodes --------------------------------------------------------------------------

_signed = APIRouter()


def _registered_key(hub: HubResources, keyid: str) -> Ed25519PublicKey | None:
    """The key of a registered node (pending ones may heartbeat; routes check the status)."""
    with db.session_scope(hub.engine) as session:
        node = session.get(HubNode, keyid)
        return public_key_from_text(node.signing_key) if node is not None else None


async def _verified(
    request: Request, *, body: bytes | None = None, key_for: KeyLookup | None = None
) -> tuple[Verified, bytes]:
    hub = _hub(request)
    return await verify_call(
        request,
        engine=hub.engine,
        nonces=hub.nonces,
        key_for=key_for or partial(_registered_key, hub),
        window=_settings(request).federation.clock_skew_seconds,
        body=body,
    )


def _parsed(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()[:10]
        )
        raise HTTPException(422, f"invalid request: {problems}") from None


@_signed.post("/federation/join", response_model=None)
async def _join(request: Request) -> JSONResponse:
    """A node applies to join (or re-joins): signed with the key it registers."""
    body = await read_body(request)
    joining = _parsed(registry.JoinRequest, body)
    claimed = public_key_from_text(joining.signing_key)
    await _verified(
        request, body=body, key_for=lambda keyid: claimed if keyid == joining.id else None
    )

    def join(session: Session) -> tuple[dict[str, Any], bool]:
        node, created = registry.join(session, joining)
        audit.record(
            session,
            actor=node.id,
            action="federation.join",
            detail={"status": node.status.value, "url": node.url, "created": created},
        )
        return registry.node_status(node, _settings(request).hub), created

    try:
        node, created = await _write(request, join)
    except registry.KeyConflict as error:
        raise await refuse(
            request, _hub(request).engine, _forbidden(str(error), joining.id, 409)
        ) from None
    settings = _settings(request)
    reply = {"node": node, "hub": hub_service_info(settings)}
    return JSONResponse(reply, status_code=201 if created else 200)


@_signed.post("/federation/heartbeat")
async def _heartbeat(request: Request) -> dict[str, Any]:
    """A registered node is alive; answers its status and what the hub holds of its catalogue."""
    verified, body = await _verified(request)
    beat = _parsed(registry.Heartbeat, body)

    def record(session: Session) -> dict[str, Any]:
        node = _member(session, verified.keyid)
        registry.heartbeat(session, node, beat)
        return {
            "node": registry.node_status(node, _settings(request).hub),
            "catalogue": catalogue.catalogue_state(session, node.id),
            "pathogen": pathogen_hub.state(session, node.id),
        }

    return await _signed_write(request, record)


@_signed.post("/catalogue/publish")
async def _publish(request: Request) -> dict[str, Any]:
    """An approved node publishes summaries of its released and deprecated datasets."""
    verified, body = await _verified(request)
    publication = _parsed(catalogue.Publication, body)

    def store(session: Session) -> dict[str, Any]:
        node = _approved_member(session, verified.keyid)
        counts = catalogue.publish(session, node, publication.datasets)
        audit.record(
            session,
            actor=node.id,
            action="federation.publish",
            detail={"datasets": len(publication.datasets), **counts},
        )
        return {"published": counts, "catalogue": catalogue.catalogue_state(session, node.id)}

    return await _signed_write(request, store)


@_signed.post(pathogen_hub.REPLICATE_PATH)
async def _replicate_pathogen(request: Request) -> dict[str, Any]:
    """An approved node pushes its released pathogen records and revocations."""
    verified, body = await _verified(request)
    batch = _parsed(pathogen_hub.Replication, body)

    def store(session: Session) -> dict[str, Any]:
        node = _approved_member(session, verified.keyid)
        try:
            result = pathogen_hub.apply(session, node, batch)
        except pathogen_hub.ReplicationRefused as error:
            if error.status == 403:
                raise _forbidden(str(error), node.id) from None
            raise HTTPException(error.status, str(error)) from None
        audit.record(
            session,
            actor=node.id,
            action="pathogen.replicate",
            detail={"organism": batch.organism, "through": batch.through, **result["applied"]},
        )
        return result

    result = await _signed_write(request, store)
    await anyio.to_thread.run_sync(partial(_hub(request).pathogen.refresh, wait=False))
    return result


async def _signed_write(request: Request, work: Callable[[Session], T]) -> T:
    """:func:`_write` for a signed call: a refusal inside (403) is logged and audited."""
    try:
        return await _write(request, work)
    except SignatureRefused as error:
        raise await refuse(request, _hub(request).engine, error) from None


def _member(session: Session, keyid: str) -> HubNode:
    """The registered node that signed the call (by exact id, never by name or country)."""
    node = session.get(HubNode, keyid)
    if node is None:  # removed between the signature check and now
        raise _forbidden(f"node {keyid} is no longer registered at this hub", keyid)
    return node


def _approved_member(session: Session, keyid: str) -> HubNode:
    """:func:`_member`, refused (403) unless approved."""
    node = _member(session, keyid)
    if node.status is not HubNodeStatus.APPROVED:
        raise _forbidden(
            f"node {node.id} is {node.status.value}: the hub operator approves it first "
            f"('genofed hub approve {node.id}')",
            node.id,
        )
    return node


def _forbidden(reason: str, keyid: str, status: int = 403) -> SignatureRefused:
    return SignatureRefused(reason, code="forbidden", keyid=keyid, status=status)
