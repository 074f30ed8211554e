"""Signed calls between the hub and its nodes: a profile of HTTP Message Signatures (RFC 9421).

Every call from a node to the hub, and from the hub to a node, carries an Ed25519 signature
over the method, the full target URI and the body's digest, so the receiver knows which
member sent it, that nothing of it was changed on the way, and that it is not an old call
played again::

    Content-Digest: sha-256=:<base64 of sha256(body)>:                       (RFC 9530)
    Signature-Input: sig1=("@method" "@target-uri" "content-digest")
                     ;created=1700000000;keyid="org.genofed.node.be";alg="ed25519";nonce="..."
    Signature: sig1=:<base64 of the Ed25519 signature of the signature base>:

The signature base is built exactly as RFC 9421 §2.5 says: one line ``"<component>": <value>``
per covered component, then ``"@signature-params": <the inner list and its parameters>``, lines
joined by LF with none after the last. :func:`signature_base` builds it for any derived component
or header field, so the RFC's own examples check it (see the tests).

A receiver (:func:`verify`) refuses, each with its own reason: a call without the headers or with
malformed ones; a profile other than ours (the three components, ``alg="ed25519"``, ``created``,
``keyid`` and ``nonce`` all present); ``created`` more than the window (300 s) away from its clock;
a body whose digest is not the declared one; a key id it does not know; a signature that does
not verify; and a nonce it has seen before (nonces are kept as long as their call could be
accepted, so a replay is always caught). This module is pure: the key lookup and the nonce store
are the caller's (:mod:`genofed.federation.guard` keeps nonces in the database).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from genofed.access.tokens import ensure_ed25519_key
from genofed.errors import GenofedError

ALGORITHM = "ed25519"
LABEL = "sig1"
COVERED = ("@method", "@target-uri", "content-digest")
WINDOW_SECONDS = 300
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_KEYID = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII: it goes into logs

ParamValue = int | str | bool


class SignatureRefused(GenofedError):
    """A signed call the receiver refuses; ``reason`` says why in one line, without secrets."""

    def __init__(
        self,
        reason: str,
        *,
        code: str = "malformed",
        keyid: str | None = None,
        status: int = 401,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # a word for programs: unsigned, malformed, profile, clock, digest,
        # unknown_key, bad_signature, replay (and, from the receiving route, forbidden)
        self.keyid = keyid
        self.status = status


class KeyFileError(GenofedError):
    """The request-signing key file cannot be used."""


# -- keys -----------------------------------------------------------------------------------


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key that signs this process's calls, created on first use."""
    ensure_ed25519_key(path)
    info = path.stat()
    return _read_private_key(path, info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=8)
def _read_private_key(path: Path, mtime_ns: int, size: int) -> Ed25519PrivateKey:
    """Read once per version of the file (the arguments after ``path`` key the cache)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as error:
        raise KeyFileError(
            f"the request-signing key {path} cannot be read ({type(error).__name__}): it must be "
            "an unencrypted Ed25519 private key in PEM; move it away to have a new one made (the "
            "hub must then approve the node again)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"the request-signing key {path} is not an Ed25519 key")
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw public key in base64url without padding (a JWK's ``x``)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return _b64url(public.public_bytes_raw())


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """The public key written by :func:`public_key_text`; ValueError if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ValueError("not a base64url Ed25519 public key (32 bytes)") from None


def public_jwk(key: Ed25519PrivateKey | Ed25519PublicKey, kid: str) -> dict[str, str]:
    """The public key as a JWK, for service-info documents and the join request."""
    return {"kty": "OKP", "crv": "Ed25519", "x": public_key_text(key), "kid": kid, "use": "sig"}


def key_fingerprint(text: str) -> str:
    """A short form operators compare out of band before approving a node."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


# -- the message and its signature base ------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """What a signature can cover in a request: method, target URI and header fields
    (names lower-case, several lines of one field already joined with ``", "``)."""

    method: str
    target_uri: str
    headers: Mapping[str, str]


def content_digest(body: bytes) -> str:
    """The RFC 9530 ``Content-Digest`` value of ``body`` with sha-256."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def component_value(message: Message, name: str) -> str:
    """A covered component's value (RFC 9421 §2.1 for fields, §2.2 for derived components)."""
    if not name.startswith("@"):
        value = message.headers.get(name)
        if value is None:
            raise SignatureRefused(f"the signature covers {name!r}, which the request lacks")
        return value.strip()
    parts = urlsplit(message.target_uri)
    derived = {
        "@method": message.method.upper(),
        "@target-uri": message.target_uri,
        "@authority": (parts.netloc.rpartition("@")[2]).lower(),
        "@scheme": parts.scheme.lower(),
        "@path": parts.path or "/",
        "@query": f"?{parts.query}",
        "@request-target": (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
    }
    if name not in derived:
        raise SignatureRefused(f"the derived component {name!r} is not supported")
    return derived[name]


def serialize_params(components: tuple[str, ...], params: list[tuple[str, ParamValue]]) -> str:
    """The ``@signature-params`` value: the inner list of components and its parameters, in
    their order (RFC 8941 serialization)."""
    inner = " ".join(_sf_string(component) for component in components)
    return f"({inner})" + "".join(_sf_param(key, value) for key, value in params)


def signature_base(message: Message, components: tuple[str, ...], params: str) -> str:
    """The signature base of RFC 9421 §2.5 for ``message``: ``params`` is the serialized
    ``@signature-params`` value (see :func:`serialize_params`)."""
    lines = [f"{_sf_string(name)}: {component_value(message, name)}" for name in components]
    for line in lines:
        if "\n" in line or "\r" in line:
            raise SignatureRefused("a covered component holds a line break")
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines)


# -- signing --------------------------------------------------------------------------------


def sign(
    message: Message,
    key: Ed25519PrivateKey,
    keyid: str,
    *,
    created: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The ``Signature-Input`` and ``Signature`` headers for ``message`` in this profile.

    ``message`` must carry the ``content-digest`` header already (see :class:`SignedAuth`).
    """
    params = serialize_params(
        COVERED,
        [
            ("created", int(time.time()) if created is None else created),
            ("keyid", keyid),
            ("alg", ALGORITHM),
            ("nonce", nonce or secrets.token_urlsafe(16)),
        ],
    )
    signature = key.sign(signature_base(message, COVERED, params).encode())
    return {
        "Signature-Input": f"{LABEL}={params}",
        "Signature": f"{LABEL}=:{base64.b64encode(signature).decode()}:",
    }


class SignedAuth(httpx.Auth):
    """httpx authentication that signs every request (a new nonce on each send, retries too)."""

    requires_request_body = True

    def __init__(
        self, key: Ed25519PrivateKey, keyid: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.key = key
        self.keyid = keyid
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        digest = content_digest(request.content)
        request.headers["Content-Digest"] = digest
        message = Message(request.method, str(request.url), {"content-digest": digest})
        request.headers.update(sign(message, self.key, self.keyid, created=int(self.clock())))
        yield request


# -- verifying ------------------------------------------------------------------------------


class KeyLookup(Protocol):
    def __call__(self, keyid: str) -> Ed25519PublicKey | None:
        """The public key of ``keyid``, or None if the receiver does not know it."""
        ...


class NonceStore(Protocol):
    def remember(self, keyid: str, nonce: str, expires_at: float) -> bool:
        """Keep ``nonce`` of ``keyid`` until ``expires_at``; False if it is kept already."""
        ...


@dataclass(frozen=True)
class Verified:
    """Who signed an accepted call, and when."""

    keyid: str
    created: int
    nonce: str


@dataclass(frozen=True)
class _Input:
    label: str
    components: tuple[str, ...]
    params: dict[str, ParamValue]
    serialized: str  # the @signature-params value, re-serialized from what was parsed


def verify(
    message: Message,
    body: bytes,
    key_for: KeyLookup,
    nonces: NonceStore,
    *,
    window: int = WINDOW_SECONDS,
    now: float | None = None,
) -> Verified:
    """Check a signed call in this profile, or raise :class:`SignatureRefused` saying why.

    The nonce is remembered only once the signature verified, so that unsigned noise cannot
    fill the store.
    """
    now = time.time() if now is None else now
    found = _signature_input(message)
    keyid, created, nonce = _profile(found)
    _check_time(created, found.params.get("expires"), now, window, keyid)
    _check_digest(message, body, keyid)
    key = key_for(keyid)
    if key is None:
        raise SignatureRefused(
            f"the key id {keyid!r} is not a node this service knows: join the hub first "
            "('genofed node join HUB_URL') and have its operator approve the node",
            code="unknown_key",
            keyid=keyid,
        )
    signature = _signature(message, found.label, keyid)
    try:
        key.verify(signature, signature_base(message, found.components, found.serialized).encode())
    except InvalidSignature:
        raise SignatureRefused(
            f"the signature of {keyid!r} does not verify: the request was altered on the way, or "
            "signed with another key than the one registered for this id",
            code="bad_signature",
            keyid=keyid,
        ) from None
    if not nonces.remember(keyid, nonce, created + window + 1):
        raise SignatureRefused(
            f"replayed request: the nonce of {keyid!r} was used before", code="replay", keyid=keyid
        )
    return Verified(keyid, created, nonce)


def _signature_input(message: Message) -> _Input:
    text = message.headers.get("signature-input")
    if text is None or "signature" not in message.headers:
        raise SignatureRefused(
            "the request is not signed: calls between the hub and its nodes need the "
            "Signature-Input, Signature and Content-Digest headers (RFC 9421, RFC 9530)",
            code="unsigned",
        )
    members = _parse_dictionary(text, "Signature-Input")
    if len(members) != 1:
        raise SignatureRefused("Signature-Input must hold exactly one signature")
    [(label, (value, params))] = members.items()
    if not isinstance(value, list):
        raise SignatureRefused("Signature-Input's value is not a list of components")
    components = tuple(value)
    serialized = serialize_params(components, list(params.items()))
    return _Input(label, components, params, serialized)


def _profile(found: _Input) -> tuple[str, int, str]:
    """The key id, created time and nonce, once the profile's requirements hold."""
    params = found.params
    keyid, created, nonce = params.get("keyid"), params.get("created"), params.get("nonce")
    if not isinstance(keyid, str) or not _KEYID.match(keyid):
        raise SignatureRefused("the signature has no usable keyid parameter")
    missing = [name for name in COVERED if name not in found.components]
    if missing:
        raise SignatureRefused(
            f"the signature must cover {' '.join(COVERED)}; it lacks {' '.join(missing)}",
            code="profile",
            keyid=keyid,
        )
    if params.get("alg") != ALGORITHM:
        raise SignatureRefused(
            f'the signature must declare alg="{ALGORITHM}"', code="profile", keyid=keyid
        )
    if not isinstance(created, int) or isinstance(created, bool):
        raise SignatureRefused(
            "the signature has no integer created parameter", code="profile", keyid=keyid
        )
    if not isinstance(nonce, str) or not _NONCE.match(nonce):
        raise SignatureRefused(
            "the signature needs a nonce of 16 to 128 base64url characters",
            code="profile",
            keyid=keyid,
        )
    return keyid, created, nonce


def _check_time(
    created: int, expires: ParamValue | None, now: float, window: int, keyid: str
) -> None:
    if abs(now - created) > window:
        raise SignatureRefused(
            f"the signature of {keyid!r} was created {now - created:+.0f} s from this service's "
            f"clock, beyond ±{window} s: an old request replayed, or clocks out of step "
            "(synchronise them with NTP)",
            code="clock",
            keyid=keyid,
        )
    if isinstance(expires, int) and not isinstance(expires, bool) and now > expires:
        raise SignatureRefused(f"the signature of {keyid!r} has expired", code="clock", keyid=keyid)


def _check_digest(message: Message, body: bytes, keyid: str) -> None:
    declared = message.headers.get("content-digest")
    if declared is None:
        raise SignatureRefused(
            "the request has no Content-Digest header", code="digest", keyid=keyid
        )
    members = _parse_dictionary(declared, "Content-Digest")
    value = members.get("sha-256", (None, {}))[0]
    if not isinstance(value, bytes):
        raise SignatureRefused(
            "Content-Digest has no sha-256 byte sequence", code="digest", keyid=keyid
        )
    if not secrets.compare_digest(value, hashlib.sha256(body).digest()):
        raise SignatureRefused(
            "the body's sha-256 is not the one in Content-Digest: the body was altered",
            code="digest",
            keyid=keyid,
        )


def _signature(message: Message, label: str, keyid: str) -> bytes:
    members = _parse_dictionary(message.headers["signature"], "Signature")
    value = members.get(label, (None, {}))[0]
    if not isinstance(value, bytes) or len(value) != 64:
        raise SignatureRefused(
            f"the Signature header has no 64-byte Ed25519 signature labelled {label!r}",
            keyid=keyid,
        )
    return value


# -- RFC 8941 structured fields: the subset the two headers use --------------------------------

Item = str | int | bool | bytes
Member = tuple[Item | list[str], dict[str, ParamValue]]
_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]*")
_INTEGER = re.compile(r"-?\d{1,15}")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
_STRING_CHARS = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*")


def _parse_dictionary(text: str, header: str) -> dict[str, Member]:
    """Parse a structured-field dictionary whose values are items or inner lists of strings."""
    try:
        return _Parser(text).dictionary()
    except (ValueError, IndexError):
        raise SignatureRefused(f"the {header} header is malformed") from None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text.strip(" ")
        self.at = 0

    def dictionary(self) -> dict[str, Member]:
        members: dict[str, Member] = {}
        while self.at < len(self.text):
            key = self._match(_KEY)
            if self._take("="):
                value: Item | list[str] = self._inner() if self._peek("(") else self._item()
            else:
                value = True
            members[key] = (value, self._params())
            self._skip_spaces()
            if self.at < len(self.text):
                self._expect(",")
                self._skip_spaces()
                if self.at == len(self.text):
                    raise ValueError("trailing comma")
        return members

    def _inner(self) -> list[str]:
        self._expect("(")
        items: list[str] = []
        while True:
            while self._take(" "):
                pass
            if self._take(")"):
                return items
            item = self._item()
            if not isinstance(item, str) or self._peek(";"):
                raise ValueError("components are plain strings without parameters")
            items.append(item)
            if not (self._peek(" ") or self._peek(")")):
                raise ValueError("components are separated by spaces")

    def _params(self) -> dict[str, ParamValue]:
        params: dict[str, ParamValue] = {}
        while self._take(";"):
            while self._take(" "):
                pass
            key = self._match(_KEY)
            value = self._item() if self._take("=") else True
            if isinstance(value, bytes):
                raise ValueError("no byte sequences in parameters")
            params[key] = value
        return params

    def _item(self) -> Item:
        char = self.text[self.at]
        if char == '"':
            return self._string()
        if char == ":":
            return base64.b64decode(self._match(_BYTES)[1:-1], validate=True)
        if char == "?":
            flag = self.text[self.at + 1]
            if flag not in "01":
                raise ValueError("bad boolean")
            self.at += 2
            return flag == "1"
        if char == "-" or char.isdigit():
            return int(self._match(_INTEGER))
        return self._match(_TOKEN)

    def _string(self) -> str:
        self._expect('"')
        out = []
        while True:
            out.append(self._match(_STRING_CHARS))
            char = self.text[self.at]
            self.at += 1
            if char == '"':
                return "".join(out)
            if char != "\\" or self.text[self.at] not in '"\\':
                raise ValueError("bad string")
            out.append(self.text[self.at])
            self.at += 1

    def _match(self, pattern: re.Pattern[str]) -> str:
        found = pattern.match(self.text, self.at)
        if found is None or not found.group():
            raise ValueError(f"expected {pattern.pattern} at {self.at}")
        self.at = found.end()
        return found.group()

    def _peek(self, char: str) -> bool:
        return self.text.startswith(char, self.at)

    def _take(self, char: str) -> bool:
        if self._peek(char):
            self.at += len(char)
            return True
        return False

    def _expect(self, char: str) -> None:
        if not self._take(char):
            raise ValueError(f"expected {char!r} at {self.at}")

    def _skip_spaces(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in " \t":
            self.at += 1


def _sf_string(value: str) -> str:
    if not _STRING_CHARS.fullmatch(value.replace('"', "").replace("\\", "")):
        raise ValueError(f"{value!r} cannot be a structured-field string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sf_param(key: str, value: ParamValue) -> str:
    if value is True:
        return f";{key}"
    if isinstance(value, bool):
        return f";{key}=?0"
    if isinstance(value, int):
        return f";{key}={value}"
    return f";{key}={_sf_string(value)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
