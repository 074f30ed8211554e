"""Opening possibly compressed files: gzip and xz from the standard library, zstd with zstandard.

The format is recognised by its magic bytes, not the name: a submitter's ``.fasta`` may well be
gzipped, and a ``.gz`` may not be.
"""

from __future__ import annotations

import gzip
import io
import lzma
from pathlib import Path
from typing import Any

import zstandard

from genofed.errors import GenofedError

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
COMPRESSED_SUFFIXES = (".gz", ".xz", ".zst")
# What a broken compressed stream raises while being read.
STREAM_ERRORS: tuple[type[Exception], ...] = (
    EOFError,
    OSError,
    lzma.LZMAError,
    zstandard.ZstdError,
)


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
    return io.BufferedReader(_ZstdFrames(path))


class _ZstdFrames(io.RawIOBase):
    """The frames of a zstd file, one after the other, refusing to end inside one: zstandard's
    own readers stop quietly at a truncated frame, which would pass a cut sequence as whole."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._frame.unused_data if self._frame.eof else b""
            chunk += self._file.read(1 << 16)
            if not chunk:
                if not self._frame.eof:
                    raise zstandard.ZstdError("the file ends inside a zstd frame")
                return 0
            if self._frame.eof:  # the next frame starts
                self._frame = zstandard.ZstdDecompressor().decompressobj()
            self._pending = self._frame.decompress(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._file.close()
        super().close()


def base_name(name: str) -> str:
    """``name`` without its compression suffix: ``meta.tsv.gz`` → ``meta.tsv``."""
    for suffix in COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
