"""The metadata and dataset routes of the node API: thin, over :mod:`genofed.metadata.service`.

Mount with ``app.include_router(router)``. The routes read the node's :class:`Settings` from
``app.state.settings`` and its database engine from ``app.state.node.engine``, as the node app
sets them. Every route needs a bearer token (:func:`current_identity`):

- ``submitter``: submits metadata and manages *their own* datasets;
- ``operator``: manages any dataset (release and deprecate on behalf of a submitter);
- any role: lists and reads released datasets. Drafts are visible to their submitter and
  operators only: beyond them, a draft does not exist (404).

Errors are ``{"detail": "one line: what is wrong and the fix"}``; an invalid submission is 422
with ``problems``, each located as in :class:`genofed.metadata.problems.Problem`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from genofed import db
from genofed.access.http import bearer_identity, require_role
from genofed.access.tokens import Identity
from genofed.config import Settings
from genofed.db import MetadataObject, ObjectStatus
from genofed.metadata import datasets as service
from genofed.metadata.accessions import InvalidAccession
from genofed.metadata.errors import DatasetError, InvalidSubmission, MetadataError, NotFound
from genofed.metadata.sheets import read_document, validate_submission
from genofed.metadata.store import SubmissionResult, submit_metadata

SUBMITTER = "submitter"
OPERATOR = "operator"
router = APIRouter()


# -- who is asking, and the node they ask -------------------------------------------------------


current_identity = bearer_identity
submitting = require_role(SUBMITTER, OPERATOR, doing="submitting metadata and managing datasets")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@contextmanager
def _transaction(request: Request, *, write: bool) -> Iterator[Session]:
    """One transaction, committed before the response is built; errors become statuses."""
    engine = request.app.state.node.engine
    try:
        with db.session_scope(db.for_writing(engine) if write else engine) as session:
            yield session
    except NotFound as error:
        raise HTTPException(404, str(error)) from None
    except DatasetError as error:
        raise HTTPException(409, str(error)) from None
    except (MetadataError, InvalidAccession) as error:
        if isinstance(error, InvalidSubmission):
            raise
        raise HTTPException(400, str(error)) from None


def _owner(identity: Identity) -> str | None:
    """Whose datasets the caller may manage: their own, or (None) every one for operators."""
    return None if identity.has_role(OPERATOR) else identity.subject


# -- metadata -----------------------------------------------------------------------------------

Document = Body(
    ...,
    description="A submission: an object with a list per kind (studies, samples, ...).",
    examples=[{"studies": [{"alias": "S", "title": "A study", "study_type": "Other"}]}],
)


@router.post("/metadata/validate", tags=["metadata"])
def validate(
    request: Request,
    document: dict[str, Any] = Document,
    who: Identity = Depends(submitting),
) -> dict[str, Any]:
    """Every problem of a submission, checked against the caller's objects and files; stores
    nothing. An empty list means it would be accepted."""
    with _transaction(request, write=False) as session:
        problems = validate_submission(
            read_document(document),
            session=session,
            country=_settings(request).country,
            submitter=who.subject,
        )
    return {"problems": [asdict(problem) for problem in problems]}


@router.post("/metadata", status_code=201, tags=["metadata"])
def submit(
    request: Request,
    document: dict[str, Any] = Document,
    who: Identity = Depends(submitting),
) -> Any:
    """Store a submission whole, or nothing (422 with every problem). Aliases submitted again
    update those drafts; identical objects are left unchanged."""
    try:
        with _transaction(request, write=True) as session:
            result = submit_metadata(session, _settings(request).country, who.subject, document)
    except InvalidSubmission as error:
        return JSONResponse(
            {"detail": str(error), "problems": [asdict(p) for p in error.problems]},
            status_code=422,
        )
    return _stored(result)


def _stored(result: SubmissionResult) -> dict[str, Any]:
    return {
        "objects": [
            {"kind": o.kind.value, "alias": o.alias, "accession": o.accession, "change": o.change}
            for o in result.objects
        ],
        "accessions": result.accessions(),
    }


# -- datasets -----------------------------------------------------------------------------------


class NewDataset(BaseModel):
    alias: str = Field(min_length=1, max_length=255)
    title: str = Field(min_length=1, max_length=500)
    policy: str | None = Field(None, description="The policy's alias or accession.")
    description: str | None = None


class FileList(BaseModel):
    files: list[str] = Field(min_length=1, description="Archive accessions or file ids.")


@router.post("/datasets", status_code=201, tags=["datasets"])
def create(
    body: NewDataset, request: Request, who: Identity = Depends(submitting)
) -> dict[str, Any]:
    """Create a draft dataset of the caller's."""
    with _transaction(request, write=True) as session:
        created = service.create_dataset(
            session,
            _settings(request).country,
            who.subject,
            alias=body.alias,
            title=body.title,
            policy=body.policy,
            description=body.description,
        )
        return _dataset(session, created)


@router.get("/datasets", tags=["datasets"])
def list_datasets(
    request: Request,
    released: bool = Query(False, description="Only the datasets visible beyond the node."),
    who: Identity = Depends(current_identity),
) -> list[dict[str, Any]]:
    """Released datasets, and the caller's own drafts unless ``released`` (operators: all)."""
    with _transaction(request, write=False) as session:
        found = service.list_datasets(session, released_only=released)
        return [
            {
                "accession": dataset.accession,
                "alias": dataset.alias,
                "submitter": dataset.submitter,
                "status": dataset.status.value,
                "title": dataset.body.get("title"),
                "files": count,
            }
            for dataset, count in found
            if _may_see(who, dataset)
        ]


@router.get("/datasets/{dataset}", tags=["datasets"])
def show(dataset: str, request: Request, who: Identity = Depends(current_identity)) -> Any:
    """A dataset with its references and files."""
    with _transaction(request, write=False) as session:
        return _dataset(session, _visible(session, _settings(request).country, dataset, who))


def _visible(session: Session, country: str, dataset: str, who: Identity) -> MetadataObject:
    """The dataset ``who`` asks for, among those they may see: an alias means their own first."""
    if not who.has_role(OPERATOR):
        try:
            return service.find_dataset(session, country, dataset, submitter=who.subject)
        except NotFound:
            pass
    found = service.find_dataset(session, country, dataset)
    if not _may_see(who, found):
        raise NotFound(f"no dataset with accession or alias {dataset!r}: check it")
    return found


@router.post("/datasets/{dataset}/files", tags=["datasets"])
def add_files(
    dataset: str, body: FileList, request: Request, who: Identity = Depends(submitting)
) -> dict[str, Any]:
    """Add ready files of the dataset's submitter to a draft dataset: all of them, or none."""
    with _transaction(request, write=True) as session:
        added = service.add_files(
            session, _settings(request).country, dataset, body.files, user=_owner(who)
        )
        return {"added": [file.accession or file.id for file in added]}


@router.post("/datasets/{dataset}/release", tags=["datasets"])
def release(dataset: str, request: Request, who: Identity = Depends(submitting)) -> Any:
    """Release a complete draft (a policy, files, all ready): visible beyond the node."""
    with _transaction(request, write=True) as session:
        released = service.release_dataset(
            session, _settings(request).country, dataset, user=_owner(who)
        )
        return _dataset(session, released)


@router.post("/datasets/{dataset}/deprecate", tags=["datasets"])
def deprecate(dataset: str, request: Request, who: Identity = Depends(submitting)) -> Any:
    """Withdraw a released dataset from beyond the node."""
    with _transaction(request, write=True) as session:
        deprecated = service.deprecate_dataset(
            session, _settings(request).country, dataset, user=_owner(who)
        )
        return _dataset(session, deprecated)


def _may_see(who: Identity, dataset: MetadataObject) -> bool:
    return (
        dataset.status is ObjectStatus.RELEASED
        or dataset.submitter == who.subject
        or who.has_role(OPERATOR)
    )


def _dataset(session: Session, dataset: MetadataObject) -> dict[str, Any]:
    described = service.describe(session, dataset)
    described["files"] = [
        {"accession": file.accession, "id": file.id, "state": file.state.value}
        for file in service.dataset_files(session, dataset)
    ]
    return described
