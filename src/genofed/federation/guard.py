"""Receiving signed calls in a FastAPI app, on the hub and on a node alike.

:func:`verify_call` reads the request's body (bounded), rebuilds the message as the sender
signed it and hands it to :func:`genofed.federation.signing.verify` with the receiver's key
lookup and the nonce store below. A refusal is logged (one line, no header values) and appended
to the audit log as ``denied``, then answered 401 or 403 as ``{"detail": "..."}`` with the
refusal's code in ``X-Refusal-Reason`` (a node that the hub forgot re-joins on
``unknown_key``).

The target URI is rebuilt from the scheme, the ``Host`` header the client sent and the raw path
and query: behind a reverse proxy, pass ``Host`` through and run uvicorn with
``--proxy-headers`` so the scheme is the client's.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from functools import partial

import anyio
from fastapi import HTTPException, Request
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError

from genofed.access import audit
from genofed.db.engine import for_writing, session_scope
from genofed.db.models import FederationNonce, utcnow
from genofed.federation.signing import (
    ALGORITHM,
    COVERED,
    KeyLookup,
    Message,
    SignatureRefused,
    Verified,
    verify,
)

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 8 * 1024 * 1024
SWEEP_SECONDS = 60.0
REFUSAL_HEADER = "X-Refusal-Reason"
_SIGNED_HEADERS = ("signature-input", "signature", "content-digest")
ACCEPT_SIGNATURE = "sig1=(" + " ".join(f'"{name}"' for name in COVERED) + f');alg="{ALGORITHM}"'


class DatabaseNonces:
    """The nonce store of :func:`~genofed.federation.signing.verify` in ``federation_nonces``.

    The primary key (key id, nonce) makes a second use fail on every backend, even from two
    processes at once. Expired nonces are swept at most once a minute per process.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._swept = 0.0
        self._lock = threading.Lock()

    def remember(self, keyid: str, nonce: str, expires_at: float) -> bool:
        expires = datetime.fromtimestamp(expires_at, UTC)
        try:
            with session_scope(for_writing(self.engine)) as session:
                session.add(FederationNonce(keyid=keyid, nonce=nonce, expires_at=expires))
                session.flush()
        except IntegrityError:
            return False
        self._sweep()
        return True

    def _sweep(self) -> None:
        with self._lock:
            if time.monotonic() - self._swept < SWEEP_SECONDS:
                return
            self._swept = time.monotonic()
        with session_scope(for_writing(self.engine)) as session:
            session.execute(delete(FederationNonce).where(FederationNonce.expires_at < utcnow()))


def target_uri(request: Request) -> str:
    """The URI the client sent the request to, as it signed it."""
    scope = request.scope
    host = request.headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    uri = f"{scope.get('scheme', 'http')}://{host}{raw_path.decode('latin-1')}"
    return f"{uri}?{query.decode('latin-1')}" if query else uri


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused with 413 beyond ``limit`` bytes before more is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the request body is larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the request body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def verify_call(
    request: Request,
    *,
    engine: Engine,
    nonces: DatabaseNonces,
    key_for: KeyLookup,
    window: int,
    body: bytes | None = None,
) -> tuple[Verified, bytes]:
    """The verified signer and the body of a signed call, or an HTTPException (401) that was
    logged and audited. ``body``: the body when the caller has read it already."""
    if body is None:
        body = await read_body(request)
    headers = {name: ", ".join(request.headers.getlist(name)) for name in _SIGNED_HEADERS}
    message = Message(
        request.method,
        target_uri(request),
        {name: value for name, value in headers.items() if value},
    )
    try:
        verified = await anyio.to_thread.run_sync(
            partial(verify, message, body, key_for, nonces, window=window)
        )
    except SignatureRefused as error:
        raise await refuse(request, engine, error) from None
    return verified, body


async def refuse(request: Request, engine: Engine, error: SignatureRefused) -> HTTPException:
    """Log and audit a refused call; the HTTPException that answers it."""
    who = error.keyid or "unknown"
    log.warning(
        "refused %s %s from %s (%s): %s",
        request.method,
        request.url.path,
        who,
        error.code,
        error.reason,
    )
    detail = {"method": request.method, "path": request.url.path, "reason": error.reason}
    try:
        await anyio.to_thread.run_sync(
            partial(
                audit.append,
                engine,
                actor=who,
                action=f"federation.refused.{error.code}",
                outcome="denied",
                detail=detail,
            )
        )
    except Exception:  # the refusal stands even if the log cannot take it
        log.exception("could not audit the refusal of %s %s", request.method, request.url.path)
    return HTTPException(
        error.status,
        error.reason,
        headers={REFUSAL_HEADER: error.code, "Accept-Signature": ACCEPT_SIGNATURE},
    )
