"""The data access routes of the node API: requests, DAC decisions, grants, DAC membership.

Mount with ``app.include_router(router)``; the routes read ``app.state.settings`` and the node's
engine ``app.state.node.engine``, as the node app sets them. They are thin: the workflow and its
rules are :mod:`genofed.access.requests`. Roles:

- ``requester``: ``POST/GET /access/requests``, ``PATCH .../items/{item}``, ``POST .../withdraw``;
  ``GET /access/requests/{id}`` is open to its requester, members of its DACs and operators;
- ``dac_member``: ``/dac/requests`` (the items of the DACs they sit on) and their decisions;
- ``dac_member`` or ``operator``: grants (list, revoke) and reading a DAC's members;
- ``operator``: adding and removing DAC members.

Errors are ``{"detail": "what is wrong and the fix"}``: 404 for what does not exist *for the
caller*, 403 for a step the caller may not take (also written to the audit log as denied), 409
for a step the item's status or the dataset forbids, 422 for an unusable value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from genofed import db
from genofed.access import audit
from genofed.access import requests as service
from genofed.access.http import bearer_identity, require_role
from genofed.access.purpose import InvalidPurpose
from genofed.access.tokens import Identity
from genofed.db import AccessEvent, AccessRequest, AccessRequestItem, Grant, RequestStatus
from genofed.metadata.errors import MetadataError

REQUESTER, DAC_MEMBER, OPERATOR = "requester", "dac_member", "operator"
router = APIRouter()

requesting = require_role(REQUESTER, doing="requesting access to datasets")
deciding = require_role(DAC_MEMBER, doing="deciding on access requests")
overseeing = require_role(DAC_MEMBER, OPERATOR, doing="managing grants")
administering = require_role(OPERATOR, doing="managing DAC members")


# -- transactions and errors --------------------------------------------------------------------


@contextmanager
def _transaction(request: Request, who: Identity, *, write: bool) -> Iterator[Session]:
    """One transaction, committed before the response is built; errors become statuses.

    A refused step is written to the audit log as denied once the transaction has rolled back.
    """
    engine = request.app.state.node.engine
    try:
        with db.session_scope(db.for_writing(engine) if write else engine) as session:
            yield session
    except service.NotAllowed as error:
        audit.append(
            engine,
            actor=who.subject,
            action=error.action,
            outcome="denied",
            dataset=error.dataset,
            detail=error.detail,
        )
        raise HTTPException(403, str(error)) from None
    except service.NotFoundError as error:
        raise HTTPException(404, str(error)) from None
    except service.Conflict as error:
        raise HTTPException(409, str(error)) from None
    except (service.InvalidInput, InvalidPurpose) as error:
        raise HTTPException(422, str(error)) from None
    except (service.AccessError, MetadataError) as error:
        raise HTTPException(400, str(error)) from None


def _country(request: Request) -> str:
    return str(request.app.state.settings.country)


# -- bodies -------------------------------------------------------------------------------------


class NewRequest(BaseModel):
    datasets: list[str] = Field(
        min_length=1, max_length=service.MAX_DATASETS, description="Dataset accessions."
    )
    title: str = Field(min_length=1, max_length=service.MAX_TITLE, description="The project.")
    purpose: dict[str, Any] = Field(
        description="The research purpose in DUO terms: permission, diseases (for DS), "
        "modifiers accepted (IRB, PUB, GS=BE, ...), country, institution, project, description.",
        examples=[{"permission": "HMB", "modifiers": ["IRB", "PUB", "GS=BE"]}],
    )
    duration_days: int = Field(ge=1, le=service.MAX_DURATION_DAYS)


class ItemUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=service.MAX_TITLE)
    purpose: dict[str, Any] | None = None
    duration_days: int | None = Field(default=None, ge=1, le=service.MAX_DURATION_DAYS)
    comment: str | None = Field(default=None, description="What changed, for the DAC.")


class Withdrawal(BaseModel):
    item: int | None = Field(default=None, description="One item only; default: every open item.")
    comment: str | None = None


class Decision(BaseModel):
    comment: str | None = Field(
        default=None,
        description="For the requester: required to reject or request changes, optional to "
        "approve.",
    )


class Approval(Decision):
    days: int | None = Field(
        default=None, ge=1, description="A shorter access than requested; default: as requested."
    )
    acknowledge_mismatches: bool = Field(
        default=False,
        description="Approve although the purpose does not fit the policy (DUO check).",
    )


class Revocation(BaseModel):
    comment: str = Field(min_length=1, description="Why, for the requester and the audit.")


class NewMember(BaseModel):
    subject: str = Field(min_length=1, description="The member's user name (token subject).")


# -- the requester's routes ---------------------------------------------------------------------


@router.post("/access/requests", status_code=201, tags=["access"])
def create_request(
    body: NewRequest, request: Request, who: Identity = Depends(requesting)
) -> dict[str, Any]:
    """Request access to released datasets for one purpose; each dataset's DAC decides."""
    with _transaction(request, who, write=True) as session:
        created = service.apply(
            session,
            _country(request),
            who.subject,
            body.datasets,
            title=body.title,
            purpose=body.purpose,
            duration_days=body.duration_days,
        )
        return _request(session, created)


@router.get("/access/requests", tags=["access"])
def list_requests(request: Request, who: Identity = Depends(requesting)) -> list[dict[str, Any]]:
    """The caller's requests, newest first, with each dataset's status and the DAC's comment."""
    with _transaction(request, who, write=False) as session:
        return [_request(session, found) for found in service.requests_of(session, who.subject)]


@router.get("/access/requests/{request_id}", tags=["access"])
def show_request(
    request_id: str, request: Request, who: Identity = Depends(bearer_identity)
) -> dict[str, Any]:
    """One request with its items' history: for its requester and operators; a DAC member sees
    the items of their DACs."""
    with _transaction(request, who, write=False) as session:
        operator = who.has_role(OPERATOR)
        found = service.get_request(session, request_id, who.subject, operator=operator)
        if operator or found.requester == who.subject:
            return _request(session, found)
        mine = set(service.dacs_of(session, who.subject))  # a DAC member sees their DACs' items
        return _request(
            session, found, [item for item in found.items if item.dac_accession in mine]
        )


@router.patch("/access/requests/{request_id}/items/{item_id}", tags=["access"])
def update_item(
    request_id: str,
    item_id: int,
    body: ItemUpdate,
    request: Request,
    who: Identity = Depends(requesting),
) -> dict[str, Any]:
    """Answer a request for changes: the item goes back to its DAC, checked again. Returns the
    item's request, a new one when the old one had other items (see the service)."""
    with _transaction(request, who, write=True) as session:
        item = service.update(
            session,
            who.subject,
            request_id,
            item_id,
            title=body.title,
            purpose=body.purpose,
            duration_days=body.duration_days,
            comment=body.comment,
        )
        return _request(session, item.request)


@router.post("/access/requests/{request_id}/withdraw", tags=["access"])
def withdraw(
    request_id: str,
    request: Request,
    body: Withdrawal | None = None,
    who: Identity = Depends(requesting),
) -> dict[str, Any]:
    """Withdraw the request's open items (or one); decided items stay."""
    body = body or Withdrawal()
    with _transaction(request, who, write=True) as session:
        service.withdraw(session, who.subject, request_id, item_id=body.item, comment=body.comment)
        return _request(session, service.get_request(session, request_id, who.subject))


# -- the DAC's routes ---------------------------------------------------------------------------


@router.get("/dac/requests", tags=["dac"])
def dac_queue(
    request: Request,
    status: str | None = Query(
        None, description="Only items in this status, e.g. submitted (the queue)."
    ),
    who: Identity = Depends(deciding),
) -> dict[str, Any]:
    """The items of the DACs the caller sits on, oldest first, with their DUO mismatches."""
    wanted = _status(status)
    with _transaction(request, who, write=False) as session:
        items = service.dac_items(session, who.subject, status=wanted)
        return {
            "dacs": service.dacs_of(session, who.subject),
            "items": _items(session, items, with_request=True),
        }


@router.get("/dac/requests/{item_id}", tags=["dac"])
def dac_show(item_id: int, request: Request, who: Identity = Depends(deciding)) -> dict[str, Any]:
    """One item of the caller's DACs, with the request's purpose and the item's history."""
    with _transaction(request, who, write=False) as session:
        item = service.dac_item(session, who.subject, item_id)
        return _items(session, [item], with_request=True)[0]


@router.post("/dac/requests/{item_id}/approve", tags=["dac"])
def approve(
    item_id: int, body: Approval, request: Request, who: Identity = Depends(deciding)
) -> dict[str, Any]:
    """Approve: a grant until now + the requested days (or the shorter ``days``)."""
    with _transaction(request, who, write=True) as session:
        grant = service.approve(
            session,
            who.subject,
            item_id,
            days=body.days,
            comment=body.comment,
            acknowledge_mismatches=body.acknowledge_mismatches,
        )
        return _decided(session, grant.item_id or item_id)


@router.post("/dac/requests/{item_id}/reject", tags=["dac"])
def reject(
    item_id: int, body: Decision, request: Request, who: Identity = Depends(deciding)
) -> dict[str, Any]:
    """Reject, saying why in the comment; final for this item."""
    with _transaction(request, who, write=True) as session:
        service.reject(session, who.subject, item_id, comment=body.comment or "")
        return _decided(session, item_id)


@router.post("/dac/requests/{item_id}/request-changes", tags=["dac"])
def request_changes(
    item_id: int, body: Decision, request: Request, who: Identity = Depends(deciding)
) -> dict[str, Any]:
    """Send the item back to the requester, saying what to change in the comment."""
    with _transaction(request, who, write=True) as session:
        service.request_changes(session, who.subject, item_id, comment=body.comment or "")
        return _decided(session, item_id)


@router.post("/dac/requests/{item_id}/revoke", tags=["dac"])
def revoke_item(
    item_id: int, body: Revocation, request: Request, who: Identity = Depends(overseeing)
) -> dict[str, Any]:
    """Revoke the grant of an approved item."""
    return _revoke(request, who, str(item_id), body.comment)


@router.post("/dac/grants/{grant_id}/revoke", tags=["dac"])
def revoke_grant(
    grant_id: str, body: Revocation, request: Request, who: Identity = Depends(overseeing)
) -> dict[str, Any]:
    """Revoke a grant (by its id, or its item's): the visas issued from it stop working."""
    return _revoke(request, who, grant_id, body.comment)


def _revoke(request: Request, who: Identity, reference: str, comment: str) -> dict[str, Any]:
    with _transaction(request, who, write=True) as session:
        grant = service.revoke(
            session, who.subject, reference, comment=comment, operator=who.has_role(OPERATOR)
        )
        return _grant(grant)


@router.get("/dac/grants", tags=["dac"])
def grants(
    request: Request,
    active: bool = Query(False, description="Only grants neither revoked nor expired."),
    who: Identity = Depends(overseeing),
) -> list[dict[str, Any]]:
    """Grants of the caller's DACs (operators: every grant), newest first."""
    with _transaction(request, who, write=False) as session:
        found = service.dac_grants(
            session, who.subject, operator=who.has_role(OPERATOR), active_only=active
        )
        return [_grant(grant) for grant in found]


@router.get("/dac/{dac}/members", tags=["dac"])
def list_members(dac: str, request: Request, who: Identity = Depends(overseeing)) -> dict[str, Any]:
    """Who sits on a DAC (by accession or alias)."""
    with _transaction(request, who, write=False) as session:
        accession = service.find_dac(session, _country(request), dac)
        return {"dac": accession, "members": service.members(session, _country(request), dac)}


@router.post("/dac/{dac}/members", status_code=201, tags=["dac"])
def add_member(
    dac: str, body: NewMember, request: Request, who: Identity = Depends(administering)
) -> dict[str, Any]:
    """Seat a user on a DAC; they then decide on its datasets' requests."""
    with _transaction(request, who, write=True) as session:
        accession = service.add_member(session, _country(request), who.subject, dac, body.subject)
        return {"dac": accession, "members": service.members(session, _country(request), dac)}


@router.delete("/dac/{dac}/members/{subject}", tags=["dac"])
def remove_member(
    dac: str, subject: str, request: Request, who: Identity = Depends(administering)
) -> dict[str, Any]:
    """Take a user off a DAC; their past decisions stay."""
    with _transaction(request, who, write=True) as session:
        accession = service.remove_member(session, _country(request), who.subject, dac, subject)
        return {"dac": accession, "members": service.members(session, _country(request), dac)}


def _status(text: str | None) -> RequestStatus | None:
    if text is None or not text.strip():
        return None
    try:
        return RequestStatus(text.strip().lower().replace("-", "_"))
    except ValueError:
        raise HTTPException(
            422,
            f"unknown status {text!r}: choose from {', '.join(s.value for s in RequestStatus)}",
        ) from None


# -- what the routes answer ---------------------------------------------------------------------


def _request(
    session: Session, found: AccessRequest, items: Sequence[AccessRequestItem] | None = None
) -> dict[str, Any]:
    return {
        "id": found.id,
        "requester": found.requester,
        "title": found.title,
        "purpose": found.purpose,
        "duration_days": found.duration_days,
        "created_at": _time(found.created_at),
        "updated_at": _time(found.updated_at),
        "items": _items(session, found.items if items is None else items),
    }


def _items(
    session: Session, items: Sequence[AccessRequestItem], *, with_request: bool = False
) -> list[dict[str, Any]]:
    ids = [item.id for item in items]
    events, granted = service.events_of(session, ids), service.grants_of(session, ids)
    shown = []
    for item in items:
        view = _item(item, events[item.id], granted.get(item.id))
        if with_request:
            owner = item.request
            view |= {
                "requester": owner.requester,
                "title": owner.title,
                "purpose": owner.purpose,
                "duration_days": owner.duration_days,
            }
        shown.append(view)
    return shown


def _item(
    item: AccessRequestItem, events: Sequence[AccessEvent], grant: Grant | None
) -> dict[str, Any]:
    return {
        "id": item.id,
        "request_id": item.request_id,
        "dataset": item.dataset_accession,
        "dac": item.dac_accession,
        "status": item.status.value,
        "mismatches": item.mismatches,
        "comment": item.comment,
        "decided_by": item.decided_by,
        "decided_at": _time(item.decided_at),
        "grant": _grant(grant) if grant is not None else None,
        "events": [
            {
                "actor": event.actor,
                "status": event.status.value,
                "comment": event.comment,
                "at": _time(event.created_at),
            }
            for event in events
        ],
    }


def _decided(session: Session, item_id: int) -> dict[str, Any]:
    item = session.get(AccessRequestItem, item_id)
    assert item is not None  # the service just decided on it
    return _items(session, [item], with_request=True)[0]


def _grant(grant: Grant) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": grant.id,
        "subject": grant.subject,
        "dataset": grant.dataset_accession,
        "item_id": grant.item_id,
        "granted_by": grant.granted_by,
        "granted_at": _time(grant.granted_at),
        "expires_at": _time(grant.expires_at),
        "conditions": grant.conditions,
        "revoked_at": _time(grant.revoked_at),
        "revoked_by": grant.revoked_by,
        "active": grant.revoked_at is None and grant.expires_at > now,
    }


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
