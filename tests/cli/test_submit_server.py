"""``genofed submit`` against a real uvicorn server: interrupted mid-chunk, then resumed."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))

from inbox_support import FakeQueue, decrypt_with, encrypt_for, make_node, token

from genofed import crypt4gh, db
from genofed.archive import inbox
from genofed.cli.main import app as cli
from genofed.db import ArchiveFile
from genofed.node.app import create_app
from genofed.node.client import NodeClient
from genofed.node.directory import node_secret_key
from genofed.node.server import serving
from genofed.storage import open_store

MiB = 1024 * 1024


def ctrl_c_in_third_chunk(real_put: object) -> object:
    """``NodeClient.put_chunk`` as it behaves when the user presses Ctrl-C during chunk 3."""
    calls = []

    def put_chunk(
        self: NodeClient, upload_id: str, offset: int, body: Iterable[bytes], size: int
    ) -> int:
        calls.append(offset)

        def cut(pieces: Iterable[bytes]) -> Iterator[bytes]:
            sent = 0
            for piece in pieces:
                if len(calls) == 3 and sent + len(piece) >= size // 2:
                    yield piece[: size // 2 - sent]  # half the chunk is on the wire
                    raise KeyboardInterrupt
                yield piece
                sent += len(piece)

        return real_put(self, upload_id, offset, cut(body), size)  # type: ignore[operator,no-any-return]

    return put_chunk


def test_cli_resumes_an_interrupted_upload_on_a_real_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_node(tmp_path / "node")
    queue = FakeQueue()
    states = tmp_path / "states"
    monkeypatch.setenv("GENOFED_STATE_DIR", str(states))
    monkeypatch.setenv("GENOFED_TOKEN", token(settings))
    plain = tmp_path / "cohort.vcf"
    plain.write_bytes(os.urandom(3 * MiB + 12345))
    sealed = tmp_path / "reads.bam.c4gh"
    public = crypt4gh.load_public_key(settings.crypt4gh.public_key)
    sealed.write_bytes(encrypt_for(public, os.urandom(MiB // 2)))
    command = ["submit", "upload", str(plain), str(sealed), "--chunk-mib", "1"]

    with serving(create_app(settings, queue=queue)) as url:
        with monkeypatch.context() as patch:
            patch.setattr(NodeClient, "put_chunk", ctrl_c_in_third_chunk(NodeClient.put_chunk))
            stopped = CliRunner().invoke(cli, [*command, "--node", url])
        assert stopped.exit_code == 130, stopped.output
        assert "run the same command again to resume" in stopped.output
        [state_file] = states.glob("*.json")
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        upload_id = json.loads(state_file.read_text())["upload_id"]
        client = NodeClient.connect(url, token(settings))
        status = client.upload_status(upload_id)
        assert status is not None and status.offset == 2 * MiB  # not the half chunk

        resumed = CliRunner().invoke(cli, [*command, "--node", url])
        assert resumed.exit_code == 0, resumed.output
        assert f"resuming at byte {2 * MiB}" in resumed.stderr
        lines = [line.split("\t") for line in resumed.stdout.strip().splitlines()]
        assert [path for _, path in lines] == [str(plain), str(sealed)]

        listed = CliRunner().invoke(cli, ["submit", "status", "--node", url])
        assert listed.exit_code == 0, listed.output
        assert "cohort.vcf.c4gh\tsubmitted" in listed.stdout
        assert "reads.bam.c4gh\tsubmitted" in listed.stdout
        client.close()

    assert list(states.glob("*")) == []
    assert len(queue.published) == 2
    secret = node_secret_key(settings)
    stored = _stored_files(settings)
    assert len(stored) == 2  # one archive file per submitted file, despite the interruption
    assert decrypt_with(secret, stored["cohort.vcf.c4gh"]) == plain.read_bytes()
    assert stored["reads.bam.c4gh"] == sealed.read_bytes()
    _assert_no_stray_objects(settings.inbox.path)


def _stored_files(settings) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    engine = db.make_engine(settings.database_url)
    store = open_store(settings.inbox)
    try:
        with db.session_scope(engine) as session:
            found = {}
            for view in inbox.list_files(session, "alice"):
                file = session.get(ArchiveFile, view.id)
                assert file is not None and view.filename is not None
                upload_id = inbox.upload_id_of(file.inbox_path)
                with inbox.open_upload(store, session, upload_id) as stream:
                    found[view.filename] = stream.read()
            return found
    finally:
        engine.dispose()


def _assert_no_stray_objects(root: Path) -> None:
    """The half chunk of the interrupted request left no temp file once the server noticed."""
    temp = root / ".genofed-tmp"
    deadline = time.monotonic() + 5
    while temp.exists() and any(temp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not temp.exists() or not any(temp.iterdir())
