"""Fixtures for the federation tests; helpers live in ``federation_support``."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "metadata"))  # metadata_support: the cohort
sys.path.insert(0, str(HERE.parent / "node"))  # inbox_support: FakeQueue
