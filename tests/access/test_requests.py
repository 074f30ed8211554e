"""The DAC workflow service: the life cycle of a request, every refused step, events and audit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dac_support import (
    BOB,
    EPILEPSY,
    FITS_EPI,
    JANE,
    MARC,
    OPS,
    Catalogue,
    audit_actions,
    build_catalogue,
    writing,
)

from genofed import db
from genofed.access import audit
from genofed.access import requests as service
from genofed.access.purpose import InvalidPurpose
from genofed.db import AccessRequest, AccessRequestItem, Grant, RequestStatus
from genofed.db.models import utcnow

COUNTRY = "BE"


@pytest.fixture
def catalogue(db_engine: Engine) -> Catalogue:
    return build_catalogue(db_engine)


def apply(
    engine: Engine,
    datasets: list[str],
    *,
    requester: str = BOB,
    purpose: dict[str, Any] | None = None,
    days: int = 365,
) -> tuple[str, list[int]]:
    """A request's id and its items' ids."""
    with writing(engine) as session:
        created = service.apply(
            session,
            COUNTRY,
            requester,
            datasets,
            title="Epilepsy genetics",
            purpose=purpose or FITS_EPI,
            duration_days=days,
        )
        return created.id, [item.id for item in created.items]


def item(engine: Engine, item_id: int) -> AccessRequestItem:
    with db.session_scope(engine) as session:
        found = session.get(AccessRequestItem, item_id)
        assert found is not None
        return found


def events(engine: Engine, item_id: int) -> list[tuple[str, str, str | None]]:
    with db.session_scope(engine) as session:
        found = service.events_of(session, [item_id])[item_id]
        return [(event.actor, event.status.value, event.comment) for event in found]


def step(engine: Engine, action: Callable[..., Any], *args: Any, **options: Any) -> Any:
    with writing(engine) as session:
        return action(session, *args, **options)


# -- the life cycle -----------------------------------------------------------------------------


def test_a_request_is_checked_sent_back_updated_approved_and_revoked(
    db_engine: Engine, catalogue: Catalogue
) -> None:
    before = utcnow()
    request_id, (epi, open_) = apply(db_engine, [catalogue.epi, "OPEN"])
    assert item(db_engine, epi).dac_accession == catalogue.uzl
    assert item(db_engine, open_).dac_accession == catalogue.ulb
    assert item(db_engine, epi).mismatches == []
    assert item(db_engine, epi).status is RequestStatus.SUBMITTED

    step(db_engine, service.request_changes, JANE, epi, comment="Which cohort centres?")
    sent_back = item(db_engine, epi)
    assert (sent_back.status, sent_back.comment) == (
        RequestStatus.CHANGES_REQUESTED,
        "Which cohort centres?",
    )
    assert (sent_back.decided_by, sent_back.decided_at is not None) == (JANE, True)

    changed = {**FITS_EPI, "description": "Epilepsy cohort of UZ Leuven and ULB."}
    updated = step(
        db_engine, service.update, BOB, request_id, epi, purpose=changed, comment="centres named"
    )
    # The request covered OPEN too: EPI moved to a request of its own with the new purpose.
    with db.session_scope(db_engine) as session:
        old = session.get(AccessRequest, request_id)
        assert old is not None and [found.id for found in old.items] == [open_]
        assert (
            "description" in old.purpose and old.purpose["description"] == FITS_EPI["description"]
        )
        moved = session.get(AccessRequest, item(db_engine, epi).request_id)
        assert moved is not None and moved.id != request_id
        assert moved.purpose["description"] == "Epilepsy cohort of UZ Leuven and ULB."
        assert (moved.title, moved.duration_days, moved.requester) == (
            "Epilepsy genetics",
            365,
            BOB,
        )
    assert updated.status is RequestStatus.SUBMITTED

    grant = step(db_engine, service.approve, JANE, epi, days=100, comment="Approved for 100 days")
    assert (grant.subject, grant.dataset_accession, grant.item_id) == (BOB, catalogue.epi, epi)
    assert grant.granted_by == JANE
    assert timedelta(days=100) <= grant.expires_at - before <= timedelta(days=100, minutes=1)
    assert grant.expires_at - grant.granted_at == timedelta(days=100)
    assert grant.conditions == [f"DS={EPILEPSY}", "IRB", "PUB", "GS=EU", "TS=P2Y", "NPU"]
    assert item(db_engine, epi).status is RequestStatus.APPROVED

    open_grant = step(db_engine, service.approve, MARC, open_)
    assert open_grant.expires_at - open_grant.granted_at == timedelta(days=365)
    assert open_grant.conditions == ["GRU"]

    revoked = step(db_engine, service.revoke, JANE, str(epi), comment="Data breach at the lab")
    assert revoked.id == grant.id and revoked.revoked_by == JANE
    assert revoked.revoked_at is not None and revoked.revoked_at >= grant.granted_at
    assert item(db_engine, epi).status is RequestStatus.REVOKED
    assert item(db_engine, epi).comment == "Data breach at the lab"

    assert events(db_engine, epi) == [
        (BOB, "submitted", None),
        (JANE, "changes_requested", "Which cohort centres?"),
        (BOB, "submitted", "centres named"),
        (JANE, "approved", "Approved for 100 days"),
        (JANE, "revoked", "Data breach at the lab"),
    ]
    assert events(db_engine, open_) == [(BOB, "submitted", None), (MARC, "approved", None)]
    with db.session_scope(db_engine) as session:
        stamps = [event.created_at for event in service.events_of(session, [epi])[epi]]
        assert stamps == sorted(stamps) and stamps[0] >= before
    assert [entry[1] for entry in audit_actions(db_engine)[2:]] == [
        "access.requested",
        "access.requested",
        "dac.changes_requested",
        "access.updated",
        "dac.approved",
        "dac.approved",
        "grant.revoked",
    ]


def test_audit_entries_carry_ids_only_and_the_chain_holds(
    db_engine: Engine, catalogue: Catalogue
) -> None:
    request_id, (epi,) = apply(db_engine, [catalogue.epi])
    grant = step(db_engine, service.approve, JANE, epi, comment="A secret reason")
    with db.session_scope(db_engine) as session:
        approved = audit.query(session, action="dac.approved")[0]
        assert approved.actor == JANE and approved.dataset == catalogue.epi
        assert approved.detail["request"] == request_id and approved.detail["item"] == epi
        assert approved.detail["grant"] == grant.id and approved.detail["days"] == 365
        assert "A secret reason" not in str(approved.detail)
        assert audit.verify(session).ok


def test_the_requester_and_the_dac_see_the_decision(
    db_engine: Engine, catalogue: Catalogue
) -> None:
    _, (epi, hmb) = apply(db_engine, [catalogue.epi, catalogue.hmb])
    step(db_engine, service.reject, JANE, hmb, comment="HMB data needs NCU accepted")
    with db.session_scope(db_engine) as session:
        [mine] = service.requests_of(session, BOB)
        assert [(found.id, found.status.value) for found in mine.items] == [
            (epi, "submitted"),
            (hmb, "rejected"),
        ]
        assert mine.items[1].comment == "HMB data needs NCU accepted"
        assert service.requests_of(session, MARC) == []
        # The HMB item is flagged: the purpose is DS on epilepsy but does not accept NCU.
        queue = service.dac_items(session, JANE)
        assert [(found.id, bool(found.mismatches)) for found in queue] == [
            (epi, False),
            (hmb, True),
        ]
        assert [
            found.id for found in service.dac_items(session, JANE, status=RequestStatus.SUBMITTED)
        ] == [epi]
        assert service.dac_items(session, MARC) == []
        assert service.dacs_of(session, JANE) == [catalogue.uzl]


def test_who_sees_a_request(db_engine: Engine, catalogue: Catalogue) -> None:
    request_id, _ = apply(db_engine, [catalogue.epi])
    with db.session_scope(db_engine) as session:
        assert service.get_request(session, request_id, BOB).id == request_id
        assert service.get_request(session, request_id, JANE).id == request_id
        assert service.get_request(session, request_id, OPS, operator=True).id == request_id
        for stranger in (MARC, "eve@example.org"):
            with pytest.raises(service.NotFoundError, match=f"no request {request_id} of yours"):
                service.get_request(session, request_id, stranger)


def test_withdrawing_one_item_then_the_rest(db_engine: Engine, catalogue: Catalogue) -> None:
    request_id, (epi, open_) = apply(db_engine, [catalogue.epi, catalogue.open])
    [gone] = step(db_engine, service.withdraw, BOB, request_id, item_id=open_, comment="not needed")
    assert gone.id == open_ and gone.status is RequestStatus.WITHDRAWN
    step(db_engine, service.request_changes, JANE, epi, comment="More detail please")
    [gone] = step(db_engine, service.withdraw, BOB, request_id)
    assert gone.id == epi
    with pytest.raises(service.IllegalTransition, match="nothing to withdraw"):
        step(db_engine, service.withdraw, BOB, request_id)
    assert events(db_engine, open_)[-1] == (BOB, "withdrawn", "not needed")
    assert [entry[1] for entry in audit_actions(db_engine)].count("access.withdrawn") == 2


def test_a_single_item_request_is_updated_in_place(db_engine: Engine, catalogue: Catalogue) -> None:
    request_id, (epi,) = apply(db_engine, [catalogue.epi], purpose={"permission": "HMB"})
    assert len(item(db_engine, epi).mismatches) == 5  # HMB, IRB, PUB, NPU, GS
    step(db_engine, service.request_changes, JANE, epi, comment="Fit the policy")
    step(
        db_engine,
        service.update,
        BOB,
        request_id,
        epi,
        purpose=FITS_EPI,
        title="Epilepsy",
        duration_days=200,
    )
    updated = item(db_engine, epi)
    assert (updated.request_id, updated.mismatches, updated.status) == (
        request_id,
        [],
        RequestStatus.SUBMITTED,
    )
    with db.session_scope(db_engine) as session:
        request = session.get(AccessRequest, request_id)
        assert request is not None and (request.title, request.duration_days) == ("Epilepsy", 200)


def test_approving_a_mismatch_needs_an_explicit_override(
    db_engine: Engine, catalogue: Catalogue
) -> None:
    _, (epi,) = apply(db_engine, [catalogue.epi], purpose={"permission": "HMB"}, days=1000)
    with pytest.raises(
        service.MismatchesNotAcknowledged, match="acknowledge-mismatches"
    ) as refused:
        step(db_engine, service.approve, JANE, epi)
    assert "ask for at most" in str(refused.value)  # TS=P2Y and 1000 days
    assert item(db_engine, epi).status is RequestStatus.SUBMITTED
    grant = step(db_engine, service.approve, JANE, epi, days=700, acknowledge_mismatches=True)
    assert grant.expires_at - grant.granted_at == timedelta(days=700)
    with db.session_scope(db_engine) as session:
        [entry] = audit.query(session, action="dac.approved")
        assert entry.detail["mismatches_acknowledged"] is True


# -- refused steps ------------------------------------------------------------------------------


def test_deciding_needs_a_seat_on_the_items_dac(db_engine: Engine, catalogue: Catalogue) -> None:
    _, (epi,) = apply(db_engine, [catalogue.epi])
    for action, options in (
        (service.approve, {}),
        (service.reject, {"comment": "no"}),
        (service.request_changes, {"comment": "change"}),
    ):
        with pytest.raises(
            service.NotAllowed, match=f"decided by DAC {catalogue.uzl}, which you are not a member"
        ) as refused:
            step(db_engine, action, MARC, epi, **options)
        assert refused.value.dataset == catalogue.epi and refused.value.detail["item"] == epi
    assert item(db_engine, epi).status is RequestStatus.SUBMITTED
    assert events(db_engine, epi) == [(BOB, "submitted", None)]


def test_a_member_cannot_decide_their_own_request(db_engine: Engine, catalogue: Catalogue) -> None:
    _, (epi,) = apply(db_engine, [catalogue.epi], requester=JANE)
    with pytest.raises(service.NotAllowed, match="your own request: another member"):
        step(db_engine, service.approve, JANE, epi)


@pytest.mark.parametrize(
    ("first", "then", "said"),
    [
        ("reject", "approve", "cannot be approved: it is rejected by jane@uzleuven.be on"),
        ("approve", "approve", "it is already approved; revoke its grant"),
        ("approve", "reject", "cannot be rejected: it is approved"),
        ("approve", "request_changes", "cannot be sent back for changes: it is approved"),
        ("request_changes", "approve", "it waits for the requester's changes"),
        ("withdraw", "approve", "the requester withdrew it"),
        ("revoke", "approve", "its grant was revoked"),
    ],
)
def test_illegal_transitions(
    db_engine: Engine, catalogue: Catalogue, first: str, then: str, said: str
) -> None:
    request_id, (epi,) = apply(db_engine, [catalogue.epi])
    actions: dict[str, Callable[[], Any]] = {
        "approve": lambda: step(db_engine, service.approve, JANE, epi),
        "reject": lambda: step(db_engine, service.reject, JANE, epi, comment="no"),
        "request_changes": lambda: step(db_engine, service.request_changes, JANE, epi, comment="c"),
        "withdraw": lambda: step(db_engine, service.withdraw, BOB, request_id),
    }
    if first == "revoke":
        actions["approve"]()
        step(db_engine, service.revoke, JANE, str(epi), comment="revoked")
    else:
        actions[first]()
    status = item(db_engine, epi).status
    with pytest.raises(service.IllegalTransition, match=said):
        actions[then]()
    assert item(db_engine, epi).status is status


def test_a_rejection_can_come_while_changes_are_awaited(
    db_engine: Engine, catalogue: Catalogue
) -> None:
    _, (epi,) = apply(db_engine, [catalogue.epi])
    step(db_engine, service.request_changes, JANE, epi, comment="Which centres?")
    step(db_engine, service.reject, JANE, epi, comment="No answer in three months")
    assert item(db_engine, epi).status is RequestStatus.REJECTED


def test_revoking_twice_or_without_a_seat(db_engine: Engine, catalogue: Catalogue) -> None:
    _, (epi,) = apply(db_engine, [catalogue.epi])
    grant = step(db_engine, service.approve, JANE, epi)
    with pytest.raises(service.NotAllowed, match="only its members or an operator"):
        step(db_engine, service.revoke, MARC, grant.id, comment="mine now")
    with pytest.raises(service.InvalidInput, match="give a comment"):
        step(db_engine, service.revoke, JANE, grant.id, comment="  ")
    step(db_engine, service.revoke, OPS, grant.id, comment="incident 42", operator=True)
    with pytest.raises(service.IllegalTransition, match=r"already revoked on .* by ops@node.be"):
        step(db_engine, service.revoke, JANE, grant.id, comment="again")
    with pytest.raises(service.NotFoundError, match="no grant 'nope'"):
        step(db_engine, service.revoke, JANE, "nope", comment="x")


def test_decisions_need_comments_and_a_duration_no_longer_than_asked(
    db_engine: Engine, catalogue: Catalogue
) -> None:
    _, (epi,) = apply(db_engine, [catalogue.epi], days=30)
    for action in (service.reject, service.request_changes):
        with pytest.raises(service.InvalidInput, match="give a comment: the requester needs"):
            step(db_engine, action, JANE, epi, comment="")
    with pytest.raises(service.InvalidInput, match="shorten the requested 30 days, not extend"):
        step(db_engine, service.approve, JANE, epi, days=31)
    with pytest.raises(service.NotFoundError, match="no request item 999"):
        step(db_engine, service.approve, JANE, 999)


def test_only_released_datasets_can_be_requested(db_engine: Engine, catalogue: Catalogue) -> None:
    with pytest.raises(
        service.DatasetNotReleased, match=f"dataset {catalogue.draft} is not released"
    ):
        apply(db_engine, [catalogue.open, catalogue.draft])
    with pytest.raises(service.NotFoundError, match="no dataset 'NOPE' to request"):
        apply(db_engine, ["NOPE"])
    with pytest.raises(service.NotFoundError, match="is a file accession: give a dataset's"):
        apply(db_engine, ["GFBEF00000000001L"])
    with pytest.raises(service.NotFoundError, match="wrong check character"):
        apply(db_engine, ["GFBED00000000001X"])
    with db.session_scope(db_engine) as session:  # nothing of the failed requests stayed
        assert session.scalar(select(func.count()).select_from(AccessRequest)) == 0


def test_a_deprecated_dataset_cannot_be_approved(db_engine: Engine, catalogue: Catalogue) -> None:
    from genofed.metadata import service as metadata

    _, (open_,) = apply(db_engine, [catalogue.open])
    with writing(db_engine) as session:
        metadata.deprecate_dataset(session, COUNTRY, catalogue.open)
    with pytest.raises(service.DatasetNotReleased, match="deprecated"):
        step(db_engine, service.approve, MARC, open_)


def test_a_request_twice_or_with_access_already(db_engine: Engine, catalogue: Catalogue) -> None:
    request_id, (epi,) = apply(db_engine, [catalogue.epi])
    with pytest.raises(
        service.AlreadyRequested, match=f"request {request_id}, item {epi}, submitted"
    ):
        apply(db_engine, [catalogue.epi])
    step(db_engine, service.approve, JANE, epi)
    with pytest.raises(service.AlreadyRequested, match="you already have access"):
        apply(db_engine, [catalogue.epi])
    step(db_engine, service.revoke, JANE, str(epi), comment="ended")
    apply(db_engine, [catalogue.epi, catalogue.epi])  # once revoked, again; duplicates merge


@pytest.mark.parametrize(
    ("change", "error", "said"),
    [
        ({"datasets": []}, service.InvalidInput, "name at least one dataset"),
        ({"title": "   "}, service.InvalidInput, "the title must be 1 to 255"),
        ({"duration_days": 0}, service.InvalidInput, "the duration must be 1 to 3650 days"),
        ({"purpose": {"permission": "DS"}}, InvalidPurpose, "DS (disease-specific research) needs"),
    ],
)
def test_an_unusable_request(
    db_engine: Engine,
    catalogue: Catalogue,
    change: dict[str, Any],
    error: type[Exception],
    said: str,
) -> None:
    arguments: dict[str, Any] = {
        "datasets": [catalogue.epi],
        "title": "T",
        "purpose": FITS_EPI,
        "duration_days": 10,
    } | change
    datasets = arguments.pop("datasets")
    with pytest.raises(error, match=said.replace("(", r"\(").replace(")", r"\)")):
        step(db_engine, service.apply, COUNTRY, BOB, datasets, **arguments)


def test_requesters_touch_only_their_own_requests(db_engine: Engine, catalogue: Catalogue) -> None:
    request_id, (epi,) = apply(db_engine, [catalogue.epi])
    with pytest.raises(service.NotFoundError, match=f"no request {request_id} of yours"):
        step(db_engine, service.withdraw, MARC, request_id)
    with pytest.raises(service.IllegalTransition, match="only an item whose DAC requested changes"):
        step(db_engine, service.update, BOB, request_id, epi, title="New")
    with pytest.raises(service.NotFoundError, match=f"has no item 999; its items: {epi}"):
        step(db_engine, service.update, BOB, request_id, 999, title="New")


# -- DAC membership -----------------------------------------------------------------------------


def test_dac_membership(db_engine: Engine, catalogue: Catalogue) -> None:
    with writing(db_engine) as session:
        assert (
            service.add_member(session, COUNTRY, OPS, "UZL-DAC", "anna@uzleuven.be")
            == catalogue.uzl
        )
        assert service.members(session, COUNTRY, catalogue.uzl) == ["anna@uzleuven.be", JANE]
    with pytest.raises(service.Conflict, match="already a member"):
        step(db_engine, service.add_member, COUNTRY, OPS, catalogue.uzl, JANE)
    with pytest.raises(service.InvalidInput, match="must be 2 to 255 characters"):
        step(db_engine, service.add_member, COUNTRY, OPS, catalogue.uzl, "x")
    with pytest.raises(service.NotFoundError, match="no dac with accession or alias 'NOPE'"):
        step(db_engine, service.add_member, COUNTRY, OPS, "NOPE", JANE)
    step(db_engine, service.remove_member, COUNTRY, OPS, catalogue.uzl, JANE)
    with pytest.raises(service.NotFoundError, match=r"not a member of DAC .* anna@uzleuven.be"):
        step(db_engine, service.remove_member, COUNTRY, OPS, catalogue.uzl, JANE)
    # Off the DAC, JANE no longer decides on its items.
    _, (epi,) = apply(db_engine, [catalogue.epi])
    with pytest.raises(service.NotAllowed):
        step(db_engine, service.approve, JANE, epi)
    assert audit_actions(db_engine)[2:4] == [
        (OPS, "dac.member_added", "allowed"),
        (OPS, "dac.member_removed", "allowed"),
    ]


def test_grants_of_a_dac(db_engine: Engine, catalogue: Catalogue) -> None:
    _, (epi, open_) = apply(db_engine, [catalogue.epi, catalogue.open])
    epi_grant = step(db_engine, service.approve, JANE, epi)
    open_grant = step(db_engine, service.approve, MARC, open_)
    step(db_engine, service.revoke, MARC, open_grant.id, comment="ended")
    with db.session_scope(db_engine) as session:
        assert [grant.id for grant in service.dac_grants(session, JANE)] == [epi_grant.id]
        assert [grant.id for grant in service.dac_grants(session, MARC)] == [open_grant.id]
        assert service.dac_grants(session, MARC, active_only=True) == []
        everything = service.dac_grants(session, OPS, operator=True)
        assert {grant.id for grant in everything} == {epi_grant.id, open_grant.id}
        stored = session.get(Grant, open_grant.id)
        assert stored is not None and stored.revoked_by == MARC


def test_a_dac_meets_a_time_limit_by_shortening_the_access(
    db_engine: Engine, catalogue: Catalogue
) -> None:
    _, (epi,) = apply(db_engine, [catalogue.epi], days=1000)
    [mismatch] = item(db_engine, epi).mismatches
    assert "(TS); you ask for 1000 days" in mismatch
    with pytest.raises(service.MismatchesNotAcknowledged):
        step(db_engine, service.approve, JANE, epi)
    grant = step(db_engine, service.approve, JANE, epi, days=700)
    assert grant.expires_at - grant.granted_at == timedelta(days=700)
    assert item(db_engine, epi).mismatches == []
