"""Request signing (RFC 9421 profile): the RFC's own example, our profile, every refusal."""

from __future__ import annotations

import base64
from dataclasses import replace

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from genofed.federation.signing import (
    COVERED,
    Message,
    SignatureRefused,
    SignedAuth,
    Verified,
    content_digest,
    serialize_params,
    sign,
    signature_base,
    verify,
)

# RFC 9421 appendix B.1.4, "test-key-ed25519".
RFC_KEY = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""
KEYID = "org.genofed.node.be"
NOW = 1_700_000_000
URI = "http://hub.example.org:8700/catalogue/publish?x=1"
BODY = b'{"datasets": []}'


class Nonces:
    """The nonce store in memory."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], float] = {}

    def remember(self, keyid: str, nonce: str, expires_at: float) -> bool:
        if (keyid, nonce) in self.seen:
            return False
        self.seen[(keyid, nonce)] = expires_at
        return True


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _signed(key: Ed25519PrivateKey, *, body: bytes = BODY, **options: object) -> Message:
    digest = content_digest(body)
    message = Message("POST", URI, {"content-digest": digest})
    headers = sign(message, key, KEYID, created=NOW, **options)  # type: ignore[arg-type]
    return Message("POST", URI, {"content-digest": digest, **_lower(headers)})


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _verify(
    message: Message,
    key: Ed25519PrivateKey,
    *,
    body: bytes = BODY,
    nonces: Nonces | None = None,
    now: float = NOW,
) -> Verified:
    public = key.public_key()

    def key_for(keyid: str) -> Ed25519PublicKey | None:
        return public if keyid == KEYID else None

    return verify(message, body, key_for, nonces or Nonces(), now=now)


def _refusal(call: object) -> SignatureRefused:
    with pytest.raises(SignatureRefused) as caught:
        call()  # type: ignore[operator]
    assert "\n" not in caught.value.reason
    return caught.value


# -- the RFC's examples --------------------------------------------------------------------------


def test_rfc9421_ed25519_example_b26() -> None:
    """Appendix B.2.6: the signature base and the (deterministic) Ed25519 signature."""
    message = Message(
        "POST",
        "https://example.com/foo?param=Value&Pet=dog",
        {
            "date": "Tue, 20 Apr 2021 02:07:55 GMT",
            "content-type": "application/json",
            "content-length": "18",
        },
    )
    components = ("date", "@method", "@path", "@authority", "content-type", "content-length")
    params = serialize_params(components, [("created", 1618884473), ("keyid", "test-key-ed25519")])
    base = signature_base(message, components, params)
    assert base == (
        '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
        '"@method": POST\n'
        '"@path": /foo\n'
        '"@authority": example.com\n'
        '"content-type": application/json\n'
        '"content-length": 18\n'
        '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
        '"content-length");created=1618884473;keyid="test-key-ed25519"'
    )
    key = serialization.load_pem_private_key(RFC_KEY, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    signature = base64.b64encode(key.sign(base.encode())).decode()
    assert signature == (
        "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
    )


def test_rfc9530_content_digest_example() -> None:
    assert content_digest(b'{"hello": "world"}') == (
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )


def test_our_profile_headers_and_base(key: Ed25519PrivateKey) -> None:
    message = _signed(key, nonce="abcdefghijklmnopqrstuv")
    assert message.headers["signature-input"] == (
        'sig1=("@method" "@target-uri" "content-digest");created=1700000000;'
        'keyid="org.genofed.node.be";alg="ed25519";nonce="abcdefghijklmnopqrstuv"'
    )
    params = message.headers["signature-input"].removeprefix("sig1=")
    assert signature_base(message, COVERED, params) == (
        '"@method": POST\n'
        f'"@target-uri": {URI}\n'
        f'"content-digest": {content_digest(BODY)}\n'
        f'"@signature-params": {params}'
    )
    assert _verify(message, key) == Verified(KEYID, NOW, "abcdefghijklmnopqrstuv")


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda m: replace(m, method="PUT"), "bad_signature"),
        (lambda m: replace(m, target_uri=URI.replace("publish", "publish2")), "bad_signature"),
        (lambda m: replace(m, target_uri=URI.replace("x=1", "x=2")), "bad_signature"),
        (lambda m: replace(m, target_uri=URI.replace("8700", "8701")), "bad_signature"),
    ],
    ids=["method", "path", "query", "authority"],
)
def test_a_changed_request_is_refused(key: Ed25519PrivateKey, change: object, code: str) -> None:
    refused = _refusal(lambda: _verify(change(_signed(key)), key))  # type: ignore[operator]
    assert refused.code == code
    assert "does not verify" in refused.reason


def test_a_changed_body_is_refused(key: Ed25519PrivateKey) -> None:
    refused = _refusal(lambda: _verify(_signed(key), key, body=b'{"datasets": [1]}'))
    assert refused.code == "digest"


def test_a_changed_digest_header_is_refused(key: Ed25519PrivateKey) -> None:
    """Body and Content-Digest changed together: the signature covers the digest."""
    other = b'{"datasets": [1]}'
    message = _signed(key)
    forged = replace(message, headers={**message.headers, "content-digest": content_digest(other)})
    assert _refusal(lambda: _verify(forged, key, body=other)).code == "bad_signature"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("created=1700000000", "created=1700000001"),
        ('nonce="abcdefghijklmnopqrstuv"', 'nonce="abcdefghijklmnopqrstuw"'),
    ],
    ids=["created", "nonce"],
)
def test_changed_signature_parameters_are_refused(
    key: Ed25519PrivateKey, old: str, new: str
) -> None:
    message = _signed(key, nonce="abcdefghijklmnopqrstuv")
    forged = {
        **message.headers,
        "signature-input": message.headers["signature-input"].replace(old, new),
    }
    refused = _refusal(lambda: _verify(replace(message, headers=forged), key))
    assert refused.code == "bad_signature"


def test_another_keyid_is_refused(key: Ed25519PrivateKey) -> None:
    """Claiming another node's id: unknown here, or its key does not verify the signature."""
    message = _signed(key)
    claimed = message.headers["signature-input"].replace(KEYID, "org.genofed.node.fi")
    forged = replace(message, headers={**message.headers, "signature-input": claimed})
    refused = _refusal(lambda: _verify(forged, key))
    assert (refused.code, refused.keyid) == ("unknown_key", "org.genofed.node.fi")


def test_a_signature_by_another_key_is_refused(key: Ed25519PrivateKey) -> None:
    forged = _signed(Ed25519PrivateKey.generate())
    assert _refusal(lambda: _verify(forged, key)).code == "bad_signature"


def test_a_replay_is_refused(key: Ed25519PrivateKey) -> None:
    nonces = Nonces()
    message = _signed(key)
    _verify(message, key, nonces=nonces)
    refused = _refusal(lambda: _verify(message, key, nonces=nonces))
    assert refused.code == "replay"
    assert len(nonces.seen) == 1
    [expires] = nonces.seen.values()
    assert expires > NOW + 300  # kept as long as the call could be accepted


def test_the_clock_window(key: Ed25519PrivateKey) -> None:
    message = _signed(key)
    _verify(message, key, now=NOW + 300)
    _verify(message, key, now=NOW - 300)
    for now in (NOW + 301, NOW - 301):
        refused = _refusal(lambda now=now: _verify(message, key, now=now))
        assert refused.code == "clock"
        assert "±300 s" in refused.reason


def test_a_refused_call_burns_no_nonce(key: Ed25519PrivateKey) -> None:
    nonces = Nonces()
    _refusal(lambda: _verify(_signed(Ed25519PrivateKey.generate()), key, nonces=nonces))
    assert nonces.seen == {}


def test_unsigned_and_malformed_requests_are_refused(key: Ed25519PrivateKey) -> None:
    bare = Message("POST", URI, {"content-digest": content_digest(BODY)})
    assert _refusal(lambda: _verify(bare, key)).code == "unsigned"
    message = _signed(key)
    for name, value in [
        ("signature-input", "sig1=(oops"),
        ("signature-input", 'sig1=("@method");created=1;keyid="a b"'),
        ("signature", "sig1=:not base64!:"),
        ("signature", "sig1=:AAAA:"),
        ("content-digest", "md5=:AAAA:"),
    ]:
        broken = replace(message, headers={**message.headers, name: value})
        refused = _refusal(lambda broken=broken: _verify(broken, key))
        assert refused.code in ("malformed", "profile", "digest"), (name, value, refused)


def test_the_profile_is_required(key: Ed25519PrivateKey) -> None:
    """Fewer components, another algorithm, no nonce: refused before any key is used."""
    message = _signed(key, nonce="abcdefghijklmnopqrstuv")
    text = message.headers["signature-input"]
    for changed in (
        text.replace(' "content-digest"', ""),
        text.replace('alg="ed25519"', 'alg="rsa-pss-sha512"'),
        text.replace(';nonce="abcdefghijklmnopqrstuv"', ""),
        text.replace(";created=1700000000", ""),
    ):
        broken = replace(message, headers={**message.headers, "signature-input": changed})
        assert _refusal(lambda broken=broken: _verify(broken, key)).code == "profile"


def test_signed_auth_signs_what_httpx_sends(key: Ed25519PrivateKey) -> None:
    """The httpx auth class: the request as sent verifies, with a new nonce on every send."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    auth = SignedAuth(key, KEYID, clock=lambda: NOW)
    with httpx.Client(transport=httpx.MockTransport(answer), auth=auth) as client:
        client.post("http://hub.example.org/catalogue/publish", params={"a": "b c"}, json={"x": 1})
        client.get("http://hub.example.org/services/org.genofed.node.be")
    nonces = Nonces()
    for request in seen:
        headers = {name: request.headers[name] for name in ("signature-input", "signature")}
        headers["content-digest"] = request.headers["content-digest"]
        message = Message(request.method, str(request.url), headers)
        assert _verify(message, key, body=request.content, nonces=nonces).keyid == KEYID
    assert len(nonces.seen) == 2
