"""What every command shares: one-line errors instead of tracebacks, the console on stderr."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from genofed.errors import GenofedError

T = TypeVar("T")

# Data goes to stdout; messages, progress and errors go to stderr.
err_console = Console(stderr=True, soft_wrap=True, emoji=False)  # fingerprints hold ":ab:"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one error line on stderr and return the Exit to raise."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)
    return typer.Exit(code)


def say(message: str) -> None:
    """One line on stderr, printed as it is: paths and names may hold '[' (no markup)."""
    err_console.print(message, markup=False, highlight=False)


def run_guarded(action: Callable[[], T]) -> T:
    """Run ``action``; a GenofedError becomes a one-line message and exit code 1."""
    try:
        return action()
    except GenofedError as error:
        raise fail(str(error)) from None


# Below this size a progress bar would only flicker.
PROGRESS_MIN_BYTES = 16 * 1024 * 1024


@contextmanager
def transfer_progress(source: BinaryIO, description: str) -> Iterator[Callable[[int], None] | None]:
    """A byte-counting progress bar on stderr, when stderr is a terminal and the work is large.

    Yields the callback to give the number of bytes just processed, or None when no bar is shown.
    """
    total = _regular_file_size(source)
    if not err_console.is_terminal or (total is not None and total < PROGRESS_MIN_BYTES):
        yield None
        return
    with byte_progress(transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def byte_progress(*, transient: bool = False) -> Progress:
    """Progress bars counting bytes on stderr: name, bar, bytes, speed, time left. They are
    drawn only on a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
    )


def _regular_file_size(source: BinaryIO) -> int | None:
    try:
        info = os.fstat(source.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None
