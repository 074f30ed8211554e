"""Interoperability with the reference Crypt4GH implementation, in both directions.

Every direction is checked through the real command lines (subprocesses) and through the
reference library. The reference's ``decrypt --range`` is wrong beyond the first segment, so it is
never used here: plaintext slicing is the oracle for edit lists.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import crypt4gh.header as ref_header
import crypt4gh.keys as ref_keys
import crypt4gh.lib as ref_lib
import pytest
from c4gh_support import (
    CSEG,
    REF_KEYGEN,
    SEG,
    KeyFiles,
    apply_edit_list,
    assert_ok,
    c4gh_settings,
    decrypt_bytes,
    encrypt_bytes,
    genofed,
    ref,
    run,
    split_bytes,
    synthetic,
)
from hypothesis import given
from hypothesis import strategies as st

from genofed import crypt4gh as c4gh


def ref_decrypt(data: bytes, secret: bytes, sender_pk: bytes | None = None) -> bytes:
    out = io.BytesIO()
    ref_lib.decrypt([(0, secret, None)], io.BytesIO(data), out, sender_pubkey=sender_pk)
    return out.getvalue()


def ref_encrypt(data: bytes, writer_secret: bytes, recipients: list[bytes]) -> bytes:
    out = io.BytesIO()
    ref_lib.encrypt([(0, writer_secret, pk) for pk in recipients], io.BytesIO(data), out)
    return out.getvalue()


def ref_session_keys(data: bytes, secret: bytes) -> tuple[list[bytes], list[int] | None]:
    session_keys, edit_list = ref_header.deconstruct(io.BytesIO(data), [(0, secret, None)])
    return [bytes(k) for k in session_keys], None if edit_list is None else list(edit_list)


# -- we encrypt, the reference decrypts ------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * 1024 * 1024 + 12345])
def test_reference_cli_decrypts_our_cli_encryption(
    size: int, tmp_path: Path, alice: KeyFiles
) -> None:
    plain = synthetic(size, seed=size)
    (tmp_path / "plain").write_bytes(plain)
    enc = assert_ok(
        genofed("encrypt", "--recipient-pk", alice.public_path, stdin=tmp_path / "plain")
    )
    (tmp_path / "enc").write_bytes(enc)
    body = split_bytes(enc)[1]
    assert len(body) == c4gh.cipher_size(size)
    got = assert_ok(
        ref(
            "decrypt",
            "--sk",
            alice.secret_path,
            stdin=tmp_path / "enc",
            passphrase=alice.passphrase,
        )
    )
    assert got == plain
    assert ref_decrypt(enc, alice.secret) == plain


def test_reference_decrypts_several_recipients_and_writer_key(
    tmp_path: Path, make_key_files, alice: KeyFiles, bob: KeyFiles
) -> None:
    """Three recipients, a writer key given with --sk: each recipient decrypts with the reference,
    and the reference's sender check accepts the writer's public key and rejects another."""
    ours, writer = make_key_files(), make_key_files(passphrase="w")
    plain = synthetic(2 * SEG + 777, seed=7)
    enc = assert_ok(
        genofed(
            "encrypt",
            "--recipient-pk",
            alice.public_path,
            "--recipient-pk",
            bob.public_path,
            "--recipient-pk",
            ours.public_path,
            "--sk",
            writer.secret_path,
            stdin=plain,
            passphrase="w",
        )
    )
    (tmp_path / "enc").write_bytes(enc)
    for who in (alice, bob):
        got = ref(
            "decrypt",
            "--sk",
            who.secret_path,
            "--sender_pk",
            writer.public_path,
            stdin=tmp_path / "enc",
            passphrase=who.passphrase,
        )
        assert assert_ok(got) == plain
    assert ref_decrypt(enc, ours.secret, sender_pk=writer.public) == plain
    # The writer key really is the one in the packets: another sender key is refused.
    with pytest.raises(ValueError):
        ref_session_keys_with_sender(enc, alice.secret, ours.public)
    # Without --sk, the packets carry an ephemeral writer key, not the recipient's.
    anon = encrypt_bytes(plain, [alice.public])
    assert ref_decrypt(anon, alice.secret) == plain
    with pytest.raises(ValueError):
        ref_session_keys_with_sender(anon, alice.secret, writer.public)


def ref_session_keys_with_sender(data: bytes, secret: bytes, sender: bytes) -> object:
    return ref_header.deconstruct(io.BytesIO(data), [(0, secret, None)], sender_pubkey=sender)


@c4gh_settings(15)
@given(
    size=st.one_of(
        st.integers(0, 3 * SEG + 10),
        st.sampled_from([k * SEG + d for k in range(1, 4) for d in (-1, 0, 1)]),
    ),
    n_recipients=st.integers(1, 3),
)
def test_reference_library_decrypts_our_library_encryption(
    size: int, n_recipients: int, keys: list[c4gh.KeyPair]
) -> None:
    plain = synthetic(size, seed=size)
    recipients = keys[:n_recipients]
    enc = encrypt_bytes(plain, [k.public for k in recipients], writer_secret=keys[4].secret)
    for k in recipients:
        assert ref_decrypt(enc, k.secret, sender_pk=keys[4].public) == plain


# -- the reference encrypts, we decrypt ------------------------------------------------------------


def test_we_decrypt_reference_vector(vectors: Path, alice: KeyFiles) -> None:
    enc_path = vectors / "testfile.abcd.bob-to-alice.c4gh"
    expected = (vectors / "testfile.abcd").read_bytes()
    assert decrypt_bytes(enc_path.read_bytes(), alice.secret) == expected
    got = genofed("decrypt", "--sk", alice.secret_path, stdin=enc_path, passphrase="alice")
    assert assert_ok(got) == expected


def test_we_decrypt_reference_cli_encryption(tmp_path: Path, make_key_files, bob: KeyFiles) -> None:
    ours = make_key_files(passphrase="pw")
    plain = synthetic(5 * SEG + 3, seed=11)
    (tmp_path / "plain").write_bytes(plain)
    enc = assert_ok(
        ref(
            "encrypt",
            "--sk",
            bob.secret_path,
            "--recipient_pk",
            ours.public_path,
            stdin=tmp_path / "plain",
            passphrase="bob",
        )
    )
    (tmp_path / "enc").write_bytes(enc)
    got = genofed("decrypt", "--sk", ours.secret_path, stdin=tmp_path / "enc", passphrase="pw")
    assert assert_ok(got) == plain
    # A range of the reference's file, through the CLI, against slicing.
    got = genofed(
        "decrypt",
        "--sk",
        ours.secret_path,
        "--range",
        f"{SEG - 5}-{3 * SEG + 9}",
        stdin=tmp_path / "enc",
        passphrase="pw",
    )
    assert assert_ok(got) == plain[SEG - 5 : 3 * SEG + 9]


@c4gh_settings(15)
@given(size=st.integers(0, 3 * SEG + 10), n_recipients=st.integers(1, 3), data=st.data())
def test_we_decrypt_reference_library_encryption(
    size: int, n_recipients: int, data: st.DataObject, keys: list[c4gh.KeyPair]
) -> None:
    plain = synthetic(size, seed=size + 1)
    enc = ref_encrypt(plain, keys[4].secret, [k.public for k in keys[:n_recipients]])
    for k in keys[:n_recipients]:
        assert decrypt_bytes(enc, k.secret) == plain
    if size:
        start = data.draw(st.integers(0, size - 1))
        end = data.draw(st.integers(start + 1, size + 10))
        assert decrypt_bytes(enc, keys[0].secret, start=start, end=end) == plain[start:end]


# -- re-encryption across implementations ----------------------------------------------------------


def test_reference_decrypts_our_reencryption_of_reference_file(
    tmp_path: Path, vectors: Path, alice: KeyFiles, make_key_files
) -> None:
    new = make_key_files(passphrase="new")
    src = vectors / "testfile.abcd.bob-to-alice.c4gh"
    out = assert_ok(
        genofed(
            "reencrypt",
            "--sk",
            alice.secret_path,
            "--recipient-pk",
            new.public_path,
            "--trim",
            stdin=src,
            passphrase="alice",
        )
    )
    (tmp_path / "re").write_bytes(out)
    # Only the header changed.
    assert split_bytes(out)[1] == split_bytes(src.read_bytes())[1]
    got = ref("decrypt", "--sk", new.secret_path, stdin=tmp_path / "re", passphrase="new")
    assert assert_ok(got) == (vectors / "testfile.abcd").read_bytes()
    # Trimmed: alice's packet is gone, for the reference too.
    with pytest.raises(ValueError):
        ref_session_keys(out, alice.secret)


def test_reference_library_decrypts_our_library_reencryption(keys: list[c4gh.KeyPair]) -> None:
    plain = synthetic(2 * SEG + 5, seed=3)
    enc = ref_encrypt(plain, keys[4].secret, [keys[0].public])
    out = io.BytesIO()
    c4gh.reencrypt_stream(io.BytesIO(enc), out, keys[0].secret, [keys[1].public, keys[2].public])
    for k in keys[1:3]:
        assert ref_decrypt(out.getvalue(), k.secret) == plain


def test_we_decrypt_reference_reencryption(
    tmp_path: Path, make_key_files, alice: KeyFiles, keys: list[c4gh.KeyPair]
) -> None:
    ours, other = make_key_files(), keys[3]
    plain = synthetic(3 * SEG + 1, seed=4)
    enc = encrypt_bytes(plain, [ours.public, other.public])
    (tmp_path / "enc").write_bytes(enc)
    re = assert_ok(
        ref(
            "reencrypt",
            "--sk",
            ours.secret_path,
            "--recipient_pk",
            alice.public_path,
            stdin=tmp_path / "enc",
        )
    )
    (tmp_path / "re").write_bytes(re)
    assert split_bytes(re)[1] == split_bytes(enc)[1]
    got = genofed("decrypt", "--sk", alice.secret_path, stdin=tmp_path / "re", passphrase="alice")
    assert assert_ok(got) == plain
    # The reference keeps the packets it could not open (the other recipient's) ...
    assert decrypt_bytes(re, other.secret) == plain
    # ... and replaces the ones it opened.
    with pytest.raises(c4gh.NoPacketForKey):
        decrypt_bytes(re, ours.secret)
    # Through the reference library, with trim: only the new recipient remains.
    out = io.BytesIO()
    ref_lib.reencrypt(
        [(0, ours.secret, None)], [(0, ours.secret, alice.public)], io.BytesIO(enc), out, trim=True
    )
    assert decrypt_bytes(out.getvalue(), alice.secret) == plain
    assert len(c4gh.parse_header(split_bytes(out.getvalue())[0]).packets) == 1
    with pytest.raises(c4gh.NoPacketForKey):
        decrypt_bytes(out.getvalue(), other.secret)


# -- keys across implementations -------------------------------------------------------------------


@pytest.mark.parametrize("kdf", ["scrypt", "bcrypt"])
def test_reference_reads_our_cli_key_files(
    kdf: str, tmp_path: Path, keys: list[c4gh.KeyPair]
) -> None:
    sk, pk = tmp_path / "ours.sec", tmp_path / "ours.pub"
    proc = genofed("keygen", "--sk", sk, "--pk", pk, "--kdf", kdf, passphrase="s3cret pass")
    assert_ok(proc)
    body = base64.b64decode(b"".join(sk.read_bytes().splitlines()[1:-1]))
    assert body.startswith(b"c4gh-v1" + len(kdf).to_bytes(2, "big") + kdf.encode())
    secret = ref_keys.get_private_key(str(sk), lambda: "s3cret pass")
    public = ref_keys.get_public_key(str(pk))
    assert c4gh.public_key_of(bytes(secret)) == bytes(public)
    plain = synthetic(SEG + 9, seed=5)
    enc = encrypt_bytes(plain, [bytes(public)])
    (tmp_path / "enc").write_bytes(enc)
    got = ref("decrypt", "--sk", sk, stdin=tmp_path / "enc", passphrase="s3cret pass")
    assert assert_ok(got) == plain


def test_reference_reads_our_unencrypted_key(tmp_path: Path, make_key_files) -> None:
    ours = make_key_files(passphrase=None)
    secret = ref_keys.get_private_key(str(ours.secret_path), lambda: pytest.fail("no prompt"))
    assert bytes(secret) == ours.secret


def test_we_read_reference_cli_key_files(tmp_path: Path) -> None:
    """``crypt4gh-keygen`` ignores C4GH_PASSPHRASE when generating (it only uses it for --relock)
    and asks with getpass, which reads stdin when there is no terminal."""
    sk, pk = tmp_path / "ref.sec", tmp_path / "ref.pub"
    proc = run([REF_KEYGEN, "--sk", sk, "--pk", pk], stdin=b"refpw\nrefpw\n", passphrase="refpw")
    assert_ok(proc)
    secret = c4gh.load_private_key(sk, "refpw")
    public = c4gh.load_public_key(pk)
    assert c4gh.public_key_of(secret) == public
    assert secret == bytes(ref_keys.get_private_key(str(sk), lambda: "refpw"))
    with pytest.raises(c4gh.WrongPassphrase):
        c4gh.load_private_key(sk, "not it")
    # The reference encrypts for its key; our CLI decrypts with the reference's key file.
    plain = synthetic(SEG + 100, seed=6)
    (tmp_path / "enc").write_bytes(ref_encrypt(plain, c4gh.generate_keypair().secret, [public]))
    got = genofed("decrypt", "--sk", sk, stdin=tmp_path / "enc", passphrase="refpw")
    assert assert_ok(got) == plain


def test_we_read_reference_unencrypted_key(tmp_path: Path) -> None:
    sk, pk = tmp_path / "ref.sec", tmp_path / "ref.pub"
    assert_ok(run([REF_KEYGEN, "--sk", sk, "--pk", pk, "--nocrypt"]))
    secret = c4gh.load_private_key(sk, None)
    assert c4gh.public_key_of(secret) == c4gh.load_public_key(pk)


def test_vector_keys_match(alice: KeyFiles, bob: KeyFiles) -> None:
    for who in (alice, bob):
        assert c4gh.public_key_of(who.secret) == who.public
        ref_secret = ref_keys.get_private_key(str(who.secret_path), lambda w=who: w.passphrase)
        assert bytes(ref_secret) == who.secret
        assert bytes(ref_keys.get_public_key(str(who.public_path))) == who.public
    assert alice.public != bob.public


# -- edit lists across implementations -------------------------------------------------------------

edit_lists = st.lists(st.integers(1, 2 * SEG + 100), min_size=1, max_size=6).flatmap(
    lambda tail: st.integers(0, 2 * SEG + 100).map(lambda first: [first, *tail[1:]])
)


@pytest.fixture(scope="module")
def edit_source(keys: list[c4gh.KeyPair]) -> tuple[bytes, bytes]:
    plain = synthetic(4 * SEG + 4321, seed=99)
    return plain, encrypt_bytes(plain, [keys[0].public])


@c4gh_settings(40)
@given(edit_list=edit_lists)
def test_edit_list_header_decrypts_alike_with_reference(
    edit_list: list[int], edit_source: tuple[bytes, bytes], keys: list[c4gh.KeyPair]
) -> None:
    plain, enc = edit_source
    header, body = split_bytes(enc)
    new_header = c4gh.reencrypt_header(
        header, keys[0].secret, [keys[1].public], edit_list=edit_list
    )
    edited = new_header + body
    expected = apply_edit_list(plain, edit_list)
    assert ref_session_keys(edited, keys[1].secret)[1] == edit_list
    assert ref_decrypt(edited, keys[1].secret) == expected
    assert decrypt_bytes(edited, keys[1].secret) == expected


def test_edit_list_stream_decrypts_alike_with_reference_cli(
    tmp_path: Path, make_key_files, alice: KeyFiles
) -> None:
    ours = make_key_files()
    plain = synthetic(5 * SEG + 17, seed=12)
    enc = encrypt_bytes(plain, [ours.public])
    for n, edit_list in enumerate([[10, 5], [SEG - 3, 2 * SEG + 7, 100], [3 * SEG, SEG + 1, 5]]):
        out = io.BytesIO()
        c4gh.reencrypt_stream(
            io.BytesIO(enc), out, ours.secret, [alice.public], edit_list=edit_list
        )
        path = tmp_path / f"edited{n}"
        path.write_bytes(out.getvalue())
        expected = apply_edit_list(plain, edit_list)
        got = assert_ok(ref("decrypt", "--sk", alice.secret_path, stdin=path, passphrase="alice"))
        assert got == expected
        if n == 1:  # our CLI starts slowly: once is enough, the library does the rest
            got = genofed("decrypt", "--sk", alice.secret_path, stdin=path, passphrase="alice")
            assert assert_ok(got) == expected
        assert decrypt_bytes(out.getvalue(), alice.secret) == expected
        assert len(split_bytes(out.getvalue())[1]) == len(split_bytes(enc)[1]) == cipher(plain)


def cipher(plain: bytes) -> int:
    return c4gh.cipher_size(len(plain))


def test_cipher_segment_constant() -> None:
    assert CSEG == SEG + 28 == 65564
