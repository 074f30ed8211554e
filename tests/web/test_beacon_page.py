"""The portal's beacon page: the query builder, the answer per node with the network total, the
privacy guards' notes in plain words, a refused query named by its field, and the autocomplete.

One node is served for the whole module (its cohort released and a small VCF indexed, as the
beacon network tests build their nodes); without a hub the page asks that node's own beacon. A
stand-in hub (a canned merged answer) shows the network view: nodes that answered, refused or
were late, and the visitor's token forwarded to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from federation_support import node_server, with_hub
from network_support import index_node_vcf, release_cohort, set_level
from portal_support import BOB, OPS, make_node, portal_app, token

from genofed import db
from genofed.config import Settings
from genofed.db.models import FederationLink
from genofed.node.server import serving
from genofed.web import beacon_pages
from genofed.web.render import SESSION_COOKIE

VARIANT = {  # chr1:1001 A>G: 12 carriers in the node's VCF
    "assembly": "GRCh38",
    "chromosome": "1",
    "start": "1000",
    "reference": "A",
    "alternate": "G",
    "granularity": "count",
}


@dataclass(frozen=True)
class Served:
    url: str
    settings: Settings  # as served: its public URL is the server's
    dataset: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = make_node(tmp_path_factory.mktemp("beacon") / "node")
    dataset = release_cohort(settings)
    index_node_vcf(settings, dataset)
    set_level(settings, dataset, "controlled", budget_bits=1000.0)
    beacon_pages._terms_cache.clear()
    with node_server(settings) as (url, live):
        yield Served(url, live, dataset)


def _browser(settings: Settings) -> TestClient:
    client = TestClient(portal_app(settings), follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, token(settings, BOB), path="/portal")
    return client


def _rows(html: str, label: str = "Answers per node") -> list[str]:
    """The rows of the table named ``label``, as text."""
    table = html.split(f'aria-label="{label}"', 1)[1].split("</table>", 1)[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in table.split("<tr>")[2:]
    ]


def test_the_form_says_how_positions_count_and_suggests_terms(served: Served) -> None:
    with _browser(served.settings) as browser:
        page = browser.get("/portal/beacon")
    assert page.status_code == 200
    assert "0-based, half-open" in page.text
    assert 'list="beacon-terms"' in page.text and '<datalist id="beacon-terms">' in page.text
    assert re.search(r'<option value="HP:\d{7}">', page.text)  # the cohort's phenotypes
    assert "data-main-action" in page.text and "Network total" not in page.text


def test_without_a_hub_the_node_answers_with_its_guard_notes(served: Served) -> None:
    with _browser(served.settings) as browser:
        page = browser.get("/portal/beacon", params=VARIANT)
    assert page.status_code == 200, page.text[:500]
    assert "it has not joined a federation" in page.text
    assert "Found" in page.text
    rows = _rows(page.text)
    assert len(rows) == 1 and "Test node (BE)" in rows[0] and "answered" in rows[0]
    assert served.dataset in rows[0]
    notes = page.text.split('id="notes-heading"', 1)[1]
    assert served.dataset in notes  # the guard said why its answer is what it is
    assert "need access to it" in notes  # controlled data: yes or no without a grant
    assert "You asked for counts, but every answer is yes or no only" in notes


@pytest.mark.parametrize(
    ("changed", "label"),
    [({"start": "abc"}, "Start: "), ({"phenotype": "<script>x</script>"}, "Phenotype filter: ")],
)
def test_a_query_the_beacon_cannot_read_names_the_field(
    served: Served, changed: dict[str, str], label: str
) -> None:
    with _browser(served.settings) as browser:
        page = browser.get("/portal/beacon", params={**VARIANT, **changed})
    assert page.status_code == 200
    problem = page.text.split('id="beacon-problem"', 1)[1].split("</p>", 1)[0]
    assert label in problem, problem
    field = next(iter(changed))
    assert re.search(f'id="beacon-{field}"[^>]*aria-invalid="true"', page.text)
    assert "<script>x</script>" not in page.text  # the value typed, and the beacon's echo
    assert "Answers per node" not in page.text


# -- the network view ---------------------------------------------------------------------------

MERGED: dict[str, Any] = {
    "meta": {"returnedGranularity": "count"},
    "responseSummary": {"exists": True, "numTotalResults": 20},
    "info": {
        "nodes": [
            {"id": "org.genofed.node.be", "name": "Node BE", "country": "BE", "status": "answered"},
            {"id": "org.genofed.node.nl", "name": "Node NL", "country": "NL", "status": "answered"},
            {
                "id": "org.genofed.node.fi",
                "name": "Node <b>FI</b>",
                "country": "FI",
                "status": "refused",
                "reason": "your information budget is spent",
            },
            {"id": "org.genofed.node.se", "name": "Node SE", "country": "SE", "status": "late",
             "reason": "no answer within 2 s"},
        ],
        "datasets": [
            {"id": "GFBED1", "exists": True, "count": 20, "countIsExact": False,
             "note": "counts below 5 are shown as 5", "node": {"id": "org.genofed.node.be"}},
            {"id": "GFNLD1", "exists": True, "node": {"id": "org.genofed.node.nl"}},
        ],
        "countsWithheld": ["GFNLD1"],
        "notAnswered": ["org.genofed.node.fi: your information budget is spent"],
    },
}  # fmt: skip


def stand_in_hub(seen: list[str]) -> FastAPI:
    """A hub whose network beacon gives :data:`MERGED` (or a 400 for start=bad), noting the
    Authorization header it was sent."""
    app = FastAPI()

    @app.get("/beacon/g_variants")
    def g_variants(request: Request) -> Any:
        from fastapi.responses import JSONResponse

        seen.append(request.headers.get("authorization", ""))
        if request.query_params.get("start") == "bad":
            error = {"errorCode": 400, "errorMessage": "start: 'bad' is not a whole number"}
            return JSONResponse({"error": error}, status_code=400)
        return MERGED

    return app


def test_with_a_hub_each_node_and_the_network_total_are_shown(served: Served) -> None:
    seen: list[str] = []
    with ExitStack() as stack:
        hub = stack.enter_context(serving(stand_in_hub(seen)))
        browser = stack.enter_context(_browser(with_hub(served.settings, hub)))
        page = browser.get("/portal/beacon", params=VARIANT)
        bad = browser.get("/portal/beacon", params={**VARIANT, "start": "bad"})
    assert seen[0] == f"Bearer {browser.cookies.get(SESSION_COOKIE)}"  # the visitor asks
    assert "Network total" in page.text and "20 results counted" in page.text
    rows = _rows(page.text)
    assert [row.split("(")[1][:2] for row in rows] == ["BE", "NL", "FI", "SE"]
    assert "refused" in rows[2] and "your information budget is spent" in rows[2]
    assert "late" in rows[3] and "no answer within 2 s" in rows[3]
    assert "GFBED1" in rows[0] and "about 20" in rows[0]
    assert "Node <b>FI</b>" not in page.text and "Node &lt;b&gt;FI&lt;/b&gt;" in page.text
    notes = page.text.split('id="notes-heading"', 1)[1]
    assert "counts below 5 are shown as 5" in notes
    assert "coarsened" in notes and "Counts withheld" in notes and "GFNLD1" in notes
    assert "Not answered: org.genofed.node.fi: your information budget is spent" in notes
    assert "Start: &#39;bad&#39; is not a whole number" in bad.text


SERVICES = [
    {"id": "org.genofed.node.be", "name": "Node BE", "country": "BE",
     "federation": {"health": "up", "last_heartbeat": "2026-11-24T10:00:00+00:00"}},
    {"id": "org.genofed.node.nl", "name": "Node <i>NL</i>", "country": "NL",
     "federation": {"health": "down", "last_heartbeat": None}},
]  # fmt: skip


def _operator(settings: Settings) -> TestClient:
    client = TestClient(portal_app(settings), follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, token(settings, OPS), path="/portal")
    return client


def _link(settings: Settings, hub: str) -> None:
    """The node's membership of ``hub`` as the sync loop records it."""
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(db.for_writing(engine)) as session:
            session.add(
                FederationLink(
                    hub_url=hub,
                    hub_id="org.genofed.hub",
                    hub_key="key",
                    status="approved",
                    last_contact_at=datetime.now(UTC),
                )
            )
    finally:
        engine.dispose()


def test_the_pipeline_shows_the_federation_and_its_members_health(served: Served) -> None:
    app = stand_in_hub([])
    app.add_api_route("/services", lambda: SERVICES)
    with ExitStack() as stack:
        hub = stack.enter_context(serving(app))
        _link(served.settings, hub)
        operator = stack.enter_context(_operator(with_hub(served.settings, hub, sync_seconds=60)))
        page = operator.get("/portal/pipeline")
    federation = page.text.split('id="federation-heading"', 1)[1]
    assert hub in federation and "approved" in federation
    members = _rows(federation, "Members of the federation")
    assert "Node BE BE up 2026-11-24T10:00:00+00:00" in members[0]
    assert "down" in members[1] and "never" in members[1]
    assert "Node &lt;i&gt;NL&lt;/i&gt;" in federation


def test_the_pipeline_says_when_the_node_is_in_no_federation(served: Served) -> None:
    with _operator(served.settings) as operator:
        page = operator.get("/portal/pipeline")
    assert "not in a federation" in page.text
