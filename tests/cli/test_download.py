"""``genofed download`` against a real uvicorn server: verify, resume, restart, refuse, detect.

One node serves the whole module (starting it is the slow part); every test downloads into a
folder of its own. Which ranges the client asked for is read from the node's audit log, which
records every download request with its ``Range`` header.
"""

from __future__ import annotations

import base64
import io
import os
import socket
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dataout"))

from dataout_support import archive_file, grant, make_node, release_dataset

from genofed import crypt4gh, db
from genofed.access import audit
from genofed.access.tokens import issue_token
from genofed.cli import download as download_module
from genofed.cli.download import download
from genofed.config import Settings
from genofed.node.app import create_app
from genofed.node.server import serving

READER = "bob@ulb.be"
STRANGER = "eve@example.org"
PASSPHRASE = "correct horse"
BIG = os.urandom(5 * crypt4gh.SEGMENT_SIZE + 4321)
SMALL = b"chr1\t12345\t.\tA\tG\n" * 100

cli = typer.Typer(pretty_exceptions_enable=False)
cli.command()(download)


@dataclass(frozen=True)
class World:
    settings: Settings
    url: str
    dataset: str
    big: str
    small: str
    key: Path
    public: bytes

    def token(self, user: str = READER) -> str:
        return issue_token(self.settings, user, ["requester"])

    def run(
        self, out: Path, *args: str, user: str = READER, passphrase: str = PASSPHRASE
    ) -> Result:
        command = [self.dataset, "--out", str(out), "--key", str(self.key), "--node", self.url]
        env = {"GENOFED_TOKEN": self.token(user), "C4GH_PASSPHRASE": passphrase}
        return CliRunner().invoke(cli, [*command, *args], env=env)

    def sealed(self, file_id: str, public: bytes | None = None) -> tuple[bytes, str]:
        """The file as the node sends it for ``public`` (default: the reader's), and its ETag."""
        headers = {
            "Authorization": f"Bearer {self.token()}",
            "X-C4GH-Public-Key": base64.b64encode(public or self.public).decode(),
        }
        response = httpx.get(f"{self.url}/data/files/{file_id}", headers=headers)
        response.raise_for_status()
        return response.content, response.headers["etag"]

    def ranges_since(self, seq: int, file_id: str) -> list[str | None]:
        """The Range headers of the reader's download requests for ``file_id`` after ``seq``."""
        found = [e for e in self._downloads() if e.seq > seq and e.file == file_id]
        return [entry.detail["range"] for entry in reversed(found)]

    def last_seq(self) -> int:
        return max((entry.seq for entry in self._downloads()), default=0)

    def _downloads(self) -> list[db.AuditEntry]:
        engine = db.make_engine(self.settings.database_url)
        try:
            with db.session_scope(engine) as session:
                entries = audit.query(session, actor=READER, action="data.download", limit=10_000)
                session.expunge_all()
                return entries
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("download")
    settings = make_node(folder / "node")
    engine = db.make_engine(settings.database_url)
    with db.session_scope(engine) as session:
        big, small = archive_file(session, settings, BIG), archive_file(session, settings, SMALL)
        dataset = release_dataset(session, settings, [big, small], "Epilepsy WGS")
        grant(session, READER, dataset)
        names = (str(big.accession), str(small.accession))
    engine.dispose()
    key, public = folder / "bob.sec", folder / "bob.pub"
    pair = crypt4gh.write_keypair(key, public, PASSPHRASE)
    with serving(create_app(settings)) as url:
        yield World(settings, url, dataset, *names, key, pair.public)


@pytest.fixture(autouse=True)
def _no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_module, "RETRY_PAUSE", 0.0)


def _plain(world: World) -> dict[str, bytes]:
    return {world.big: BIG, world.small: SMALL}


def test_the_whole_dataset_is_downloaded_decrypted_and_verified(
    world: World, tmp_path: Path
) -> None:
    result = world.run(tmp_path)
    assert result.exit_code == 0, result.output
    for file_id, plain in _plain(world).items():
        assert (tmp_path / file_id).read_bytes() == plain
        assert stat.S_IMODE((tmp_path / file_id).stat().st_mode) == 0o600
        assert f"{file_id}: {len(plain)} bytes, sha256 verified" in result.stdout
    assert "2 of 2 files verified" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(_plain(world))  # nothing else


def test_a_rerun_skips_verified_files_without_asking_the_node(world: World, tmp_path: Path) -> None:
    assert world.run(tmp_path).exit_code == 0
    seq = world.last_seq()
    again = world.run(tmp_path)
    assert again.exit_code == 0, again.output
    assert f"{world.big}: {len(BIG)} bytes, sha256 verified (already downloaded)" in again.stdout
    assert world.ranges_since(seq, world.big) == []
    (tmp_path / world.small).write_bytes(b"edited")
    edited = world.run(tmp_path)
    assert edited.exit_code == 1
    assert "exists but is not the node's file" in edited.output


def test_files_selects_and_keep_encrypted_keeps_the_download(world: World, tmp_path: Path) -> None:
    result = world.run(tmp_path, "--files", world.small, "--keep-encrypted")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [world.small, f"{world.small}.c4gh"]
    out = io.BytesIO()
    secret = crypt4gh.load_private_key(world.key, PASSPHRASE)
    crypt4gh.decrypt(io.BytesIO((tmp_path / f"{world.small}.c4gh").read_bytes()), out, secret)
    assert out.getvalue() == SMALL


def test_unknown_file_names_are_refused_listing_what_exists(world: World, tmp_path: Path) -> None:
    result = world.run(tmp_path / "out", "--files", f"{world.small},GFBEF99999999999")
    assert result.exit_code == 1
    assert "holds no file GFBEF99999999999" in result.output
    assert world.big in result.output and world.small in result.output
    assert not (tmp_path / "out").exists()


def cut_first_transfer(monkeypatch: pytest.MonkeyPatch, at: int, error: BaseException) -> None:
    """The first file transfer breaks off with ``error`` after ``at`` bytes reached the client."""
    real = httpx.Response.iter_raw
    transfers: list[str] = []

    def iter_raw(self: httpx.Response, chunk_size: int | None = None) -> Iterator[bytes]:
        if self.request.url.path.startswith("/data/files/"):  # not the listing
            transfers.append(self.request.url.path)
        sent = 0
        for chunk in real(self, chunk_size):
            if len(transfers) == 1 and sent + len(chunk) > at:
                yield chunk[: at - sent]
                raise error
            sent += len(chunk)
            yield chunk

    monkeypatch.setattr(download_module, "READ_SIZE", 65536)
    monkeypatch.setattr(httpx.Response, "iter_raw", iter_raw)


def test_a_cut_connection_is_resumed_with_a_range_and_ends_byte_exact(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut_first_transfer(monkeypatch, 2 * 65536, httpx.ReadError("connection reset by peer"))
    seq = world.last_seq()
    result = world.run(tmp_path, "--files", world.big)
    assert result.exit_code == 0, result.output
    assert "(ReadError: connection reset by peer); trying again" in result.output
    assert f"resuming at byte {2 * 65536}" in result.output
    assert world.ranges_since(seq, world.big) == [None, f"bytes={2 * 65536}-"]
    assert (tmp_path / world.big).read_bytes() == BIG


def test_an_interrupted_run_leaves_a_part_that_the_next_run_resumes(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        cut_first_transfer(patch, 3 * 65536, KeyboardInterrupt())
        stopped = world.run(tmp_path, "--files", world.big)
    assert stopped.exit_code == 130
    assert "run the same command again to resume" in stopped.output
    assert (tmp_path / f"{world.big}.c4gh.part").stat().st_size == 3 * 65536
    assert not (tmp_path / world.big).exists()
    seq = world.last_seq()
    resumed = world.run(tmp_path, "--files", world.big)
    assert resumed.exit_code == 0, resumed.output
    assert world.ranges_since(seq, world.big) == [f"bytes={3 * 65536}-"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [world.big]
    assert (tmp_path / world.big).read_bytes() == BIG


def test_a_partial_download_left_by_an_earlier_run_is_resumed(world: World, tmp_path: Path) -> None:
    sealed, etag = world.sealed(world.big)
    (tmp_path / f"{world.big}.c4gh.part").write_bytes(sealed[:100_000])
    (tmp_path / f"{world.big}.c4gh.part.etag").write_text(etag)
    seq = world.last_seq()
    result = world.run(tmp_path, "--files", world.big)
    assert result.exit_code == 0, result.output
    assert world.ranges_since(seq, world.big) == ["bytes=100000-"]
    assert (tmp_path / world.big).read_bytes() == BIG


def test_a_stale_etag_starts_the_download_over(world: World, tmp_path: Path) -> None:
    (tmp_path / f"{world.big}.c4gh.part").write_bytes(os.urandom(100_000))
    (tmp_path / f"{world.big}.c4gh.part.etag").write_text('"stale"')
    result = world.run(tmp_path, "--files", world.big)
    assert result.exit_code == 0, result.output
    assert "changed on the node since the partial download; starting over" in result.output
    assert (tmp_path / world.big).read_bytes() == BIG


def test_a_wrong_passphrase_stops_before_any_download(world: World, tmp_path: Path) -> None:
    seq = world.last_seq()
    result = world.run(tmp_path / "out", passphrase="wrong")
    assert result.exit_code == 1
    assert "the passphrase does not unlock" in result.output
    assert not (tmp_path / "out").exists()
    assert world.ranges_since(seq, world.big) == []


def test_a_download_sealed_for_another_key_fails_and_leaves_no_plaintext(
    world: World, tmp_path: Path
) -> None:
    sealed, _ = world.sealed(world.small, crypt4gh.generate_keypair().public)
    (tmp_path / f"{world.small}.c4gh").write_bytes(sealed)
    result = world.run(tmp_path, "--files", world.small)
    assert result.exit_code == 1
    assert "is not sealed for the key given with --key" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{world.small}.c4gh"]  # kept


def test_a_user_without_a_grant_gets_the_nodes_refusal(world: World, tmp_path: Path) -> None:
    result = world.run(tmp_path / "out", user=STRANGER)
    assert result.exit_code == 1
    assert "the node answered 403" in result.output
    assert f"you hold no valid visa for dataset {world.dataset}" in result.output
    assert not (tmp_path / "out").exists()


def test_a_tampered_download_fails_authentication_and_is_fetched_again(
    world: World, tmp_path: Path
) -> None:
    sealed = bytearray(world.sealed(world.big)[0])
    sealed[len(sealed) // 2] ^= 0x01  # in the body, after a few segments were decrypted
    (tmp_path / f"{world.big}.c4gh").write_bytes(sealed)
    result = world.run(tmp_path, "--files", world.big)
    assert result.exit_code == 1
    assert "fails authentication" in result.output
    assert "corrupted or was tampered with" in result.output
    assert list(tmp_path.iterdir()) == []  # no plaintext, no temporary file, no bad download
    again = world.run(tmp_path, "--files", world.big)
    assert again.exit_code == 0, again.output
    assert (tmp_path / world.big).read_bytes() == BIG


def test_plaintext_that_differs_from_the_listing_is_deleted(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = download_module.DataClient.files

    def wrong_checksum(self: download_module.DataClient, dataset: str) -> list[object]:
        files = real(self, dataset)
        return [
            download_module.Listed(f.id, f.size, "0" * 64, f.md5) if f.id == world.small else f
            for f in files
        ]

    monkeypatch.setattr(download_module.DataClient, "files", wrong_checksum)
    result = world.run(tmp_path)
    assert result.exit_code == 1
    assert f"error: {world.small}: the decrypted file differs from the node's listing" in (
        result.output
    )
    assert "sha256" in result.output
    assert "1 of 2 files verified" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [world.big]


def test_an_unreachable_node_is_retried_then_reported(world: World, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        result = CliRunner().invoke(
            cli,
            [world.dataset, "--out", str(tmp_path), "--key", str(world.key)],
            env={
                "GENOFED_NODE": f"http://127.0.0.1:{closed.getsockname()[1]}",
                "GENOFED_TOKEN": world.token(),
                "C4GH_PASSPHRASE": PASSPHRASE,
            },
        )
    finally:
        closed.close()
    assert result.exit_code == 1
    assert result.output.count("trying again") == download_module.ATTEMPTS - 1
    assert f"gave up after {download_module.ATTEMPTS} attempts" in result.output
