"""The submitter's pages: their files in the pipeline, metadata upload, datasets and release.

The same rules as ``/inbox/files`` (the ``submitter`` role, one's own files only) and as
``/metadata`` and ``/datasets`` (``submitter`` or ``operator``; a submitter manages their own
datasets, an operator any). A metadata upload is checked whole: every problem is shown by sheet,
row and column with its fix, and nothing is stored unless there is none.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from sqlalchemy.orm import Session

from genofed.archive import inbox
from genofed.metadata import datasets as catalogue
from genofed.metadata.errors import InvalidSubmission
from genofed.metadata.problems import Problem
from genofed.metadata.sheets import (
    JSON_SUFFIX,
    SHEET_SUFFIXES,
    Submission,
    read_json,
    read_sheet,
    validate_submission,
)
from genofed.metadata.store import StoredObject, submit_metadata
from genofed.web import render
from genofed.web.routing import PortalRoute
from genofed.web.session import Visitor, acting, settings_of, viewing
from genofed.web.work import REFUSALS, reading, writing

SUBMITTER, OPERATOR = "submitter", "operator"
MAX_UPLOAD_FILES = 20
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # all the sheets of one submission together
router = APIRouter(route_class=PortalRoute)
own_files = viewing(SUBMITTER, doing="Seeing your submitted files")
managing_view = viewing(SUBMITTER, OPERATOR, doing="Submitting metadata and managing datasets")
managing = acting(SUBMITTER, OPERATOR, doing="Submitting metadata and managing datasets")


# -- files --------------------------------------------------------------------------------------


@router.get("/files")
def files(request: Request, visitor: Annotated[Visitor, Depends(own_files)]) -> Response:
    """The visitor's files, oldest first: the state of each and why one stopped."""
    with reading(request) as session:
        found = inbox.list_files(session, visitor.subject)
    counts = Counter(file.state for file in found)
    return render.page(
        request,
        "files.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="My files",
        context={"files": found, "counts": sorted(counts.items())},
    )


# -- metadata -----------------------------------------------------------------------------------


@router.get("/metadata")
def metadata_form(
    request: Request, visitor: Annotated[Visitor, Depends(managing_view)]
) -> Response:
    """The upload form for metadata sheets or one JSON document."""
    return _metadata_page(request, visitor)


def _metadata_page(
    request: Request,
    visitor: Visitor,
    *,
    problems: list[Problem] | None = None,
    stored: list[StoredObject] | None = None,
    checked: bool = False,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render.page(
        request,
        "metadata.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Metadata",
        status=status,
        context={
            "problems": problems,
            "stored": stored,
            "checked": checked,
            "error": error,
            "suffixes": ", ".join([*SHEET_SUFFIXES, JSON_SUFFIX]),
        },
    )


class UploadRefused(Exception):
    """The uploaded files cannot be read as one submission (too many, too big, mixed)."""


def read_uploads(uploads: list[UploadFile]) -> Submission:
    """The uploaded sheets (several TSV/CSV) or JSON document (one) as one submission."""
    named = [upload for upload in uploads if upload.filename]
    if not named:
        raise UploadRefused("Choose the sheets (.tsv or .csv) or the one .json file to send.")
    if len(named) > MAX_UPLOAD_FILES:
        raise UploadRefused(f"{len(named)} files: send at most {MAX_UPLOAD_FILES} at once.")
    names = [str(upload.filename) for upload in named]
    documents = [name for name in names if name.lower().endswith(JSON_SUFFIX)]
    if documents and len(names) > 1:
        raise UploadRefused("Send one JSON document alone, or sheets (.tsv, .csv) without JSON.")
    submission, budget = Submission(), MAX_UPLOAD_BYTES
    for upload, name in zip(named, names, strict=True):
        content = upload.file.read(budget + 1)
        budget -= len(content)
        if budget < 0:
            raise UploadRefused(f"The files exceed {MAX_UPLOAD_BYTES // 2**20} MiB together.")
        reader = read_json if name.lower().endswith(JSON_SUFFIX) else read_sheet
        submission.extend(reader(name, content))
    return submission


@router.post("/metadata", max_body_size=MAX_UPLOAD_BYTES + 1024 * 1024)
def upload_metadata(
    request: Request,
    visitor: Annotated[Visitor, Depends(managing)],
    files: Annotated[list[UploadFile], File()],
    validate_only: Annotated[bool, Form()] = False,
) -> Response:
    """Check the upload, and store it unless it has a problem (or only check it)."""
    try:
        submission = read_uploads(files)
    except UploadRefused as error:
        return _metadata_page(request, visitor, error=str(error), status=422)
    country = settings_of(request).country
    if validate_only:
        with reading(request) as session:
            problems = validate_submission(
                submission, session=session, country=country, submitter=visitor.subject
            )
        status = 422 if problems else 200
        return _metadata_page(request, visitor, problems=problems, checked=True, status=status)

    def step(session: Session) -> list[StoredObject]:
        return list(submit_metadata(session, country, visitor.subject, submission).objects)

    try:
        stored = writing(request, visitor, step)
    except InvalidSubmission as error:
        return _metadata_page(request, visitor, problems=error.problems, status=422)
    except REFUSALS as error:
        return _metadata_page(request, visitor, error=str(error), status=400)
    return _metadata_page(request, visitor, stored=stored)


# -- datasets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetRow:
    accession: str
    alias: str
    title: str
    submitter: str
    status: str
    files: int
    policy: str | None

    @property
    def draft(self) -> bool:
        return self.status in ("draft", "submitted")


def dataset_rows(session: Session, owner: str | None) -> list[DatasetRow]:
    """The owner's datasets (None: every dataset, for operators)."""
    rows = []
    for dataset, count in catalogue.list_datasets(session, submitter=owner):
        described = catalogue.describe(session, dataset)
        rows.append(
            DatasetRow(
                accession=str(dataset.accession),
                alias=dataset.alias,
                title=str(dataset.body.get("title") or ""),
                submitter=dataset.submitter,
                status=dataset.status.value,
                files=count,
                policy=described.get("policy"),
            )
        )
    return rows


def _owner(visitor: Visitor) -> str | None:
    """Whose datasets the visitor manages: their own, or (None) every one for operators."""
    return None if visitor.identity.has_role(OPERATOR) else visitor.subject


@router.get("/datasets")
def datasets(request: Request, visitor: Annotated[Visitor, Depends(managing_view)]) -> Response:
    """The visitor's datasets (operators: all), with a release button for drafts."""
    with reading(request) as session:
        rows = dataset_rows(session, _owner(visitor))
    return render.page(
        request,
        "datasets.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Datasets",
        context={"datasets": rows},
    )


@router.post("/datasets/{accession}/release")
def release(
    request: Request, accession: str, visitor: Annotated[Visitor, Depends(managing)]
) -> Response:
    """Release a complete draft: visible beyond the node, open to requests."""
    country = settings_of(request).country

    def step(session: Session) -> str:
        released = catalogue.release_dataset(session, country, accession, user=_owner(visitor))
        return str(released.accession)

    try:
        done = writing(request, visitor, step)
    except REFUSALS as error:
        return render.redirect(request, "/datasets", render.Flash("error", str(error)))
    message = f"Dataset {done} is released: researchers can now apply for it."
    return render.redirect(request, "/datasets", render.Flash("ok", message))
