"""``genofed worker`` and ``genofed archive``: run the pipeline and look after it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from genofed.cli.common import err_console, fail, run_guarded, say

if TYPE_CHECKING:
    from genofed.archive.queue import Queue
    from genofed.config import Settings

app = typer.Typer(
    help="The node archive: pipeline status, the error queue, key rotation, cancelling files.",
    no_args_is_help=True,
)

ConfigOption = typer.Option(
    None, "--config", help="The node directory or its genofed.toml (default: GENOFED_CONFIG)."
)


def worker(
    stage: list[str] = typer.Option(
        [],
        "--stage",
        help="A stage to run (ingest, verify, accession, backup, rotate); "
        "repeat for several. Default: all.",
    ),
    until_idle: float | None = typer.Option(
        None, help="Stop once no message came for this many seconds (for batch jobs and tests)."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Run pipeline stages: take messages from the queue until stopped (Ctrl-C or SIGTERM)."""
    from genofed.archive.stages import STAGES

    unknown = sorted(set(stage) - set(STAGES))
    if unknown:
        raise fail(f"unknown stage {', '.join(unknown)}: choose from {', '.join(STAGES)}")
    stages = stage or list(STAGES)
    handled = run_guarded(lambda: asyncio.run(_work(_settings(config), stages, until_idle)))
    say(f"worker stopped after {handled} messages")


async def _work(settings: Settings, stages: list[str], until_idle: float | None) -> int:
    from genofed.archive.queue import open_queue
    from genofed.archive.worker import build_pipeline, run_worker

    pipeline = build_pipeline(settings)
    queue = open_queue(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)  # finish the message in hand, then stop
    say(f"worker for {', '.join(stages)} on node {settings.node_name}")
    try:
        return await run_worker(pipeline, queue, stages, stop, until_idle=until_idle)
    finally:
        await queue.close()


@app.command()
def status(config: Path | None = ConfigOption) -> None:
    """Files per state, queue depths and the error queue's size."""
    settings = _settings(config)

    async def collect() -> tuple[dict[str, int], int]:
        queue = _open_queue(settings)
        try:
            return await queue.depths(), len(await queue.failed(limit=10_000))
        finally:
            await queue.close()

    depths, failed = run_guarded(lambda: asyncio.run(collect()))
    table = Table(title=f"archive of {settings.node_name}")
    table.add_column("files in state")
    table.add_column("count", justify="right")
    for state, count in run_guarded(lambda: _files_per_state(settings)):
        table.add_row(state, str(count))
    err_console.print(table)
    queues = ", ".join(f"{name} {count}" for name, count in sorted(depths.items())) or "empty"
    say(f"queues: {queues}; error queue: {failed}")


@app.command()
def errors(config: Path | None = ConfigOption, limit: int = typer.Option(50)) -> None:
    """The messages in the error queue and why they failed."""
    settings = _settings(config)

    async def collect() -> list[tuple[str, str, str]]:
        queue = _open_queue(settings)
        try:
            return [
                (message.queue, message.failed_at.isoformat(timespec="seconds"), message.reason)
                for message in await queue.failed(limit=limit)
            ]
        finally:
            await queue.close()

    table = Table(title="error queue")
    for column in ("queue", "failed at", "reason"):
        table.add_column(column)
    for row in run_guarded(lambda: asyncio.run(collect())):
        table.add_row(*row)
    err_console.print(table)


@app.command()
def requeue(
    queue_name: str | None = typer.Option(
        None, "--queue", help="Only this stage's queue (e.g. verify); default: every queue."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Send the error queue's messages back to their stages, with fresh attempts, once the
    cause is fixed (a storage outage, a full disk, a key restored)."""
    settings = _settings(config)

    async def requeue_failed() -> int:
        queue = _open_queue(settings)
        try:
            return await queue.requeue_failed(queue_name)
        finally:
            await queue.close()

    count = run_guarded(lambda: asyncio.run(requeue_failed()))
    say(f"{count} message{'s' if count != 1 else ''} requeued")


@app.command("rotate-key")
def rotate_key(config: Path | None = ConfigOption) -> None:
    """Re-seal every archived header for the node's current key, then re-verify each file.

    First point crypt4gh.secret_key at the new key and list the old one in
    crypt4gh.previous_secret_keys; run workers; remove the old key once this reports zero left.
    """
    settings = _settings(config)
    count = run_guarded(lambda: asyncio.run(_enqueue_rotations(settings)))
    say(f"{count} files queued for key rotation")


async def _enqueue_rotations(settings: Settings) -> int:
    from sqlalchemy import select

    from genofed import crypt4gh, db
    from genofed.archive import messages
    from genofed.node.directory import node_secret_key

    current = crypt4gh.fingerprint(crypt4gh.public_key_of(node_secret_key(settings)))
    engine = db.make_engine(settings.database_url)
    db.check_schema(engine)
    with db.session_scope(engine) as session:
        ids = session.scalars(
            select(db.ArchiveFile.id).where(
                db.ArchiveFile.header.is_not(None),
                db.ArchiveFile.archive_key.is_distinct_from(current),
                db.ArchiveFile.state.not_in((db.FileState.DISABLED,)),
            )
        ).all()
    queue = _open_queue(settings)
    try:
        for file_id in ids:
            body = messages.rotate_key(file_id)
            await queue.publish(messages.ROTATE, body, dedup_key=f"rotate:{file_id}:{current}")
    finally:
        await queue.close()
    return len(ids)


@app.command()
def cancel(
    file_id: str = typer.Argument(..., help="The file's id."),
    user: str = typer.Option(..., help="The submitter who owns the file."),
    config: Path | None = ConfigOption,
) -> None:
    """Withdraw a file not yet in a released dataset: it is disabled and its bytes removed."""
    from genofed.archive.stages import cancel as cancel_file
    from genofed.archive.worker import build_pipeline

    settings = _settings(config)
    run_guarded(lambda: cancel_file(build_pipeline(settings), file_id, user))
    say(f"file {file_id} cancelled")


def _settings(config: Path | None) -> Settings:
    from genofed.config import load_settings

    return load_settings(config)


def _open_queue(settings: Settings) -> Queue:
    from genofed.archive.queue import open_queue

    return open_queue(settings)


def _files_per_state(settings: Settings) -> list[tuple[str, int]]:
    from sqlalchemy import func, select

    from genofed import db

    engine = db.make_engine(settings.database_url)
    db.check_schema(engine)
    with db.session_scope(engine) as session:
        rows = session.execute(
            select(db.ArchiveFile.state, func.count()).group_by(db.ArchiveFile.state)
        ).all()
    return [(str(state), int(count)) for state, count in rows]
