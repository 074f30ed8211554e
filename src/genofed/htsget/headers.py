"""The headers of BGZF-compressed BAM, BCF and VCF files: reference names and where they end.

The planner needs two things from a header: the reference names in the order the index numbers
them (a query names a reference, the index knows only its number), and the virtual offset of
the first record, so that the header can be served alone and never repeated before the data.
Both come from the header itself, read from the start of the file block by block.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from genofed.htsget.bgzf import BgzfStream
from genofed.htsget.errors import InvalidFile

MAX_HEADER_TEXT = 256 << 20
"""Header text longer than this is refused rather than held in memory (real ones are < 100 MB)."""

_CONTIG_LINE = re.compile(r"^##contig=<(.*)>\s*$")
_ID = re.compile(r"(?:^|,)ID=([^,>]+)")
_IDX = re.compile(r"(?:^|,)IDX=(\d+)")


@dataclass(frozen=True)
class FileHeader:
    """What the planner needs from a header."""

    names: tuple[str, ...]
    """Reference names, position = the reference's number in the index (gaps are ``""``)."""
    end: int
    """The virtual offset of the first record (or of the end of the data if there is none)."""


def _i32(stream: BgzfStream, what: str) -> int:
    return int(struct.unpack("<i", stream.read(4, what))[0])


def _text_length(value: int, fmt: str) -> int:
    if not 0 <= value <= MAX_HEADER_TEXT:
        raise InvalidFile(f"unsupported {fmt} header: its text length is {value} bytes")
    return value


def read_bam_header(stream: BgzfStream) -> FileHeader:
    """A BAM header (SAMv1 §4.2): magic, l_text, text, n_ref, then (l_name, name, l_ref) each.

    The names come from the binary reference list, which is what BAM records and indexes number.
    """
    magic = stream.read(4, "BAM magic")
    if magic != b"BAM\1":
        raise InvalidFile(f"not a BAM file: it starts with {magic!r}, not b'BAM\\x01'")
    l_text = _i32(stream, "BAM header")
    if l_text < 0:
        raise InvalidFile(f"corrupt BAM header: l_text = {l_text}")
    stream.skip(l_text, "BAM header text")
    n_ref = _i32(stream, "BAM header")
    if n_ref < 0:
        raise InvalidFile(f"corrupt BAM header: n_ref = {n_ref}")
    names = []
    for _ in range(n_ref):
        l_name = _i32(stream, "BAM reference list")
        if not 1 <= l_name <= 1 << 16:
            raise InvalidFile(f"corrupt BAM header: a reference name of {l_name} bytes")
        names.append(stream.read(l_name, "BAM reference list").rstrip(b"\0").decode())
        _i32(stream, "BAM reference list")
    return FileHeader(tuple(names), stream.tell())


def read_bcf_header(stream: BgzfStream) -> FileHeader:
    """A BCF2 header: magic ``BCF\\2\\x01`` or ``BCF\\2\\x02``, l_text, then VCF header text.

    Records number their contig by its place in the header's contig dictionary.
    """
    magic = stream.read(5, "BCF magic")
    if magic[:4] != b"BCF\2" or magic[4] not in (1, 2):
        raise InvalidFile(f"not a BCF2 file: it starts with {magic!r}")
    l_text = _text_length(int(struct.unpack("<I", stream.read(4, "BCF header"))[0]), "BCF")
    text = stream.read(l_text, "BCF header text")
    return FileHeader(contig_dictionary(text.decode("utf-8", "replace")), stream.tell())


def read_vcf_header(stream: BgzfStream) -> FileHeader:
    """The ``#`` lines at the start of a bgzipped VCF; ``names`` is its contig dictionary (the
    numbering a CSI without tabix names uses)."""
    parts: list[bytes] = []
    length = 0
    at_line_start = True
    while True:
        at, chunk = stream.read_some()
        if not chunk:
            break
        cut = _first_data_line(chunk, at_line_start)
        if cut is not None:
            parts.append(chunk[:cut])
            return FileHeader(_vcf_names(parts), at + cut)
        parts.append(chunk)
        length += len(chunk)
        if length > MAX_HEADER_TEXT:
            raise InvalidFile(f"unsupported VCF: its header is over {MAX_HEADER_TEXT} bytes")
        at_line_start = chunk.endswith(b"\n")
    return FileHeader(_vcf_names(parts), stream.tell())


def _first_data_line(chunk: bytes, at_line_start: bool) -> int | None:
    """The offset in ``chunk`` of the first line not starting with ``#``, if it has one."""
    if at_line_start and not chunk.startswith(b"#"):
        return 0
    pos = chunk.find(b"\n")
    while pos != -1 and pos + 1 < len(chunk):
        if chunk[pos + 1] != ord("#"):
            return pos + 1
        pos = chunk.find(b"\n", pos + 1)
    return None


def _vcf_names(parts: list[bytes]) -> tuple[str, ...]:
    text = b"".join(parts).decode("utf-8", "replace")
    if not text.startswith("##fileformat=VCF"):
        raise InvalidFile("not a VCF file: it does not start with ##fileformat=VCF")
    return contig_dictionary(text)


def contig_dictionary(text: str) -> tuple[str, ...]:
    """The contig names of a VCF header by dictionary number, as BCF and CSI number them.

    A ``##contig`` line takes the number in its ``IDX=`` field if it has one, otherwise the
    number of contigs declared before it (so, without IDX, the order of the lines).
    """
    numbered: dict[int, str] = {}
    for line in text.splitlines():
        match = _CONTIG_LINE.match(line)
        if not match:
            continue
        name = _ID.search(match.group(1))
        if not name:
            raise InvalidFile(f"a ##contig line without an ID: {line[:80]!r}")
        idx = _IDX.search(match.group(1))
        numbered.setdefault(int(idx.group(1)) if idx else len(numbered), name.group(1))
    size = max(numbered, default=-1) + 1
    return tuple(numbered.get(i, "") for i in range(size))
