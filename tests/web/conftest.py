"""Fixtures for the portal tests; helpers live in ``portal_support``.

After the run, the terminal summary names the folder holding the browser tests' screenshots
(``test-artifacts/portal`` in the checkout, or ``GENOFED_SCREENSHOTS``), when any were taken:
with ``pytest -n`` the tests run in workers whose own output is not shown.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1] / "federation"))  # the catalogue
sys.path.append(str(Path(__file__).resolve().parents[1] / "metadata"))  # page's hub fixtures
sys.path.append(str(Path(__file__).resolve().parents[1] / "node"))  # and what they import

from portal_support import screenshot_folder

_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    folder = screenshot_folder()
    if not folder.is_dir():
        return
    taken = [shot for shot in folder.glob("*.png") if shot.stat().st_mtime >= _STARTED]
    if taken:
        terminalreporter.write_sep("-", "portal screenshots")
        terminalreporter.write_line(f"{len(taken)} screenshots of the portal's pages in {folder}")
