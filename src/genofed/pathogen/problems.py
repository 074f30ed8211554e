"""A problem in a pathogen submission, located as the submitter will look for it.

Validation lists every problem at once (a submitter fixes a batch in one pass only if nothing is
held back), each with the file, the line or sheet row, the record's id, the field, the bad value
and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from genofed.metadata.problems import shown

__all__ = ["Problem", "shown"]


@dataclass(frozen=True)
class Problem:
    """One thing to fix.

    ``line`` is a FASTA line number or a sheet row (the header being row 1), None for a problem
    with a whole file; ``record`` is the sequence id the problem concerns, when known.
    """

    file: str
    line: int | None
    record: str | None
    field: str | None
    value: str | None
    problem: str
    fix: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        if self.record is not None:
            where += f" record {self.record}"
        if self.field is not None:
            where += f" field {self.field}"
        value = "" if self.value is None else f" ({self.value})"
        return f"{where}{value}: {self.problem}; {self.fix}"
