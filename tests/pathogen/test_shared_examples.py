"""The example sequences in ../shared validate as a batch against the shipped organism."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pathogen_support import good_row, write_sheet

from genofed.pathogen.batch import validate_batch
from genofed.pathogen.fasta import read_fasta
from genofed.pathogen.organisms import load_organism


def test_flu_examples_validate(shared_dir: Path, tmp_path: Path) -> None:
    fasta = shared_dir / "data" / "flu-h3n2-ha" / "sequences.fasta"
    reader = read_fasta(fasta)
    records = list(reader)
    assert len(records) == 48
    assert not reader.problems and all(record.valid for record in records)
    assert all(1_000 < len(record.sequence) < 2_000 for record in records)
    sheet = write_sheet(tmp_path / "metadata.tsv", [good_row(r.id) for r in records])
    organism = load_organism("flu-h3n2-ha")
    report = validate_batch(organism, fasta, sheet, today=date(2026, 1, 1))
    assert report.problems == []
    assert [entry.sequence_id for entry in report.valid] == [r.id for r in records]


def test_shipped_reference_matches_shared(shared_dir: Path) -> None:
    for name, folder in (("sars-cov-2", "sars-cov-2"), ("flu-h3n2-ha", "flu-h3n2-ha")):
        (record,) = read_fasta(shared_dir / "data" / folder / "reference.fasta")
        assert load_organism(name).reference == record.sequence
