"""``genofed demo``: a national node's archive, end to end, on a fresh node.

A node starts (its API on a loopback port, the pipeline in-process); a submitter uploads a
synthetic VCF with ``genofed submit upload`` (encrypted for the node on the way); the pipeline
ingests, verifies, accessions and backs it up; a researcher then receives the file re-encrypted
for their own key (only the header is rewritten) and a byte range of it, each checked against the
original. The federation (hub, several nodes, access requests) comes with later work.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from genofed import crypt4gh, db
from genofed.access.tokens import issue_token
from genofed.archive.checksums import HashingWriter, ParallelDigests
from genofed.cli.common import err_console as console
from genofed.config import load_settings
from genofed.node.app import create_app
from genofed.node.client import NodeClient
from genofed.node.directory import init_node, node_secret_key
from genofed.node.server import free_socket, serving
from genofed.storage import open_store
from genofed.synthetic import write_synthetic_vcf

PASSPHRASE = "demo-passphrase"
READY_TIMEOUT_S = 300


def run_demo(workdir: Path, size_mib: int) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    started = time.perf_counter()
    timings: list[tuple[str, str]] = []

    step("1. A national node is created", "configuration, node key pair, database, storage")
    node = init_node(workdir / "node-BE", name="Belgian node", country="BE")
    console.print(
        f"   {escape(str(node.settings.home))}, key fingerprint {node.public_key_fingerprint}"
    )

    step("2. A researcher makes a Crypt4GH key pair", "passphrase-protected")
    people = workdir / "people"
    researcher = crypt4gh.write_keypair(
        people / "researcher.sec", people / "researcher.pub", PASSPHRASE
    )

    step("3. A submitter prepares a synthetic VCF", f"about {size_mib} MiB, 100 samples")
    vcf = people / "cohort.vcf"
    records = write_synthetic_vcf(vcf, target_bytes=size_mib * 1024 * 1024)
    size, sha256 = os.path.getsize(vcf), sha256_of(vcf)
    console.print(f"   {vcf.name}: {records:,} variants, {size:,} bytes, sha256 {sha256}")

    step("4. The node starts", "its API on a loopback port, the pipeline running in-process")
    sock = free_socket()
    settings = load_settings(node.config_file, http={"port": sock.getsockname()[1]})
    with serving(create_app(settings), sock) as url:
        console.print(f"   listening at {url}")
        step("5. The submitter uploads the file", "genofed submit upload, encrypting on the way")
        token = issue_token(settings, "alice", ["submitter"])
        timings.append(("encrypt + upload", rate(size, timed(lambda: submit(vcf, url, token)))))
        step("6. The pipeline archives it", "ingest, verify, accession, backup")
        start = time.perf_counter()
        record = wait_until_ready(url, token)
        timings.append(("pipeline to ready", rate(size, time.perf_counter() - start)))

    engine = db.make_engine(settings.database_url)
    with db.session_scope(engine) as session:
        stored = session.get(db.ArchiveFile, record["id"])
        assert stored is not None and stored.header and stored.archive_path
        header_bytes, body_key = stored.header, stored.archive_path
        states = [event.state.value for event in stored.events]
        shown = [state for n, state in enumerate(states) if n == 0 or state != states[n - 1]]
        console.print("   history: " + " → ".join(shown))
        console.print(f"   accession {stored.accession}")
        check(stored.decrypted_sha256 == sha256, "the archive's plaintext checksum")
    engine.dispose()

    step("7. A researcher receives the file", "only the header is re-encrypted, for their key")
    archive, node_key = open_store(settings.archive), node_secret_key(settings)
    start = time.perf_counter()
    new_header = crypt4gh.reencrypt_header(header_bytes, node_key, [researcher.public])
    timings.append(("header re-encryption", f"{(time.perf_counter() - start) * 1000:.2f} ms"))
    download = people / "download.vcf.c4gh"
    with open(download, "wb") as out, archive.open(body_key) as body:
        out.write(new_header)
        shutil.copyfileobj(body, out, 1 << 20)
    researcher_key = crypt4gh.load_private_key(people / "researcher.sec", PASSPHRASE)
    with open(download, "rb") as handle, ParallelDigests("sha256") as digests:
        crypt4gh.decrypt(handle, HashingWriter(digests), researcher_key)
        check(digests.hexdigests()["sha256"] == sha256, "the researcher's decrypted copy")

    step("8. A researcher asks for a byte range", "only the segments that hold it are read")
    begin, end = size // 3, size // 3 + 100_000
    part = read_range(archive.iter_range, body_key, header_bytes, node_key, begin, end)
    with open(vcf, "rb") as original:
        original.seek(begin)
        check(part == original.read(end - begin), f"bytes {begin:,}-{end:,}")
    first, last = crypt4gh.segment_span(begin, end)
    console.print(f"   read {last - first:,} of {archive.size(body_key):,} archived bytes")

    summary(timings, time.perf_counter() - started, workdir)


def submit(path: Path, url: str, token: str) -> None:
    """Upload as a submitter would: the ``genofed submit upload`` command."""
    genofed = Path(sys.executable).parent / "genofed"
    environment = {**os.environ, "GENOFED_TOKEN": token, "GENOFED_STATE_DIR": str(path.parent)}
    result = subprocess.run(
        [str(genofed), "submit", "upload", str(path), "--node", url],
        env=environment,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit("the upload failed (see above)")


def wait_until_ready(url: str, token: str) -> dict[str, Any]:
    """Poll the submitter's view of the inbox until the file is ready."""
    client = NodeClient.connect(url, token)
    deadline = time.monotonic() + READY_TIMEOUT_S
    shown = ""
    try:
        while time.monotonic() < deadline:
            (record,) = client.files()
            if record["state"] != shown:
                shown = record["state"]
                console.print(f"   {shown}")
            if shown == "ready":
                return record
            if shown == "error":
                raise SystemExit(f"ingestion failed: {record.get('error')}")
            time.sleep(0.05)
    finally:
        client.close()
    raise SystemExit(f"the file was not ready after {READY_TIMEOUT_S} s")


def read_range(
    iter_range: Callable[[str, int, int], Iterator[bytes]],
    key: str,
    header_bytes: bytes,
    node_key: bytes,
    begin: int,
    end: int,
) -> bytes:
    """Plaintext ``[begin, end)`` from the segments that hold it, fetched by a ranged read."""
    first, last = crypt4gh.segment_span(begin, end)
    header = crypt4gh.open_header(crypt4gh.parse_header(header_bytes), node_key)
    offset = first // crypt4gh.CIPHER_SEGMENT_SIZE * crypt4gh.SEGMENT_SIZE
    segments = io.BufferedReader(_ChunkReader(iter_range(key, first, last)))
    part = io.BytesIO()
    crypt4gh.decrypt_body(segments, part, header, start=begin - offset, end=end - offset)
    return part.getvalue()


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle, ParallelDigests("sha256") as digests:
        while chunk := handle.read(1 << 22):
            digests.update(chunk)
        return digests.hexdigests()["sha256"]


class _ChunkReader(io.RawIOBase):
    """A read-only stream over an iterator of byte chunks (a ranged storage read)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._pending = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def step(title: str, detail: str) -> None:
    console.print(f"\n[bold cyan]{title}[/] [dim]({detail})[/]")


def check(same: bool, what: str) -> None:
    if not same:
        console.print(f"   {what}: [red]DIFFERENT from the original[/]")
        raise SystemExit(f"{what} differs from the original")
    console.print(f"   {what}: [green]identical to the original[/]")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def rate(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f} MB/s"


def summary(timings: list[tuple[str, str]], total: float, workdir: Path) -> None:
    table = Table(title="What the demo measured")
    table.add_column("step")
    table.add_column("speed", justify="right")
    for name, value in timings:
        table.add_row(name, value)
    console.print()
    console.print(table)
    console.print(
        f"[bold green]demo complete[/] in {total:.1f} s; everything is in {escape(str(workdir))}"
    )
