"""The Data Access Committee's pages: the inbox of requests, decisions, grants and revocation.

The same rules as ``/dac/...``: the inbox and decisions need the ``dac_member`` role and show
only the items of the committees the member sits on (the service's queries are per member);
nobody decides on their own request; grants are for DAC members (their committees' grants) and
operators (all grants, to answer an incident). A refused decision is audited as denied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlalchemy.orm import Session

from genofed.access import requests as access
from genofed.access.purpose import LABELS
from genofed.db import AccessRequestItem, Grant, RequestStatus
from genofed.db.models import utcnow
from genofed.web import render
from genofed.web.routing import PortalRoute
from genofed.web.session import Visitor, acting, viewing
from genofed.web.work import REFUSALS, reading, writing

DAC_MEMBER, OPERATOR = "dac_member", "operator"
T = TypeVar("T")
router = APIRouter(route_class=PortalRoute)
deciding_view = viewing(DAC_MEMBER, doing="Deciding on access requests")
deciding = acting(DAC_MEMBER, doing="Deciding on access requests")
overseeing_view = viewing(DAC_MEMBER, OPERATOR, doing="Managing grants")
overseeing = acting(DAC_MEMBER, OPERATOR, doing="Managing grants")


# -- the inbox ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A request item as its committee sees it: who asks, for what purpose, and the DUO check."""

    id: int
    request_id: str
    requester: str
    title: str
    purpose: dict[str, Any]
    duration_days: int
    dataset: str
    dac: str
    status: str
    mismatches: list[str]
    comment: str | None
    asked_at: datetime
    own: bool  # the member's own request: another member must decide


def pending_view(item: AccessRequestItem, member: str) -> Pending:
    owner = item.request
    return Pending(
        id=item.id,
        request_id=item.request_id,
        requester=owner.requester,
        title=owner.title,
        purpose=dict(owner.purpose),
        duration_days=owner.duration_days,
        dataset=item.dataset_accession,
        dac=item.dac_accession,
        status=item.status.value,
        mismatches=list(item.mismatches or []),
        comment=item.comment,
        asked_at=owner.created_at,
        own=owner.requester == member,
    )


@router.get("/dac")
def inbox(request: Request, visitor: Annotated[Visitor, Depends(deciding_view)]) -> Response:
    """The items of the visitor's committees that wait for a decision, oldest first, and those
    sent back for changes."""
    with reading(request) as session:
        dacs = access.dacs_of(session, visitor.subject)
        waiting = _items(session, visitor.subject, RequestStatus.SUBMITTED)
        returned = _items(session, visitor.subject, RequestStatus.CHANGES_REQUESTED)
    return render.page(
        request,
        "dac.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="DAC inbox",
        context={"dacs": dacs, "waiting": waiting, "returned": returned, "labels": LABELS},
    )


def _items(session: Session, member: str, status: RequestStatus) -> list[Pending]:
    found = access.dac_items(session, member, status=status)
    return [pending_view(item, member) for item in found]


def _decide(
    request: Request,
    visitor: Visitor,
    step: Callable[[Session], T],
    done: Callable[[T], str],
) -> Response:
    """Run one decision in a writing session; back to the inbox with what happened (or why
    the service refused it)."""
    try:
        result = writing(request, visitor, step)
    except REFUSALS as error:
        return render.redirect(request, "/dac", render.Flash("error", str(error)))
    return render.redirect(request, "/dac", render.Flash("ok", done(result)))


def _optional_days(text: str) -> int | None:
    if not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise access.InvalidInput(
            f"give the days of access as a whole number, not {text!r}"
        ) from None


@router.post("/dac/items/{item_id}/approve")
def approve(
    request: Request,
    item_id: int,
    visitor: Annotated[Visitor, Depends(deciding)],
    comment: Annotated[str, Form(max_length=access.MAX_COMMENT)] = "",
    days: Annotated[str, Form(max_length=10)] = "",
    acknowledge: Annotated[bool, Form()] = False,
) -> Response:
    """Approve: a grant for the requested days, or fewer."""

    def step(session: Session) -> Grant:
        return access.approve(
            session,
            visitor.subject,
            item_id,
            days=_optional_days(days),
            comment=comment or None,
            acknowledge_mismatches=acknowledge,
        )

    return _decide(
        request,
        visitor,
        step,
        lambda grant: (
            f"Item {item_id} approved: {grant.subject} may read {grant.dataset_accession} "
            f"until {render.when(grant.expires_at)}."
        ),
    )


@router.post("/dac/items/{item_id}/reject")
def reject(
    request: Request,
    item_id: int,
    visitor: Annotated[Visitor, Depends(deciding)],
    comment: Annotated[str, Form(max_length=access.MAX_COMMENT)] = "",
) -> Response:
    """Reject, saying why: final for this item."""

    def step(session: Session) -> None:
        access.reject(session, visitor.subject, item_id, comment=comment)

    return _decide(
        request,
        visitor,
        step,
        lambda _: f"Item {item_id} rejected; the requester sees your reason.",
    )


@router.post("/dac/items/{item_id}/changes")
def request_changes(
    request: Request,
    item_id: int,
    visitor: Annotated[Visitor, Depends(deciding)],
    comment: Annotated[str, Form(max_length=access.MAX_COMMENT)] = "",
) -> Response:
    """Send the item back to the requester, saying what to change."""

    def step(session: Session) -> None:
        access.request_changes(session, visitor.subject, item_id, comment=comment)

    return _decide(
        request, visitor, step, lambda _: f"Item {item_id} sent back to the requester for changes."
    )


# -- grants -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantView:
    id: str
    subject: str
    dataset: str
    item_id: int | None
    granted_by: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    active: bool


def grant_view(grant: Grant, now: datetime) -> GrantView:
    return GrantView(
        id=grant.id,
        subject=grant.subject,
        dataset=grant.dataset_accession,
        item_id=grant.item_id,
        granted_by=grant.granted_by,
        granted_at=grant.granted_at,
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        revoked_by=grant.revoked_by,
        active=grant.revoked_at is None and grant.expires_at > now,
    )


@router.get("/grants")
def grants(request: Request, visitor: Annotated[Visitor, Depends(overseeing_view)]) -> Response:
    """Grants of the visitor's committees (operators: every grant), newest first."""
    operator = visitor.identity.has_role(OPERATOR)
    with reading(request) as session:
        found = access.dac_grants(session, visitor.subject, operator=operator)
        now = utcnow()
        shown = [grant_view(grant, now) for grant in found]
    return render.page(
        request,
        "grants.html",
        identity=visitor.identity,
        csrf=visitor.csrf,
        title="Grants",
        context={"grants": shown, "operator": operator},
    )


@router.post("/grants/{grant_id}/revoke")
def revoke(
    request: Request,
    grant_id: str,
    visitor: Annotated[Visitor, Depends(overseeing)],
    comment: Annotated[str, Form(max_length=access.MAX_COMMENT)] = "",
) -> Response:
    """Revoke a grant: the visas issued from it stop working at once."""
    operator = visitor.identity.has_role(OPERATOR)

    def step(session: Session) -> Grant:
        return access.revoke(session, visitor.subject, grant_id, comment=comment, operator=operator)

    try:
        grant = writing(request, visitor, step)
    except REFUSALS as error:
        return render.redirect(request, "/grants", render.Flash("error", str(error)))
    done = (
        f"Grant {grant.id} revoked: {grant.subject} can no longer read {grant.dataset_accession}."
    )
    return render.redirect(request, "/grants", render.Flash("ok", done))
