"""A streaming FASTA reader that reports every problem with its line.

Submissions can hold thousands of genomes, so records are yielded one at a time and only their
ids are remembered (to catch duplicates). Reading never raises on bad content: a submitter needs
the full list of problems (which character, on which line, in which record) to fix a file in one
pass, so problems are attached to their record, or kept on the reader for the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from genofed.pathogen.compression import STREAM_ERRORS, CompressionError, open_binary
from genofed.pathogen.problems import Problem, shown

# IUPAC nucleotide codes for DNA (N = any base); lower case is accepted and upper-cased.
IUPAC = frozenset("ACGTRYSWKMBDHVN")
_MAYBE_BAD = re.compile("[^ACGTRYSWKMBDHVNacgtryswkmbdhvn]")
# Characters worth a specific fix, since they come from a known mistake.
_FIXES = {
    "-": "remove alignment gaps: submit the unaligned sequence",
    ".": "remove alignment gaps: submit the unaligned sequence",
    "U": "write RNA as DNA (T for U)",
    "*": "remove the '*': a nucleotide sequence has no stop symbol",
}
_DEFAULT_FIX = "use only IUPAC nucleotide codes (ACGT, N for unknown, RYSWKMBDHV for ambiguity)"
# Distinct bad characters reported per record: enough to see the pattern without flooding.
MAX_BAD_CHARACTERS = 10


@dataclass(frozen=True)
class FastaRecord:
    """One sequence: its id (the header's first word), the rest of the header, where it starts,
    the sequence (upper case, line breaks removed) and what is wrong with it."""

    id: str
    description: str
    line: int
    sequence: str
    problems: tuple[Problem, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass
class _Pending:
    """A record being read: its header and its sequence lines with their numbers."""

    id: str
    description: str
    line: int
    header_problems: list[Problem]
    chunks: list[tuple[int, str]] = field(default_factory=list)


class FastaReader:
    """Iterate over a FASTA file's records; ``problems`` then holds the whole-file ones.

    ``name`` is how problems name the file (default: its file name).
    """

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or path.name
        self.problems: list[Problem] = []

    def __iter__(self) -> Iterator[FastaRecord]:
        try:
            stream = open_binary(self.path)
        except CompressionError as error:
            self.problems.append(
                Problem(self.name, None, None, None, None, error.problem, error.fix)
            )
            return
        with stream:
            yield from iter_fasta(_lines(stream), self.name, self.problems)


def read_fasta(path: Path, name: str | None = None) -> FastaReader:
    """A reader over ``path`` (plain, gzip, xz, or zstd when ``zstandard`` is installed)."""
    return FastaReader(path, name)


def _lines(stream: Iterable[bytes]) -> Iterator[bytes]:
    yield from stream


def iter_fasta(lines: Iterable[bytes], name: str, problems: list[Problem]) -> Iterator[FastaRecord]:
    """Parse FASTA from byte lines; whole-file problems are appended to ``problems``."""
    seen: dict[str, int] = {}
    pending: _Pending | None = None
    number = 0
    stray_reported = False
    try:
        for number, raw in enumerate(lines, start=1):
            text, decode_problem = _decode(raw, name, number)
            if text.startswith(">"):
                if pending is not None:
                    yield _finish(pending, name, seen)
                pending = _start(text, name, number)
                if decode_problem:
                    pending.header_problems.append(decode_problem)
            elif not text.strip():
                continue
            elif pending is None:
                if not stray_reported:
                    problems.append(_stray(name, number, text))
                    stray_reported = True
            else:
                if decode_problem:
                    record_id = pending.id or None
                    pending.header_problems.append(replace(decode_problem, record=record_id))
                pending.chunks.append((number, text.strip()))
    except STREAM_ERRORS as error:
        problems.append(_broken(name, number, error))
    if pending is not None:
        yield _finish(pending, name, seen)
    elif not seen:
        problems.append(
            Problem(name, None, None, None, None, "holds no sequence", "add '>id' then the bases")
        )


def _decode(raw: bytes, name: str, number: int) -> tuple[str, Problem | None]:
    """A line as text; bytes that are not UTF-8 are a problem, replaced so reading goes on."""
    line = raw.rstrip(b"\r\n")
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError:
        problem = Problem(
            name, number, None, None, None, "is not UTF-8 text", "save the file as plain text"
        )
        return line.decode("utf-8", errors="replace"), problem


def _start(text: str, name: str, number: int) -> _Pending:
    """A header line: ``>id description``; the id must be there and printable."""
    words = text[1:].split(maxsplit=1)
    problems: list[Problem] = []
    if not words or text[1:2].isspace():
        problems.append(
            Problem(
                name,
                number,
                None,
                "header",
                shown(text),
                "has no sequence id right after '>'",
                "write the id immediately after '>', e.g. '>hCoV-19/Belgium/ULG-1234/2024'",
            )
        )
    elif not all(char.isprintable() for char in text):
        problems.append(
            Problem(
                name,
                number,
                words[0],
                "header",
                shown(text),
                "contains control or unprintable characters",
                "remove them from the header",
            )
        )
    record_id = words[0] if words and not text[1:2].isspace() else ""
    description = words[1] if len(words) > 1 else ""
    return _Pending(record_id, description, number, problems)


def _finish(pending: _Pending, name: str, seen: dict[str, int]) -> FastaRecord:
    """Join the sequence lines and check them: empty, non-IUPAC, duplicate id."""
    record_id = pending.id or None
    sequence = "".join(chunk for _, chunk in pending.chunks).upper()
    problems = list(pending.header_problems)
    if not sequence:
        problems.append(
            Problem(
                name,
                pending.line,
                record_id,
                "sequence",
                None,
                "has an empty sequence",
                "add the bases after the header, or remove the header",
            )
        )
    problems.extend(_bad_characters(pending, name))
    if pending.id:
        if pending.id in seen:
            problems.append(
                Problem(
                    name,
                    pending.line,
                    pending.id,
                    "header",
                    shown(pending.id),
                    f"repeats the id of the record at line {seen[pending.id]}",
                    "give each sequence its own id, or remove the copy",
                )
            )
        else:
            seen[pending.id] = pending.line
    return FastaRecord(pending.id, pending.description, pending.line, sequence, tuple(problems))


def _bad_characters(pending: _Pending, name: str) -> list[Problem]:
    """One problem per distinct non-IUPAC character: where it first occurs and how often."""
    first: dict[str, tuple[int, int]] = {}
    counts: dict[str, int] = {}
    for number, chunk in pending.chunks:
        if not _MAYBE_BAD.search(chunk):  # nearly every line: skip the per-character loop
            continue
        for column, char in enumerate(chunk, start=1):
            if char.upper() in IUPAC:
                continue
            counts[char] = counts.get(char, 0) + 1
            first.setdefault(char, (number, column))
    problems = []
    for char, (number, column) in list(first.items())[:MAX_BAD_CHARACTERS]:
        times = "once" if counts[char] == 1 else f"{counts[char]} times"
        problems.append(
            Problem(
                name,
                number,
                pending.id or None,
                "sequence",
                shown(char),
                f"has the non-IUPAC character {char!r} (first at column {column}, {times})",
                _FIXES.get(char.upper(), _DEFAULT_FIX),
            )
        )
    if len(first) > MAX_BAD_CHARACTERS:
        problems[-1] = _more(problems[-1], len(first) - MAX_BAD_CHARACTERS)
    return problems


def _more(problem: Problem, hidden: int) -> Problem:
    return Problem(
        problem.file,
        problem.line,
        problem.record,
        problem.field,
        problem.value,
        f"{problem.problem}; and {hidden} more non-IUPAC characters",
        problem.fix,
    )


def _stray(name: str, number: int, text: str) -> Problem:
    return Problem(
        name,
        number,
        None,
        None,
        shown(text),
        "has text before the first header",
        "start the file with a '>id' header line; remove anything before it",
    )


def _broken(name: str, number: int, error: Exception) -> Problem:
    return Problem(
        name,
        number + 1 if number else None,
        None,
        None,
        None,
        f"cannot be decompressed past this line ({error})",
        "the compressed file is truncated or damaged: compress it again",
    )


def write_fasta(records: Iterable[tuple[str, str]], width: int = 60) -> str:
    """FASTA text for ``(id, sequence)`` pairs, wrapped at ``width``: for tests and exports."""
    out = []
    for record_id, sequence in records:
        out.append(f">{record_id}\n")
        out.extend(f"{sequence[i : i + width]}\n" for i in range(0, len(sequence), width))
    return "".join(out)
