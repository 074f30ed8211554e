"""Released pathogen records in the portal: the browser, a record's page, the acknowledgement
table and snapshot sets (create, cite, download).

The same rules as the node's ``/pathogen`` routes: any signed-in user reads released (and
revoked, flagged) records; a record not yet released only its submitter and curators; the
host-sample link only a user granted its dataset; downloads need the data-use terms accepted
and are audited.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from sqlalchemy import func, or_, select

from genofed.access import audit
from genofed.db.models import PathogenEntry
from genofed.pathogen import (
    acknowledgements,
    curation,
    downloads,
    hostlinks,
    registry,
    snapshots,
    terms,
)
from genofed.pathogen.entries import (
    PUBLIC_STATES,
    NotFound,
    PathogenError,
    by_accession_version,
    find_entry,
)
from genofed.pathogen.record import OPEN, RESTRICTED
from genofed.web import render
from genofed.web.pathogen_pages import is_curator, refused
from genofed.web.routing import PortalRoute
from genofed.web.session import Visitor, acting, engine_of, settings_of, viewing
from genofed.web.work import reading, writing

PAGE_SIZE = 50
MAX_SELECTED = 5000  # records chosen on the page for a table, a set or a download
router = APIRouter(route_class=PortalRoute)
reader = viewing(doing="Reading pathogen records")
citing = acting(doing="Citing pathogen records")


# -- browsing -----------------------------------------------------------------------------------


@router.get("/pathogen/records")
def records(
    request: Request,
    visitor: Annotated[Visitor, Depends(reader)],
    organism: Annotated[str, Query(max_length=64)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The newest public version of each record, newest release first."""
    with reading(request) as session:
        newest = (
            select(PathogenEntry.accession, func.max(PathogenEntry.version).label("version"))
            .where(PathogenEntry.state.in_(PUBLIC_STATES))
            .group_by(PathogenEntry.accession)
            .subquery()
        )
        query = select(PathogenEntry).join(
            newest,
            (PathogenEntry.accession == newest.c.accession)
            & (PathogenEntry.version == newest.c.version),
        )
        if organism:
            query = query.where(PathogenEntry.organism == organism)
        if q.strip():
            pattern = f"%{q.strip()}%"
            query = query.where(
                or_(PathogenEntry.virus_name.ilike(pattern), PathogenEntry.accession.ilike(pattern))
            )
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        found = session.scalars(
            query.order_by(PathogenEntry.released_at.desc(), PathogenEntry.accession)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        rows = [curation.entry_view(entry) | _place(entry) for entry in found]
        organisms = registry.organism_names(session)
    return render.page(
        request,
        "pathogen_records.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Pathogen records",
        context={
            "rows": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "asked": {"organism": organism, "q": q.strip()},
            "organisms": organisms,
        },
    )


def _place(entry: PathogenEntry) -> dict[str, str]:
    metadata = entry.sheet_metadata
    return {
        "collection_date": metadata.get("collection_date", ""),
        "location": metadata.get("location", ""),
    }


@router.get("/pathogen/records/{accession}")
def record(
    request: Request, accession: str, visitor: Annotated[Visitor, Depends(reader)]
) -> Response:
    """A record version: public ones for everyone signed in, others for their submitter and
    curators (as ``GET /pathogen/records/{accession}``)."""
    try:
        with reading(request) as session:
            entry = find_entry(session, accession)
            own = entry.submitter == visitor.subject or is_curator(visitor)
            if entry.state not in PUBLIC_STATES and not own:
                raise NotFound(f"no released pathogen record {accession}: check it")
            view = curation.entry_view(entry, full=True)
            if not own:
                view.pop("history")
            view |= hostlinks.visible_link(session, visitor.subject, entry)
    except PathogenError as failed:
        raise refused(failed) from None
    return render.page(
        request,
        "pathogen_record.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title=f"Pathogen record {view['accession_version']}",
        context={"record": view},
    )


# -- acknowledgements, snapshot sets, downloads -------------------------------------------------


def _names(accessions: str | list[str]) -> list[str]:
    items = accessions.split(",") if isinstance(accessions, str) else accessions
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))[:MAX_SELECTED]


@router.get("/pathogen/acknowledgements")
def acknowledgement_table(
    request: Request,
    visitor: Annotated[Visitor, Depends(reader)],
    accessions: Annotated[str, Query(max_length=200_000)] = "",
) -> Response:
    """Whom to thank for the records named (comma-separated accession.versions)."""
    names = _names(accessions)
    try:
        with reading(request) as session:
            rows = acknowledgements.table(by_accession_version(session, names)) if names else []
    except PathogenError as failed:
        raise refused(failed) from None
    return render.page(
        request,
        "pathogen_acknowledgements.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Acknowledgements",
        context={"rows": rows, "columns": acknowledgements.COLUMNS, "names": ",".join(names)},
    )


@router.post("/pathogen/snapshots")
def create_snapshot(
    request: Request,
    visitor: Annotated[Visitor, Depends(citing)],
    title: Annotated[str, Form(max_length=snapshots.MAX_TITLE)] = "",
    accessions: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Freeze the chosen released versions under a citable identifier."""
    names = _names(accessions or [])
    try:
        identifier = writing(
            request,
            visitor,
            lambda session: (
                snapshots.create_snapshot(
                    session, settings_of(request).country, visitor.subject, title, names
                ).identifier
            ),
        )
    except PathogenError as failed:
        return render.redirect(request, "/pathogen/records", render.Flash("error", str(failed)))
    flash = render.Flash("ok", f"Snapshot set {identifier} created: cite it in your paper.")
    return render.redirect(request, f"/pathogen/snapshots/{identifier}", flash)


@router.get("/pathogen/snapshots/{identifier}")
def snapshot(
    request: Request, identifier: str, visitor: Annotated[Visitor, Depends(reader)]
) -> Response:
    """A snapshot set as cited: its members, those revoked since, its acknowledgements."""
    try:
        with reading(request) as session:
            view = snapshots.snapshot_view(session, snapshots.get_snapshot(session, identifier))
            held = terms.accepted(session, visitor.subject)
    except PathogenError as failed:
        raise refused(failed) from None
    return render.page(
        request,
        "pathogen_snapshot.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title=f"Snapshot set {view['identifier']}",
        context={
            "snapshot": view,
            "columns": acknowledgements.COLUMNS,
            "accepted": held,
            "texts": terms.TEXTS,
        },
    )


@router.post("/pathogen/terms/accept")
def accept_terms(
    request: Request,
    visitor: Annotated[Visitor, Depends(citing)],
    kind: Annotated[str, Form(pattern="^(open|restricted)$")] = OPEN,
    back: Annotated[str, Form(max_length=200)] = "/pathogen/records",
) -> Response:
    """Accept the node's data-use terms (restricted use includes the open terms)."""

    def accept(session: Any) -> None:
        if kind == RESTRICTED:
            terms.accept(session, visitor.subject, OPEN)
        terms.accept(session, visitor.subject, kind)

    writing(request, visitor, accept)
    target = back if back.startswith("/pathogen/") and "//" not in back else "/pathogen/records"
    return render.redirect(request, target, render.Flash("ok", f"You accepted the {kind} terms."))


@router.post("/pathogen/snapshots/{identifier}/download")
def download_snapshot(
    request: Request,
    identifier: str,
    visitor: Annotated[Visitor, Depends(citing)],
    aligned: Annotated[bool, Form()] = False,
) -> Response:
    """The set's sequences with its acknowledgement table, as ``POST /pathogen/download``
    gives them: the terms checked, the download audited (allowed or denied)."""
    engine = engine_of(request)
    try:
        with reading(request) as session:
            members = snapshots.get_snapshot(session, identifier).members
            bundle = downloads.prepare(
                session, visitor.subject, members, aligned=aligned, today=date.today()
            )
    except PathogenError as failed:
        detail = {"snapshot": identifier, "reason": str(failed)[:500]}
        audit.append(
            engine,
            actor=visitor.subject,
            action="pathogen.download",
            outcome="denied",
            detail=detail,
        )
        back = f"/pathogen/snapshots/{identifier}"
        return render.redirect(request, back, render.Flash("error", str(failed)))
    done: dict[str, Any] = {"snapshot": identifier, "count": len(members), "aligned": aligned}
    audit.append(engine, actor=visitor.subject, action="pathogen.download", detail=done)
    name = f"{identifier}.zip"
    return Response(
        bundle.zipped(),
        media_type="application/zip",
        headers={
            **render.SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )
