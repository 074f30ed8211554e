"""The ``genofed crypt4gh`` command line: help, ranges, output files, stdin kinds."""

from __future__ import annotations

from pathlib import Path

import pytest
from c4gh_support import SEG, assert_ok, assert_one_line_error, encrypt_bytes, genofed, synthetic

from genofed import crypt4gh as c4gh


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("encrypt", ["--recipient-pk", "--sk", "--output"]),
        ("decrypt", ["--sk", "--range", "--output"]),
        ("reencrypt", ["--sk", "--recipient-pk", "--trim", "--output"]),
        ("keygen", ["--sk", "--pk", "--nocrypt", "--kdf"]),
    ],
)
def test_help(command: str, options: list[str]) -> None:
    proc = genofed(command, "--help")
    text = assert_ok(proc).decode()
    for option in options:
        assert option in text, (option, text)


@pytest.fixture
def encrypted(tmp_path: Path, make_key_files) -> dict[str, object]:
    key = make_key_files()
    plain = synthetic(4 * SEG + 99, seed=13)
    path = tmp_path / "data.c4gh"
    path.write_bytes(encrypt_bytes(plain, [key.public]))
    return {"key": key, "plain": plain, "path": path, "dir": tmp_path}


@pytest.mark.parametrize(
    ("text", "words"),
    [("abc", ["--range abc"]), ("10-5", ["--range 10-5"]), ("1-2-3", ["--range 1-2-3"])],
)
def test_range_parsing_errors(text: str, words: list[str], encrypted) -> None:
    proc = genofed(
        "decrypt", "--sk", encrypted["key"].secret_path, "--range", text, stdin=encrypted["path"]
    )
    assert_one_line_error(proc, *words)
    assert proc.stdout == b""


def test_range_from_seekable_file_and_from_pipe(encrypted) -> None:
    plain, path = encrypted["plain"], encrypted["path"]
    sk = encrypted["key"].secret_path
    start, end = SEG - 7, 3 * SEG + 11
    from_file = genofed("decrypt", "--sk", sk, "--range", f"{start}-{end}", stdin=path)
    assert assert_ok(from_file) == plain[start:end]
    from_pipe = genofed(
        "decrypt", "--sk", sk, "--range", f"{2 * SEG + 1}-", stdin=path.read_bytes()
    )
    assert assert_ok(from_pipe) == plain[2 * SEG + 1 :]


def test_encrypt_and_decrypt_with_output_files(encrypted, tmp_path: Path) -> None:
    key = encrypted["key"]
    (tmp_path / "plain").write_bytes(encrypted["plain"])
    out = tmp_path / "out.c4gh"
    proc = genofed(
        "encrypt", "--recipient-pk", key.public_path, "-o", out, stdin=tmp_path / "plain"
    )
    assert assert_ok(proc) == b""
    assert out.exists() and not (tmp_path / ".out.c4gh.partial").exists()
    decrypted = tmp_path / "back"
    assert_ok(genofed("decrypt", "--sk", key.secret_path, "--output", decrypted, stdin=out))
    assert decrypted.read_bytes() == encrypted["plain"]
    assert c4gh.plain_size(out.stat().st_size - c4gh_header_size(out)) == len(encrypted["plain"])


def c4gh_header_size(path: Path) -> int:
    with path.open("rb") as handle:
        return len(c4gh.split(handle))


def test_missing_recipient_key_file(encrypted, tmp_path: Path) -> None:
    proc = genofed("encrypt", "--recipient-pk", tmp_path / "nope.pub", stdin=b"x")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr.decode()
