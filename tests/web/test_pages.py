"""The portal's pages through FastAPI's TestClient: sessions, roles, CSRF, and the forms.

Each page must render for the roles the matching API route admits and be refused to the others
(a sign-in redirect without a session, 403 with one); every form that changes something must be
refused without its CSRF token; and no page may show one user's requests to another.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

from portal_support import (
    ALICE,
    BOB,
    CAROL,
    CORA,
    FITS_EPI,
    JANE,
    MARC,
    OPS,
    PASSWORD,
    Catalogue,
    add_users,
    build_catalogue,
    make_node,
    portal_app,
    token,
)

from genofed import db
from genofed.access import requests as access
from genofed.access.tokens import issue_token
from genofed.config import Settings
from genofed.errors import GenofedError
from genofed.web.render import SESSION_COOKIE
from genofed.web.session import LOGIN_COOKIE

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NONCE = re.compile(r'name="nonce" value="([^"]+)"')


@dataclass
class Portal:
    settings: Settings
    app: FastAPI
    engine: Engine
    catalogue: Catalogue

    def client(self, user: str | None = None) -> TestClient:
        """A browser of its own (cookie jar), signed in as ``user`` unless None."""
        client = TestClient(self.app, follow_redirects=False)
        if user is not None:
            client.cookies.set(SESSION_COOKIE, token(self.settings, user), path="/portal")
        return client


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[Portal]:
    settings = make_node(tmp_path / "node")
    app = portal_app(settings)
    with TestClient(app):  # runs the lifespan: the node's database, stores and queue
        engine = app.state.node.engine
        add_users(engine)
        yield Portal(settings, app, engine, build_catalogue(engine))


def csrf_of(page: Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def fitting_application(
    catalogue: Catalogue, title: str = "Epilepsy genetics"
) -> dict[str, object]:
    return {
        "datasets": [catalogue.epi],
        "title": title,
        "permission": "DS",
        "diseases": ", ".join(FITS_EPI["diseases"]),
        "modifiers": FITS_EPI["modifiers"][:3],
        "country": "BE",
        "description": FITS_EPI["description"],
        "duration_days": "365",
    }


def apply(portal: Portal, client: TestClient, **changes: object) -> Response:
    """Send an application for EPI that fits its policy, from the apply form."""
    form = csrf_of(client.get("/portal/requests/new"))
    data = fitting_application(portal.catalogue) | changes
    return client.post("/portal/requests", data={"csrf": form, **data})


def only_item(engine: Engine) -> int:
    with db.session_scope(engine) as session:
        return int(session.scalars(select(db.AccessRequestItem.id)).one())


def audit_rows(engine: Engine) -> list[tuple[str, str, str]]:
    with db.session_scope(engine) as session:
        rows = session.execute(
            select(db.AuditEntry.actor, db.AuditEntry.action, db.AuditEntry.outcome)
        ).all()
        return [(actor, action, outcome) for actor, action, outcome in rows]


# -- signing in ---------------------------------------------------------------------------------


def test_password_sign_in_keeps_the_token_in_a_strict_http_only_cookie(portal: Portal) -> None:
    client = portal.client()
    form = client.get("/portal/login?next=/portal/requests")
    assert form.status_code == 200
    assert 'for="username"' in form.text and 'for="password"' in form.text
    nonce = NONCE.search(form.text)
    assert nonce is not None
    signed = client.post(
        "/portal/login",
        data={
            "nonce": nonce.group(1),
            "username": BOB,
            "password": PASSWORD,
            "next": "/portal/requests",
        },
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/portal/requests"
    cookie = next(
        value
        for name, value in signed.headers.multi_items()
        if name == "set-cookie" and value.startswith(f"{SESSION_COOKIE}=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/portal" in cookie
    assert "Secure" not in cookie  # the node's public URL is http://
    home = client.get("/portal/")
    assert home.status_code == 200
    assert (
        "My requests" in home.text and "DAC inbox" not in home.text and "Audit log" not in home.text
    )
    assert home.headers["content-security-policy"].startswith("default-src 'none'")
    assert home.headers["cache-control"] == "no-store"


def test_cookies_are_secure_when_the_public_url_is_https(portal: Portal) -> None:
    portal.settings.http.public_url = "https://ega.example.org"
    portal.settings.tokens.issuer = "https://ega.example.org"
    client = TestClient(portal.app, base_url="https://testserver", follow_redirects=False)
    nonce = NONCE.search(client.get("/portal/login").text)
    assert nonce is not None
    signed = client.post(
        "/portal/login", data={"nonce": nonce.group(1), "username": BOB, "password": PASSWORD}
    )
    cookies = [value for name, value in signed.headers.multi_items() if name == "set-cookie"]
    assert any(value.startswith(SESSION_COOKIE) and "Secure" in value for value in cookies)


def test_a_wrong_password_is_refused_and_audited_like_the_api(portal: Portal) -> None:
    client = portal.client()
    nonce = NONCE.search(client.get("/portal/login").text)
    assert nonce is not None
    refused = client.post(
        "/portal/login", data={"nonce": nonce.group(1), "username": BOB, "password": "wrong one!"}
    )
    assert refused.status_code == 401
    assert "wrong user name or password" in refused.text.lower()
    assert SESSION_COOKIE not in refused.cookies
    assert (BOB, "login", "denied") in audit_rows(portal.engine)


def test_the_sign_in_form_needs_its_own_nonce(portal: Portal) -> None:
    client = portal.client()
    assert LOGIN_COOKIE in client.get("/portal/login").cookies
    refused = client.post(
        "/portal/login", data={"nonce": "x" * 43, "username": BOB, "password": PASSWORD}
    )
    assert refused.status_code == 403
    stranger = portal.client()  # no nonce cookie at all: a cross-site post
    assert (
        stranger.post(
            "/portal/login", data={"nonce": "x" * 43, "username": BOB, "password": PASSWORD}
        ).status_code
        == 403
    )


def test_a_pasted_token_signs_in_and_a_bad_one_is_explained(portal: Portal) -> None:
    client = portal.client()
    nonce = NONCE.search(client.get("/portal/login").text)
    assert nonce is not None
    bad = client.post("/portal/login", data={"nonce": nonce.group(1), "token": "not.a.token"})
    assert bad.status_code == 401 and "cannot be used" in bad.text
    good = client.post(
        "/portal/login", data={"nonce": nonce.group(1), "token": token(portal.settings, JANE)}
    )
    assert good.status_code == 303
    assert "DAC inbox" in client.get("/portal/").text


def test_only_portal_paths_are_followed_after_sign_in(portal: Portal) -> None:
    client = portal.client()
    nonce = NONCE.search(client.get("/portal/login").text)
    assert nonce is not None
    signed = client.post(
        "/portal/login",
        data={
            "nonce": nonce.group(1),
            "username": BOB,
            "password": PASSWORD,
            "next": "https://evil.example/portal",
        },
    )
    assert signed.headers["location"] == "/portal/"


def test_sign_out_drops_the_session(portal: Portal) -> None:
    client = portal.client()
    nonce = NONCE.search(client.get("/portal/login").text)
    assert nonce is not None
    client.post(
        "/portal/login", data={"nonce": nonce.group(1), "username": BOB, "password": PASSWORD}
    )
    home = client.get("/portal/")
    assert client.post("/portal/logout", data={}).status_code == 403  # no CSRF token
    out = client.post("/portal/logout", data={"csrf": csrf_of(home)})
    assert out.status_code == 303 and out.headers["location"] == "/portal/login"
    assert client.get("/portal/").status_code == 303


def test_a_forged_session_goes_back_to_sign_in_saying_why(portal: Portal) -> None:
    client = portal.client()
    valid = issue_token(portal.settings, BOB, ["requester"])
    client.cookies.set(SESSION_COOKIE, valid[:-4] + "AAAA", path="/portal")
    forged = client.get("/portal/requests")
    assert forged.status_code == 303
    assert forged.headers["location"] == "/portal/login?next=/portal/requests"
    client.cookies.delete(SESSION_COOKIE)
    login = client.get("/portal/login?next=/portal/requests")
    assert "Your session ended" in login.text and "signature does not verify" in login.text


# -- roles --------------------------------------------------------------------------------------

PAGES = {
    "/portal/requests": {BOB, CAROL},
    "/portal/requests/new": {BOB, CAROL},
    "/portal/data": {BOB, CAROL, JANE, MARC, OPS, ALICE, CORA},  # like /data/datasets: anyone
    "/portal/dac": {JANE, MARC},
    "/portal/grants": {JANE, MARC, OPS},
    "/portal/files": {ALICE},
    "/portal/metadata": {ALICE, OPS},
    "/portal/datasets": {ALICE, OPS},
    "/portal/pipeline": {OPS},
    "/portal/audit": {OPS},
    "/portal/": {BOB, CAROL, JANE, MARC, OPS, ALICE, CORA},
    "/portal/pathogen/submit": {ALICE, OPS},
    "/portal/pathogen/curation": {CORA, OPS},
    "/portal/pathogen/records": {BOB, CAROL, JANE, MARC, OPS, ALICE, CORA},
    "/portal/pathogen/mutations": {BOB, CAROL, JANE, MARC, OPS, ALICE, CORA},
}


@pytest.mark.parametrize("path", sorted(PAGES))
def test_each_page_needs_a_session(portal: Portal, path: str) -> None:
    answer = portal.client().get(path)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/portal/login?next={path}"


def test_each_page_renders_for_its_roles_and_is_refused_to_the_others(portal: Portal) -> None:
    everyone = {BOB, CAROL, JANE, MARC, OPS, ALICE, CORA}
    for path, allowed in PAGES.items():
        for user in everyone:
            answer = portal.client(user).get(path)
            expected = 200 if user in allowed else 403
            assert answer.status_code == expected, (path, user, answer.text[:300])
            assert "<h1>" in answer.text and 'lang="en"' in answer.text


def test_menus_show_only_what_the_roles_open(portal: Portal) -> None:
    links = {
        user: set(
            re.findall(r'<li><a href="(/portal/[a-z/]*)"', portal.client(user).get("/portal/").text)
        )
        for user in (BOB, JANE, ALICE, OPS, CORA)
    }
    everyone = {
        "/portal/",
        "/portal/catalogue",
        "/portal/beacon",
        "/portal/pathogen/records",
        "/portal/pathogen/mutations",
    }
    assert links[BOB] == everyone | {"/portal/requests/new", "/portal/requests", "/portal/data"}
    assert links[JANE] == everyone | {"/portal/dac", "/portal/grants"}
    assert links[ALICE] == everyone | {
        "/portal/files",
        "/portal/metadata",
        "/portal/datasets",
        "/portal/pathogen/submit",
    }
    assert links[OPS] == everyone | {
        "/portal/grants",
        "/portal/metadata",
        "/portal/datasets",
        "/portal/pipeline",
        "/portal/audit",
        "/portal/pathogen/submit",
        "/portal/pathogen/curation",
    }
    assert links[CORA] == everyone | {"/portal/pathogen/curation"}


def test_a_refused_page_says_which_role_it_needs(portal: Portal) -> None:
    answer = portal.client(BOB).get("/portal/dac")
    assert answer.status_code == 403
    assert "needs the dac_member role" in answer.text
    assert "My requests" in answer.text  # the menu stays: the visitor can go on


# -- CSRF ---------------------------------------------------------------------------------------

FORMS = [
    ("/portal/requests", BOB),
    ("/portal/requests/R1/withdraw", BOB),
    ("/portal/requests/R1/items/1", BOB),
    ("/portal/dac/items/1/approve", JANE),
    ("/portal/dac/items/1/reject", JANE),
    ("/portal/dac/items/1/changes", JANE),
    ("/portal/grants/G1/revoke", JANE),
    ("/portal/datasets/X/release", ALICE),
    ("/portal/pipeline/requeue", OPS),
    ("/portal/logout", BOB),
]


@pytest.mark.parametrize(("path", "user"), FORMS)
def test_every_form_is_refused_without_its_csrf_token(portal: Portal, path: str, user: str) -> None:
    client = portal.client(user)
    missing = client.post(path, data={"comment": "x", "title": "t"})
    assert missing.status_code == 403
    assert "security token" in missing.text
    other_session = csrf_of(portal.client(CAROL).get("/portal/requests/new"))
    assert client.post(path, data={"csrf": other_session}).status_code == 403


def test_the_metadata_upload_is_refused_without_its_csrf_token(portal: Portal) -> None:
    client = portal.client(ALICE)
    sheet = ("samples.tsv", b"alias\tsex\nS1\tfemale\n", "text/tab-separated-values")
    assert client.post("/portal/metadata", files={"files": sheet}).status_code == 403


def test_a_refused_form_stores_nothing(portal: Portal) -> None:
    client = portal.client(BOB)
    client.post("/portal/requests", data=fitting_application(portal.catalogue))
    with db.session_scope(portal.engine) as session:
        assert session.scalars(select(db.AccessRequest)).first() is None


# -- the access workflow ------------------------------------------------------------------------


def test_apply_then_approve_then_my_data_shows_the_download_command(portal: Portal) -> None:
    bob, jane, marc = portal.client(BOB), portal.client(JANE), portal.client(MARC)
    assert "You may not download any dataset" in bob.get("/portal/data").text

    sent = apply(portal, bob)
    assert sent.status_code == 303 and sent.headers["location"] == "/portal/requests"
    mine = bob.get("/portal/requests")
    assert "is sent: each dataset" in mine.text  # the flash, once
    assert "Epilepsy genetics" in mine.text and "status-submitted" in mine.text

    inbox = jane.get("/portal/dac")
    assert "Epilepsy genetics" in inbox.text and BOB in inbox.text
    assert "the purpose fits the policy" in inbox.text
    assert "Genotype-phenotype study of early-onset epilepsy." in inbox.text
    assert "Epilepsy genetics" not in marc.get("/portal/dac").text  # not MARC's committee

    item = only_item(portal.engine)
    approved = jane.post(
        f"/portal/dac/items/{item}/approve",
        data={"csrf": csrf_of(inbox), "comment": "Welcome aboard", "days": "30"},
    )
    assert approved.status_code == 303
    assert "approved" in jane.get("/portal/dac").text

    data = bob.get("/portal/data")
    epi = portal.catalogue.epi
    command = f"genofed download {epi} --key YOUR.sec --node {portal.settings.http.public_url}"
    assert command in data.text
    expires = datetime.now(UTC) + timedelta(days=30)
    assert f"{expires:%Y-%m-%d}" in data.text
    assert "status-approved" in bob.get("/portal/requests").text
    assert (BOB, "data.list", "allowed") in audit_rows(portal.engine)

    grants = jane.get("/portal/grants")
    assert epi in grants.text and BOB in grants.text


def test_a_committee_member_cannot_decide_for_another_committee(portal: Portal) -> None:
    apply(portal, portal.client(BOB))
    marc = portal.client(MARC)
    item = only_item(portal.engine)
    refused = marc.post(
        f"/portal/dac/items/{item}/approve", data={"csrf": csrf_of(marc.get("/portal/dac"))}
    )
    assert refused.status_code == 303
    page = marc.get("/portal/dac")
    assert "which you are not a member of" in page.text
    assert (MARC, "dac.approved", "denied") in audit_rows(portal.engine)
    with db.session_scope(portal.engine) as session:
        assert session.get(db.AccessRequestItem, item).status is db.RequestStatus.SUBMITTED


def test_changes_requested_then_answered_then_rejected_with_a_reason(portal: Portal) -> None:
    bob, jane = portal.client(BOB), portal.client(JANE)
    apply(portal, bob)
    item = only_item(portal.engine)
    csrf = csrf_of(jane.get("/portal/dac"))
    no_reason = jane.post(f"/portal/dac/items/{item}/reject", data={"csrf": csrf, "comment": ""})
    assert no_reason.status_code == 303
    assert "comment" in jane.get("/portal/dac").text.lower()
    jane.post(
        f"/portal/dac/items/{item}/changes",
        data={"csrf": csrf, "comment": "Name your ethics committee."},
    )
    mine = bob.get("/portal/requests")
    assert "Name your ethics committee." in mine.text and "Change and resend" in mine.text
    with db.session_scope(portal.engine) as session:
        request_id = session.get(db.AccessRequestItem, item).request_id
    edit = bob.get(f"/portal/requests/{request_id}/items/{item}/edit")
    assert edit.status_code == 200 and "Name your ethics committee." in edit.text
    resent = bob.post(
        f"/portal/requests/{request_id}/items/{item}",
        data={
            "csrf": csrf_of(edit),
            **fitting_application(portal.catalogue, "Epilepsy genetics, UZ ethics 2026/17"),
            "comment": "Added the ethics reference.",
        },
    )
    assert resent.status_code == 303
    inbox = jane.get("/portal/dac")
    assert "UZ ethics 2026/17" in inbox.text
    jane.post(f"/portal/dac/items/{item}/reject", data={"csrf": csrf, "comment": "Out of scope."})
    assert "Out of scope." in bob.get("/portal/requests").text


def test_a_refused_application_is_shown_again_with_its_reason(portal: Portal) -> None:
    bob = portal.client(BOB)
    refused = apply(portal, bob, datasets=[], title="My <b>unfinished</b> project")
    assert refused.status_code == 422
    assert "name at least one dataset" in refused.text
    assert 'value="My &lt;b&gt;unfinished&lt;/b&gt; project"' in refused.text  # kept, escaped
    wrong = apply(portal, bob, diseases="")
    assert wrong.status_code == 422 and "DS (disease-specific research) needs" in wrong.text


def test_a_mismatching_purpose_needs_the_committee_to_acknowledge_it(portal: Portal) -> None:
    bob, jane = portal.client(BOB), portal.client(JANE)
    apply(portal, bob, modifiers=["IRB"])  # accepts neither PUB nor NPU
    inbox = jane.get("/portal/dac")
    assert "the purpose does not fit the policy" in inbox.text
    assert "Approve although the purpose does not fit" in inbox.text
    item = only_item(portal.engine)
    csrf = csrf_of(inbox)
    jane.post(f"/portal/dac/items/{item}/approve", data={"csrf": csrf})
    assert "acknowledge" in jane.get("/portal/dac").text
    done = jane.post(
        f"/portal/dac/items/{item}/approve", data={"csrf": csrf, "acknowledge": "true"}
    )
    assert done.status_code == 303
    assert portal.catalogue.epi in bob.get("/portal/data").text


def test_revoking_a_grant_from_the_grants_page_ends_the_access(portal: Portal) -> None:
    bob, jane = portal.client(BOB), portal.client(JANE)
    apply(portal, bob)
    item = only_item(portal.engine)
    csrf = csrf_of(jane.get("/portal/dac"))
    jane.post(f"/portal/dac/items/{item}/approve", data={"csrf": csrf})
    with db.session_scope(portal.engine) as session:
        grant = session.scalars(select(db.Grant.id)).one()
    blank = jane.post(f"/portal/grants/{grant}/revoke", data={"csrf": csrf, "comment": ""})
    assert blank.status_code == 303 and "comment" in jane.get("/portal/grants").text.lower()
    jane.post(f"/portal/grants/{grant}/revoke", data={"csrf": csrf, "comment": "Breach."})
    assert "status-revoked" in jane.get("/portal/grants").text
    assert portal.catalogue.epi not in bob.get("/portal/data").text
    assert "status-revoked" in bob.get("/portal/requests").text


def test_no_page_shows_one_users_requests_to_another(portal: Portal) -> None:
    bob, carol = portal.client(BOB), portal.client(CAROL)
    apply(portal, bob, title="Bob's confidential project")
    item = only_item(portal.engine)
    with db.session_scope(portal.engine) as session:
        request_id = session.get(db.AccessRequestItem, item).request_id
    for path in ("/portal/requests", "/portal/data", "/portal/", "/portal/requests/new"):
        assert "Bob's confidential project" not in carol.get(path).text
        assert request_id not in carol.get(path).text
    edit = carol.get(f"/portal/requests/{request_id}/items/{item}/edit")
    assert edit.status_code == 303
    csrf = csrf_of(carol.get("/portal/requests/new"))
    carol.post(f"/portal/requests/{request_id}/withdraw", data={"csrf": csrf})
    assert f"no request {request_id} of yours" in carol.get("/portal/requests").text
    with db.session_scope(portal.engine) as session:
        assert session.get(db.AccessRequestItem, item).status is db.RequestStatus.SUBMITTED
    # A DAC member sees the item of their committee, but not as an editable request.
    jane = portal.client(JANE)
    assert jane.get(f"/portal/requests/{request_id}/items/{item}/edit").status_code == 403


def test_a_requester_withdraws_an_open_request(portal: Portal) -> None:
    bob = portal.client(BOB)
    apply(portal, bob)
    item = only_item(portal.engine)
    with db.session_scope(portal.engine) as session:
        request_id = session.get(db.AccessRequestItem, item).request_id
    csrf = csrf_of(bob.get("/portal/requests"))
    bob.post(f"/portal/requests/{request_id}/withdraw", data={"csrf": csrf, "item": str(item)})
    page = bob.get("/portal/requests")
    assert "Withdrew 1 dataset" in page.text and "status-withdrawn" in page.text


def test_user_text_is_escaped_everywhere(portal: Portal) -> None:
    bob, jane = portal.client(BOB), portal.client(JANE)
    apply(portal, bob, title="<script>alert(1)</script>", description="<img src=x onerror=1>")
    for page in (bob.get("/portal/requests"), jane.get("/portal/dac")):
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<img src=x" not in page.text


# -- submitters ---------------------------------------------------------------------------------


def test_metadata_upload_shows_every_problem_by_sheet_row_and_column(portal: Portal) -> None:
    alice = portal.client(ALICE)
    csrf = csrf_of(alice.get("/portal/metadata"))
    sheet = b"alias\tsex\tphenotypes\nS1\trobot\tHP:0001250\nS2\tfemale\tnot-a-term\n"
    answer = alice.post(
        "/portal/metadata",
        data={"csrf": csrf},
        files={"files": ("samples.tsv", sheet, "text/tab-separated-values")},
    )
    assert answer.status_code == 422
    rows = re.findall(
        r"<tr>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td[^>]*>([^<]*)</td>",
        answer.text,
    )
    assert ("samples.tsv", "2", "sex", "robot") in rows
    assert ("samples.tsv", "3", "phenotypes", "not-a-term") in rows
    assert "nothing was stored" in answer.text
    with db.session_scope(portal.engine) as session:
        stored = session.scalars(
            select(db.MetadataObject).where(db.MetadataObject.alias == "S1")
        ).first()
        assert stored is None


def test_metadata_upload_checks_only_or_stores(portal: Portal) -> None:
    alice = portal.client(ALICE)
    csrf = csrf_of(alice.get("/portal/metadata"))
    studies = ("studies.tsv", b"alias\ttitle\tstudy_type\nNEW\tA study\tOther\n", "text/plain")
    checked = alice.post(
        "/portal/metadata", data={"csrf": csrf, "validate_only": "true"}, files={"files": studies}
    )
    assert checked.status_code == 200 and "No problem found" in checked.text
    stored = alice.post("/portal/metadata", data={"csrf": csrf}, files={"files": studies})
    assert stored.status_code == 200 and "Stored: 1 object" in stored.text
    assert re.search(r"GFBES\d+", stored.text)


def test_metadata_upload_takes_sheets_or_one_json_document(portal: Portal) -> None:
    alice = portal.client(ALICE)
    csrf = csrf_of(alice.get("/portal/metadata"))
    mixed = [
        ("files", ("studies.tsv", b"alias\n", "text/plain")),
        ("files", ("all.json", b"{}", "application/json")),
    ]
    refused = alice.post("/portal/metadata", data={"csrf": csrf}, files=mixed)
    assert refused.status_code == 422 and "one JSON document alone" in refused.text
    broken = alice.post(
        "/portal/metadata",
        data={"csrf": csrf},
        files={"files": ("all.json", b'{"studies": [', "application/json")},
    )
    assert broken.status_code == 422 and "is not valid JSON" in broken.text


def test_submitters_see_their_files_with_states_and_errors(portal: Portal) -> None:
    with db.session_scope(db.for_writing(portal.engine)) as session:
        broken = db.ArchiveFile(
            submitter=ALICE,
            inbox_path=f"{ALICE}/broken.c4gh",
            state=db.FileState.ERROR,
            error="the checksum does not match the upload",
        )
        theirs = db.ArchiveFile(submitter=CAROL, inbox_path=f"{CAROL}/x.c4gh")
        session.add_all([broken, theirs])
    page = portal.client(ALICE).get("/portal/files")
    assert "the checksum does not match the upload" in page.text
    assert "status-error" in page.text and "status-ready" in page.text
    assert CAROL not in page.text


def test_a_submitter_releases_their_draft_and_nobody_else_can(portal: Portal) -> None:
    alice = portal.client(ALICE)
    page = alice.get("/portal/datasets")
    assert portal.catalogue.draft in page.text and "Release" in page.text
    csrf = csrf_of(page)
    eve = portal.client()
    eve.cookies.set(
        SESSION_COOKIE,
        issue_token(portal.settings, "eve@example.org", ["submitter"]),
        path="/portal",
    )
    assert portal.catalogue.draft not in eve.get("/portal/datasets").text
    eve_csrf = csrf_of(eve.get("/portal/metadata"))
    eve.post(f"/portal/datasets/{portal.catalogue.draft}/release", data={"csrf": eve_csrf})
    assert "no dataset" in eve.get("/portal/datasets").text.lower()
    released = alice.post(f"/portal/datasets/{portal.catalogue.draft}/release", data={"csrf": csrf})
    assert released.status_code == 303
    after = alice.get("/portal/datasets")
    assert f"Dataset {portal.catalogue.draft} is released" in after.text


# -- operators ----------------------------------------------------------------------------------


def test_the_pipeline_shows_states_queues_and_stopped_files(portal: Portal) -> None:
    with db.session_scope(db.for_writing(portal.engine)) as session:
        session.add(
            db.ArchiveFile(
                submitter=ALICE,
                inbox_path=f"{ALICE}/bad.c4gh",
                state=db.FileState.ERROR,
                error="not encrypted for this node",
            )
        )
    page = portal.client(OPS).get("/portal/pipeline")
    assert page.status_code == 200
    assert re.search(r"<th scope=\"row\">ready</th>\s*<td class=\"num\">5</td>", page.text)
    assert "not encrypted for this node" in page.text
    assert "Error queue: 0 messages" in page.text
    assert "<meter" in page.text


def test_the_pipeline_shows_storage_and_genomes_and_requeues_failed_messages(
    portal: Portal,
) -> None:
    with db.session_scope(db.for_writing(portal.engine)) as session:
        session.add(
            db.Job(
                queue="verify",
                payload={"file_id": "F1"},
                state=db.JobState.FAILED,
                attempts=5,
                last_error="storage unreachable",
            )
        )
    ops = portal.client(OPS)
    page = ops.get("/portal/pipeline")
    assert "Storage use" in page.text and "Pathogen genomes per state" in page.text
    storage = page.text[page.text.index("Storage use") :]
    assert re.search(r"Archive</dt><dd>\d+ files?, [\d.]+ \w+ encrypted", storage)
    assert re.search(r"Pathogen genomes</dt><dd>0 stored", storage)
    assert "Error queue: 1 message" in page.text and "storage unreachable" in page.text
    assert portal.client(BOB).post("/portal/pipeline/requeue").status_code == 403
    done = ops.post("/portal/pipeline/requeue", data={"csrf": csrf_of(page)})
    assert done.status_code == 303
    assert "1 message sent back" in ops.get("/portal/pipeline").text
    with db.session_scope(portal.engine) as session:
        job = session.scalars(select(db.Job).where(db.Job.queue == "verify")).one()
        assert job.state == db.JobState.READY and job.attempts == 0
        logged = session.scalars(
            select(db.AuditEntry).where(db.AuditEntry.action == "pipeline.requeue")
        ).one()
        assert logged.actor == OPS and logged.detail == {"messages": 1}


def test_the_audit_page_verifies_the_chain_and_filters(portal: Portal) -> None:
    apply(portal, portal.client(BOB))
    ops = portal.client(OPS)
    page = ops.get("/portal/audit")
    assert "Chain intact" in page.text and "access.requested" in page.text
    filtered = ops.get("/portal/audit", params={"actor": OPS, "action": "access.requested"})
    assert "No entry matches." in filtered.text
    denied = ops.get("/portal/audit", params={"outcome": "allowed", "actor": BOB})
    assert "access.requested" in denied.text
    bad_date = ops.get("/portal/audit", params={"since": "yesterday"})
    assert bad_date.status_code == 422 and "is not a date" in bad_date.text
    with db.session_scope(db.for_writing(portal.engine)) as session:
        session.execute(update(db.AuditEntry).where(db.AuditEntry.seq == 1).values(actor="mallory"))
    broken = ops.get("/portal/audit")
    assert "Chain broken" in broken.text and "entry 1 was altered" in broken.text


def test_operators_see_every_grant_and_may_revoke_it(portal: Portal) -> None:
    bob, jane, ops = portal.client(BOB), portal.client(JANE), portal.client(OPS)
    apply(portal, bob)
    item = only_item(portal.engine)
    jane.post(f"/portal/dac/items/{item}/approve", data={"csrf": csrf_of(jane.get("/portal/dac"))})
    page = ops.get("/portal/grants")
    assert "Every grant of this node" in page.text and BOB in page.text
    with db.session_scope(portal.engine) as session:
        grant = session.scalars(select(db.Grant.id)).one()
    ops.post(f"/portal/grants/{grant}/revoke", data={"csrf": csrf_of(page), "comment": "Incident"})
    with db.session_scope(portal.engine) as session:
        assert session.get(db.Grant, grant).revoked_by == OPS
    assert access.MAX_COMMENT  # the forms cap comments as the service does


def test_a_node_failure_is_a_page_not_a_traceback(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise GenofedError("database unreachable at db.example:5432")

    monkeypatch.setattr(access, "requests_of", broken)
    page = portal.client(BOB).get("/portal/requests")
    assert page.status_code == 503
    assert "cannot show this page now (GenofedError)" in page.text
    assert "db.example" not in page.text  # the detail is for the operator's log only


# -- static files -------------------------------------------------------------------------------


def test_the_portal_serves_its_own_css_and_script(portal: Portal) -> None:
    client = portal.client()
    css = client.get("/portal/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in css.text
    script = client.get("/portal/static/portal.js")
    assert script.status_code == 200 and "navigator.clipboard" in script.text
    for bad in ("../pages.py", "..%2Fpages.py", "portal.py", "nothing.css"):
        assert client.get(f"/portal/static/{bad}").status_code == 404
    home = portal.client(BOB).get("/portal/")
    assert "http://" not in home.text.replace(portal.settings.http.public_url, "")
    assert "https://" not in home.text  # no CDN
