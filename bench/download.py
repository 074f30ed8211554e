"""Download throughput: files served re-encrypted for the requester over loopback, header cost,
and many downloads at once.

A fresh node in the work folder (tmpfs by default) archives a file of random bytes (1 GiB by
default) as the pipeline leaves it, releases it in a dataset and grants it to a reader. The node
runs ``create_app`` under uvicorn in a separate process, on a socket bound to 127.0.0.1 here and
handed over, so that server and client do not share one interpreter lock, as they would not in
production; both still share this machine's cores. Measured, in one run:

- the file downloaded with httpx streaming into /dev/null and into a file, against a plain copy
  of the archived body on the same machine (read into /dev/null; copied file to file);
- the file through ``genofed download`` (fetch, decrypt, sha256 and md5 verified) into a file;
- header re-encryption per request (``dataout.service.representation``) and HEAD latency;
- ``--clients`` concurrent downloads of a smaller file, each decrypted and its sha256 checked.

    .venv/bin/python bench/download.py [--size-mib 1024] [--small-mib 8] [--clients 100]
                                       [--repeat 3] [--dir /dev/shm] [--warm-gib 6]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed import crypt4gh, db
from genofed.access.tokens import issue_token
from genofed.archive.stages import archive_key
from genofed.config import Settings, load_settings
from genofed.dataout import service
from genofed.metadata.accessions import allocate
from genofed.node.directory import init_node, node_secret_key
from genofed.storage import open_store
from served import ServedApp

MIB = 1024 * 1024
READ = 1 << 20
TARGET_MB_S = 500
TARGET_HEADER_MS = 2.0
READER = "reader@bench.example"
PASSPHRASE = "benchmark"
SERVER = """
import socket, sys, uvicorn
from pathlib import Path
from genofed.config import load_settings
from genofed.node.app import create_app
app = create_app(load_settings(Path(sys.argv[1]), embedded_workers=False))
config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(sys.argv[2]))])
"""
CLI = """
import typer
from genofed.cli.download import download
app = typer.Typer(pretty_exceptions_enable=False)
app.command()(download)
app()
"""


@dataclass(frozen=True)
class Archived:
    accession: str
    body: Path  # the archived body in the local store: what a plain copy reads
    sha256: str  # of the plaintext
    size: int  # of the plaintext


@dataclass(frozen=True)
class Bench:
    settings: Settings
    config: Path
    dataset: str
    big: Archived
    small: Archived
    reader: crypt4gh.KeyPair
    key_file: Path


# -- the node -----------------------------------------------------------------------------------


def warm_memory(gib: int) -> None:
    """Touch ``gib`` GiB of memory in a short-lived process, then give it back.

    This virtual machine's host backs guest memory lazily: the first write to a never-used page
    costs a host fault, which makes writing fresh files to tmpfs several times slower than on a
    machine whose memory is in use, as a server's is (see bench/ingest.py).
    """
    code = f"b = bytearray({gib} * 1024**3); b[::4096] = b'\\1' * len(b[::4096])"
    subprocess.run([sys.executable, "-c", code], check=True)


class _RandomReader:
    """``size`` random bytes as a stream, hashed as they are produced (never all in memory)."""

    def __init__(self, size: int) -> None:
        self._left = size
        self.sha256, self.md5 = hashlib.sha256(), hashlib.md5()

    def read(self, size: int = -1) -> bytes:
        n = self._left if size < 0 else min(size, self._left)
        data = os.urandom(n)
        self._left -= n
        self.sha256.update(data)
        self.md5.update(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def archive_random(work: Path, settings: Settings, session: Session, size: int) -> Archived:
    """``size`` random bytes archived and ready, streamed: header in the database, body in the
    archive store (as ``tests/dataout/dataout_support.archive_file`` does in memory)."""
    public = crypt4gh.load_public_key(settings.crypt4gh.public_key)
    source, sealed = _RandomReader(size), work / "upload.c4gh"
    with sealed.open("wb") as out:
        crypt4gh.encrypt(source, out, [public])  # type: ignore[arg-type]
    with sealed.open("rb") as stream:
        header = crypt4gh.split(stream)
        body_sha256 = hashlib.file_digest(stream, "sha256").hexdigest()
        file = db.ArchiveFile(
            submitter="bench",
            inbox_path="bench/upload.c4gh",
            state=db.FileState.READY,
            accession=str(allocate(session, settings.country, "file")),
            header=header,
            archive_size=stream.tell() - len(header),
            archive_sha256=body_sha256,
            decrypted_size=size,
            decrypted_sha256=source.sha256.hexdigest(),
            decrypted_md5=source.md5.hexdigest(),
        )
        session.add(file)
        session.flush()
        file.archive_path = archive_key(file.id)
        stream.seek(len(header))
        open_store(settings.archive).put(file.archive_path, stream)
    sealed.unlink()
    root = settings.archive.path
    body = (root if root.is_absolute() else settings.home / root).joinpath(
        *file.archive_path.split("/")
    )
    assert body.stat().st_size == file.archive_size, body
    return Archived(str(file.accession), body, source.sha256.hexdigest(), size)


def prepare(work: Path, size: int, small_size: int) -> Bench:
    """A node with two archived files in a released dataset granted to the reader."""
    made = init_node(work / "node", name="Bench node", country="BE")
    settings = load_settings(made.config_file, embedded_workers=False)
    engine = db.make_engine(settings.database_url)
    with db.session_scope(engine) as session:
        big = archive_random(work, settings, session, size)
        small = archive_random(work, settings, session, small_size)
        dataset = _release(session, settings, [big.accession, small.accession])
    engine.dispose()
    key_file = work / "reader.sec"
    reader = crypt4gh.write_keypair(key_file, work / "reader.pub", PASSPHRASE)
    return Bench(settings, made.config_file, dataset, big, small, reader, key_file)


def _release(session: Session, settings: Settings, accessions: list[str]) -> str:
    dataset = db.MetadataObject(
        kind=db.ObjectKind.DATASET,
        accession=str(allocate(session, settings.country, "dataset")),
        alias="bench-dataset",
        submitter="bench",
        status=db.ObjectStatus.RELEASED,
        body={"title": "Bench"},
    )
    session.add(dataset)
    session.flush()
    for accession in accessions:
        file = session.scalars(
            select(db.ArchiveFile).where(db.ArchiveFile.accession == accession)
        ).one()
        session.add(db.ObjectFile(object_id=dataset.id, file_id=file.id))
    session.add(
        db.Grant(
            subject=READER,
            dataset_accession=str(dataset.accession),
            granted_by="bench",
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    )
    return str(dataset.accession)


# -- measurements -------------------------------------------------------------------------------


def best_seconds(action: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def read_to_null(path: Path) -> None:
    """A plain read of a file, as a server without any work per byte would do it."""
    buffer = bytearray(READ)
    with path.open("rb", buffering=0) as source:
        while source.readinto(buffer):
            pass


def fetch(client: httpx.Client, url: str, sink: Path) -> int:
    """GET the whole file into ``sink``; returns its size (checked against Content-Length)."""
    received = 0
    with client.stream("GET", url) as response, sink.open("wb") as out:
        response.raise_for_status()
        for chunk in response.iter_raw(READ):
            out.write(chunk)
            received += len(chunk)
        expected = int(response.headers["content-length"])
    if received != expected:
        raise SystemExit(f"got {received} bytes of {expected}")
    return received


def sha256_of_decrypted(path: Path, secret: bytes) -> str:
    digest = hashlib.sha256()

    class Sink:
        def write(self, data: bytes | memoryview) -> int:
            digest.update(data)
            return len(data)

    with path.open("rb") as source:
        crypt4gh.decrypt(source, Sink(), secret)
    return digest.hexdigest()


def reader_client(bench: Bench, url: str, connections: int = 10) -> httpx.Client:
    headers = {
        "Authorization": f"Bearer {issue_token(bench.settings, READER, ['requester'])}",
        "X-C4GH-Public-Key": base64.b64encode(bench.reader.public).decode(),
    }
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(30.0, read=300.0)
    return httpx.Client(base_url=url, headers=headers, limits=limits, timeout=timeout)


def single_file(bench: Bench, url: str, work: Path, repeat: int) -> dict[str, tuple[float, float]]:
    """MB/s of the big file by sink: the plain copy of the archived body, and the download."""
    size = bench.big.body.stat().st_size
    copy, sink = work / "copy.bin", work / "download.c4gh"
    path = f"/data/files/{bench.big.accession}"
    with reader_client(bench, url) as client:
        total = int(client.head(path).headers["content-length"])
        rates = {
            "/dev/null": (
                size / best_seconds(lambda: read_to_null(bench.big.body), repeat),
                total / best_seconds(lambda: fetch(client, path, Path(os.devnull)), repeat),
            ),
            "file": (
                size / best_seconds(lambda: shutil.copyfile(bench.big.body, copy), repeat),
                total / best_seconds(lambda: fetch(client, path, sink), repeat),
            ),
        }
    copy.unlink()
    if sha256_of_decrypted(sink, bench.reader.secret) != bench.big.sha256:
        raise SystemExit("the downloaded file does not decrypt to the archived plaintext")
    sink.unlink()
    return rates


def cli_download(bench: Bench, url: str, work: Path) -> float:
    """Seconds for ``genofed download`` of the big file: fetch, decrypt, verify, into a file."""
    out = work / "cli"
    env = {
        **os.environ,
        "GENOFED_TOKEN": issue_token(bench.settings, READER, ["requester"]),
        "C4GH_PASSPHRASE": PASSPHRASE,
    }
    command = [sys.executable, "-c", CLI, bench.dataset, "--files", bench.big.accession]
    command += ["--out", str(out), "--key", str(bench.key_file), "--node", url]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"genofed download failed: {done.stderr}")
    seconds = time.perf_counter() - start
    shutil.rmtree(out)
    return seconds


def header_costs(bench: Bench, url: str, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per header re-encryption in process, and per HEAD request end to end."""
    node_keys = (node_secret_key(bench.settings),)
    engine = db.make_engine(bench.settings.database_url)
    with db.session_scope(engine) as session:
        file = session.scalars(
            select(db.ArchiveFile).where(db.ArchiveFile.accession == bench.big.accession)
        ).one()
        session.expunge(file)
    engine.dispose()
    recipient = bench.reader.public
    _timed_ms(lambda: service.representation(file, node_keys, recipient), 50)  # warm-up
    in_process = _timed_ms(lambda: service.representation(file, node_keys, recipient), rounds)
    path = f"/data/files/{bench.big.accession}"
    with reader_client(bench, url) as client:
        client.head(path).raise_for_status()  # the connection, opened before the clock runs
        heads = _timed_ms(lambda: client.head(path).raise_for_status(), rounds // 5)
    return {"header re-encryption (representation)": in_process, "HEAD request": heads}


def _p99(sorted_timings: list[float]) -> float:
    return sorted_timings[int(0.99 * len(sorted_timings))]


def _timed_ms(action: Callable[[], object], rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        timings.append((time.perf_counter() - start) * 1000)
    return sorted(timings)


@dataclass(frozen=True)
class Crowd:
    seconds: float
    received: int
    correct: int
    latencies: list[float]
    errors: list[str]
    server_cpu: float  # seconds of CPU the server process used meanwhile
    client_cpu: float  # and this process (the clients)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def concurrent(bench: Bench, server: ServedApp, clients: int) -> Crowd:
    """``clients`` downloads of the small file at once, each decrypted as it streams in and its
    plaintext's sha256 compared with the archived one."""
    path = f"/data/files/{bench.small.accession}"
    with (
        reader_client(bench, server.url, connections=clients) as client,
        ThreadPoolExecutor(clients) as pool,
    ):
        server_before, client_before = cpu_seconds(server.pid), cpu_seconds(os.getpid())
        start = time.perf_counter()
        results = list(pool.map(lambda _: _one_of_many(client, path, bench), range(clients)))
        seconds = time.perf_counter() - start
        server_cpu = cpu_seconds(server.pid) - server_before
        client_cpu = cpu_seconds(os.getpid()) - client_before
    return Crowd(
        seconds,
        received=sum(result.received for result in results),
        correct=sum(1 for result in results if result.sha256 == bench.small.sha256),
        latencies=sorted(result.seconds for result in results),
        errors=[result.error for result in results if result.error],
        server_cpu=server_cpu,
        client_cpu=client_cpu,
    )


@dataclass(frozen=True)
class Fetched:
    sha256: str
    received: int
    seconds: float
    error: str = ""


def _one_of_many(client: httpx.Client, path: str, bench: Bench) -> Fetched:
    """One download, decrypted as it streams in; a failure is reported, not raised."""
    start = time.perf_counter()
    source = _Stream(iter(()))
    try:
        with client.stream("GET", path) as response:
            response.raise_for_status()
            source = _Stream(response.iter_raw(READ))
            sha256 = _decrypted_sha256(source, bench.reader.secret)
    except (httpx.HTTPError, crypt4gh.Crypt4GHError, InvalidTag) as error:
        elapsed = time.perf_counter() - start
        return Fetched("", source.count, elapsed, f"{type(error).__name__}: {error}")
    return Fetched(sha256, source.count, time.perf_counter() - start)


def _decrypted_sha256(source: _Stream, secret: bytes) -> str:
    """The plaintext's sha256, each segment decrypted on the calling thread.

    Not ``crypt4gh.decrypt``: it hands segments to one process-wide pool, which a hundred
    client threads in one process would contend for, measuring this client rather than the node.
    """
    header = crypt4gh.open_header(crypt4gh.read_header(source), secret)  # type: ignore[arg-type]
    assert header.edit_list is None and len(header.session_keys) == 1
    aead, digest = ChaCha20Poly1305(header.session_keys[0]), hashlib.sha256()
    segment = memoryview(bytearray(crypt4gh.CIPHER_SEGMENT_SIZE))
    while n := source.readinto(segment):
        digest.update(aead.decrypt(segment[:12], segment[12:n], None))
    return digest.hexdigest()


class _Stream:
    """An iterator of byte chunks as a readable, unseekable stream for the decryptor, which reads
    into its own buffers: each byte is copied once, from the chunk into the buffer."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk, self._at, self.count = memoryview(b""), 0, 0

    def readinto(self, buffer: memoryview) -> int:
        filled = 0
        while filled < len(buffer):
            if self._at == len(self._chunk):
                chunk = next(self._chunks, b"")
                if not chunk:
                    break
                self._chunk, self._at = memoryview(chunk), 0
                self.count += len(chunk)
            n = min(len(buffer) - filled, len(self._chunk) - self._at)
            buffer[filled : filled + n] = self._chunk[self._at : self._at + n]
            filled, self._at = filled + n, self._at + n
        return filled

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise ValueError("read the stream in pieces")
        buffer = bytearray(size)
        return bytes(buffer[: self.readinto(memoryview(buffer))])

    def seekable(self) -> bool:
        return False


# -- report -------------------------------------------------------------------------------------


def report(bench: Bench, work: Path, args: argparse.Namespace) -> None:
    print(
        f"node in {work.parent}: a {args.size_mib} MiB and a {args.small_mib} MiB file of random "
        f"bytes; best of {args.repeat} runs; {os.cpu_count()} cores"
    )
    server = ServedApp(SERVER, bench.config, what="the node's server")
    try:
        print(f"{'sink':<12}{'plain copy':>14}{'download':>14}{'ratio':>8}")
        for sink, (plain, fetched) in single_file(bench, server.url, work, args.repeat).items():
            print(
                f"{sink:<12}{plain / 1e6:>9,.0f} MB/s{fetched / 1e6:>9,.0f} MB/s"
                f"{fetched / plain:>7.2f}x"
            )
            if sink == "/dev/null":
                met = "met" if fetched / 1e6 >= TARGET_MB_S else "MISSED"
                print(f"  target: download of the file ≥ {TARGET_MB_S} MB/s: {met}")
        seconds = cli_download(bench, server.url, work)
        size = bench.big.size
        print(
            f"genofed download (fetch, decrypt, sha256+md5 verify → file): {seconds:.2f} s, "
            f"{size / seconds / 1e6:,.0f} MB/s of plaintext"
        )
        costs = header_costs(bench, server.url, args.rounds)
        for name, timings in costs.items():
            print(
                f"{name}: mean {statistics.fmean(timings):.3f} ms, "
                f"p99 {_p99(timings):.3f} ms over {len(timings)} calls"
            )
        header_p99 = _p99(costs["header re-encryption (representation)"])
        met = "met" if header_p99 < TARGET_HEADER_MS else "MISSED"
        print(f"  target: header re-encryption < {TARGET_HEADER_MS:g} ms (p99): {met}")
        crowd = concurrent(bench, server, args.clients)
        print(
            f"{args.clients} concurrent downloads of {args.small_mib} MiB: {crowd.seconds:.2f} s "
            f"wall, {crowd.received / crowd.seconds / 1e6:,.0f} MB/s aggregate; "
            f"{crowd.correct}/{args.clients} decrypted to the right sha256; per download p50 "
            f"{crowd.latencies[len(crowd.latencies) // 2]:.2f} s, max {crowd.latencies[-1]:.2f} s"
        )
        print(
            f"  CPU meanwhile: server {crowd.server_cpu:.2f} s, clients {crowd.client_cpu:.2f} s "
            f"(of {crowd.seconds * (os.cpu_count() or 1):.2f} s on {os.cpu_count()} cores)"
        )
        if crowd.errors:
            print(f"  {len(crowd.errors)} failed, e.g. {crowd.errors[0]}")
        met = "met" if crowd.correct == args.clients else "MISSED"
        print(f"  target: all {args.clients} complete with correct checksums: {met}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the big file, in MiB")
    parser.add_argument("--small-mib", type=int, default=8, help="the file fetched at once")
    parser.add_argument("--clients", type=int, default=100, help="concurrent downloads")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--rounds", type=int, default=1000, help="header re-encryptions timed")
    default_dir = "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()
    parser.add_argument("--dir", default=default_dir, help="work folder (default: tmpfs)")
    parser.add_argument(
        "--warm-gib", type=int, default=6, help="touch this much memory first (0: don't)"
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 500:
        parser.error("--clients must be between 1 and 500")
    if args.warm_gib:
        warm_memory(args.warm_gib)
    work = Path(tempfile.mkdtemp(prefix="genofed-download-", dir=args.dir))
    try:
        bench = prepare(work, args.size_mib * MIB, args.small_mib * MIB)
        report(bench, work, args)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
