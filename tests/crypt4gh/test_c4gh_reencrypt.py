"""Header re-encryption (the body is never touched) and archive-style split storage."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from c4gh_support import (
    SEG,
    NonSeekable,
    apply_edit_list,
    assert_ok,
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

PACKET = 4 + 4 + 32 + 12 + 40 + 16  # length, method, writer key, nonce, data-key content, MAC


@pytest.fixture(scope="module")
def sample(keys: list[c4gh.KeyPair]) -> dict[str, bytes]:
    plain = synthetic(3 * SEG + 1234, seed=8)
    enc = encrypt_bytes(plain, [keys[0].public, keys[1].public])
    header, body = split_bytes(enc)
    return {"plain": plain, "enc": enc, "header": header, "body": body}


def test_reencrypt_header_is_small_and_body_identical(sample, keys) -> None:
    new_header = c4gh.reencrypt_header(sample["header"], keys[0].secret, [keys[2].public])
    assert len(new_header) == 16 + PACKET
    assert new_header != sample["header"]
    rebuilt = new_header + sample["body"]
    assert split_bytes(rebuilt)[1] == split_bytes(sample["enc"])[1] == sample["body"]
    assert decrypt_bytes(rebuilt, keys[2].secret) == sample["plain"]
    # reencrypt_header keeps no packet for anyone else
    for k in keys[:2]:
        with pytest.raises(c4gh.NoPacketForKey):
            decrypt_bytes(rebuilt, k.secret)
    # several new recipients
    two = c4gh.reencrypt_header(sample["header"], keys[1].secret, [keys[2].public, keys[3].public])
    assert len(two) == 16 + 2 * PACKET
    for k in keys[2:4]:
        assert decrypt_bytes(two + sample["body"], k.secret) == sample["plain"]


def test_reencrypt_header_with_wrong_key(sample, keys) -> None:
    with pytest.raises(c4gh.NoPacketForKey):
        c4gh.reencrypt_header(sample["header"], keys[3].secret, [keys[2].public])
    with pytest.raises(c4gh.Crypt4GHError):
        c4gh.reencrypt_header(sample["header"], keys[0].secret, [])


def test_reencrypt_header_writer_key(sample, keys) -> None:
    new_header = c4gh.reencrypt_header(
        sample["header"], keys[0].secret, [keys[2].public], writer_secret=keys[4].secret
    )
    (packet,) = c4gh.parse_header(new_header).packets
    assert packet[4:36] == keys[4].public
    anonymous = c4gh.reencrypt_header(sample["header"], keys[0].secret, [keys[2].public])
    (packet,) = c4gh.parse_header(anonymous).packets
    assert packet[4:36] not in {k.public for k in keys}


def test_reencrypt_header_edit_list_is_kept_or_replaced(sample, keys) -> None:
    with_list = c4gh.reencrypt_header(
        sample["header"], keys[0].secret, [keys[2].public], edit_list=[5, 10, SEG]
    )
    assert len(with_list) > 16 + PACKET
    # Re-encrypting again without edit_list keeps the one in the header ...
    again = c4gh.reencrypt_header(with_list, keys[2].secret, [keys[3].public])
    assert c4gh.open_header(c4gh.parse_header(again), keys[3].secret).edit_list == (5, 10, SEG)
    expected = apply_edit_list(sample["plain"], [5, 10, SEG])
    assert decrypt_bytes(again + sample["body"], keys[3].secret) == expected
    # ... and a new one replaces it (it applies to the file, not to the previous edit).
    replaced = c4gh.reencrypt_header(with_list, keys[2].secret, [keys[3].public], edit_list=[0, 7])
    assert decrypt_bytes(replaced + sample["body"], keys[3].secret) == sample["plain"][:7]
    with pytest.raises(c4gh.InvalidEditList):
        c4gh.reencrypt_header(sample["header"], keys[0].secret, [keys[2].public], edit_list=[-1, 3])
    with pytest.raises(c4gh.InvalidEditList):
        c4gh.reencrypt_header(sample["header"], keys[0].secret, [keys[2].public], edit_list=[2**64])


@pytest.mark.parametrize("trim", [False, True])
def test_reencrypt_stream_trim(trim: bool, sample, keys) -> None:
    out = io.BytesIO()
    c4gh.reencrypt_stream(
        io.BytesIO(sample["enc"]), out, keys[0].secret, [keys[2].public], trim=trim
    )
    result = out.getvalue()
    header, body = split_bytes(result)
    assert body == sample["body"]
    assert decrypt_bytes(result, keys[2].secret) == sample["plain"]  # the new recipient
    # keys[0] opened its packet: it is replaced, not kept (as the reference does)
    with pytest.raises(c4gh.NoPacketForKey):
        decrypt_bytes(result, keys[0].secret)
    if trim:
        assert len(c4gh.parse_header(header).packets) == 1
        with pytest.raises(c4gh.NoPacketForKey):
            decrypt_bytes(result, keys[1].secret)
    else:
        assert len(c4gh.parse_header(header).packets) == 2
        # the other recipient's packet is kept byte for byte
        assert c4gh.parse_header(sample["header"]).packets[1] in c4gh.parse_header(header).packets
        assert decrypt_bytes(result, keys[1].secret) == sample["plain"]


def test_reencrypt_stream_default_is_trim(sample, keys) -> None:
    out = io.BytesIO()
    c4gh.reencrypt_stream(io.BytesIO(sample["enc"]), out, keys[0].secret, [keys[2].public])
    with pytest.raises(c4gh.NoPacketForKey):
        decrypt_bytes(out.getvalue(), keys[1].secret)


def test_reencrypt_stream_keep_self(sample, keys) -> None:
    """Giving one's own key among the recipients keeps access, trimmed or not."""
    out = io.BytesIO()
    c4gh.reencrypt_stream(
        NonSeekable(sample["enc"]), out, keys[0].secret, [keys[0].public, keys[2].public]
    )
    for k in (keys[0], keys[2]):
        assert decrypt_bytes(out.getvalue(), k.secret) == sample["plain"]


@c4gh_settings(25)
@given(
    edit_list=st.lists(st.integers(1, 2 * SEG), min_size=1, max_size=5).map(
        lambda xs: [xs[0] - 1, *xs[1:]]
    ),
    trim=st.booleans(),
)
def test_reencrypt_stream_with_edit_list(edit_list: list[int], trim: bool, sample, keys) -> None:
    out = io.BytesIO()
    c4gh.reencrypt_stream(
        io.BytesIO(sample["enc"]),
        out,
        keys[0].secret,
        [keys[2].public],
        edit_list=edit_list,
        trim=trim,
    )
    expected = apply_edit_list(sample["plain"], edit_list)
    assert decrypt_bytes(out.getvalue(), keys[2].secret) == expected
    assert split_bytes(out.getvalue())[1] == sample["body"]
    if not trim:  # the untouched recipient still sees the whole file
        assert decrypt_bytes(out.getvalue(), keys[1].secret) == sample["plain"]


# -- archive-style storage: header and body apart --------------------------------------------------


def test_decrypt_body_from_split_storage(tmp_path: Path, sample, keys) -> None:
    path = tmp_path / "file.c4gh"
    path.write_bytes(sample["enc"])
    with path.open("rb") as handle:
        header_bytes = c4gh.split(handle)
        (tmp_path / "body").write_bytes(handle.read())
    assert header_bytes == sample["header"]
    for k in keys[:2]:
        header = c4gh.open_header(c4gh.parse_header(header_bytes), k.secret)
        out = io.BytesIO()
        with (tmp_path / "body").open("rb") as body:
            assert c4gh.decrypt_body(body, out, header) == len(sample["plain"])
        assert out.getvalue() == sample["plain"]
    # Ranges and non-seekable bodies, as served to a client
    header = c4gh.open_header(c4gh.parse_header(header_bytes), keys[0].secret)
    for start, end in [(0, 1), (SEG - 1, SEG + 1), (2 * SEG, None), (100, 10**9)]:
        for body in (io.BytesIO(sample["body"]), NonSeekable(sample["body"])):
            out = io.BytesIO()
            c4gh.decrypt_body(body, out, header, start=start, end=end)
            assert out.getvalue() == sample["plain"][start:end]


def test_decrypt_body_with_stored_header_reencrypted_for_a_client(sample, keys) -> None:
    """The archive re-encrypts the stored header for a client with an edit list; the stored body
    is streamed unchanged after it."""
    client = keys[3]
    for_client = c4gh.reencrypt_header(
        sample["header"], keys[0].secret, [client.public], edit_list=[SEG + 10, 2 * SEG]
    )
    header = c4gh.open_header(c4gh.parse_header(for_client), client.secret)
    out = io.BytesIO()
    c4gh.decrypt_body(io.BytesIO(sample["body"]), out, header)
    assert out.getvalue() == sample["plain"][SEG + 10 : 3 * SEG + 10]
    assert decrypt_bytes(for_client + sample["body"], client.secret) == out.getvalue()


def test_cli_reencrypt_without_trim_keeps_other_recipients(
    tmp_path: Path, make_key_files, keys
) -> None:
    me, new = make_key_files(), make_key_files()
    plain = synthetic(SEG + 3, seed=9)
    path = tmp_path / "in.c4gh"
    path.write_bytes(encrypt_bytes(plain, [me.public, keys[1].public]))
    result = assert_ok(
        genofed("reencrypt", "--sk", me.secret_path, "--recipient-pk", new.public_path, stdin=path)
    )
    assert split_bytes(result)[1] == split_bytes(path.read_bytes())[1]
    assert decrypt_bytes(result, new.secret) == plain
    assert decrypt_bytes(result, keys[1].secret) == plain
