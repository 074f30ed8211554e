"""The pathogen submitter's and curator's pages: batch upload with its validation report, the
batch's progress, and the curation queue with QC details and mutation lists.

The same rules as the node's ``/pathogen`` routes (:mod:`genofed.pathogen.api`), through the
same service functions: submitting needs ``submitter`` or ``operator``; a batch is shown to its
submitter and to curators; the queue, approval and rejection need ``curator`` or ``operator``.
A batch with problems stores nothing unless the submitter asked to keep the valid part; every
problem is shown by file, line or row, record and field, with its fix.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from sqlalchemy import select

from genofed.db.models import PathogenSubmission
from genofed.pathogen import curation, registry, submissions, terms
from genofed.pathogen.api import published, saved_uploads, wake_processing
from genofed.pathogen.entries import Conflict, InvalidInput, NotAllowed, NotFound, PathogenError
from genofed.pathogen.record import OPEN
from genofed.web import render
from genofed.web.routing import PageRefused, PortalRoute
from genofed.web.session import Visitor, acting, settings_of, viewing
from genofed.web.work import reading, writing

SUBMITTER, CURATOR, OPERATOR = "submitter", "curator", "operator"
MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # a batch's FASTA and sheet together
QUEUE_PAGE = 200
_STATUS = {InvalidInput: 400, NotAllowed: 403, NotFound: 404, Conflict: 409}

router = APIRouter(route_class=PortalRoute)
submitting_view = viewing(SUBMITTER, OPERATOR, doing="Submitting pathogen sequences")
submitting = acting(SUBMITTER, OPERATOR, doing="Submitting pathogen sequences")
signed = viewing(doing="Following a pathogen batch")
curating_view = viewing(CURATOR, OPERATOR, doing="Curating pathogen records")
curating = acting(CURATOR, OPERATOR, doing="Curating pathogen records")


def refused(error: PathogenError) -> PageRefused:
    """A service's refusal as the page's, with the status the API gives it."""
    status = next((_STATUS[kind] for kind in type(error).__mro__ if kind in _STATUS), 400)
    titles = {403: "Not allowed", 404: "Not found", 409: "Not possible now"}
    return PageRefused(status, titles.get(status, "Cannot do this"), str(error))


def is_curator(visitor: Visitor) -> bool:
    return visitor.identity.has_role(CURATOR) or visitor.identity.has_role(OPERATOR)


# -- submitting ---------------------------------------------------------------------------------


@router.get("/pathogen/submit")
def submit_page(
    request: Request, visitor: Annotated[Visitor, Depends(submitting_view)]
) -> Response:
    """The batch form, and the visitor's earlier batches."""
    return _submit_form(request, visitor)


def _submit_form(
    request: Request,
    visitor: Visitor,
    *,
    outcome: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    with reading(request) as session:
        organisms = registry.organism_names(session)
        batches = session.scalars(
            select(PathogenSubmission)
            .where(PathogenSubmission.submitter == visitor.subject)
            .order_by(PathogenSubmission.created_at.desc())
            .limit(50)
        ).all()
    return render.page(
        request,
        "pathogen_submit.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Submit pathogen sequences",
        status=status,
        context={
            "organisms": organisms,
            "batches": batches,
            "outcome": outcome,
            "error": error,
            "terms": terms.TEXTS,
            "today": date.today().isoformat(),
        },
    )


@router.post("/pathogen/submit")
def submit(
    request: Request,
    visitor: Annotated[Visitor, Depends(submitting)],
    organism: Annotated[str, Form(max_length=64)],
    sequences: Annotated[UploadFile, File()],
    metadata: Annotated[UploadFile, File()],
    accept_valid: Annotated[bool, Form()] = False,
    data_use_terms: Annotated[str, Form(max_length=16)] = OPEN,
    restricted_until: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Validate and store a batch (as ``POST /pathogen/submissions``): the report by file, row
    and field when something is wrong, the accessions given when something was stored."""
    today = date.today()
    try:
        until = date.fromisoformat(restricted_until) if restricted_until.strip() else None
    except ValueError:
        return _submit_form(
            request,
            visitor,
            error=f"'Restricted until' must be a date (YYYY-MM-DD), not {restricted_until!r}.",
            status=422,
        )
    try:
        with reading(request) as session:
            chosen = registry.get_organism(session, organism)
            batch_terms = terms.check_terms(data_use_terms, until, today)
        with saved_uploads(sequences, metadata, max_bytes=MAX_UPLOAD_BYTES) as (fasta, sheet):
            outcome = writing(
                request,
                visitor,
                lambda session: submissions.submit_batch(
                    session,
                    country=settings_of(request).country,
                    submitter=visitor.subject,
                    organism=chosen,
                    fasta=fasta,
                    sheet=sheet,
                    accept_valid=accept_valid,
                    terms=batch_terms,
                    today=today,
                ),
            )
    except PathogenError as failed:
        return _submit_form(request, visitor, error=str(failed), status=refused(failed).status)
    if not outcome.stored:
        return _submit_form(request, visitor, outcome=outcome.to_json(), status=422)
    wake_processing(request.app)
    kept = len(outcome.accessions)
    note = f"{kept} sequence{'s' if kept != 1 else ''} stored"
    if outcome.problems:
        note += f"; {len(outcome.problems)} problem(s) left the others out: see them below"
    flash = render.Flash("ok", note + ". They are processed now; this page shows their progress.")
    return render.redirect(request, f"/pathogen/batches/{outcome.submission_id}", flash)


@router.get("/pathogen/batches/{submission_id}")
def batch(
    request: Request, submission_id: str, visitor: Annotated[Visitor, Depends(signed)]
) -> Response:
    """A batch's entries and where each stands (its submitter's, or any for a curator)."""
    try:
        with reading(request) as session:
            status = submissions.submission_status(
                session, submission_id, visitor.subject, curator=is_curator(visitor)
            )
            stored = session.get(PathogenSubmission, submission_id)
            problems = stored.problems if stored is not None else []
    except PathogenError as failed:
        raise refused(failed) from None
    return render.page(
        request,
        "pathogen_batch.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Pathogen batch",
        context={"batch": status, "problems": problems},
    )


# -- curating -----------------------------------------------------------------------------------


@router.get("/pathogen/curation")
def queue(
    request: Request,
    visitor: Annotated[Visitor, Depends(curating_view)],
    organism: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(pattern="^(|ok|warnings|errors)$")] = "",
) -> Response:
    """Processed entries waiting for a decision, oldest first, with their QC and mutations."""
    with reading(request) as session:
        entries = curation.review_queue(
            session, organism=organism or None, outcome=outcome or None, limit=QUEUE_PAGE
        )
        views = [curation.entry_view(entry, full=True) for entry in entries]
        organisms = registry.organism_names(session)
    return render.page(
        request,
        "pathogen_curation.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Curation queue",
        context={
            "entries": views,
            "organisms": organisms,
            "asked": {"organism": organism, "outcome": outcome},
            "limit": QUEUE_PAGE,
        },
    )


@router.post("/pathogen/curation/{accession}/approve")
def approve(
    request: Request, accession: str, visitor: Annotated[Visitor, Depends(curating)]
) -> Response:
    """Approve and release a processed version (never one with errors)."""
    return _decide(
        request,
        visitor,
        lambda session: curation.approve(session, accession, visitor.subject, release=True),
        "approved and released",
    )


@router.post("/pathogen/curation/{accession}/reject")
def reject(
    request: Request,
    accession: str,
    visitor: Annotated[Visitor, Depends(curating)],
    reason: Annotated[str, Form(max_length=curation.MAX_REASON)] = "",
) -> Response:
    """Reject a processed version, saying why (the submitter reads it)."""
    return _decide(
        request,
        visitor,
        lambda session: curation.reject(session, accession, visitor.subject, reason),
        "rejected",
    )


def _decide(request: Request, visitor: Visitor, step: Any, done: str) -> Response:
    try:
        entry = writing(request, visitor, step)
    except PathogenError as failed:
        return render.redirect(request, "/pathogen/curation", render.Flash("error", str(failed)))
    published(request.app, wait=True)  # the query stores (and charts) catch up at once
    name = f"{entry.accession}.{entry.version}"
    return render.redirect(request, "/pathogen/curation", render.Flash("ok", f"{name} {done}."))
