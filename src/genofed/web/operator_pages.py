"""The node operator's pages: the pipeline dashboard and the audit log viewer.

Both need the ``operator`` role. The dashboard shows what ``genofed archive status`` and
``genofed archive errors`` print (files per state, queue depths, the error queue with reasons)
and the files stopped in the error state with their error, and the node's federation: its hub,
where it stands there (as the sync loop last heard) and the members' health from the hub's
``/services``. The audit viewer filters entries as
``genofed audit show`` does and verifies the hash chain as ``genofed audit verify`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
import httpx
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genofed import db
from genofed.access import audit
from genofed.archive.queue import FailedMessage, Queue
from genofed.config import Settings
from genofed.db.models import FederationLink
from genofed.federation.node_sync import hub_url
from genofed.web import render
from genofed.web.routing import PortalRoute
from genofed.web.session import Visitor, acting, engine_of, viewing
from genofed.web.work import reading

OPERATOR = "operator"
PAGE_SIZE = 50
ERRORS_SHOWN = 50
HUB_TIMEOUT_S = 5.0
router = APIRouter(route_class=PortalRoute)
operating = viewing(OPERATOR, doing="Looking after the node")
requeuing = acting(OPERATOR, doing="Requeuing failed pipeline messages")


# -- the pipeline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """A named number, with the largest of its group for the bar beside it."""

    name: str
    count: int
    largest: int


def counts(pairs: dict[str, int]) -> list[Count]:
    largest = max(pairs.values(), default=0)
    return [Count(name, count, max(largest, 1)) for name, count in sorted(pairs.items())]


@dataclass(frozen=True)
class StoppedFile:
    id: str
    accession: str | None
    submitter: str
    error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class StorageUse:
    """What the node keeps, as its database records it (no walk over the stores)."""

    archived_files: int
    archived_bytes: int
    backed_up_files: int
    genomes: int
    genome_bytes: int  # compressed, as stored


@dataclass
class Pipeline:
    """What the dashboard shows; ``queue_error`` when the queue could not be read."""

    states: list[Count] = field(default_factory=list)
    stopped: list[StoppedFile] = field(default_factory=list)
    depths: list[Count] = field(default_factory=list)
    failed: list[FailedMessage] = field(default_factory=list)
    queue_error: str | None = None
    genomes: list[Count] = field(default_factory=list)  # pathogen entries per state
    storage: StorageUse | None = None


def storage_use(session: Session) -> StorageUse:
    files, genomes = db.ArchiveFile, db.PathogenEntry
    archived = session.execute(
        select(
            func.count(files.archive_path),
            func.coalesce(func.sum(files.archive_size), 0),
            func.count(files.backup_path),
        )
    ).one()
    stored = session.execute(
        select(func.count(), func.coalesce(func.sum(func.length(genomes.sequence)), 0))
    ).one()
    return StorageUse(*(int(value or 0) for value in (*archived, *stored)))


def genome_states(session: Session) -> dict[str, int]:
    """Pathogen entries per state, processed ones per outcome (``processed: warnings``)."""
    entry = db.PathogenEntry
    rows = session.execute(
        select(entry.state, entry.outcome, func.count()).group_by(entry.state, entry.outcome)
    ).all()
    found: dict[str, int] = {}
    for state, outcome, count in rows:
        name = str(getattr(state, "value", state))
        if name == "processed" and outcome:
            name = f"processed: {outcome}"
        found[name] = found.get(name, 0) + int(count)
    return found


def file_states(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(db.ArchiveFile.state, func.count()).group_by(db.ArchiveFile.state)
    ).all()
    return {str(getattr(state, "value", state)): int(count) for state, count in rows}


def stopped_files(session: Session) -> list[StoppedFile]:
    """The newest files in the error state, with the reason each stopped."""
    found = session.scalars(
        select(db.ArchiveFile)
        .where(db.ArchiveFile.state == db.FileState.ERROR)
        .order_by(db.ArchiveFile.updated_at.desc())
        .limit(ERRORS_SHOWN)
    )
    return [
        StoppedFile(file.id, file.accession, file.submitter, file.error, file.updated_at)
        for file in found
    ]


async def read_queue(queue: Queue, pipeline: Pipeline) -> None:
    """Queue depths and the error queue; a broken broker is shown, not a failed page."""
    try:
        pipeline.depths = counts(await queue.depths())
        pipeline.failed = await queue.failed(limit=ERRORS_SHOWN)
    except Exception as error:  # the broker's own errors vary: show any of them
        pipeline.queue_error = f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Member:
    """A member node as the hub's registry sees it."""

    name: str
    country: str
    health: str
    last_heartbeat: str | None


@dataclass
class Federation:
    """The node's membership: its hub, its link row (None before the first join) and the
    members' health; ``hub_error`` when the hub's registry could not be read."""

    hub_url: str = ""
    link: FederationLink | None = None
    members: list[Member] = field(default_factory=list)
    hub_error: str | None = None


def federation_link(session: Session, url: str) -> FederationLink | None:
    """Where the node stands at ``url``, as the sync loop last recorded it (detached copy)."""
    link = session.get(FederationLink, url) if url else None
    if link is not None:
        session.expunge(link)
    return link


async def read_members(federation: Federation) -> None:
    """The members' health from the hub's ``/services``; a dead hub is shown, not a failure."""
    try:
        async with httpx.AsyncClient(timeout=HUB_TIMEOUT_S) as client:
            response = await client.get(f"{federation.hub_url}/services")
        response.raise_for_status()
        listed = response.json()
    except (httpx.HTTPError, ValueError) as error:
        federation.hub_error = f"{type(error).__name__}: {error}"
        return
    for entry in listed if isinstance(listed, list) else []:
        seen = entry.get("federation", {}) if isinstance(entry, dict) else {}
        if isinstance(entry, dict) and isinstance(seen, dict):
            federation.members.append(
                Member(
                    str(entry.get("name", entry.get("id", ""))),
                    str(entry.get("country", "")),
                    str(seen.get("health", "unknown")),
                    seen.get("last_heartbeat")
                    if isinstance(seen.get("last_heartbeat"), str)
                    else None,
                )
            )


@router.get("/pipeline")
async def pipeline(request: Request, visitor: Annotated[Visitor, Depends(operating)]) -> Response:
    """Files per state, stopped files, queue depths, the error queue with reasons, and the
    node's federation."""
    settings: Settings = request.app.state.settings
    federation = Federation(hub_url(settings))

    def from_database() -> Pipeline:
        with reading(request) as session:
            federation.link = federation_link(session, federation.hub_url)
            return Pipeline(
                counts(file_states(session)),
                stopped_files(session),
                genomes=counts(genome_states(session)),
                storage=storage_use(session),
            )

    shown = await anyio.to_thread.run_sync(from_database)
    await read_queue(request.app.state.queue, shown)
    if federation.hub_url:
        await read_members(federation)
    return render.page(
        request,
        "pipeline.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Pipeline",
        context={"pipeline": shown, "federation": federation, "body_text": _body_text},
    )


@router.post("/pipeline/requeue")
async def requeue(request: Request, visitor: Annotated[Visitor, Depends(requeuing)]) -> Response:
    """Send the error queue's messages back to their stages (``genofed archive requeue``)."""
    try:
        count = await request.app.state.queue.requeue_failed()
    except Exception as error:  # the broker's own errors vary: show any of them
        problem = f"the queue cannot be reached ({type(error).__name__}: {error}); try again"
        return render.redirect(request, "/pipeline", render.Flash("error", problem))
    await anyio.to_thread.run_sync(
        lambda: audit.append(
            engine_of(request),
            actor=visitor.subject,
            action="pipeline.requeue",
            outcome="allowed",
            detail={"messages": count},
        )
    )
    done = f"{count} message{'s' if count != 1 else ''} sent back to their stages."
    return render.redirect(request, "/pipeline", render.Flash("ok", done))


def _body_text(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True)[:300]


# -- the audit log ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """The viewer's filters as typed, and the problem with one that cannot be used."""

    actor: str = ""
    dataset: str = ""
    action: str = ""
    outcome: str = ""
    since: str = ""
    until: str = ""
    page: int = 1

    def moment(self, name: str) -> datetime | None:
        text = str(getattr(self, name)).strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{name} {text!r} is not a date: write it as 2026-11-24 or 2026-11-24T13:45"
            ) from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def entries(session: Session, filters: AuditFilters) -> list[db.AuditEntry]:
    outcome = filters.outcome if filters.outcome in audit.OUTCOMES else None
    return audit.query(
        session,
        actor=filters.actor.strip() or None,
        dataset=filters.dataset.strip() or None,
        action=filters.action.strip() or None,
        outcome=outcome,
        since=filters.moment("since"),
        until=filters.moment("until"),
        limit=PAGE_SIZE + 1,  # one more: is there a next page?
        offset=(filters.page - 1) * PAGE_SIZE,
    )


@router.get("/audit")
def audit_log(
    request: Request,
    visitor: Annotated[Visitor, Depends(operating)],
    actor: Annotated[str, Query(max_length=255)] = "",
    dataset: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=10)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """Entries matching the filters, newest first, and whether the chain verifies."""
    filters = AuditFilters(actor, dataset, action, outcome, since, until, page)
    error = None
    with reading(request) as session:
        report = audit.verify(session)
        try:
            found = entries(session, filters)
        except (ValueError, audit.AuditEntryError) as problem:
            found, error = [], str(problem)
        shown = [audit.as_json(entry) for entry in found[:PAGE_SIZE]]
    return render.page(
        request,
        "audit.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Audit log",
        status=422 if error else 200,
        context={
            "report": report,
            "entries": shown,
            "filters": filters,
            "error": error,
            "more": len(found) > PAGE_SIZE,
            "outcomes": audit.OUTCOMES,
            "detail_text": _detail_text,
        },
    )


def _detail_text(detail: dict[str, Any]) -> str:
    return json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else ""
