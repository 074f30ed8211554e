"""Edges found in review: read-only sources, empty edit lists, empty passphrases."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
from c4gh_support import GENOFED, SEG, decrypt_bytes, encrypt_bytes, synthetic

from genofed import crypt4gh as c4gh


class ReadOnly:
    """A source with ``read`` and nothing else (no readinto, no seek)."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def seekable(self) -> bool:
        return False


def test_sources_with_only_read_are_accepted(keys) -> None:
    plain = synthetic(3 * SEG + 7)
    sealed = io.BytesIO()
    c4gh.encrypt(ReadOnly(plain), sealed, [keys[0].public])  # type: ignore[arg-type]
    assert decrypt_bytes(sealed.getvalue(), keys[0].secret) == plain
    header_and_body = ReadOnly(sealed.getvalue())
    out = io.BytesIO()
    c4gh.decrypt(header_and_body, out, keys[0].secret, start=SEG - 1, end=2 * SEG + 1)  # type: ignore[arg-type]
    assert out.getvalue() == plain[SEG - 1 : 2 * SEG + 1]


def test_an_empty_edit_list_is_refused_everywhere(keys) -> None:
    with pytest.raises(c4gh.InvalidEditList):
        c4gh.build_header(os.urandom(32), [keys[0].public], edit_list=[])
    header = c4gh.split(io.BytesIO(encrypt_bytes(b"data", [keys[0].public])))
    with pytest.raises(c4gh.InvalidEditList):
        c4gh.reencrypt_header(header, keys[0].secret, [keys[1].public], edit_list=[])


def test_keygen_refuses_an_empty_passphrase(tmp_path: Path) -> None:
    result = subprocess.run(
        [GENOFED, "crypt4gh", "keygen", "--sk", tmp_path / "k.sec", "--pk", tmp_path / "k.pub"],
        env={**os.environ, "C4GH_PASSPHRASE": ""},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert "--nocrypt" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "k.sec").exists()
