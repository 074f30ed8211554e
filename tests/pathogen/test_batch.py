"""Batch validation: every bad input gets its own located problem; valid rows are kept."""

from __future__ import annotations

import gzip
import lzma
from datetime import date
from pathlib import Path

import pytest
from pathogen_support import COLUMNS, good_row, write_sheet

from genofed.pathogen.batch import BatchReport, date_range, validate_batch
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.problems import Problem

TODAY = date(2026, 1, 1)
SEQ = "ACGT" * 30


def _fasta(path: Path, records: dict[str, str]) -> Path:
    path.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in records.items()))
    return path


def _run(
    tmp_path: Path,
    records: dict[str, str],
    rows: list[dict[str, str]],
    known: tuple[str, ...] = (),
    columns: tuple[str, ...] = COLUMNS,
) -> BatchReport:
    fasta = _fasta(tmp_path / "seqs.fasta", records)
    sheet = write_sheet(tmp_path / "meta.tsv", rows, columns)
    organism = load_organism("sars-cov-2")
    return validate_batch(organism, fasta, sheet, known_ids=known, today=TODAY)


def _only(report: BatchReport) -> Problem:
    assert len(report.problems) == 1, [str(p) for p in report.problems]
    return report.problems[0]


def test_clean_batch(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ, "b": SEQ}, [good_row("a"), good_row("b")])
    assert report.ok
    assert [(e.sequence_id, e.row) for e in report.valid] == [("a", 2), ("b", 3)]
    assert report.valid[0].metadata["host"] == "Human"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("collection_date", "2030-01-01", "is in the future"),
        ("collection_date", "2026-02", "is in the future"),
        ("collection_date", "2019-06-30", "before 2019-11-01"),
        ("collection_date", "2018", "before 2019-11-01"),
        ("collection_date", "15/01/2025", "is not a date"),
        ("collection_date", "2025-02-30", "is not a date"),
        ("collection_date", "2025-13", "is not a date"),
        ("location", "Belgium", "only one place"),
        ("location", "Europe // Brussels", "empty level"),
        ("location", "Eurpoe / Belgium", "not a continent"),
        ("coverage", "lots", "not a positive depth"),
        ("coverage", "0x", "not a positive depth"),
        ("host", "", "is required but empty"),
        ("authors", "", "is required but empty"),
    ],
)
def test_bad_field(tmp_path: Path, field: str, value: str, message: str) -> None:
    rows = [good_row("a"), good_row("b", **{field: value})]
    report = _run(tmp_path, {"a": SEQ, "b": SEQ}, rows)
    problem = _only(report)
    assert (problem.file, problem.line, problem.record, problem.field) == (
        "meta.tsv",
        3,
        "b",
        field,
    )
    assert message in problem.problem
    assert problem.fix
    assert [e.sequence_id for e in report.valid] == ["a"]  # the good row is not lost


def test_continent_hint(tmp_path: Path) -> None:
    rows = [good_row("a", location="Eurpoe / Belgium")]
    assert "did you mean Europe?" in _only(_run(tmp_path, {"a": SEQ}, rows)).fix


@pytest.mark.parametrize("value", ["2024", "2024-03", "2024-03-05", "2019-11", "2025-12-31"])
def test_partial_dates_accepted(tmp_path: Path, value: str) -> None:
    assert _run(tmp_path, {"a": SEQ}, [good_row("a", collection_date=value)]).ok


def test_date_range() -> None:
    assert date_range("2024") == (date(2024, 1, 1), date(2024, 12, 31))
    assert date_range("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert date_range("2024-03-05") == (date(2024, 3, 5), date(2024, 3, 5))
    assert date_range("2024-3") is None


def test_sequence_without_metadata(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ, "b": SEQ}, [good_row("a")])
    problem = _only(report)
    assert (problem.file, problem.line, problem.record) == ("seqs.fasta", 3, "b")
    assert "has no row in meta.tsv" in problem.problem


def test_metadata_without_sequence(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ}, [good_row("a"), good_row("b")])
    problem = _only(report)
    assert (problem.file, problem.line, problem.record) == ("meta.tsv", 3, "b")
    assert "has no sequence in seqs.fasta" in problem.problem
    assert [e.sequence_id for e in report.valid] == ["a"]


def test_row_without_id(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ}, [good_row("a"), good_row("")])
    problem = _only(report)
    assert (problem.line, problem.field, problem.problem) == (
        3,
        "sequence_id",
        "has no sequence id",
    )


def test_duplicate_rows(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ, "b": SEQ}, [good_row("a"), good_row("b"), good_row("a")])
    problem = _only(report)
    assert (problem.line, problem.record) == (4, "a")
    assert "repeats the id of row 2" in problem.problem
    assert [e.sequence_id for e in report.valid] == ["b"]


def test_duplicate_sequences(tmp_path: Path) -> None:
    fasta = tmp_path / "seqs.fasta"
    fasta.write_text(f">a\n{SEQ}\n>b\n{SEQ}\n>a\n{SEQ}\n")
    sheet = write_sheet(tmp_path / "meta.tsv", [good_row("a"), good_row("b")])
    report = validate_batch(load_organism("sars-cov-2"), fasta, sheet, today=TODAY)
    problem = _only(report)
    assert (problem.file, problem.line, problem.record) == ("seqs.fasta", 5, "a")
    assert "repeats the id of the record at line 1" in problem.problem
    assert [e.sequence_id for e in report.valid] == ["b"]


def test_known_ids(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ, "b": SEQ}, [good_row("a"), good_row("b")], known=("a",))
    problem = _only(report)
    assert (problem.file, problem.line, problem.record) == ("meta.tsv", 2, "a")
    assert "already submitted" in problem.problem
    assert [e.sequence_id for e in report.valid] == ["b"]


def test_known_id_in_fasta_only(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ, "b": SEQ}, [good_row("b")], known=("a",))
    problem = _only(report)
    assert (problem.file, problem.line, problem.record) == ("seqs.fasta", 1, "a")
    assert "already submitted" in problem.problem


def test_non_iupac_sequence(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ, "b": "ACGTXACGT"}, [good_row("a"), good_row("b")])
    problem = _only(report)
    assert (problem.file, problem.line, problem.record, problem.value) == (
        "seqs.fasta",
        4,
        "b",
        "X",
    )
    assert [e.sequence_id for e in report.valid] == ["a"]


def test_missing_required_column(tmp_path: Path) -> None:
    columns = tuple(c for c in COLUMNS if c != "host")
    report = _run(tmp_path, {"a": SEQ}, [good_row("a")], columns=columns)
    header = [p for p in report.problems if p.line == 1]
    assert [(p.field, p.problem) for p in header] == [
        ("host", "is a required column, missing from the header")
    ]
    # the row also lacks a host; it is reported for the row too, so the entry is rejected
    assert not report.valid


def test_unknown_column_hint(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ}, [good_row("a")], columns=(*COLUMNS, "colection_date"))
    problem = _only(report)
    assert (problem.line, problem.field) == (1, "colection_date")
    assert "did you mean collection_date?" in problem.fix


def test_join_on_virus_name(tmp_path: Path) -> None:
    columns = tuple(c for c in COLUMNS if c != "sequence_id")
    name = "hCoV-19/Belgium/ULG-1/2025"
    assert _run(tmp_path, {name: SEQ}, [good_row(name)], columns=columns).ok


def test_friendly_column_names(tmp_path: Path) -> None:
    columns = tuple(c.replace("_", " ").title() for c in COLUMNS)
    rows = [{c.replace("_", " ").title(): v for c, v in good_row("a").items()}]
    assert _run(tmp_path, {"a": SEQ}, rows, columns=columns).ok


@pytest.mark.parametrize(("opener", "suffix"), [(gzip.open, ".gz"), (lzma.open, ".xz")])
def test_compressed_inputs(tmp_path: Path, opener: object, suffix: str) -> None:
    plain_fasta = _fasta(tmp_path / "plain.fasta", {"a": SEQ})
    plain_sheet = write_sheet(tmp_path / "plain.csv", [good_row("a")])
    fasta, sheet = tmp_path / f"seqs.fasta{suffix}", tmp_path / f"meta.csv{suffix}"
    for source, target in ((plain_fasta, fasta), (plain_sheet, sheet)):
        with opener(target, "wb") as out:  # type: ignore[operator]
            out.write(source.read_bytes())
    report = validate_batch(load_organism("sars-cov-2"), fasta, sheet, today=TODAY)
    assert report.ok and len(report.valid) == 1


def test_unreadable_files(tmp_path: Path) -> None:
    organism = load_organism("sars-cov-2")
    report = validate_batch(organism, tmp_path / "no.fasta", tmp_path / "no.tsv", today=TODAY)
    assert {(p.file, p.line) for p in report.problems} == {("no.fasta", None), ("no.tsv", None)}
    assert all("cannot be read" in p.problem for p in report.problems)


def test_sheet_not_utf8(tmp_path: Path) -> None:
    fasta = _fasta(tmp_path / "seqs.fasta", {"a": SEQ})
    sheet = tmp_path / "meta.tsv"
    sheet.write_bytes(b"sequence_id\tlocation\na\tEurope / Belgi\xeb\n")
    report = validate_batch(load_organism("sars-cov-2"), fasta, sheet, today=TODAY)
    assert any(p.file == "meta.tsv" and "not UTF-8" in p.problem for p in report.problems)


def test_problem_reads_as_a_sentence(tmp_path: Path) -> None:
    report = _run(tmp_path, {"a": SEQ}, [good_row("a", collection_date="2030")])
    assert str(_only(report)) == (
        "meta.tsv line 2 record a field collection_date (2030): is in the future "
        "(today is 2026-01-01); check the year and month"
    )
