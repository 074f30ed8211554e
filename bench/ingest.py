"""Ingestion throughput: a completed upload to ``ready``, end to end, with its peak memory.

A node is created in the work folder (tmpfs by default), a file of random bytes is encrypted for
it and uploaded through the inbox service, and the upload is completed; the clock starts when the
file is submitted for ingestion and stops when it is ``ready`` (ingested, archived, verified,
accessioned, backed up and checked). The pipeline runs in a ``genofed worker`` process on the
database queue, whose peak resident memory is reported. Beside the figure, the machine's limits
measured in the same run: the cipher, sha256 and md5 on one core.

    .venv/bin/python bench/ingest.py [--size-mib 1024] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from sqlalchemy import Engine

from genofed import crypt4gh, db
from genofed.archive import inbox
from genofed.archive.dbqueue import DatabaseQueue
from genofed.node.directory import init_node, node_secret_key
from genofed.storage import open_store

MIB = 1024 * 1024
CHUNK = 64 * MIB
GENOFED = Path(sys.executable).parent / "genofed"
TARGET_MB_S = 250


def machine_limits() -> dict[str, float]:
    """Bytes per second on one core for the work verification must do."""
    data = os.urandom(64 * MIB)
    aead, nonce = ChaCha20Poly1305(os.urandom(32)), os.urandom(12)
    sealed = [aead.encrypt(nonce, data[i : i + 65536], None) for i in range(0, len(data), 65536)]
    limits = {}
    start = time.perf_counter()
    for box in sealed:
        aead.decrypt(nonce, box, None)
    limits["ChaCha20-Poly1305 decrypt"] = len(data) / (time.perf_counter() - start)
    for name in ("sha256", "md5"):
        digest = hashlib.new(name)
        start = time.perf_counter()
        digest.update(data)
        limits[name] = len(data) / (time.perf_counter() - start)
    return limits


def warm_memory(gib: int) -> None:
    """Touch ``gib`` GiB of memory in a short-lived process, then give it back.

    On a virtual machine whose host backs guest memory lazily (as here), the first write to a
    never-used page costs a host fault, which makes writing fresh files to tmpfs several times
    slower than on a machine whose memory is in use, as a server's is. Warming removes that
    artefact of a fresh VM from the measurement; ``--warm-gib 0`` measures it.
    """
    code = f"b = bytearray({gib} * 1024**3); b[::4096] = b'\\1' * len(b[::4096])"
    subprocess.run([sys.executable, "-c", code], check=True)


def prepare(work: Path, size: int) -> tuple[Path, str]:
    """A node, and a completed upload of ``size`` random bytes encrypted for it; the file id."""
    made = init_node(work / "node", name="Bench node", country="BE")
    settings = made.settings
    public = crypt4gh.load_public_key(settings.crypt4gh.public_key)
    sealed_path = work / "upload.c4gh"
    with open(sealed_path, "wb") as sealed:
        crypt4gh.encrypt(_RandomReader(size), sealed, [public])
    engine = db.make_engine(settings.database_url)
    store = open_store(settings.inbox)
    with db.session_factory(engine)() as session, open(sealed_path, "rb") as source:
        upload_id = inbox.create_upload(session, "bench", "upload.c4gh").id
        offset = 0
        while chunk := source.read(CHUNK):
            offset = inbox.put_chunk(session, store, upload_id, "bench", offset, io.BytesIO(chunk))
        source.seek(0)
        digest = hashlib.file_digest(source, "sha256").hexdigest()
        file = inbox.complete_upload(
            session, store, upload_id, "bench", digest, node_key=node_secret_key(settings)
        )
        file_id = file.id
    sealed_path.unlink()
    engine.dispose()
    return made.config_file, file_id


def submit(config: Path, file_id: str) -> Engine:
    """Submit the uploaded file for ingestion, as the node's API does."""
    from genofed.config import load_settings

    engine = db.make_engine(load_settings(config).database_url)
    with db.session_factory(engine)() as session:
        file = inbox.submit_file(session, file_id, "bench")

    async def publish() -> None:
        queue = DatabaseQueue(engine)
        await inbox.request_ingestion(queue, file)
        await queue.close()

    asyncio.run(publish())
    return engine


def wait_ready(engine: Engine, file_id: str, worker: subprocess.Popen[bytes]) -> None:
    while True:
        with db.session_scope(engine) as session:
            file = session.get(db.ArchiveFile, file_id)
            assert file is not None
            if file.state == db.FileState.READY:
                return
            if file.state == db.FileState.ERROR:
                raise SystemExit(f"ingestion failed: {file.error}")
        if worker.poll() is not None:
            raise SystemExit("the worker exited before the file was ready")
        time.sleep(0.02)


def stage_times(engine: Engine, file_id: str) -> list[str]:
    """How long the file spent reaching each state, from its event history."""
    with db.session_scope(engine) as session:
        file = session.get(db.ArchiveFile, file_id)
        assert file is not None
        events = [(event.state.value, event.created_at) for event in file.events]
    submitted = next(at for state, at in events if state == "submitted")
    lines, previous = [], submitted
    for state, at in events:
        if at > submitted:
            lines.append(f"  {state:<10} +{(at - previous).total_seconds():.2f} s")
            previous = at
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    default_dir = "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()
    parser.add_argument("--dir", default=default_dir, help="work folder (default: tmpfs)")
    parser.add_argument(
        "--warm-gib",
        type=int,
        default=6,
        help="touch this much memory first (0: don't); see warm_memory",
    )
    args = parser.parse_args()
    size = args.size_mib * MIB
    if args.warm_gib:
        warm_memory(args.warm_gib)
    work = Path(tempfile.mkdtemp(prefix="genofed-ingest-", dir=args.dir))
    worker: subprocess.Popen[bytes] | None = None
    try:
        for name, rate in machine_limits().items():
            print(f"machine: {name} on one core: {rate / 1e6:,.0f} MB/s")
        config, file_id = prepare(work, size)
        rss_file = work / "rss.txt"
        env = {**os.environ, "GENOFED_CONFIG": str(config)}
        command = [
            "/usr/bin/time",
            "-f",
            "%M",
            "-o",
            str(rss_file),
            str(GENOFED),
            "worker",
            "--until-idle",
            "2",
        ]
        worker = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # let the worker start (imports, key unlock) before the clock runs
        engine = submit(config, file_id)
        start = time.perf_counter()
        wait_ready(engine, file_id, worker)
        seconds = time.perf_counter() - start
        worker.wait(timeout=60)  # it stops by itself once the queue stays empty
        peak = int(rss_file.read_text().split()[-1]) / 1024
        rate = size / seconds / 1e6
        print(
            f"ingest {size / MIB:,.0f} MiB from completed upload to ready: {seconds:.2f} s, "
            f"{rate:,.0f} MB/s ({rate / TARGET_MB_S:.1f}x the {TARGET_MB_S} MB/s target); "
            f"worker peak RSS {peak:.0f} MiB"
        )
        for line in stage_times(engine, file_id):
            print(line)
        engine.dispose()
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=60)
        shutil.rmtree(work)


class _RandomReader:
    """``size`` random bytes as a stream, without holding them in memory."""

    def __init__(self, size: int) -> None:
        self._left = size

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self._left)
        buffer[:n] = os.urandom(n)
        self._left -= n
        return n

    def read(self, size: int = -1) -> bytes:
        n = self._left if size < 0 else min(size, self._left)
        self._left -= n
        return os.urandom(n)


if __name__ == "__main__":
    main()
