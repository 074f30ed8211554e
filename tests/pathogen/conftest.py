"""Fixtures for the pathogen tests; sheet-building helpers live in ``pathogen_support``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
