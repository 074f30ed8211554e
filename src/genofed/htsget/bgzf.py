"""BGZF (SAMv1 §4.1): the blocked gzip that BAM, BCF, bgzipped VCF, BAI-less indexes share.

A BGZF file is a series of gzip members of at most 64 KiB each, whose gzip header carries the
member's size in a ``BC`` extra subfield. That size is what lets the planner jump from block to
block without inflating, and a *virtual offset* (``coffset << 16 | uoffset``) names a byte
inside the uncompressed stream as "block starting at ``coffset``, byte ``uoffset`` of it".
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from genofed.htsget.errors import InvalidFile

Reader = Callable[[int, int], bytes]
"""Reads the plaintext bytes ``[start, end)`` of a file (fewer only at the end of the file)."""

EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
"""The empty block every BGZF file ends with (SAMv1 §4.1.2): readers use it to spot truncation."""

MAX_BLOCK_SIZE = 65536
"""A block, header and trailer included, never exceeds 64 KiB (BSIZE is a 16-bit field)."""

MAX_INPUT = 65280
"""The most uncompressed bytes put in one block: even incompressible data then fits (as htslib)."""

_FIXED_HEADER = 12  # ID1 ID2 CM FLG MTIME(4) XFL OS XLEN(2)
_TRAILER = 8  # CRC32 ISIZE


class InvalidBgzf(InvalidFile):
    """Bytes that should be a BGZF block are not one (wrong magic, no BC field, bad CRC)."""


@dataclass(frozen=True)
class Block:
    """One BGZF block: where it starts in the file, its size there, and its inflated data."""

    offset: int
    size: int
    data: bytes

    @property
    def end(self) -> int:
        """The file offset just past the block, where the next one starts."""
        return self.offset + self.size


def make_voffset(coffset: int, uoffset: int) -> int:
    """Pack a block's file offset and an offset inside its inflated data into a virtual offset."""
    return (coffset << 16) | uoffset


def split_voffset(voffset: int) -> tuple[int, int]:
    """Unpack a virtual offset into ``(block file offset, offset inside the inflated block)``."""
    return voffset >> 16, voffset & 0xFFFF


def block_size(header: bytes, where: int = 0) -> int:
    """The total size of the block whose gzip header starts ``header`` (from the BC subfield).

    ``header`` must hold at least the fixed 12 bytes and the extra field; ``where`` is only used
    in error messages, so that they name the file offset of the broken block.
    """
    if len(header) < _FIXED_HEADER:
        raise InvalidBgzf(f"truncated BGZF block header at byte {where}")
    id1, id2, cm, flg, _mtime, _xfl, _os, xlen = struct.unpack_from("<BBBBIBBH", header)
    if (id1, id2, cm) != (31, 139, 8) or not flg & 4:
        raise InvalidBgzf(f"no BGZF block at byte {where}: not a gzip member with an extra field")
    extra = header[_FIXED_HEADER : _FIXED_HEADER + xlen]
    if len(extra) < xlen:
        raise InvalidBgzf(f"truncated BGZF extra field at byte {where}")
    pos = 0
    while pos + 4 <= len(extra):
        si1, si2, slen = struct.unpack_from("<BBH", extra, pos)
        if (si1, si2, slen) == (66, 67, 2) and pos + 6 <= len(extra):
            return int(struct.unpack_from("<H", extra, pos + 4)[0]) + 1
        pos += 4 + slen
    raise InvalidBgzf(f"the gzip member at byte {where} has no BC subfield: not BGZF")


def header_length(header: bytes, where: int = 0) -> int:
    """The length of a block's gzip header (fixed part plus extra field)."""
    if len(header) < _FIXED_HEADER:
        raise InvalidBgzf(f"truncated BGZF block header at byte {where}")
    return _FIXED_HEADER + int(struct.unpack_from("<H", header, 10)[0])


def parse_block(buffer: bytes, pos: int = 0, where: int | None = None) -> Block:
    """Inflate the block starting at ``buffer[pos]``, checking its CRC32 and length.

    ``where`` is the block's offset in the file (defaults to ``pos``), used for ``Block.offset``
    and in error messages.
    """
    offset = pos if where is None else where
    size = block_size(buffer[pos : pos + MAX_BLOCK_SIZE], offset)
    raw = buffer[pos : pos + size]
    if len(raw) < size:
        raise InvalidBgzf(f"truncated BGZF block at byte {offset}: {len(raw)} of {size} bytes")
    start = header_length(raw, offset)
    crc, isize = struct.unpack_from("<II", raw, size - _TRAILER)
    try:
        data = zlib.decompress(raw[start : size - _TRAILER], -15)
    except zlib.error as error:
        raise InvalidBgzf(f"corrupt deflate data in the BGZF block at byte {offset}") from error
    if len(data) != isize or zlib.crc32(data) != crc:
        raise InvalidBgzf(f"the BGZF block at byte {offset} fails its CRC32/ISIZE check")
    return Block(offset, size, data)


def iter_blocks(buffer: bytes, where: int = 0) -> Iterator[Block]:
    """Every block in ``buffer``, which holds whole blocks and starts at file offset ``where``."""
    pos = 0
    while pos < len(buffer):
        block = parse_block(buffer, pos, where + pos)
        yield block
        pos += block.size


def read_block_size(read: Reader, offset: int) -> int:
    """The size of the block at file ``offset``, reading only its gzip header."""
    head = read(offset, offset + 18)  # the usual header: the fixed part and one BC subfield
    extra_end = header_length(head, offset)
    if extra_end > len(head):
        head = read(offset, offset + extra_end)
    return block_size(head, offset)


def decompress(data: bytes) -> bytes:
    """Inflate a whole BGZF buffer held in memory (small files only, such as indexes)."""
    return b"".join(block.data for block in iter_blocks(data))


def compress_block(data: bytes, level: int = 6) -> bytes:
    """One BGZF block holding ``data`` (at most ``MAX_INPUT`` bytes)."""
    if len(data) > MAX_INPUT:
        raise ValueError(f"a BGZF block holds at most {MAX_INPUT} bytes, not {len(data)}")
    deflater = zlib.compressobj(level, zlib.DEFLATED, -15)
    payload = deflater.compress(data) + deflater.flush()
    size = 18 + len(payload) + _TRAILER
    header = struct.pack("<BBBBIBBHBBHH", 31, 139, 8, 4, 0, 0, 0xFF, 6, 66, 67, 2, size - 1)
    return header + payload + struct.pack("<II", zlib.crc32(data), len(data))


def compress(data: bytes, level: int = 6) -> bytes:
    """BGZF blocks holding ``data`` (no EOF block: the caller decides where the file ends).

    Used to re-compress the part of a block a response keeps; level 6 is zlib's default, a
    good trade between response size and the CPU spent per request.
    """
    return b"".join(
        compress_block(data[i : i + MAX_INPUT], level) for i in range(0, len(data), MAX_INPUT)
    )


class BgzfStream:
    """The uncompressed stream of a BGZF file read from its start, for parsing headers.

    It fetches the file in batches (few calls to ``read``, which may decrypt) and inflates one
    block at a time, so memory stays at a batch plus a block whatever the file size. ``tell``
    gives the virtual offset of the next unread byte, canonical (at a block's end it names the
    next block, offset 0) as htslib writes them in indexes.
    """

    def __init__(self, read: Reader, size: int, max_batch: int = 16 * MAX_BLOCK_SIZE) -> None:
        self._read = read
        self._size = size
        self._batch = MAX_BLOCK_SIZE  # doubles on each refill up to max_batch: most headers
        self._max_batch = max(max_batch, MAX_BLOCK_SIZE)  # fit in the first block
        self._buffer = b""
        self._buffer_at = 0  # file offset of self._buffer[0]
        self._block = Block(0, 0, b"")
        self._pos = 0  # in self._block.data

    def tell(self) -> int:
        """The virtual offset of the next unread byte, without reading ahead: at a block's end,
        the next block's offset (and 0)."""
        if self._pos >= len(self._block.data):
            return make_voffset(self._block.end, 0)
        return make_voffset(self._block.offset, self._pos)

    def read_some(self) -> tuple[int, bytes]:
        """The virtual offset and bytes of the unread rest of the current (or next non-empty)
        block; the bytes are empty only at the end of the stream."""
        self._skip_exhausted()
        at = self.tell()
        out = self._block.data[self._pos :]
        self._pos = len(self._block.data)
        return at, out

    def read(self, n: int, what: str = "data") -> bytes:
        """Exactly ``n`` bytes of the stream; raises ``InvalidFile`` if it ends first."""
        parts: list[bytes] = []
        self._consume(n, what, parts.append)
        return b"".join(parts)

    def skip(self, n: int, what: str = "data") -> None:
        """Move ``n`` bytes on without keeping them (say, a BAM header's text)."""
        self._consume(n, what, lambda part: None)

    def _consume(self, n: int, what: str, sink: Callable[[bytes], None]) -> None:
        missing = n
        while missing:
            self._skip_exhausted()
            part = self._block.data[self._pos : self._pos + missing]
            if not part:
                raise InvalidFile(f"the file ends inside its {what} ({n} bytes expected)")
            self._pos += len(part)
            missing -= len(part)
            sink(part)

    def _skip_exhausted(self) -> None:
        """Move past consumed and empty blocks, stopping at the file's end."""
        while self._pos >= len(self._block.data) and self._block.end < self._size:
            self._block = self._load(self._block.end)
            self._pos = 0

    def _load(self, offset: int) -> Block:
        """The block at file ``offset``, refilling the buffer unless it holds the whole block."""
        rel = offset - self._buffer_at
        buffer_end = self._buffer_at + len(self._buffer)
        whole = rel >= 0 and (rel + MAX_BLOCK_SIZE <= len(self._buffer) or buffer_end >= self._size)
        if not whole:
            self._buffer = self._read(offset, min(self._size, offset + self._batch))
            self._buffer_at, rel = offset, 0
            self._batch = min(2 * self._batch, self._max_batch)
        return parse_block(self._buffer, rel, offset)
