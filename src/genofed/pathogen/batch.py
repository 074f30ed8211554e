"""A submission batch: a FASTA file and a metadata sheet, joined on the sequence id.

Metadata follows GISAID / PHA4GE in spirit (virus name, collection date, location hierarchy,
host, originating and submitting labs, authors, sequencing technology, ...). The sheet is TSV or
CSV (gzip/xz too), its first row naming the columns; the join column is ``sequence_id`` or, as
on GISAID where the FASTA header is the virus name, ``virus_name`` when there is no
``sequence_id`` column.

:func:`validate_batch` lists every problem, each located (file, line or row, record, field) with
a fix, and keeps the valid entries apart: one bad row must not hold back the good ones, so a lab
can release what is ready and fix the rest.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from calendar import monthrange
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from genofed.pathogen.compression import (
    STREAM_ERRORS,
    CompressionError,
    base_name,
    open_binary,
)
from genofed.pathogen.fasta import FastaRecord, read_fasta
from genofed.pathogen.organisms import Organism
from genofed.pathogen.problems import Problem, shown

ID_COLUMN = "sequence_id"
NAME_COLUMN = "virus_name"
CONTINENTS = ("Africa", "Antarctica", "Asia", "Europe", "North America", "Oceania", "South America")
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_COVERAGE = re.compile(r"(\d+(?:\.\d+)?)\s*[xX]?")
_DATE_FIX = "write YYYY-MM-DD, or YYYY-MM / YYYY when the day or month is unknown"
_LOCATION_FIX = "write 'Continent / Country / Region', e.g. 'Europe / Belgium / Brussels'"


@dataclass(frozen=True)
class BatchEntry:
    """A sequence with its metadata, both valid."""

    sequence_id: str
    record: FastaRecord
    metadata: Mapping[str, str]
    row: int


@dataclass
class BatchReport:
    """What validation found: every problem, and the entries that can go ahead."""

    problems: list[Problem] = field(default_factory=list)
    valid: list[BatchEntry] = field(default_factory=list)
    rejected_ids: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Row:
    number: int
    values: dict[str, str]


@dataclass
class _Sheet:
    name: str
    key: str = ID_COLUMN
    rows: list[_Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def validate_batch(
    organism: Organism,
    fasta_path: Path,
    metadata_path: Path,
    *,
    known_ids: Iterable[str] = (),
    today: date | None = None,
) -> BatchReport:
    """Check a batch; ``known_ids`` are ids of earlier submissions (resubmitting one is a
    problem: a new version goes through an update, not a new submission); ``today`` is for tests."""
    known = frozenset(known_ids)
    today = today or date.today()
    sheet = read_metadata(metadata_path, organism)
    report = BatchReport(problems=list(sheet.problems))
    rows = _index_rows(sheet, known, report)
    reader = read_fasta(fasta_path)
    join = _Join(organism, today, known, sheet, reader.name, rows, report)
    for record in reader:
        join.add(record)
    matched = join.matched
    report.problems.extend(reader.problems)
    for record_id, row in rows.items():
        if record_id not in matched:
            report.rejected_ids.add(record_id)
            report.problems.append(
                Problem(
                    sheet.name,
                    row.number,
                    record_id,
                    sheet.key,
                    shown(record_id),
                    f"has no sequence in {reader.name}",
                    "add the sequence to the FASTA with this id as its header, or remove the row",
                )
            )
    # a FASTA id repeated later rejects its first copy too: which one is meant is unknown
    report.valid = [e for e in report.valid if e.sequence_id not in report.rejected_ids]
    return report


def _index_rows(sheet: _Sheet, known: frozenset[str], report: BatchReport) -> dict[str, _Row]:
    """Rows by id; rows without an id, repeated ids and already-submitted ids are reported."""
    by_id: dict[str, _Row] = {}
    repeated: set[str] = set()
    for row in sheet.rows:
        record_id = row.values.get(sheet.key, "")
        if not record_id:
            report.problems.append(
                Problem(
                    sheet.name,
                    row.number,
                    None,
                    sheet.key,
                    None,
                    "has no sequence id",
                    "write the id of the sequence's FASTA header",
                )
            )
        elif record_id in by_id:
            repeated.add(record_id)
            report.problems.append(
                Problem(
                    sheet.name,
                    row.number,
                    record_id,
                    sheet.key,
                    shown(record_id),
                    f"repeats the id of row {by_id[record_id].number}",
                    "describe each sequence in one row only",
                )
            )
        elif record_id in known:
            report.problems.append(_already(sheet.name, row.number, record_id, sheet.key))
            by_id[record_id] = row
            repeated.add(record_id)
        else:
            by_id[record_id] = row
    report.rejected_ids |= repeated
    return by_id


def _already(name: str, number: int, record_id: str, field_name: str) -> Problem:
    return Problem(
        name,
        number,
        record_id,
        field_name,
        shown(record_id),
        "was already submitted in an earlier batch",
        "give a new sequence a new id; to correct an earlier one, submit an update",
    )


@dataclass
class _Join:
    """Joins FASTA records, as they stream past, with their sheet rows."""

    organism: Organism
    today: date
    known: frozenset[str]
    sheet: _Sheet
    fasta_name: str
    rows: dict[str, _Row]
    report: BatchReport
    matched: set[str] = field(default_factory=set)

    def add(self, record: FastaRecord) -> None:
        """Check one record and its row; keep the pair if both are clean."""
        problems = list(record.problems)
        row = self.rows.get(record.id) if record.id else None
        if row is None:
            problems.extend(self._unmatched(record))
        elif record.id not in self.matched:  # a repeated FASTA id: the reader reported it
            self.matched.add(record.id)
            problems.extend(check_row(row, self.organism, self.today, self.sheet))
        self.report.problems.extend(problems)
        if problems or row is None or record.id in self.report.rejected_ids:
            self.report.rejected_ids.add(record.id)
            return
        self.report.valid.append(BatchEntry(record.id, record, row.values, row.number))

    def _unmatched(self, record: FastaRecord) -> list[Problem]:
        """A record without a row: already submitted earlier, or its metadata is missing."""
        if not record.id:
            return []  # the reader reported the missing id
        if record.id in self.known:
            return [_already(self.fasta_name, record.line, record.id, "header")]
        return [
            Problem(
                self.fasta_name,
                record.line,
                record.id,
                "header",
                shown(record.id),
                f"has no row in {self.sheet.name}",
                f"add a row whose {self.sheet.key} is this id, or remove the sequence",
            )
        ]


# -- the metadata sheet -------------------------------------------------------------------------


def read_metadata(path: Path, organism: Organism) -> _Sheet:
    """Read a TSV/CSV sheet (gzip/xz too); unreadable files and bad headers become problems."""
    sheet = _Sheet(path.name)
    try:
        with open_binary(path) as stream:
            content = stream.read()
    except CompressionError as error:
        sheet.problems.append(Problem(path.name, None, None, None, None, error.problem, error.fix))
        return sheet
    except STREAM_ERRORS as error:
        sheet.problems.append(
            _whole(path.name, f"cannot be decompressed ({error})", "compress it again")
        )
        return sheet
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        sheet.problems.append(
            _whole(path.name, "is not UTF-8 text", "save it as UTF-8 (in Excel: CSV UTF-8)")
        )
        return sheet
    delimiter = "," if base_name(path.name).lower().endswith(".csv") else "\t"
    try:
        cells = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        sheet.problems.append(_whole(path.name, f"cannot be read: {error}", "save it again"))
        return sheet
    _fill(sheet, cells, organism)
    return sheet


def _whole(name: str, problem: str, fix: str) -> Problem:
    return Problem(name, None, None, None, None, problem, fix)


def _fill(sheet: _Sheet, cells: list[list[str]], organism: Organism) -> None:
    """Header then rows; blank rows and rows starting with '#' are skipped."""
    numbered = [(n, row) for n, row in enumerate(cells, start=1) if _content(row)]
    if not numbered:
        sheet.problems.append(_whole(sheet.name, "is empty", "add a header row and one row each"))
        return
    header_line, header = numbered[0]
    columns = [_column(cell) for cell in header]
    _check_header(sheet, header_line, columns, organism)
    for number, row in numbered[1:]:
        values = {c: v.strip() for c, v in zip(columns, row, strict=False) if c and v.strip()}
        if len(row) > len(columns) and any(cell.strip() for cell in row[len(columns) :]):
            sheet.problems.append(
                Problem(
                    sheet.name,
                    number,
                    values.get(sheet.key),
                    None,
                    None,
                    f"has {len(row)} cells but the header names {len(columns)} columns",
                    "remove the extra cells or name their column",
                )
            )
        sheet.rows.append(_Row(number, values))


def _content(row: list[str]) -> bool:
    return any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")


def _column(cell: str) -> str:
    """Column names as people write them: 'Collection date' is collection_date."""
    return re.sub(r"[\s\-]+", "_", cell.strip().lower())


def _check_header(sheet: _Sheet, line: int, columns: list[str], organism: Organism) -> None:
    """Missing required columns once per sheet (not on every row); unknown ones with a hint."""
    known = (ID_COLUMN, *organism.schema.fields)
    if ID_COLUMN not in columns:
        sheet.key = NAME_COLUMN
    for name in organism.schema.required:
        if name not in columns:
            sheet.problems.append(
                Problem(
                    sheet.name,
                    line,
                    None,
                    name,
                    None,
                    "is a required column, missing from the header",
                    f"add a column named {name}",
                )
            )
    for name in columns:
        if name and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            sheet.problems.append(
                Problem(
                    sheet.name,
                    line,
                    None,
                    shown(name),
                    None,
                    "is not a known column",
                    f"{hint}known columns: {', '.join(known)}",
                )
            )


# -- one row's fields ---------------------------------------------------------------------------


def check_row(row: _Row, organism: Organism, today: date, sheet: _Sheet) -> list[Problem]:
    """Every problem with one row: missing required fields, then each field's own checks."""
    record_id = row.values.get(sheet.key)
    problems = []

    def problem(field_name: str, text: str, fix: str) -> None:
        value = shown(row.values.get(field_name))
        problems.append(Problem(sheet.name, row.number, record_id, field_name, value, text, fix))

    for name in organism.schema.required:
        if not row.values.get(name):
            problem(name, "is required but empty", f"fill in {name.replace('_', ' ')}")
    checks = {
        "collection_date": lambda v: check_date(v, organism.schema.earliest_date, today),
        "location": check_location,
        "coverage": check_coverage,
    }
    for name, check in checks.items():
        value = row.values.get(name)
        if value:
            found = check(value)
            if found:
                problem(name, *found)
    return problems


def date_range(value: str) -> tuple[date, date] | None:
    """The first and last day a (possibly partial) date can mean: '2024-03' is March 2024."""
    match = _DATE.fullmatch(value.strip())
    if not match:
        return None
    year, month, day = (int(part) if part else None for part in match.groups())
    assert year is not None
    try:
        if month is None:
            return date(year, 1, 1), date(year, 12, 31)
        if day is None:
            return date(year, month, 1), date(year, month, monthrange(year, month)[1])
        return date(year, month, day), date(year, month, day)
    except ValueError:
        return None


def check_date(value: str, earliest: date, today: date) -> tuple[str, str] | None:
    """A collection date: ISO, partial allowed, never in the future nor before the virus."""
    span = date_range(value)
    if span is None:
        return "is not a date", _DATE_FIX
    first, last = span
    if first > today:
        return f"is in the future (today is {today.isoformat()})", "check the year and month"
    if last < earliest:
        return (
            f"is before {earliest.isoformat()}, the earliest plausible date for this organism",
            "check the year; write the sample's collection date, not another date",
        )
    return None


def check_location(value: str) -> tuple[str, str] | None:
    """'Continent / Country[ / Region[ / ...]]': at least a continent and a country."""
    parts = [part.strip() for part in value.split("/")]
    if len(parts) < 2:
        return "names only one place: a location needs at least continent and country", (
            _LOCATION_FIX
        )
    if not all(parts):
        return "has an empty level between '/'", _LOCATION_FIX
    if parts[0] not in CONTINENTS:
        close = difflib.get_close_matches(parts[0].title(), CONTINENTS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"starts with {parts[0]!r}, not a continent", (
            f"{hint}start with one of {', '.join(CONTINENTS)}"
        )
    return None


def check_coverage(value: str) -> tuple[str, str] | None:
    """Mean depth such as '1500x' or '1500': a positive number."""
    match = _COVERAGE.fullmatch(value.strip())
    if not match or float(match.group(1)) <= 0:
        return "is not a positive depth", "write the mean depth as a number, e.g. 1500x"
    return None
