"""Public keys of the issuers a node trusts, fetched from their JWKS and cached.

Keys are looked up by ``kid``. A key set is kept for ``CACHE_SECONDS``; an unknown ``kid`` fetches
the set again (the issuer may have rotated its keys), at most once per ``REFRESH_SECONDS`` so that
tokens with made-up ``kid``\\ s cannot make the node hammer the issuer.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from genofed.config import TrustedIssuer
from genofed.errors import GenofedError

CACHE_SECONDS = 300.0
REFRESH_SECONDS = 30.0
FETCH_TIMEOUT = 5.0
MAX_JWKS_BYTES = 256 * 1024
# Asymmetric algorithms only: an HMAC "key" taken from a public JWKS would let anyone sign.
ALGORITHMS = ("EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")


class KeyUnavailable(GenofedError):
    """The issuer's keys cannot be had, or none has the token's ``kid``."""


@dataclass
class _Entry:
    keys: dict[str | None, PyJWK]
    fetched_at: float


class KeyCache:
    """Keys per trusted issuer; thread-safe, as routes verify tokens in worker threads."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], _Entry] = {}  # by issuer and key source
        self._lock = threading.Lock()

    def key(self, trusted: TrustedIssuer, kid: str | None) -> PyJWK:
        now = time.monotonic()
        source = (trusted.issuer, trusted.jwks_url, str(trusted.jwks_file))
        with self._lock:
            entry = self._entries.get(source)
        stale = entry is None or now - entry.fetched_at > CACHE_SECONDS
        unknown = entry is not None and _pick(entry.keys, kid) is None
        if stale or (unknown and entry is not None and now - entry.fetched_at > REFRESH_SECONDS):
            entry = _Entry(_load(trusted), now)
            with self._lock:
                self._entries[source] = entry
        assert entry is not None
        found = _pick(entry.keys, kid)
        if found is None:
            raise KeyUnavailable(
                f"the issuer {trusted.issuer!r} publishes no key {kid!r}: the token was not "
                "signed by it, or its keys changed; get a new token"
            )
        return found


def _pick(keys: dict[str | None, PyJWK], kid: str | None) -> PyJWK | None:
    if kid is None and len(keys) == 1:  # a set of one key may be used without naming it
        return next(iter(keys.values()))
    return keys.get(kid)


def _load(trusted: TrustedIssuer) -> dict[str | None, PyJWK]:
    if trusted.jwks_file is not None:
        try:
            raw = trusted.jwks_file.read_bytes()[: MAX_JWKS_BYTES + 1]
        except OSError as error:
            raise KeyUnavailable(
                f"the JWKS file {trusted.jwks_file} of issuer {trusted.issuer!r} cannot be read "
                f"({error.strerror})"
            ) from None
        source = str(trusted.jwks_file)
    elif trusted.jwks_url:
        raw = _fetch(trusted)
        source = trusted.jwks_url
    else:
        raise KeyUnavailable(
            f"the trusted issuer {trusted.issuer!r} has neither jwks_url nor jwks_file: set one "
            "in [[tokens.trusted_issuers]]"
        )
    return _parse(raw, source)


def _fetch(trusted: TrustedIssuer) -> bytes:
    try:
        with httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
            response = client.get(trusted.jwks_url)
    except httpx.HTTPError as error:
        raise KeyUnavailable(
            f"the keys of issuer {trusted.issuer!r} cannot be fetched from {trusted.jwks_url} "
            f"({type(error).__name__}): check the URL and the network, then retry"
        ) from None
    if response.status_code != 200:
        raise KeyUnavailable(
            f"{trusted.jwks_url} answered {response.status_code} for the keys of issuer "
            f"{trusted.issuer!r}"
        )
    return response.content[: MAX_JWKS_BYTES + 1]


def _parse(raw: bytes, source: str) -> dict[str | None, PyJWK]:
    if len(raw) > MAX_JWKS_BYTES:
        raise KeyUnavailable(f"the JWKS at {source} is larger than {MAX_JWKS_BYTES} bytes")
    try:
        document: Any = json.loads(raw)
        entries = document["keys"]
        if not isinstance(entries, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise KeyUnavailable(f"{source} is not a JWKS (a JSON object with a 'keys' list)") from None
    keys: dict[str | None, PyJWK] = {}
    for entry in entries:
        try:
            key = PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError):
            continue  # a key type or use this node does not support: others may still serve
        if key.algorithm_name in ALGORITHMS:
            keys[entry.get("kid")] = key
    if not keys:
        raise KeyUnavailable(f"the JWKS at {source} has no usable public signing key")
    return keys


KEYS = KeyCache()
