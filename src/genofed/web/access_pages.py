"""The researcher's pages: apply for access, my requests, my data.

The same rules as ``/access/requests`` and ``/data/datasets``: applying, listing, updating and
withdrawing requests need the ``requester`` role and touch only the caller's own requests; "my
data" lists what the caller's valid grants allow (any signed-in user, as the API), and is
audited like ``GET /data/datasets``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from genofed.access import audit, visas
from genofed.access import requests as access
from genofed.access.purpose import COMMITMENTS, LABELS, policy_conditions
from genofed.dataout import service as dataout
from genofed.db import AccessRequest, AccessRequestItem, MetadataObject, RequestStatus
from genofed.metadata.datasets import _linked, released_datasets
from genofed.web import render
from genofed.web.routing import PortalRoute
from genofed.web.session import Visitor, acting, engine_of, settings_of, signed_in, viewing
from genofed.web.work import REFUSALS, reading, status_of, writing

REQUESTER = "requester"
DEFAULT_DAYS = 365
router = APIRouter(route_class=PortalRoute)
requesting = viewing(REQUESTER, doing="Requesting access to datasets")
applying = acting(REQUESTER, doing="Requesting access to datasets")


# -- the purpose form ---------------------------------------------------------------------------


class PurposeFields(BaseModel):
    """The purpose as the form sends it: text, to be shown again as typed if it is refused."""

    title: str = ""
    permission: str = "HMB"
    diseases: str = ""
    modifiers: list[str] = []
    country: str = ""
    institution: str = ""
    project: str = ""
    description: str = ""
    duration_days: str = str(DEFAULT_DAYS)
    comment: str = ""

    def purpose(self) -> dict[str, Any]:
        """The purpose in the JSON form the service reads; empty fields left out."""
        purpose: dict[str, Any] = {"permission": self.permission, "modifiers": self.modifiers}
        diseases = [disease for disease in re.split(r"[\s,;]+", self.diseases) if disease]
        if diseases:
            purpose["diseases"] = diseases
        for name in ("country", "institution", "project", "description"):
            value = str(getattr(self, name)).strip()
            if value:
                purpose[name] = value
        return purpose

    def days(self) -> int:
        try:
            return int(self.duration_days.strip())
        except ValueError:
            raise access.InvalidInput(
                f"the duration must be a whole number of days, not {self.duration_days!r}"
            ) from None


class Application(PurposeFields):
    datasets: list[str] = []


def fields_of(request_row: AccessRequest) -> PurposeFields:
    """A stored request's purpose as the form shows it, to be edited."""
    purpose = request_row.purpose
    return PurposeFields(
        title=request_row.title,
        permission=str(purpose.get("permission", "HMB")),
        diseases=", ".join(purpose.get("diseases") or []),
        modifiers=[str(code) for code in purpose.get("modifiers") or []],
        country=str(purpose.get("country") or ""),
        institution=str(purpose.get("institution") or ""),
        project=str(purpose.get("project") or ""),
        description=str(purpose.get("description") or ""),
        duration_days=str(request_row.duration_days),
    )


PURPOSE_CHOICES = {"permissions": LABELS, "commitments": COMMITMENTS}


# -- what can be requested ----------------------------------------------------------------------


@dataclass(frozen=True)
class Requestable:
    """A released dataset with the committee and conditions that govern it."""

    accession: str
    title: str
    dac: str
    conditions: list[str]


def requestable(session: Session) -> list[Requestable]:
    """Released datasets with a policy and a DAC, as the apply form offers them."""
    found = []
    for dataset in released_datasets(session):
        policy = _linked(session, dataset, "policy")
        dac = _linked(session, policy, "dac") if policy is not None else None
        if policy is None or dac is None:
            continue  # nobody could decide on a request for it
        found.append(
            Requestable(
                accession=str(dataset.accession),
                title=str(dataset.body.get("title") or dataset.alias),
                dac=str(dac.body.get("title") or dac.accession),
                conditions=policy_conditions(policy.body).terms(),
            )
        )
    return found


# -- applying -----------------------------------------------------------------------------------


@router.get("/requests/new")
def apply_form(
    request: Request,
    visitor: Annotated[Visitor, Depends(requesting)],
    dataset: Annotated[str | None, Query()] = None,
) -> Response:
    """The application form: datasets, project, and the purpose in DUO terms."""
    chosen = Application(datasets=[dataset] if dataset else [])
    return _apply_page(request, visitor, chosen)


def _apply_page(
    request: Request,
    visitor: Visitor,
    fields: Application,
    error: str | None = None,
    status: int = 200,
) -> Response:
    with reading(request) as session:
        datasets = requestable(session)
    return render.page(
        request,
        "apply.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Apply for access",
        status=status,
        context={"datasets": datasets, "form": fields, "error": error, **PURPOSE_CHOICES},
    )


@router.post("/requests")
def apply(
    request: Request,
    visitor: Annotated[Visitor, Depends(applying)],
    fields: Annotated[Application, Form()],
) -> Response:
    """Send the application: one item per dataset, each for its own DAC."""
    country = settings_of(request).country

    def step(session: Session) -> str:
        created = access.apply(
            session,
            country,
            visitor.subject,
            fields.datasets,
            title=fields.title,
            purpose=fields.purpose(),
            duration_days=fields.days(),
        )
        return created.id

    try:
        created = writing(request, visitor, step)
    except REFUSALS as error:
        return _apply_page(request, visitor, fields, str(error), status_of(error))
    done = f"Request {created} is sent: each dataset's committee decides on it."
    return render.redirect(request, "/requests", render.Flash("ok", done))


# -- my requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemView:
    """One dataset of a request, as its requester sees it."""

    id: int
    dataset: str
    dac: str
    status: str
    comment: str | None
    decided_by: str | None
    decided_at: datetime | None
    mismatches: list[str]
    grant_expires: datetime | None

    @property
    def open(self) -> bool:
        return self.status in {RequestStatus.SUBMITTED.value, RequestStatus.CHANGES_REQUESTED.value}

    @property
    def needs_changes(self) -> bool:
        return self.status == RequestStatus.CHANGES_REQUESTED.value


@dataclass(frozen=True)
class RequestView:
    id: str
    title: str
    purpose: dict[str, Any]
    duration_days: int
    created_at: datetime
    items: list[ItemView] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return any(item.open for item in self.items)


def request_view(session: Session, found: AccessRequest) -> RequestView:
    items: list[AccessRequestItem] = list(found.items)
    granted = access.grants_of(session, [item.id for item in items])
    return RequestView(
        id=found.id,
        title=found.title,
        purpose=dict(found.purpose),
        duration_days=found.duration_days,
        created_at=found.created_at,
        items=[
            ItemView(
                id=item.id,
                dataset=item.dataset_accession,
                dac=item.dac_accession,
                status=item.status.value,
                comment=item.comment,
                decided_by=item.decided_by,
                decided_at=item.decided_at,
                mismatches=list(item.mismatches or []),
                grant_expires=granted[item.id].expires_at if item.id in granted else None,
            )
            for item in items
        ],
    )


@router.get("/requests")
def my_requests(request: Request, visitor: Annotated[Visitor, Depends(requesting)]) -> Response:
    """The visitor's requests, newest first, with each dataset's status and the DAC's word."""
    with reading(request) as session:
        found = access.requests_of(session, visitor.subject)
        mine = [request_view(session, one) for one in found]
    return render.page(
        request,
        "requests.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="My requests",
        context={"requests": mine, "labels": LABELS},
    )


@router.post("/requests/{request_id}/withdraw")
def withdraw(
    request: Request,
    request_id: str,
    visitor: Annotated[Visitor, Depends(applying)],
    item: Annotated[int | None, Form()] = None,
) -> Response:
    """Withdraw the request's open items, or one of them."""

    def step(session: Session) -> int:
        return len(access.withdraw(session, visitor.subject, request_id, item_id=item))

    try:
        count = writing(request, visitor, step)
    except REFUSALS as error:
        return render.redirect(request, "/requests", render.Flash("error", str(error)))
    done = f"Withdrew {count} dataset{'s' if count != 1 else ''} of request {request_id}."
    return render.redirect(request, "/requests", render.Flash("ok", done))


@router.get("/requests/{request_id}/items/{item_id}/edit")
def edit_form(
    request: Request,
    request_id: str,
    item_id: int,
    visitor: Annotated[Visitor, Depends(requesting)],
) -> Response:
    """Answer a committee's request for changes: the purpose as sent, to be edited."""
    with reading(request) as session:
        try:
            found = access.get_request(session, request_id, visitor.subject)
        except access.NotFoundError as error:
            return _refused(request, str(error))
        if found.requester != visitor.subject:  # a DAC member's view is not an edit
            return _refused(request, f"no request {request_id} of yours")
        view = request_view(session, found)
        fields = fields_of(found)
    item = next((entry for entry in view.items if entry.id == item_id), None)
    if item is None or not item.needs_changes:
        return _refused(request, f"item {item_id} of request {request_id} waits for no changes")
    return _edit_page(request, visitor, view, item, fields)


def _refused(request: Request, message: str) -> Response:
    return render.redirect(request, "/requests", render.Flash("error", message))


def _edit_page(
    request: Request,
    visitor: Visitor,
    view: RequestView,
    item: ItemView,
    fields: PurposeFields,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render.page(
        request,
        "edit_request.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Change your request",
        status=status,
        context={"request_view": view, "item": item, "form": fields, "error": error}
        | PURPOSE_CHOICES,
    )


@router.post("/requests/{request_id}/items/{item_id}")
def update(
    request: Request,
    request_id: str,
    item_id: int,
    visitor: Annotated[Visitor, Depends(applying)],
    fields: Annotated[PurposeFields, Form()],
) -> Response:
    """Send the changed item back to its committee."""

    def step(session: Session) -> None:
        access.update(
            session,
            visitor.subject,
            request_id,
            item_id,
            title=fields.title,
            purpose=fields.purpose(),
            duration_days=fields.days(),
            comment=fields.comment or None,
        )

    try:
        writing(request, visitor, step)
    except REFUSALS as error:
        return render.redirect(request, "/requests", render.Flash("error", str(error)))
    done = f"Item {item_id} is sent back to its committee with your changes."
    return render.redirect(request, "/requests", render.Flash("ok", done))


# -- my data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readable:
    """A dataset the visitor may download, until when, and the command that does it."""

    accession: str
    title: str
    files: int
    expires_at: datetime
    command: str


def download_command(accession: str, node_url: str) -> str:
    """The exact ``genofed download`` line for a dataset; the key path is the user's to fill."""
    dataset, node = shlex.quote(accession), shlex.quote(node_url)
    return f"genofed download {dataset} --key YOUR.sec --node {node}"


def readable(session: Session, request: Request, subject: str) -> list[Readable]:
    settings = settings_of(request)
    allowed = visas.permissions(session, settings, subject)
    found: list[MetadataObject] = dataout.allowed_datasets(session, allowed)
    return [
        Readable(
            accession=str(dataset.accession),
            title=str(dataset.body.get("title") or dataset.alias),
            files=len(dataout.dataset_file_list(session, dataset)),
            expires_at=allowed.datasets[str(dataset.accession)].expires_at,
            command=download_command(str(dataset.accession), settings.http.public_url),
        )
        for dataset in found
    ]


@router.get("/data")
def my_data(request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> Response:
    """The datasets the visitor's grants allow now: recorded in the audit log like the API's
    listing, since it reveals what someone may read."""
    with reading(request) as session:
        datasets = readable(session, request, visitor.subject)
    audit.append(
        engine_of(request), actor=visitor.subject, action="data.list", detail={"via": "portal"}
    )
    return render.page(
        request,
        "data.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="My data",
        context={"datasets": datasets, "node_url": settings_of(request).http.public_url},
    )
