"""A problem in a submission, located as a spreadsheet user would look for it.

Validation never stops at the first problem: a submitter fixes a whole sheet in one pass only if
every problem is listed, each with its sheet, row, column, the bad value and how to fix it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticCustomError

# Longer values are cut in messages: a pasted VCF in a cell must not flood the terminal.
MAX_SHOWN = 80


@dataclass(frozen=True)
class Problem:
    """One thing to fix.

    ``row`` counts as a spreadsheet does, the header being row 1; for a JSON document it is the
    item's position in its list (1 = first). ``row`` is None for a problem with a whole sheet,
    ``column`` None for a problem with a whole row.
    """

    sheet: str
    row: int | None
    column: str | None
    value: str | None
    problem: str
    fix: str

    def __str__(self) -> str:
        where = self.sheet
        if self.row is not None:
            where += f" row {self.row}"
        if self.column is not None:
            where += f" column {self.column}"
        shown = "" if self.value is None else f" ({self.value})"
        return f"{where}{shown}: {self.problem}; {self.fix}"


def invalid(problem: str, fix: str) -> PydanticCustomError:
    """The error a validator raises: pydantic keeps ``fix`` in the error's context."""
    return PydanticCustomError("genofed", "{problem}", {"problem": problem, "fix": fix})


def plain_text(text: str) -> str:
    """``text`` if a database can store it: no control characters (but tabs and newlines) and
    no lone surrogates (which JSON's ``\\ud800`` escapes can produce)."""
    for char in text:
        if (char < " " and char not in "\t\n\r") or char == "\x7f":
            raise invalid(f"contains the control character U+{ord(char):04X}", "remove it")
        if "\ud800" <= char <= "\udfff":
            raise invalid("contains a lone UTF-16 surrogate", "save the text as valid UTF-8")
    return text


def shown(value: Any) -> str | None:
    """A value as a problem shows it: text as is, other JSON as JSON, unprintable characters
    escaped (they could garble a terminal), long values cut."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = "".join(
        char if char.isprintable() else char.encode("unicode_escape", "backslashreplace").decode()
        for char in text[: MAX_SHOWN * 2]
    )
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
