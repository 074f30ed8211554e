"""The node's pathogen routes, under ``/pathogen``: thin, over the pathogen services.

Mount with ``app.include_router(router)``; the router's lifespan starts the processing thread
when the node runs its workers embedded. Roles:

- anyone: the organisms, the data-use terms' texts, snapshot sets;
- ``submitter``: submits batches and revisions, follows them, revokes their own records;
- ``curator`` (or ``operator``): the review queue, approve, reject, release, revoke;
- ``operator``: adds organisms;
- any registered user: accepts the terms, downloads sequences (with acknowledgements), creates
  snapshot sets, reads released records (the host-sample link only with a grant for its dataset).

Errors are ``{"detail": "what is wrong and the fix"}``; a refused batch is 422 with ``problems``,
each located by file, row, record and field.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from genofed import db
from genofed.access import audit
from genofed.access.http import bearer_identity, require_role
from genofed.access.tokens import Identity
from genofed.config import Settings
from genofed.pathogen import (
    acknowledgements,
    curation,
    downloads,
    hostlinks,
    registry,
    snapshots,
    submissions,
    terms,
)
from genofed.pathogen.entries import (
    PUBLIC_STATES,
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    PathogenError,
    by_accession_version,
    find_entry,
)
from genofed.pathogen.node_queries import LAPIS_PREFIX, NodeQueries, lapis_routes
from genofed.pathogen.processing import Processor
from genofed.pathogen.record import OPEN, RESTRICTED

if TYPE_CHECKING:
    from genofed.federation.node_sync import SyncLoop

SUBMITTER, CURATOR, OPERATOR = "submitter", "curator", "operator"
MAX_DOWNLOAD = 20_000  # records per download request
_STATUS: dict[type[PathogenError], int] = {
    InvalidInput: 400,
    NotAllowed: 403,
    NotFound: 404,
    Conflict: 409,
}

submitting = require_role(SUBMITTER, OPERATOR, doing="submitting pathogen sequences")
curating = require_role(CURATOR, OPERATOR, doing="curating pathogen records")
operating = require_role(OPERATOR, doing="adding an organism")
registered = bearer_identity


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Fill the query stores and start processing with the node (when it runs its workers);
    stop processing with the node."""
    settings: Settings = app.state.settings
    app.state.pathogen_queries = NodeQueries(app.state.node.engine).start()
    processor = None
    if settings.embedded_workers:
        processor = await anyio.to_thread.run_sync(Processor(app.state.node.engine).start)
    app.state.pathogen_processor = processor
    try:
        yield
    finally:
        if processor is not None:
            await anyio.to_thread.run_sync(processor.stop)


router = APIRouter(prefix="/pathogen", tags=["pathogen"], lifespan=_lifespan)
router.include_router(lapis_routes, prefix=LAPIS_PREFIX)


# -- plumbing -----------------------------------------------------------------------------------


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@contextmanager
def _transaction(request: Request, *, write: bool = False) -> Iterator[Session]:
    """One transaction, committed before the response; the services' errors become statuses."""
    engine = request.app.state.node.engine
    try:
        with db.session_scope(db.for_writing(engine) if write else engine) as session:
            yield session
    except PathogenError as error:
        status = next((_STATUS[k] for k in type(error).__mro__ if k in _STATUS), 400)
        raise HTTPException(status, str(error)) from None


def _is_curator(who: Identity) -> bool:
    return who.has_role(CURATOR) or who.has_role(OPERATOR)


@contextmanager
def saved_uploads(*uploads: UploadFile, max_bytes: int | None = None) -> Iterator[list[Path]]:
    """Uploaded files on disk under their own names (the suffix says .csv, .gz, ...); more than
    ``max_bytes`` together is refused (:class:`InvalidInput`) before it fills the disk."""
    with tempfile.TemporaryDirectory(prefix="genofed-pathogen-") as folder:
        paths, total = [], 0
        for number, upload in enumerate(uploads):
            name = Path(upload.filename or "").name or f"upload-{number}"
            path = Path(folder) / str(number) / name
            path.parent.mkdir()
            with path.open("wb") as out:
                while chunk := upload.file.read(1 << 20):
                    total += len(chunk)
                    if max_bytes is not None and total > max_bytes:
                        raise InvalidInput(
                            f"the batch is larger than {max_bytes >> 20} MiB: split it, "
                            "or send it with 'genofed pathogen submit'"
                        )
                    out.write(chunk)
            paths.append(path)
        yield paths


def published(app: FastAPI, *, wait: bool = False) -> None:
    """After a release or revocation: the query stores catch up now (``wait=False``: unless a
    refresh is under way already, which takes it up), and the hub hears of it with the next
    sync cycle, started at once."""
    queries: NodeQueries | None = getattr(app.state, "pathogen_queries", None)
    if queries is not None:
        queries.refresh(wait=wait)
    federation: SyncLoop | None = getattr(app.state, "federation", None)
    if federation is not None:
        federation.wake()


def wake_processing(app: FastAPI) -> None:
    """After a submission: processing starts now rather than at its next poll."""
    processor: Processor | None = getattr(app.state, "pathogen_processor", None)
    if processor is not None:
        processor.wake()


@router.get("/organisms")
def list_organisms(request: Request) -> dict[str, Any]:
    """The organisms this node accepts, with the metadata each needs."""
    with _transaction(request) as session:
        names = registry.organism_names(session)
        return {
            "organisms": [registry.describe(registry.get_organism(session, name)) for name in names]
        }


@router.post("/organisms", status_code=201)
def add_organism(
    request: Request,
    name: str = Form(description="e.g. mpox-clade-ib"),
    earliest_date: date = Form(description="The earliest plausible collection date."),
    reference: UploadFile = File(description="The reference genome, one FASTA record."),
    annotation: UploadFile = File(description="Its genes and CDS, GFF3."),
    clades: UploadFile | None = File(None, description="Its clade tree, a clades TSV."),
    who: Identity = Depends(operating),
) -> dict[str, Any]:
    """Add an organism from a reference FASTA and a GFF3 annotation (and its clades)."""
    fasta = reference.file.read()
    try:
        gff3 = annotation.file.read().decode("utf-8")
        tree = clades.file.read().decode("utf-8") if clades else None
    except UnicodeDecodeError:
        raise HTTPException(
            400, "the annotation or clades file is not UTF-8 text: send GFF3 and TSV files"
        ) from None
    with _transaction(request, write=True) as session:
        organism = registry.add_organism(
            session,
            name,
            fasta,
            gff3,
            earliest_date=earliest_date,
            added_by=who.subject,
            clades=tree,
        )
        return registry.describe(organism)


# -- submissions --------------------------------------------------------------------------------


@router.post("/submissions", status_code=201, response_model=None)
def submit(
    request: Request,
    organism: str = Form(description="e.g. sars-cov-2"),
    sequences: UploadFile = File(description="FASTA (gz, xz, zst allowed)."),
    metadata: UploadFile = File(description="The metadata sheet, TSV or CSV."),
    accept_valid: bool = Form(False, description="Store the valid part when some rows fail."),
    data_use_terms: str = Form(OPEN, description="open or restricted"),
    restricted_until: date | None = Form(None, description="Restricted terms' end."),
    who: Identity = Depends(submitting),
) -> Any:
    """Submit a batch: 201 with the accession of each stored sequence and any problems (when
    ``accept_valid`` took the valid part); 422 with every problem when nothing was stored."""
    today = date.today()
    with _transaction(request) as session:  # checked before the upload is stored
        chosen = registry.get_organism(session, organism)
        batch_terms = terms.check_terms(data_use_terms, restricted_until, today)
    with saved_uploads(sequences, metadata) as (fasta, sheet):
        with _transaction(request) as session:  # validating takes long: no write lock yet
            report = submissions.check_batch(
                session, who.subject, chosen, fasta, sheet, today=today
            )
        with _transaction(request, write=True) as session:
            outcome = submissions.store_batch(
                session,
                report,
                country=_settings(request).country,
                submitter=who.subject,
                organism=chosen,
                names=(fasta.name, sheet.name),
                accept_valid=accept_valid,
                terms=batch_terms,
            )
    return _stored(request, outcome)


def _stored(request: Request, outcome: submissions.SubmissionOutcome) -> Any:
    """The outcome of a batch or revision: 422 with its problems when nothing was stored, else
    its accessions, processing woken at once."""
    body = outcome.to_json()
    if not outcome.stored:
        body["detail"] = _refusal(outcome)
        return JSONResponse(body, status_code=422)
    wake_processing(request.app)
    return body


def _refusal(outcome: submissions.SubmissionOutcome) -> str:
    count = len(outcome.problems)
    return (
        f"nothing was stored: the batch has {count} problem{'s' if count != 1 else ''}; fix "
        "them and submit again, or send accept_valid to store the valid sequences"
        if outcome.problems
        else "nothing was stored: the batch holds no sequence"
    )


@router.get("/submissions/{submission_id}")
def submission_status(
    submission_id: str, request: Request, who: Identity = Depends(registered)
) -> dict[str, Any]:
    """A batch's entries and where each stands."""
    with _transaction(request) as session:
        return submissions.submission_status(
            session, submission_id, who.subject, curator=_is_curator(who)
        )


# -- records ------------------------------------------------------------------------------------


@router.get("/records/{accession}")
def show_record(accession: str, request: Request, who: Identity = Depends(registered)) -> Any:
    """A record version (``GF..V...X.2``, or the newest without a version): public ones for
    every registered user, others for their submitter and curators."""
    with _transaction(request) as session:
        entry = find_entry(session, accession)
        own = entry.submitter == who.subject or _is_curator(who)
        if entry.state not in PUBLIC_STATES and not own:
            raise HTTPException(404, f"no released pathogen record {accession}: check it")
        view = curation.entry_view(entry, full=True)
        if not own:  # who submitted it, under which lab-internal id, stays with the node
            for private in ("history", "submitter", "sequence_id", "error"):
                view.pop(private)
        return {**view, **hostlinks.visible_link(session, who.subject, entry)}


@router.get("/curation")
def review_queue(
    request: Request,
    organism: str | None = None,
    outcome: str | None = Query(None, pattern="^(ok|warnings|errors)$"),
    limit: int = Query(200, ge=1, le=5000),
    who: Identity = Depends(curating),
) -> dict[str, Any]:
    """Processed entries waiting for a decision, with their QC and mutations."""
    with _transaction(request) as session:
        entries = curation.review_queue(session, organism=organism, outcome=outcome, limit=limit)
        return {"entries": [curation.entry_view(e, full=True) for e in entries]}


class Approval(BaseModel):
    release: bool = Field(True, description="Release at once (the default).")


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/records/{accession}/approve")
def approve(
    accession: str,
    request: Request,
    body: Approval | None = None,
    who: Identity = Depends(curating),
) -> dict[str, Any]:
    """Approve a processed version (never one with errors); released at once by default."""
    release = True if body is None else body.release
    with _transaction(request, write=True) as session:
        entry = curation.approve(session, accession, who.subject, release=release)
        view = curation.entry_view(entry)
    published(request.app)
    return view


@router.post("/records/{accession}/release")
def release(accession: str, request: Request, who: Identity = Depends(curating)) -> dict[str, Any]:
    with _transaction(request, write=True) as session:
        view = curation.entry_view(curation.release(session, accession, who.subject))
    published(request.app)
    return view


@router.post("/records/{accession}/reject")
def reject(
    accession: str, body: Reason, request: Request, who: Identity = Depends(curating)
) -> dict[str, Any]:
    with _transaction(request, write=True) as session:
        return curation.entry_view(curation.reject(session, accession, who.subject, body.reason))


@router.post("/records/{accession}/revoke")
def revoke(
    accession: str, body: Reason, request: Request, who: Identity = Depends(registered)
) -> dict[str, Any]:
    """Withdraw a released record (its submitter or a curator); it stays, flagged."""
    with _transaction(request, write=True) as session:
        entry = curation.revoke(
            session, accession, who.subject, body.reason, curator=_is_curator(who)
        )
        view = curation.entry_view(entry)
    published(request.app)
    return view


@router.post("/records/{accession}/revise", status_code=201, response_model=None)
def revise(
    accession: str,
    request: Request,
    sequences: UploadFile = File(description="The corrected sequence, one FASTA record."),
    metadata: UploadFile = File(description="Its metadata, a sheet of one row."),
    who: Identity = Depends(submitting),
) -> Any:
    """Resubmit a released record: it is processed again and becomes the next version."""
    with _transaction(request) as session:
        organism = registry.get_organism(session, find_entry(session, accession).organism)
    with (
        saved_uploads(sequences, metadata) as (fasta, sheet),
        _transaction(request, write=True) as s,
    ):
        outcome = submissions.revise(
            s,
            accession=accession,
            submitter=who.subject,
            organism=organism,
            fasta=fasta,
            sheet=sheet,
        )
    return _stored(request, outcome)


class HostLink(BaseModel):
    sample: str = Field(min_length=1, description="The human sample's accession or alias.")
    dataset: str = Field(min_length=1, description="The controlled dataset that holds it.")


@router.post("/records/{accession}/host-link")
def link_host(
    accession: str, body: HostLink, request: Request, who: Identity = Depends(registered)
) -> dict[str, Any]:
    """Link a record to the human sample it came from (its submitter or a curator)."""
    with _transaction(request, write=True) as session:
        base = find_entry(session, accession).accession
        entries = hostlinks.link_host_sample(
            session,
            _settings(request).country,
            base,
            body.sample,
            body.dataset,
            who.subject,
            curator=_is_curator(who),
        )
        latest = entries[-1]
        return {
            "accession": base,
            "host_sample": latest.host_sample,
            "host_dataset": latest.host_dataset,
        }


# -- terms, downloads, acknowledgements, snapshot sets -----------------------------------------


@router.get("/terms")
def terms_texts() -> dict[str, Any]:
    """The data-use terms a downloader accepts."""
    return {"version": terms.TERMS_VERSION, "terms": terms.TEXTS}


class Acceptance(BaseModel):
    terms: str = Field(OPEN, pattern="^(open|restricted)$")


@router.post("/terms/accept")
def accept_terms(
    request: Request, body: Acceptance | None = None, who: Identity = Depends(registered)
) -> dict[str, Any]:
    kind = OPEN if body is None else body.terms
    with _transaction(request, write=True) as session:
        if kind == RESTRICTED:
            terms.accept(session, who.subject, OPEN)  # restricted use includes open use
        row = terms.accept(session, who.subject, kind)
        return {
            "subject": who.subject,
            "accepted": sorted(terms.accepted(session, who.subject)),
            "version": row.terms_version,
        }


class Selection(BaseModel):
    accessions: list[str] = Field(min_length=1, max_length=MAX_DOWNLOAD)
    aligned: bool = False
    format: str = Field("zip", pattern="^(zip|fasta)$")


@router.post("/download", response_model=None)
def download(body: Selection, request: Request, who: Identity = Depends(registered)) -> Response:
    """Sequences of released records with their acknowledgement table: a zip of
    ``sequences.fasta`` and ``acknowledgements.tsv``, or the FASTA alone (``format=fasta``).
    Needs the node's terms accepted (and the restricted-use terms for restricted records)."""
    engine = request.app.state.node.engine
    names = list(dict.fromkeys(body.accessions))
    detail = _download_detail(names, body.aligned)
    try:
        with _transaction(request) as session:
            bundle = downloads.prepare(
                session, who.subject, names, aligned=body.aligned, today=date.today()
            )
    except HTTPException as error:
        audit.append(
            engine,
            actor=who.subject,
            action="pathogen.download",
            outcome="denied",
            detail={**detail, "reason": str(error.detail)[:500]},
        )
        raise
    audit.append(engine, actor=who.subject, action="pathogen.download", detail=detail)
    if body.format == "fasta":
        return Response(bundle.fasta, media_type="text/x-fasta")
    return Response(
        bundle.zipped(),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="pathogen-sequences.zip"'},
    )


def _download_detail(names: list[str], aligned: bool) -> dict[str, Any]:
    """What the audit keeps of a download: how many, which (a digest of the whole list, and
    the first names), aligned or not."""
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return {"count": len(names), "list_sha256": digest, "first": names[:20], "aligned": aligned}


@router.get("/acknowledgements", response_model=None)
def acknowledgement_table(
    request: Request,
    accessions: str = Query(description="Comma-separated accession.versions."),
    format: str = Query("tsv", pattern="^(tsv|csv|json)$"),
) -> Response:
    """Whom to thank for the records named: originating and submitting labs, authors."""
    names = [name for name in accessions.split(",") if name.strip()]
    with _transaction(request) as session:
        rows = acknowledgements.table(by_accession_version(session, names))
    return Response(
        acknowledgements.render(rows, format), media_type=acknowledgements.MEDIA_TYPES[format]
    )


class NewSnapshot(BaseModel):
    title: str = Field(min_length=1, max_length=255)
    accessions: list[str] = Field(min_length=1, max_length=snapshots.MAX_MEMBERS)


@router.post("/snapshots", status_code=201)
def create_snapshot(
    body: NewSnapshot, request: Request, who: Identity = Depends(registered)
) -> dict[str, Any]:
    """Freeze released versions under a citable identifier, with their acknowledgements."""
    with _transaction(request, write=True) as session:
        snapshot = snapshots.create_snapshot(
            session, _settings(request).country, who.subject, body.title, body.accessions
        )
        return snapshots.snapshot_view(session, snapshot)


@router.get("/snapshots/{identifier}", response_model=None)
def show_snapshot(
    identifier: str, request: Request, format: str = Query("json", pattern="^(tsv|csv|json)$")
) -> Any:
    """A snapshot set as cited (``json``), or its acknowledgement table (``tsv``, ``csv``)."""
    with _transaction(request) as session:
        snapshot = snapshots.get_snapshot(session, identifier)
        if format == "json":
            return snapshots.snapshot_view(session, snapshot)
        table = acknowledgements.render(snapshot.acknowledgements, format)
    return Response(table, media_type=acknowledgements.MEDIA_TYPES[format])
