"""Identity: embedded users and password login, stored CLI logins, trusted OIDC issuers."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from typer.testing import CliRunner

from genofed import db
from genofed.access import audit, users
from genofed.access.tokens import InvalidToken, verify_token
from genofed.cli.main import app as cli
from genofed.config import Settings, TrustedIssuer
from genofed.node.app import create_app
from genofed.node.server import serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dataout"))
from dataout_support import make_node

PASSWORD = "correct horse battery"
PROVIDER = "https://login.provider.example/oidc"


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = make_node(tmp_path / "node")
    monkeypatch.setenv("GENOFED_CONFIG", str(settings.home))
    return settings


def _session(settings: Settings) -> Iterator[Any]:
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(db.for_writing(engine)) as session:
            yield session
    finally:
        engine.dispose()


def test_passwords_are_hashed_and_checked(node: Settings) -> None:
    for session in _session(node):
        users.add_user(session, "carol", PASSWORD, ["requester"])
        stored = session.get(db.User, "carol")
        assert stored is not None and PASSWORD not in stored.password_hash
        assert users.authenticate(session, "carol", PASSWORD).roles == ["requester"]
        with pytest.raises(users.LoginFailed) as wrong:
            users.authenticate(session, "carol", PASSWORD + "!")
        with pytest.raises(users.LoginFailed) as unknown:
            users.authenticate(session, "nobody", PASSWORD)
        assert str(wrong.value) == str(unknown.value)  # who exists is not revealed
        users.set_disabled(session, "carol", True)
        with pytest.raises(users.LoginFailed):
            users.authenticate(session, "carol", PASSWORD)
        with pytest.raises(users.UserError, match="10 to"):
            users.add_user(session, "dave", "short", ["requester"])
        with pytest.raises(users.UserError, match="unknown role"):
            users.add_user(session, "dave", PASSWORD, ["admin"])
        with pytest.raises(users.UserError, match="exists already"):
            users.add_user(session, "carol", PASSWORD, ["requester"])


def test_password_login_gives_a_token_and_failures_are_audited(node: Settings) -> None:
    for session in _session(node):
        users.add_user(session, "carol", PASSWORD, ["requester", "dac_member"])
    with TestClient(create_app(node)) as client:
        good = client.post("/auth/token", json={"username": "carol", "password": PASSWORD})
        bad = client.post("/auth/token", json={"username": "carol", "password": "guess-guess"})
    assert good.status_code == 200
    identity = verify_token(node, good.json()["access_token"])
    assert identity.subject == "carol" and identity.roles == {"requester", "dac_member"}
    assert bad.status_code == 401 and "guess" not in bad.text
    for session in _session(node):
        [entry] = audit.query(session, actor="carol", action="login")
        assert entry.outcome == "denied"


def test_user_commands_and_login_store_a_private_token(node: Settings) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli, ["user", "add", "erin", "--role", "requester", "--password-stdin"], input=PASSWORD
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["user", "list"])
    assert "erin\trequester\tactive" in listed.output
    with serving(create_app(node)) as url:
        refused = runner.invoke(
            cli, ["login", "--node", url, "--user", "erin", "--password-stdin"], input="nope-nope"
        )
        assert refused.exit_code == 1 and "wrong user name or password" in refused.output
        logged = runner.invoke(
            cli, ["login", "--node", url, "--user", "erin", "--password-stdin"], input=PASSWORD
        )
        assert logged.exit_code == 0, logged.output
        from genofed.cli.remote import bearer_token, credentials_file, node_url

        path = credentials_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert node_url(None) == url  # the last login is the default node
        assert verify_token(node, bearer_token(url, None)).subject == "erin"
        out = runner.invoke(cli, ["logout"])
        assert "logged out" in out.output
        assert url not in json.loads(path.read_text())["nodes"]


# -- trusted OIDC issuers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}


def _provider_token(key: Any, kid: str = "k1", algorithm: str = "RS256", **claims: Any) -> str:
    now = datetime.now(UTC)
    body = {
        "iss": PROVIDER,
        "sub": "frank@university.example",
        "aud": "genofed-be",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        **claims,
    }
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


def _trusting(settings: Settings, **fields: Any) -> Settings:
    settings.tokens.trusted_issuers = [TrustedIssuer(issuer=PROVIDER, **fields)]
    return settings


def test_tokens_of_a_trusted_provider_are_accepted_with_default_roles(
    node: Settings, tmp_path: Path, provider_key: rsa.RSAPrivateKey
) -> None:
    jwks_file = tmp_path / "provider.json"
    jwks_file.write_text(json.dumps(_jwks(provider_key, "k1")))
    settings = _trusting(node, jwks_file=jwks_file, audience="genofed-be")
    identity = verify_token(settings, _provider_token(provider_key, roles=["operator"]))
    assert identity.subject == "frank@university.example"
    assert identity.roles == {"requester"}  # the provider cannot make anyone an operator
    mapped = _trusting(node, jwks_file=jwks_file, roles_claim="roles")
    assert verify_token(mapped, _provider_token(provider_key, roles=["dac_member", "x"])).roles == {
        "dac_member"
    }


def test_provider_tokens_are_refused_when_they_should_be(
    node: Settings, tmp_path: Path, provider_key: rsa.RSAPrivateKey
) -> None:
    jwks_file = tmp_path / "provider.json"
    jwks_file.write_text(json.dumps(_jwks(provider_key, "k1")))
    settings = _trusting(node, jwks_file=jwks_file, audience="genofed-be")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidToken, match="forged or altered"):
        verify_token(settings, _provider_token(other))
    with pytest.raises(InvalidToken, match="no key 'k9'"):
        verify_token(settings, _provider_token(provider_key, kid="k9"))
    with pytest.raises(InvalidToken, match="Audience"):
        verify_token(settings, _provider_token(provider_key, aud="another-client"))
    with pytest.raises(InvalidToken, match="only asymmetric"):
        verify_token(
            settings, _provider_token("shared-secret-shared-secret-32by", algorithm="HS256")
        )
    expired = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(settings, _provider_token(provider_key, exp=expired))
    visas_only = _trusting(node, jwks_file=jwks_file, accept=["visas"])
    with pytest.raises(InvalidToken, match="does not trust"):
        verify_token(visas_only, _provider_token(provider_key))


def test_provider_keys_are_fetched_from_its_jwks_url(
    node: Settings, provider_key: rsa.RSAPrivateKey
) -> None:
    published = {"jwks": _jwks(provider_key, "k-url")}
    provider = FastAPI()

    @provider.get("/jwks")
    def keys() -> dict[str, Any]:
        return published["jwks"]

    with serving(provider) as url:
        settings = _trusting(node, jwks_url=f"{url}/jwks")
        token = _provider_token(provider_key, kid="k-url")
        assert verify_token(settings, token).subject == "frank@university.example"


def test_a_provider_subject_with_control_characters_is_refused(
    node: Settings, tmp_path: Path, provider_key: rsa.RSAPrivateKey
) -> None:
    jwks_file = tmp_path / "provider.json"
    jwks_file.write_text(json.dumps(_jwks(provider_key, "k1")))
    settings = _trusting(node, jwks_file=jwks_file)
    forged_line = _provider_token(provider_key, sub="eve\nINFO granted admin")
    with pytest.raises(InvalidToken, match="control character"):
        verify_token(settings, forged_line)
