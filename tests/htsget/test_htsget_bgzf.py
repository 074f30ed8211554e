"""BGZF blocks: building, reading back, virtual offsets, the EOF block and broken blocks."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genofed.htsget import InvalidFile
from genofed.htsget.bgzf import (
    EOF_BLOCK,
    MAX_BLOCK_SIZE,
    MAX_INPUT,
    BgzfStream,
    InvalidBgzf,
    block_size,
    compress,
    compress_block,
    decompress,
    iter_blocks,
    make_voffset,
    parse_block,
    read_block_size,
    split_voffset,
)

# Mostly compressible data, sometimes incompressible, up to a few blocks.
payloads = st.one_of(
    st.binary(max_size=3 * MAX_INPUT // 2),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=64), st.integers(1, 4000)),
    st.builds(bytes, st.integers(0, 3 * MAX_INPUT)),
)


@settings(max_examples=40, deadline=None)
@given(payloads)
def test_compress_round_trips_through_our_reader_and_gzip(data: bytes) -> None:
    compressed = compress(data)
    blocks = list(iter_blocks(compressed))
    assert b"".join(b.data for b in blocks) == data
    assert all(b.size <= MAX_BLOCK_SIZE and len(b.data) <= MAX_INPUT for b in blocks)
    assert len(blocks) == -(-len(data) // MAX_INPUT)
    assert gzip.decompress(compressed + EOF_BLOCK) == data
    assert decompress(compressed + EOF_BLOCK) == data


@given(st.integers(0, 2**48 - 1), st.integers(0, 2**16 - 1))
def test_virtual_offsets_pack_and_unpack(coffset: int, uoffset: int) -> None:
    voffset = make_voffset(coffset, uoffset)
    assert split_voffset(voffset) == (coffset, uoffset)
    assert voffset == coffset * 65536 + uoffset


def test_the_eof_block_is_an_empty_bgzf_block() -> None:
    assert len(EOF_BLOCK) == 28
    assert block_size(EOF_BLOCK) == 28
    assert parse_block(EOF_BLOCK).data == b""
    assert compress_block(b"") == EOF_BLOCK


def test_incompressible_full_block_still_fits() -> None:
    data = bytes(range(256)) * (MAX_INPUT // 256)
    noise = zlib.compress(data * 3)[:MAX_INPUT]
    assert len(compress_block(noise)) <= MAX_BLOCK_SIZE
    with pytest.raises(ValueError, match="at most"):
        compress_block(b"x" * (MAX_INPUT + 1))


def test_read_block_size_reads_only_the_header() -> None:
    data = compress(b"hello world" * 10_000)
    calls: list[tuple[int, int]] = []

    def read(start: int, end: int) -> bytes:
        calls.append((start, end))
        return data[start:end]

    first = next(iter_blocks(data))
    assert read_block_size(read, 0) == first.size
    assert read_block_size(read, first.size) == next(iter(iter_blocks(data[first.size :]))).size
    assert all(end - start <= 18 for start, end in calls)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=20_000), min_size=1, max_size=8))
def test_stream_reads_across_blocks_and_tells_virtual_offsets(parts: list[bytes]) -> None:
    """One block per part: after reading a part, ``tell`` names the start of the next block."""
    blocks = [compress_block(p) for p in parts]
    data = b"".join(blocks) + EOF_BLOCK
    stream = BgzfStream(lambda s, e: data[s:e], len(data))
    offset = 0
    for part, block in zip(parts, blocks, strict=True):
        assert stream.read(len(part)) == part
        offset += len(block)
        assert stream.tell() == make_voffset(offset, 0)
    assert stream.read_some() == (make_voffset(len(data), 0), b"")


def test_stream_tell_inside_a_block() -> None:
    data = compress(b"abcdefgh") + EOF_BLOCK
    stream = BgzfStream(lambda s, e: data[s:e], len(data))
    assert stream.read(3) == b"abc"
    assert stream.tell() == make_voffset(0, 3)
    assert stream.read_some() == (make_voffset(0, 3), b"defgh")


def test_stream_that_ends_early_names_what_it_was_reading() -> None:
    data = compress(b"short") + EOF_BLOCK
    stream = BgzfStream(lambda s, e: data[s:e], len(data))
    with pytest.raises(InvalidFile, match="ends inside its BAM header"):
        stream.read(100, "BAM header")


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b"PK" + b[2:], "no BGZF block"),
        (lambda b: b[:10], "truncated BGZF block header"),
        (lambda b: b[:-3], "truncated BGZF block"),
        (lambda b: b[:-8] + b"\0\0\0\0" + b[-4:], "CRC32"),
        (lambda b: b[:12] + b"XY" + b[14:], "no BC subfield"),
        (lambda b: b[:18] + b"\xff" * 4 + b[22:], "corrupt deflate|CRC32"),
    ],
    ids=["magic", "short header", "short block", "crc", "no BC", "deflate"],
)
def test_broken_blocks_raise_invalid_bgzf(mangle: object, message: str) -> None:
    block = compress_block(b"some data " * 100)
    with pytest.raises(InvalidBgzf, match=message):
        parse_block(mangle(block))  # type: ignore[operator]
