"""A tiny OpenID Connect provider for the portal's sign-in tests, served on 127.0.0.1.

It does what a real provider does for the authorization-code flow with PKCE: discovery, an
authorization endpoint (which signs in :attr:`Provider.user` at once and sends the browser back
with a code and the state), a token endpoint that checks the client, the redirect URI and the
PKCE verifier before answering an ID token and an access token (RS256), and its JWKS. Knobs in
:attr:`Provider.misbehave` make it answer wrongly, as a broken or hostile provider would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

CLIENT_ID = "genofed-portal"
API_AUDIENCE = "genofed-api"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Provider:
    """The provider's state: its keys, the codes it gave, what it was sent, its knobs."""

    url: str = ""
    user: str = "ada@uni.example"
    key: rsa.RSAPrivateKey = field(default_factory=_key)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    authorizations: list[dict[str, str]] = field(default_factory=list)
    # "nonce": a wrong nonce; "key": ID token signed by another key; "deny": the user refuses;
    # "no_id_token": the token endpoint answers an access token only
    misbehave: set[str] = field(default_factory=set)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}

    def sign(self, claims: dict[str, Any], key: rsa.RSAPrivateKey | None = None) -> str:
        now = int(time.time())
        full = {"iss": self.url, "sub": self.user, "iat": now, "exp": now + 600, **claims}
        return jwt.encode(full, key or self.key, algorithm="RS256", headers={"kid": "k1"})


def provider_app(provider: Provider) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": provider.url,
            "authorization_endpoint": f"{provider.url}/authorize",
            "token_endpoint": f"{provider.url}/token",
            "jwks_uri": f"{provider.url}/jwks",
            "code_challenge_methods_supported": ["S256"],
        }

    @app.get("/jwks")
    def keys() -> dict[str, Any]:
        return provider.jwks()

    @app.get("/authorize")
    def authorize(request: Request) -> RedirectResponse:
        asked = dict(request.query_params)
        provider.authorizations.append(asked)
        back = asked["redirect_uri"]
        if "deny" in provider.misbehave:
            refusal = {"error": "access_denied", "error_description": "the user said no"}
            return RedirectResponse(f"{back}?{urlencode({**refusal, 'state': asked['state']})}")
        code = secrets.token_urlsafe(16)
        provider.codes[code] = asked
        return RedirectResponse(f"{back}?{urlencode({'code': code, 'state': asked['state']})}")

    @app.post("/token")
    def token(
        grant_type: str = Form(),
        code: str = Form(),
        redirect_uri: str = Form(),
        client_id: str = Form(),
        code_verifier: str = Form(),
    ) -> JSONResponse:
        asked = provider.codes.pop(code, None)  # a code is good once
        digest = hashlib.sha256(code_verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if (
            asked is None
            or grant_type != "authorization_code"
            or client_id != asked["client_id"]
            or redirect_uri != asked["redirect_uri"]
            or asked.get("code_challenge_method") != "S256"
            or challenge != asked["code_challenge"]
        ):
            refusal = {"error": "invalid_grant", "error_description": "code or verifier wrong"}
            return JSONResponse(refusal, status_code=400)
        nonce = "another" if "nonce" in provider.misbehave else asked["nonce"]
        signer = _key() if "key" in provider.misbehave else None
        answer = {
            "token_type": "Bearer",
            "access_token": provider.sign({"aud": API_AUDIENCE, "jti": secrets.token_hex(8)}),
            "id_token": provider.sign({"aud": client_id, "nonce": nonce}, signer),
        }
        if "no_id_token" in provider.misbehave:
            del answer["id_token"]
        return JSONResponse(answer)

    return app
