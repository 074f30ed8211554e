"""Submissions as sheets (TSV/CSV, one per kind) or as one JSON document, and their validation.

Sheets: one file per kind, named after it (``samples.tsv``, ``studies.csv``; the singular works
too); the first row names the columns (see :func:`genofed.metadata.model.columns`); a cell with
several values separates them with ``;``; empty cells are absent values; blank rows and rows
whose first cell starts with ``#`` are skipped. A ``.csv`` whose header has ``;`` but no ``,``
between columns (Excel in some locales) is read with ``;`` between columns.

JSON: one object with a list per kind, keyed like the sheets::

    {"studies": [{"alias": "cohort", "title": "...", "study_type": "Whole Genome Sequencing"}],
     "samples": [{"alias": "S1", "sex": "female", "phenotypes": ["HP:0001250"]}], ...}

:func:`validate_submission` lists every problem; nothing is stored unless there are none (see
:func:`genofed.metadata.service.submit_metadata`).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from genofed.db import ObjectKind
from genofed.metadata.model import (
    RECORDS,
    SHEET_NAMES,
    Record,
    columns,
    kind_of_sheet,
    required_columns,
)
from genofed.metadata.problems import Problem, shown

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from genofed.metadata.references import Resolution

SHEET_SUFFIXES = {".tsv": "\t", ".csv": ","}
JSON_SUFFIX = ".json"
_NAMES_HELP = ", ".join(f"{name}.tsv" for name in SHEET_NAMES.values())
_BLANK_RUN = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class Row:
    """One object as the submitter wrote it, with where it was written."""

    kind: ObjectKind
    sheet: str
    number: int  # spreadsheet row (the header is 1), or position in a JSON list
    values: Mapping[str, Any]
    # required columns the sheet lacks: reported once for the sheet, not again on every row
    absent_columns: frozenset[str] = frozenset()

    def problem(self, column: str | None, value: Any, problem: str, fix: str) -> Problem:
        # a column named in JSON, or an unknown one, is the submitter's text: shown escaped
        return Problem(self.sheet, self.number, shown(column), shown(value), problem, fix)

    @property
    def alias(self) -> str | None:
        alias = self.values.get("alias")
        return alias.strip() if isinstance(alias, str) and alias.strip() else None


@dataclass
class Submission:
    """What was read: the rows, and the problems found while reading (unreadable files, ...)."""

    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sheets: list[str] = field(default_factory=list)  # in reading order, for reporting

    def extend(self, other: Submission) -> Submission:
        self.rows.extend(other.rows)
        self.problems.extend(other.problems)
        self.sheets.extend(sheet for sheet in other.sheets if sheet not in self.sheets)
        return self


# -- reading ------------------------------------------------------------------------------------


def read_paths(paths: Iterable[Path]) -> Submission:
    """Read sheets and JSON documents; a folder contributes its .tsv, .csv and .json files."""
    submission = Submission()
    for path in paths:
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.suffix.lower() in (*SHEET_SUFFIXES, JSON_SUFFIX) and child.is_file():
                    submission.extend(read_file(child))
        else:
            submission.extend(read_file(path))
    return submission


def read_file(path: Path) -> Submission:
    """Read one sheet or JSON document; an unreadable file is a problem, not an exception."""
    try:
        content = path.read_bytes()
    except OSError as error:
        return _whole(path.name, f"cannot be read: {error.strerror}", "check the path")
    if path.suffix.lower() == JSON_SUFFIX:
        return read_json(path.name, content)
    return read_sheet(path.name, content)


def read_json(name: str, content: bytes | str) -> Submission:
    """Read a JSON document (see the module docstring for its shape)."""
    name = _label(name)
    try:
        document = json.loads(content)
    except UnicodeDecodeError:
        return _whole(name, "is not UTF-8 text", "save it as UTF-8")
    except json.JSONDecodeError as error:
        return _whole(
            name,
            f"is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
            "fix the JSON syntax there",
        )
    except RecursionError:
        return _whole(name, "nests too deeply", "a submission is an object of lists of objects")
    return read_document(document, name)


def read_document(document: Any, name: str = "") -> Submission:
    """Read a parsed JSON document; ``name`` (e.g. the file's) prefixes its list names."""
    if not isinstance(document, Mapping):
        return _whole(
            name or "submission",
            "is not a JSON object",
            f'write {{"studies": [...], "samples": [...], ...}} with lists among {_list_names()}',
        )
    submission = Submission()
    for key, items in document.items():
        sheet = _label(f"{name}:{key}" if name else str(key))
        submission.sheets.append(sheet)
        kind = kind_of_sheet(str(key))
        if kind is None:
            submission.problems.append(
                Problem(sheet, None, None, None, "not a kind of object", _kind_fix(str(key)))
            )
        elif not isinstance(items, list):
            submission.problems.append(
                Problem(sheet, None, None, shown(items), "not a list", "write a list of objects")
            )
        else:
            submission.extend(_document_rows(kind, sheet, items))
    return submission


def _document_rows(kind: ObjectKind, sheet: str, items: list[Any]) -> Submission:
    submission = Submission()
    for number, item in enumerate(items, start=1):
        if isinstance(item, Mapping):
            submission.rows.append(Row(kind, sheet, number, {str(k): v for k, v in item.items()}))
        else:
            submission.problems.append(
                Problem(sheet, number, None, shown(item), "not an object", _object_fix(kind))
            )
    return submission


def read_sheet(name: str, content: bytes | str) -> Submission:
    """Read one TSV/CSV sheet; ``name`` is its file name, which says its kind."""
    stem, suffix = _split_name(name)
    name = _label(name)
    kind = kind_of_sheet(stem)
    if suffix not in SHEET_SUFFIXES:
        return _whole(name, "is neither a sheet nor JSON", "name it .tsv, .csv or .json")
    if kind is None:
        return _whole(name, "is not named after a kind of object", _kind_fix(stem))
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _whole(name, "is not UTF-8 text", "save it as UTF-8 (in Excel: CSV UTF-8)")
    delimiter = _delimiter(suffix, content)
    try:
        records = list(csv.reader(io.StringIO(content, newline=""), delimiter=delimiter))
    except csv.Error as error:
        return _whole(name, f"cannot be read as a sheet: {error}", "save it again as TSV or CSV")
    return _sheet_rows(kind, name, records)


def _split_name(name: str) -> tuple[str, str]:
    path = Path(name)
    return path.stem, path.suffix.lower()


def _delimiter(suffix: str, content: str) -> str:
    header = content.partition("\n")[0]
    if suffix == ".csv" and ";" in header and "," not in header:
        return ";"
    return SHEET_SUFFIXES[suffix]


def _sheet_rows(kind: ObjectKind, sheet: str, records: list[list[str]]) -> Submission:
    if not records or not any(cell.strip() for cell in records[0]):
        fix = "the first row names the columns: " + ", ".join(columns(kind))
        return _whole(sheet, "has no header row", fix)
    header, submission = _header(kind, sheet, records[0])
    submission.sheets.append(sheet)
    absent = frozenset(required_columns(kind)) - set(header.values())
    for column in sorted(absent, key=columns(kind).index):
        submission.problems.append(
            Problem(sheet, 1, column, None, "missing required column", f"add a column {column}")
        )
    named = {index for index, cell in enumerate(records[0]) if cell.strip()}
    for number, cells in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue
        stray = [i for i, cell in enumerate(cells) if cell.strip() and i not in named]
        if stray:
            submission.problems.append(
                Problem(
                    sheet,
                    number,
                    None,
                    shown(cells[stray[0]]),
                    f"a value in column {stray[0] + 1}, which has no name in row 1",
                    "name the column in row 1, or remove the value",
                )
            )
        values = {header[i]: cell for i, cell in enumerate(cells) if i in header}
        submission.rows.append(Row(kind, sheet, number, values, absent))
    return submission


def _header(kind: ObjectKind, sheet: str, cells: list[str]) -> tuple[dict[int, str], Submission]:
    """The known columns by position, and the problems with the others."""
    known = columns(kind)
    header: dict[int, str] = {}
    submission = Submission()
    for index, cell in enumerate(cells):
        name = _BLANK_RUN.sub("_", cell.strip().lower())
        if not name:
            continue
        if name in header.values():
            submission.problems.append(
                Problem(sheet, 1, name, None, "the column appears twice", "keep one of them")
            )
        elif name not in known:
            submission.problems.append(
                Problem(sheet, 1, shown(name), None, "unknown column", _column_fix(kind, name))
            )
        else:
            header[index] = name
    return header, submission


def _label(name: str) -> str:
    """A file or list name as problems show it (escaped: it is the submitter's text)."""
    return shown(name) or "?"


def _whole(sheet: str, problem: str, fix: str) -> Submission:
    return Submission(problems=[Problem(sheet, None, None, None, problem, fix)], sheets=[sheet])


def _list_names() -> str:
    return ", ".join(SHEET_NAMES.values())


def _kind_fix(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(SHEET_NAMES.values()), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{hint}sheets are named {_NAMES_HELP} (or .csv)"


def _column_fix(kind: ObjectKind, name: str) -> str:
    known = columns(kind)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}? " if close else "remove it, or rename it: "
    return f"{hint}{SHEET_NAMES[kind]} columns are {', '.join(known)}"


def _object_fix(kind: ObjectKind) -> str:
    return "write an object with the fields " + ", ".join(columns(kind))


# -- parsing rows into records ------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A row and its record, or None if the row has problems; ``bad`` names the cells (column,
    and the item's index in a multi-valued cell) that have problems of their own."""

    row: Row
    record: Record | None
    bad: frozenset[tuple[str, int | None]]


def parse_row(row: Row) -> tuple[Parsed, list[Problem]]:
    """Validate one row against its kind's model."""
    model = RECORDS[row.kind]
    try:
        record: Record | None = model.model_validate(row.values)
    except ValidationError as error:
        record, problems, bad = None, [], set()
        for details in error.errors():
            problem = _problem(row, details)
            if problem is not None:
                problems.append(problem)
            bad.add(_cell(details))
    else:
        problems, bad = [], set()
    problems.extend(_cross_checks(model, row, record, {column for column, _ in bad}))
    return Parsed(row, record, frozenset(bad)), problems


def _cross_checks(
    model: type[Record], row: Row, record: Record | None, bad: set[str]
) -> list[Problem]:
    """Problems between fields, among those valid on their own; a check that involves a bad
    field is left out (fixing that field first may settle it)."""
    fields = dict(record) if record is not None else model.valid_fields(row.values)
    return [
        row.problem(check.column, check.value, check.problem, check.fix)
        for check in model.checks(fields)
        if check.column not in bad
    ]


def _cell(details: ErrorDetails) -> tuple[str, int | None]:
    loc = details["loc"]
    column = str(loc[0]) if loc else ""
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    return column, index


def _problem(row: Row, details: ErrorDetails) -> Problem | None:
    column, _ = _cell(details)
    kind = details["type"]
    if kind == "missing" and column in row.absent_columns:
        return None  # reported once, as a missing column
    value = None if kind == "missing" else details.get("input")
    if kind == "genofed":
        context = details.get("ctx") or {}
        return row.problem(column or None, value, context["problem"], context["fix"])
    problem, fix = _builtin(row.kind, column, details)
    return row.problem(column or None, value, problem, fix)


def _builtin(kind: ObjectKind, column: str, details: ErrorDetails) -> tuple[str, str]:
    """What pydantic's own errors mean to a submitter, and their fix."""
    error = details["type"]
    context = details.get("ctx") or {}
    if error == "missing":
        return "missing required value", f"fill in {column}"
    if error == "extra_forbidden":
        return "unknown column", _column_fix(kind, column)
    if error == "string_too_long":
        return f"longer than {context.get('max_length')} characters", "shorten it"
    if error == "too_short":
        return "no value", f"give at least {context.get('min_length', 1)}"
    if error in ("model_type", "dict_type", "model_attributes_type") and not column:
        return "not an object", _object_fix(kind)
    if error.endswith("_type"):
        expected = "a list, or text with ';' between values" if error == "list_type" else "text"
        return f"not {expected}", f"write {column or 'it'} as {expected}"
    return details["msg"], "correct the value"


# -- validation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A validated submission: every row parsed, its references resolved, and the problems."""

    parsed: list[Parsed]
    problems: list[Problem]
    resolution: Resolution | None  # None when no database was consulted


def validate_submission(
    submission: Submission,
    *,
    session: Session | None = None,
    country: str | None = None,
    submitter: str | None = None,
) -> list[Problem]:
    """Every problem of ``submission``, in sheet and row order.

    With a ``session``, the node's ``country`` and the ``submitter``, references are also checked
    against the objects and files already stored; without them only references within the
    submission can be, and those to earlier objects or files are assumed right.
    """
    return check_submission(
        submission, session=session, country=country, submitter=submitter
    ).problems


def check_submission(
    submission: Submission,
    *,
    session: Session | None = None,
    country: str | None = None,
    submitter: str | None = None,
) -> Checked:
    """Parse every row and resolve every reference; the problems are in reading order."""
    from genofed.metadata.references import resolve

    problems = list(submission.problems)
    parsed: list[Parsed] = []
    for row in submission.rows:
        result, found = parse_row(row)
        parsed.append(result)
        problems.extend(found)
    online = session is not None and country is not None and submitter is not None
    resolution, found = resolve(
        parsed,
        session=session if online else None,
        country=country,
        submitter=submitter,
    )
    problems.extend(found)
    return Checked(parsed, _in_order(submission, problems), resolution if online else None)


def _in_order(submission: Submission, problems: Sequence[Problem]) -> list[Problem]:
    """Sheets in the order they were read, then rows, then the order problems were found."""
    order = {sheet: index for index, sheet in enumerate(submission.sheets)}
    return sorted(problems, key=lambda p: (order.get(p.sheet, len(order)), p.row or 0))
