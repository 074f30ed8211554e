"""Opening possibly compressed files: gzip and xz from the standard library, zstd if installed.

The format is recognised by its magic bytes, not the name: a submitter's ``.fasta`` may well be
gzipped, and a ``.gz`` may not be.
"""

from __future__ import annotations

import gzip
import importlib
import io
import lzma
from pathlib import Path
from typing import Any

from genofed.errors import GenofedError

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
COMPRESSED_SUFFIXES = (".gz", ".xz", ".zst")
# What a broken compressed stream raises while being read.
STREAM_ERRORS: tuple[type[Exception], ...] = (EOFError, OSError, lzma.LZMAError)


class CompressionError(GenofedError):
    """A file cannot be opened: unreadable, or compressed in a way we cannot read."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix


def open_binary(path: Path) -> io.BufferedIOBase:
    """Open ``path`` for reading, decompressing gzip, xz or zstd transparently."""
    try:
        with path.open("rb") as probe:
            magic = probe.read(6)
        if magic.startswith(GZIP_MAGIC):
            return gzip.open(path, "rb")
        if magic.startswith(XZ_MAGIC):
            return lzma.open(path, "rb")
        if magic.startswith(ZSTD_MAGIC):
            return _open_zstd(path)
        return path.open("rb")
    except OSError as error:
        raise CompressionError(
            f"{path.name} cannot be read: {error.strerror or error}", "check the path"
        ) from error


def _open_zstd(path: Path) -> io.BufferedIOBase:
    """zstd needs the optional ``zstandard`` package; without it, say so rather than misread."""
    try:
        zstandard: Any = importlib.import_module("zstandard")
    except ImportError as error:
        raise CompressionError(
            f"{path.name} is zstd-compressed and the zstandard package is not installed",
            "install it (pip install zstandard) or send the file uncompressed, gzip or xz",
        ) from error
    stream: io.BufferedIOBase = zstandard.open(path, "rb")
    return stream


def base_name(name: str) -> str:
    """``name`` without its compression suffix: ``meta.tsv.gz`` → ``meta.tsv``."""
    for suffix in COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
