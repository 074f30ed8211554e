"""`genofed audit`: check the node's hash-chained audit log, and read it.

Both commands run on the node machine against the node's database (the current configuration:
GENOFED_CONFIG, or genofed.toml here; GENOFED_DATABASE_URL), like `genofed db`.

Exit codes of `genofed audit verify`, for cron jobs and monitoring:

- 0: the log is intact (and still holds --expect-head, when given);
- 1: the log could not be checked (configuration, database unreachable, schema out of date);
- 2: bad usage, e.g. an --expect-head that is not a hash;
- 3: the log was tampered with: an entry altered, missing or out of place, or its tail gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from genofed.cli.common import err_console, fail, run_guarded, say

# The database layer is imported inside the commands: the CLI must start fast.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from genofed.access.audit import ChainReport, Outcome

TAMPERED_EXIT = 3
USAGE_EXIT = 2
DATE_FORM = "ISO 8601, e.g. 2026-11-24 or 2026-11-24T13:45:00Z (no zone means UTC)"

app = typer.Typer(
    help="The node's tamper-evident audit log: verify its hash chain, show entries.",
    no_args_is_help=True,
)
out_console = Console(soft_wrap=True, emoji=False)


@app.command()
def verify(
    expect_head: str | None = typer.Option(
        None,
        "--expect-head",
        metavar="HASH",
        help="A head hash recorded earlier: it must still be in the log (catches a deleted or "
        "rewritten tail).",
    ),
) -> None:
    """Check every entry of the audit log against its hash chain.

    Prints the head hash on stdout (record it, and pass it as --expect-head later) and
    "audit log intact: N entries, head HASH" on stderr. Exits 3 with one line naming the first
    altered or missing entry when the log was tampered with, 1 when it could not be checked.
    """
    wanted = _head_option(expect_head)
    report = run_guarded(lambda: _verify(wanted))
    if report.problem is not None:
        raise fail(report.problem.message, code=TAMPERED_EXIT)
    typer.echo(report.head)
    noun = "entry" if report.entries == 1 else "entries"
    say(f"audit log intact: {report.entries} {noun}, head {report.head}")
    if wanted is not None:
        say(f"the recorded head is entry {report.expected_head_seq}")


def _head_option(value: str | None) -> str | None:
    from genofed.access.audit import AuditEntryError, check_head

    if value is None:
        return None
    try:
        return check_head(value)
    except AuditEntryError:
        raise fail(
            f"--expect-head {value!r} is not a head hash: give the 64 hexadecimal digits "
            "'genofed audit verify' printed",
            code=USAGE_EXIT,
        ) from None


def _verify(expect_head: str | None) -> ChainReport:
    from genofed.access.audit import verify as verify_chain

    with _node() as session:
        return verify_chain(session, expect_head=expect_head)


@app.command()
def show(
    user: str | None = typer.Option(None, "--user", help="Only entries by this actor."),
    dataset: str | None = typer.Option(None, help="Only entries about this dataset."),
    action: str | None = typer.Option(None, help="Only this action, e.g. file.download."),
    outcome: str | None = typer.Option(None, help="Only 'allowed' or only 'denied' entries."),
    since: str | None = typer.Option(None, metavar="ISO", help="From this time on (inclusive)."),
    until: str | None = typer.Option(None, metavar="ISO", help="Before this time (exclusive)."),
    limit: int = typer.Option(100, min=1, help="At most this many entries."),
    offset: int = typer.Option(0, min=0, help="Skip this many newest matches first (paging)."),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per line, with every field the hash covers."
    ),
) -> None:
    """List audit entries, newest first: a table on stdout, or JSON lines with --json."""
    start, end = _moment("--since", since), _moment("--until", until)
    chosen = _outcome(outcome)

    def fetch() -> list[dict[str, object]]:
        from genofed.access.audit import as_json as entry_json
        from genofed.access.audit import query

        with _node() as session:
            found = query(
                session,
                actor=user,
                dataset=dataset,
                action=action,
                outcome=chosen,
                since=start,
                until=end,
                limit=limit,
                offset=offset,
            )
            return [entry_json(entry) for entry in found]

    entries = run_guarded(fetch)
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry, ensure_ascii=False, sort_keys=True))
    else:
        _print_table(entries)
    more = "; more with --offset" if len(entries) == limit else ""
    err_console.print(f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}{more}")


def _moment(option: str, value: str | None) -> datetime | None:
    """An ISO 8601 date or time from the command line, in UTC (a time without zone is UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"{option} {value!r} is not a date: give {DATE_FORM}", code=USAGE_EXIT) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _outcome(value: str | None) -> Outcome | None:
    from genofed.access.audit import OUTCOMES

    if value is None:
        return None
    for known in OUTCOMES:
        if value == known:
            return known
    raise fail(f"--outcome {value!r}: give {' or '.join(OUTCOMES)}", code=USAGE_EXIT)


@contextmanager
def _node() -> Iterator[Session]:
    """A read-only session on the node's database, after checking its schema."""
    from genofed import db
    from genofed.config import load_settings

    engine = db.make_engine(load_settings().database_url)
    try:
        db.check_schema(engine)
        with db.session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


_COLUMNS = ("seq", "at", "actor", "action", "outcome", "dataset", "file", "detail")


def _print_table(entries: Sequence[dict[str, object]]) -> None:
    """A drawn table on a terminal; tab-separated lines with a header row otherwise."""
    rows = [[_cell(name, entry[name]) for name in _COLUMNS] for entry in entries]
    if out_console.is_terminal:
        table = Table(*_COLUMNS, highlight=False)
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # names may hold '[': no markup
        out_console.print(table, markup=False)
        return
    for line in [list(_COLUMNS), *rows]:
        typer.echo("\t".join(line))


def _cell(name: str, value: object) -> str:
    """One value on one line: a readable time, compact JSON detail, nothing for null."""
    if value is None:
        return ""
    if name == "at":
        return str(value)[:19].replace("T", " ") + "Z"
    if name == "detail":
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return " ".join(str(value).split())
