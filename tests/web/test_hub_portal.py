"""The portal on the federation's hub: the catalogue and the beacon network, open to anyone.

A real hub is served with two real nodes joined and approved (BE's dataset at the ``registered``
level, answering identified callers only; NL's ``public``), each with the cohort released and
its VCF indexed, as the beacon network's own tests build them. The hub serves the pages of
public data only: no committee, submitter or operator page exists there. A visitor who signs in
at the hub (with a token of an issuer the hub trusts, here BE's) has their token forwarded to
every node, whose guards then answer what that visitor may see.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hub_support import VARIANT, small_federation
from network_support import COUNTRIES, Network, Node, make_hub

from genofed.access.tokens import issue_token
from genofed.config import TrustedIssuer
from genofed.federation.hub_app import create_hub_app
from genofed.node.server import serving
from genofed.web.login_pages import FLOW_COOKIE
from genofed.web.render import SESSION_COOKIE
from genofed.web.session import LOGIN_COOKIE


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with small_federation(tmp_path_factory.mktemp("hub-portal")) as network:
        be = network.nodes["BE"]
        # the hub's portal accepts BE's tokens (the app holds this very settings object)
        network.hub.tokens.trusted_issuers.append(
            TrustedIssuer(
                issuer=be.settings.tokens.issuer,
                jwks_url=f"{be.url}/.well-known/jwks.json",
                accept=["tokens"],
            )
        )
        yield network


def _client(network: Network) -> httpx.Client:
    return httpx.Client(base_url=network.hub_url, timeout=60, follow_redirects=False)


def _sign_in(client: httpx.Client, node: Node, user: str = "bob") -> None:
    """Sign in at the hub by pasting a token ``node`` issued."""
    client.get("/portal/login")
    nonce = client.cookies[LOGIN_COOKIE]
    token = issue_token(node.settings, user, ["requester"])
    signed = client.post("/portal/login", data={"nonce": nonce, "token": token, "next": ""})
    assert signed.status_code == 303, signed.text[-800:]
    assert client.cookies.get(SESSION_COOKIE) == token


def _rows(html: str, label: str) -> list[str]:
    table = html.split(f'aria-label="{label}"', 1)[1].split("</table>", 1)[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in table.split("<tr>")[2:]
    ]


def test_anyone_sees_the_hubs_public_pages_only(network: Network) -> None:
    with _client(network) as client:
        home = client.get("/portal/")
        refused = [client.get(f"/portal{path}") for path in ("/dac", "/requests", "/pipeline")]
        login = client.get("/portal/login")
    assert home.status_code == 200
    menu = home.text.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]
    assert "Catalogue" in menu and "Beacon" in menu and "Mutation trends" in menu
    assert not any(word in menu for word in ("DAC inbox", "My requests", "Pipeline", "Audit"))
    assert "genofed hub <strong>Test federation</strong>" in home.text
    assert [page.status_code for page in refused] == [404, 404, 404]
    assert 'name="password"' not in login.text  # the hub has no accounts
    assert 'name="token"' in login.text
    assert home.headers["content-security-policy"].startswith("default-src 'none'")


def test_the_hub_catalogue_lists_every_node_and_links_their_portals(network: Network) -> None:
    be, nl = network.nodes["BE"], network.nodes["NL"]
    with _client(network) as client:
        page = client.get("/portal/catalogue")
        only_nl = client.get("/portal/catalogue", params={"country": "nl"})
    assert page.status_code == 200, page.text[-800:]
    assert "2 datasets found" in page.text
    assert be.dataset in page.text and nl.dataset in page.text
    assert "Apply here" not in page.text  # the hub holds no data of its own
    assert f"--hub {network.hub_url}" in page.text
    assert f'href="{be.url}/portal/"' in page.text and f'href="{nl.url}/portal/"' in page.text
    assert "1 dataset found" in only_nl.text and be.dataset not in only_nl.text


def test_the_hub_beacon_answers_per_node_and_says_why_one_is_silent(network: Network) -> None:
    be, nl = network.nodes["BE"], network.nodes["NL"]
    with _client(network) as anonymous:
        page = anonymous.get("/portal/beacon", params=VARIANT)
    assert page.status_code == 200, page.text[-800:]
    assert "Network total" in page.text
    rows = _rows(page.text, "Answers per node")
    assert len(rows) == len(network.nodes) < len(COUNTRIES)
    by_country = {row.split("(")[1][:2]: row for row in rows}
    assert nl.dataset in by_country["NL"]
    assert "answered" in by_country["NL"] and "found, 8" in by_country["NL"]
    assert "refused" in by_country["BE"] and "found" not in by_country["BE"]
    assert "answers identified users only" in by_country["BE"]  # registered: why it is silent
    with _client(network) as signed:
        _sign_in(signed, be)
        asked = signed.get("/portal/beacon", params=VARIANT)
        home = signed.get("/portal/")
    assert "Signed in as <strong>bob</strong>" in home.text
    rows = _rows(asked.text, "Answers per node")
    be_row = next(row for row in rows if "(BE)" in row)
    assert "answered" in be_row and "found, 12" in be_row  # counted for the identified visitor


def test_the_hub_charts_the_federations_pathogen_records(network: Network) -> None:
    with _client(network) as anonymous:
        page = anonymous.get("/portal/pathogen/mutations", params={"mutation": "S:N501Y"})
        answers = anonymous.get("/pathogen/lapis/sars-cov-2/sample/aggregated")
    assert page.status_code == 200, page.text[-800:]
    assert 'data-lapis="/pathogen/lapis/sars-cov-2"' in page.text  # the hub's own LAPIS
    assert answers.status_code == 200 and answers.json()["data"][0]["count"] == 0


def test_the_hub_terms_autocomplete_unites_the_nodes(network: Network) -> None:
    with _client(network) as client:
        page = client.get("/portal/beacon")
    assert re.search(r'<option value="HP:\d{7}">', page.text)


def test_a_forged_session_at_the_hub_is_dropped(network: Network) -> None:
    with _client(network) as client:
        client.cookies.set(SESSION_COOKIE, "not.a.token", domain="127.0.0.1", path="/portal")
        page = client.get("/portal/catalogue")
    assert page.status_code == 303 and "/portal/login" in page.headers["location"]
    assert FLOW_COOKIE not in page.cookies


def test_the_hub_needs_no_node_directory(tmp_path: Path) -> None:
    """The hub's portal runs on the hub's own directory (its CSRF key made at start)."""
    hub = make_hub(tmp_path / "hub")
    with serving(create_hub_app(hub)) as url:
        page = httpx.get(f"{url}/portal/login", timeout=30)
    assert page.status_code == 200 and hub.tokens.signing_key.is_file()
