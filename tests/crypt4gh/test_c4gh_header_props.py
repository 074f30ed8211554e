"""Property tests of the header parser and packet opener: only Crypt4GHError ever escapes."""

from __future__ import annotations

import io
import struct

import pytest
from c4gh_support import c4gh_settings, encrypt_bytes, split_bytes
from hypothesis import given
from hypothesis import strategies as st

from genofed import crypt4gh as c4gh
from genofed.crypt4gh import header as hdr

PROPS = c4gh_settings(300)
PREAMBLE = struct.Struct("<8sII")


def preamble(count: int, magic: bytes = b"crypt4gh", version: int = 1) -> bytes:
    return PREAMBLE.pack(magic, version, count)


# Arbitrary bytes, and bytes that at least start like a header, so the parser is exercised deeply.
header_like = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.integers(0, 5), st.binary(max_size=400)).map(lambda t: preamble(t[0]) + t[1]),
    st.tuples(
        st.lists(st.integers(0, 200), min_size=1, max_size=4), st.binary(min_size=0, max_size=600)
    ).map(
        lambda t: preamble(len(t[0])) + b"".join(n.to_bytes(4, "little") + t[1][:n] for n in t[0])
    ),
)


@PROPS
@given(data=header_like)
def test_parse_header_raises_only_crypt4gh_errors_and_round_trips(data: bytes) -> None:
    try:
        raw = c4gh.parse_header(data)
    except c4gh.Crypt4GHError:
        return
    assert raw.to_bytes() == data
    assert raw.size == len(data)
    assert c4gh.parse_header(raw.to_bytes()) == raw


@PROPS
@given(data=header_like, tail=st.binary(max_size=50))
def test_read_header_raises_only_crypt4gh_errors(data: bytes, tail: bytes) -> None:
    stream = io.BytesIO(data + tail)
    try:
        raw = c4gh.read_header(stream)
    except c4gh.Crypt4GHError:
        return
    # It stops exactly at the end of the header: the rest is the body.
    assert stream.tell() == raw.size
    assert (data + tail)[: raw.size] == raw.to_bytes()


@PROPS
@given(packets=st.lists(st.binary(min_size=64, max_size=200), min_size=1, max_size=5))
def test_serialized_packets_round_trip(packets: list[bytes]) -> None:
    raw = c4gh.RawHeader(tuple(packets))
    data = raw.to_bytes()
    assert c4gh.parse_header(data) == raw
    assert c4gh.read_header(io.BytesIO(data + b"body")).packets == tuple(packets)


@pytest.fixture(scope="module")
def valid(keys: list[c4gh.KeyPair]) -> bytes:
    """A real two-recipient header with an edit list (4 packets)."""
    header, _ = split_bytes(encrypt_bytes(b"x" * 100, [keys[0].public, keys[1].public]))
    return c4gh.reencrypt_header(
        header, keys[0].secret, [keys[0].public, keys[1].public], edit_list=[3, 50]
    )


def test_valid_header_opens(valid: bytes, keys: list[c4gh.KeyPair]) -> None:
    for k in keys[:2]:
        opened = c4gh.open_header(c4gh.parse_header(valid), k.secret)
        assert opened.edit_list == (3, 50) and len(opened.session_keys) == 1


def edit_list_packet_bytes(header: bytes, secret: bytes) -> set[int]:
    """Offsets (length field included) of the packets that hold this reader's edit list."""
    offsets, offset = set(), 16
    reader_public = c4gh.public_key_of(secret)
    for packet in c4gh.parse_header(header).packets:
        plain = hdr.decrypt_packet(packet, secret, reader_public)
        if plain is not None and plain[:4] == b"\x01\0\0\0":
            offsets.update(range(offset + 4, offset + 4 + len(packet)))
        offset += 4 + len(packet)
    return offsets


@PROPS
@given(data=st.data())
def test_any_flipped_byte_is_detected(data: st.DataObject, valid: bytes, keys) -> None:
    position = data.draw(st.integers(0, len(valid) - 1))
    flip = data.draw(st.integers(1, 255))
    mutated = bytearray(valid)
    mutated[position] ^= flip
    for k in keys[:2]:
        before = c4gh.open_header(c4gh.parse_header(valid), k.secret)
        try:
            after = c4gh.open_header(c4gh.parse_header(bytes(mutated)), k.secret)
        except c4gh.Crypt4GHError:
            continue
        if after == before:
            continue  # the flip hit the other recipient's packets
        # A damaged packet cannot be told from one for another reader, so it is skipped (as in
        # the reference); the format cannot protect a packet from removal. Only this may happen:
        # the reader's own edit-list packet was hit and the edit list is gone.
        assert position in edit_list_packet_bytes(valid, k.secret)
        assert after.session_keys == before.session_keys and after.edit_list is None


def test_every_truncation_is_an_error(valid: bytes, keys) -> None:
    for length in range(len(valid)):
        with pytest.raises(c4gh.Crypt4GHError):
            c4gh.parse_header(valid[:length])
        with pytest.raises((c4gh.MalformedHeader, c4gh.NotCrypt4GH)):
            c4gh.read_header(io.BytesIO(valid[:length]))


@PROPS
@given(packets=st.lists(st.binary(min_size=64, max_size=150), min_size=1, max_size=3))
def test_open_header_on_random_parsed_packets(packets: list[bytes], keys) -> None:
    raw = c4gh.parse_header(hdr.serialize(packets))
    with pytest.raises(c4gh.Crypt4GHError):
        c4gh.open_header(raw, keys[0].secret)


# Packet plaintexts that are sealed correctly for the reader, so the content parser is reached.
packet_contents = st.one_of(
    st.binary(max_size=80),
    st.tuples(st.integers(0, 3), st.binary(max_size=60)).map(
        lambda t: t[0].to_bytes(4, "little") + t[1]
    ),
    st.tuples(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 2**64 - 1), max_size=4)).map(
        lambda t: struct.pack(f"<II{len(t[1])}Q", 1, t[0], *t[1])
    ),
    st.tuples(st.integers(0, 3), st.binary(min_size=32, max_size=32)).map(
        lambda t: struct.pack("<II", 0, t[0]) + t[1]
    ),
)


@c4gh_settings(150)
@given(contents=st.lists(packet_contents, min_size=1, max_size=3))
def test_open_header_on_random_sealed_contents(contents: list[bytes], keys) -> None:
    packets = [hdr.encrypt_packet(content, keys[4].secret, keys[0].public) for content in contents]
    raw = c4gh.parse_header(hdr.serialize(packets))
    try:
        opened = c4gh.open_header(raw, keys[0].secret)
    except c4gh.Crypt4GHError:
        return
    # If it opens, what it returns is exactly what well-formed packets said.
    keys_in = [c[8:] for c in contents if c[:8] == b"\0" * 8 and len(c) == 40]
    assert list(opened.session_keys) == keys_in
    lists = [c for c in contents if c[:4] == b"\x01\0\0\0"]
    assert len(lists) <= 1
    if lists:
        count = int.from_bytes(lists[0][4:8], "little")
        assert opened.edit_list == struct.unpack(f"<{count}Q", lists[0][8:])
    else:
        assert opened.edit_list is None


def test_open_header_on_short_packets_in_memory(keys) -> None:
    """Regression: ValueError('Nonce must be 12 bytes') before 29e6b39."""
    packet = b"\0\0\0\0" + bytes(range(1, 33)) + b"\x01" * 4  # writer key, then a short nonce
    with pytest.raises(c4gh.Crypt4GHError):
        c4gh.open_header(c4gh.RawHeader((packet,)), keys[0].secret)


@PROPS
@given(packets=st.lists(st.binary(max_size=100), min_size=1, max_size=3))
def test_open_header_on_arbitrary_in_memory_packets(packets, keys) -> None:
    """Packets as a database might hand them back, of any length."""
    with pytest.raises(c4gh.Crypt4GHError):
        c4gh.open_header(c4gh.RawHeader(tuple(packets)), keys[0].secret)


def test_known_structure_errors() -> None:
    packet = b"\0" * 64
    assert isinstance(_error(b""), c4gh.NotCrypt4GH)
    assert isinstance(_error(b"crypt4"), c4gh.NotCrypt4GH)
    assert isinstance(_error(b"CRYPT4GH" + b"\0" * 30), c4gh.NotCrypt4GH)
    assert isinstance(_error(preamble(1, version=2) + packet), c4gh.UnsupportedVersion)
    assert isinstance(_error(preamble(0)), c4gh.MalformedHeader)
    assert isinstance(_error(preamble(1)), c4gh.MalformedHeader)
    assert isinstance(_error(preamble(2**32 - 1)), c4gh.MalformedHeader)
    assert isinstance(_error(preamble(1) + (2**32 - 1).to_bytes(4, "little")), c4gh.MalformedHeader)
    assert isinstance(_error(preamble(1) + (3).to_bytes(4, "little")), c4gh.MalformedHeader)
    ok = preamble(1) + (68).to_bytes(4, "little") + packet
    assert c4gh.parse_header(ok).packets == (packet,)
    assert isinstance(_error(ok + b"x"), c4gh.MalformedHeader)  # stray bytes


def test_short_input_without_magic_is_not_crypt4gh() -> None:
    """Regression: 8-15 bytes without the magic gave MalformedHeader before 29e6b39."""
    assert isinstance(_error(b"hello world!\n"), c4gh.NotCrypt4GH)
    assert isinstance(_error(b"crypt4gh\x01\0"), c4gh.MalformedHeader)


def _error(data: bytes) -> Exception:
    with pytest.raises(c4gh.Crypt4GHError) as info:
        c4gh.parse_header(data)
    return info.value
