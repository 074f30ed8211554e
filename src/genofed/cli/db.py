"""`genofed db`: apply the schema migrations and show where a database stands (see genofed.db)."""

from __future__ import annotations

import typer

from genofed.cli.common import run_guarded, say

# The database layer (SQLAlchemy, Alembic) is imported inside the commands: other commands,
# such as `genofed crypt4gh`, must start fast.

app = typer.Typer(
    help="Database schema: apply migrations, show the current revision.",
    no_args_is_help=True,
)


@app.command()
def upgrade(
    revision: str = typer.Option(
        "head",
        "--revision",
        "-r",
        help="Revision to migrate to; 'head' is the newest this genofed ships.",
    ),
) -> None:
    """Migrate the database in database_url (GENOFED_DATABASE_URL) to this genofed's schema.

    Safe on every deployment: an up-to-date database is left alone, concurrent runs queue.

    A failed run changes nothing. Prints the revision before and after the upgrade.
    """
    run_guarded(lambda: _upgrade(revision))


def _upgrade(revision: str) -> None:
    from genofed.config import load_settings
    from genofed.db import migrate, render_url

    url = load_settings().database_url
    before, after = migrate.upgrade(url, revision)
    where = render_url(url)
    if before == after:
        say(f"database {where} is already at {after}, nothing to do")
    else:
        say(f"upgraded database {where}: {before or 'none'} → {after}")


@app.command()
def current() -> None:
    """Print the schema revision of the database in database_url ('none' when empty).

    The revision goes to stdout; whether this genofed can use it goes to stderr.
    """
    run_guarded(_current)


def _current() -> None:
    from genofed.config import load_settings
    from genofed.db import migrate

    status = migrate.schema_status(load_settings().database_url)
    typer.echo(status.current or "none")
    problem = status.problem()
    say(f"database {status.database} is up to date" if problem is None else str(problem))
