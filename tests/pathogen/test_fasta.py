"""The FASTA reader: records with their lines, every problem located, never a crash."""

from __future__ import annotations

import gzip
import lzma
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genofed.pathogen.fasta import IUPAC, iter_fasta, read_fasta, write_fasta
from genofed.pathogen.problems import Problem


def _read(text: bytes) -> tuple[list[Problem], list[Problem], list[tuple[str, int, str]]]:
    """(file problems, record problems, (id, line, sequence) of each record)."""
    file_problems: list[Problem] = []
    records = list(iter_fasta(text.splitlines(keepends=True), "x.fasta", file_problems))
    record_problems = [p for r in records for p in r.problems]
    return file_problems, record_problems, [(r.id, r.line, r.sequence) for r in records]


def test_records_and_lines() -> None:
    text = b">a first one\nACGT\nacgn\n\n>b\r\nRYKM\r\n"
    file_problems, record_problems, records = _read(text)
    assert not file_problems and not record_problems
    assert records == [("a", 1, "ACGTACGN"), ("b", 5, "RYKM")]


@pytest.mark.parametrize(
    ("text", "line", "record", "words"),
    [
        (b">a\nACGT\nACXT\n", 3, "a", "non-IUPAC character 'X' (first at column 3, once)"),
        (b">a\nAC-T\nA-GT\n", 2, "a", "character '-' (first at column 3, 2 times)"),
        (b">a\n>b\nACGT\n", 1, "a", "has an empty sequence"),
        (b">a\nACGT\n>a\nACGT\n", 3, "a", "repeats the id of the record at line 1"),
        (b">\nACGT\n", 1, None, "has no sequence id right after '>'"),
        (b"> a\nACGT\n", 1, None, "has no sequence id right after '>'"),
        (b">a\x01b\nACGT\n", 1, "a\x01b", "control or unprintable"),
        (b">a\nAC\xffGT\n", 2, "a", "is not UTF-8 text"),
    ],
)
def test_record_problems(text: bytes, line: int, record: str | None, words: str) -> None:
    file_problems, record_problems, _ = _read(text)
    assert not file_problems
    (problem,) = record_problems[:1]
    assert (problem.file, problem.line, problem.record) == ("x.fasta", line, record)
    assert words in problem.problem
    assert problem.fix


def test_specific_fixes() -> None:
    _, problems, _ = _read(b">a\nACGU-*\n")
    fixes = {p.value: p.fix for p in problems}
    assert "T for U" in fixes["U"]
    assert "alignment gaps" in fixes["-"]
    assert "stop" in fixes["*"]


def test_many_bad_characters_are_summarised() -> None:
    _, problems, _ = _read(b">a\n" + b"EFIJLOPQXZ!?" + b"\n")
    assert len(problems) == 10
    assert "and 2 more non-IUPAC characters" in problems[-1].problem


def test_text_before_first_header() -> None:
    file_problems, _, records = _read(b"hello\nmore\n>a\nACGT\n")
    assert [(p.line, p.problem) for p in file_problems] == [(1, "has text before the first header")]
    assert records == [("a", 3, "ACGT")]


def test_empty_file() -> None:
    file_problems, _, records = _read(b"\n\n")
    assert records == [] and [p.problem for p in file_problems] == ["holds no sequence"]


@pytest.mark.parametrize(("opener", "suffix"), [(gzip.open, ".gz"), (lzma.open, ".xz")])
def test_compressed(tmp_path: Path, opener: object, suffix: str) -> None:
    path = tmp_path / f"seqs.fasta{suffix}"
    with opener(path, "wb") as out:  # type: ignore[operator]
        out.write(b">a\nACGT\n")
    reader = read_fasta(path)
    assert [r.sequence for r in reader] == ["ACGT"] and not reader.problems


def test_truncated_gzip_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "seqs.fasta.gz"
    bases = "".join(random.Random(0).choices("ACGT", k=60_000)).encode()
    path.write_bytes(gzip.compress(b">a\n" + bases + b"\n")[:-200])
    reader = read_fasta(path)
    list(reader)
    assert any("cannot be decompressed" in p.problem for p in reader.problems)


def test_zstd_frames_are_read_and_a_truncated_one_is_a_problem(tmp_path: Path) -> None:
    import zstandard

    bases = "".join(random.Random(1).choices("ACGT", k=60_000))
    first = zstandard.ZstdCompressor().compress(f">a\n{bases}\n".encode())
    second = zstandard.ZstdCompressor().compress(b">b\nACGT\n")  # as pzstd writes: frames
    path = tmp_path / "seqs.fasta.zst"
    path.write_bytes(first + second)
    assert [record.sequence for record in read_fasta(path)] == [bases, "ACGT"]
    for cut in (first[: len(first) // 2], first + second[:-3]):
        path.write_bytes(cut)  # zstandard's own reader ends quietly at either cut
        reader = read_fasta(path)
        list(reader)
        assert any("cannot be decompressed" in p.problem for p in reader.problems)


def test_missing_file(tmp_path: Path) -> None:
    reader = read_fasta(tmp_path / "nope.fasta")
    assert list(reader) == [] and "cannot be read" in reader.problems[0].problem


# -- properties ---------------------------------------------------------------------------------

ids = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30
).filter(lambda text: not text.startswith(">"))
sequences = st.text(alphabet=sorted(IUPAC | {c.lower() for c in IUPAC}), min_size=1, max_size=300)


@given(
    st.lists(st.tuples(ids, sequences), max_size=8, unique_by=lambda pair: pair[0]),
    st.integers(min_value=1, max_value=80),
)
def test_valid_records_round_trip(records: list[tuple[str, str]], width: int) -> None:
    text = write_fasta(records, width).encode()
    file_problems, record_problems, read = _read(text)
    assert not record_problems
    assert [(rid, seq) for rid, _, seq in read] == [(rid, seq.upper()) for rid, seq in records]
    assert bool(file_problems) == (not records)  # only an empty file is a problem
    lines = text.split(b"\n")
    assert all(lines[line - 1] == f">{rid}".encode() for rid, line, _ in read)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_junk_never_crashes_and_problems_are_located(junk: bytes) -> None:
    file_problems, record_problems, records = _read(junk)
    line_count = len(junk.splitlines()) or 1
    for problem in record_problems:
        assert problem.line is not None and 1 <= problem.line <= line_count
        assert problem.problem and problem.fix
    for problem in file_problems:
        assert problem.line is None or 1 <= problem.line <= line_count
    if not (file_problems or record_problems):
        # accepted: then it really is clean FASTA
        assert records and all(set(seq) <= IUPAC for _, _, seq in records)
        assert all(rid and rid.isprintable() for rid, _, _ in records)


@given(st.lists(st.tuples(ids, sequences), min_size=1, max_size=5), st.data())
def test_one_bad_character_is_found_where_it_is(
    records: list[tuple[str, str]], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(records) - 1))
    rid, seq = records[index]
    position = data.draw(st.integers(0, len(seq)))
    records[index] = (rid, seq[:position] + "X" + seq[position:])
    text = write_fasta(records, 60).encode()
    _, problems, _ = _read(text)
    bad = [p for p in problems if p.value == "X"]
    assert len(bad) == 1
    line = text.split(b"\n")[bad[0].line - 1 if bad[0].line else 0]
    assert b"X" in line
