"""The node's pinning of its hub's key, against a hub played by a mock transport."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from federation_support import make_node, with_hub
from metadata_support import COUNTRY

from genofed.config import Settings
from genofed.db import make_engine
from genofed.federation.hub import HUB_ID
from genofed.federation.node_sync import FederationError, join
from genofed.federation.signing import public_jwk

HUB = "http://hub.example"


def _hub_client(key: Ed25519PrivateKey) -> httpx.Client:
    """A hub that accepts every join and signs with ``key``."""

    def answer(request: httpx.Request) -> httpx.Response:
        reply = {
            "node": {"status": "pending"},
            "hub": {"id": HUB_ID, "federation": {"signing_key": public_jwk(key, HUB_ID)}},
        }
        return httpx.Response(201, json=reply)

    return httpx.Client(base_url=HUB, transport=httpx.MockTransport(answer))


@pytest.fixture
def node(tmp_path: Path) -> Settings:
    return with_hub(make_node(tmp_path / "be", COUNTRY), HUB)


def test_the_hub_key_is_pinned_at_join(node: Settings) -> None:
    engine = make_engine(node.database_url)
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    link = join(node, engine, _hub_client(first))
    assert (link.hub_id, link.hub_key, link.status) == (
        HUB_ID,
        public_jwk(first, HUB_ID)["x"],
        "pending",
    )
    assert join(node, engine, _hub_client(first)).hub_key == link.hub_key  # again: same key
    with pytest.raises(FederationError, match="now signs with another key"):
        join(node, engine, _hub_client(second))
    rotated = public_jwk(second, HUB_ID)["x"]
    accepted = node.federation.model_copy(update={"hub_key": rotated})
    link = join(node.model_copy(update={"federation": accepted}), engine, _hub_client(second))
    assert link.hub_key == rotated  # the operator confirmed the new key
    engine.dispose()


def test_a_key_pinned_ahead_refuses_another_hub(node: Settings) -> None:
    pinned = node.federation.model_copy(
        update={"hub_key": public_jwk(Ed25519PrivateKey.generate(), HUB_ID)["x"]}
    )
    engine = make_engine(node.database_url)
    with pytest.raises(FederationError, match="not the hub you pinned"):
        join(
            node.model_copy(update={"federation": pinned}),
            engine,
            _hub_client(Ed25519PrivateKey.generate()),
        )
    engine.dispose()
