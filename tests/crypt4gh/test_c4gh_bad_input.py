"""Bad input: each cause gives its own exception, and the CLI a one-line error, no traceback."""

from __future__ import annotations

import io
import os
from pathlib import Path

import crypt4gh.lib as ref_lib
import pytest
from c4gh_support import (
    CSEG,
    SEG,
    KeyFiles,
    assert_one_line_error,
    c4gh_settings,
    decrypt_bytes,
    encrypt_bytes,
    genofed,
    split_bytes,
    synthetic,
)
from hypothesis import given
from hypothesis import strategies as st

from genofed import crypt4gh as c4gh
from genofed.crypt4gh import header as hdr
from genofed.crypt4gh import keys as keymod

SIZE = 70 * SEG + 999  # two batches: errors can come after plaintext was already produced


@pytest.fixture(scope="module")
def sample(keys: list[c4gh.KeyPair]) -> dict[str, bytes]:
    plain = synthetic(SIZE, seed=5)
    enc = encrypt_bytes(plain, [keys[0].public])
    header, body = split_bytes(enc)
    return {"plain": plain, "enc": enc, "header": header, "body": body}


@pytest.fixture
def files(tmp_path: Path, make_key_files, sample) -> dict[str, object]:
    """The sample file, encrypted for a key written to disk (protected by passphrase 'pw')."""
    key = make_key_files(passphrase="pw")
    enc = encrypt_bytes(sample["plain"], [key.public])
    path = tmp_path / "sample.c4gh"
    path.write_bytes(enc)
    return {"key": key, "enc": enc, "path": path, "dir": tmp_path}


def decrypt_cli(key: KeyFiles, data: bytes, tmp: Path, *extra: str, passphrase: str = "pw"):
    path = tmp / "input.c4gh"
    path.write_bytes(data)
    return genofed("decrypt", "--sk", key.secret_path, *extra, stdin=path, passphrase=passphrase)


def assert_no_output_left(directory: Path, name: str) -> None:
    assert not (directory / name).exists()
    assert not (directory / f".{name}.partial").exists()
    assert not [p for p in os.listdir(directory) if "partial" in p]


# -- truncated data --------------------------------------------------------------------------------


@c4gh_settings(30)
@given(data=st.data())
def test_file_cut_inside_a_segment(data: st.DataObject, sample, keys) -> None:
    body_len = len(sample["body"])
    cut = data.draw(
        st.one_of(
            st.integers(1, body_len - 1),
            st.sampled_from([CSEG + 1, CSEG + 28, CSEG + 29, 64 * CSEG + 5, body_len - 1]),
        ).filter(lambda n: n % CSEG != 0)
    )
    truncated = sample["header"] + sample["body"][:cut]
    with pytest.raises((c4gh.TruncatedData, c4gh.SegmentAuthenticationFailed)) as info:
        decrypt_bytes(truncated, keys[0].secret)
    assert "truncated" in str(info.value)
    index = cut // CSEG
    assert f"segment {index}" in str(info.value) or f"segment ({index}" in str(info.value)
    if cut % CSEG <= 28:
        assert isinstance(info.value, c4gh.TruncatedData)


def test_cli_truncated_file(files) -> None:
    enc = files["enc"]
    proc = decrypt_cli(
        files["key"], enc[: len(enc) - 1000], files["dir"], "-o", str(files["dir"] / "out")
    )
    assert_one_line_error(proc, "truncated")
    assert_no_output_left(files["dir"], "out")
    proc = decrypt_cli(files["key"], enc[: len(enc) - (SIZE % SEG) - 28 + 5], files["dir"])
    assert_one_line_error(proc, "truncated")


# -- wrong key -------------------------------------------------------------------------------------


def test_wrong_key(sample, keys, files, make_key_files) -> None:
    with pytest.raises(c4gh.NoPacketForKey):
        decrypt_bytes(sample["enc"], keys[1].secret)
    other = make_key_files()
    proc = decrypt_cli(other, files["enc"], files["dir"], "-o", str(files["dir"] / "out"))
    assert_one_line_error(proc, "key")
    assert_no_output_left(files["dir"], "out")


# -- tampered body ---------------------------------------------------------------------------------


@c4gh_settings(25)
@given(data=st.data())
def test_tampered_body_names_the_segment(data: st.DataObject, sample, keys) -> None:
    body = sample["body"]
    position = data.draw(
        st.one_of(
            st.integers(0, len(body) - 1),
            # nonce, ciphertext and MAC of segments in both halves of a batch and in the last one
            st.sampled_from(
                [0, 11, 12, CSEG - 1, 40 * CSEG + 3, 64 * CSEG + 100, 69 * CSEG + 5, len(body) - 1]
            ),
        )
    )
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(body)
    tampered[position] ^= flip
    index = position // CSEG
    with pytest.raises(c4gh.SegmentAuthenticationFailed) as info:
        decrypt_bytes(sample["header"] + bytes(tampered), keys[0].secret)
    assert f"segment {index}" in str(info.value) or f"segment ({index}," in str(info.value)
    # Ranges that do not touch the damaged segment still decrypt.
    if index > 0:
        got = decrypt_bytes(sample["header"] + bytes(tampered), keys[0].secret, start=0, end=SEG)
        assert got == sample["plain"][:SEG]


def test_cli_tampered_body_leaves_no_output(files) -> None:
    enc = bytearray(files["enc"])
    header_size = len(split_bytes(bytes(enc))[0])
    enc[header_size + 66 * CSEG + 500] ^= 0x40  # second batch: the first one was already decrypted
    out_dir: Path = files["dir"]
    proc = decrypt_cli(files["key"], bytes(enc), out_dir, "--output", str(out_dir / "plain.out"))
    assert_one_line_error(proc, "segment 66")
    assert_no_output_left(out_dir, "plain.out")


def test_cli_tampered_body_to_stdout_says_output_is_incomplete(files) -> None:
    enc = bytearray(files["enc"])
    header_size = len(split_bytes(bytes(enc))[0])
    enc[header_size + 66 * CSEG + 500] ^= 0x40
    proc = decrypt_cli(files["key"], bytes(enc), files["dir"])
    line = assert_one_line_error(proc, "segment 66")
    # Whatever reached stdout is less than the file, and the error says to discard it.
    assert len(proc.stdout) < SIZE
    assert proc.stdout == files_plain(files)[: len(proc.stdout)]
    if proc.stdout:
        assert "incomplete" in line or "discard" in line


def files_plain(files) -> bytes:
    key: KeyFiles = files["key"]
    return decrypt_bytes(files["enc"], key.secret)


# -- two edit lists --------------------------------------------------------------------------------


def two_edit_lists(sample, secret: bytes, public: bytes) -> bytes:
    session_key = c4gh.open_header(c4gh.parse_header(sample["header"]), secret).session_keys[0]
    writer = c4gh.generate_keypair().secret
    packets = [
        hdr.encrypt_packet(hdr.data_key_packet(session_key), writer, public),
        hdr.encrypt_packet(hdr.edit_list_packet([1, 2]), writer, public),
        hdr.encrypt_packet(hdr.edit_list_packet([3, 4]), writer, public),
    ]
    return hdr.serialize(packets)


def test_two_edit_lists_for_one_key(sample, keys, files) -> None:
    header = two_edit_lists(sample, keys[0].secret, keys[0].public)
    with pytest.raises(c4gh.InvalidEditList):
        decrypt_bytes(header + sample["body"], keys[0].secret)
    with pytest.raises(c4gh.InvalidEditList):
        c4gh.open_header(c4gh.parse_header(header), keys[0].secret)
    # The reference rejects it too.
    with pytest.raises(ValueError, match="edit list"):
        ref_lib.decrypt(
            [(0, keys[0].secret, None)], io.BytesIO(header + sample["body"]), io.BytesIO()
        )
    # One edit list per recipient is fine, even when there are several recipients.
    header = c4gh.reencrypt_header(
        sample["header"], keys[0].secret, [keys[0].public, keys[1].public], edit_list=[1, 2]
    )
    assert decrypt_bytes(header + sample["body"], keys[1].secret) == sample["plain"][1:3]
    # CLI
    key: KeyFiles = files["key"]
    enc = files["enc"]
    file_header, body = split_bytes(enc)
    bad = two_edit_lists({"header": file_header}, key.secret, key.public) + body
    assert_one_line_error(decrypt_cli(key, bad, files["dir"]), "edit list")


# -- broken headers --------------------------------------------------------------------------------


def test_bad_magic_version_and_truncated_header(sample, keys, files) -> None:
    enc = sample["enc"]
    bad_magic = b"crypt5gh" + enc[8:]
    bad_version = enc[:8] + (2).to_bytes(4, "little") + enc[12:]
    header_size = len(sample["header"])
    with pytest.raises(c4gh.NotCrypt4GH):
        decrypt_bytes(bad_magic, keys[0].secret)
    with pytest.raises(c4gh.UnsupportedVersion):
        decrypt_bytes(bad_version, keys[0].secret)
    for cut in (16, 17, 20, header_size // 2, header_size - 1):
        with pytest.raises(c4gh.MalformedHeader):
            decrypt_bytes(enc[:cut], keys[0].secret)


@pytest.mark.parametrize(
    ("mutation", "words"),
    [
        ("magic", ["not a crypt4gh file"]),
        ("version", ["version 2"]),
        ("cut-header", ["header", "truncated"]),
        ("empty", ["crypt4gh"]),
    ],
)
def test_cli_broken_headers(mutation: str, words: list[str], files) -> None:
    enc: bytes = files["enc"]
    header_size = len(split_bytes(enc)[0])
    data = {
        "magic": b"CRYPT4GH" + enc[8:],
        "version": enc[:8] + (2).to_bytes(4, "little") + enc[12:],
        "cut-header": enc[: header_size - 7],
        "empty": b"",
    }[mutation]
    proc = decrypt_cli(files["key"], data, files["dir"], "-o", str(files["dir"] / "out"))
    assert_one_line_error(proc, *words)
    assert_no_output_left(files["dir"], "out")


# -- keys ------------------------------------------------------------------------------------------


def test_wrong_passphrase(files) -> None:
    key: KeyFiles = files["key"]
    with pytest.raises(c4gh.WrongPassphrase):
        c4gh.load_private_key(key.secret_path, "wrong")
    with pytest.raises(c4gh.WrongPassphrase):
        c4gh.load_private_key(key.secret_path, None)
    proc = decrypt_cli(key, files["enc"], files["dir"], passphrase="wrong")
    assert_one_line_error(proc, "passphrase")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage\n",
        b"-----BEGIN CRYPT4GH PRIVATE KEY-----\n!!base64!!\n-----END CRYPT4GH PRIVATE KEY-----\n",
        b"-----BEGIN CRYPT4GH PRIVATE KEY-----\nYWJjZGVmZ2g=\n-----END CRYPT4GH PRIVATE KEY-----\n",
        b"-----BEGIN CRYPT4GH PRIVATE KEY-----\nYzRnaC12MQ==\n-----END CRYPT4GH PRIVATE KEY-----\n",
    ],
)
def test_garbage_key_file(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "garbage.sec"
    path.write_bytes(content)
    with pytest.raises(c4gh.InvalidKeyFile):
        c4gh.load_private_key(path, "pw")
    with pytest.raises(c4gh.InvalidKeyFile):
        c4gh.load_public_key(path)


def test_cli_garbage_key_file(files) -> None:
    key: KeyFiles = files["key"]
    garbage = files["dir"] / "garbage.sec"
    garbage.write_bytes(os.urandom(300))
    fake = KeyFiles(garbage, key.public_path, key.secret, key.public, "pw")
    assert_one_line_error(decrypt_cli(fake, files["enc"], files["dir"]), "garbage.sec")
    # A public key given where a private one is expected.
    fake = KeyFiles(key.public_path, key.public_path, key.secret, key.public, "pw")
    assert_one_line_error(decrypt_cli(fake, files["enc"], files["dir"]), "private key")


def _sealed_key(kdf: bytes, options: bytes, material: bytes) -> bytes:
    s = keymod._string
    body = keymod.MAGIC_WORD + s(kdf) + s(options) + s(b"chacha20_poly1305") + s(material)
    return keymod._armour(keymod.PRIVATE_BEGIN, body, keymod.PRIVATE_END)


DAMAGED_KEYS = {
    "short sealed material": _sealed_key(b"scrypt", b"\0\0\0\0" + b"s" * 16, b"abc"),
    "bcrypt with 0 rounds": _sealed_key(b"bcrypt", b"\0\0\0\0" + b"s" * 16, b"n" * 12 + b"c" * 48),
    "bcrypt without salt": _sealed_key(b"bcrypt", b"\0\0\0\x64", b"n" * 12 + b"c" * 48),
    "pbkdf2 with 0 rounds": _sealed_key(
        b"pbkdf2_hmac_sha256", b"\0\0\0\0" + b"s" * 16, b"n" * 12 + b"c" * 48
    ),
}


@pytest.mark.parametrize("name", sorted(DAMAGED_KEYS))
def test_damaged_key_file_gives_crypt4gh_error(name: str) -> None:
    """Regression: these raised ValueError (nonce size, bcrypt/pbkdf2 parameters) before 29e6b39."""
    with pytest.raises(c4gh.Crypt4GHError):
        c4gh.decode_private_key(DAMAGED_KEYS[name], "pw")


def test_cli_damaged_key_file(files) -> None:
    """Regression: a traceback (ValueError: Nonce must be 12 bytes) before 29e6b39."""
    key: KeyFiles = files["key"]
    damaged = files["dir"] / "damaged.sec"
    damaged.write_bytes(DAMAGED_KEYS["short sealed material"])
    fake = KeyFiles(damaged, key.public_path, key.secret, key.public, "pw")
    assert_one_line_error(decrypt_cli(fake, files["enc"], files["dir"]), "damaged.sec")


@c4gh_settings(200)
@given(
    kdf=st.sampled_from([b"none", b"scrypt", b"bcrypt", b"pbkdf2_hmac_sha256", b"argon2", b""]),
    options=st.one_of(
        st.binary(max_size=24),
        # small round counts keep bcrypt and pbkdf2 fast
        st.tuples(st.integers(0, 3), st.binary(max_size=20)).map(
            lambda t: t[0].to_bytes(4, "big") + t[1]
        ),
    ),
    cipher=st.sampled_from([b"none", b"chacha20_poly1305", b"aes"]),
    material=st.one_of(st.binary(max_size=70), st.binary(min_size=60, max_size=60)),
)
def test_random_key_structures_raise_only_crypt4gh_errors(kdf, options, cipher, material) -> None:
    if kdf in (b"bcrypt", b"pbkdf2_hmac_sha256") and int.from_bytes(options[:4], "big") > 3:
        options = (2).to_bytes(4, "big") + options[4:]
    s = keymod._string
    body = keymod.MAGIC_WORD + s(kdf) + (s(options) if kdf != b"none" else b"")
    body += s(cipher) + s(material)
    data = keymod._armour(keymod.PRIVATE_BEGIN, body, keymod.PRIVATE_END)
    try:
        secret = c4gh.decode_private_key(data, "pw")
    except c4gh.Crypt4GHError:
        return
    assert cipher == b"none" and secret == material and len(material) == 32


# -- a stray packet must not hide the reader's own -------------------------------------------------


def test_low_order_packet_does_not_hide_the_readers_packet(sample, keys) -> None:
    """Regression: open_header raised MalformedHeader for the junk packet before 29e6b39."""
    junk = b"\0\0\0\0" + b"\0" * 32 + b"\0" * 12 + b"\0" * 48  # writer key of order 1
    header = hdr.serialize([junk, *c4gh.parse_header(sample["header"]).packets])
    enc = header + sample["body"]
    ref_out = io.BytesIO()
    ref_lib.decrypt([(0, keys[0].secret, None)], io.BytesIO(enc), ref_out)
    assert ref_out.getvalue() == sample["plain"]  # the reference copes
    assert decrypt_bytes(enc, keys[0].secret) == sample["plain"]
