"""A node's side of the federation: join the hub, heartbeat, publish the catalogue, hear the hub.

When ``federation.hub_url`` is set, the node's lifespan runs :class:`SyncLoop`: every
``federation.sync_seconds`` (and at once when the hub notifies it) one :func:`sync_once` joins
the hub if the node has no link to it yet, sends a heartbeat, and, once the node is approved,
publishes the summary of every released or deprecated dataset whose digest or status differs
from what it last published there (``federation_publications``), then sends its pathogen
releases and revocations after the hub's cursor (:mod:`.pathogen_replication`). Everything is
decided from the database, so a node that was stopped, or a hub that was down, catches up by
itself:

- the node restarted: its next heartbeat marks it up again; nothing else is needed;
- the hub forgot the node (its registry was reset, or an operator removed it): the hub refuses
  the heartbeat with ``unknown_key`` and the node joins again (pending approval if removed);
- the hub lost or rolled back catalogue rows: its heartbeat reply carries a digest of what it
  holds for the node; when that is not the node's own, the node publishes everything again.

All calls are signed with the node's request-signing key (``federation.signing_key``) under its
service-info id; the hub's key is pinned at join (or ahead, in ``federation.hub_key``), and
``POST /federation/notify`` accepts only calls signed with it.

Trust in the other members: while the node is approved, each sync also reads the hub's list of
members (``/services``) and trusts each other member as an issuer of tokens and visas
(:func:`member_issuers`): keys from the hub's copy of that member's JWKS (``/nodes/{id}/jwks``,
registered by its signed join, so one member cannot sign as another), tokens of any audience,
the ``requester`` role only, and subjects suffixed with the member's id (``alice`` of the Belgian
node is ``alice@org.genofed.node.be`` here, never this node's own ``alice``). The operator's own
``[[tokens.trusted_issuers]]`` stay as they are and win for an issuer they name; a node without
a hub trusts nobody new, a node no longer approved stops trusting the members, and a hub that
cannot be reached leaves the last list in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import anyio
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, delete, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genofed import __version__, db
from genofed.access import audit
from genofed.access.tokens import jwks
from genofed.config import Settings, TrustedIssuer
from genofed.db.models import FederationLink, FederationPublication, utcnow
from genofed.errors import GenofedError
from genofed.federation import pathogen_replication
from genofed.federation.catalogue import MAX_PUBLICATION, Published, combined_digest
from genofed.federation.guard import REFUSAL_HEADER, DatabaseNonces, verify_call
from genofed.federation.signing import (
    SignedAuth,
    load_private_key,
    public_key_from_text,
    public_key_text,
)
from genofed.federation.summary import build_summary, published_datasets

log = logging.getLogger(__name__)


class FederationError(GenofedError):
    """The hub cannot be reached, or refused what the node sent."""


# -- the node's identity ----------------------------------------------------------------------


def node_id(settings: Settings) -> str:
    """The node's id in the federation: its service-info id, and the key id of its calls."""
    return f"org.genofed.node.{settings.country.lower()}"


def node_service_info(settings: Settings) -> dict[str, Any]:
    """The node's GA4GH service-info, as its ``/service-info`` route gives it."""
    return {
        "id": node_id(settings),
        "name": settings.node_name,
        "type": {"group": "org.ga4gh", "artifact": "genofed-node", "version": __version__},
        "description": "A genofed national node: Crypt4GH archive of sensitive genomic data.",
        "organization": {"name": settings.node_name, "url": settings.http.public_url},
        "version": __version__,
        "country": settings.country,
    }


def join_request(settings: Settings) -> dict[str, Any]:
    """What the node tells the hub when it joins: who it is, where, and its public keys."""
    key = load_private_key(settings.federation.signing_key)
    return {
        "id": node_id(settings),
        "name": settings.node_name,
        "country": settings.country,
        "url": settings.http.public_url.rstrip("/"),
        "service_info": node_service_info(settings),
        "signing_key": public_key_text(key),
        "issuer": settings.tokens.issuer,
        "jwks": jwks(settings),
        "crypt4gh_public_key": settings.crypt4gh.public_key.read_text(),
    }


def hub_url(settings: Settings) -> str:
    return settings.federation.hub_url.strip().rstrip("/")


# -- talking to the hub ------------------------------------------------------------------------


@contextlib.contextmanager
def hub_client(settings: Settings) -> Iterator[httpx.Client]:
    """An HTTP client on the hub whose every request is signed by this node."""
    auth = SignedAuth(load_private_key(settings.federation.signing_key), node_id(settings))
    with httpx.Client(
        base_url=hub_url(settings), auth=auth, timeout=settings.federation.timeout_seconds
    ) as client:
        yield client


def _post(client: httpx.Client, path: str, payload: dict[str, Any]) -> httpx.Response:
    try:
        return client.post(path, json=payload)
    except httpx.HTTPError as error:
        raise FederationError(
            f"the hub at {client.base_url} cannot be reached ({type(error).__name__}): the node "
            "retries at its next sync"
        ) from None


def _refused(response: httpx.Response, doing: str) -> FederationError:
    try:
        detail = str(response.json().get("detail"))
    except ValueError:
        detail = response.text[:200]
    return FederationError(f"the hub refused {doing} ({response.status_code}): {detail}")


def join(settings: Settings, engine: Engine, client: httpx.Client | None = None) -> FederationLink:
    """Join the hub (or join again): send the node's identity and keys, pin the hub's key."""
    if client is None:
        with hub_client(settings) as own:
            return join(settings, engine, own)
    response = _post(client, "/federation/join", join_request(settings))
    if response.status_code not in (200, 201):
        raise _refused(response, "the join")
    reply = response.json()
    hub = reply["hub"]
    key = str(hub["federation"]["signing_key"]["x"])
    pinned = settings.federation.hub_key
    if pinned and pinned != key:
        raise FederationError(
            f"the hub at {hub_url(settings)} signs with another key than federation.hub_key: "
            "it is not the hub you pinned; check the URL with the hub's operator"
        )
    public_key_from_text(key)
    with db.session_scope(db.for_writing(engine)) as session:
        link = session.get(FederationLink, hub_url(settings))
        if link is not None and link.hub_key != key:
            if pinned != key:  # never re-pinned silently: it may not be the hub at all
                raise FederationError(
                    f"the hub at {hub_url(settings)} now signs with another key than the one "
                    "pinned when the node joined: if its operator really changed it, set "
                    f'federation.hub_key = "{key}" in the node\'s configuration'
                )
            session.delete(link)  # the hub changed its key: what it was told starts afresh
            session.flush()
            link = None
        if link is None:
            link = FederationLink(hub_url=hub_url(settings), hub_key=key, joined_at=utcnow())
            session.add(link)
        link.hub_id = str(hub["id"])
        link.status = str(reply["node"]["status"])
        link.last_contact_at = utcnow()
        link.last_error = None
    return link


@dataclass(frozen=True)
class Joined:
    """What ``genofed node join`` tells the operator."""

    node_id: str
    hub_url: str
    status: str
    node_key: str
    hub_key: str


def join_hub(settings: Settings, url: str) -> Joined:
    """Join the hub at ``url`` from the command line (the node need not run)."""
    federation = settings.federation.model_copy(update={"hub_url": url.strip().rstrip("/")})
    settings = settings.model_copy(update={"federation": federation})
    engine = db.make_engine(settings.database_url)
    try:
        db.check_schema(engine)
        link = join(settings, engine)
    finally:
        engine.dispose()
    node_key = public_key_text(load_private_key(settings.federation.signing_key))
    return Joined(node_id(settings), link.hub_url, link.status, node_key, link.hub_key)


# -- one synchronisation ----------------------------------------------------------------------


@dataclass(frozen=True)
class SyncReport:
    """What one :func:`sync_once` did."""

    status: str  # the node's status at the hub
    joined: bool = False
    resynced: bool = False  # the hub's copy differed: everything was published again
    published: int = 0
    members: tuple[TrustedIssuer, ...] = ()  # the other members, to trust (none unless approved)
    pathogen_records: int = 0  # released pathogen records and revocations sent


def sync_once(settings: Settings, engine: Engine) -> SyncReport:
    """Join if needed, heartbeat, and publish what changed; raises FederationError."""
    url = hub_url(settings)
    try:
        with hub_client(settings) as client:
            return _sync(settings, engine, client)
    except FederationError as error:
        _note_error(engine, url, str(error))
        raise


def _sync(settings: Settings, engine: Engine, client: httpx.Client) -> SyncReport:
    joined = False
    if _link(engine, hub_url(settings)) is None:
        join(settings, engine, client)
        joined = True
    beat = {"url": settings.http.public_url.rstrip("/")}
    response = _post(client, "/federation/heartbeat", beat)
    if response.status_code == 401 and response.headers.get(REFUSAL_HEADER) == "unknown_key":
        log.warning(
            "the hub at %s does not know this node any more: joining again", hub_url(settings)
        )
        join(settings, engine, client)
        joined = True
        response = _post(client, "/federation/heartbeat", beat)
    if response.status_code != 200:
        raise _refused(response, "the heartbeat")
    reply = response.json()
    status = str(reply["node"]["status"])
    _note_contact(engine, hub_url(settings), status)
    if status != "approved":
        return SyncReport(status, joined)
    resynced = _forget_if_hub_differs(engine, hub_url(settings), reply["catalogue"])
    published = _publish_changes(settings, engine, client)
    members = tuple(member_issuers(settings, client))
    try:
        replicated = pathogen_replication.replicate(engine, client, reply.get("pathogen"))
    except pathogen_replication.ReplicationError as error:
        raise FederationError(str(error)) from None
    return SyncReport(status, joined, resynced, published, members, replicated.records)


def _link(engine: Engine, url: str) -> FederationLink | None:
    with db.session_scope(engine) as session:
        return session.get(FederationLink, url)


def _note_contact(engine: Engine, url: str, status: str) -> None:
    with db.session_scope(db.for_writing(engine)) as session:
        link = session.get(FederationLink, url)
        if link is not None:
            link.status = status
            link.last_contact_at = utcnow()
            link.last_error = None


def _note_error(engine: Engine, url: str, error: str) -> None:
    with db.session_scope(db.for_writing(engine)) as session:
        link = session.get(FederationLink, url)
        if link is not None:
            link.last_error = error[:2000]


def forget_publications(engine: Engine, url: str) -> None:
    """Publish everything again at the next sync."""
    with db.session_scope(db.for_writing(engine)) as session:
        session.execute(delete(FederationPublication).where(FederationPublication.hub_url == url))


def _forget_if_hub_differs(engine: Engine, url: str, held: dict[str, Any]) -> bool:
    with db.session_scope(engine) as session:
        rows = session.execute(
            select(
                FederationPublication.dataset_accession,
                FederationPublication.status,
                FederationPublication.digest,
            ).where(FederationPublication.hub_url == url)
        ).all()
    if held.get("digest") == combined_digest((a, s, d) for a, s, d in rows):
        return False
    log.warning(
        "the hub at %s holds %s of this node's datasets, not the %d it was sent: publishing all",
        url,
        held.get("datasets"),
        len(rows),
    )
    forget_publications(engine, url)
    return True


def _changes(settings: Settings, engine: Engine, url: str) -> list[Published]:
    """Summaries that differ from what the hub was last sent (deprecated datasets the hub never
    saw are not sent: there is nothing to remove)."""
    changed = []
    with db.session_scope(engine) as session:
        sent = {
            row.dataset_accession: row
            for row in session.scalars(
                select(FederationPublication).where(FederationPublication.hub_url == url)
            )
        }
        for dataset in published_datasets(session):
            summary = build_summary(session, settings, dataset)
            before = sent.get(summary.accession)
            if before is None and summary.status == "deprecated":
                continue
            digest = summary.digest()
            if before is None or (before.digest, before.status) != (digest, summary.status):
                changed.append(Published(digest=digest, summary=summary))
    return changed


def _publish_changes(settings: Settings, engine: Engine, client: httpx.Client) -> int:
    url = hub_url(settings)
    changed = _changes(settings, engine, url)
    for start in range(0, len(changed), MAX_PUBLICATION):
        batch = changed[start : start + MAX_PUBLICATION]
        payload = {"datasets": [item.model_dump(mode="json") for item in batch]}
        response = _post(client, "/catalogue/publish", payload)
        if response.status_code != 200:
            raise _refused(response, "the catalogue publication")
        _record(engine, url, batch)
    if changed:
        log.info("published %d dataset summaries to the hub at %s", len(changed), url)
    return len(changed)


def _record(engine: Engine, url: str, batch: list[Published]) -> None:
    with db.session_scope(db.for_writing(engine)) as session:
        for item in batch:
            row = session.get(FederationPublication, (url, item.summary.accession))
            if row is None:
                row = FederationPublication(hub_url=url, dataset_accession=item.summary.accession)
                session.add(row)
            row.status = item.summary.status
            row.digest = item.digest
            row.published_at = utcnow()
            audit.record(
                session,
                actor="federation",
                action="federation.publish",
                dataset=item.summary.accession,
                detail={"hub": url, "status": item.summary.status},
            )


# -- trusting the other members ----------------------------------------------------------------

MEMBER_ROLES = ["requester"]  # what another member's user may do here: ask, never decide


def member_issuers(settings: Settings, client: httpx.Client) -> list[TrustedIssuer]:
    """The other approved members as issuers this node trusts for tokens and visas.

    Why each choice (see the module docstring): keys from the hub's per-member JWKS, not the
    union at ``/nodes/jwks`` (with the union, any member's key would verify a token claiming to
    be another's); no audience check, since a member's tokens name that member as audience and
    the hub forwards them unchanged; ``requester`` only; subjects suffixed with the member's id.
    """
    try:
        response = client.get("/services")
    except httpx.HTTPError as error:
        raise FederationError(
            f"the hub's list of members cannot be read ({type(error).__name__}): the node "
            "retries at its next sync"
        ) from None
    if response.status_code != 200:
        raise _refused(response, "the list of members")
    entries = response.json()
    if not isinstance(entries, list):
        raise FederationError("the hub's /services is not a list of members")
    found = (_member_issuer(settings, entry) for entry in entries if isinstance(entry, dict))
    return [trusted for trusted in found if trusted is not None]


def _member_issuer(settings: Settings, entry: dict[str, Any]) -> TrustedIssuer | None:
    """One entry of ``/services`` as a trusted issuer; None for this node or an unusable entry."""
    member, federation = entry.get("id"), entry.get("federation")
    if not isinstance(member, str) or member == node_id(settings):
        return None
    if not isinstance(federation, dict):
        return None
    issuer, keys = federation.get("issuer"), federation.get("jwks_url")
    if not isinstance(issuer, str) or not issuer or issuer == settings.tokens.issuer:
        return None
    if not isinstance(keys, str) or not keys.startswith("/nodes/"):
        return None  # keys are taken from the hub only, never from a URL a member gives
    return TrustedIssuer(
        issuer=issuer,
        jwks_url=f"{hub_url(settings)}{keys}",
        accept=["tokens", "visas"],
        default_roles=MEMBER_ROLES,
        subject_suffix=f"@{member}",
    )


def trust_members(
    settings: Settings, configured: list[TrustedIssuer], members: tuple[TrustedIssuer, ...]
) -> None:
    """Make the node trust ``configured`` (the operator's) and ``members``; an issuer the
    operator configured keeps the operator's terms. One assignment, so a request verifying a
    token at the same time sees the old list or the new one, never half of it."""
    own = {trusted.issuer for trusted in configured}
    chosen = [*configured, *(member for member in members if member.issuer not in own)]
    settings.tokens.trusted_issuers = chosen


# -- the loop in the node's lifespan ----------------------------------------------------------


class SyncLoop:
    """Runs :func:`sync_once` every ``federation.sync_seconds``, or sooner when woken."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._problem: str | None = None
        self._configured = list(settings.tokens.trusted_issuers)  # the operator's own

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="federation-sync")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        trust_members(self.settings, self._configured, ())  # the trust lasts as long as the loop

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            await self._cycle()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.federation.sync_seconds)

    async def _cycle(self) -> None:
        try:
            report = await anyio.to_thread.run_sync(sync_once, self.settings, self.engine)
        except FederationError as error:
            self._tell(str(error))
        except Exception as error:  # a bug or the database: log it, keep the node serving
            log.exception("federation sync failed")
            self._tell(f"{type(error).__name__}: {error}", logged=True)
        else:
            trust_members(self.settings, self._configured, report.members)
            if self._problem is not None:
                log.info("the hub at %s answers again", hub_url(self.settings))
            self._problem = None
            if report.joined:
                log.info("joined the hub at %s: %s", hub_url(self.settings), report.status)

    def _tell(self, problem: str, *, logged: bool = False) -> None:
        """Log a problem once, not at every cycle while it lasts."""
        if problem != self._problem and not logged:
            log.warning("%s", problem)
        self._problem = problem


def start_federation(app: FastAPI, settings: Settings) -> SyncLoop | None:
    """Start the sync loop when the node has a hub (call in the lifespan, after the node's
    resources opened); None when ``federation.hub_url`` is empty."""
    if not hub_url(settings):
        return None
    loop = SyncLoop(settings, app.state.node.engine)
    app.state.federation = loop
    loop.start()
    return loop


# -- the hub's calls to the node ---------------------------------------------------------------

router = APIRouter(tags=["federation"])


class Notice(BaseModel):
    event: Literal["approved", "resync"]


def _hub_key(engine: Engine, settings: Settings, keyid: str) -> Ed25519PublicKey | None:
    """The pinned key of this node's hub, if ``keyid`` is its id."""
    url = hub_url(settings)
    link = _link(engine, url) if url else None
    if link is None or link.hub_id != keyid:
        return None
    return public_key_from_text(link.hub_key)


def _nonces(app: FastAPI, engine: Engine) -> DatabaseNonces:
    nonces: DatabaseNonces | None = getattr(app.state, "federation_nonces", None)
    if nonces is None:
        nonces = app.state.federation_nonces = DatabaseNonces(engine)
    return nonces


class HubSignatureCheck:
    """ASGI middleware: a call that says it is signed (``Signature-Input``) must verify against
    the pinned hub key, whatever route it is for. The hub signs every call it fans out (beacon
    network, statistics, access requests); the node's public routes also answer unsigned
    callers, but a forged or replayed hub call is refused (401) and audited, never served.

    Plain ASGI rather than an ``http`` middleware: unsigned requests (uploads included) pass
    through untouched, streaming and disconnects as before; a signed one is read whole (it is a
    small JSON query), verified, then replayed to the route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] == NOTIFY_PATH  # the notice route verifies its calls itself
            or not any(name == b"signature-input" for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        body = await _whole_body(receive)
        if body is None:
            return  # the caller went away
        refused = await _refusal(scope, body)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive), send)


async def _whole_body(receive: Receive) -> bytes | None:
    parts, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(parts)


async def _refusal(scope: Scope, body: bytes) -> JSONResponse | None:
    """None when the call verifies; else the 401 answer (already logged and audited)."""
    app: FastAPI = scope["app"]
    settings: Settings = app.state.settings
    engine: Engine = app.state.node.engine
    try:
        await verify_call(
            Request(scope),
            engine=engine,
            nonces=_nonces(app, engine),
            key_for=partial(_hub_key, engine, settings),
            window=settings.federation.clock_skew_seconds,
            body=body,
        )
    except HTTPException as refused:
        return JSONResponse(
            {"detail": refused.detail}, status_code=refused.status_code, headers=refused.headers
        )
    return None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the route the body already read, then what follows."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


NOTIFY_PATH = "/federation/notify"


@router.post(NOTIFY_PATH, status_code=202)
async def notify(request: Request) -> dict[str, str]:
    """The hub tells the node something changed for it (signed with the pinned hub key):
    ``approved`` (publish now) or ``resync`` (publish everything again)."""
    settings: Settings = request.app.state.settings
    engine: Engine = request.app.state.node.engine
    _, body = await verify_call(
        request,
        engine=engine,
        nonces=_nonces(request.app, engine),
        key_for=partial(_hub_key, engine, settings),
        window=settings.federation.clock_skew_seconds,
    )
    try:
        notice = Notice.model_validate_json(body)
    except ValidationError:
        raise HTTPException(422, "unknown event: expected approved or resync") from None
    if notice.event == "resync":
        await anyio.to_thread.run_sync(forget_publications, engine, hub_url(settings))
    loop: SyncLoop | None = getattr(request.app.state, "federation", None)
    if loop is not None:
        loop.wake()
    return {"event": notice.event, "detail": "the node synchronises with the hub now"}
