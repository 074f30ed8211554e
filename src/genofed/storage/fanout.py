"""One stream into several stores at once, each written on a thread of its own.

The ingest stage writes an upload's body to the archive and to the backup store in one read:
the two writes overlap instead of following each other. Either every store gets the whole
object, or none keeps anything (a failing writer aborts the others).
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from genofed.storage.base import ObjectStore

CHUNK_SIZE = 4 * 1024 * 1024
_BACKLOG = 4  # chunks waiting per extra store: memory stays a few chunks whatever the size


class _Aborted(Exception):
    """Raised inside a secondary writer so that its store discards the partial object."""


Item = bytes | _Aborted | None  # a chunk, the order to abort, or the end


def put_everywhere(
    stores: Sequence[ObjectStore], key: str, source: BinaryIO, chunk_size: int = CHUNK_SIZE
) -> int:
    """Store ``source`` at ``key`` in every store; returns the size. Atomic per store, and
    all or nothing across them: if any write fails, the others are aborted or deleted."""
    first, *others = stores
    feeds: list[queue.Queue[bytes | _Aborted | None]] = [queue.Queue(_BACKLOG) for _ in others]
    with ThreadPoolExecutor(max(1, len(others)), thread_name_prefix="genofed-fanout") as pool:
        writers = [
            pool.submit(store.put, key, _drain(feed))
            for store, feed in zip(others, feeds, strict=True)
        ]
        try:
            size = first.put(key, _read(source, chunk_size, feeds, writers))
        except BaseException:
            for feed, writer in zip(feeds, writers, strict=True):
                _offer(feed, _Aborted(), writer)
            _settle(writers)
            raise
        try:
            for writer in writers:
                writer.result()
        except BaseException:
            first.delete(key)
            raise
    return size


def _read(
    source: BinaryIO,
    chunk_size: int,
    feeds: list[queue.Queue[bytes | _Aborted | None]],
    writers: list[Future[int]],
) -> Iterator[bytes]:
    while chunk := source.read(chunk_size):
        for feed, writer in zip(feeds, writers, strict=True):
            _offer(feed, chunk, writer)
        yield chunk
    for feed, writer in zip(feeds, writers, strict=True):
        _offer(feed, None, writer)


def _offer(feed: queue.Queue[Item], item: Item, writer: Future[int]) -> None:
    """Queue ``item`` for a writer; if that writer died, raise its error instead of waiting
    (an abort order to a dead writer has nothing left to do)."""
    while True:
        try:
            feed.put(item, timeout=0.1)
            return
        except queue.Full:
            if not writer.done():
                continue
            if isinstance(item, _Aborted):
                return
            writer.result()  # raises the writer's error
            raise RuntimeError("a store stopped reading before the end of the object") from None


def _drain(feed: queue.Queue[bytes | _Aborted | None]) -> Iterator[bytes]:
    while True:
        item = feed.get()
        if item is None:
            return
        if isinstance(item, _Aborted):
            raise item
        yield item


def _settle(writers: list[Future[int]]) -> None:
    for writer in writers:
        with contextlib.suppress(Exception):  # an aborted or failed copy: its store kept nothing
            writer.result()
