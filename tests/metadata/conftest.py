"""Fixtures for the metadata tests; the cohort and helpers live in ``metadata_support``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
