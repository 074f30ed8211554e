"""Readers for the BAI, CSI, TBI and CRAI indexes, and the region queries the planner needs.

The binning indexes (BAI: SAMv1 §5.2, CSI v1, tabix) map each reference to *bins*, each bin to
*chunks* of virtual offsets, plus a lower bound on where records overlapping a position can
start (BAI/TBI: a linear index of 16 kbp windows; CSI: a ``loffset`` per bin). A region query is
therefore: the bins that overlap the region (``reg2bins``), their chunks, minus the chunks that
end before that lower bound, merged. CRAI is simpler: one text line per CRAM slice.

Index bytes come from a data submitter, so every count is checked against the bytes left before
anything is allocated, and every problem raises ``InvalidIndex`` saying what is wrong.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from genofed.htsget.errors import HtsgetError


class InvalidIndex(HtsgetError):
    """Index bytes that are truncated, of the wrong kind, or internally inconsistent."""


BAI_MIN_SHIFT = 14
"""BAI and TBI bins: the smallest bin (and linear-index window) spans 2**14 = 16 kbp ..."""
BAI_DEPTH = 5
"""... and there are 5 levels below the root bin, so positions reach up to 2**29."""

_CHUNK = struct.Struct("<QQ")


@dataclass(frozen=True, order=True)
class Chunk:
    """A run of records between two virtual offsets, ``begin`` inclusive, ``end`` exclusive."""

    begin: int
    end: int


@dataclass(frozen=True)
class TabixMeta:
    """The tabix configuration stored in a TBI header or in a tabix-style CSI's aux data."""

    format: int
    col_seq: int
    col_beg: int
    col_end: int
    meta: str
    skip: int
    names: tuple[str, ...]


@dataclass
class ReferenceBins:
    """One reference's part of a binning index."""

    bins: dict[int, list[Chunk]] = field(default_factory=dict)
    loffsets: dict[int, int] = field(default_factory=dict)  # CSI only
    linear: list[int] = field(default_factory=list)  # BAI and TBI only


class BinningIndex:
    """A parsed BAI, CSI or TBI index.

    Parsing checks the whole structure at once but builds a reference's bins only when a query
    needs them (and keeps them): a whole-genome index has hundreds of thousands of chunks, and
    a request usually touches one reference.
    """

    def __init__(
        self,
        kind: str,
        min_shift: int,
        depth: int,
        data: bytes,
        spans: list[tuple[int, int]],
        tabix: TabixMeta | None = None,
    ) -> None:
        self.kind = kind
        self.min_shift = min_shift
        self.depth = depth
        self.tabix = tabix
        self._data = data
        self._spans = spans  # where each reference's part lies in ``data``
        self._references: dict[int, ReferenceBins] = {}

    @property
    def n_references(self) -> int:
        """The number of references the index has entries for (``n_ref``)."""
        return len(self._spans)

    def reference(self, ref_id: int) -> ReferenceBins:
        """The bins (and linear index or loffsets) of reference ``ref_id``."""
        if ref_id not in self._references:
            start, end = self._spans[ref_id]
            cur = _Cursor(self._data[start:end], self.kind.upper())
            self._references[ref_id] = _read_reference(cur, self.kind == "csi", self.depth)
        return self._references[ref_id]

    @property
    def max_position(self) -> int:
        """One past the largest position the bins can address."""
        return 1 << (self.min_shift + 3 * self.depth)

    def chunks(self, ref_id: int, start: int | None, end: int | None) -> list[Chunk]:
        """The merged chunks holding every record of reference ``ref_id`` overlapping
        ``[start, end)`` (0-based, half-open; ``None`` means the reference's start or end).

        A reference the index has no entry for (beyond ``n_ref``, or with no bins) has no records.
        """
        if not 0 <= ref_id < self.n_references:
            return []
        ref = self.reference(ref_id)
        if start is None and end is None:
            return merge_chunks(c for chunks in ref.bins.values() for c in chunks)
        beg = start or 0
        stop = self.max_position if end is None else min(end, self.max_position)
        if beg >= stop:
            return []
        bins = reg2bins(beg, stop, self.min_shift, self.depth)
        # No record overlapping the region starts before ``floor``: drop or shorten the chunks.
        floor = self._min_offset(ref, beg)
        found = (
            Chunk(max(c.begin, floor), c.end)
            for b in bins
            for c in ref.bins.get(b, ())
            if c.end > floor
        )
        return merge_chunks(found)

    def last_offset(self) -> int | None:
        """The largest chunk end: what follows are the unplaced records, if any."""
        refs = (self.reference(i) for i in range(self.n_references))
        return max((c.end for ref in refs for cs in ref.bins.values() for c in cs), default=None)

    def _min_offset(self, ref: ReferenceBins, beg: int) -> int:
        """A lower bound on the virtual offset of any record overlapping position ``beg``.

        BAI/TBI: the linear index window of ``beg``. CSI: the ``loffset`` of the deepest existing
        bin containing ``beg`` (a containing bin's first record can only come earlier).
        """
        if self.kind != "csi":
            if not ref.linear:
                return 0
            return ref.linear[min(beg >> self.min_shift, len(ref.linear) - 1)]
        bin_ = first_bin_of_level(self.depth) + (beg >> self.min_shift)
        while bin_ not in ref.loffsets and bin_ > 0:
            bin_ = (bin_ - 1) >> 3
        return ref.loffsets.get(bin_, 0)


def first_bin_of_level(level: int) -> int:
    """The number of the first bin at ``level`` (0 = root): (8**level - 1) / 7, whatever the
    depth (only the bins' spans depend on it)."""
    return ((1 << (3 * level)) - 1) // 7


def pseudo_bin(depth: int) -> int:
    """The bin number that holds per-reference statistics instead of chunks (37450 for BAI)."""
    return first_bin_of_level(depth + 1) + 1


def reg2bins(beg: int, end: int, min_shift: int, depth: int) -> list[int]:
    """Every bin that may hold records overlapping ``[beg, end)``: the UCSC binning scheme,
    generalized (as in CSI) to any smallest-bin size ``2**min_shift`` and number of levels.

    At level ``l`` bins span ``2**(min_shift + 3*(depth - l))`` bp and are numbered from
    ``(8**l - 1) / 7``; a region overlaps the bins from ``beg >> shift`` to ``(end-1) >> shift``.
    """
    if beg >= end:
        return []
    last = end - 1
    bins: list[int] = []
    for level in range(depth + 1):
        shift = min_shift + 3 * (depth - level)
        offset = first_bin_of_level(level)
        bins.extend(range(offset + (beg >> shift), offset + (last >> shift) + 1))
    return bins


def merge_chunks(chunks: Iterable[Chunk]) -> list[Chunk]:
    """Sorted chunks with overlapping or touching ones merged, so no record is served twice."""
    merged: list[Chunk] = []
    for chunk in sorted(chunks):
        if chunk.end <= chunk.begin:
            continue
        if merged and chunk.begin <= merged[-1].end:
            if chunk.end > merged[-1].end:
                merged[-1] = Chunk(merged[-1].begin, chunk.end)
        else:
            merged.append(chunk)
    return merged


# --- Binary parsing -----------------------------------------------------------------------------


class _Cursor:
    """Reads little-endian fields from index bytes; running out raises ``InvalidIndex``."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, field_name: str) -> bytes:
        if n < 0 or n > self.left:
            raise InvalidIndex(
                f"truncated {self.what} index: {field_name} needs {n} bytes at byte {self.pos}, "
                f"{self.left} left"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def i32(self, field_name: str) -> int:
        return int(struct.unpack("<i", self.take(4, field_name))[0])

    def u32(self, field_name: str) -> int:
        return int(struct.unpack("<I", self.take(4, field_name))[0])

    def u64(self, field_name: str) -> int:
        return int(struct.unpack("<Q", self.take(8, field_name))[0])

    def count(self, field_name: str, item_size: int) -> int:
        """A count field, refused when negative or when its items could not fit in what is left."""
        n = self.i32(field_name)
        if n < 0 or n * item_size > self.left:
            raise InvalidIndex(
                f"corrupt {self.what} index: {field_name} = {n} at byte {self.pos - 4} does not "
                f"fit the {self.left} bytes left"
            )
        return n

    def chunks(self, n: int) -> list[Chunk]:
        raw = self.take(16 * n, "chunk list")
        return [Chunk(b, e) for b, e in _CHUNK.iter_unpack(raw)]


def _gunzip(data: bytes, what: str) -> bytes:
    """Inflate a gzip or BGZF-compressed index; truncation and garbage become ``InvalidIndex``."""
    if data[:2] != b"\x1f\x8b":
        raise InvalidIndex(f"not a {what} index: it should be gzip/BGZF-compressed")
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise InvalidIndex(f"corrupt or truncated {what} index: {error}") from error


def _check_end(cur: _Cursor) -> None:
    """After the references, only the optional ``n_no_coor`` (8 bytes) may follow."""
    if cur.left not in (0, 8):
        raise InvalidIndex(
            f"corrupt {cur.what} index: {cur.left} unexpected bytes after the last reference"
        )


def _check_magic(cur: _Cursor, magic: bytes) -> None:
    found = cur.data[: len(magic)]
    if found != magic:
        raise InvalidIndex(f"not a {cur.what} index: it starts with {found!r}, not {magic!r}")
    cur.pos = len(magic)


def _tabix_meta(cur: _Cursor) -> TabixMeta:
    """The tabix header fields (after the magic and n_ref in TBI; the whole aux data in CSI)."""
    fmt, col_seq, col_beg, col_end, meta, skip = (cur.i32(n) for n in _TABIX_FIELDS)
    l_nm = cur.count("l_nm", 1)
    raw = cur.take(l_nm, "sequence names")
    names = tuple(n.decode("utf-8", "replace") for n in raw.split(b"\0")[:-1])
    if raw and not raw.endswith(b"\0"):
        raise InvalidIndex(f"corrupt {cur.what} index: the sequence names are not NUL-terminated")
    meta_char = chr(meta) if 0 <= meta < 0x110000 else "#"
    return TabixMeta(fmt, col_seq, col_beg, col_end, meta_char, skip, names)


_TABIX_FIELDS = ("format", "col_seq", "col_beg", "col_end", "meta", "skip")


def _reference_spans(cur: _Cursor, n_ref: int, csi: bool) -> list[tuple[int, int]]:
    """Walk the references' bins (and linear indexes), checking every count against the bytes
    left, and return where each reference's part starts and ends."""
    spans = []
    for _ in range(n_ref):
        start = cur.pos
        for _ in range(cur.count("n_bin", 16 if csi else 8)):
            cur.take(12 if csi else 4, "bin")
            cur.take(16 * cur.count("n_chunk", 16), "chunk list")
        if not csi:
            cur.take(8 * cur.count("n_intv", 8), "ioffset")
        spans.append((start, cur.pos))
    return spans


def _read_reference(cur: _Cursor, csi: bool, depth: int) -> ReferenceBins:
    """One reference's bins (without the pseudo-bin of statistics), with CSI loffsets or the
    BAI/TBI linear index."""
    pseudo = pseudo_bin(depth)
    ref = ReferenceBins()
    for _ in range(cur.count("n_bin", 16 if csi else 8)):
        bin_ = cur.u32("bin")
        loffset = cur.u64("loffset") if csi else 0
        chunks = cur.chunks(cur.count("n_chunk", 16))
        if bin_ != pseudo:
            ref.bins.setdefault(bin_, []).extend(chunks)
            if csi:
                ref.loffsets[bin_] = loffset
    if not csi:
        n_intv = cur.count("n_intv", 8)
        ref.linear = [o for (o,) in struct.iter_unpack("<Q", cur.take(8 * n_intv, "ioffset"))]
    return ref


def parse_bai(data: bytes) -> BinningIndex:
    """A BAI (uncompressed): magic, n_ref, per reference bins + linear index, [n_no_coor]."""
    cur = _Cursor(data, "BAI")
    _check_magic(cur, b"BAI\1")
    n_ref = cur.count("n_ref", 8)
    spans = _reference_spans(cur, n_ref, csi=False)
    _check_end(cur)
    return BinningIndex("bai", BAI_MIN_SHIFT, BAI_DEPTH, cur.data, spans)


def parse_tbi(data: bytes) -> BinningIndex:
    """A TBI (BGZF): magic, n_ref, the tabix configuration and names, then BAI-like bins."""
    cur = _Cursor(_gunzip(data, "TBI"), "TBI")
    _check_magic(cur, b"TBI\1")
    n_ref = cur.count("n_ref", 8)
    meta = _tabix_meta(cur)
    if len(meta.names) != n_ref:
        raise InvalidIndex(f"corrupt TBI index: {len(meta.names)} names for n_ref = {n_ref}")
    spans = _reference_spans(cur, n_ref, csi=False)
    _check_end(cur)
    return BinningIndex("tbi", BAI_MIN_SHIFT, BAI_DEPTH, cur.data, spans, meta)


def parse_csi(data: bytes) -> BinningIndex:
    """A CSI (BGZF): magic, min_shift, depth, aux (tabix configuration for VCF), then bins."""
    cur = _Cursor(_gunzip(data, "CSI"), "CSI")
    _check_magic(cur, b"CSI\1")
    min_shift, depth = cur.i32("min_shift"), cur.i32("depth")
    if not (0 <= min_shift <= 32 and 0 <= depth <= 10 and min_shift + 3 * depth <= 62):
        raise InvalidIndex(f"corrupt CSI index: min_shift = {min_shift}, depth = {depth}")
    aux = cur.take(cur.count("l_aux", 1), "aux data")
    tabix = _tabix_meta(_Cursor(aux, "CSI aux data")) if len(aux) >= 28 else None
    n_ref = cur.count("n_ref", 4)
    spans = _reference_spans(cur, n_ref, csi=True)
    _check_end(cur)
    return BinningIndex("csi", min_shift, depth, cur.data, spans, tabix)


# --- CRAI ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CraiEntry:
    """One CRAI line: a slice's reference and 1-based span, and where its container starts."""

    seq_id: int
    alignment_start: int
    alignment_span: int
    container_start: int
    slice_offset: int
    slice_size: int

    def overlaps(self, ref_id: int, start: int | None, end: int | None) -> bool:
        """Whether the slice may hold records of ``ref_id`` overlapping ``[start, end)``.

        The slice covers 1-based ``[alignment_start, alignment_start + span - 1]``, i.e.
        0-based ``[alignment_start - 1, alignment_start - 1 + span)``.
        """
        if self.seq_id != ref_id:
            return False
        if ref_id < 0:
            return True
        first = self.alignment_start - 1
        return (end is None or first < end) and (
            start is None or first + self.alignment_span > start
        )


@dataclass
class CraiIndex:
    """A parsed CRAI: the slices of a CRAM file, in file order."""

    entries: list[CraiEntry]
    kind: str = "crai"

    def containers(self, ref_id: int, start: int | None, end: int | None) -> list[int]:
        """The sorted file offsets of the containers holding records overlapping the region."""
        found = {e.container_start for e in self.entries if e.overlaps(ref_id, start, end)}
        return sorted(found)

    def first_container(self) -> int | None:
        """The offset of the first data container, where the CRAM header ends."""
        return min((e.container_start for e in self.entries), default=None)


def parse_crai(data: bytes) -> CraiIndex:
    """A CRAI: gzipped text, one line per slice of six integers separated by tabs."""
    text = _gunzip(data, "CRAI")
    try:
        lines = text.decode("ascii").splitlines()
    except UnicodeDecodeError as error:
        raise InvalidIndex("corrupt CRAI index: it is not ASCII text") from error
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            values = [int(f) for f in fields]
        except ValueError:
            values = []
        if len(values) != 6 or any(v < 0 for v in values[1:]):
            raise InvalidIndex(
                f"corrupt CRAI index: line {number} is not six integers "
                "(seq_id, start, span, container offset, slice offset, slice size)"
            )
        entries.append(CraiEntry(*values))
    return CraiIndex(entries)


PARSERS = {"bai": parse_bai, "csi": parse_csi, "tbi": parse_tbi}


def parse_index(data: bytes, kind: str) -> BinningIndex | CraiIndex:
    """Parse index bytes of ``kind`` (``bai``, ``csi``, ``tbi`` or ``crai``, any case)."""
    kind = kind.lower().lstrip(".")
    if kind == "crai":
        return parse_crai(data)
    parser = PARSERS.get(kind)
    if parser is None:
        raise InvalidIndex(f"unknown index kind {kind!r}: expected bai, csi, tbi or crai")
    return parser(data)
