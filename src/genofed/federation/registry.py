"""The hub's registry of nodes: who joined, who is approved, who is alive.

A node joins by sending its GA4GH service-info, country, name, URL and public keys (request
signing, visa issuing as a JWKS, Crypt4GH) in a request signed with the very key it registers
(proof that it holds it). It is then ``pending`` until an operator approves it (``genofed hub
approve``); only approved nodes publish to the catalogue, appear in ``/services`` and have their
keys published. Joining again with the same key updates the record and keeps the status (a node
restarting, or moving to a new URL); joining with another key under a registered id is refused:
an id cannot be taken over by whoever asks.

Health comes from heartbeats: a node is ``up`` while its last heartbeat is recent, ``late`` after
``hub.late_after_seconds``, ``down`` after ``hub.down_after_seconds`` (``unknown`` before the
first). The registry's listing follows the GA4GH service-registry shape: each entry is the node's
service-info plus its ``url``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.config import HubSettings
from genofed.db.models import HubNode, HubNodeStatus, utcnow
from genofed.errors import GenofedError
from genofed.federation.signing import key_fingerprint, public_key_from_text

Health = Literal["up", "late", "down", "unknown"]
NODE_ID = r"^[a-z0-9][a-z0-9._-]{2,254}$"
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


class RegistryError(GenofedError):
    """A registry operation that cannot be done as asked."""


class UnknownNode(RegistryError):
    """No registered node matches the reference."""


class KeyConflict(RegistryError):
    """A join under a registered node id with another key."""


# -- what a node sends --------------------------------------------------------------------------


class JoinRequest(BaseModel):
    """A node's application to the federation, signed with ``signing_key``."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=NODE_ID)]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    url: Annotated[str, Field(max_length=1024)]
    service_info: dict[str, Any]
    signing_key: Annotated[str, Field(max_length=64)]
    issuer: Annotated[str, Field(max_length=1024)]
    jwks: dict[str, Any]
    crypt4gh_public_key: Annotated[str, Field(max_length=2000)]

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _base_url(value)

    @field_validator("signing_key")
    @classmethod
    def _key(cls, value: str) -> str:
        public_key_from_text(value)
        return value

    @field_validator("jwks")
    @classmethod
    def _jwks(cls, value: dict[str, Any]) -> dict[str, Any]:
        keys = value.get("keys")
        if not isinstance(keys, list) or not 1 <= len(keys) <= 10:
            raise ValueError("must be a JWKS with 1 to 10 keys")
        for key in keys:
            if not isinstance(key, dict) or key.get("kty") not in ("OKP", "EC", "RSA"):
                raise ValueError("every key needs kty OKP, EC or RSA")
            if _PRIVATE_JWK_MEMBERS & set(key):
                raise ValueError("holds private key material: send public keys only")
        return {"keys": keys}


class Heartbeat(BaseModel):
    """A node saying it is alive, and where it is now."""

    model_config = ConfigDict(extra="ignore")

    url: Annotated[str, Field(max_length=1024)]

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _base_url(value)


def _base_url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


# -- operations -----------------------------------------------------------------------------


def join(session: Session, request: JoinRequest) -> tuple[HubNode, bool]:
    """Register the node, or update it when it joins again with its key; (node, created)."""
    node = session.get(HubNode, request.id)
    if node is not None and node.signing_key != request.signing_key:
        raise KeyConflict(
            f"node {request.id} is registered with another signing key "
            f"({key_fingerprint(node.signing_key)}): if the node's key really changed, the hub "
            f"operator removes it ('genofed hub remove {request.id}') and approves it again"
        )
    created = node is None
    if node is None:
        node = HubNode(id=request.id, status=HubNodeStatus.PENDING, signing_key=request.signing_key)
        session.add(node)
    node.name = request.name
    node.country = request.country
    node.url = request.url
    node.service_info = request.service_info
    node.issuer = request.issuer
    node.jwks = request.jwks
    node.crypt4gh_key = request.crypt4gh_public_key
    node.last_heartbeat_at = utcnow()
    session.flush()
    return node, created


def heartbeat(session: Session, node: HubNode, beat: Heartbeat) -> HubNode:
    node.last_heartbeat_at = utcnow()
    if beat.url != node.url:
        node.url = beat.url
    session.flush()
    return node


def approve(session: Session, reference: str, by: str) -> HubNode:
    """Make a pending node a member (a member stays one: approving again changes nothing)."""
    node = find_node(session, reference)
    if node.status is not HubNodeStatus.APPROVED:
        node.status = HubNodeStatus.APPROVED
        node.approved_at = utcnow()
        node.approved_by = by
        session.flush()
    return node


def remove(session: Session, reference: str) -> HubNode:
    """Forget a node and its catalogue (it may join again, as a pending node)."""
    node = find_node(session, reference)
    session.delete(node)
    session.flush()
    return node


def find_node(session: Session, reference: str) -> HubNode:
    """The node with id ``reference``, or the only one with that country code or name."""
    text = reference.strip()
    node = session.get(HubNode, text)
    if node is not None:
        return node
    found = session.scalars(
        select(HubNode).where((HubNode.country == text.upper()) | (HubNode.name == text))
    ).all()
    if len(found) == 1:
        return found[0]
    known = ", ".join(session.scalars(select(HubNode.id).order_by(HubNode.id))) or "none yet"
    if found:
        raise RegistryError(f"{text!r} names several nodes: give the node id ({known})")
    raise UnknownNode(f"no node {text!r} is registered at this hub (registered: {known})")


def list_nodes(session: Session, *, approved_only: bool = False) -> list[HubNode]:
    query = select(HubNode).order_by(HubNode.country, HubNode.id)
    if approved_only:
        query = query.where(HubNode.status == HubNodeStatus.APPROVED)
    return list(session.scalars(query))


# -- health and the service-registry shape ----------------------------------------------------


def health(node: HubNode, settings: HubSettings, now: datetime | None = None) -> Health:
    """up / late / down from the age of the node's last heartbeat."""
    if node.last_heartbeat_at is None:
        return "unknown"
    age = (now or utcnow()) - node.last_heartbeat_at
    if age > timedelta(seconds=settings.down_after_seconds):
        return "down"
    if age > timedelta(seconds=settings.late_after_seconds):
        return "late"
    return "up"


def node_status(
    node: HubNode, settings: HubSettings, now: datetime | None = None
) -> dict[str, Any]:
    """A node's standing at the hub, as searches and listings name it."""
    return {
        "id": node.id,
        "name": node.name,
        "country": node.country,
        "url": node.url,
        "status": node.status.value,
        "health": health(node, settings, now),
        "last_heartbeat": node.last_heartbeat_at.isoformat() if node.last_heartbeat_at else None,
    }


def service_entry(
    node: HubNode, settings: HubSettings, now: datetime | None = None
) -> dict[str, Any]:
    """The node as a GA4GH service-registry ``ExternalService``: its service-info and ``url``,
    with the hub's view of it (health, keys) under ``federation``."""
    return {
        **node.service_info,
        "id": node.id,
        "name": node.name,
        "url": node.url,
        "country": node.country,
        "federation": {
            "status": node.status.value,
            "health": health(node, settings, now),
            "last_heartbeat": node.last_heartbeat_at.isoformat()
            if node.last_heartbeat_at
            else None,
            "issuer": node.issuer,
            "jwks_url": f"/nodes/{node.id}/jwks",
            "signing_key": node.signing_key,
            "crypt4gh_public_key": node.crypt4gh_key,
        },
    }
