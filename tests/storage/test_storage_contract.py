"""The behaviour every object store must have, run against each backend (fixture ``store``)."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genofed.storage import InvalidKey, InvalidRange, ObjectNotFound, ObjectStore

MiB = 1 << 20
# Over two S3 parts at the 5 MiB test part size, and many local write buffers.
BIG = 12 * MiB + 12345


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def read_all(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


def failing_source(before: bytes, error: Exception) -> Iterator[bytes]:
    yield from chunks_of(before, 6 * MiB)
    raise error


@pytest.mark.parametrize("size", [0, 1, 1000, BIG])
def test_round_trip_from_a_file(store: ObjectStore, size: int) -> None:
    data = random_bytes(size)
    assert store.put("runs/x.c4gh", io.BytesIO(data)) == size
    assert read_all(store, "runs/x.c4gh") == data
    assert store.size("runs/x.c4gh") == size
    assert store.exists("runs/x.c4gh")


@pytest.mark.parametrize("chunk_size", [1, 777, 3 * MiB + 1])
def test_round_trip_from_chunks_of_any_size(store: ObjectStore, chunk_size: int) -> None:
    size = 5000 if chunk_size == 1 else BIG
    data = random_bytes(size, seed=chunk_size)
    assert store.put("k", chunks_of(data, chunk_size)) == size
    assert read_all(store, "k") == data


def test_empty_chunks_are_harmless(store: ObjectStore) -> None:
    assert store.put("k", [b"", b"ab", b"", b"c", b""]) == 3
    assert read_all(store, "k") == b"abc"


def test_bytes_are_not_a_source(store: ObjectStore) -> None:
    with pytest.raises(TypeError, match=r"\[data\]"):
        store.put("k", b"abc")  # type: ignore[arg-type]
    assert not store.exists("k")


def test_open_reads_in_pieces(store: ObjectStore) -> None:
    data = random_bytes(3 * MiB + 5)
    store.put("k", [data])
    with store.open("k") as stream:
        assert stream.read(10) == data[:10]
        assert stream.read(2 * MiB) == data[10 : 2 * MiB + 10]
        assert stream.read() == data[2 * MiB + 10 :]
        assert stream.read(1) == b""
    assert stream.closed


def test_put_replaces_an_object(store: ObjectStore) -> None:
    store.put("k", [b"old content"])
    store.put("k", [b"new"])
    assert read_all(store, "k") == b"new"
    assert store.size("k") == 3


def test_failed_put_leaves_nothing(store: ObjectStore) -> None:
    with pytest.raises(RuntimeError, match="source broke"):
        store.put("k", failing_source(random_bytes(BIG), RuntimeError("source broke")))
    assert not store.exists("k")
    assert list(store.list()) == []


def test_failed_put_keeps_the_earlier_object(store: ObjectStore) -> None:
    store.put("k", [b"precious"])
    with pytest.raises(RuntimeError):
        store.put("k", failing_source(random_bytes(BIG), RuntimeError("source broke")))
    assert read_all(store, "k") == b"precious"


def test_readers_see_the_old_object_while_a_put_runs(store: ObjectStore) -> None:
    store.put("k", [b"old"])
    seen: list[bytes] = []

    def source() -> Iterator[bytes]:
        yield from chunks_of(random_bytes(BIG), 6 * MiB)  # S3: parts already uploaded
        seen.append(read_all(store, "k"))
        seen.append(b"%d" % store.size("k"))
        yield b"tail"

    store.put("k", source())
    assert seen == [b"old", b"3"]
    assert store.size("k") == BIG + 4


def test_missing_objects(store: ObjectStore) -> None:
    assert not store.exists("no/such")
    store.delete("no/such")  # not an error
    for attempt in (store.open, store.size, store.iter_range):
        with pytest.raises(ObjectNotFound) as caught:
            attempt("no/such")
        assert "'no/such'" in str(caught.value)
        assert store.describe() in str(caught.value)


def test_delete(store: ObjectStore) -> None:
    store.put("a/b", [b"x"])
    store.delete("a/b")
    assert not store.exists("a/b")
    assert list(store.list()) == []
    store.put("a", [b"a file where a folder was"])  # local: the empty folder was pruned
    assert read_all(store, "a") == b"a file where a folder was"


KEYS = ["a-c", "a/b", "a/c/d", "a0", "b/x", "z", "é/1"]  # code point (= S3) order


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", KEYS),
        ("a", ["a-c", "a/b", "a/c/d", "a0"]),
        ("a/", ["a/b", "a/c/d"]),
        ("a/c", ["a/c/d"]),
        ("a/c/d", ["a/c/d"]),
        ("é", ["é/1"]),
        ("q", []),
        ("nothing/here/", []),
    ],
)
def test_list_is_sorted_and_filtered_by_prefix(
    store: ObjectStore, prefix: str, expected: list[str]
) -> None:
    for key in reversed(KEYS):
        store.put(key, [key.encode()])
    assert list(store.list(prefix)) == expected


@pytest.mark.parametrize("prefix", ["/a", "../", "a/../", "a\\b", "a//", "x\x00"])
def test_list_rejects_unsafe_prefixes(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        store.list(prefix)


def test_iter_range_matches_slicing(store: ObjectStore) -> None:
    data = random_bytes(3000, seed=7)
    store.put("r", [data])

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        start=st.integers(0, len(data)),
        length=st.none() | st.integers(0, len(data) + 100),
        chunk_size=st.integers(1, 4000),
    )
    def check(start: int, length: int | None, chunk_size: int) -> None:
        end = None if length is None else start + length
        chunks = list(store.iter_range("r", start, end, chunk_size=chunk_size))
        assert b"".join(chunks) == data[start:end]
        assert all(0 < len(chunk) <= chunk_size for chunk in chunks)

    check()


def test_iter_range_across_s3_parts(store: ObjectStore) -> None:
    data = random_bytes(BIG, seed=3)
    store.put("big", [data])
    start, end = 5 * MiB - 10, 10 * MiB + 10
    assert b"".join(store.iter_range("big", start, end)) == data[start:end]
    assert b"".join(store.iter_range("big")) == data


def test_iter_range_edges(store: ObjectStore) -> None:
    store.put("ten", [b"0123456789"])
    store.put("empty", [])
    assert b"".join(store.iter_range("ten", 10)) == b""
    assert b"".join(store.iter_range("ten", 4, 4)) == b""
    assert b"".join(store.iter_range("ten", 8, 10**12)) == b"89"
    assert b"".join(store.iter_range("empty")) == b""
    assert b"".join(store.iter_range("empty", 0, 5)) == b""


@pytest.mark.parametrize(("start", "end"), [(11, None), (11, 11), (50, 60), (-1, None), (5, 4)])
def test_iter_range_refuses_bad_ranges_at_call_time(
    store: ObjectStore, start: int, end: int | None
) -> None:
    store.put("ten", [b"0123456789"])
    with pytest.raises(InvalidRange) as caught:
        store.iter_range("ten", start, end)  # no iteration needed to fail
    if start > 10:
        assert "10 bytes" in str(caught.value)


def test_iter_range_is_lazy_and_closable(store: ObjectStore) -> None:
    data = random_bytes(5 * MiB)
    store.put("k", [data])
    chunks = store.iter_range("k", chunk_size=MiB)
    assert next(chunks) == data[:MiB]
    chunks.close()  # type: ignore[attr-defined]  # a generator: releases the stream


BAD_KEYS = ["", "/abs", "../x", "a/../../b", "a/..", "./a", "a//b", "a/", "a\\b", "a\x00b"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_every_operation_rejects_bad_keys(store: ObjectStore, key: str) -> None:
    operations = [
        lambda: store.put(key, [b"x"]),
        lambda: store.open(key),
        lambda: store.iter_range(key),
        lambda: store.size(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ]
    for operation in operations:
        with pytest.raises(InvalidKey):
            operation()
    assert list(store.list()) == []


def test_any_valid_key_round_trips(store: ObjectStore) -> None:
    segment = st.text(
        st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="/\\"),
        min_size=1,
        max_size=20,
    ).filter(lambda s: s not in (".", "..", ".genofed-tmp"))

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(segment, min_size=1, max_size=3).map("/".join), st.binary(max_size=50))
    def check(key: str, data: bytes) -> None:
        assert store.put(key, [data]) == len(data)
        assert list(store.list()) == [key]
        assert read_all(store, key) == data
        store.delete(key)
        assert list(store.list()) == []

    check()


def test_describe_and_repr_name_the_store(store: ObjectStore) -> None:
    assert store.describe() in repr(store)
    assert store.describe().startswith(("local:/", "s3://"))
