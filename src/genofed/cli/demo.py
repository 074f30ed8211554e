"""``genofed demo``: the archive's promise, end to end, on a fresh node.

A submitter encrypts a synthetic VCF for the node; the node keeps the Crypt4GH header in its
database and the body in archive storage, and verifies the plaintext checksums by streaming;
a researcher then receives the file re-encrypted for their own key (only the header is rewritten)
and a byte range of it, each checked against the original. Until the federation exists, this is
the story genofed can tell.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from sqlalchemy import Engine

from genofed import crypt4gh, db
from genofed.cli.common import err_console as console
from genofed.node.directory import init_node, node_secret_key
from genofed.storage import ObjectStore, open_store
from genofed.synthetic import write_synthetic_vcf

PASSPHRASE = "demo-passphrase"


@dataclass
class Checksums:
    sha256: str
    md5: str
    size: int


class HashingWriter:
    """A sink that only hashes: verification never writes plaintext to disk."""

    def __init__(self) -> None:
        self._sha256, self._md5, self.size = hashlib.sha256(), hashlib.md5(), 0

    def write(self, data: bytes | memoryview) -> int:
        self._sha256.update(data)
        self._md5.update(data)
        self.size += len(data)
        return len(data)

    def result(self) -> Checksums:
        return Checksums(self._sha256.hexdigest(), self._md5.hexdigest(), self.size)


def checksums_of(path: Path) -> Checksums:
    sink = HashingWriter()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            sink.write(chunk)
    return sink.result()


def run_demo(workdir: Path, size_mib: int) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    started = time.perf_counter()
    timings: list[tuple[str, str]] = []

    step("1. A national node is created", "configuration, node key pair, database, storage")
    node = init_node(workdir / "node-BE", name="Belgian node", country="BE")
    settings = node.settings
    console.print(
        f"   node directory {settings.home}, key fingerprint {node.public_key_fingerprint}"
    )

    step("2. A submitter and a researcher make their Crypt4GH keys", "passphrase-protected")
    people = workdir / "people"
    crypt4gh.write_keypair(people / "submitter.sec", people / "submitter.pub", PASSPHRASE)
    researcher = crypt4gh.write_keypair(
        people / "researcher.sec", people / "researcher.pub", PASSPHRASE
    )

    step("3. The submitter prepares a synthetic VCF", f"about {size_mib} MiB, 100 samples")
    vcf = people / "cohort.vcf"
    records = write_synthetic_vcf(vcf, target_bytes=size_mib * 1024 * 1024)
    declared = checksums_of(vcf)
    console.print(f"   {vcf.name}: {records:,} variants, {declared.size:,} bytes")
    console.print(f"   sha256 {declared.sha256}")

    step("4. The submitter encrypts it for the node", "the plaintext never leaves their machine")
    node_public = crypt4gh.load_public_key(settings.crypt4gh.public_key)
    submission = people / "cohort.vcf.c4gh"
    seconds = timed(lambda: encrypt_file(vcf, submission, node_public))
    timings.append(("encrypt", rate(declared.size, seconds)))

    step("5. The node archives it", "header to the database, body to archive storage")
    archive = open_store(settings.archive)
    engine = db.make_engine(settings.database_url)
    db.check_schema(engine)
    node_key = node_secret_key(settings)
    file_id = archive_submission(submission, engine, archive, node_key)
    console.print(f"   file {file_id} in {archive.describe()}")

    step("6. The node verifies the archived body", "stream-decrypts it, checksums the plaintext")
    with db.session_scope(engine) as session:
        record = session.get(db.ArchiveFile, file_id)
        assert record is not None and record.header is not None and record.archive_path
        header = crypt4gh.open_header(crypt4gh.parse_header(record.header), node_key)
        sink = HashingWriter()
        with archive.open(record.archive_path) as body:
            seconds = timed(lambda: crypt4gh.decrypt_body(body, sink, header))
        found = sink.result()
        timings.append(("verify (decrypt + sha256 + md5)", rate(found.size, seconds)))
        if found.sha256 != declared.sha256 or found.md5 != declared.md5:
            record.state, record.error = db.FileState.ERROR, "plaintext checksum mismatch"
            raise SystemExit("verification failed: checksums differ")
        record.decrypted_sha256, record.decrypted_md5 = found.sha256, found.md5
        record.decrypted_size = found.size
        advance(record, db.FileState.VERIFIED, "plaintext sha256 and md5 match the submitter's")
    console.print(f"   plaintext sha256 {found.sha256} [green]matches[/]")

    step("7. A researcher receives the file", "only the header is re-encrypted, for their key")
    download = people / "download.vcf.c4gh"
    with db.session_scope(engine) as session:
        record = session.get(db.ArchiveFile, file_id)
        assert record is not None and record.header is not None and record.archive_path
        start = time.perf_counter()
        new_header = crypt4gh.reencrypt_header(record.header, node_key, [researcher.public])
        header_ms = (time.perf_counter() - start) * 1000
        timings.append(("header re-encryption", f"{header_ms:.2f} ms"))
        with open(download, "wb") as out, archive.open(record.archive_path) as body:
            out.write(new_header)
            shutil.copyfileobj(body, out, 1 << 20)
        body_path = record.archive_path
    researcher_key = crypt4gh.load_private_key(people / "researcher.sec", PASSPHRASE)
    received = HashingWriter()
    with open(download, "rb") as handle:
        crypt4gh.decrypt(handle, received, researcher_key)
    same = received.result().sha256 == declared.sha256
    console.print(f"   decrypted with the researcher's key: sha256 {verdict(same)}")
    if not same:
        raise SystemExit("the researcher's copy differs from the original")

    step("8. A researcher asks for a byte range", "only the segments that hold it are read")
    begin, end = declared.size // 3, declared.size // 3 + 100_000
    first, last = crypt4gh.segment_span(begin, end)
    part = io.BytesIO()
    chunks = io.BufferedReader(_ChunkReader(archive.iter_range(body_path, first, last)))
    segments_first = first // crypt4gh.CIPHER_SEGMENT_SIZE * crypt4gh.SEGMENT_SIZE
    crypt4gh.decrypt_body(
        chunks, part, header, start=begin - segments_first, end=end - segments_first
    )
    with open(vcf, "rb") as original:
        original.seek(begin)
        same = part.getvalue() == original.read(end - begin)
    console.print(
        f"   bytes {begin:,}-{end:,}: read {last - first:,} of "
        f"{archive.size(body_path):,} archived bytes; content {verdict(same)}"
    )
    if not same:
        raise SystemExit("the range differs from the original")

    summary(timings, engine, file_id, time.perf_counter() - started, workdir)


def encrypt_file(source: Path, target: Path, recipient: bytes) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        crypt4gh.encrypt(src, dst, [recipient])


def archive_submission(
    submission: Path, engine: Engine, archive: ObjectStore, node_key: bytes
) -> str:
    """Split the upload: the header (which must open with the node key) into the database,
    the body into archive storage."""
    with db.session_scope(engine) as session:
        record = db.ArchiveFile(submitter="demo-submitter", inbox_path=submission.name)
        session.add(record)
        session.flush()
        advance(record, db.FileState.UPLOADED, "received in the inbox")
        with open(submission, "rb") as handle:
            header_bytes = crypt4gh.split(handle)
            crypt4gh.open_header(crypt4gh.parse_header(header_bytes), node_key)
            key = f"{record.id[:2]}/{record.id}"
            record.archive_size = archive.put(key, handle)
        record.header, record.archive_path = header_bytes, key
        advance(record, db.FileState.ARCHIVED, "header in the database, body in the archive")
        return record.id


def advance(record: db.ArchiveFile, state: db.FileState, detail: str) -> None:
    record.state = state
    record.events.append(db.FileEvent(state=state, detail=detail))


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


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def rate(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f} MB/s"


def verdict(ok: bool) -> str:
    return "[green]identical to the original[/]" if ok else "[red]DIFFERENT[/]"


def summary(
    timings: list[tuple[str, str]], engine: Engine, file_id: str, total: float, workdir: Path
) -> None:
    table = Table(title="What the demo measured")
    table.add_column("step")
    table.add_column("speed", justify="right")
    for name, value in timings:
        table.add_row(name, value)
    console.print()
    console.print(table)
    with db.session_scope(engine) as session:
        record = session.get(db.ArchiveFile, file_id)
        assert record is not None
        history = " → ".join(event.state.value for event in record.events)
    console.print(f"file history: {history}")
    console.print(f"[bold green]demo complete[/] in {total:.1f} s; everything is in {workdir}")
