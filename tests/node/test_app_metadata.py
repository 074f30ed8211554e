"""The metadata and dataset routes, as the node app mounts them."""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inbox_support import FakeQueue, auth, make_node

from genofed.node.app import create_app


def test_the_node_serves_the_dataset_routes(tmp_path: Path) -> None:
    settings = make_node(tmp_path / "node")
    with TestClient(create_app(settings, queue=FakeQueue())) as http:
        listed = http.get("/datasets", headers=auth(settings, roles=("requester",)))
        assert (listed.status_code, listed.json()) == (200, [])
        refused = http.get("/datasets")
        assert refused.status_code == 401
        assert "no bearer token" in refused.json()["detail"]
