"""The node's bearer tokens: signing key, issuing, verifying, JWKS, and refusals over HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inbox_support import FakeQueue, claims, make_node

from genofed.access import InvalidToken, ensure_signing_key, issue_token, jwks, verify_token
from genofed.access.tokens import SigningKeyError, TokenRequestError
from genofed.cli.main import app as cli
from genofed.config import Settings, load_settings
from genofed.node.app import create_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_node(tmp_path / "node")


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, queue=FakeQueue())) as client:
        yield client


def signed(settings: Settings, key: Ed25519PrivateKey | None = None, **changes: object) -> str:
    """A token with the node's key (or ``key``) over claims changed as given."""
    signer = key or Ed25519PrivateKey.generate()
    if key is None:
        from genofed.access.tokens import signing_key

        signer = signing_key(settings)
    return jwt.encode(claims(settings, **changes), signer, algorithm="EdDSA")


def test_an_existing_signing_key_is_kept(settings: Settings) -> None:
    path = settings.tokens.signing_key
    before = path.read_bytes()
    assert ensure_signing_key(settings) == path
    assert path.read_bytes() == before  # kept: tokens already issued stay valid


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    settings = load_settings(None, home=tmp_path)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: ensure_signing_key(settings), range(16)))
    assert [p.name for p in settings.tokens.signing_key.parent.iterdir()] == ["jwt-signing.pem"]
    verify_token(settings, issue_token(settings, "alice", ["operator"]))


def test_issued_token_verifies_to_its_identity(settings: Settings) -> None:
    token = issue_token(settings, "alice", ["submitter", "requester"], timedelta(hours=2))
    identity = verify_token(settings, token)
    assert identity.subject == "alice"
    assert identity.roles == {"submitter", "requester"}
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == jwks(settings)["keys"][0]["kid"]
    body = jwt.decode(token, options={"verify_signature": False})
    assert body["aud"] == settings.http.public_url
    assert body["iss"] == settings.tokens.issuer
    assert body["exp"] - body["iat"] == 7200
    assert body["jti"]


def test_the_published_jwks_checks_the_nodes_tokens(settings: Settings, http: TestClient) -> None:
    keys = http.get("/.well-known/jwks.json").json()
    [jwk] = keys["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in jwk  # the public half only
    token = issue_token(settings, "alice", ["submitter"])
    key = jwt.PyJWK(jwk)
    decoded = jwt.decode(token, key, algorithms=["EdDSA"], audience=settings.http.public_url)
    assert decoded["sub"] == "alice"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s: signed(s, exp=1_600_000_000), "the token expired at 2020-09-13"),
        (lambda s: signed(s, Ed25519PrivateKey.generate()), "signature does not verify"),
        (lambda s: signed(s, aud="https://other-node.example"), "meant for 'https://other-"),
        (lambda s: signed(s, iss="https://evil.example"), "issued by 'https://evil.example'"),
        (lambda s: signed(s, roles="submitter"), "'roles' claim is not a list"),
        (lambda s: signed(s, iat=4_000_000_000), "clocks of the issuer and this node"),
        (lambda s: "not-a-token", "malformed"),
        (lambda s: jwt.encode(claims(s), "", algorithm="none"), "signed with 'none'"),
        (lambda s: jwt.encode(claims(s), "k" * 32, algorithm="HS256"), "signed with 'HS256'"),
    ],
)
def test_refusals_say_why_without_repeating_the_token(
    settings: Settings, make: object, reason: str
) -> None:
    token = make(settings)  # type: ignore[operator]
    with pytest.raises(InvalidToken) as error:
        verify_token(settings, token)
    assert reason in str(error.value)
    assert token not in str(error.value)
    assert "\n" not in str(error.value)


def test_a_token_without_an_expiry_is_refused(settings: Settings) -> None:
    from genofed.access.tokens import signing_key

    body = claims(settings)
    del body["exp"]
    token = jwt.encode(body, signing_key(settings), algorithm="EdDSA")
    with pytest.raises(InvalidToken, match="lacks the 'exp' claim"):
        verify_token(settings, token)


@pytest.mark.parametrize(
    ("user", "roles", "lifetime", "reason"),
    [
        ("alice", ["admin"], None, "unknown role(s) 'admin': choose from curator, dac_member"),
        ("alice", [], None, "at least one role"),
        ("a", ["submitter"], None, "2 to 255 characters"),
        ("al\nice", ["submitter"], None, "control character"),
        ("alice", ["submitter"], timedelta(0), "must be positive"),
    ],
)
def test_issuing_refuses_what_it_cannot_sign(
    settings: Settings, user: str, roles: list[str], lifetime: timedelta | None, reason: str
) -> None:
    with pytest.raises(TokenRequestError) as error:
        issue_token(settings, user, roles, lifetime)
    assert reason in str(error.value)


def test_a_damaged_signing_key_is_named(settings: Settings) -> None:
    settings.tokens.signing_key.write_text("not a key")
    with pytest.raises(SigningKeyError, match="cannot be read"):
        issue_token(settings, "alice", ["submitter"])


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no bearer token"),
        ({"Authorization": "Basic YWxpY2U6cHc="}, "no bearer token"),
        ("expired", "the token expired"),
        ("forged", "signature does not verify"),
        ("audience", "not for this node"),
    ],
)
def test_api_refuses_bad_tokens_with_401_and_the_reason(
    settings: Settings, http: TestClient, headers: object, reason: str
) -> None:
    tokens = {
        "expired": lambda: signed(settings, exp=1_600_000_000),
        "forged": lambda: signed(settings, Ed25519PrivateKey.generate()),
        "audience": lambda: signed(settings, aud="https://other-node.example"),
    }
    if isinstance(headers, str):
        headers = {"Authorization": f"Bearer {tokens[headers]()}"}
    assert isinstance(headers, dict)
    response = http.post("/inbox/uploads", json={"filename": "x.c4gh"}, headers=headers)
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for value in headers.values():
        assert value.split()[-1] not in response.text


def test_api_needs_the_submitter_role(settings: Settings, http: TestClient) -> None:
    token = issue_token(settings, "rita", ["requester"])
    response = http.get("/inbox/files", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert "needs the submitter role; your token grants: requester" in response.json()["detail"]


def test_cli_issues_a_token_on_stdout(settings: Settings) -> None:
    config = str(settings.home)
    result = CliRunner().invoke(
        cli,
        [
            "token",
            "issue",
            "--user",
            "alice",
            "--role",
            "submitter",
            "--hours",
            "2",
            "--config",
            config,
        ],
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    identity = verify_token(settings, token)
    assert (identity.subject, identity.roles) == ("alice", {"submitter"})
    assert "valid for 2:00:00" in result.stderr

    bad = CliRunner().invoke(
        cli, ["token", "issue", "--user", "alice", "--role", "boss", "--config", config]
    )
    assert bad.exit_code == 1
    assert "unknown role(s) 'boss'" in bad.output
    assert "Traceback" not in bad.output


def test_cli_refuses_to_issue_without_a_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["token", "issue", "--user", "alice", "--role", "submitter"])
    assert result.exit_code == 1
    assert "no node configuration" in result.output
    assert not (tmp_path / "keys").exists()
