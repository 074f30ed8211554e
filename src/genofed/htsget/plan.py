"""Plan an htsget v1.3 response: the pieces whose bytes, concatenated, are a valid file holding
the header and every record overlapping the requested regions; and render each piece.

This is the pure core of the htsget route. The route knows the file's plaintext size, gives a
``read(start, end)`` callable over the plaintext (decrypting on the fly) and the index bytes, and
turns each ``Piece`` into a ticket URL. Nothing here touches HTTP, storage or the database.

Pieces for BGZF formats (BAM, VCF, BCF) follow the index's chunks: blocks wholly inside a chunk
are served raw, and a block a chunk starts or ends inside is inflated, cut at the chunk's
virtual offset and re-compressed, so no record (and no header) is served twice. CRAM is served
by whole containers. Every served file ends with the format's EOF marker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from genofed.htsget import bgzf, cram
from genofed.htsget.errors import HtsgetError, InvalidFile
from genofed.htsget.headers import (
    FileHeader,
    read_bam_header,
    read_bcf_header,
    read_vcf_header,
)
from genofed.htsget.indexes import (
    BinningIndex,
    Chunk,
    CraiIndex,
    InvalidIndex,
    merge_chunks,
    parse_index,
)

Reader = Callable[[int, int], bytes]
"""Reads the plaintext bytes ``[start, end)`` of the file being served."""

UNPLACED = "*"
"""The htsget reference name of unplaced reads (no reference, no position)."""

RENDER_CHUNK = 1 << 20
"""Raw pieces are streamed in reads of this size, whatever their length."""

_INDEX_KINDS = {"BAM": ("bai", "csi"), "CRAM": ("crai",), "VCF": ("tbi", "csi"), "BCF": ("csi",)}


class Format(StrEnum):
    """The htsget formats: reads (BAM, CRAM) and variants (VCF as bgzipped text, BCF)."""

    BAM = "BAM"
    CRAM = "CRAM"
    VCF = "VCF"
    BCF = "BCF"


class UnknownReference(HtsgetError):
    """The request names a reference the file does not have (htsget ``NotFound``)."""


class InvalidRange(HtsgetError):
    """A region with a negative start or end, a start after its end, or a range on ``*``
    (htsget ``InvalidRange``)."""


@dataclass(frozen=True)
class Region:
    """A reference name and an optional 0-based, half-open range, as in htsget requests."""

    reference_name: str
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class Piece:
    """A part of the response.

    Either ``literal`` bytes (an EOF marker); or the plaintext bytes ``[start, end)`` served
    as they are; or, when ``trimmed``, the BGZF blocks in ``[start, end)`` inflated, their
    uncompressed bytes cut to ``[trim_start:trim_end]`` and compressed again as BGZF.
    """

    start: int
    end: int
    trim_start: int = 0
    trim_end: int | None = None
    literal: bytes | None = None

    @property
    def trimmed(self) -> bool:
        """Whether the piece must be re-compressed rather than served as stored."""
        return self.literal is None and (self.trim_start != 0 or self.trim_end is not None)

    @classmethod
    def of_bytes(cls, data: bytes) -> Piece:
        """A piece of literal bytes."""
        return cls(0, 0, literal=data)


def plan(
    fmt: Format | str,
    index: bytes,
    index_kind: str,
    size: int,
    read: Reader,
    *,
    regions: Sequence[Region] | None = None,
    header_only: bool = False,
) -> list[Piece]:
    """The pieces of the response to an htsget request on a file of ``size`` plaintext bytes.

    ``header_only`` (htsget ``class=header``) gives the header and an EOF marker; regions are
    then ignored (the route rejects the combination if it wants to). Without regions the whole
    file is one raw piece. Otherwise the header, each region's records, then an EOF marker.

    Raises ``InvalidIndex`` or ``InvalidFile`` for broken inputs, ``UnknownReference`` and
    ``InvalidRange`` for requests the file cannot answer.
    """
    fmt = _format(fmt)
    kind = index_kind.lower().lstrip(".")
    if kind not in _INDEX_KINDS[fmt]:
        expected = " or ".join(f".{k}" for k in _INDEX_KINDS[fmt])
        raise InvalidIndex(f"a .{kind} index cannot index a {fmt} file: expected {expected}")
    for region in regions or ():
        _check_range(region)
    if not regions and not header_only:
        return [Piece(0, size)]  # the whole file: the index is not needed
    parsed = parse_index(index, kind)
    if fmt is Format.CRAM:
        assert isinstance(parsed, CraiIndex)
        return _plan_cram(parsed, size, read, [] if header_only else list(regions or ()))
    assert isinstance(parsed, BinningIndex)
    return _plan_bgzf(fmt, parsed, size, read, [] if header_only else list(regions or ()))


def render(piece: Piece, read: Reader, chunk_size: int = RENDER_CHUNK) -> Iterator[bytes]:
    """The bytes of ``piece``, in parts of at most ``chunk_size`` bytes for raw pieces.

    A trimmed piece covers a block or two, so inflating and re-compressing it stays small.
    """
    if piece.literal is not None:
        yield piece.literal
        return
    if not piece.trimmed:
        for pos in range(piece.start, piece.end, chunk_size):
            yield _read_exact(read, pos, min(piece.end, pos + chunk_size))
        return
    raw = _read_exact(read, piece.start, piece.end)
    data = b"".join(block.data for block in bgzf.iter_blocks(raw, piece.start))
    kept = data[piece.trim_start : piece.trim_end]
    if kept:
        yield bgzf.compress(kept)


def _format(fmt: Format | str) -> Format:
    try:
        return Format(str(fmt).upper())
    except ValueError:
        known = ", ".join(Format)
        raise HtsgetError(f"unknown htsget format {fmt!r}: expected one of {known}") from None


def _check_range(region: Region) -> None:
    """Refuse ranges htsget calls invalid; the reference itself is checked against the file."""
    start, end = region.start, region.end
    if region.reference_name == UNPLACED and (start is not None or end is not None):
        raise InvalidRange("unplaced reads ('*') have no positions: give no start or end")
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise InvalidRange(f"negative start or end in {region.reference_name}:{start}-{end}")
    if start is not None and end is not None and start > end:
        raise InvalidRange(f"start {start} is after end {end} in {region.reference_name}")


def _read_exact(read: Reader, start: int, end: int) -> bytes:
    data = read(start, end)
    if len(data) != end - start:
        raise InvalidFile(f"the file ends early: {len(data)} of {end - start} bytes at {start}")
    return data


# --- BGZF formats --------------------------------------------------------------------------------


def _plan_bgzf(
    fmt: Format, index: BinningIndex, size: int, read: Reader, regions: list[Region]
) -> list[Piece]:
    """Header chunk + each region's chunks, merged, as pieces, then the BGZF EOF block."""
    header = _read_bgzf_header(fmt, read, size)
    names = _reference_names(fmt, index, header)
    data_end = bgzf.make_voffset(_data_end(read, size), 0)
    chunks = [Chunk(0, header.end)]
    for region in regions:
        found = _region_chunks(fmt, index, names, region, header, data_end)
        # Nothing before the header's end is data: clip, so the header is never served twice.
        chunks += (Chunk(max(c.begin, header.end), c.end) for c in found)
    pieces = [p for c in merge_chunks(chunks) for p in _chunk_pieces(c, read, size)]
    return [*_coalesce(pieces), Piece.of_bytes(bgzf.EOF_BLOCK)]


def _read_bgzf_header(fmt: Format, read: Reader, size: int) -> FileHeader:
    stream = bgzf.BgzfStream(read, size)
    if fmt is Format.BAM:
        return read_bam_header(stream)
    if fmt is Format.BCF:
        return read_bcf_header(stream)
    return read_vcf_header(stream)


def _reference_names(fmt: Format, index: BinningIndex, header: FileHeader) -> tuple[str, ...]:
    """The names in the order the index numbers its references.

    BAM and BCF records number references by their header; a TBI, or a CSI with tabix aux data,
    lists its own names (the contigs that have records, in file order); a CSI without them on a
    VCF follows the header's contig dictionary, as BCF does.
    """
    if fmt is Format.VCF and index.tabix is not None:
        return index.tabix.names
    return header.names


def _region_chunks(
    fmt: Format,
    index: BinningIndex,
    names: tuple[str, ...],
    region: Region,
    header: FileHeader,
    data_end: int,
) -> list[Chunk]:
    """The chunks of one region; for ``*``, from the end of the last indexed chunk (unplaced
    reads sort last in a coordinate-sorted BAM) to the end of the data."""
    if region.reference_name == UNPLACED:
        if fmt is not Format.BAM:
            raise UnknownReference(f"'*' (unplaced reads) only exists in BAM and CRAM, not {fmt}")
        last = index.last_offset()
        return [Chunk(header.end if last is None else last, data_end)]
    if region.reference_name not in names and region.reference_name in header.names:
        return []  # a contig the header declares but the tabix names omit: it has no records
    ref_id = _reference_id(names, region.reference_name, fmt)
    return index.chunks(ref_id, region.start, region.end)


def _reference_id(names: tuple[str, ...], name: str, fmt: Format) -> int:
    if name and name in names:
        return names.index(name)
    known = [n for n in names if n]
    shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
    raise UnknownReference(
        f"unknown reference {name!r}: this {fmt} file has {shown or 'no references'}"
    )


def _data_end(read: Reader, size: int) -> int:
    """Where the records end: before the EOF block, if the file has one (it should)."""
    eof = len(bgzf.EOF_BLOCK)
    if size >= eof and read(size - eof, size) == bgzf.EOF_BLOCK:
        return size - eof
    return size


def _chunk_pieces(chunk: Chunk, read: Reader, size: int) -> list[Piece]:
    """A chunk as pieces: its first and last blocks trimmed at the chunk's uoffsets (when they
    are not block starts), the blocks in between raw."""
    first, ubeg = bgzf.split_voffset(chunk.begin)
    last, uend = bgzf.split_voffset(chunk.end)
    if first >= size or last > size or (last == size and uend):
        raise InvalidIndex(f"a chunk points past the end of the {size}-byte file")
    if first == last:
        if ubeg == uend:
            return []
        return [Piece(first, first + bgzf.read_block_size(read, first), ubeg, uend)]
    pieces = []
    raw_from = first
    if ubeg:
        raw_from = first + bgzf.read_block_size(read, first)
        pieces.append(Piece(first, raw_from, trim_start=ubeg))
    if raw_from < last:
        pieces.append(Piece(raw_from, last))
    if uend:
        pieces.append(Piece(last, last + bgzf.read_block_size(read, last), trim_end=uend))
    return pieces


def _coalesce(pieces: Iterable[Piece]) -> list[Piece]:
    """Join raw pieces that follow each other in the file: fewer, longer tickets."""
    out: list[Piece] = []
    for piece in pieces:
        if out and _is_raw(out[-1]) and _is_raw(piece) and out[-1].end == piece.start:
            out[-1] = Piece(out[-1].start, piece.end)
        else:
            out.append(piece)
    return out


def _is_raw(piece: Piece) -> bool:
    """Whether the piece is file bytes served as stored."""
    return piece.literal is None and not piece.trimmed


# --- CRAM ---------------------------------------------------------------------------------------


def _plan_cram(index: CraiIndex, size: int, read: Reader, regions: list[Region]) -> list[Piece]:
    """File definition + header container, each region's containers, then the EOF container."""
    header = cram.read_header(read, size)
    eof = cram.read_eof_container(read, size)
    first = index.first_container()
    if first is not None and first < header.end:
        raise InvalidIndex(f"the CRAI names a container at byte {first}, inside the CRAM header")
    names = header.reference_names
    offsets: set[int] = set()
    for region in regions:
        if region.reference_name == UNPLACED:
            ref_id = -1
        else:
            ref_id = _reference_id(names, region.reference_name, Format.CRAM)
        offsets.update(index.containers(ref_id, region.start, region.end))
    pieces = [Piece(0, header.end)]
    for offset in sorted(offsets):
        if offset >= size - len(eof):
            raise InvalidIndex(f"the CRAI names a container at byte {offset}, past the data")
        container = cram.read_container(read, offset, size, header.major)
        pieces.append(Piece(container.offset, container.end))
    return [*_coalesce(pieces), Piece.of_bytes(eof)]
