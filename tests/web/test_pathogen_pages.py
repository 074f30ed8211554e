"""The portal's pathogen pages through FastAPI's TestClient: batch upload with its report by
file, row and field; the batch's progress; the curation queue; released records, snapshot sets
and their terms-guarded download; the mutation page and the charting library it loads.

Each page is refused to the roles the matching ``/pathogen`` route refuses (a requester cannot
submit or curate, a submitter cannot curate or see another's batch, nobody but its submitter
and curators sees a record before release). Processing uses the stand-in analyser of the
pathogen tests (the aligner has tests of its own); the browser test uses the real one.
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from portal_support import ALICE, BOB, CORA, add_users, make_node, portal_app, token
from sqlalchemy import Engine, select

from genofed import db
from genofed.access.tokens import issue_token
from genofed.config import Settings
from genofed.db.models import AuditEntry
from genofed.pathogen.processing import process_pending
from genofed.pathogen.synthetic import write_submission
from genofed.web.render import SESSION_COOKIE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pathogen"))
from records_support import quick_analyser, samples

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
OTHER_LAB = "lab-fi@thl.fi"  # another submitter


@dataclass
class Portal:
    settings: Settings
    app: FastAPI
    engine: Engine

    def client(self, user: str | None = None, roles: tuple[str, ...] = ()) -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        if user is not None:
            if roles:  # a user of these roles, not one of portal_support's
                session = issue_token(self.settings, user, list(roles))
            else:
                session = token(self.settings, user)
            client.cookies.set(SESSION_COOKIE, session, path="/portal")
        return client


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[Portal]:
    settings = make_node(tmp_path / "node")
    app = portal_app(settings)
    with TestClient(app):
        add_users(app.state.node.engine)
        yield Portal(settings, app, app.state.node.engine)


def csrf_of(page: Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[-800:]
    return found.group(1)


def _send(client: TestClient, folder: Path, count: int = 4, **form: str) -> Response:
    fasta, sheet = write_submission(samples(count), folder)
    page = client.get("/portal/pathogen/submit")
    return client.post(
        "/portal/pathogen/submit",
        data={"csrf": csrf_of(page), "organism": "sars-cov-2", **form},
        files={
            "sequences": (fasta.name, fasta.read_bytes()),
            "metadata": (sheet.name, sheet.read_bytes()),
        },
    )


def _submitted(portal: Portal, folder: Path, count: int = 4) -> str:
    """A batch of ALICE's, processed; the batch page's path."""
    with portal.client(ALICE) as alice:
        sent = _send(alice, folder, count)
    assert sent.status_code == 303, sent.text[-1500:]
    process_pending(portal.engine, workers=1, analyse=quick_analyser)
    return str(sent.headers["location"])


def _rows(html: str, label: str) -> list[str]:
    table = html.split(f'aria-label="{label}"', 1)[1].split("</table>", 1)[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in table.split("<tr>")[2:]
    ]


def test_only_submitters_and_operators_may_submit(portal: Portal) -> None:
    with portal.client(ALICE) as alice, portal.client(BOB) as bob, portal.client(CORA) as cora:
        allowed = alice.get("/portal/pathogen/submit")
        refused = [bob.get("/portal/pathogen/submit"), cora.get("/portal/pathogen/submit")]
    assert allowed.status_code == 200 and '<option value="sars-cov-2">' in allowed.text
    assert [page.status_code for page in refused] == [403, 403]
    assert "needs the submitter or operator role" in refused[0].text


def test_a_bad_batch_is_reported_by_file_row_and_field(portal: Portal, tmp_path: Path) -> None:
    fasta, sheet = write_submission(samples(3), tmp_path)
    lines = sheet.read_text().splitlines()
    header = lines[0].split("\t")
    cells = lines[2].split("\t")
    cells[header.index("collection_date")] = "2021-13-45"
    sheet.write_text("\n".join([lines[0], lines[1], "\t".join(cells), lines[3]]) + "\n")
    with portal.client(ALICE) as alice:
        form = alice.get("/portal/pathogen/submit")
        sent = alice.post(
            "/portal/pathogen/submit",
            data={"csrf": csrf_of(form), "organism": "sars-cov-2"},
            files={
                "sequences": (fasta.name, fasta.read_bytes()),
                "metadata": (sheet.name, sheet.read_bytes()),
            },
        )
    assert sent.status_code == 422
    assert "nothing was stored" in sent.text
    rows = _rows(sent.text, "Problems by file, row and field")
    assert len(rows) == 1, rows
    assert rows[0].startswith("metadata.tsv 3 ")  # the header is row 1
    assert "collection_date" in rows[0] and "2021-13-45" in rows[0]
    with db.session_scope(portal.engine) as session:
        assert session.scalar(select(db.models.PathogenSubmission)) is None


def test_a_batch_is_stored_followed_and_shown_to_its_submitter_only(
    portal: Portal, tmp_path: Path
) -> None:
    with portal.client(ALICE) as alice:
        sent = _send(alice, tmp_path, 4)
        assert sent.status_code == 303, sent.text[-1500:]
        batch = alice.get(sent.headers["location"])
        listed = alice.get("/portal/pathogen/submit")
    assert "4 sequences stored" in batch.text
    rows = _rows(batch.text, "Entries of the batch")
    assert len(rows) == 4 and all("received" in row for row in rows)
    assert re.search(r"GFBEV\w+\.1", rows[0])
    assert sent.headers["location"].split("/")[-1] in listed.text
    with portal.client(OTHER_LAB, ("submitter",)) as other, portal.client(CORA) as cora:
        hidden = other.get(sent.headers["location"])
        curator = cora.get(sent.headers["location"])
    assert hidden.status_code == 404 and curator.status_code == 200


def test_the_curator_sees_qc_and_mutations_and_decides(portal: Portal, tmp_path: Path) -> None:
    batch = _submitted(portal, tmp_path)
    with portal.client(ALICE) as alice:
        assert alice.get("/portal/pathogen/curation").status_code == 403
        progress = alice.get(batch)
    assert all("processed" in row for row in _rows(progress.text, "Entries of the batch"))
    with portal.client(CORA) as cora:
        queue = cora.get("/portal/pathogen/curation")
        assert queue.status_code == 200
        waiting = re.findall(r'data-accession="([^"]+)"', queue.text)
        assert len(waiting) == 4
        assert "C241T" in queue.text and "S:D614G" in queue.text and "missing_data" in queue.text
        token_ = csrf_of(queue)
        approved = cora.post(
            f"/portal/pathogen/curation/{waiting[0]}/approve", data={"csrf": token_}
        )
        no_reason = cora.post(
            f"/portal/pathogen/curation/{waiting[1]}/reject", data={"csrf": token_, "reason": ""}
        )
        rejected = cora.post(
            f"/portal/pathogen/curation/{waiting[1]}/reject",
            data={"csrf": token_, "reason": "the sample was mislabelled"},
        )
        forged = cora.post(f"/portal/pathogen/curation/{waiting[2]}/approve", data={"csrf": "x"})
        after = cora.get("/portal/pathogen/curation")
    assert approved.status_code == 303 and rejected.status_code == 303
    assert no_reason.status_code == 303  # back to the queue, saying why
    assert forged.status_code == 403
    assert re.findall(r'data-accession="([^"]+)"', after.text) == waiting[2:]
    with portal.client(ALICE) as alice:
        states = _rows(alice.get(batch).text, "Entries of the batch")
    assert "released" in states[0] and "rejected" in states[1]


def _released(portal: Portal, folder: Path, count: int = 3) -> list[str]:
    _submitted(portal, folder, count)
    with portal.client(CORA) as cora:
        queue = cora.get("/portal/pathogen/curation")
        names = re.findall(r'data-accession="([^"]+)"', queue.text)
        for name in names[:-1]:  # the last one stays unreleased
            decided = cora.post(
                f"/portal/pathogen/curation/{name}/approve", data={"csrf": csrf_of(queue)}
            )
            assert decided.status_code == 303
    return names


def test_records_are_public_once_released_only(portal: Portal, tmp_path: Path) -> None:
    names = _released(portal, tmp_path)
    with portal.client(BOB) as bob, portal.client(ALICE) as alice:
        listing = bob.get("/portal/pathogen/records")
        public = bob.get(f"/portal/pathogen/records/{names[0]}")
        hidden = bob.get(f"/portal/pathogen/records/{names[-1]}")
        own = alice.get(f"/portal/pathogen/records/{names[-1]}")
    assert "2 records" in listing.text
    assert names[0] in listing.text and names[-1] not in listing.text
    assert public.status_code == 200 and "C241T" in public.text and "History" not in public.text
    assert hidden.status_code == 404
    assert own.status_code == 200 and "History" in own.text


def test_the_curator_and_the_record_page_show_the_clade_the_aligner_found(
    portal: Portal, tmp_path: Path
) -> None:
    batch = samples(6)
    with portal.client(ALICE) as alice:
        fasta, sheet = write_submission(batch, tmp_path)
        page = alice.get("/portal/pathogen/submit")
        sent = alice.post(
            "/portal/pathogen/submit",
            data={"csrf": csrf_of(page), "organism": "sars-cov-2"},
            files={
                "sequences": (fasta.name, fasta.read_bytes()),
                "metadata": (sheet.name, sheet.read_bytes()),
            },
        )
    assert sent.status_code == 303, sent.text[-800:]
    process_pending(portal.engine, workers=1)  # the real aligner and clade assignment
    with portal.client(CORA) as cora:
        queue = cora.get("/portal/pathogen/curation")
        first = re.findall(r'data-accession="([^"]+)"', queue.text)[0]
        cora.post(f"/portal/pathogen/curation/{first}/approve", data={"csrf": csrf_of(queue)})
    expected = {sample.lineage for sample in batch}
    shown = set(re.findall(r"<dt>Clade</dt><dd>([^<]+)</dd>", queue.text))
    assert shown and shown <= expected
    with portal.client(BOB) as bob:
        record = bob.get(f"/portal/pathogen/records/{first}")
    clade = re.search(r"<dt>Clade</dt><dd>(\S+)", record.text)
    assert clade and clade.group(1) in expected


def test_a_snapshot_set_is_cited_and_downloaded_under_the_terms(
    portal: Portal, tmp_path: Path
) -> None:
    names = _released(portal, tmp_path)[:-1]
    with portal.client(BOB) as bob:
        listing = bob.get("/portal/pathogen/records")
        made = bob.post(
            "/portal/pathogen/snapshots",
            data={"csrf": csrf_of(listing), "title": "Spring wave", "accessions": names},
        )
        assert made.status_code == 303, made.text[-800:]
        page = bob.get(made.headers["location"])
        identifier = made.headers["location"].rsplit("/", 1)[-1]
        assert re.fullmatch(r"GFBEE\w+", identifier)
        assert "Spring wave" in page.text and "I accept the data-use terms" in page.text
        assert len(_rows(page.text, "Acknowledgements of the set")) == 2
        refused = bob.post(
            f"/portal/pathogen/snapshots/{identifier}/download", data={"csrf": csrf_of(page)}
        )
        accepted = bob.post(
            "/portal/pathogen/terms/accept",
            data={"csrf": csrf_of(page), "back": f"/pathogen/snapshots/{identifier}"},
        )
        again = bob.get(f"/portal/pathogen/snapshots/{identifier}")
        download = bob.post(
            f"/portal/pathogen/snapshots/{identifier}/download", data={"csrf": csrf_of(again)}
        )
        thanks = bob.get("/portal/pathogen/acknowledgements", params={"accessions": names[0]})
    assert refused.status_code == 303  # back to the set, saying which terms
    assert accepted.status_code == 303 and "I accept" not in again.text
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert sorted(archive.namelist()) == ["acknowledgements.tsv", "sequences.fasta"]
    fasta = archive.read("sequences.fasta").decode()
    assert sorted(re.findall(r"^>(\S+)", fasta, re.M)) == sorted(names)
    assert "National Reference Laboratory" in archive.read("acknowledgements.tsv").decode()
    assert len(_rows(thanks.text, "Acknowledgements")) == 1
    with db.session_scope(portal.engine) as session:
        outcomes = session.scalars(
            select(AuditEntry.outcome).where(AuditEntry.action == "pathogen.download")
        ).all()
    assert list(outcomes) == ["denied", "allowed"]


def test_the_mutation_page_loads_its_charting_library_from_the_portal(portal: Portal) -> None:
    with portal.client(BOB) as bob:
        page = bob.get("/portal/pathogen/mutations", params={"mutation": "S:E484K"})
        library = bob.get("/portal/static/vendor/plotly.min.js")
        script = bob.get("/portal/static/pathogen-charts.js")
        unknown = bob.get("/portal/static/vendor/d3.js")
    assert page.status_code == 200
    assert 'data-lapis="/pathogen/lapis/sars-cov-2"' in page.text
    assert 'data-mutation="S:E484K"' in page.text
    assert 'src="/portal/static/vendor/plotly.min.js"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp and "connect-src 'self'" in csp
    assert library.status_code == 200 and library.headers["content-type"].startswith("text/javas")
    assert b"plotly" in library.content[:2000].lower()
    assert script.status_code == 200 and unknown.status_code == 404


def test_pathogen_menus_follow_roles(portal: Portal) -> None:
    def menu(user: str) -> str:
        with portal.client(user) as client:
            home = client.get("/portal/")
        return home.text.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]

    assert "Submit sequences" in menu(ALICE) and "Curation" not in menu(ALICE)
    assert "Curation" in menu(CORA) and "Submit sequences" not in menu(CORA)
    assert "Pathogen records" in menu(BOB) and "Mutation trends" in menu(BOB)
    assert "Curation" not in menu(BOB) and "Submit sequences" not in menu(BOB)


@pytest.mark.parametrize(
    ("form", "status", "said"),
    [
        ({"data_use_terms": "restricted"}, 400, "restricted terms need restricted_until"),
        ({"restricted_until": "next week"}, 422, "must be a date (YYYY-MM-DD)"),
        ({"organism": "ebola-x"}, 404, "ebola-x"),
    ],
)
def test_a_batch_with_wrong_terms_or_organism_is_refused_with_the_fix(
    portal: Portal, tmp_path: Path, form: dict[str, str], status: int, said: str
) -> None:
    with portal.client(ALICE) as alice:
        sent = _send(alice, tmp_path, 2, **form)
    assert sent.status_code == status, sent.text[-800:]
    assert said in sent.text
    with db.session_scope(portal.engine) as session:
        assert session.scalar(select(db.models.PathogenSubmission)) is None
