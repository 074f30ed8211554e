"""Credit to the labs: the acknowledgement table of a set of records, per accession.version.

Every download carries it, and a snapshot set freezes it: whoever publishes on the genomes
thanks the laboratories that collected the samples (originating) and sequenced and shared them
(submitting), and their authors.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence

from genofed.db import PathogenEntry
from genofed.pathogen.entries import InvalidInput

COLUMNS = (
    "accession_version",
    "virus_name",
    "originating_lab",
    "originating_lab_address",
    "submitting_lab",
    "submitting_lab_address",
    "authors",
)
FORMATS = ("tsv", "csv", "json")
MEDIA_TYPES = {
    "tsv": "text/tab-separated-values; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


def acknowledgement(entry: PathogenEntry) -> dict[str, str]:
    """One row of the table: who to thank for this version."""
    metadata: Mapping[str, str] = entry.sheet_metadata
    row = {name: metadata.get(name, "") for name in COLUMNS[2:]}
    return {
        "accession_version": f"{entry.accession}.{entry.version}",
        "virus_name": entry.virus_name,
        **row,
    }


def table(entries: Iterable[PathogenEntry]) -> list[dict[str, str]]:
    return [acknowledgement(entry) for entry in entries]


def render(rows: Sequence[Mapping[str, str]], form: str) -> str:
    """The table as TSV, CSV (a header row, then a row per version) or JSON."""
    if form == "json":
        return json.dumps({"acknowledgements": list(rows)}, ensure_ascii=False, indent=1)
    if form not in FORMATS:
        raise InvalidInput(f"no acknowledgement format {form!r}: choose {', '.join(FORMATS)}")
    out = io.StringIO()
    if form == "csv":  # RFC 4180: CRLF, so that fields holding either line break are quoted
        writer = csv.writer(out, lineterminator="\r\n")
    else:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    # a tab or line break inside a field would shift TSV columns: TSV readers do not unquote
    clean = (lambda v: " ".join(v.split())) if form == "tsv" else (lambda v: v)
    writer.writerows([clean(row.get(name, "")) for name in COLUMNS] for row in rows)
    return out.getvalue()
