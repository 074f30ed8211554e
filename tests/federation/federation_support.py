"""A hub and nodes in temporary folders, served on free loopback ports, and a cohort to publish.

Test modules import this as ``federation_support`` (``conftest.py`` puts this folder on the path).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from inbox_support import FakeQueue
from metadata_support import SUBMITTER, cohort, cohort_files, session_of
from sqlalchemy.orm import Session

from genofed.config import Settings, load_settings
from genofed.db import make_engine
from genofed.db.models import HubNode
from genofed.federation import registry
from genofed.federation.catalogue import Published
from genofed.federation.hub import init_hub
from genofed.federation.hub_app import create_hub_app
from genofed.federation.signing import public_key_text
from genofed.federation.summary import DatasetSummary
from genofed.metadata import service
from genofed.node.app import create_app
from genofed.node.directory import init_node
from genofed.node.server import free_socket, serving

FAST_SYNC = 0.2  # seconds between a test node's heartbeats
LATE, DOWN = 0.6, 1.2  # a test hub's health thresholds


def make_hub(folder: Path, **overrides: Any) -> Settings:
    made = init_hub(folder, name="Test hub")
    hub = {"name": "Test hub", "late_after_seconds": LATE, "down_after_seconds": DOWN}
    return load_settings(made.config_file, hub=hub, **overrides)


def make_node(folder: Path, country: str, **overrides: Any) -> Settings:
    made = init_node(folder, name=f"Node {country}", country=country)
    return load_settings(made.config_file, embedded_workers=False, **overrides)


def with_port(settings: Settings, port: int) -> Settings:
    """The settings as served on ``port`` of 127.0.0.1 (public URL included)."""
    config = settings.home / "genofed.toml"
    current = settings.model_dump(include={"hub", "federation", "embedded_workers"})
    return load_settings(config, http={"port": port}, **current)


def with_hub(settings: Settings, hub_url: str, **federation: Any) -> Settings:
    options = {"hub_url": hub_url, "sync_seconds": FAST_SYNC, **federation}
    merged = settings.federation.model_copy(update=options)
    return settings.model_copy(update={"federation": merged})


@contextmanager
def hub_server(settings: Settings) -> Iterator[tuple[str, Settings]]:
    sock = free_socket()
    served = with_port(settings, sock.getsockname()[1])
    with serving(create_hub_app(served), sock) as url:
        yield url, served


@contextmanager
def node_server(settings: Settings, port: int | None = None) -> Iterator[tuple[str, Settings]]:
    """The node served on ``port`` (a free one by default), with its federation settings."""
    sock = free_socket() if port is None else _bound(port)
    served = with_port(settings, sock.getsockname()[1])
    with serving(create_app(served, queue=FakeQueue()), sock) as url:
        yield url, served


def _bound(port: int) -> Any:
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def release_cohort(settings: Settings) -> str:
    """The metadata_support cohort stored and its dataset released; its accession."""
    engine = make_engine(settings.database_url)
    try:
        with session_of(engine) as session:
            files = cohort_files(session)
            service.submit_metadata(session, settings.country, SUBMITTER, cohort(files))
        with session_of(engine) as session:
            released = service.release_dataset(session, settings.country, "EPI-BE-WGS")
            return str(released.accession)
    finally:
        engine.dispose()


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "a condition") -> Any:
    """Poll ``check`` until it returns something true; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- catalogue entries without a node ---------------------------------------------------------


def summary(accession: str, **fields: Any) -> DatasetSummary:
    """A dataset summary as a node would publish it, with plain defaults."""
    values: dict[str, Any] = {
        "accession": accession,
        "status": "released",
        "title": f"Dataset {accession}",
        "individuals": 10,
        "samples": 10,
        "data_types": ["WGS"],
        "assemblies": ["GRCh38"],
        "policy": {
            "accession": "GFBEP00000000001V",
            "title": "Any research",
            "permission": {"code": "GRU", "id": "DUO:0000042", "label": "general research use"},
        },
        "how_to_apply": {
            "node_url": "http://node.example",
            "requests_url": "http://node.example/access/requests",
            "command": "genofed access request",
        },
        **fields,
    }
    return DatasetSummary.model_validate(values)


def published(item: DatasetSummary) -> Published:
    return Published(digest=item.digest(), summary=item)


def add_hub_node(session: Session, node_id: str, country: str, *, approved: bool = True) -> HubNode:
    """A registered node, as a join would leave it (approved unless told otherwise)."""
    node, _ = registry.join(session, join_request(node_id, country))
    if approved:
        registry.approve(session, node.id, "operator")
    return node


def join_request(node_id: str, country: str, key: str | None = None) -> registry.JoinRequest:
    return registry.JoinRequest(
        id=node_id,
        name=f"Node {country}",
        country=country,
        url=f"http://{country.lower()}.example",
        service_info={"id": node_id, "type": {"group": "org.ga4gh", "artifact": "genofed-node"}},
        signing_key=key or public_key_text(Ed25519PrivateKey.generate()),
        issuer=f"http://{country.lower()}.example",
        jwks={"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": node_id}]},
        crypt4gh_public_key="-----BEGIN CRYPT4GH PUBLIC KEY-----\n...",
    )
