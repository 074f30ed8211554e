"""The submit client and CLI against the node app: on-the-fly encryption, resuming, state files."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))

from inbox_support import (
    FakeQueue,
    count_archive_files,
    decrypt_with,
    encrypt_for,
    make_node,
    sha256,
    token,
)

from genofed import crypt4gh, db
from genofed.archive import inbox
from genofed.cli.main import app as cli
from genofed.config import Settings
from genofed.crypt4gh.segments import SEGMENT_SIZE, encrypt_segments_counter
from genofed.db import ArchiveFile
from genofed.node.client import FileUpload, NodeClient, NodeError, ResumeState, Uploaded
from genofed.node.directory import node_secret_key
from genofed.storage import open_store

CHUNK = 100_000
URL = "http://testserver"
# The client gives completion a long read timeout; the test client ignores timeouts, and says so.
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


@dataclass
class Node:
    settings: Settings
    http: TestClient
    queue: FakeQueue
    states: Path
    tmp: Path

    @property
    def token(self) -> str:
        return token(self.settings)

    def client(self) -> NodeClient:
        return NodeClient(self.http, self.token)

    def upload(self, path: Path, client: NodeClient | None = None, **options: object) -> Uploaded:
        return self.job(path, client, **options).run()

    def job(self, path: Path, client: NodeClient | None = None, **options: object) -> FileUpload:
        client = client or self.client()
        settings: dict[str, object] = {"states": self.states, "chunk_bytes": CHUNK, **options}
        return FileUpload(client, URL, path, client.public_key(), **settings)  # type: ignore[arg-type]

    def stored(self, upload: Uploaded) -> bytes:
        """The bytes the node holds for an uploaded file, read the way the ingest stage will."""
        engine = db.make_engine(self.settings.database_url)
        try:
            with db.session_scope(engine) as session:
                file = session.get(ArchiveFile, upload.record["id"])
                assert file is not None
                upload_id = inbox.upload_id_of(file.inbox_path)
                with inbox.open_upload(open_store(self.settings.inbox), session, upload_id) as f:
                    return f.read()
        finally:
            engine.dispose()

    def archive_files(self) -> int:
        return count_archive_files(self.settings)

    def state_files(self) -> list[Path]:
        return sorted(self.states.glob("*.json")) if self.states.exists() else []


class Interrupted(Exception):
    """The connection died (the test client cannot lose a real one)."""


class StopsAfter(NodeClient):
    """A client whose connection dies in the middle of the chunk after ``chunks`` whole ones."""

    def __init__(self, node: Node, chunks: int) -> None:
        super().__init__(node.http, node.token)
        self.left = chunks

    def put_chunk(self, upload_id: str, offset: int, body: Iterable[bytes], size: int) -> int:
        if self.left == 0:
            return super().put_chunk(upload_id, offset, _dies_halfway(body, size), size)
        self.left -= 1
        return super().put_chunk(upload_id, offset, body, size)


def _dies_halfway(body: Iterable[bytes], size: int) -> Iterator[bytes]:
    sent = 0
    for piece in body:
        yield piece[: size // 2 - sent]
        sent += len(piece)
        if sent >= size // 2:
            raise Interrupted


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    settings = make_node(tmp_path / "node")
    queue = FakeQueue()
    states = tmp_path / "states"
    monkeypatch.setenv("GENOFED_STATE_DIR", str(states))
    with TestClient(create_app_for(settings, queue)) as http:
        yield Node(settings, http, queue, states, tmp_path)


def create_app_for(settings: Settings, queue: FakeQueue):  # type: ignore[no-untyped-def]
    from genofed.node.app import create_app

    return create_app(settings, queue=queue)


def plaintext(node: Node, name: str = "sample.vcf", size: int = 5 * SEGMENT_SIZE + 1234) -> Path:
    path = node.tmp / name
    path.write_bytes(os.urandom(size))
    return path


def test_on_the_fly_encryption_decrypts_to_the_original(node: Node) -> None:
    path = plaintext(node)
    modes: list[int] = []
    job = node.job(
        path, progress=lambda done: modes.extend(_modes(node)) if done == CHUNK else None
    )
    assert job.state.upload_id and job.encrypt
    done = job.run()

    stored = node.stored(done)
    assert decrypt_with(node_secret_key(node.settings), stored) == path.read_bytes()
    assert done.sha256 == sha256(stored) == done.record["upload_sha256"]
    assert done.record["filename"] == "sample.vcf.c4gh"
    assert done.record["state"] == "submitted"
    assert modes and set(modes) == {0o600}  # the state file existed while sending, owner-only
    assert node.state_files() == []  # and went once the upload completed


def _modes(node: Node) -> list[int]:
    return [stat.S_IMODE(path.stat().st_mode) for path in node.state_files()]


def test_interrupted_upload_resumes_to_identical_bytes_and_one_file(node: Node) -> None:
    path = plaintext(node, size=12 * SEGMENT_SIZE + 99)
    with pytest.raises(Interrupted):
        node.upload(path, StopsAfter(node, chunks=2))
    [state_file] = node.state_files()
    state = json.loads(state_file.read_text())
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    status = node.client().upload_status(state["upload_id"])
    assert status is not None and status.offset == 2 * CHUNK  # the half chunk was not kept

    resumed = node.job(path)
    assert resumed.status.offset == 2 * CHUNK
    done = resumed.run()
    assert done.resumed_from == 2 * CHUNK

    # what a single run with the saved key produces, byte for byte
    header = base64.b64decode(state["header"])
    key = base64.b64decode(state["session_key"])
    expected = header + b"".join(encrypt_segments_counter(io.BytesIO(path.read_bytes()), key))
    stored = node.stored(done)
    assert stored == expected
    assert done.sha256 == sha256(expected)
    assert decrypt_with(node_secret_key(node.settings), stored) == path.read_bytes()
    assert node.archive_files() == 1
    assert len(node.queue.published) == 1
    assert node.state_files() == []


def test_resume_at_every_kind_of_offset(node: Node) -> None:
    """Inside the header, on a segment boundary, inside a segment: the ciphertext continues."""
    path = plaintext(node, size=3 * SEGMENT_SIZE + 10)
    job = node.job(path)
    source, size = job.source, job.size
    whole = b"".join(source.read_from(0))
    assert len(whole) == size
    header_size = size - (3 * (SEGMENT_SIZE + 28) + 10 + 28)
    for offset in (0, 5, header_size, header_size + SEGMENT_SIZE + 28, size - 1, size):
        assert b"".join(source.read_from(offset)) == whole[offset:], offset


def test_a_file_changed_since_the_interruption_starts_afresh(node: Node) -> None:
    path = plaintext(node, size=8 * SEGMENT_SIZE)
    with pytest.raises(Interrupted):
        node.upload(path, StopsAfter(node, chunks=1))
    old = json.loads(node.state_files()[0].read_text())
    path.write_bytes(os.urandom(8 * SEGMENT_SIZE + 5))

    done = node.upload(path)
    assert done.resumed_from == 0
    assert decrypt_with(node_secret_key(node.settings), node.stored(done)) == path.read_bytes()
    old_status = node.client().upload_status(old["upload_id"])
    assert old_status is not None and old_status.state == "cancelled"


def test_c4gh_files_are_sent_as_they_are(node: Node) -> None:
    path = node.tmp / "reads.bam.c4gh"
    public = crypt4gh.load_public_key(node.settings.crypt4gh.public_key)
    path.write_bytes(encrypt_for(public, os.urandom(300_000)))
    done = node.upload(path)
    assert node.stored(done) == path.read_bytes()
    assert done.record["filename"] == "reads.bam.c4gh"


def test_sending_the_same_c4gh_again_is_refused_and_cleaned_up(node: Node) -> None:
    path = node.tmp / "reads.bam.c4gh"
    public = crypt4gh.load_public_key(node.settings.crypt4gh.public_key)
    path.write_bytes(encrypt_for(public, os.urandom(50_000)))
    first = node.upload(path)
    second = node.job(path)
    with pytest.raises(NodeError, match=f"file {first.record['id']}") as error:
        second.run()
    assert error.value.status == 409
    assert "this client cancelled the upload" in str(error.value)
    status = node.client().upload_status(second.state.upload_id)
    assert status is not None and status.state == "cancelled"
    assert node.state_files() == []
    assert node.archive_files() == 1


def test_c4gh_for_another_key_ends_its_upload(node: Node) -> None:
    path = node.tmp / "wrong.c4gh"
    path.write_bytes(encrypt_for(crypt4gh.generate_keypair().public, b"x" * 300_000))
    with pytest.raises(NodeError, match="encrypted for another key") as error:
        node.upload(path)
    assert error.value.status == 422
    assert node.state_files() == []
    assert node.archive_files() == 0


def test_a_c4gh_name_on_a_plain_file_is_caught_before_sending(node: Node) -> None:
    path = node.tmp / "oops.c4gh"
    path.write_bytes(b"not encrypted")
    with pytest.raises(Exception, match="not a Crypt4GH file"):
        node.job(path)
    assert node.state_files() == []


def test_a_completed_upload_whose_state_stayed_is_reported(node: Node) -> None:
    path = plaintext(node)
    job = node.job(path)
    saved = job.state_path.read_text()
    first = job.run()
    job.state_path.write_text(saved)  # as if the client died right after completing
    again = node.upload(path)
    assert again.record["id"] == first.record["id"]
    assert node.archive_files() == 1
    assert node.state_files() == []


def test_a_state_file_is_tied_to_its_file_and_node(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    a = ResumeState.location(tmp_path, "https://a", path)
    assert a != ResumeState.location(tmp_path, "https://b", path)
    assert a != ResumeState.location(tmp_path, "https://a", tmp_path / "g")
    a.write_text("{damaged")
    assert ResumeState.load(a) is None


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_node(node: Node, monkeypatch: pytest.MonkeyPatch) -> Node:
    """``genofed submit`` talking to the test client instead of the network."""
    monkeypatch.setattr(
        NodeClient, "connect", classmethod(lambda cls, url, tok: cls(node.http, tok))
    )
    monkeypatch.setattr(NodeClient, "close", lambda self: None)
    monkeypatch.setenv("GENOFED_TOKEN", node.token)
    return node


def test_cli_uploads_and_lists(cli_node: Node) -> None:
    node = cli_node
    path = plaintext(node, size=2 * 1024 * 1024 + 77)
    fingerprint = crypt4gh.fingerprint(crypt4gh.load_public_key(node.settings.crypt4gh.public_key))
    result = CliRunner().invoke(
        cli,
        [
            "submit",
            "upload",
            str(path),
            "--node",
            URL,
            "--chunk-mib",
            "1",
            "--fingerprint",
            fingerprint,
        ],
    )
    assert result.exit_code == 0, result.output
    file_id, shown_path = result.stdout.strip().split("\t")
    assert shown_path == str(path)
    assert f"node key fingerprint {fingerprint}" in result.stderr
    assert "submitted" in result.stderr

    listed = CliRunner().invoke(cli, ["submit", "status", "--node", URL])
    assert listed.exit_code == 0, listed.output
    assert file_id in listed.stdout and "sample.vcf.c4gh" in listed.stdout
    assert "submitted" in listed.stdout


def test_cli_refuses_a_node_with_another_fingerprint(cli_node: Node) -> None:
    path = plaintext(cli_node)
    result = CliRunner().invoke(
        cli, ["submit", "upload", str(path), "--node", URL, "--fingerprint", "00:11"]
    )
    assert result.exit_code == 1
    assert "not 00:11" in result.output
    assert cli_node.state_files() == []


def test_cli_needs_a_token(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENOFED_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["submit", "status", "--node", URL])
    assert result.exit_code == 1
    assert f"no token for {URL}: run 'genofed login --node {URL}'" in result.output
    assert "set GENOFED_TOKEN" in result.output


def test_cli_reports_a_refused_token_once(cli_node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENOFED_TOKEN", "garbage")
    paths = [plaintext(cli_node, "a.vcf"), plaintext(cli_node, "b.vcf")]
    result = CliRunner().invoke(cli, ["submit", "upload", *map(str, paths), "--node", URL])
    assert result.exit_code == 1
    assert result.output.count("401") == 1  # the second file is not tried with a bad token
    assert "garbage" not in result.output
