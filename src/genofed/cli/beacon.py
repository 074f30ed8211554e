"""``genofed beacon``: the node's Beacon, run on the node itself.

Commands are plain functions registered on ``app``; each concern keeps its own functions (the
variant index here), so commands of other concerns are added by appending theirs below.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from genofed.cli.common import byte_progress, run_guarded, say

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from sqlalchemy import Engine

    from genofed.beacon.index import IndexReport
    from genofed.config import Settings

app = typer.Typer(
    help="The node's Beacon: its variant index and gene annotations.",
    no_args_is_help=True,
)

ConfigOption = typer.Option(
    None, "--config", help="The node directory or its genofed.toml (default: GENOFED_CONFIG)."
)


# -- the variant index -------------------------------------------------------------------------


@app.command("index")
def index(
    dataset: str = typer.Argument(..., help="The released dataset (accession or alias)."),
    config: Path | None = ConfigOption,
) -> None:
    """Load the dataset's VCF and BCF files that are not in the Beacon index yet.

    Files already loaded are skipped: run it again after adding files to a dataset.
    """
    report = run_guarded(lambda: _index(_settings(config), dataset))
    for file in report.files:
        if file.skipped is None:
            say(
                f"{file.file}: {file.records:,} records, {file.alleles:,} alleles, "
                f"{file.samples:,} new samples in {file.seconds:.1f} s"
            )
        else:
            say(f"{file.file}: skipped, {file.skipped}")
    loaded = report.loaded
    rate = f", {report.records / report.seconds:,.0f} records/s" if report.seconds else ""
    say(
        f"dataset {report.dataset}: {len(loaded)} of {len(report.files)} files loaded, "
        f"{report.records:,} records, {report.alleles:,} alleles, {report.samples:,} new "
        f"samples, {report.seconds:.1f} s{rate}"
    )


def _index(settings: Settings, dataset: str) -> IndexReport:
    from genofed.beacon.index import index_dataset

    engine = _engine(settings)
    try:
        with byte_progress() as bars:
            tasks: dict[str, TaskID] = {}
            return index_dataset(
                engine, settings, dataset, progress=lambda *at: _advance(bars, tasks, *at)
            )
    finally:
        engine.dispose()


def _advance(bars: Progress, tasks: dict[str, TaskID], name: str, done: int, total: int) -> None:
    if name not in tasks:
        tasks[name] = bars.add_task(name, total=total or None)
    bars.update(tasks[name], completed=done)


@app.command("genes")
def genes(
    annotation: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="A GTF or GFF3 file (plain or gzipped)."
    ),
    assembly: str = typer.Option(..., "--assembly", help="GRCh37 or GRCh38."),
    config: Path | None = ConfigOption,
) -> None:
    """Load the genes of an annotation, for geneId queries (replaces the assembly's genes)."""
    count = run_guarded(lambda: _genes(_settings(config), assembly, annotation))
    say(f"{count:,} genes loaded for {assembly}")


def _genes(settings: Settings, assembly: str, annotation: Path) -> int:
    from genofed import db
    from genofed.beacon.index import load_genes

    engine = _engine(settings)
    try:
        with db.session_scope(db.for_writing(engine)) as session:
            return load_genes(session, assembly, annotation)
    finally:
        engine.dispose()


# -- shared ------------------------------------------------------------------------------------


def _settings(config: Path | None) -> Settings:
    from genofed.config import load_settings

    return load_settings(config)


def _engine(settings: Settings) -> Engine:
    from genofed import db

    engine = db.make_engine(settings.database_url)
    db.check_schema(engine)
    return engine
