"""The node API's inbox over HTTP: resumable uploads, completion, ingestion, errors as JSON."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inbox_support import (
    FakeQueue,
    auth,
    chunks,
    count_archive_files,
    encrypt_for,
    make_node,
    node_public_key,
    sha256,
)

from genofed import __version__, crypt4gh, db
from genofed.config import Settings
from genofed.node.app import create_app

CHUNK = 50_000
LIMIT = 200_000


@dataclass
class Node:
    settings: Settings
    http: TestClient
    queue: FakeQueue
    alice: dict[str, str]

    def start(self, headers: dict[str, str] | None = None, filename: str = "a.bam.c4gh") -> str:
        response = self.http.post(
            "/inbox/uploads", json={"filename": filename}, headers=headers or self.alice
        )
        assert response.status_code == 201, response.text
        assert response.headers["Location"] == f"/inbox/uploads/{response.json()['id']}"
        return str(response.json()["id"])

    def put(self, upload_id: str, offset: int, chunk: bytes, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return self.http.put(
            f"/inbox/uploads/{upload_id}",
            params={"offset": offset},
            content=chunk,
            headers=headers or self.alice,
        )

    def send(self, data: bytes, size: int = CHUNK) -> str:
        upload_id = self.start()
        for offset, chunk in chunks(data, size):
            assert self.put(upload_id, offset, chunk).status_code == 200
        return upload_id

    def complete(self, upload_id: str, checksum: str, **extra: object):  # type: ignore[no-untyped-def]
        return self.http.post(
            f"/inbox/uploads/{upload_id}/complete",
            json={"sha256": checksum, **extra},
            headers=self.alice,
        )

    def archive_files(self) -> int:
        return count_archive_files(self.settings)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    settings = make_node(tmp_path / "node")
    queue = FakeQueue()
    with TestClient(create_app(settings, queue=queue, max_chunk_bytes=LIMIT)) as http:
        yield Node(settings, http, queue, auth(settings))


@pytest.fixture
def data(node: Node) -> bytes:
    return encrypt_for(node_public_key(node.settings), os.urandom(3 * CHUNK))


def test_service_info_and_the_public_key(node: Node) -> None:
    info = node.http.get("/service-info").json()
    assert info["type"] == {
        "group": "org.ga4gh",
        "artifact": "genofed-node",
        "version": __version__,
    }
    assert info["name"] == "Test node"
    assert info["organization"]["url"] == node.settings.http.public_url
    key = node.http.get("/crypt4gh/public-key").json()
    public = crypt4gh.decode_public_key(key["public_key"].encode())
    assert public == node_public_key(node.settings)
    assert key["fingerprint"] == crypt4gh.fingerprint(public)


def test_upload_resume_complete_and_ingest(node: Node, data: bytes) -> None:
    upload_id = node.start()
    parts = chunks(data, CHUNK)
    for offset, chunk in parts[:2]:
        response = node.put(upload_id, offset, chunk)
        assert response.json() == {"id": upload_id, "offset": offset + len(chunk)}
    # a client that lost track asks where to resume
    head = node.http.head(f"/inbox/uploads/{upload_id}", headers=node.alice)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(2 * CHUNK)
    status = node.http.get(f"/inbox/uploads/{upload_id}", headers=node.alice).json()
    assert status == {
        "id": upload_id,
        "filename": "a.bam.c4gh",
        "state": "open",
        "error": None,
        "offset": 2 * CHUNK,
        "file_id": None,
    }
    for offset, chunk in parts[2:]:
        assert node.put(upload_id, offset, chunk).status_code == 200

    response = node.complete(upload_id, sha256(data))
    assert response.status_code == 201, response.text
    file = response.json()
    assert file["state"] == "submitted"
    assert [event["state"] for event in file["events"]] == ["uploaded", "submitted"]
    assert node.queue.published == [
        (
            "ingest",
            {
                "type": "ingest",
                "user": "alice",
                "filepath": f"uploads/{upload_id}",
                "encrypted_checksums": [{"type": "sha256", "value": sha256(data)}],
            },
            f"ingest:{file['id']}",
        )
    ]
    listed = node.http.get("/inbox/files", headers=node.alice).json()["files"]
    assert [(f["id"], f["filename"], f["state"]) for f in listed] == [
        (file["id"], "a.bam.c4gh", "submitted")
    ]
    assert node.archive_files() == 1


def test_ingestion_can_be_asked_for_later(node: Node, data: bytes) -> None:
    response = node.complete(node.send(data), sha256(data), ingest=False)
    file = response.json()
    assert (response.status_code, file["state"], node.queue.published) == (201, "uploaded", [])
    asked = node.http.post(f"/inbox/files/{file['id']}/ingest", headers=node.alice)
    assert (asked.status_code, asked.json()["state"]) == (202, "submitted")
    node.http.post(f"/inbox/files/{file['id']}/ingest", headers=node.alice)  # again: one message
    assert len(node.queue.published) == 1


def test_a_broken_queue_leaves_a_way_to_ask_again(node: Node, data: bytes) -> None:
    node.queue.broken = True
    response = node.complete(node.send(data), sha256(data))
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "is uploaded" in detail and "POST /inbox/files/" in detail
    [file] = node.http.get("/inbox/files", headers=node.alice).json()["files"]
    node.queue.broken = False
    asked = node.http.post(f"/inbox/files/{file['id']}/ingest", headers=node.alice)
    assert asked.status_code == 202
    assert len(node.queue.published) == 1


def test_offset_mismatch_is_409_with_the_offset_to_resume_from(node: Node, data: bytes) -> None:
    upload_id = node.start()
    node.put(upload_id, 0, data[:CHUNK])
    response = node.put(upload_id, 0, data[:CHUNK])  # sent twice
    assert response.status_code == 409
    assert response.headers["Upload-Offset"] == str(CHUNK)
    assert f"resume from offset {CHUNK}" in response.json()["detail"]


def test_chunk_over_the_limit_is_413(node: Node, data: bytes) -> None:
    upload_id = node.start()
    big = data[:CHUNK] * 5
    response = node.put(upload_id, 0, big)  # announced by its Content-Length
    assert response.status_code == 413
    assert f"{LIMIT} bytes" in response.json()["detail"]
    streamed = node.http.put(  # chunked: no length announced, caught while it streams
        f"/inbox/uploads/{upload_id}",
        params={"offset": 0},
        content=iter([big[i : i + 10_000] for i in range(0, len(big), 10_000)]),
        headers=node.alice,
    )
    assert streamed.status_code == 413
    status = node.http.get(f"/inbox/uploads/{upload_id}", headers=node.alice).json()
    assert status["offset"] == 0


def test_wrong_checksum_is_422_and_the_upload_stays_open(node: Node, data: bytes) -> None:
    upload_id = node.send(data)
    response = node.complete(upload_id, "ab" * 32)
    assert response.status_code == 422
    assert sha256(data) in response.json()["detail"] and "ab" * 32 in response.json()["detail"]
    assert node.queue.published == []
    assert node.complete(upload_id, sha256(data)).status_code == 201


def test_truncated_upload_is_a_checksum_mismatch(node: Node, data: bytes) -> None:
    upload_id = node.send(data[:-1000])
    response = node.complete(upload_id, sha256(data))
    assert response.status_code == 422
    assert f"from offset {len(data) - 1000}" in response.json()["detail"]
    assert node.put(upload_id, len(data) - 1000, data[-1000:]).status_code == 200
    assert node.complete(upload_id, sha256(data)).status_code == 201


def test_wrong_recipient_is_422_with_the_node_fingerprint(node: Node) -> None:
    foreign = encrypt_for(crypt4gh.generate_keypair().public, os.urandom(1000))
    upload_id = node.start()
    response = node.put(upload_id, 0, foreign)  # the header shows it in the first chunk
    assert response.status_code == 422
    fingerprint = crypt4gh.fingerprint(node_public_key(node.settings))
    assert fingerprint in response.json()["detail"]
    status = node.http.get(f"/inbox/uploads/{upload_id}", headers=node.alice).json()
    assert status["state"] == "cancelled"
    assert fingerprint in status["error"]  # the reason stays for the submitter to read later
    assert node.archive_files() == 0
    assert node.queue.published == []


def test_same_file_twice_is_409(node: Node, data: bytes) -> None:
    first = node.complete(node.send(data), sha256(data)).json()
    again = node.send(data)
    response = node.complete(again, sha256(data))
    assert response.status_code == 409
    assert f"file {first['id']}" in response.json()["detail"]
    cancelled = node.http.delete(f"/inbox/uploads/{again}", headers=node.alice)
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["error"] is None  # cancelled by the submitter: no refusal
    assert len(node.queue.published) == 1


def test_another_submitters_upload_is_403(node: Node, data: bytes) -> None:
    upload_id = node.send(data)
    bob = auth(node.settings, "bob")
    for response in (
        node.http.get(f"/inbox/uploads/{upload_id}", headers=bob),
        node.put(upload_id, len(data), b"more", headers=bob),
        node.http.delete(f"/inbox/uploads/{upload_id}", headers=bob),
    ):
        assert response.status_code == 403
        assert "belongs to another submitter" in response.json()["detail"]
    file = node.complete(upload_id, sha256(data)).json()
    assert node.http.post(f"/inbox/files/{file['id']}/ingest", headers=bob).status_code == 403
    assert node.http.get("/inbox/files", headers=bob).json() == {"files": []}


def test_errors_are_one_line_json(node: Node) -> None:
    missing = node.http.get("/inbox/uploads/nope", headers=node.alice)
    assert missing.status_code == 404 and "no upload 'nope'" in missing.json()["detail"]
    upload_id = node.start()
    bad_sum = node.complete(upload_id, "xyz")
    assert bad_sum.status_code == 422
    assert bad_sum.json()["detail"].startswith("invalid request: body.sha256:")
    negative = node.put(upload_id, -1, b"x")
    assert negative.status_code == 422 and "query.offset" in negative.json()["detail"]
    empty = node.complete(upload_id, "0" * 64)
    assert empty.status_code == 409 and "holds no bytes" in empty.json()["detail"]
    blank = node.http.post("/inbox/uploads", json={"filename": " "}, headers=node.alice)
    assert blank.status_code == 400
    no_file = node.http.post("/inbox/files/nope/ingest", headers=node.alice)
    assert no_file.status_code == 404


def test_the_node_refuses_to_start_on_an_old_schema(tmp_path: Path) -> None:
    settings = make_node(tmp_path / "node")
    Path(settings.database_url.removeprefix("sqlite:///")).unlink()
    with (
        pytest.raises(db.SchemaOutOfDate, match="genofed db upgrade"),
        TestClient(create_app(settings, queue=FakeQueue())),
    ):
        pass


def test_the_ingestion_request_reaches_the_nodes_own_queue(tmp_path: Path) -> None:
    """Without an injected queue the app opens the one the settings name: the database queue."""
    settings = make_node(tmp_path / "node")
    data = encrypt_for(node_public_key(settings), os.urandom(1000))
    alice = auth(settings)
    with TestClient(create_app(settings)) as http:
        created = http.post("/inbox/uploads", json={"filename": "a.c4gh"}, headers=alice)
        upload_id = created.json()["id"]
        http.put(f"/inbox/uploads/{upload_id}", params={"offset": 0}, content=data, headers=alice)
        done = http.post(
            f"/inbox/uploads/{upload_id}/complete", json={"sha256": sha256(data)}, headers=alice
        )
        assert done.status_code == 201, done.text
        again = http.post(f"/inbox/files/{done.json()['id']}/ingest", headers=alice)
        assert again.status_code == 202
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            [job] = session.scalars(select(db.Job)).all()
            assert (job.queue, job.dedup_key) == ("ingest", f"ingest:{done.json()['id']}")
            assert job.payload["filepath"] == f"uploads/{upload_id}"
            assert job.payload["encrypted_checksums"] == [{"type": "sha256", "value": sha256(data)}]
    finally:
        engine.dispose()


def test_the_chunk_limit_comes_from_the_settings(tmp_path: Path) -> None:
    settings = make_node(tmp_path / "node").model_copy(update={"inbox_max_chunk_mib": 1})
    with TestClient(create_app(settings, queue=FakeQueue())) as http:
        alice = auth(settings)
        upload_id = http.post("/inbox/uploads", json={"filename": "x.c4gh"}, headers=alice).json()[
            "id"
        ]
        too_big = http.put(
            f"/inbox/uploads/{upload_id}",
            params={"offset": 0},
            content=b"x" * (1024 * 1024 + 1),
            headers=alice,
        )
    assert too_big.status_code == 413
    assert f"{1024 * 1024} bytes" in too_big.json()["detail"]
