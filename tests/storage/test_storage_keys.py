"""Key rules and the chunking helpers every backend shares."""

from __future__ import annotations

import io
import os.path
from pathlib import PurePosixPath

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from genofed.storage import InvalidKey, validate_key
from genofed.storage.base import TEMP_DIR, exact_chunks, iter_source, validate_prefix

# Text built from the pieces that make keys dangerous, plus arbitrary text.
PIECES = ["a", "b", "é", ".", "..", "", " ", "\\", "\x00", "\n", TEMP_DIR, "~", ":"]
risky_keys = st.lists(st.sampled_from(PIECES), max_size=6).map("/".join) | st.text()


@given(risky_keys)
@example("a/../../b")
@example("/etc/passwd")
def test_an_accepted_key_is_a_normalised_path_inside_the_root(key: str) -> None:
    try:
        validate_key(key)
    except InvalidKey as error:
        assert error.key == key
        assert "\n" not in str(error)
        return
    root = "/store"
    joined = os.path.join(root, key)
    assert os.path.normpath(joined) == joined  # no '.', '..' or '//' to resolve
    assert PurePosixPath(joined).is_relative_to(root) and joined != root
    assert PurePosixPath(key).parts[0] != TEMP_DIR
    assert not any(char in key for char in "\\\x00\n")


@given(st.lists(st.sampled_from(["a", "b", "cd"]), max_size=3), st.integers(0, 3))
def test_a_dotdot_segment_anywhere_is_rejected(segments: list[str], position: int) -> None:
    segments.insert(min(position, len(segments)), "..")
    with pytest.raises(InvalidKey, match=r"'\.' or '\.\.' segment"):
        validate_key("/".join(segments))


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/abs", "absolute"),
        ("../x", "'..' segment"),
        ("a/../../b", "'..' segment"),
        ("a/./b", "'.' or"),
        ("a//b", "empty segment"),
        ("a/", "ends with '/'"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("a\tb", "control character"),
        ("\ud800", "lone surrogate"),
        (f"{TEMP_DIR}/x", "reserved"),
        ("x" * 1025, "longer than 1024 bytes"),
        ("x" * 256, "segment is longer than 255 bytes"),
        (b"a", "not a string"),
    ],
)
def test_bad_keys_are_rejected_with_the_reason(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey, match="invalid object key") as caught:
        validate_key(key)
    assert reason in str(caught.value)
    assert len(str(caught.value)) < 400  # a huge key is shortened, not echoed in full


@pytest.mark.parametrize(
    "key", ["a", "a/b/c.c4gh", "..x", "x..", ".hidden", "é/ü", "with space", "x" * 255]
)
def test_good_keys_are_accepted(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/b", "..", "..x", "a/.."])
def test_prefixes_may_end_in_a_partial_segment(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@given(st.lists(st.binary(max_size=40), max_size=20), st.integers(1, 50))
def test_exact_chunks_regroups_without_loss(chunks: list[bytes], size: int) -> None:
    pieces = list(exact_chunks(chunks, size))
    assert b"".join(pieces) == b"".join(chunks)
    assert all(len(piece) == size for piece in pieces[:-1])
    assert all(0 < len(piece) <= size for piece in pieces)


def test_iter_source_reads_files_in_chunks() -> None:
    assert list(iter_source(io.BytesIO(b"abcdefg"), 3)) == [b"abc", b"def", b"g"]
    assert list(iter_source(iter([b"x", b"y"]), 3)) == [b"x", b"y"]
