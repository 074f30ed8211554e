"""Signing in through an external OpenID Connect provider: the authorization-code flow with PKCE.

A trusted issuer (``[[tokens.trusted_issuers]]``) that has a ``client_id`` is offered on the
sign-in page. The portal reads the provider's discovery document
(``ISSUER/.well-known/openid-configuration``), sends the browser to its authorization endpoint
with a random ``state``, ``nonce`` and PKCE challenge (S256), and on the way back exchanges the
code (with the PKCE verifier) at the token endpoint. The ID token is verified with the issuer's
keys (signature, issuer, audience = the client id, expiry, the nonce); the access token becomes
the portal's session and is verified exactly as the API verifies a bearer token, so the
provider's users get the same roles in the portal as in the API.

What the flow must remember between the two legs (state, nonce, verifier, where to go next) is
kept in a short-lived cookie, MACed under a key derived from the node's signing key: a cookie
forged or altered in the browser is refused. It is SameSite=Lax, since the provider's redirect
back is a cross-site navigation that a Strict cookie would not follow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives import serialization

from genofed.access.tokens import Identity, InvalidToken, signing_key, verify_signed, verify_token
from genofed.config import Settings, TrustedIssuer
from genofed.errors import GenofedError

DISCOVERY_PATH = "/.well-known/openid-configuration"
CALLBACK_PATH = "/login/oidc/callback"  # under the portal's prefix
FLOW_SECONDS = 600  # the visitor has this long at the provider
TIMEOUT_S = 10.0
DISCOVERY_TTL_S = 600.0
MAX_DOCUMENT_BYTES = 256 * 1024


class SignInFailed(GenofedError):
    """The provider's sign-in cannot complete; the message says why and what to do."""


@dataclass(frozen=True)
class Provider:
    """The endpoints a provider's discovery document names."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str


@dataclass(frozen=True)
class Flow:
    """One sign-in under way: what the callback checks and uses."""

    issuer: str
    state: str
    nonce: str
    verifier: str
    next_path: str
    started: int

    @classmethod
    def start(cls, issuer: str, next_path: str) -> Flow:
        return cls(
            issuer=issuer,
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),  # 86 characters: RFC 7636 asks 43 to 128
            next_path=next_path,
            started=int(time.time()),
        )

    @property
    def challenge(self) -> str:
        """The PKCE S256 challenge of :attr:`verifier`."""
        return _b64url(hashlib.sha256(self.verifier.encode()).digest())


def redirect_providers(settings: Settings) -> list[TrustedIssuer]:
    """The trusted issuers the sign-in page offers: those of tokens with a client id."""
    return [
        trusted
        for trusted in settings.tokens.trusted_issuers
        if trusted.client_id and "tokens" in trusted.accept
    ]


def provider_named(settings: Settings, issuer: str) -> TrustedIssuer:
    for trusted in redirect_providers(settings):
        if trusted.issuer == issuer:
            return trusted
    raise SignInFailed(
        f"{issuer!r} is not a sign-in service of this portal: choose one on the sign-in page"
    )


def redirect_uri(settings: Settings, prefix: str) -> str:
    """Where the provider sends the browser back (registered with the provider as is)."""
    return str(settings.http.public_url).rstrip("/") + prefix + CALLBACK_PATH


# -- discovery ----------------------------------------------------------------------------------

_discovered: dict[str, tuple[float, Provider]] = {}
_lock = threading.Lock()


def discover(issuer: str) -> Provider:
    """The provider's endpoints from its discovery document, kept :data:`DISCOVERY_TTL_S`."""
    with _lock:
        cached = _discovered.get(issuer)
    if cached is not None and time.monotonic() - cached[0] < DISCOVERY_TTL_S:
        return cached[1]
    url = issuer.rstrip("/") + DISCOVERY_PATH
    document = _json(_call("GET", url), url)
    if document.get("issuer") != issuer:  # OIDC Discovery 4.3: it must be the issuer itself
        raise SignInFailed(
            f"the discovery document at {url} names the issuer {document.get('issuer')!r}, not "
            f"{issuer!r}: fix 'issuer' in [[tokens.trusted_issuers]]"
        )
    endpoints = [document.get("authorization_endpoint"), document.get("token_endpoint")]
    if not all(isinstance(endpoint, str) and endpoint for endpoint in endpoints):
        raise SignInFailed(f"the discovery document at {url} lacks the authorization or token URL")
    provider = Provider(issuer, str(endpoints[0]), str(endpoints[1]))
    with _lock:
        _discovered[issuer] = (time.monotonic(), provider)
    return provider


def authorization_url(provider: Provider, trusted: TrustedIssuer, flow: Flow, callback: str) -> str:
    """Where the browser goes to sign in at the provider."""
    query = {
        "response_type": "code",
        "client_id": trusted.client_id,
        "redirect_uri": callback,
        "scope": "openid",
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": flow.challenge,
        "code_challenge_method": "S256",
    }
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    return provider.authorization_endpoint + separator + urlencode(query)


# -- the way back -------------------------------------------------------------------------------


def finish(
    settings: Settings, trusted: TrustedIssuer, flow: Flow, code: str, callback: str
) -> tuple[str, Identity]:
    """The session token and its identity for the provider's ``code``: the code exchanged, the
    ID token checked (keys, audience, nonce), the access token verified as the API would."""
    provider = discover(trusted.issuer)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback,
        "client_id": trusted.client_id,
        "code_verifier": flow.verifier,
    }
    if trusted.client_secret is not None:
        form["client_secret"] = trusted.client_secret.get_secret_value()
    answer = _json(_call("POST", provider.token_endpoint, data=form), provider.token_endpoint)
    id_token, access_token = answer.get("id_token"), answer.get("access_token")
    if not isinstance(id_token, str) or not isinstance(access_token, str):
        raise SignInFailed(
            f"{trusted.issuer} gave no ID token or no access token: its client "
            f"{trusted.client_id!r} must be allowed the 'openid' scope"
        )
    try:
        claims = verify_signed(id_token, trusted, audience=trusted.client_id, require=("nonce",))
    except InvalidToken as error:
        raise SignInFailed(f"the ID token is refused: {error}") from None
    if not hmac.compare_digest(str(claims["nonce"]), flow.nonce):
        raise SignInFailed("the ID token was issued for another sign-in (nonce): sign in again")
    try:
        identity = verify_token(settings, access_token)
    except InvalidToken as error:
        raise SignInFailed(f"the access token cannot be used here: {error}") from None
    if identity.subject != f"{claims['sub']}{trusted.subject_suffix}":
        raise SignInFailed("the ID token and the access token name different users: sign in again")
    return access_token, identity


def _call(method: str, url: str, data: dict[str, str] | None = None) -> httpx.Response:
    try:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
            response = client.request(method, url, data=data)
    except httpx.HTTPError as error:
        raise SignInFailed(
            f"the sign-in service cannot be reached at {url} ({type(error).__name__}): try again "
            "later"
        ) from None
    if response.status_code != 200:
        raise SignInFailed(f"{url} answered {response.status_code}: {_said(response)}")
    return response


def _json(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        document = json.loads(response.content[: MAX_DOCUMENT_BYTES + 1])
    except ValueError:
        document = None
    if not isinstance(document, dict) or len(response.content) > MAX_DOCUMENT_BYTES:
        raise SignInFailed(f"{url} did not answer a JSON object")
    return document


def _said(response: httpx.Response) -> str:
    """The provider's OAuth error, if it gave one (RFC 6749 5.2), in one short line."""
    try:
        body = response.json()
    except ValueError:
        return "no explanation"
    if not isinstance(body, dict):
        return "no explanation"
    said = body.get("error_description") or body.get("error") or "no explanation"
    return str(said)[:200]


# -- the flow's cookie --------------------------------------------------------------------------


def seal(settings: Settings, flow: Flow) -> str:
    """``flow`` as a cookie value: its JSON, base64url, and a MAC only this node can make."""
    payload = _b64url(json.dumps(flow.__dict__, separators=(",", ":")).encode())
    return f"{payload}.{_mac(settings, payload)}"


def unseal(settings: Settings, value: str | None) -> Flow:
    """The flow a cookie carries, if this node made it and it is recent; else why not."""
    payload, _, mac = (value or "").partition(".")
    expected = _mac(settings, payload).encode()
    if not payload or not hmac.compare_digest(mac.encode(), expected):
        raise SignInFailed(
            "this sign-in was not started here, or its cookie was lost: start again from the "
            "sign-in page (cookies must be allowed)"
        )
    try:
        flow = Flow(**json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
    except (ValueError, TypeError):
        raise SignInFailed("this sign-in's cookie is unreadable: start again") from None
    if time.time() - flow.started > FLOW_SECONDS:
        raise SignInFailed(
            f"the sign-in took longer than {FLOW_SECONDS // 60} minutes: start again"
        )
    return flow


def _mac(settings: Settings, payload: str) -> str:
    raw = signing_key(settings).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    key = hashlib.sha256(b"genofed-portal-oidc\0" + raw).digest()
    return _b64url(hmac.new(key, payload.encode(), "sha256").digest())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
