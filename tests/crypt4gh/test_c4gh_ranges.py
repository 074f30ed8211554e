"""Ranged decryption: ``decrypt(start, end)`` against slicing the (edited) plaintext.

Sources are seekable (BytesIO, a real file) and forward-only; ranges may cross segment and batch
boundaries (64 segments per batch), and the header may carry an edit list.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from c4gh_support import (
    CSEG,
    SEG,
    CountingReader,
    NonSeekable,
    apply_edit_list,
    c4gh_settings,
    encrypt_bytes,
    split_bytes,
    synthetic,
)
from hypothesis import given
from hypothesis import strategies as st

from genofed import crypt4gh as c4gh

# 70 full segments and a partial one: more than one 64-segment batch.
SIZE = 70 * SEG + 4321
FAST = c4gh_settings(60)


@pytest.fixture(scope="module")
def source(keys: list[c4gh.KeyPair], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    plain = synthetic(SIZE, seed=2024)
    enc = encrypt_bytes(plain, [keys[0].public])
    header, body = split_bytes(enc)
    path = tmp_path_factory.mktemp("ranges") / "big.c4gh"
    path.write_bytes(enc)
    return {"plain": plain, "enc": enc, "header": header, "body": body, "path": path}


@pytest.fixture(scope="module")
def opener(source: dict[str, Any]) -> Iterator[Any]:
    """Open encrypted bytes as one of three kinds of source."""
    handles: list[Any] = []

    def open_as(kind: str, data: bytes) -> Any:
        if kind == "bytesio":
            return io.BytesIO(data)
        if kind == "nonseekable":
            return NonSeekable(data)
        if data == source["enc"]:
            handle = source["path"].open("rb")
        else:
            path = source["path"].with_name(f"edited{len(handles)}.c4gh")
            path.write_bytes(data)
            handle = path.open("rb")
        handles.append(handle)
        return handle

    yield open_as
    for handle in handles:
        handle.close()


kinds = st.sampled_from(["bytesio", "file", "nonseekable"])


def ranged(src: Any, secret: bytes, start: int, end: int | None) -> bytes:
    out = io.BytesIO()
    written = c4gh.decrypt(src, out, secret, start=start, end=end)
    assert written == len(out.getvalue())
    return out.getvalue()


@FAST
@given(kind=kinds, data=st.data())
def test_range_equals_slice(kind: str, data: st.DataObject, source, opener, keys) -> None:
    plain = source["plain"]
    start = data.draw(
        st.one_of(st.integers(0, SIZE - 1), st.sampled_from([SEG - 1, SEG, 64 * SEG - 1, SIZE - 1]))
    )
    length = data.draw(st.one_of(st.integers(1, 3 * SEG), st.integers(1, SIZE)))
    end = start + length
    got = ranged(opener(kind, source["enc"]), keys[0].secret, start, end)
    assert got == plain[start:end]


@FAST
@given(kind=kinds, start=st.integers(0, SIZE + 10))
def test_open_ended_range_equals_slice(kind: str, start: int, source, opener, keys) -> None:
    got = ranged(opener(kind, source["enc"]), keys[0].secret, start, None)
    assert got == source["plain"][start:]


@pytest.mark.parametrize("kind", ["bytesio", "file", "nonseekable"])
def test_ranges_beyond_the_end_are_clipped(kind: str, source, opener, keys) -> None:
    plain, secret = source["plain"], keys[0].secret
    assert ranged(opener(kind, source["enc"]), secret, SIZE - 10, SIZE + 10**9) == plain[-10:]
    assert ranged(opener(kind, source["enc"]), secret, SIZE, SIZE + 5) == b""
    assert ranged(opener(kind, source["enc"]), secret, SIZE + 10**6, None) == b""
    assert ranged(opener(kind, source["enc"]), secret, 0, 10**12) == plain


@pytest.mark.parametrize(
    ("start", "end"), [(0, 0), (5, 5), (10, 5), (-1, 10), (-5, None), (SIZE + 3, SIZE + 3)]
)
def test_empty_or_negative_range_raises(start: int, end: int | None, source, keys) -> None:
    with pytest.raises(c4gh.InvalidRange):
        ranged(io.BytesIO(source["enc"]), keys[0].secret, start, end)
    body = io.BytesIO(source["body"])
    header = c4gh.open_header(c4gh.parse_header(source["header"]), keys[0].secret)
    with pytest.raises(c4gh.InvalidRange):
        c4gh.decrypt_body(body, io.BytesIO(), header, start=start, end=end)


# -- with edit lists -------------------------------------------------------------------------------

edit_lists = st.lists(
    st.one_of(st.integers(1, 300), st.integers(1, 3 * SEG), st.integers(1, 40 * SEG)),
    min_size=1,
    max_size=7,
).flatmap(lambda tail: st.integers(0, 2 * SEG).map(lambda first: [first, *tail[1:]]))


def with_edit_list(source: dict[str, Any], keys: list[c4gh.KeyPair], edit_list: list[int]) -> bytes:
    header = c4gh.reencrypt_header(
        source["header"], keys[0].secret, [keys[1].public], edit_list=edit_list
    )
    return header + source["body"]


@FAST
@given(kind=kinds, edit_list=edit_lists, data=st.data())
def test_range_over_edit_list_equals_slice(
    kind: str, edit_list: list[int], data: st.DataObject, source, opener, keys
) -> None:
    edited = apply_edit_list(source["plain"], edit_list)
    enc = with_edit_list(source, keys, edit_list)
    whole = ranged(opener(kind, enc), keys[1].secret, 0, None)
    assert whole == edited
    start = data.draw(st.integers(0, len(edited) + 5))
    end = data.draw(st.one_of(st.none(), st.integers(start + 1, start + 2 * SEG)))
    got = ranged(opener(kind, enc), keys[1].secret, start, end)
    assert got == edited[start:end]


def test_edit_list_examples(source, keys) -> None:
    """A few hand-picked lists: keep inside one segment, across batches, odd length, past end."""
    plain = source["plain"]
    for edit_list in (
        [0, 1],
        [SEG - 1, 2],
        [5, 10, 20],
        [63 * SEG + 5, 2 * SEG, 3],
        [10, 5, 10, 5],
        [SIZE - 3, 100],
        [SIZE + 10, 5],
        [0, SIZE + 10],
    ):
        enc = with_edit_list(source, keys, edit_list)
        assert ranged(io.BytesIO(enc), keys[1].secret, 0, None) == apply_edit_list(plain, edit_list)
        with pytest.raises(c4gh.InvalidRange):
            ranged(io.BytesIO(enc), keys[1].secret, 3, 3)


# -- reading only what is needed -------------------------------------------------------------------


@FAST
@given(start=st.integers(0, SIZE - 1), length=st.integers(1, 3 * SEG))
def test_ranged_decrypt_reads_only_needed_segments(start: int, length: int, source, keys) -> None:
    end = start + length
    src = CountingReader(source["enc"])
    assert ranged(src, keys[0].secret, start, end) == source["plain"][start:end]
    first, last = c4gh.segment_span(start, end)
    needed = min(last, len(source["body"])) - first
    assert src.bytes_read == len(source["header"]) + needed


@FAST
@given(edit_list=edit_lists, data=st.data())
def test_edit_list_decrypt_reads_only_needed_segments(
    edit_list: list[int], data: st.DataObject, source, keys
) -> None:
    enc = with_edit_list(source, keys, edit_list)
    header_size = len(split_bytes(enc)[0])
    edited = apply_edit_list(source["plain"], edit_list)
    start = data.draw(st.integers(0, max(0, len(edited) - 1)))
    end = data.draw(st.integers(start + 1, start + 2 * SEG))
    src = CountingReader(enc)
    assert ranged(src, keys[1].secret, start, end) == edited[start:end]
    # The file bytes that range comes from bound the segments that may be read.
    segments: set[int] = set()
    for lo, hi in file_ranges(edit_list, start, end):
        segments.update(range(lo // SEG, (min(hi, SIZE) - 1) // SEG + 1))
    assert src.bytes_read <= header_size + len(segments) * CSEG


def file_ranges(edit_list: list[int], start: int, end: int) -> list[tuple[int, int]]:
    """File offsets [lo, hi) of the edited bytes [start, end): walk the kept pieces in order."""
    pieces, position = [], 0
    for number, length in enumerate(edit_list):
        if number % 2:
            pieces.append((position, position + length))
        position += length
    if len(edit_list) % 2:
        pieces.append((position, SIZE))
    out, logical = [], 0
    for lo, hi in pieces:
        hi = min(hi, SIZE)
        if lo >= hi:
            break
        a, b = max(start, logical), min(end, logical + hi - lo)
        if a < b:
            out.append((lo + a - logical, lo + b - logical))
        logical += hi - lo
    return out


def test_nonseekable_source_with_no_seek_attribute(source, keys) -> None:
    src = NonSeekable(source["enc"])
    assert not hasattr(src, "seek") and not hasattr(src, "tell")
    start, end = 65 * SEG + 3, 67 * SEG + 9
    assert ranged(src, keys[0].secret, start, end) == source["plain"][start:end]


# -- segment arithmetic ----------------------------------------------------------------------------


@c4gh_settings(200)
@given(n=st.one_of(st.integers(0, 10**12), st.integers(0, 4 * SEG)))
def test_cipher_and_plain_size_are_inverse(n: int) -> None:
    size = c4gh.cipher_size(n)
    full, rest = divmod(n, SEG)
    assert size == full * CSEG + (rest + 28 if rest else 0)
    assert c4gh.plain_size(size) == n


@c4gh_settings(100)
@given(full=st.integers(0, 1000), rest=st.integers(1, 28))
def test_plain_size_rejects_impossible_sizes(full: int, rest: int) -> None:
    with pytest.raises(c4gh.TruncatedData):
        c4gh.plain_size(full * CSEG + rest)


@FAST
@given(start=st.integers(0, SIZE - 1), length=st.integers(1, 3 * SEG))
def test_segment_span_holds_the_range(start: int, length: int, source, keys) -> None:
    """The body bytes ``segment_span`` names decrypt on their own to a superset of the range."""
    end = start + length
    first, last = c4gh.segment_span(start, end)
    assert first % CSEG == 0 and last % CSEG == 0 and first < last
    assert first // CSEG == start // SEG and (last // CSEG - 1) * SEG < end <= last // CSEG * SEG
    header = c4gh.open_header(c4gh.parse_header(source["header"]), keys[0].secret)
    out = io.BytesIO()
    c4gh.decrypt_body(io.BytesIO(source["body"][first:last]), out, header)
    offset = start - first // CSEG * SEG
    assert out.getvalue()[offset : offset + length] == source["plain"][start:end]


def test_segment_reader_batches(source, keys) -> None:
    header = c4gh.open_header(c4gh.parse_header(source["header"]), keys[0].secret)
    reader = c4gh.SegmentReader(io.BytesIO(source["body"]), header.session_keys)
    plain = source["plain"]
    for index, stop in [(0, 1), (3, 5), (2, None), (69, None), (70, None)]:
        offset, view = reader.read_batch(index, stop)
        assert offset == index * SEG
        assert len(view) > 0
        assert bytes(view) == plain[offset : offset + len(view)]
        if stop is not None:
            assert len(view) >= min((stop - index) * SEG, SIZE - offset)
    assert len(reader.read_batch(71)[1]) == 0


def test_real_file_source(tmp_path: Path, source, keys) -> None:
    with source["path"].open("rb") as handle:
        assert ranged(handle, keys[0].secret, 10, 20) == source["plain"][10:20]
