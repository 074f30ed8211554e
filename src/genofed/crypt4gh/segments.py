"""The Crypt4GH data portion: 64 KiB plaintext segments, each sealed with ChaCha20-Poly1305.

An encrypted segment is nonce (12) + ciphertext + MAC (16), so a full one is 65,564 bytes and
plaintext byte ``p`` lives in segment ``p // 65536``. That arithmetic is what makes ranges cheap:
only the segments that hold the wanted bytes are read and decrypted. Work is done in batches of
segments held in two reusable buffers, so memory stays constant whatever the file size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from genofed.crypt4gh.errors import InvalidRange, SegmentAuthenticationFailed, TruncatedData

SEGMENT_SIZE = 65536
NONCE_SIZE = 12
MAC_SIZE = 16
CIPHER_SEGMENT_SIZE = SEGMENT_SIZE + NONCE_SIZE + MAC_SIZE
BATCH_SEGMENTS = 64  # 4 MiB of plaintext per read/write: few syscalls, small memory

Progress = Callable[[int], None]


class Writable(Protocol):
    """Where output goes: any binary stream, or a wrapper with just ``write``."""

    def write(self, data: bytes | memoryview, /) -> object: ...


Extent = tuple[int, int | None]  # a half-open plaintext interval; None means "to the end"


def cipher_size(plain_size: int) -> int:
    """Size of the data portion that encrypts ``plain_size`` bytes."""
    full, rest = divmod(plain_size, SEGMENT_SIZE)
    return full * CIPHER_SEGMENT_SIZE + (rest + NONCE_SIZE + MAC_SIZE if rest else 0)


def plain_size(cipher_size: int) -> int:
    """Plaintext size held by a data portion of ``cipher_size`` bytes."""
    full, rest = divmod(cipher_size, CIPHER_SEGMENT_SIZE)
    if 0 < rest <= NONCE_SIZE + MAC_SIZE:
        raise TruncatedData(f"data portion of {cipher_size} bytes ends inside a segment")
    return full * SEGMENT_SIZE + (rest - NONCE_SIZE - MAC_SIZE if rest else 0)


def segment_span(start: int, end: int) -> tuple[int, int]:
    """The byte span ``[first, last)`` of the data portion that holds plaintext ``[start, end)``."""
    first = start // SEGMENT_SIZE
    last = -(-end // SEGMENT_SIZE)
    return first * CIPHER_SEGMENT_SIZE, last * CIPHER_SEGMENT_SIZE


# -- encryption ---------------------------------------------------------------------------------


def encrypt_segments(
    src: BinaryIO, dst: Writable, session_key: bytes, progress: Progress | None = None
) -> int:
    """Encrypt everything ``src`` holds into ``dst``; returns the plaintext size."""
    aead = ChaCha20Poly1305(session_key)
    plain = memoryview(bytearray(SEGMENT_SIZE * BATCH_SEGMENTS))
    buffers = [memoryview(bytearray(CIPHER_SEGMENT_SIZE * BATCH_SEGMENTS)) for _ in range(2)]
    total = 0
    with _WriteBehind(dst) as writer:
        while n := _read_full(src, plain):
            sealed = buffers[total // len(plain) % 2]  # the other one may still be being written
            _seal_batch(aead, plain[:n], sealed)
            writer.write(sealed[: cipher_size(n)])
            total += n
            if progress:
                progress(n)
            if n < len(plain):
                break
    return total


def _seal_batch(aead: ChaCha20Poly1305, plain: memoryview, sealed: memoryview) -> None:
    n = len(plain)
    nonces = os.urandom(NONCE_SIZE * -(-n // SEGMENT_SIZE))

    def seal(first: int, last: int) -> None:
        for index in range(first, last):
            chunk = plain[index * SEGMENT_SIZE : min((index + 1) * SEGMENT_SIZE, n)]
            nonce = nonces[index * NONCE_SIZE : (index + 1) * NONCE_SIZE]
            out = index * CIPHER_SEGMENT_SIZE
            sealed[out : out + NONCE_SIZE] = nonce
            body = sealed[out + NONCE_SIZE : out + NONCE_SIZE + len(chunk) + MAC_SIZE]
            aead.encrypt_into(nonce, chunk, None, body)

    _in_parallel(seal, -(-n // SEGMENT_SIZE))


# -- decryption ---------------------------------------------------------------------------------


class SegmentReader:
    """Decrypts the data portion of ``src`` a batch of segments at a time, on demand.

    ``src`` must be positioned at the first segment. Seekable sources jump over segments that are
    not wanted; others are read forward and the skipped bytes are discarded undecrypted.
    """

    def __init__(
        self, src: BinaryIO, session_keys: Sequence[bytes], progress: Progress | None = None
    ) -> None:
        if not session_keys:
            raise ValueError("at least one session key is needed")
        self._src = src
        self._ciphers = [ChaCha20Poly1305(key) for key in session_keys]
        self._preferred = 0
        self._progress = progress
        self._seekable = src.seekable()
        self._body_start = src.tell() if self._seekable else 0
        self._next_index = 0  # index of the segment at the source's position
        self._sealed = memoryview(bytearray(CIPHER_SEGMENT_SIZE * BATCH_SEGMENTS))
        # Two plaintext buffers, alternating: the caller may still be writing the previous batch.
        self._plains = [memoryview(bytearray(SEGMENT_SIZE * BATCH_SEGMENTS)) for _ in range(2)]
        self._plain = self._plains[0]
        self._batch_first = 0
        self._batch_len = 0  # plaintext bytes in the current batch

    def read_batch(self, index: int, stop: int | None = None) -> tuple[int, memoryview]:
        """Plaintext of segments ``index`` up to ``stop`` (or a batch); empty past the end.

        Returns the plaintext offset of the first byte and a view valid until the next call.
        """
        if self._batch_first <= index and self._batch_len:
            offset = (index - self._batch_first) * SEGMENT_SIZE
            if offset < self._batch_len:
                return index * SEGMENT_SIZE, self._plain[offset : self._batch_len]
        self._move_to(index)
        count = BATCH_SEGMENTS if stop is None else max(1, min(BATCH_SEGMENTS, stop - index))
        sealed_len = _read_full(self._src, self._sealed[: count * CIPHER_SEGMENT_SIZE])
        if self._progress and sealed_len:
            self._progress(sealed_len)
        self._batch_first = index
        self._plain = self._plains[1] if self._plain is self._plains[0] else self._plains[0]
        self._batch_len = self._decrypt_batch(index, sealed_len)
        self._next_index = index + -(-sealed_len // CIPHER_SEGMENT_SIZE)
        return index * SEGMENT_SIZE, self._plain[: self._batch_len]

    def _move_to(self, index: int) -> None:
        if index == self._next_index:
            return
        if self._seekable:
            self._src.seek(self._body_start + index * CIPHER_SEGMENT_SIZE)
        elif index > self._next_index:
            _discard(self._src, (index - self._next_index) * CIPHER_SEGMENT_SIZE)
        else:
            raise InvalidRange("cannot go back in a stream that is not seekable")
        self._next_index = index

    def _decrypt_batch(self, first_index: int, sealed_len: int) -> int:
        count = -(-sealed_len // CIPHER_SEGMENT_SIZE)

        def open_segments(first: int, last: int) -> None:
            for number in range(first, last):
                begin = number * CIPHER_SEGMENT_SIZE
                segment = self._sealed[begin : min(begin + CIPHER_SEGMENT_SIZE, sealed_len)]
                out = number * SEGMENT_SIZE
                size = len(segment) - NONCE_SIZE - MAC_SIZE
                self._open(segment, self._plain[out : out + size], first_index + number)

        _in_parallel(open_segments, count)
        return sealed_len - count * (NONCE_SIZE + MAC_SIZE)

    def _open(self, segment: memoryview, out: memoryview, index: int) -> None:
        if len(segment) <= NONCE_SIZE + MAC_SIZE:
            raise TruncatedData(
                f"the data ends inside segment {index} ({len(segment)} bytes of at least "
                f"{NONCE_SIZE + MAC_SIZE + 1}): the file is truncated; copy it again whole"
            )
        nonce, sealed = segment[:NONCE_SIZE], segment[NONCE_SIZE:]
        preferred = self._preferred
        for position in (preferred, *range(len(self._ciphers))):
            try:
                self._ciphers[position].decrypt_into(nonce, sealed, None, out)
            except InvalidTag:
                continue
            self._preferred = position  # files usually use one key for a long run of segments
            return
        if len(segment) < CIPHER_SEGMENT_SIZE:
            raise SegmentAuthenticationFailed(
                f"the last data segment ({index}, {len(segment)} bytes) fails authentication: "
                "the file is truncated or corrupted; copy it again whole"
            )
        raise SegmentAuthenticationFailed(
            f"data segment {index} fails authentication: the file is corrupted or was tampered "
            "with; obtain an intact copy"
        )


def decrypt_extents(reader: SegmentReader, dst: Writable, extents: Sequence[Extent]) -> int:
    """Write the plaintext of each extent, in order; returns the bytes written."""
    with _WriteBehind(dst) as writer:
        return _write_extents(reader, writer, extents)


def _write_extents(reader: SegmentReader, dst: Writable, extents: Sequence[Extent]) -> int:
    written = 0
    for start, end in extents:
        position = start
        while end is None or position < end:
            stop = None if end is None else -(-end // SEGMENT_SIZE)
            batch_start, plain = reader.read_batch(position // SEGMENT_SIZE, stop)
            batch_end = batch_start + len(plain)
            if batch_end <= position:
                break  # past the end of the data
            upto = batch_end if end is None else min(end, batch_end)
            dst.write(plain[position - batch_start : upto - batch_start])
            written += upto - position
            position = upto
    return written


# -- edit lists and ranges ----------------------------------------------------------------------


def edit_list_extents(edit_list: Sequence[int] | None) -> list[Extent]:
    """The plaintext extents an edit list keeps: lengths alternate skip, keep, skip, ..."""
    if edit_list is None:
        return [(0, None)]
    extents: list[Extent] = []
    position = 0
    for number, length in enumerate(edit_list):
        if number % 2 and length:
            extents.append((position, position + length))
        position += length
    if len(edit_list) % 2:  # ends with a skip: the rest of the file is kept
        extents.append((position, None))
    return extents


def select_range(extents: Sequence[Extent], start: int, end: int | None) -> list[Extent]:
    """The part of ``extents`` that a range ``[start, end)`` of their concatenation covers."""
    if start < 0 or (end is not None and end <= start):
        raise InvalidRange(f"range {start}-{'' if end is None else end} is empty or negative")
    selected: list[Extent] = []
    logical = 0  # offset of the current extent in the kept (edited) stream
    for first, last in extents:
        length = None if last is None else last - first
        lo = max(start, logical)
        hi = (
            end
            if length is None
            else (logical + length if end is None else min(end, logical + length))
        )
        if hi is None or lo < hi:
            selected.append((first + lo - logical, None if hi is None else first + hi - logical))
        if length is None:
            break
        logical += length
        if end is not None and logical >= end:
            break
    return selected


# -- parallelism --------------------------------------------------------------------------------

# The cipher releases the GIL, so threads share the segments of a batch across cores.
_WORKERS = min(2, os.cpu_count() or 1)
_MIN_PARALLEL_SEGMENTS = 4
_pool: ThreadPoolExecutor | None = None


def _in_parallel(work: Callable[[int, int], None], count: int) -> None:
    """Run ``work(first, last)`` over segments ``[0, count)``, split between the workers."""
    global _pool
    if _WORKERS < 2 or count < _MIN_PARALLEL_SEGMENTS:
        work(0, count)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(_WORKERS - 1, thread_name_prefix="crypt4gh")
    middle = count // 2
    other_half = _pool.submit(work, middle, count)
    try:
        work(0, middle)
    finally:
        other_half.result()


class _WriteBehind:
    """Hands each write to a helper thread, so the next batch is read and processed meanwhile.

    At most one write is in flight: a caller that alternates two buffers may reuse a buffer as
    soon as ``write`` returns for the batch after it. Leaving the block waits for the last write
    and raises its error, if any.
    """

    _thread: ThreadPoolExecutor | None = None

    def __init__(self, dst: Writable) -> None:
        self._dst = dst
        self._pending: Future[object] | None = None

    def write(self, data: bytes | memoryview, /) -> None:
        self.wait()
        if _WriteBehind._thread is None:
            _WriteBehind._thread = ThreadPoolExecutor(1, thread_name_prefix="crypt4gh-write")
        self._pending = _WriteBehind._thread.submit(self._dst.write, data)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> _WriteBehind:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wait()


# -- stream helpers -----------------------------------------------------------------------------


def _read_full(src: BinaryIO, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``src`` unless the end comes first; returns the bytes read."""
    filled = 0
    while filled < len(buffer):
        n = src.readinto(buffer[filled:])  # type: ignore[attr-defined]
        if not n:
            break
        filled += n
    return filled


def _discard(src: BinaryIO, size: int) -> None:
    while size > 0:
        chunk = src.read(min(size, 1 << 20))
        if not chunk:
            return
        size -= len(chunk)
