"""The hub's directory and identity, and the calls it makes to its nodes.

A hub lives in a folder of its own, like a node: ``genofed.toml`` (with a ``[hub]`` section, which
is what makes the folder a hub), its request-signing key ``keys/hub-signing.pem`` and a database
(SQLite in the folder by default, PostgreSQL by ``database_url``). The hub signs its calls to
nodes with that key under the key id :data:`HUB_ID`; nodes pin the key when they join (or ahead,
with ``federation.hub_key``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import tomli_w
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genofed import __version__, db
from genofed.access import audit
from genofed.config import CONFIG_FILE_NAME, Settings, load_settings
from genofed.db.models import HubDataset, HubNode
from genofed.errors import GenofedError
from genofed.federation import registry
from genofed.federation.signing import (
    SignedAuth,
    key_fingerprint,
    load_private_key,
    public_jwk,
    public_key_text,
)

log = logging.getLogger(__name__)
HUB_ID = "org.genofed.hub"
HUB_KEY_FILE = Path("keys/hub-signing.pem")
DEFAULT_PORT = 8700
NodeEvent = Literal["approved", "resync"]


class HubDirectoryError(GenofedError):
    """A hub directory that cannot be created or used as asked."""


@dataclass(frozen=True)
class HubDirectory:
    """What :func:`init_hub` made."""

    settings: Settings
    config_file: Path
    signing_key: str  # the public key nodes may pin (federation.hub_key)
    fingerprint: str


def init_hub(folder: Path, *, name: str, port: int = DEFAULT_PORT) -> HubDirectory:
    """Create a ready hub in ``folder``: configuration, signing key, database."""
    config_file = folder / CONFIG_FILE_NAME
    if config_file.exists():
        raise HubDirectoryError(
            f"{folder} holds a genofed directory already ({config_file} exists): choose an "
            "empty folder"
        )
    if not name.strip():
        raise HubDirectoryError("give the hub a name, e.g. --name 'European genome federation'")
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "node_name": name,
        "hub": {"name": name},
        "http": {"port": port},
        "federation": {"signing_key": str(HUB_KEY_FILE)},
        "embedded_workers": False,
    }
    config_file.write_text(tomli_w.dumps(config))
    settings = load_settings(config_file)
    key = public_key_text(load_private_key(settings.federation.signing_key))
    db.upgrade(settings.database_url)
    return HubDirectory(settings, config_file, key, key_fingerprint(key))


def require_hub(settings: Settings) -> None:
    """Refuse a configuration that is not a hub's (a node's, or none)."""
    if not settings.hub.name:
        raise HubDirectoryError(
            f"{settings.home} is not a hub directory (its genofed.toml has no [hub] name): "
            "create one with 'genofed hub init DIR' and give it with --config"
        )


def hub_service_info(settings: Settings) -> dict[str, Any]:
    """GA4GH service-info of the hub (a service registry), with the key it signs with."""
    key = load_private_key(settings.federation.signing_key)
    return {
        "id": HUB_ID,
        "name": settings.hub.name,
        "type": {"group": "org.ga4gh", "artifact": "service-registry", "version": "1.0.0"},
        "description": "A genofed federation hub: registry of national nodes, dataset catalogue.",
        "organization": {"name": settings.hub.name, "url": settings.http.public_url},
        "version": __version__,
        "url": settings.http.public_url,
        "federation": {"signing_key": public_jwk(key, HUB_ID)},
    }


def notify_node(settings: Settings, node: HubNode, event: NodeEvent) -> str | None:
    """Tell a node, in a signed call, that something changed for it at the hub; None when it
    heard, else why not (the node learns it at its next heartbeat anyway)."""
    auth = SignedAuth(load_private_key(settings.federation.signing_key), HUB_ID)
    try:
        response = httpx.post(
            f"{node.url}/federation/notify",
            json={"event": event},
            auth=auth,
            timeout=settings.federation.timeout_seconds,
        )
    except httpx.HTTPError as error:
        return f"{node.url} did not answer ({type(error).__name__})"
    if response.status_code >= 300:
        return f"{node.url} answered {response.status_code}: {_detail(response)}"
    return None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text[:200]))
    except ValueError:
        return response.text[:200]


# -- the operator's actions (``genofed hub ...``), on the hub's database ------------------------


@dataclass(frozen=True)
class Approval:
    node: dict[str, Any]  # its status, as listings show it
    notice_problem: str | None  # why the node was not told at once, if it was not


def approve_node(settings: Settings, reference: str, by: str) -> Approval:
    """Approve a node (audited), then tell it so it publishes at once."""
    require_hub(settings)
    with _operator_session(settings) as session:
        node = registry.approve(session, reference, by)
        audit.record(session, actor=by, action="federation.approve", detail={"node": node.id})
        status = registry.node_status(node, settings.hub)
    return Approval(status, notify_node(settings, node, "approved"))


def remove_node(settings: Settings, reference: str, by: str) -> str:
    """Forget a node and its catalogue entries (audited); returns its id."""
    require_hub(settings)
    with _operator_session(settings) as session:
        node = registry.remove(session, reference)
        audit.record(session, actor=by, action="federation.remove", detail={"node": node.id})
        return node.id


def node_listing(settings: Settings) -> list[dict[str, Any]]:
    """Every registered node with its status, health, datasets and key fingerprint."""
    require_hub(settings)
    with _operator_session(settings) as session:
        counted = session.execute(
            select(HubDataset.node_id, func.count())
            .where(HubDataset.status == "released")
            .group_by(HubDataset.node_id)
        )
        counts = {node_id: int(count) for node_id, count in counted}
        return [
            {
                **registry.node_status(node, settings.hub),
                "datasets": counts.get(node.id, 0),
                "key_fingerprint": key_fingerprint(node.signing_key),
            }
            for node in registry.list_nodes(session)
        ]


@contextmanager
def _operator_session(settings: Settings) -> Iterator[Session]:
    engine = db.make_engine(settings.database_url)
    try:
        db.check_schema(engine)
        with db.session_scope(db.for_writing(engine)) as session:
            yield session
    finally:
        engine.dispose()
