"""`genofed metadata` and `genofed dataset`: submit metadata sheets, manage datasets.

They act on the node in the current configuration (GENOFED_CONFIG, or genofed.toml here), like
`genofed db`. Tables go to stdout: drawn on a terminal, tab-separated with a header row when
piped, so scripts can read them; messages go to stderr.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from genofed.cli.common import err_console, fail, run_guarded, say

# The database and metadata layers are imported inside the commands: the CLI must start fast.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from genofed.config import Settings
    from genofed.metadata.problems import Problem
    from genofed.metadata.store import SubmissionResult

app = typer.Typer(
    help="Metadata of studies, samples, experiments, runs, analyses, DACs and policies.",
    no_args_is_help=True,
)
datasets = typer.Typer(
    help="Datasets: create, add files, release to the federation, deprecate.",
    no_args_is_help=True,
)
out_console = Console(soft_wrap=True, emoji=False)
PathsArgument = typer.Argument(
    ...,
    help="Sheets (samples.tsv, studies.csv, ...), JSON documents, or folders holding them.",
)


# -- metadata -----------------------------------------------------------------------------------


@app.command()
def validate(
    paths: list[Path] = PathsArgument,
    user: str | None = typer.Option(
        None,
        help="The submitter: also check references to earlier objects and files on the node.",
    ),
) -> None:
    """List every problem of a submission (sheet, row, column, value, fix); exit 1 if any.

    Without --user only the sheets themselves are checked, offline.
    """
    problems, rows = run_guarded(lambda: _validate(paths, user))
    if problems:
        _print_problems(problems)
        raise fail(f"{len(problems)} problem(s) in {_plural(rows, 'row')}")
    where = "against the node" if user else "offline (add --user to check references)"
    say(f"no problems in {_plural(rows, 'row')}, checked {where}")


def _validate(paths: Sequence[Path], user: str | None) -> tuple[list[Problem], int]:
    from genofed.metadata.sheets import read_paths, validate_submission

    submission = read_paths(paths)
    if user is None:
        return validate_submission(submission), len(submission.rows)
    with _node(write=False) as (settings, session):
        problems = validate_submission(
            submission, session=session, country=settings.country, submitter=user
        )
    return problems, len(submission.rows)


@app.command()
def submit(
    paths: list[Path] = PathsArgument,
    user: str = typer.Option(..., help="The submitter the objects belong to."),
) -> None:
    """Validate a submission and store it whole: prints each object's accession.

    Nothing is stored if there is any problem. Submitting an alias again updates that draft
    (its fields, references and files are replaced); released datasets cannot change.
    """
    result, problems = run_guarded(lambda: _submit(paths, user))
    if problems:
        _print_problems(problems)
        raise fail(f"{len(problems)} problem(s): nothing was stored")
    assert result is not None
    _print_table(
        ["kind", "alias", "accession", "change"],
        [[o.kind.value, o.alias, o.accession, o.change] for o in result.objects],
    )
    counts = result.counts()
    err_console.print(", ".join(f"{counts[change]} {change}" for change in sorted(counts)))


def _submit(paths: Sequence[Path], user: str) -> tuple[SubmissionResult | None, list[Problem]]:
    """The stored result, or the problems (a table to print, not a one-line error)."""
    from genofed.metadata.errors import InvalidSubmission
    from genofed.metadata.sheets import read_paths
    from genofed.metadata.store import submit_metadata

    submission = read_paths(paths)
    try:
        with _node(write=True) as (settings, session):
            return submit_metadata(session, settings.country, user, submission), []
    except InvalidSubmission as error:
        return None, error.problems


# -- datasets -----------------------------------------------------------------------------------


@datasets.command("create")
def create(
    user: str = typer.Option(..., help="The submitter the dataset belongs to."),
    alias: str = typer.Option(..., help="The submitter's own name for the dataset."),
    title: str = typer.Option(..., help="What the dataset is, in a line."),
    policy: str | None = typer.Option(
        None, help="Its policy's alias or accession (needed to release it)."
    ),
    description: str | None = typer.Option(None, help="A longer description."),
) -> None:
    """Create a draft dataset; prints its accession."""

    def action() -> str:
        from genofed.metadata.datasets import create_dataset

        with _node(write=True) as (settings, session):
            created = create_dataset(
                session,
                settings.country,
                user,
                alias=alias,
                title=title,
                policy=policy,
                description=description,
            )
            return str(created.accession)

    accession = run_guarded(action)
    typer.echo(accession)
    err_console.print(
        f"draft dataset {accession} created; add files with 'genofed dataset add-files'"
    )


@datasets.command("add-files")
def add_files(
    dataset: str = typer.Argument(..., help="The dataset's accession (or its unique alias)."),
    files: list[str] = typer.Argument(..., help="Archive accessions or file ids of ready files."),
) -> None:
    """Add ready files of the dataset's submitter to a draft dataset (all of them, or none)."""

    def action() -> tuple[int, str]:
        from genofed.metadata.datasets import add_files as add
        from genofed.metadata.datasets import find_dataset

        with _node(write=True) as (settings, session):
            added = add(session, settings.country, dataset, files)
            return len(added), str(find_dataset(session, settings.country, dataset).accession)

    count, accession = run_guarded(action)
    already = len(set(files)) - count
    note = f" ({already} already in it)" if already > 0 else ""
    say(f"{_plural(count, 'file')} added to dataset {accession}{note}")


@datasets.command("release")
def release(dataset: str = typer.Argument(..., help="The dataset's accession or alias.")) -> None:
    """Release a draft dataset: visible beyond the node from now on, its content fixed.

    It needs a policy and files, all of them ready.
    """
    accession = run_guarded(lambda: _life_cycle("release", dataset))
    say(f"dataset {accession} released")


@datasets.command("deprecate")
def deprecate(dataset: str = typer.Argument(..., help="The dataset's accession or alias.")) -> None:
    """Withdraw a released dataset from the federation."""
    accession = run_guarded(lambda: _life_cycle("deprecate", dataset))
    say(f"dataset {accession} deprecated")


def _life_cycle(action: str, dataset: str) -> str:
    from genofed.metadata.datasets import deprecate_dataset, release_dataset

    step = release_dataset if action == "release" else deprecate_dataset
    with _node(write=True) as (settings, session):
        return str(step(session, settings.country, dataset).accession)


@datasets.command("list")
def list_(
    released: bool = typer.Option(
        False, "--released", help="Only released datasets (those visible beyond the node)."
    ),
) -> None:
    """List the node's datasets: accession, alias, submitter, status, files, title."""

    def action() -> list[list[str]]:
        from genofed.metadata.datasets import list_datasets

        with _node(write=False) as (_, session):
            return [
                [
                    str(d.accession),
                    d.alias,
                    d.submitter,
                    d.status.value,
                    str(count),
                    str(d.body.get("title", "")),
                ]
                for d, count in list_datasets(session, released_only=released)
            ]

    rows = run_guarded(action)
    _print_table(["accession", "alias", "submitter", "status", "files", "title"], rows)
    err_console.print(_plural(len(rows), "dataset"))


@datasets.command("show")
def show(dataset: str = typer.Argument(..., help="The dataset's accession or alias.")) -> None:
    """Show a dataset: its fields, its policy and DUO terms, and every file with its state."""

    def action() -> tuple[dict[str, Any], dict[str, Any] | None, list[list[str]]]:
        from genofed.db import ObjectKind
        from genofed.metadata.datasets import dataset_files, describe, find_dataset, find_object

        with _node(write=False) as (settings, session):
            found = find_dataset(session, settings.country, dataset)
            described = describe(session, found)
            policy = None
            if "policy" in described:
                policy_object = find_object(
                    session, settings.country, ObjectKind.POLICY, described["policy"]
                )
                policy = describe(session, policy_object)
            files = [
                [f.accession or "", f.id, f.state.value, str(f.decrypted_size or "")]
                for f in dataset_files(session, found)
            ]
            return described, policy, files

    described, policy, files = run_guarded(action)
    _print_fields(described, skip={"files", "policy"})
    if policy is not None:
        out_console.print(f"policy: {_data_use(policy)}", markup=False, highlight=False)
    _print_table(["file accession", "file id", "state", "size"], files)
    err_console.print(_plural(len(files), "file"))


def _data_use(policy: dict[str, Any]) -> str:
    """A policy's DUO terms with their labels, e.g. ``DS (MONDO:0005027): disease specific``."""
    from genofed.metadata import duo

    permission = str(policy["permission"])
    diseases = f" ({', '.join(policy['diseases'])})" if policy.get("diseases") else ""
    terms = [f"{permission}{diseases}: {duo.TERMS[permission].label}"]
    for modifier in policy.get("modifiers", []):
        value = f"={modifier['value']}" if modifier.get("value") else ""
        terms.append(f"{modifier['code']}{value}: {duo.TERMS[modifier['code']].label}")
    return f"{policy['accession']} " + "; ".join(terms)


# -- helpers ------------------------------------------------------------------------------------


@contextmanager
def _node(*, write: bool) -> Iterator[tuple[Settings, Session]]:
    """The node's settings and a session in one transaction (committed when the block ends)."""
    from genofed import db
    from genofed.config import load_settings

    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    try:
        db.check_schema(engine)
        with db.session_scope(db.for_writing(engine) if write else engine) as session:
            yield settings, session
    finally:
        engine.dispose()


def _print_problems(problems: Sequence[Problem]) -> None:
    _print_table(
        ["sheet", "row", "column", "value", "problem", "fix"],
        [
            [
                p.sheet,
                "" if p.row is None else str(p.row),
                p.column or "",
                p.value or "",
                p.problem,
                p.fix,
            ]
            for p in problems
        ],
    )


def _print_table(header: list[str], rows: Sequence[Sequence[str]]) -> None:
    """A drawn table on a terminal; tab-separated lines with a header row otherwise."""
    if out_console.is_terminal:
        table = Table(*header, show_lines=False, highlight=False)
        for row in rows:
            table.add_row(*row)
        out_console.print(table, markup=False)
        return
    for line in [header, *rows]:
        typer.echo("\t".join(" ".join(cell.split()) for cell in line))


def _print_fields(fields: dict[str, Any], *, skip: set[str]) -> None:
    for name, value in fields.items():
        if name in skip:
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        out_console.print(f"{name}: {shown}", markup=False, highlight=False)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
