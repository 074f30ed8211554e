"""Just enough of CRAM 3.x to serve it by whole containers: the file definition, container
headers (to know where a container ends), the SAM header text in the header container, and the
EOF container.

A CRAM file is a 26-byte file definition, a header container whose first block holds the SAM
header, data containers (each self-contained: the CRAI names their offsets), and a 38-byte EOF
container. Serving a region is header + the region's containers + EOF; nothing is re-encoded.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from genofed.htsget.errors import InvalidFile

Reader = Callable[[int, int], bytes]

FILE_DEFINITION_SIZE = 26
"""``CRAM``, major and minor version bytes, and a 20-byte file id."""

EOF_CONTAINER_3 = bytes.fromhex(
    "0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b"
)
"""The EOF container CRAM 3.0 and 3.1 files end with (a container of no records)."""

_BLOCK_METHODS = {0: "raw", 1: "gzip", 2: "bzip2", 3: "lzma", 4: "rans4x8", 5: "rans4x16"}
_MAX_CONTAINER_HEADER = 1 << 20


class _NeedMore(Exception):
    """The bytes read so far end inside the structure being parsed: read more and retry."""


class Fields:
    """ITF8/LTF8 and little-endian integers from a byte string."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _NeedMore
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int32(self) -> int:
        return int(struct.unpack("<i", self.take(4))[0])

    def itf8(self) -> int:
        """A signed 32-bit integer in 1 to 5 bytes; the count of leading 1 bits of the first
        byte says how many bytes follow."""
        first = self.take(1)[0]
        extra = _leading_ones(first, 4)
        rest = self.take(extra)
        if extra < 4:
            value = first & (0xFF >> (extra + 1))
            for byte in rest:
                value = (value << 8) | byte
        else:  # 4 high bits of the first byte, 8+8+8 bits, then only the low nibble of the last
            value = (first & 0x0F) << 28 | rest[0] << 20 | rest[1] << 12 | rest[2] << 4
            value |= rest[3] & 0x0F
        return value - (1 << 32) if value >= 1 << 31 else value

    def ltf8(self) -> int:
        """A signed 64-bit integer in 1 to 9 bytes, the same way as ITF8 but up to 8 extra."""
        first = self.take(1)[0]
        extra = _leading_ones(first, 8)
        value = first & (0xFF >> (extra + 1)) if extra < 8 else 0
        for byte in self.take(extra):
            value = (value << 8) | byte
        return value - (1 << 64) if value >= 1 << 63 else value


def _leading_ones(byte: int, limit: int) -> int:
    count = 0
    while count < limit and byte & (0x80 >> count):
        count += 1
    return count


@dataclass(frozen=True)
class Container:
    """A container header: where the container starts and ends, and what it holds."""

    offset: int
    header_size: int
    length: int
    ref_seq_id: int
    n_blocks: int

    @property
    def data_start(self) -> int:
        """Where its first block starts."""
        return self.offset + self.header_size

    @property
    def end(self) -> int:
        """Where the next container starts."""
        return self.data_start + self.length


@dataclass(frozen=True)
class CramHeader:
    """The file definition and SAM header text of a CRAM file."""

    major: int
    minor: int
    text: str
    end: int
    """Where the header container ends: the offset of the first data container."""

    @property
    def reference_names(self) -> tuple[str, ...]:
        """The ``SN`` of each ``@SQ`` line, in order: CRAM reference ids index this list."""
        names = []
        for line in self.text.splitlines():
            if line.startswith("@SQ\t"):
                tags = dict(f.split(":", 1) for f in line.split("\t")[1:] if ":" in f)
                if "SN" not in tags:
                    raise InvalidFile(f"a CRAM @SQ header line without SN: {line[:80]!r}")
                names.append(tags["SN"])
        return tuple(names)


def _parse_with_growth(
    read: Reader, offset: int, size: int, parse: Callable[[bytes], Container]
) -> Container:
    """Parse a structure of unknown length at ``offset``, reading more until it fits."""
    want = 256
    while True:
        data = read(offset, min(size, offset + want))
        try:
            return parse(data)
        except _NeedMore:
            if offset + want >= size or want >= _MAX_CONTAINER_HEADER:
                raise InvalidFile(
                    f"truncated or oversized CRAM container header at byte {offset}"
                ) from None
            want *= 4


def read_container(read: Reader, offset: int, size: int, major: int = 3) -> Container:
    """The container header at ``offset`` (CRAM 3.x: it ends with a CRC32)."""

    def parse(data: bytes) -> Container:
        buf = Fields(data)
        length = buf.int32()
        ref_seq_id = buf.itf8()
        buf.itf8(), buf.itf8(), buf.itf8()  # alignment start, span, number of records
        buf.ltf8(), buf.ltf8()  # record counter, bases
        n_blocks = buf.itf8()
        n_landmarks = buf.itf8()
        if length < 0 or n_blocks < 0 or not 0 <= n_landmarks <= _MAX_CONTAINER_HEADER:
            raise InvalidFile(f"corrupt CRAM container header at byte {offset}")
        for _ in range(n_landmarks):
            buf.itf8()
        if major >= 3:
            crc = int(struct.unpack("<I", buf.take(4))[0])
            if zlib.crc32(data[: buf.pos - 4]) != crc:
                raise InvalidFile(f"the CRAM container header at byte {offset} fails its CRC32")
        return Container(offset, buf.pos, length, ref_seq_id, n_blocks)

    container = _parse_with_growth(read, offset, size, parse)
    if container.end > size:
        raise InvalidFile(f"the CRAM container at byte {offset} runs past the end of the file")
    return container


def read_header(read: Reader, size: int) -> CramHeader:
    """The file definition and the SAM header text from the first block of the header container.

    That block is raw or gzip-compressed in practice; other methods are refused by name.
    """
    definition = read(0, FILE_DEFINITION_SIZE)
    if len(definition) < FILE_DEFINITION_SIZE or definition[:4] != b"CRAM":
        raise InvalidFile(f"not a CRAM file: it starts with {definition[:4]!r}, not b'CRAM'")
    major, minor = definition[4], definition[5]
    if major != 3:
        raise InvalidFile(f"unsupported CRAM version {major}.{minor}: only CRAM 3.x is served")
    container = read_container(read, FILE_DEFINITION_SIZE, size, major)
    if container.n_blocks < 1:
        raise InvalidFile("corrupt CRAM file: its header container has no block")
    data = read(container.data_start, container.end)
    if len(data) < container.length:
        raise InvalidFile("truncated CRAM file: it ends inside its header container")
    text = _header_text(_first_block(data, container.data_start))
    return CramHeader(major, minor, text, container.end)


def _first_block(data: bytes, where: int) -> bytes:
    """The uncompressed content of the block at the start of ``data``."""
    buf = Fields(data)
    try:
        method = buf.take(1)[0]
        buf.take(1)  # content type: FILE_HEADER
        buf.itf8()  # content id
        compressed, raw = buf.itf8(), buf.itf8()
        if compressed < 0 or raw < 0:
            raise InvalidFile(f"corrupt CRAM block at byte {where}")
        payload = buf.take(compressed)
    except _NeedMore:
        raise InvalidFile(f"truncated CRAM header block at byte {where}") from None
    if method == 0:
        return payload
    if method == 1:
        try:
            return gzip.decompress(payload)
        except (OSError, EOFError, zlib.error) as error:
            raise InvalidFile(
                f"corrupt gzip data in the CRAM header block at byte {where}"
            ) from error
    name = _BLOCK_METHODS.get(method, f"method {method}")
    raise InvalidFile(
        f"the CRAM header block at byte {where} is compressed with {name}; "
        "only raw and gzip header blocks are supported"
    )


def _header_text(content: bytes) -> str:
    """The SAM header text: an int32 length then that many bytes (the rest is padding)."""
    if len(content) < 4:
        raise InvalidFile("corrupt CRAM header block: shorter than its length field")
    length = int(struct.unpack_from("<i", content)[0])
    if not 0 <= length <= len(content) - 4:
        raise InvalidFile(f"corrupt CRAM header block: a text length of {length} bytes")
    return content[4 : 4 + length].rstrip(b"\0").decode("utf-8", "replace")


def read_eof_container(read: Reader, size: int) -> bytes:
    """The EOF container at the end of a CRAM 3.x file, checked, to end a served file with."""
    tail = read(size - len(EOF_CONTAINER_3), size) if size >= len(EOF_CONTAINER_3) else b""
    if tail != EOF_CONTAINER_3:
        raise InvalidFile("truncated CRAM file: it does not end with the CRAM 3 EOF container")
    return tail
