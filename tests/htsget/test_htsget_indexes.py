"""The BAI, CSI, TBI and CRAI readers: binning arithmetic, chunk queries and broken indexes."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import struct

import pytest
from htsget_support import FileUnderTest, Fixtures
from hypothesis import given, settings
from hypothesis import strategies as st

from genofed.htsget.bgzf import EOF_BLOCK, compress
from genofed.htsget.indexes import (
    BinningIndex,
    Chunk,
    CraiIndex,
    InvalidIndex,
    merge_chunks,
    parse_index,
    pseudo_bin,
    reg2bins,
)


def spec_reg2bin(beg: int, end: int) -> int:
    """The smallest BAI bin holding ``[beg, end)``, as the SAM specification computes it."""
    end -= 1
    for shift, offset in ((14, 4681), (17, 585), (20, 73), (23, 9), (26, 1)):
        if beg >> shift == end >> shift:
            return offset + (beg >> shift)
    return 0


def bin_span(bin_: int, min_shift: int, depth: int) -> tuple[int, int]:
    """The positions ``[start, end)`` a bin covers, from its level and place in the level."""
    level, first = 0, 0
    while bin_ >= first + (1 << (3 * level)):
        first += 1 << (3 * level)
        level += 1
    shift = min_shift + 3 * (depth - level)
    return (bin_ - first) << shift, (bin_ - first + 1) << shift


def test_reg2bins_for_the_first_base() -> None:
    assert reg2bins(0, 1, 14, 5) == [0, 1, 9, 73, 585, 4681]
    assert reg2bins(5, 5, 14, 5) == []
    assert pseudo_bin(5) == 37450


@given(
    st.integers(0, 2**29 - 2).flatmap(lambda b: st.tuples(st.just(b), st.integers(b + 1, 2**29)))
)
def test_reg2bins_includes_the_bin_the_spec_assigns(region: tuple[int, int]) -> None:
    beg, end = region
    assert spec_reg2bin(beg, end) in reg2bins(beg, end, 14, 5)


@settings(max_examples=50)
@given(
    st.integers(0, 2**19 - 2).flatmap(lambda b: st.tuples(st.just(b), st.integers(b + 1, 2**19)))
)
def test_reg2bins_are_exactly_the_bins_overlapping_the_region(region: tuple[int, int]) -> None:
    """CSI-style binning, min_shift 10 and depth 3: checked against every bin of the scheme."""
    beg, end = region
    overlapping = []
    for bin_ in range(pseudo_bin(3) - 1):
        start, stop = bin_span(bin_, 10, 3)
        if start < end and beg < stop:
            overlapping.append(bin_)
    assert reg2bins(beg, end, 10, 3) == overlapping


chunk_lists = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 200)).map(lambda t: Chunk(min(t), max(t))),
    max_size=12,
)


@given(chunk_lists)
def test_merged_chunks_are_sorted_disjoint_and_cover_the_same_offsets(chunks: list[Chunk]) -> None:
    merged = merge_chunks(chunks)
    covered = {o for c in chunks for o in range(c.begin, c.end)}
    assert {o for c in merged for o in range(c.begin, c.end)} == covered
    assert all(a.end < b.begin for a, b in itertools.pairwise(merged))


def test_fixture_indexes_parse(files: Fixtures) -> None:
    bai = parse_index(files.bam_bai.index_path.read_bytes(), "bai")
    csi = parse_index(files.bam_csi.index_path.read_bytes(), "CSI")
    tbi = parse_index(files.vcf_tbi.index_path.read_bytes(), ".tbi")
    vcsi = parse_index(files.vcf_csi.index_path.read_bytes(), "csi")
    crai = parse_index(files.cram.index_path.read_bytes(), "crai")
    assert isinstance(bai, BinningIndex) and bai.n_references == 4
    assert isinstance(csi, BinningIndex) and csi.tabix is None and csi.min_shift == 14
    assert isinstance(tbi, BinningIndex) and tbi.tabix is not None
    assert tbi.tabix.names == ("chr1", "chr2", "3")
    assert isinstance(vcsi, BinningIndex) and vcsi.tabix is not None
    assert vcsi.tabix.names == ("chr1", "chr2", "3")
    assert isinstance(crai, CraiIndex) and len(crai.entries) > 10
    assert {e.seq_id for e in crai.entries} == {-1, 0, 1, 2}


def test_whole_reference_is_every_chunk_of_its_bins(files: Fixtures) -> None:
    bai = parse_index(files.bam_bai.index_path.read_bytes(), "bai")
    assert isinstance(bai, BinningIndex)
    whole = bai.chunks(1, None, None)
    assert whole == merge_chunks(c for cs in bai.reference(1).bins.values() for c in cs)
    assert bai.chunks(1, 0, 2**29) == whole
    assert bai.chunks(3, None, None) == [] and bai.chunks(99, 0, 10) == []
    assert bai.chunks(0, 2**29, 2**30) == []


# --- Broken indexes ------------------------------------------------------------------------------


def index_bytes(f: FileUnderTest) -> bytes:
    return f.index_path.read_bytes()


@pytest.mark.parametrize("name", ["bam_bai", "bam_csi", "vcf_tbi", "vcf_csi", "bcf_csi", "cram"])
def test_every_truncation_is_refused_or_loses_nothing(files: Fixtures, name: str) -> None:
    """A cut index raises InvalidIndex, never another error. (Cutting a BGZF index just before
    a block boundary, or a BAI before its optional n_no_coor, leaves a valid index.)"""
    f: FileUnderTest = getattr(files, name)
    data = index_bytes(f)
    full = parse_index(data, f.index_kind)
    for length in range(len(data)):
        try:
            parsed = parse_index(data[:length], f.index_kind)
        except InvalidIndex as error:
            assert str(error) and "\n" not in str(error)
        else:
            if isinstance(full, BinningIndex):
                assert isinstance(parsed, BinningIndex)
                assert parsed.n_references == full.n_references
                for i in range(full.n_references):
                    assert parsed.reference(i) == full.reference(i)
            else:
                assert isinstance(parsed, CraiIndex) and len(parsed.entries) <= len(full.entries)


@settings(max_examples=60)
@given(st.sampled_from([b"BAI\1", b"CSI\1", b"TBI\1", b""]), st.binary(max_size=400))
def test_garbage_raises_invalid_index(magic: bytes, tail: bytes) -> None:
    for kind, wrap in (
        ("bai", bytes),
        ("csi", compress),
        ("tbi", compress),
        ("crai", gzip.compress),
    ):
        with contextlib.suppress(InvalidIndex):
            parse_index(wrap(magic + tail), kind)


BROKEN = [
    (b"", "bai", "not a BAI index"),
    (b"BAM\1\0\0\0\0", "bai", r"not a BAI index: it starts with b'BAM\\x01'"),
    (b"BAI\1" + struct.pack("<i", -1), "bai", "n_ref = -1"),
    (b"BAI\1" + struct.pack("<i", 10**6), "bai", "n_ref = 1000000 .* does not fit"),
    (b"BAI\1" + struct.pack("<iiIi", 1, 1, 0, 0), "bai", "truncated BAI index: n_intv"),
    (b"BAI\1" + struct.pack("<iii", 1, 0, 0) + b"xyz", "bai", "3 unexpected bytes"),
    (b"TBI\1", "tbi", "should be gzip/BGZF-compressed"),
    (b"\x1f\x8b\x08\x04garbage", "csi", "corrupt or truncated CSI index"),
    (compress(b"TBI\1") + EOF_BLOCK, "tbi", "truncated TBI index: n_ref"),
    (compress(b"CSI\1" + struct.pack("<ii", 99, 5)), "csi", "min_shift = 99"),
    (gzip.compress(b"0\t1\t2\n"), "crai", "line 1 is not six integers"),
    (gzip.compress(b"0\t1\t2\t3\t4\tfive\n"), "crai", "line 1 is not six integers"),
    (gzip.compress(b"0\t1\t2\t3\t4\t-5\n"), "crai", "line 1"),
    (gzip.compress(b"\xff\xfe"), "crai", "not ASCII"),
    (b"0\t1\t2\t3\t4\t5\n", "crai", "not a CRAI index"),
    (b"BAI\1", "fai", "unknown index kind 'fai'"),
]


@pytest.mark.parametrize(("data", "kind", "message"), BROKEN, ids=[m for _, _, m in BROKEN])
def test_broken_index_messages_say_what_is_wrong(data: bytes, kind: str, message: str) -> None:
    with pytest.raises(InvalidIndex, match=message):
        parse_index(data, kind)
