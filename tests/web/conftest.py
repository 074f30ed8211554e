"""Fixtures for the portal tests; helpers live in ``portal_support``.

After the run, the terminal summary names the folder holding the browser tests' screenshots
(``test-artifacts/portal`` in the checkout, or ``GENOFED_SCREENSHOTS``), when any were taken:
with ``pytest -n`` the tests run in workers whose own output is not shown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1] / "federation"))  # the catalogue
sys.path.append(str(Path(__file__).resolve().parents[1] / "metadata"))  # page's hub fixtures
sys.path.append(str(Path(__file__).resolve().parents[1] / "node"))  # and what they import

from portal_support import ARGS, CHROMIUM, screenshot_folder

_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    folder = screenshot_folder()
    if not folder.is_dir():
        return
    taken = [shot for shot in folder.glob("*.png") if shot.stat().st_mtime >= _STARTED]
    if taken:
        terminalreporter.write_sep("-", "portal screenshots")
        terminalreporter.write_line(f"{len(taken)} screenshots of the portal's pages in {folder}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright, one per module (the browser test modules skip,
    saying why, without either)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    """The folder the screenshots go to, made and printed."""
    folder = screenshot_folder()
    folder.mkdir(parents=True, exist_ok=True)
    print(f"portal screenshots: {folder}")
    return folder
