"""The portal on the federation's hub, in a real browser (Debian's chromium, Playwright).

A real hub with two real nodes (``hub_support``); each node releases a batch of pathogen
genomes, which reach the hub by replication. An anonymous visitor searches the catalogue, asks
the beacon network and draws the mutation charts from the hub's LAPIS (the points drawn are the
hub's counts, BE's and NL's records together); a visitor then signs in through an external OIDC
provider (the tiny one of ``oidc_provider``) by redirect, as a browser really follows it. Each
hub page is checked for keyboard, labels, contrast and a tablet's width, and photographed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from federation_support import wait_for
from hub_support import VARIANT, small_federation
from network_support import Network
from oidc_provider import API_AUDIENCE, CLIENT_ID, Provider, provider_app
from test_browser import (
    LAPTOP,
    LOW_CONTRAST,
    TABLET,
    UNLABELLED,
    expect,
    tab_to_main_action,
)
from test_browser_pathogen import (
    check_charts_match_the_api,
    check_clade_chart_matches_the_api,
    lapis,
    outbreaks,
    release_batch,
    varying_mutation,
)

from genofed.config import TrustedIssuer
from genofed.node.server import serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Network, Provider]]:
    """The small federation with released genomes at both nodes, replicated to the hub, and an
    OIDC provider the hub offers for signing in."""
    folder = tmp_path_factory.mktemp("hub-browser")
    with small_federation(folder) as network:
        expected = 0
        for seed, node in enumerate(network.nodes.values(), start=7):
            _, names = release_batch(node.settings, folder / f"batch-{seed}", outbreaks(seed))
            expected += len(names)
        wait_for(
            lambda: lapis(network.hub_url, "/sample/aggregated")[0]["count"] == expected,
            timeout=60,
            what="the hub's copy of the released genomes",
        )
        provider = Provider()
        with serving(provider_app(provider)) as url:
            provider.url = url
            network.hub.tokens.trusted_issuers.append(
                TrustedIssuer(
                    issuer=url,
                    jwks_url=f"{url}/jwks",
                    accept=["tokens"],
                    audience=API_AUDIENCE,
                    client_id=CLIENT_ID,
                    subject_suffix="@uni",
                )
            )
            yield network, provider


def test_anyone_searches_asks_and_charts_then_signs_in_by_redirect(
    browser: Any, federation: tuple[Network, Provider], shots: Path
) -> None:
    network, provider = federation
    hub = network.hub_url
    page = browser.new_context(viewport=LAPTOP).new_page()
    page.goto(f"{hub}/portal/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Home")
    page.screenshot(path=shots / "hub-home-laptop.png", full_page=True)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalogue").click()
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("region", name="Datasets found").locator("tbody tr")
    expect(results).to_have_count(len(network.nodes))
    expect(page.get_by_role("link", name="Node BE's portal")).to_have_attribute(
        "href", f"{network.nodes['BE'].url}/portal/"
    )

    page.goto(f"{hub}/portal/beacon?{urlencode(VARIANT)}")
    rows = page.get_by_role("region", name="Answers per node").locator("tbody tr")
    expect(rows).to_have_count(len(network.nodes))
    expect(rows.filter(has_text="(NL)")).to_contain_text("found, 8")
    expect(rows.filter(has_text="(BE)")).to_contain_text("answers identified users only")

    mutation = varying_mutation(hub)
    page.goto(f"{hub}/portal/pathogen/mutations?{urlencode({'mutation': mutation})}")
    expect(page.locator("#mutation-charts")).to_have_attribute("data-drawn", "true")
    check_charts_match_the_api(page, hub, mutation)
    bars = page.evaluate("document.getElementById('chart-country').data[0].x")
    assert {"Belgium", "Finland", "Sweden"} & set(bars)  # both nodes' genomes in one chart
    check_clade_chart_matches_the_api(page, hub)
    page.screenshot(path=shots / "hub-mutations-laptop.png", full_page=True)

    page.get_by_role("link", name="Sign in").click()
    expect(page.locator("main")).not_to_contain_text("User name")  # the hub has no accounts
    page.screenshot(path=shots / "hub-login-laptop.png", full_page=True)
    page.get_by_role("link", name=f"Sign in with {provider.url}").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(hub)}/portal/pathogen/mutations"))
    expect(page.locator("header")).to_contain_text("Signed in as ada@uni.example@uni")
    assert provider.authorizations[-1]["code_challenge_method"] == "S256"
    page.context.close()


PAGES = [
    ("hub-home", "/portal/"),
    ("hub-catalogue", "/portal/catalogue?q=epilepsy"),
    ("hub-beacon", f"/portal/beacon?{urlencode(VARIANT)}"),
    ("hub-mutations", "/portal/pathogen/mutations?mutation=S:N501Y"),
    ("hub-login", "/portal/login"),
]


@pytest.mark.parametrize(("name", "path"), PAGES, ids=[name for name, _ in PAGES])
def test_every_hub_page_works_by_keyboard_is_labelled_legible_and_fits_a_tablet(
    browser: Any, federation: tuple[Network, Provider], shots: Path, name: str, path: str
) -> None:
    network, _ = federation
    page = browser.new_context(viewport=LAPTOP).new_page()
    answer = page.goto(f"{network.hub_url}{path}")
    assert answer is not None and answer.status == 200
    if name == "hub-mutations":
        expect(page.locator("#mutation-charts")).to_have_attribute("data-drawn", "true")
        expect(page.locator("#clade-charts")).to_have_attribute("data-drawn", "true")
    page.screenshot(path=shots / f"{name}-laptop.png", full_page=True)
    assert page.locator("h1").count() == 1
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(LOW_CONTRAST) == []
    tab_to_main_action(page)
    page.set_viewport_size(TABLET)
    page.wait_for_function("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=shots / f"{name}-tablet.png", full_page=True)
    page.context.close()
