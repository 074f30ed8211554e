"""Building metadata sheets for batch tests."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

COLUMNS = (
    "sequence_id",
    "virus_name",
    "collection_date",
    "location",
    "host",
    "originating_lab",
    "originating_lab_address",
    "submitting_lab",
    "submitting_lab_address",
    "authors",
    "sequencing_technology",
    "assembly_method",
    "coverage",
)


def good_row(sequence_id: str, **changes: str) -> dict[str, str]:
    """A complete, valid metadata row; ``changes`` override fields."""
    row = {
        "sequence_id": sequence_id,
        "virus_name": sequence_id,
        "collection_date": "2025-01-15",
        "location": "Europe / Belgium / Brussels",
        "host": "Human",
        "originating_lab": "UZ Leuven",
        "originating_lab_address": "Herestraat 49, 3000 Leuven",
        "submitting_lab": "Sciensano",
        "submitting_lab_address": "Juliette Wytsmanstraat 14, 1050 Brussels",
        "authors": "A. Peeters, B. Janssens",
        "sequencing_technology": "Illumina NovaSeq 6000",
        "assembly_method": "iVar 1.4",
        "coverage": "1500x",
    }
    row.update(changes)
    return row


def write_sheet(
    path: Path, rows: Iterable[Mapping[str, str]], columns: Iterable[str] = COLUMNS
) -> Path:
    """A TSV (or CSV, by suffix) sheet of ``rows``."""
    delimiter = "," if path.name.endswith(".csv") else "\t"
    names = list(columns)
    with path.open("w", newline="") as out:
        writer = csv.writer(out, delimiter=delimiter)
        writer.writerow(names)
        writer.writerows([row.get(name, "") for name in names] for row in rows)
    return path
