"""What every command shares: one-line errors instead of tracebacks, the console on stderr."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console

from genofed.errors import GenofedError

T = TypeVar("T")

# Data goes to stdout; messages, progress and errors go to stderr.
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one error line on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run_guarded(action: Callable[[], T]) -> T:
    """Run ``action``; a GenofedError becomes a one-line message and exit code 1."""
    try:
        return action()
    except GenofedError as error:
        raise fail(str(error)) from None
