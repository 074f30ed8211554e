"""Requests and files the planner refuses, each with an error that says what is wrong."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import pysam
import pytest
from htsget_support import FileUnderTest, Fixtures, header_text, write_assembled
from hypothesis import given
from hypothesis import strategies as st

from genofed.htsget import (
    Format,
    HtsgetError,
    InvalidFile,
    InvalidIndex,
    InvalidRange,
    Piece,
    Region,
    UnknownReference,
    plan,
    render,
)
from genofed.htsget.cram import EOF_CONTAINER_3, Fields


def plan_on(f: FileUnderTest, data: bytes, **kwargs: object) -> list[Piece]:
    """Plan on other file bytes with the fixture's index."""
    return plan(
        f.fmt,
        f.index_path.read_bytes(),
        f.index_kind,
        len(data),
        lambda s, e: data[s:e],
        **kwargs,  # type: ignore[arg-type]
    )


def test_unknown_reference_names_the_known_ones(any_file: FileUnderTest) -> None:
    with pytest.raises(UnknownReference, match=r"unknown reference 'chr9'.*chr1, chr2, 3") as info:
        any_file.plan([Region("chr9", 0, 10)])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("region", "message"),
    [
        (Region("chr1", 20, 10), "start 20 is after end 10"),
        (Region("chr1", -1, 10), "negative start or end"),
        (Region("chr1", None, -5), "negative start or end"),
        (Region("*", 0, 10), "unplaced reads"),
    ],
)
def test_invalid_ranges(any_file: FileUnderTest, region: Region, message: str) -> None:
    with pytest.raises(InvalidRange, match=message):
        any_file.plan([region])


def test_unknown_format_and_mismatched_index(files: Fixtures) -> None:
    bam: FileUnderTest = files.bam_bai
    read = bam.reader()
    with pytest.raises(HtsgetError, match="unknown htsget format 'SAM'"):
        plan("SAM", b"", "bai", bam.size, read, regions=None)
    with pytest.raises(
        InvalidIndex, match=r"a .tbi index cannot index a BAM file: expected .bai or .csi"
    ):
        plan(Format.BAM, b"", "tbi", bam.size, read, regions=None)
    with pytest.raises(InvalidIndex, match=r"a .csi index cannot index a CRAM file"):
        plan("cram", b"", "csi", bam.size, read, regions=None)


def test_a_file_of_another_format(files: Fixtures) -> None:
    bam: FileUnderTest = files.bam_bai
    vcf: FileUnderTest = files.vcf_tbi
    with pytest.raises(InvalidFile, match="not a BAM file"):
        plan_on(bam, vcf.data, header_only=True)
    with pytest.raises(InvalidFile, match="not a VCF file"):
        plan_on(vcf, bam.data, header_only=True)
    with pytest.raises(InvalidFile, match="not a CRAM file"):
        plan_on(files.cram, bam.data, header_only=True)
    with pytest.raises(InvalidFile, match="not a BCF2 file"):
        plan_on(files.bcf_csi, vcf.data, header_only=True)


def test_a_truncated_data_file(files: Fixtures) -> None:
    bam: FileUnderTest = files.bam_bai
    with pytest.raises(InvalidFile, match="truncated BGZF block"):
        plan_on(bam, bam.data[:100], header_only=True)
    with pytest.raises(InvalidIndex, match="points past the end"):
        plan_on(bam, bam.data[: bam.size // 2], regions=[Region("3")])


def test_render_of_a_file_shorter_than_planned(files: Fixtures) -> None:
    bam: FileUnderTest = files.bam_bai
    data = bam.data[:1000]
    with pytest.raises(InvalidFile, match="the file ends early"):
        list(render(Piece(0, 5000), lambda s, e: data[s:e]))


def test_cram_without_eof_container(files: Fixtures) -> None:
    cram: FileUnderTest = files.cram
    with pytest.raises(InvalidFile, match="does not end with the CRAM 3 EOF container"):
        plan_on(cram, cram.data[:-1], header_only=True)


def test_cram_version_2_is_refused(files: Fixtures) -> None:
    cram: FileUnderTest = files.cram
    data = cram.data[:4] + b"\2\1" + cram.data[6:]
    with pytest.raises(InvalidFile, match=r"unsupported CRAM version 2.1"):
        plan_on(cram, data, header_only=True)


def test_cram_header_block_with_an_unsupported_codec(files: Fixtures) -> None:
    cram: FileUnderTest = files.cram
    data = bytearray(cram.data)
    data[first_block_offset(bytes(data))] = 4  # rANS 4x8
    with pytest.raises(InvalidFile, match="compressed with rans4x8; only raw and gzip"):
        plan_on(cram, bytes(data), header_only=True)


def test_cram_container_header_crc_is_checked(files: Fixtures) -> None:
    cram: FileUnderTest = files.cram
    data = bytearray(cram.data)
    data[26 + 4] ^= 0x01  # the header container's reference id
    with pytest.raises(InvalidFile, match="fails its CRC32"):
        plan_on(cram, bytes(data), header_only=True)


def test_crai_pointing_inside_the_header(files: Fixtures) -> None:
    cram: FileUnderTest = files.cram
    crai = gzip.compress(b"0\t1\t100\t30\t0\t10\n")
    with pytest.raises(InvalidIndex, match="inside the CRAM header"):
        plan(cram.fmt, crai, "crai", cram.size, cram.reader(), regions=[Region("chr1")])


# --- A CRAM whose header block is gzip-compressed ------------------------------------------------


def itf8(value: int) -> bytes:
    """ITF8-encode a 32-bit integer (CRAM 3.0): the leading 1 bits say how many bytes follow."""
    u = value & 0xFFFFFFFF
    if u < 0x80:
        return bytes([u])
    if u < 0x4000:
        return bytes([0x80 | u >> 8, u & 0xFF])
    if u < 0x200000:
        return bytes([0xC0 | u >> 16, u >> 8 & 0xFF, u & 0xFF])
    if u < 0x10000000:
        return bytes([0xE0 | u >> 24, u >> 16 & 0xFF, u >> 8 & 0xFF, u & 0xFF])
    return bytes([0xF0 | u >> 28, u >> 20 & 0xFF, u >> 12 & 0xFF, u >> 4 & 0xFF, u & 0x0F])


def ltf8(value: int) -> bytes:
    """LTF8-encode a 64-bit integer: as ITF8, with up to 8 bytes after the first."""
    u = value & 0xFFFFFFFFFFFFFFFF
    for extra in range(7):  # 7 more value bits per extra byte while the first byte has room
        if u < 1 << (7 * (extra + 1)):
            first = (0xFF << (8 - extra)) & 0xFF | u >> (8 * extra)
            return bytes([first]) + u.to_bytes(8, "big")[8 - extra :]
    if u < 1 << 56:
        return b"\xfe" + u.to_bytes(7, "big")
    return b"\xff" + u.to_bytes(8, "big")


@given(st.integers(-(2**31), 2**31 - 1))
def test_itf8_decodes_the_spec_encoding(value: int) -> None:
    fields = Fields(itf8(value) + b"rest")
    assert fields.itf8() == value and fields.pos == len(itf8(value))


@given(st.integers(-(2**63), 2**63 - 1))
def test_ltf8_decodes_the_spec_encoding(value: int) -> None:
    fields = Fields(ltf8(value))
    assert fields.ltf8() == value and fields.pos == len(ltf8(value))


def first_block_offset(data: bytes) -> int:
    """The offset of the header container's first block."""
    fields = Fields(data[26:])
    fields.int32()
    for _ in range(4):
        fields.itf8()
    fields.ltf8(), fields.ltf8()
    fields.itf8()
    for _ in range(fields.itf8()):
        fields.itf8()
    return 26 + fields.pos + 4


def gzip_header_cram(definition: bytes, sam_text: str) -> bytes:
    """A CRAM 3.0 file of a header container (one gzip block) and the EOF container."""
    raw = struct.pack("<i", len(sam_text)) + sam_text.encode()
    packed = gzip.compress(raw)
    block = b"\x01\x00" + itf8(0) + itf8(len(packed)) + itf8(len(raw)) + packed
    block += struct.pack("<I", zlib.crc32(block))
    head = struct.pack("<i", len(block)) + itf8(0) + itf8(0) + itf8(0) + itf8(0)
    head += ltf8(0) + ltf8(0) + itf8(1) + itf8(0)
    head += struct.pack("<I", zlib.crc32(head))
    return definition + head + block + EOF_CONTAINER_3


def test_cram_with_a_gzip_header_block(files: Fixtures, tmp_path: Path) -> None:
    cram: FileUnderTest = files.cram
    text = header_text(cram.path, Format.CRAM, cram.reference)
    data = gzip_header_cram(cram.data[:26], text)
    empty_crai = gzip.compress(b"")
    read = lambda s, e: data[s:e]  # noqa: E731
    pieces = plan("CRAM", empty_crai, "crai", len(data), read, regions=[Region("chr2")])
    assembled = b"".join(part for p in pieces for part in render(p, read))
    assert assembled == data
    path = write_assembled(assembled, Format.CRAM, tmp_path)
    assert header_text(path, Format.CRAM, cram.reference) == text
    with pysam.AlignmentFile(str(path), reference_filename=str(cram.reference)) as f:
        assert list(f.fetch(until_eof=True)) == []
    with pytest.raises(UnknownReference, match="chr1, chr2, 3, chrM"):
        plan("CRAM", empty_crai, "crai", len(data), read, regions=[Region("4")])
