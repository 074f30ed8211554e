"""Signing in to the portal by redirect to an external OIDC provider (authorization code + PKCE).

A tiny provider (``oidc_provider``) is served on 127.0.0.1 and trusted by the node with a client
id. The browser's legs are played by hand: the portal's redirect to the provider, the provider's
redirect back with the code, and the callback that starts the session. Each check a real
provider or an attacker could defeat has its test: the state, the flow cookie's MAC, the nonce,
the ID token's signature, the PKCE verifier, a refusal by the user.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from oidc_provider import API_AUDIENCE, CLIENT_ID, Provider, provider_app
from portal_support import make_node, portal_app

from genofed.config import Settings, TrustedIssuer
from genofed.node.server import serving
from genofed.web import oidc
from genofed.web.login_pages import FLOW_COOKIE
from genofed.web.render import SESSION_COOKIE


@dataclass
class Setup:
    provider: Provider
    settings: Settings


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_node(tmp_path_factory.mktemp("oidc") / "node")


@pytest.fixture
def setup(node: Settings) -> Iterator[Setup]:
    """A fresh provider (its own port, so its own keys in the node's key cache), trusted by the
    node for tokens, with the portal's client id."""
    provider = Provider()
    with serving(provider_app(provider)) as url:
        provider.url = url
        trusted = TrustedIssuer(
            issuer=url,
            jwks_url=f"{url}/jwks",
            accept=["tokens"],
            audience=API_AUDIENCE,
            client_id=CLIENT_ID,
            subject_suffix="@uni",
        )
        yield Setup(provider, node.model_copy(update={"tokens": _with(node, trusted)}))


def _with(node: Settings, trusted: TrustedIssuer) -> object:
    return node.tokens.model_copy(update={"trusted_issuers": [trusted]})


def _start(browser: TestClient, setup: Setup, next_path: str = "/portal/catalogue") -> str:
    """The portal's redirect to the provider; returns where the provider sends the browser."""
    started = browser.get(
        "/portal/login/oidc", params={"issuer": setup.provider.url, "next": next_path}
    )
    assert started.status_code == 303, started.text[:300]
    assert started.headers["location"].startswith(f"{setup.provider.url}/authorize?")
    back = httpx.get(started.headers["location"], follow_redirects=False)
    assert back.status_code in (302, 307)
    return str(back.headers["location"])


def _callback(browser: TestClient, back: str) -> httpx.Response:
    parts = urlsplit(back)
    assert parts.path == "/portal/login/oidc/callback"
    return browser.get(f"{parts.path}?{parts.query}")


def test_the_login_page_offers_the_provider(setup: Setup) -> None:
    with TestClient(portal_app(setup.settings)) as browser:
        page = browser.get("/portal/login")
    assert f"Sign in with {setup.provider.url}" in page.text
    assert "/portal/login/oidc?issuer=" in page.text


def test_signing_in_by_redirect_starts_a_session(setup: Setup) -> None:
    with TestClient(portal_app(setup.settings), follow_redirects=False) as browser:
        back = _callback(browser, _start(browser, setup))
        assert back.status_code == 200, back.text[:500]
        assert 'http-equiv="refresh"' in back.text and 'url=/portal/catalogue"' in back.text
        assert "ada@uni.example@uni" in back.text
        assert browser.cookies.get(FLOW_COOKIE) is None  # used once
        home = browser.get("/portal/")
    asked = setup.provider.authorizations[0]
    assert asked["client_id"] == CLIENT_ID and asked["scope"] == "openid"
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["redirect_uri"] == oidc.redirect_uri(setup.settings, "/portal")
    assert home.status_code == 200
    assert "Signed in as <strong>ada@uni.example@uni</strong>" in home.text
    assert "Apply for access" in home.text and "DAC inbox" not in home.text  # default roles


def test_an_answer_with_another_state_is_refused(setup: Setup) -> None:
    with TestClient(portal_app(setup.settings), follow_redirects=False) as browser:
        back = _start(browser, setup)
        forged = back.replace("state=", "state=x")
        refused = _callback(browser, forged)
    assert refused.status_code == 401 and "another sign-in (state)" in refused.text
    assert SESSION_COOKIE not in refused.cookies


def test_a_callback_without_the_flow_cookie_is_refused(setup: Setup) -> None:
    with TestClient(portal_app(setup.settings), follow_redirects=False) as browser:
        back = _start(browser, setup)
        browser.cookies.delete(FLOW_COOKIE, path="/portal/login")
        refused = _callback(browser, back)
    assert refused.status_code == 401 and "was not started here" in refused.text


@pytest.mark.parametrize(
    ("misbehaviour", "said"),
    [
        ("nonce", "another sign-in (nonce)"),
        ("key", "does not verify with the keys of"),
        ("deny", "the sign-in service refused: the user said no"),
        ("no_id_token", "gave no ID token"),
    ],
)
def test_a_misbehaving_provider_starts_no_session(
    setup: Setup, misbehaviour: str, said: str
) -> None:
    setup.provider.misbehave.add(misbehaviour)
    with TestClient(portal_app(setup.settings), follow_redirects=False) as browser:
        refused = _callback(browser, _start(browser, setup))
        home = browser.get("/portal/")
    assert refused.status_code == 401 and said in refused.text, refused.text[-1500:]
    assert SESSION_COOKIE not in refused.cookies
    assert home.status_code == 303  # still signed out


def test_a_code_is_useless_without_the_pkce_verifier(setup: Setup) -> None:
    """An attacker who steals the code from the redirect cannot redeem it: the verifier stays
    in the victim's flow cookie."""
    with TestClient(portal_app(setup.settings), follow_redirects=False) as victim:
        back = _start(victim, setup)
    code = parse_qs(urlsplit(back).query)["code"][0]
    stolen = httpx.post(
        f"{setup.provider.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": oidc.redirect_uri(setup.settings, "/portal"),
            "client_id": CLIENT_ID,
            "code_verifier": "guessed" * 7,
        },
    )
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"


def test_an_issuer_without_a_client_id_is_not_offered(setup: Setup) -> None:
    trusted = setup.settings.tokens.trusted_issuers[0].model_copy(update={"client_id": ""})
    settings = setup.settings.model_copy(update={"tokens": _with(setup.settings, trusted)})
    with TestClient(portal_app(settings), follow_redirects=False) as browser:
        page = browser.get("/portal/login")
        refused = browser.get("/portal/login/oidc", params={"issuer": setup.provider.url})
    assert f"Sign in with {setup.provider.url}" not in page.text
    assert refused.status_code == 401 and "is not a sign-in service of this portal" in refused.text


def test_an_unreachable_provider_is_named(node: Settings, tmp_path: Path) -> None:
    dead = "http://127.0.0.1:9"
    trusted = TrustedIssuer(issuer=dead, jwks_url=f"{dead}/jwks", client_id=CLIENT_ID)
    settings = node.model_copy(update={"tokens": _with(node, trusted)})
    with TestClient(portal_app(settings), follow_redirects=False) as browser:
        refused = browser.get("/portal/login/oidc", params={"issuer": dead})
    assert refused.status_code == 401 and "cannot be reached" in refused.text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_only_a_flow_cookie_this_node_sealed_opens(node: Settings, value: str) -> None:
    flow = oidc.Flow.start("https://issuer.example", "/")
    assert oidc.unseal(node, oidc.seal(node, flow)) == flow
    with pytest.raises(oidc.SignInFailed):
        oidc.unseal(node, value)
