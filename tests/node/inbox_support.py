"""Helpers for the inbox, node API and submit tests: a node, tokens, a fake queue, a server.

Test modules in other folders import this with ``sys.path`` pointed at ``tests/node``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from genofed import crypt4gh, db
from genofed.access.tokens import issue_token
from genofed.archive.queue import Delivery, FailedMessage
from genofed.config import Settings, load_settings
from genofed.node.directory import init_node


def make_node(folder: Path, **overrides: Any) -> Settings:
    """A fresh node directory; its pipeline workers are off (they have their own tests)."""
    made = init_node(folder, name="Test node", country="BE")
    return load_settings(made.config_file, embedded_workers=False, **overrides)


def token(settings: Settings, user: str = "alice", roles: Sequence[str] = ("submitter",)) -> str:
    return issue_token(settings, user, list(roles))


def auth(
    settings: Settings, user: str = "alice", roles: Sequence[str] = ("submitter",)
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, user, roles)}"}


def node_public_key(settings: Settings) -> bytes:
    return crypt4gh.load_public_key(settings.crypt4gh.public_key)


def encrypt_for(recipient: bytes, plain: bytes) -> bytes:
    out = io.BytesIO()
    crypt4gh.encrypt(io.BytesIO(plain), out, [recipient])
    return out.getvalue()


def decrypt_with(secret: bytes, data: bytes) -> bytes:
    out = io.BytesIO()
    crypt4gh.decrypt(io.BytesIO(data), out, secret)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunks(data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(offset, data[offset : offset + size]) for offset in range(0, len(data), size)]


class FakeQueue:
    """The queue Protocol in memory: records what is published, drops duplicate keys."""

    def __init__(self, *, broken: bool = False) -> None:
        self.published: list[tuple[str, dict[str, Any], str | None]] = []
        self.broken = broken

    async def publish(
        self, queue: str, body: dict[str, Any], *, dedup_key: str | None = None
    ) -> None:
        if self.broken:
            raise ConnectionError("broker unreachable")
        if dedup_key is not None and any(key == dedup_key for _, _, key in self.published):
            return
        self.published.append((queue, body, dedup_key))

    async def get(self, queues: Sequence[str], *, timeout: float) -> Delivery | None:
        return None

    async def ack(self, delivery: Delivery) -> None: ...

    async def retry(self, delivery: Delivery, error: str) -> None: ...

    async def reject(self, delivery: Delivery, error: str) -> None: ...

    async def depths(self) -> dict[str, int]:
        return {}

    async def failed(self, limit: int = 100) -> list[FailedMessage]:
        return []

    async def requeue_failed(self, queue: str | None = None) -> int:
        return 0

    async def close(self) -> None: ...


def claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    """The claims of a valid submitter token, with ``changes`` applied (to forge bad ones)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": settings.tokens.issuer,
        "sub": "alice",
        "aud": settings.http.public_url,
        "iat": int((now - timedelta(hours=2)).timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "jti": os.urandom(8).hex(),
        "roles": ["submitter"],
    }
    claims.update(changes)
    return claims


def count_archive_files(settings: Settings) -> int:
    """How many archive files the node's database holds."""
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            return session.scalar(select(func.count()).select_from(db.ArchiveFile)) or 0
    finally:
        engine.dispose()
