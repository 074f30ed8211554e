"""The Crypt4GH data portion: 64 KiB plaintext segments, each sealed with ChaCha20-Poly1305.

An encrypted segment is nonce (12) + ciphertext + MAC (16), so a full one is 65,564 bytes and
plaintext byte ``p`` lives in segment ``p // 65536``. That arithmetic is what makes ranges cheap:
only the segments that hold the wanted bytes are read and decrypted.

Work is done in batches of segments, in a pipeline: while the pool's threads encrypt or decrypt
one batch (the cipher releases the GIL, so they use every core), the calling thread reads the
next batch or writes the previous one. All reads and writes happen on the calling thread, in
order. Two sets of reusable buffers alternate, so memory stays constant whatever the file size.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
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
    total = 0
    for sealed, size in _sealed_batches(src, session_key, counter_from=None):
        dst.write(sealed)
        total += size
        if progress:
            progress(size)
    return total


def counter_nonce(index: int) -> bytes:
    """The nonce of segment ``index`` in counter mode: the index as 12 little-endian bytes."""
    return index.to_bytes(NONCE_SIZE, "little")


def encrypt_segments_counter(src: BinaryIO, session_key: bytes, first: int = 0) -> Iterator[bytes]:
    """Encrypted segments ``first``, ``first + 1``, ... of the plaintext read from ``src`` (which
    must be positioned at segment ``first``), each sealed with :func:`counter_nonce` of its index.

    The output then depends only on the key and the plaintext, so an interrupted upload can
    regenerate the bytes it sent and resume at any segment. Safe only because each file gets a
    fresh random session key: one key must never seal two different plaintexts. Items are
    batches of whole segments (copies).
    """
    for sealed, _ in _sealed_batches(src, session_key, counter_from=first):
        yield bytes(sealed)


def _sealed_batches(
    src: BinaryIO, session_key: bytes, *, counter_from: int | None
) -> Iterator[tuple[memoryview, int]]:
    """Sealed batches and their plaintext sizes. Batch ``k + 1`` is read and sealed in the pool
    while the caller uses batch ``k``, whose view stays valid until the caller asks for more.
    Nonces are random, or the segment counter from ``counter_from``."""
    aead = ChaCha20Poly1305(session_key)
    slots = (_Slot(), _Slot())
    pending: tuple[_Job, memoryview, int] | None = None
    index = counter_from or 0
    for turn in itertools.count():
        slot = slots[turn % 2]
        n = _read_full(src, slot.plain)
        count = -(-n // SEGMENT_SIZE)
        if counter_from is None:
            nonces = os.urandom(NONCE_SIZE * count)
        else:
            nonces = b"".join(counter_nonce(index + number) for number in range(count))
        started = (_start_sealing(aead, slot, n, nonces), slot.sealed[: cipher_size(n)], n)
        if pending is not None:
            pending[0].wait()
            yield pending[1], pending[2]
        pending = started if n else None
        index += count
        if n < len(slot.plain):
            break
    if pending is not None:
        pending[0].wait()
        yield pending[1], pending[2]


def _start_sealing(aead: ChaCha20Poly1305, slot: _Slot, n: int, nonces: bytes) -> _Job:
    def seal(first: int, last: int) -> None:
        for index in range(first, last):
            plain, nonce, box = slot.parts(index, min(SEGMENT_SIZE, n - index * SEGMENT_SIZE))
            nonce[:] = nonces[index * NONCE_SIZE : (index + 1) * NONCE_SIZE]
            aead.encrypt_into(nonce, plain, None, box)

    return _Job(seal, -(-n // SEGMENT_SIZE))


# -- decryption ---------------------------------------------------------------------------------


@dataclass
class _Batch:
    """Segments ``[first, first + count)`` read into a slot, being or done being decrypted."""

    first: int
    count: int
    plain_len: int
    slot: int
    job: _Job

    def covers(self, index: int) -> bool:
        return self.first <= index < self.first + self.count


class SegmentReader:
    """Decrypts the data portion of ``src`` a batch of segments at a time, on demand.

    ``src`` must be positioned at the first segment. Seekable sources jump over segments that are
    not wanted; others are read forward and the skipped bytes are discarded undecrypted. After
    each batch the next one is read and decrypted ahead, since reads are mostly sequential;
    its errors surface only if it is asked for.
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
        self._slots = (_Slot(), _Slot())
        self._current: _Batch | None = None
        self._ahead: _Batch | None = None

    def read_batch(self, index: int, stop: int | None = None) -> tuple[int, memoryview]:
        """Plaintext of segments ``index`` up to ``stop`` (or a batch); empty past the end.

        Returns the plaintext offset of the first byte and a view valid until the next call.
        """
        current = self._current
        if current is None or not current.covers(index):
            current = self._take(index, stop)
        offset = (index - current.first) * SEGMENT_SIZE
        plain = self._slots[current.slot].plain
        return index * SEGMENT_SIZE, plain[offset : current.plain_len]

    def _take(self, index: int, stop: int | None) -> _Batch:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.covers(index):
            batch = ahead
        else:
            if ahead is not None:
                ahead.job.wait_quietly()  # its slot is about to be reused
            slot = 0 if self._current is None else 1 - self._current.slot
            batch = self._load(index, stop, slot)
        self._current = batch
        batch.job.wait()
        following = batch.first + batch.count
        if batch.count == BATCH_SEGMENTS and (stop is None or following < stop):
            self._ahead = self._load(following, stop, 1 - batch.slot)
        return batch

    def _load(self, index: int, stop: int | None, slot: int) -> _Batch:
        self._move_to(index)
        count = BATCH_SEGMENTS if stop is None else max(1, min(BATCH_SEGMENTS, stop - index))
        buffers = self._slots[slot]
        sealed_len = _read_full(self._src, buffers.sealed[: count * CIPHER_SEGMENT_SIZE])
        if self._progress and sealed_len:
            self._progress(sealed_len)
        read = -(-sealed_len // CIPHER_SEGMENT_SIZE)
        self._next_index = index + read
        job = _Job(partial(self._open_segments, index, buffers, sealed_len), read)
        return _Batch(index, read, sealed_len - read * (NONCE_SIZE + MAC_SIZE), slot, job)

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

    def _open_segments(
        self, first_index: int, slot: _Slot, sealed_len: int, first: int, last: int
    ) -> None:
        for number in range(first, last):
            length = min(CIPHER_SEGMENT_SIZE, sealed_len - number * CIPHER_SEGMENT_SIZE)
            if length <= NONCE_SIZE + MAC_SIZE:
                raise TruncatedData(
                    f"the data ends inside segment {first_index + number} ({length} bytes, at "
                    f"least {NONCE_SIZE + MAC_SIZE + 1} needed): the file is truncated; copy it "
                    "again whole"
                )
            plain, nonce, box = slot.parts(number, length - NONCE_SIZE - MAC_SIZE)
            self._open(nonce, box, plain, first_index + number)

    def _open(self, nonce: memoryview, box: memoryview, out: memoryview, index: int) -> None:
        """Decrypt one segment with whichever session key opens it."""
        preferred = self._preferred
        for position in (preferred, *range(len(self._ciphers))):
            try:
                self._ciphers[position].decrypt_into(nonce, box, None, out)
            except InvalidTag:
                continue
            self._preferred = position  # files usually use one key for a long run of segments
            return
        if len(out) < SEGMENT_SIZE:
            raise SegmentAuthenticationFailed(
                f"the last data segment ({index}, {len(out) + NONCE_SIZE + MAC_SIZE} bytes) fails "
                "authentication: the file is truncated or corrupted; copy it again whole"
            )
        raise SegmentAuthenticationFailed(
            f"data segment {index} fails authentication: the file is corrupted or was tampered "
            "with; obtain an intact copy"
        )


def decrypt_extents(reader: SegmentReader, dst: Writable, extents: Sequence[Extent]) -> int:
    """Write the plaintext of each extent, in order; returns the bytes written."""
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

_WORKERS = min(2, os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None


class _Job:
    """``work(first, last)`` over segments ``[0, count)``, in chunks shared between threads.

    The pool's threads start on the chunks at once; ``wait`` has the calling thread take the
    chunks still left, so no core idles. Errors are kept and raised by ``wait``, the earliest
    chunk's first, so the message names the first bad segment.
    """

    CHUNK_SEGMENTS = 8

    def __init__(self, work: Callable[[int, int], None], count: int) -> None:
        self._work = work
        self._chunks = [
            (first, min(first + self.CHUNK_SEGMENTS, count))
            for first in range(0, count, self.CHUNK_SEGMENTS)
        ]
        self._claimed = 0
        self._lock = threading.Lock()
        self._errors: dict[int, Exception] = {}
        # The calling thread works too: one helper per other core keeps every core busy
        # without more runnable threads than cores.
        helpers = min(_WORKERS - 1, len(self._chunks) - 1)
        self._helpers = [_executor().submit(self._run) for _ in range(helpers)]
        if not self._helpers:
            self._run()  # one chunk: not worth a thread

    def _run(self) -> None:
        while True:
            with self._lock:
                number, self._claimed = self._claimed, self._claimed + 1
            if number >= len(self._chunks):
                return
            try:
                self._work(*self._chunks[number])
            except Exception as error:
                self._errors[number] = error

    def wait(self) -> None:
        self.wait_quietly()
        if self._errors:
            raise self._errors[min(self._errors)]

    def wait_quietly(self) -> None:
        """Finish the work (helping with it), leaving its errors unraised."""
        self._run()
        for helper in self._helpers:
            helper.result()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="crypt4gh")
    return _pool


class _Slot:
    """Buffers for one batch, plaintext and encrypted, with views of every segment's parts.

    The views are made once: slicing per segment would cost more than it seems on a hot path
    that handles 16,000 segments per GiB.
    """

    def __init__(self) -> None:
        self.plain = memoryview(bytearray(SEGMENT_SIZE * BATCH_SEGMENTS))
        self.sealed = memoryview(bytearray(CIPHER_SEGMENT_SIZE * BATCH_SEGMENTS))
        self._full = [self._cut(index, SEGMENT_SIZE) for index in range(BATCH_SEGMENTS)]

    def parts(self, index: int, size: int) -> tuple[memoryview, memoryview, memoryview]:
        """Segment ``index`` holding ``size`` plaintext bytes: plaintext, nonce, ciphertext+MAC."""
        return self._full[index] if size == SEGMENT_SIZE else self._cut(index, size)

    def _cut(self, index: int, size: int) -> tuple[memoryview, memoryview, memoryview]:
        plain_at, sealed_at = index * SEGMENT_SIZE, index * CIPHER_SEGMENT_SIZE
        box_at = sealed_at + NONCE_SIZE
        return (
            self.plain[plain_at : plain_at + size],
            self.sealed[sealed_at:box_at],
            self.sealed[box_at : box_at + size + MAC_SIZE],
        )


# -- stream helpers -----------------------------------------------------------------------------


def _read_full(src: BinaryIO, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``src`` unless the end comes first; returns the bytes read."""
    readinto = getattr(src, "readinto", None) or _readinto_with_read(src)
    filled = 0
    while filled < len(buffer):
        n = readinto(buffer[filled:])
        if not n:
            break
        filled += n
    return filled


def _readinto_with_read(src: BinaryIO) -> Callable[[memoryview], int]:
    """``readinto`` for a source that only has ``read``."""

    def readinto(buffer: memoryview) -> int:
        data = src.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    return readinto


def _discard(src: BinaryIO, size: int) -> None:
    while size > 0:
        chunk = src.read(min(size, 1 << 20))
        if not chunk:
            return
        size -= len(chunk)
