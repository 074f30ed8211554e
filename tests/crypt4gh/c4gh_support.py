"""Helpers for the Crypt4GH tests: synthetic data, oracles, stream wrappers, CLI runners.

The reference implementation (``crypt4gh`` from PyPI) is the oracle for interoperability; plain
byte slicing is the oracle for ranges and edit lists.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings

from genofed import crypt4gh as c4gh

VENV_BIN = Path(sys.executable).parent
GENOFED = VENV_BIN / "genofed"
REF_CLI = VENV_BIN / "crypt4gh"
REF_KEYGEN = VENV_BIN / "crypt4gh-keygen"
SEG = c4gh.SEGMENT_SIZE
CSEG = c4gh.CIPHER_SEGMENT_SIZE


def c4gh_settings(max_examples: int) -> settings:
    """Hypothesis settings for this suite: no deadline (CI machines vary), no example database
    written outside tests/crypt4gh, slow data generation tolerated."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def synthetic(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (fast even for MiBs)."""
    return random.Random(seed).randbytes(size)


def apply_edit_list(data: bytes, edit_list: Sequence[int] | None) -> bytes:
    """The plaintext an edit list presents: lengths alternate skip / keep; odd length keeps rest."""
    if edit_list is None:
        return data
    out, position = [], 0
    for number, length in enumerate(edit_list):
        if number % 2:
            out.append(data[position : position + length])
        position += length
    if len(edit_list) % 2:
        out.append(data[position:])
    return b"".join(out)


def encrypt_bytes(data: bytes, recipients: Sequence[bytes], **kwargs: object) -> bytes:
    out = io.BytesIO()
    c4gh.encrypt(io.BytesIO(data), out, recipients, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def decrypt_bytes(data: bytes, secret: bytes, **kwargs: object) -> bytes:
    out = io.BytesIO()
    written = c4gh.decrypt(io.BytesIO(data), out, secret, **kwargs)  # type: ignore[arg-type]
    assert written == len(out.getvalue())
    return out.getvalue()


def split_bytes(data: bytes) -> tuple[bytes, bytes]:
    """(header, body) of an encrypted file, using the engine's own ``split``."""
    stream = io.BytesIO(data)
    header = c4gh.split(stream)
    return header, stream.read()


class NonSeekable:
    """A forward-only source: ``seekable()`` is False and there is no seek or tell."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)

    def readinto(self, buffer: memoryview) -> int:
        return self._inner.readinto(buffer)

    def seekable(self) -> bool:
        return False


class CountingReader(io.RawIOBase):
    """A seekable source that counts the bytes handed out."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        n = self._inner.readinto(buffer)
        self.bytes_read += n
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.bytes_read += len(data)
        return data


@dataclass(frozen=True)
class KeyFiles:
    secret_path: Path
    public_path: Path
    secret: bytes
    public: bytes
    passphrase: str | None


def _env(passphrase: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C4GH_")}
    env["COLUMNS"] = "80"  # a narrow terminal must still give one-line errors
    if passphrase is not None:
        env["C4GH_PASSPHRASE"] = passphrase
    return env


def run(
    argv: Sequence[str | Path],
    *,
    stdin: bytes | Path = b"",
    passphrase: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command detached from any terminal (no prompt can block), stdin from bytes or file."""
    args = [str(a) for a in argv]
    common = dict(
        capture_output=True, env=_env(passphrase), start_new_session=True, timeout=120, cwd=cwd
    )
    if isinstance(stdin, Path):
        with stdin.open("rb") as handle:
            return subprocess.run(args, stdin=handle, **common)  # type: ignore[call-overload, no-any-return]
    return subprocess.run(args, input=stdin, **common)  # type: ignore[call-overload, no-any-return]


def genofed(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return run([GENOFED, "crypt4gh", *argv], **kwargs)  # type: ignore[arg-type]


def ref(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return run([REF_CLI, *argv], **kwargs)  # type: ignore[arg-type]


def assert_ok(proc: subprocess.CompletedProcess[bytes]) -> bytes:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def assert_one_line_error(proc: subprocess.CompletedProcess[bytes], *words: str) -> str:
    """Exit code != 0, no traceback, a single non-empty stderr line containing every word."""
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]
