"""``genofed beacon configure``: how a dataset's beacon answers users without access to it.

Runs on the node against its database (GENOFED_CONFIG or genofed.toml here;
GENOFED_DATABASE_URL), like ``genofed db``. The rules behind each setting are those of
:mod:`genofed.beacon.guard`; ``docs/privacy.md`` explains them and the attack they stop.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from genofed.cli.common import run_guarded, say

# The database layer is imported inside the command: the CLI must start fast.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from genofed.beacon.guard import GuardSettings


def configure(
    dataset: str = typer.Argument(..., help="The dataset's accession."),
    level: str | None = typer.Option(
        None,
        "--level",
        help="public (anyone may ask), registered (logged-in users) or controlled (logged-in "
        "users, yes/no answers only; counts and records need access).",
    ),
    min_count: int | None = typer.Option(
        None,
        "--min-count",
        help="Alleles carried by fewer individuals, and smaller counts, are never disclosed to "
        "users without access (3 to 100; default 5).",
    ),
    budget_bits: float | None = typer.Option(
        None,
        "--budget-bits",
        help="Each user's information budget for the dataset, in bits; a question about a rare "
        "or absent allele costs about one, common ones nothing (default 3).",
    ),
    guard: bool | None = typer.Option(
        None,
        "--guard/--no-guard",
        help="--no-guard serves the raw beacon: no threshold, no budget (only for data that "
        "are public anyway).",
    ),
) -> None:
    """Show DATASET's beacon privacy settings, changing those given first.

    A dataset never configured is controlled, with a threshold of 5 and a budget of 3 bits:
    the settings printed then are these defaults. Changes are recorded in the audit log.
    """
    changing = any(value is not None for value in (level, min_count, budget_bits, guard))

    def run() -> tuple[GuardSettings, bool]:
        from genofed.beacon import guard as beacon_guard

        with _node() as session:
            if not changing:
                return beacon_guard.guard_settings(session, dataset), _known(session, dataset)
            settings = beacon_guard.configure(
                session,
                dataset,
                level=level,
                min_count=min_count,
                budget_bits=budget_bits,
                enabled=guard,
                actor=_operator(),
            )
            return settings, _known(session, dataset)

    settings, known = run_guarded(run)
    if not known:
        say(f"warning: no dataset {dataset} on this node yet (settings apply once it exists)")
    for name, value in (
        ("dataset", settings.dataset),
        ("level", settings.level),
        ("min_count", str(settings.min_count)),
        ("budget_bits", f"{settings.budget_bits:g}"),
        ("guard", "on" if settings.enabled else "off"),
    ):
        typer.echo(f"{name}\t{value}")
    if changing:
        say(f"beacon settings of {dataset} saved")
    elif not settings.stored:
        say(f"{dataset} has no beacon settings of its own: these are the defaults")


def _known(session: Session, dataset: str) -> bool:
    """Whether the node has this dataset: in its metadata, or loaded into its beacon."""
    from sqlalchemy import select

    from genofed.db.models import BeaconSource, MetadataObject

    in_metadata = session.scalar(
        select(MetadataObject.id).where(MetadataObject.accession == dataset).limit(1)
    )
    in_beacon = session.scalar(
        select(BeaconSource.file_id).where(BeaconSource.dataset_accession == dataset).limit(1)
    )
    return in_metadata is not None or in_beacon is not None


def _operator() -> str:
    """Who made the change, for the audit log: the operating-system account running this."""
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "operator"


@contextmanager
def _node() -> Iterator[Session]:
    """A writing session on the node's database, after checking its schema."""
    from genofed import db
    from genofed.config import load_settings

    engine = db.make_engine(load_settings().database_url)
    try:
        db.check_schema(engine)
        with db.session_scope(db.for_writing(engine)) as session:
            yield session
    finally:
        engine.dispose()
