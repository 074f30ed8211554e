"""Data out over HTTP: listing, downloads re-encrypted for the requester, ranges, HEAD, audit."""

from __future__ import annotations

import base64
import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dataout_support import archive_file, auth, grant, make_node, release_dataset
from fastapi.testclient import TestClient

from genofed import crypt4gh, db
from genofed.access import audit
from genofed.config import Settings
from genofed.node.app import create_app

PLAIN = os.urandom(3 * crypt4gh.SEGMENT_SIZE + 12345)
READER = "bob@ulb.be"


@dataclass
class World:
    settings: Settings
    client: TestClient
    dataset: str
    other_dataset: str
    file: str
    other_file: str
    reader: crypt4gh.KeyPair

    def key_header(self) -> dict[str, str]:
        return {"X-C4GH-Public-Key": base64.b64encode(self.reader.public).decode()}

    def as_reader(self, **extra: str) -> dict[str, str]:
        return {**auth(self.settings, READER), **self.key_header(), **extra}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = make_node(tmp_path / "node")
    engine = db.make_engine(settings.database_url)
    with db.session_scope(engine) as session:
        file = archive_file(session, settings, PLAIN)
        other = archive_file(session, settings, b"other data")
        dataset = release_dataset(session, settings, [file], "Epilepsy WGS")
        other_dataset = release_dataset(session, settings, [other], "Other")
        grant(session, READER, dataset)
        names = (str(file.accession), str(other.accession))
    engine.dispose()
    with TestClient(create_app(settings)) as client:
        yield World(settings, client, dataset, other_dataset, *names, crypt4gh.generate_keypair())


def _decrypt(secret: bytes, data: bytes) -> bytes:
    out = io.BytesIO()
    crypt4gh.decrypt(io.BytesIO(data), out, secret)
    return out.getvalue()


def test_a_granted_user_lists_datasets_and_files(world: World) -> None:
    listed = world.client.get("/data/datasets", headers=auth(world.settings, READER))
    assert listed.status_code == 200
    assert [d["accession"] for d in listed.json()["datasets"]] == [world.dataset]
    files = world.client.get(
        f"/data/datasets/{world.dataset}/files", headers=auth(world.settings, READER)
    )
    assert files.status_code == 200
    [described] = files.json()["files"]
    assert described["id"] == world.file
    assert described["size"] == len(PLAIN)


def test_the_download_is_crypt4gh_for_the_requester_only(world: World) -> None:
    response = world.client.get(f"/data/files/{world.file}", headers=world.as_reader())
    assert response.status_code == 200
    assert response.headers["accept-ranges"] == "bytes"
    assert int(response.headers["content-length"]) == len(response.content)
    assert _decrypt(world.reader.secret, response.content) == PLAIN
    stranger = crypt4gh.generate_keypair()
    with pytest.raises(crypt4gh.NoPacketForKey):
        _decrypt(stranger.secret, response.content)
    node_key = crypt4gh.load_public_key(world.settings.crypt4gh.public_key)
    assert node_key not in response.content  # not the node's header, sealed anew


def test_the_reference_tool_decrypts_the_download(world: World) -> None:
    from crypt4gh.lib import decrypt as reference_decrypt

    response = world.client.get(f"/data/files/{world.file}", headers=world.as_reader())
    out = io.BytesIO()
    reference_decrypt([(0, world.reader.secret, None)], io.BytesIO(response.content), out)
    assert out.getvalue() == PLAIN


def test_ranges_from_separate_requests_assemble_the_same_file(world: World) -> None:
    whole = world.client.get(f"/data/files/{world.file}", headers=world.as_reader()).content
    etag = world.client.head(f"/data/files/{world.file}", headers=world.as_reader()).headers["etag"]
    cuts = [0, 50, len(whole) // 3, len(whole) - 7, len(whole)]  # one cut inside the header
    pieces = []
    for start, end in itertools.pairwise(cuts):
        part = world.client.get(
            f"/data/files/{world.file}",
            headers=world.as_reader(Range=f"bytes={start}-{end - 1}"),
        )
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{len(whole)}"
        assert part.headers["etag"] == etag
        pieces.append(part.content)
    assert b"".join(pieces) == whole
    tail = world.client.get(f"/data/files/{world.file}", headers=world.as_reader(Range="bytes=-10"))
    assert tail.status_code == 206 and tail.content == whole[-10:]


def test_if_range_with_a_stale_etag_sends_the_whole_file(world: World) -> None:
    response = world.client.get(
        f"/data/files/{world.file}",
        headers=world.as_reader(Range="bytes=10-20", **{"If-Range": '"stale"'}),
    )
    assert response.status_code == 200
    assert _decrypt(world.reader.secret, response.content) == PLAIN


@pytest.mark.parametrize("wanted", ["bytes=999999999-", "bytes=5-2", "bytes=0-1,5-9", "pages=1"])
def test_bad_ranges_are_416_and_say_the_size(world: World, wanted: str) -> None:
    response = world.client.get(f"/data/files/{world.file}", headers=world.as_reader(Range=wanted))
    assert response.status_code == 416
    size = world.client.head(f"/data/files/{world.file}", headers=world.as_reader()).headers[
        "content-length"
    ]
    assert response.headers["content-range"] == f"bytes */{size}"


def test_head_gives_the_headers_without_a_byte(world: World) -> None:
    head = world.client.head(f"/data/files/{world.file}", headers=world.as_reader())
    assert head.status_code == 200
    assert head.content == b""
    get = world.client.get(f"/data/files/{world.file}", headers=world.as_reader())
    assert int(head.headers["content-length"]) == len(get.content)
    assert head.headers["etag"] == get.headers["etag"]


def test_a_missing_or_bad_recipient_key_is_400_naming_the_header(world: World) -> None:
    plain_auth = auth(world.settings, READER)
    missing = world.client.get(f"/data/files/{world.file}", headers=plain_auth)
    assert missing.status_code == 400
    assert "X-C4GH-Public-Key" in missing.json()["detail"]
    bad = world.client.get(
        f"/data/files/{world.file}", headers={**plain_auth, "X-C4GH-Public-Key": "bm90IGEga2V5"}
    )
    assert bad.status_code == 400


def test_unknown_files_are_404(world: World) -> None:
    response = world.client.get("/data/files/GFBEF00000000000", headers=world.as_reader())
    assert response.status_code == 404


def test_every_access_is_in_the_audit_log(world: World) -> None:
    world.client.get("/data/datasets", headers=auth(world.settings, READER))
    world.client.get(f"/data/files/{world.file}", headers=world.as_reader(Range="bytes=0-9"))
    world.client.get(f"/data/files/{world.other_file}", headers=world.as_reader())
    engine = db.make_engine(world.settings.database_url)
    try:
        with db.session_scope(engine) as session:
            entries = audit.query(session, actor=READER)
            report = audit.verify(session)
    finally:
        engine.dispose()
    seen = {(e.action, e.outcome, e.file) for e in entries}
    assert ("data.list", "allowed", None) in seen
    assert ("data.download", "allowed", world.file) in seen
    assert ("data.download", "denied", world.other_file) in seen
    download = next(e for e in entries if e.action == "data.download" and e.outcome == "allowed")
    assert download.dataset == world.dataset
    assert download.detail["range"] == "bytes=0-9"
    assert report.ok
