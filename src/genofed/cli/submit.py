"""``genofed submit``: send files to a node's inbox, encrypted for it, resumable; follow them.

The HTTP client and the resume logic live in :mod:`genofed.node.client` (imported inside the
commands, with httpx, to keep the CLI's start fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from genofed.cli.common import byte_progress, err_console, fail, run_guarded, say
from genofed.cli.remote import NodeOption, TokenOption, connect, node_url

if TYPE_CHECKING:
    from genofed.node.client import NodeClient, Uploaded

MiB = 1024 * 1024

app = typer.Typer(
    help="Submit files to a node (encrypted for it as they are sent, resumable) and follow them.",
    no_args_is_help=True,
)


@app.command()
def upload(
    files: list[Path] = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="The files to submit."
    ),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
    chunk_mib: int = typer.Option(
        64, "--chunk-mib", min=1, max=1024, help="Size of each request, in MiB."
    ),
    fingerprint: str | None = typer.Option(
        None,
        "--fingerprint",
        help="Refuse the node unless its Crypt4GH key has this fingerprint (as its operator "
        "publishes it).",
    ),
    ingest: bool = typer.Option(
        True, "--ingest/--no-ingest", help="Submit each file for ingestion once it is uploaded."
    ),
) -> None:
    """Upload FILES: .c4gh files as they are, others encrypted for the node's key on the way.

    After an interruption, run the same command again: each file resumes where the node
    stopped. Prints one line per uploaded file on stdout: its file id on the node, then its path.
    """
    from genofed import crypt4gh

    url = node_url(node)
    client = connect(url, token)
    try:
        node_key = run_guarded(client.public_key)
        found = crypt4gh.fingerprint(node_key)
        if fingerprint is not None and fingerprint.lower() != found:
            raise fail(
                f"the node's key has fingerprint {found}, not {fingerprint}: you may not be "
                "talking to the node you think; check the URL and ask its operator"
            )
        err_console.print(f"node key fingerprint {found}", highlight=False)
        failures = _upload_all(client, url, files, node_key, chunk_mib * MiB, ingest)
    except KeyboardInterrupt:
        raise fail("interrupted: run the same command again to resume", code=130) from None
    finally:
        client.close()
    if failures:
        raise typer.Exit(1)


def _upload_all(
    client: NodeClient,
    node: str,
    files: list[Path],
    node_key: bytes,
    chunk_bytes: int,
    ingest: bool,
) -> int:
    """Upload each file in turn; returns how many failed (a refused token stops them all)."""
    from genofed.errors import GenofedError
    from genofed.node.client import FileUpload, NodeError, state_dir, upload_with_retries

    failures = 0
    with byte_progress() as progress:
        for path in files:
            task = progress.add_task(path.name, total=None)

            def start(path: Path = path, task: Any = task) -> FileUpload:
                job = FileUpload(
                    client,
                    node,
                    path,
                    node_key,
                    states=state_dir(),
                    chunk_bytes=chunk_bytes,
                    ingest=ingest,
                    progress=lambda position: progress.update(task, completed=position),
                )
                progress.update(task, total=job.size)
                if job.status.offset:
                    say(f"{path}: resuming at byte {job.status.offset} of {job.size}")
                return job

            try:
                done = upload_with_retries(start)
            except GenofedError as error:
                failures += 1
                err_console.print(
                    Text.assemble(("error:", "bold red"), f" {path}: {error}"), highlight=False
                )
                if isinstance(error, NodeError) and error.is_auth:
                    break
                continue
            _report(path, done)
    return failures


def _report(path: Path, done: Uploaded) -> None:
    record = done.record
    typer.echo(f"{record['id']}\t{path}")
    state = record.get("state", "uploaded")
    checksum = f", sha256 {done.sha256}" if done.sha256 else ""
    say(f"{path}: file {record['id']} {state}{checksum}")


@app.command()
def status(node: str | None = NodeOption, token: str | None = TokenOption) -> None:
    """List your files on the node: where each is in the pipeline, and why it stopped."""
    from rich.console import Console
    from rich.table import Table

    client = connect(node, token)
    try:
        files = run_guarded(client.files)
    finally:
        client.close()
    if not files:
        say("you have no files on this node yet")
        return
    rows = [_status_row(record) for record in files]
    console = Console(soft_wrap=True, emoji=False)
    if not console.is_terminal:  # for scripts: one tab-separated line per file
        for row in rows:
            typer.echo("\t".join(row))
        return
    table = Table("file", "name", "state", "bytes", "updated", "error or last step")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _status_row(record: dict[str, Any]) -> tuple[str, ...]:
    events = record.get("events") or []
    last = events[-1]["detail"] if events else ""
    return (
        record["id"],
        record.get("filename") or "",
        record["state"],
        str(record.get("upload_size") or ""),
        str(record["updated_at"])[:19].replace("T", " "),
        record.get("error") or last or "",
    )
