"""The data access committee (DAC) workflow: requests, decisions, grants and their revocation.

A requester applies for released datasets with one purpose in DUO terms (:func:`apply`). The
request gets one item per dataset, since each dataset's DAC (dataset → policy → DAC) decides on
its own; each item keeps the automatic check of the purpose against the dataset's policy
(:func:`genofed.access.purpose.check_purpose`). An item moves::

    submitted ──approve──▶ approved ──revoke──▶ revoked
        │ ▲ └──reject──▶ rejected
        │ └─update── changes_requested ◀──request_changes── submitted
        └──withdraw──▶ withdrawn   (from submitted or changes_requested)

(a DAC may also reject an item waiting in changes_requested). Approving creates a
:class:`~genofed.db.Grant` for the requested duration, or a shorter one the DAC chooses; visas are
issued from grants. The DUO check decides nothing, but approving despite mismatches needs an
explicit ``acknowledge_mismatches``: the DAC must have seen them.

Only members of an item's DAC decide on it, never on their own request; DAC membership is
managed by operators. Every transition writes an :class:`~genofed.db.AccessEvent` (who, when,
the new status, the comment) and an audit entry in the same transaction, with ids only.

Every function works in the caller's session, which must be a writing one
(``db.session_scope(db.for_writing(engine))``) for the functions that change something: the
audit log needs it. Errors are :class:`AccessError` subclasses whose message says the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.access import audit
from genofed.access.purpose import Purpose, check_purpose, policy_conditions, read_purpose
from genofed.access.tokens import TokenRequestError, check_subject
from genofed.db import (
    AccessEvent,
    AccessRequest,
    AccessRequestItem,
    DacMember,
    Grant,
    MetadataObject,
    ObjectKind,
    ObjectStatus,
    RequestStatus,
)
from genofed.db.models import utcnow
from genofed.errors import GenofedError
from genofed.metadata.accessions import InvalidAccession
from genofed.metadata.datasets import _linked, find_dataset, find_object
from genofed.metadata.errors import MetadataError

OPEN = frozenset({RequestStatus.SUBMITTED, RequestStatus.CHANGES_REQUESTED})
MAX_DATASETS = 100  # per request
MAX_DURATION_DAYS = 3650
MAX_TITLE = 255
MAX_COMMENT = 10_000


class AccessError(GenofedError):
    """A DAC workflow step that cannot be done as asked."""


class InvalidInput(AccessError):
    """A value the step cannot use: an empty comment, a duration out of range, ..."""


class NotFoundError(AccessError):
    """No request, item, grant, dataset or DAC answers to the given reference."""


class NotAllowed(AccessError):
    """The caller may not do this; ``action``, ``dataset`` and ``detail`` let the caller of the
    service log the denied attempt after the transaction rolled back."""

    def __init__(
        self,
        message: str,
        *,
        action: str,
        dataset: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.action = action
        self.dataset = dataset
        self.detail = dict(detail or {})


class Conflict(AccessError):
    """The step does not fit where the item or dataset stands now."""


class IllegalTransition(Conflict):
    """The item's status does not allow the step (approving a rejected item, twice, ...)."""


class DatasetNotReleased(Conflict):
    """The dataset exists but cannot be requested: a draft, or deprecated."""


class AlreadyRequested(Conflict):
    """The requester has an open request for, or valid access to, the dataset already."""


class MismatchesNotAcknowledged(Conflict):
    """Approving an item whose purpose does not fit the policy needs an explicit override."""


# -- applying -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """A requestable dataset with the policy and DAC that govern it."""

    dataset: MetadataObject
    policy: MetadataObject
    dac: str

    @property
    def accession(self) -> str:
        return str(self.dataset.accession)


def apply(
    session: Session,
    country: str,
    requester: str,
    datasets: Sequence[str],
    *,
    title: str,
    purpose: Purpose | Mapping[str, Any],
    duration_days: int,
) -> AccessRequest:
    """Request access to released ``datasets`` (accessions or aliases) for one purpose.

    One item per dataset, each with the DUO check of the purpose against its policy. Nothing is
    stored unless every dataset can be requested.
    """
    wanted = read_purpose(purpose)
    title = _title(title)
    _duration(duration_days)
    targets = _targets(session, country, requester, datasets)
    request = AccessRequest(
        requester=requester,
        title=title,
        purpose=_stored(wanted),
        duration_days=duration_days,
    )
    session.add(request)
    session.flush()
    for target in targets:
        item = AccessRequestItem(
            request_id=request.id,
            dataset_accession=target.accession,
            dac_accession=target.dac,
            status=RequestStatus.SUBMITTED,
            mismatches=_mismatches(wanted, target.policy, duration_days, requester),
        )
        session.add(item)
        session.flush()
        _transition(session, item, requester, RequestStatus.SUBMITTED, None, "access.requested")
    session.refresh(request, ["items"])
    return request


def _targets(
    session: Session, country: str, requester: str, datasets: Sequence[str]
) -> list[_Target]:
    if not datasets:
        raise InvalidInput("name at least one dataset to request, by accession")
    if len(datasets) > MAX_DATASETS:
        raise InvalidInput(
            f"{len(datasets)} datasets in one request; at most {MAX_DATASETS}: split it"
        )
    targets: dict[str, _Target] = {}
    for reference in datasets:
        target = _target(session, country, reference)
        targets.setdefault(target.accession, target)
    for target in targets.values():
        _not_requested_yet(session, requester, target.accession)
    return list(targets.values())


def _target(session: Session, country: str, reference: str) -> _Target:
    """The released dataset ``reference`` names, with its policy and DAC."""
    try:
        dataset = find_dataset(session, country, reference)
    except (MetadataError, InvalidAccession) as error:
        raise NotFoundError(
            f"no dataset {reference!r} to request ({error}); check its accession in the "
            "node's catalogue of released datasets"
        ) from None
    return _governed(session, dataset)


def _governed(session: Session, dataset: MetadataObject) -> _Target:
    if dataset.status is not ObjectStatus.RELEASED:
        state = "deprecated (withdrawn)" if dataset.status is ObjectStatus.DEPRECATED else "not"
        raise DatasetNotReleased(
            f"dataset {dataset.accession} is {state} released: only released datasets can be "
            "requested; ask its submitter or the node operator"
        )
    policy = _linked(session, dataset, "policy")
    dac = _linked(session, policy, "dac") if policy is not None else None
    if policy is None or dac is None or dac.accession is None:
        raise DatasetNotReleased(
            f"dataset {dataset.accession} has no policy with a DAC to decide on requests: ask "
            "the node operator to fix its metadata"
        )
    return _Target(dataset, policy, dac.accession)


def _dataset(session: Session, accession: str) -> MetadataObject:
    """The dataset with the stored accession ``accession`` (as items and grants keep it)."""
    dataset = session.scalars(
        select(MetadataObject).where(
            MetadataObject.kind == ObjectKind.DATASET, MetadataObject.accession == accession
        )
    ).first()
    if dataset is None:
        raise NotFoundError(f"dataset {accession} is no longer on this node: ask its operator")
    return dataset


def _not_requested_yet(session: Session, requester: str, dataset: str) -> None:
    pending = session.scalars(
        select(AccessRequestItem)
        .join(AccessRequest, AccessRequest.id == AccessRequestItem.request_id)
        .where(
            AccessRequest.requester == requester,
            AccessRequestItem.dataset_accession == dataset,
            AccessRequestItem.status.in_(OPEN),
        )
        .limit(1)
    ).first()
    if pending is not None:
        raise AlreadyRequested(
            f"you already requested dataset {dataset} (request {pending.request_id}, item "
            f"{pending.id}, {pending.status.value}): update or withdraw that request instead"
        )
    granted = _active_grant(session, requester, dataset)
    if granted is not None:
        raise AlreadyRequested(
            f"you already have access to dataset {dataset} until "
            f"{granted.expires_at:%Y-%m-%d} (grant {granted.id}): apply again once it expires"
        )


def _active_grant(session: Session, subject: str, dataset: str) -> Grant | None:
    return session.scalars(
        select(Grant).where(
            Grant.subject == subject,
            Grant.dataset_accession == dataset,
            Grant.revoked_at.is_(None),
            Grant.expires_at > utcnow(),
        )
    ).first()


def _mismatches(
    purpose: Purpose, policy: MetadataObject, duration_days: int, requester: str
) -> list[str]:
    return check_purpose(purpose, policy.body, duration_days=duration_days, requester=requester)


def _stored(purpose: Purpose) -> dict[str, Any]:
    """The purpose as ``AccessRequest.purpose`` keeps it: modifiers written ``GS=BE``."""
    return purpose.model_dump(mode="json", exclude_none=True)


def _title(title: str) -> str:
    cleaned = " ".join(title.split())
    if not cleaned or len(cleaned) > MAX_TITLE:
        raise InvalidInput(f"the title must be 1 to {MAX_TITLE} characters: name your project")
    if any(ord(char) < 32 or ord(char) == 127 for char in cleaned):
        raise InvalidInput("the title contains a control character: remove it")
    return cleaned


def _duration(days: int) -> None:
    if not 1 <= days <= MAX_DURATION_DAYS:
        raise InvalidInput(
            f"the duration must be 1 to {MAX_DURATION_DAYS} days, not {days}: ask for the time "
            "your project needs (a DAC may shorten it)"
        )


# -- the requester's side -----------------------------------------------------------------------


def update(
    session: Session,
    requester: str,
    request_id: str,
    item_id: int,
    *,
    title: str | None = None,
    purpose: Purpose | Mapping[str, Any] | None = None,
    duration_days: int | None = None,
    comment: str | None = None,
) -> AccessRequestItem:
    """Answer a DAC's request for changes: edit the item's purpose, title or duration and send
    it back (``submitted``), checked again.

    The purpose belongs to the whole request. When the request has other items, this item moves
    to a new request of its own with the edited values, so the other DACs' items keep the
    purpose they are (or were) decided on; its id, events and history stay.
    """
    request, item = _own_item(session, requester, request_id, item_id)
    if item.status is not RequestStatus.CHANGES_REQUESTED:
        raise IllegalTransition(
            f"item {item.id} is {item.status.value}: only an item whose DAC requested changes "
            "can be updated"
        )
    wanted = read_purpose(purpose if purpose is not None else request.purpose)
    days = duration_days if duration_days is not None else request.duration_days
    _duration(days)
    target = request if len(request.items) == 1 else _split(session, request, item)
    target.title = _title(title) if title is not None else target.title
    target.purpose = _stored(wanted)
    target.duration_days = days
    governed = _governed(session, _dataset(session, item.dataset_accession))
    item.dac_accession = governed.dac
    item.mismatches = _mismatches(wanted, governed.policy, days, requester)
    item.status = RequestStatus.SUBMITTED
    _transition(
        session,
        item,
        requester,
        RequestStatus.SUBMITTED,
        _comment(comment, required=False),
        "access.updated",
        {"split_from": request.id} if target is not request else None,
    )
    return item


def _split(session: Session, request: AccessRequest, item: AccessRequestItem) -> AccessRequest:
    """A new request holding ``item`` alone, a copy of ``request`` to be edited."""
    copy = AccessRequest(
        requester=request.requester,
        title=request.title,
        purpose=dict(request.purpose),
        duration_days=request.duration_days,
    )
    session.add(copy)
    session.flush()
    item.request_id = copy.id
    session.flush()
    session.expire(request, ["items"])
    session.refresh(item, ["request"])
    return copy


def withdraw(
    session: Session,
    requester: str,
    request_id: str,
    *,
    item_id: int | None = None,
    comment: str | None = None,
) -> list[AccessRequestItem]:
    """Withdraw the request's open items (or only ``item_id``); decided items stay as they are."""
    request = _own_request(session, requester, request_id)
    items = request.items if item_id is None else [_item_of(request, item_id)]
    chosen = [item for item in items if item.status in OPEN]
    if not chosen:
        raise IllegalTransition(_nothing_to_withdraw(request, items))
    note = _comment(comment, required=False)
    for item in chosen:
        item.status = RequestStatus.WITHDRAWN
        _transition(session, item, requester, RequestStatus.WITHDRAWN, note, "access.withdrawn")
    return chosen


def _nothing_to_withdraw(request: AccessRequest, items: Sequence[AccessRequestItem]) -> str:
    shown = ", ".join(f"item {item.id} {item.status.value}" for item in items)
    return (
        f"nothing to withdraw in request {request.id} ({shown}): only submitted items or items "
        "waiting for changes can be withdrawn; approved access ends when the DAC revokes it"
    )


def requests_of(session: Session, requester: str) -> list[AccessRequest]:
    """The requester's requests, newest first."""
    return list(
        session.scalars(
            select(AccessRequest)
            .where(AccessRequest.requester == requester)
            .order_by(AccessRequest.created_at.desc(), AccessRequest.id)
        )
    )


def get_request(
    session: Session, request_id: str, viewer: str, *, operator: bool = False
) -> AccessRequest:
    """A request as its requester, a member of one of its DACs, or an operator sees it; to
    anyone else it does not exist."""
    request = session.get(AccessRequest, request_id)
    if request is not None and (
        operator
        or request.requester == viewer
        or set(dacs_of(session, viewer)) & {item.dac_accession for item in request.items}
    ):
        return request
    raise NotFoundError(f"no request {request_id} of yours: check its id ('genofed access status')")


def _own_request(session: Session, requester: str, request_id: str) -> AccessRequest:
    request = session.get(AccessRequest, request_id, with_for_update=True)
    if request is None or request.requester != requester:
        raise NotFoundError(
            f"no request {request_id} of yours: check its id ('genofed access status')"
        )
    return request


def _own_item(
    session: Session, requester: str, request_id: str, item_id: int
) -> tuple[AccessRequest, AccessRequestItem]:
    request = _own_request(session, requester, request_id)
    return request, _item_of(request, item_id)


def _item_of(request: AccessRequest, item_id: int) -> AccessRequestItem:
    for item in request.items:
        if item.id == item_id:
            return item
    listed = ", ".join(str(item.id) for item in request.items) or "none"
    raise NotFoundError(f"request {request.id} has no item {item_id}; its items: {listed}")


# -- the DAC's side -----------------------------------------------------------------------------


def dacs_of(session: Session, member: str) -> list[str]:
    """The accessions of the DACs ``member`` sits on."""
    return list(
        session.scalars(
            select(DacMember.dac_accession)
            .where(DacMember.subject == member)
            .order_by(DacMember.dac_accession)
        )
    )


def dac_items(
    session: Session, member: str, *, status: RequestStatus | None = None
) -> list[AccessRequestItem]:
    """The items the member's DACs decide on, oldest first (the queue), optionally by status."""
    query = (
        select(AccessRequestItem)
        .join(DacMember, DacMember.dac_accession == AccessRequestItem.dac_accession)
        .where(DacMember.subject == member)
        .order_by(AccessRequestItem.id)
    )
    if status is not None:
        query = query.where(AccessRequestItem.status == status)
    return list(session.scalars(query))


def dac_item(
    session: Session, member: str, item_id: int, *, operator: bool = False
) -> AccessRequestItem:
    """One item, for a member of its DAC (or an operator)."""
    item = session.get(AccessRequestItem, item_id)
    if item is None or not (operator or _is_member(session, item.dac_accession, member)):
        raise NotFoundError(f"no item {item_id} for your DACs: check its id ('genofed dac list')")
    return item


def approve(
    session: Session,
    member: str,
    item_id: int,
    *,
    days: int | None = None,
    comment: str | None = None,
    acknowledge_mismatches: bool = False,
) -> Grant:
    """Approve a submitted item: a grant for the requested duration, or the shorter ``days``.

    The purpose is checked again against the policy as it is now, for the days granted; if it
    does not fit, ``acknowledge_mismatches`` must say the DAC approves regardless.
    """
    item = _deciding(session, member, item_id, "dac.approved")
    _require(item, {RequestStatus.SUBMITTED}, "approved")
    request = item.request
    granted_days = _granted_days(days, request.duration_days)
    governed = _governed(session, _dataset(session, item.dataset_accession))
    wanted = read_purpose(request.purpose)
    # Checked for the access granted: a DAC can meet a time limit (TS) by shortening it.
    item.mismatches = _mismatches(wanted, governed.policy, granted_days, request.requester)
    if item.mismatches and not acknowledge_mismatches:
        raise MismatchesNotAcknowledged(
            f"item {item.id}'s purpose does not fit the policy of {item.dataset_accession}: "
            f"{'; '.join(item.mismatches)}. Approve with acknowledge_mismatches "
            "(--acknowledge-mismatches) if the DAC grants access regardless, or request changes"
        )
    now = utcnow()
    grant = Grant(
        subject=request.requester,
        dataset_accession=item.dataset_accession,
        item_id=item.id,
        granted_by=member,
        granted_at=now,
        expires_at=now + timedelta(days=granted_days),
        conditions=policy_conditions(governed.policy.body).terms(),
    )
    session.add(grant)
    session.flush()
    _decide(item, member, RequestStatus.APPROVED, comment, now)
    _transition(
        session,
        item,
        member,
        RequestStatus.APPROVED,
        item.comment,
        "dac.approved",
        {
            "grant": grant.id,
            "days": granted_days,
            "expires_at": grant.expires_at,
            "mismatches_acknowledged": bool(item.mismatches),
        },
    )
    return grant


def _granted_days(days: int | None, requested: int) -> int:
    if days is None:
        return requested
    if not 1 <= days <= requested:
        raise InvalidInput(
            f"a DAC may shorten the requested {requested} days, not extend them: give 1 to "
            f"{requested} days, not {days}"
        )
    return days


def reject(session: Session, member: str, item_id: int, *, comment: str) -> AccessRequestItem:
    """Reject a submitted item, or one waiting for changes; the comment tells the requester why."""
    item = _deciding(session, member, item_id, "dac.rejected")
    _require(item, OPEN, "rejected")
    _decide(item, member, RequestStatus.REJECTED, _comment(comment, required=True), utcnow())
    _transition(session, item, member, RequestStatus.REJECTED, item.comment, "dac.rejected")
    return item


def request_changes(
    session: Session, member: str, item_id: int, *, comment: str
) -> AccessRequestItem:
    """Send a submitted item back to the requester; the comment says what to change."""
    item = _deciding(session, member, item_id, "dac.changes_requested")
    _require(item, {RequestStatus.SUBMITTED}, "sent back for changes")
    note = _comment(comment, required=True)
    _decide(item, member, RequestStatus.CHANGES_REQUESTED, note, utcnow())
    _transition(
        session, item, member, RequestStatus.CHANGES_REQUESTED, note, "dac.changes_requested"
    )
    return item


def revoke(
    session: Session,
    actor: str,
    grant_or_item: str,
    *,
    comment: str,
    operator: bool = False,
) -> Grant:
    """Revoke a grant, named by its id or by its item's: visas of it stop working at once.

    Members of the grant's DAC may revoke it, and operators (to answer an incident).
    """
    note = _comment(comment, required=True)
    grant = _grant(session, grant_or_item)
    item = session.get(AccessRequestItem, grant.item_id) if grant.item_id is not None else None
    dac = item.dac_accession if item is not None else _dac_of_dataset(session, grant)
    if not (operator or (dac is not None and _is_member(session, dac, actor))):
        raise NotAllowed(
            f"grant {grant.id} belongs to DAC {dac}, which you are not a member of: only its "
            "members or an operator can revoke it",
            action="grant.revoked",
            dataset=grant.dataset_accession,
            detail={"grant": grant.id},
        )
    if grant.revoked_at is not None:
        raise IllegalTransition(
            f"grant {grant.id} was already revoked on {grant.revoked_at:%Y-%m-%d %H:%M} UTC by "
            f"{grant.revoked_by}"
        )
    grant.revoked_at, grant.revoked_by = utcnow(), actor
    if item is None:
        audit.record(
            session,
            actor=actor,
            action="grant.revoked",
            dataset=grant.dataset_accession,
            detail={"grant": grant.id},
        )
        return grant
    item.status = RequestStatus.REVOKED
    item.comment = note
    _transition(
        session, item, actor, RequestStatus.REVOKED, note, "grant.revoked", {"grant": grant.id}
    )
    return grant


def _grant(session: Session, grant_or_item: str) -> Grant:
    reference = grant_or_item.strip()
    if reference.isdigit():
        grant = session.scalars(
            select(Grant)
            .where(Grant.item_id == int(reference))
            .order_by(Grant.granted_at.desc())
            .limit(1)
            .with_for_update()
        ).first()
    else:
        grant = session.get(Grant, reference, with_for_update=True)
    if grant is None:
        raise NotFoundError(
            f"no grant {reference!r}: give a grant id or the id of an approved item "
            "('genofed dac grants')"
        )
    return grant


def _dac_of_dataset(session: Session, grant: Grant) -> str | None:
    try:
        dataset = _dataset(session, grant.dataset_accession)
    except NotFoundError:
        return None
    policy = _linked(session, dataset, "policy")
    dac = _linked(session, policy, "dac") if policy is not None else None
    return dac.accession if dac is not None else None


def dac_grants(
    session: Session, member: str, *, operator: bool = False, active_only: bool = False
) -> list[Grant]:
    """Grants of the member's DACs (an operator: all), newest first."""
    query = select(Grant).order_by(Grant.granted_at.desc(), Grant.id)
    if not operator:
        query = (
            query.join(AccessRequestItem, AccessRequestItem.id == Grant.item_id)
            .join(DacMember, DacMember.dac_accession == AccessRequestItem.dac_accession)
            .where(DacMember.subject == member)
        )
    if active_only:
        query = query.where(Grant.revoked_at.is_(None), Grant.expires_at > utcnow())
    return list(session.scalars(query))


def _deciding(session: Session, member: str, item_id: int, action: str) -> AccessRequestItem:
    """The item ``member`` decides on, locked: they sit on its DAC and did not request it."""
    item = session.get(AccessRequestItem, item_id, with_for_update=True)
    if item is None:
        raise NotFoundError(f"no request item {item_id}: check its id ('genofed dac list')")
    denied = {"item": item.id, "request": item.request_id}
    if not _is_member(session, item.dac_accession, member):
        raise NotAllowed(
            f"item {item.id} is decided by DAC {item.dac_accession}, which you are not a member "
            "of: ask one of its members, or an operator to add you ('genofed dac members add')",
            action=action,
            dataset=item.dataset_accession,
            detail=denied,
        )
    if item.request.requester == member:
        raise NotAllowed(
            f"item {item.id} is your own request: another member of DAC {item.dac_accession} "
            "must decide on it",
            action=action,
            dataset=item.dataset_accession,
            detail=denied,
        )
    return item


def _require(item: AccessRequestItem, allowed: Iterable[RequestStatus], done: str) -> None:
    if item.status in allowed:
        return
    by = f" by {item.decided_by}" if item.decided_by else ""
    when = f" on {item.decided_at:%Y-%m-%d}" if item.decided_at else ""
    why = {
        RequestStatus.APPROVED: "it is already approved; revoke its grant to end the access",
        RequestStatus.REJECTED: "a rejection is final; the requester may apply again",
        RequestStatus.REVOKED: "its grant was revoked; the requester may apply again",
        RequestStatus.WITHDRAWN: "the requester withdrew it",
        RequestStatus.CHANGES_REQUESTED: "it waits for the requester's changes",
        RequestStatus.SUBMITTED: "it waits for a decision",
    }[item.status]
    raise IllegalTransition(
        f"item {item.id} cannot be {done}: it is {item.status.value}{by}{when}; {why}"
    )


def _decide(
    item: AccessRequestItem,
    member: str,
    status: RequestStatus,
    comment: str | None,
    now: datetime,
) -> None:
    item.status = status
    item.comment = _comment(comment, required=False)
    item.decided_by = member
    item.decided_at = now


def _is_member(session: Session, dac: str, subject: str) -> bool:
    return session.get(DacMember, (dac, subject)) is not None


def _comment(comment: str | None, *, required: bool) -> str | None:
    text = (comment or "").strip()
    if not text:
        if required:
            raise InvalidInput("give a comment: the requester needs to know why")
        return None
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"the comment is longer than {MAX_COMMENT} characters: shorten it")
    if any((ord(char) < 32 and char not in "\t\n\r") or ord(char) == 127 for char in text):
        raise InvalidInput("the comment contains a control character: remove it")
    return text


# -- events -------------------------------------------------------------------------------------


def _transition(
    session: Session,
    item: AccessRequestItem,
    actor: str,
    status: RequestStatus,
    comment: str | None,
    action: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Record the step: an event on the item and an audit entry, ids only."""
    session.add(AccessEvent(item_id=item.id, actor=actor, status=status, comment=comment))
    detail = {
        "request": item.request_id,
        "item": item.id,
        "dac": item.dac_accession,
        **(extra or {}),
    }
    audit.record(session, actor=actor, action=action, dataset=item.dataset_accession, detail=detail)
    session.flush()


def events_of(session: Session, item_ids: Iterable[int]) -> dict[int, list[AccessEvent]]:
    """Each item's events, oldest first."""
    ids = list(item_ids)
    found: dict[int, list[AccessEvent]] = {item_id: [] for item_id in ids}
    if ids:
        query = select(AccessEvent).where(AccessEvent.item_id.in_(ids)).order_by(AccessEvent.id)
        for event in session.scalars(query):
            found[event.item_id].append(event)
    return found


def grants_of(session: Session, item_ids: Iterable[int]) -> dict[int, Grant]:
    """The grant of each approved (or revoked) item."""
    ids = list(item_ids)
    if not ids:
        return {}
    query = select(Grant).where(Grant.item_id.in_(ids)).order_by(Grant.granted_at)
    return {grant.item_id: grant for grant in session.scalars(query) if grant.item_id is not None}


# -- DAC membership -----------------------------------------------------------------------------


def find_dac(session: Session, country: str, dac: str) -> str:
    """The accession of the DAC ``dac`` names (accession or alias)."""
    try:
        found = find_object(session, country, ObjectKind.DAC, dac)
    except (MetadataError, InvalidAccession) as error:
        raise NotFoundError(f"{error}; DACs are submitted as metadata (dacs sheet)") from None
    return str(found.accession)


def members(session: Session, country: str, dac: str) -> list[str]:
    accession = find_dac(session, country, dac)
    return list(
        session.scalars(
            select(DacMember.subject)
            .where(DacMember.dac_accession == accession)
            .order_by(DacMember.subject)
        )
    )


def add_member(session: Session, country: str, operator: str, dac: str, subject: str) -> str:
    """Seat ``subject`` (a token subject) on the DAC; returns the DAC's accession."""
    accession = find_dac(session, country, dac)
    try:
        check_subject(subject)
    except TokenRequestError as error:
        raise InvalidInput(str(error)) from None
    if _is_member(session, accession, subject):
        raise Conflict(f"{subject} is already a member of DAC {accession}")
    session.add(DacMember(dac_accession=accession, subject=subject))
    session.flush()
    audit.record(
        session,
        actor=operator,
        action="dac.member_added",
        detail={"dac": accession, "member": subject},
    )
    return accession


def remove_member(session: Session, country: str, operator: str, dac: str, subject: str) -> str:
    """Take ``subject`` off the DAC; their past decisions stay as they were."""
    accession = find_dac(session, country, dac)
    seat = session.get(DacMember, (accession, subject))
    if seat is None:
        raise NotFoundError(
            f"{subject} is not a member of DAC {accession}: check the name "
            f"(members: {', '.join(members(session, country, accession)) or 'none'})"
        )
    session.delete(seat)
    session.flush()
    audit.record(
        session,
        actor=operator,
        action="dac.member_removed",
        detail={"dac": accession, "member": subject},
    )
    return accession
