"""Checksums of streams, computed on threads of their own.

hashlib releases the GIL on large inputs, so sha256 and md5 of a plaintext, and the sha256 of the
encrypted body, run on separate cores while the caller reads, decrypts and writes: a stage costs
the time of its slowest hash, not the sum of them all.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from types import TracebackType
from typing import BinaryIO

_END = b""
_BACKLOG = 4  # chunks waiting per hash: bounds memory to a few chunks whatever the file size


class ParallelDigests:
    """Several digests of one stream of chunks, each updated on its own thread.

    Use it as a context manager, so the threads end even when the caller fails midway.
    """

    def __init__(self, *algorithms: str) -> None:
        self._digests = {name: hashlib.new(name) for name in algorithms}
        self._queues: dict[str, queue.Queue[bytes]] = {}
        self._threads: list[threading.Thread] = []
        for name, digest in self._digests.items():
            chunks: queue.Queue[bytes] = queue.Queue(_BACKLOG)
            thread = threading.Thread(target=_consume, args=(chunks, digest), daemon=True)
            thread.start()
            self._queues[name], self._threads = chunks, [*self._threads, thread]
        self._finished = False

    def update(self, data: bytes | memoryview) -> None:
        if not data:
            return
        chunk = data if isinstance(data, bytes) else bytes(data)  # callers reuse their buffers
        for chunks in self._queues.values():
            chunks.put(chunk)

    def hexdigests(self) -> dict[str, str]:
        """Wait for every thread, then the digests by algorithm."""
        self._finish()
        return {name: digest.hexdigest() for name, digest in self._digests.items()}

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            for chunks in self._queues.values():
                chunks.put(_END)
            for thread in self._threads:
                thread.join()

    def __enter__(self) -> ParallelDigests:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._finish()


def _consume(chunks: queue.Queue[bytes], digest: hashlib._Hash) -> None:
    while chunk := chunks.get():
        digest.update(chunk)


class HashingReader:
    """A read-through stream whose bytes are also given to ``digests``."""

    def __init__(self, source: BinaryIO, digests: ParallelDigests) -> None:
        self._source, self._digests = source, digests

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._digests.update(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        n = int(self._source.readinto(buffer) or 0)  # type: ignore[attr-defined]
        self._digests.update(buffer[:n])
        return n

    def seekable(self) -> bool:
        return False


class HashingWriter:
    """A sink that only hashes what is written to it (verification keeps no plaintext)."""

    def __init__(self, digests: ParallelDigests) -> None:
        self._digests, self.size = digests, 0

    def write(self, data: bytes | memoryview) -> int:
        self._digests.update(data)
        self.size += len(data)
        return len(data)
