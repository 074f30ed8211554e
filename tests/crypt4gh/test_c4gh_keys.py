"""Key files: creation, permissions, refusal to overwrite, fingerprints, encoding round trips."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from c4gh_support import assert_ok, assert_one_line_error, c4gh_settings, genofed
from hypothesis import given
from hypothesis import strategies as st

from genofed import crypt4gh as c4gh


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_key_file_mode_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        c4gh.write_keypair(tmp_path / "a.sec", tmp_path / "a.pub", "pw")
    finally:
        os.umask(old)
    assert mode(tmp_path / "a.sec") == 0o600
    c4gh.write_keypair(tmp_path / "sub" / "b.sec", tmp_path / "sub" / "b.pub", None)
    assert mode(tmp_path / "sub" / "b.sec") == 0o600


def test_write_keypair_returns_what_it_wrote(tmp_path: Path) -> None:
    pair = c4gh.write_keypair(tmp_path / "k.sec", tmp_path / "k.pub", "pw", kdf="bcrypt")
    assert c4gh.load_private_key(tmp_path / "k.sec", "pw") == pair.secret
    assert (
        c4gh.load_public_key(tmp_path / "k.pub") == pair.public == c4gh.public_key_of(pair.secret)
    )


@pytest.mark.parametrize("existing", ["sec", "pub"])
def test_keygen_refuses_to_overwrite(existing: str, tmp_path: Path) -> None:
    sk, pk = tmp_path / "k.sec", tmp_path / "k.pub"
    target = sk if existing == "sec" else pk
    target.write_bytes(b"precious")
    with pytest.raises(c4gh.InvalidKeyFile, match="exists"):
        c4gh.write_keypair(sk, pk, "pw")
    assert target.read_bytes() == b"precious"
    other = pk if existing == "sec" else sk
    assert not other.exists()


def test_fingerprint_stable_and_distinct(tmp_path: Path) -> None:
    a, b = c4gh.generate_keypair(), c4gh.generate_keypair()
    fa = c4gh.fingerprint(a.public)
    assert fa == c4gh.fingerprint(bytes(a.public))
    assert fa != c4gh.fingerprint(b.public)
    assert re.fullmatch(r"([0-9a-f]{2}:){15}[0-9a-f]{2}", fa)
    # stable across a round trip through a key file
    c4gh.write_keypair(tmp_path / "x.sec", tmp_path / "x.pub", None)
    loaded = c4gh.load_public_key(tmp_path / "x.pub")
    assert c4gh.fingerprint(loaded) == c4gh.fingerprint(loaded)
    assert c4gh.fingerprint(loaded) != fa


@c4gh_settings(50)
@given(secret=st.binary(min_size=32, max_size=32))
def test_public_key_encoding_round_trip(secret: bytes) -> None:
    public = c4gh.public_key_of(secret)
    encoded = c4gh.encode_public_key(public)
    assert encoded.startswith(b"-----BEGIN CRYPT4GH PUBLIC KEY-----\n")
    assert c4gh.decode_public_key(encoded) == public
    # tolerant of blank lines and CRLF
    assert c4gh.decode_public_key(b"\r\n" + encoded.replace(b"\n", b"\r\n") + b"\n\n") == public


@c4gh_settings(10)
@given(
    secret=st.binary(min_size=32, max_size=32),
    passphrase=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    comment=st.one_of(st.none(), st.text(max_size=30)),
)
def test_private_key_encoding_round_trip(secret: bytes, passphrase, comment) -> None:
    encoded = c4gh.encode_private_key(secret, passphrase, comment=comment)
    assert c4gh.decode_private_key(encoded, passphrase) == secret
    calls: list[int] = []

    def ask() -> str:
        calls.append(1)
        return passphrase or ""

    assert c4gh.decode_private_key(encoded, ask) == secret
    assert calls == ([] if passphrase is None else [1])  # prompt only for an encrypted key
    if passphrase is not None:
        with pytest.raises(c4gh.WrongPassphrase):
            c4gh.decode_private_key(encoded, passphrase + "x")


def test_bcrypt_private_key(tmp_path: Path) -> None:
    secret = os.urandom(32)
    encoded = c4gh.encode_private_key(secret, "pw", kdf="bcrypt")
    assert c4gh.decode_private_key(encoded, "pw") == secret
    with pytest.raises(c4gh.WrongPassphrase):
        c4gh.decode_private_key(encoded, "pW")


def test_public_key_is_not_a_private_key_and_vice_versa(tmp_path: Path) -> None:
    c4gh.write_keypair(tmp_path / "k.sec", tmp_path / "k.pub", None)
    with pytest.raises(c4gh.InvalidKeyFile):
        c4gh.load_private_key(tmp_path / "k.pub", None)
    with pytest.raises(c4gh.InvalidKeyFile):
        c4gh.load_public_key(tmp_path / "k.sec")
    with pytest.raises(c4gh.InvalidKeyFile):
        c4gh.load_public_key(tmp_path / "missing.pub")
    with pytest.raises(c4gh.InvalidKeyFile):
        c4gh.load_private_key(tmp_path, None)
    with pytest.raises(c4gh.InvalidKeyFile):
        c4gh.encode_public_key(b"short")


# -- CLI keygen ------------------------------------------------------------------------------------


def test_cli_keygen_with_env_passphrase(tmp_path: Path) -> None:
    sk, pk = tmp_path / "env.sec", tmp_path / "env.pub"
    proc = genofed("keygen", "--sk", sk, "--pk", pk, "--comment", "me", passphrase="from env")
    assert_ok(proc)
    assert mode(sk) == 0o600
    secret = c4gh.load_private_key(sk, "from env")
    public = c4gh.load_public_key(pk)
    assert c4gh.public_key_of(secret) == public
    with pytest.raises(c4gh.WrongPassphrase):
        c4gh.load_private_key(sk, "other")
    assert c4gh.fingerprint(public) in proc.stderr.decode()
    # Refuses to overwrite: one-line error, files untouched.
    before = sk.read_bytes(), pk.read_bytes()
    proc = genofed("keygen", "--sk", sk, "--pk", pk, passphrase="again")
    assert_one_line_error(proc, "exists")
    assert (sk.read_bytes(), pk.read_bytes()) == before


def test_cli_keygen_nocrypt(tmp_path: Path) -> None:
    sk, pk = tmp_path / "plain.sec", tmp_path / "plain.pub"
    assert_ok(genofed("keygen", "--sk", sk, "--pk", pk, "--nocrypt"))
    assert mode(sk) == 0o600
    secret = c4gh.load_private_key(
        sk, lambda: pytest.fail("an unencrypted key needs no passphrase")
    )
    assert c4gh.public_key_of(secret) == c4gh.load_public_key(pk)


def test_cli_keygen_without_passphrase_or_terminal(tmp_path: Path) -> None:
    sk, pk = tmp_path / "n.sec", tmp_path / "n.pub"
    assert_one_line_error(genofed("keygen", "--sk", sk, "--pk", pk), "C4GH_PASSPHRASE")
    assert not sk.exists() and not pk.exists()
    proc = genofed("keygen", "--sk", sk, "--pk", pk, "--kdf", "argon2", passphrase="x")
    assert_one_line_error(proc, "kdf")
    assert not sk.exists() and not pk.exists()
