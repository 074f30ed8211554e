"""The Crypt4GH header: magic, version, and packets encrypted to each recipient.

Layout (all integers little-endian): ``crypt4gh`` · version (u32 = 1) · packet count (u32) ·
then per packet: length (u32, counting itself) · header encryption method (u32, 0 = X25519 +
ChaCha20-Poly1305) · writer public key (32) · nonce (12) · ciphertext + MAC (16).

A decrypted packet is either *data encryption parameters* (type 0: method 0 = ChaCha20-Poly1305
and a 32-byte session key) or a *data edit list* (type 1: a count, then u64 lengths that alternate
skip / keep over the plaintext). The packet key is the first 32 bytes of
``BLAKE2b-512(X25519(secret, peer) || reader public key || writer public key)``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from genofed.crypt4gh.errors import (
    InvalidEditList,
    MalformedHeader,
    NoPacketForKey,
    NotCrypt4GH,
    UnsupportedMethod,
    UnsupportedVersion,
)
from genofed.crypt4gh.keys import KEY_SIZE, generate_keypair, public_key_of

MAGIC = b"crypt4gh"
VERSION = 1
PREAMBLE = struct.Struct("<8sII")
PACKET_TYPE_DATA_ENC = 0
PACKET_TYPE_EDIT_LIST = 1
METHOD_X25519_CHACHA20_POLY1305 = 0
DATA_METHOD_CHACHA20_POLY1305 = 0
# Bounds that keep a hostile header from exhausting memory; real headers are a few hundred bytes.
MAX_PACKETS = 1024
MAX_PACKET_SIZE = 8 * 1024 * 1024
MIN_PACKET_SIZE = 4 + 4 + 32 + 12 + 16


@dataclass(frozen=True)
class Header:
    """What a recipient learns from a header: the session keys and the optional edit list."""

    session_keys: tuple[bytes, ...]
    edit_list: tuple[int, ...] | None = None


@dataclass(frozen=True)
class RawHeader:
    """A header as stored: its encrypted packets, undecoded."""

    packets: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        return serialize(self.packets)

    @property
    def size(self) -> int:
        return PREAMBLE.size + sum(4 + len(packet) for packet in self.packets)


# -- parsing ------------------------------------------------------------------------------------


def read_header(stream: BinaryIO) -> RawHeader:
    """Read exactly the header from ``stream``, leaving it at the first data segment."""
    preamble = _read_exact(stream, PREAMBLE.size, "the header preamble")
    magic, version, count = PREAMBLE.unpack(preamble)
    if magic != MAGIC:
        raise NotCrypt4GH(
            "input is not a Crypt4GH file (it does not start with 'crypt4gh'): "
            "encrypt it first, or check that you gave the right file"
        )
    if version != VERSION:
        raise UnsupportedVersion(f"Crypt4GH version {version} is not supported (only 1)")
    if count == 0 or count > MAX_PACKETS:
        raise MalformedHeader(f"header announces {count} packets (1 to {MAX_PACKETS} allowed)")
    packets = []
    for index in range(count):
        length = int.from_bytes(_read_exact(stream, 4, f"the length of packet {index}"), "little")
        if not MIN_PACKET_SIZE <= length <= MAX_PACKET_SIZE:
            raise MalformedHeader(f"header packet {index} has an impossible length of {length}")
        packets.append(_read_exact(stream, length - 4, f"header packet {index}"))
    return RawHeader(tuple(packets))


def parse_header(data: bytes) -> RawHeader:
    """Parse a header held in memory (for example one stored in the database)."""
    import io

    stream = io.BytesIO(data)
    raw = read_header(stream)
    if stream.tell() != len(data):
        raise MalformedHeader(f"{len(data) - stream.tell()} stray bytes after the header packets")
    return raw


def serialize(packets: Sequence[bytes]) -> bytes:
    if not packets:
        raise MalformedHeader("a header needs at least one packet")
    parts = [PREAMBLE.pack(MAGIC, VERSION, len(packets))]
    for packet in packets:
        parts += [(len(packet) + 4).to_bytes(4, "little"), packet]
    return b"".join(parts)


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size) or b""
    if len(data) != size:
        if what == "the header preamble" and not data.startswith(MAGIC):
            raise NotCrypt4GH(
                f"input is not a Crypt4GH file ({len(data)} bytes, without the 'crypt4gh' "
                "magic): check that you gave the right file"
            )
        raise MalformedHeader(f"header is truncated in {what} ({len(data)} of {size} bytes)")
    return data


# -- packet encryption --------------------------------------------------------------------------


def _packet_key(
    secret: bytes, peer_public: bytes, reader_pk: bytes, writer_pk: bytes
) -> bytes | None:
    """The packet key, or None for a low-order peer key (the shared secret would be zero)."""
    private = X25519PrivateKey.from_private_bytes(secret)
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        return None
    return hashlib.blake2b(shared + reader_pk + writer_pk, digest_size=64).digest()[:KEY_SIZE]


def encrypt_packet(
    plaintext: bytes, writer_secret: bytes, recipient_public: bytes, nonce: bytes | None = None
) -> bytes:
    """One header packet that ``recipient_public`` can open (a random nonce unless given)."""
    writer_public = public_key_of(writer_secret)
    key = _packet_key(writer_secret, recipient_public, recipient_public, writer_public)
    if key is None:
        raise MalformedHeader("the recipient public key is invalid (a low-order point)")
    nonce = nonce if nonce is not None else os.urandom(12)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, plaintext, None)
    return METHOD_X25519_CHACHA20_POLY1305.to_bytes(4, "little") + writer_public + nonce + sealed


def decrypt_packet(packet: bytes, secret: bytes, reader_public: bytes) -> bytes | None:
    """The packet's plaintext, or None when it is not for this key (or not one we can read)."""
    if len(packet) < MIN_PACKET_SIZE - 4:
        return None
    if int.from_bytes(packet[:4], "little") != METHOD_X25519_CHACHA20_POLY1305:
        return None
    writer_public, nonce, sealed = packet[4:36], packet[36:48], packet[48:]
    key = _packet_key(secret, writer_public, reader_public, writer_public)
    if key is None:  # a hostile or broken packet: not for us, whoever it was meant for
        return None
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, sealed, None)
    except InvalidTag:
        return None


# -- packet content -----------------------------------------------------------------------------


def data_key_packet(session_key: bytes) -> bytes:
    return struct.pack("<II", PACKET_TYPE_DATA_ENC, DATA_METHOD_CHACHA20_POLY1305) + session_key


def edit_list_packet(edit_list: Sequence[int]) -> bytes:
    validate_edit_list(edit_list)
    return struct.pack(f"<II{len(edit_list)}Q", PACKET_TYPE_EDIT_LIST, len(edit_list), *edit_list)


def validate_edit_list(edit_list: Sequence[int]) -> None:
    if not edit_list:
        raise InvalidEditList("an edit list needs at least one length")
    if any(length < 0 or length >= 1 << 64 for length in edit_list):
        raise InvalidEditList("edit list lengths must be between 0 and 2^64-1")
    # Every length but the first skip must be positive, or the list has a useless entry.
    if any(length == 0 for length in edit_list[1:]):
        raise InvalidEditList("edit list has a zero length after the first entry")


def _interpret(plaintexts: Iterable[bytes]) -> Header:
    session_keys: list[bytes] = []
    edit_list: tuple[int, ...] | None = None
    for plain in plaintexts:
        if len(plain) < 4:
            raise MalformedHeader("a decrypted header packet is shorter than its type field")
        kind = int.from_bytes(plain[:4], "little")
        if kind == PACKET_TYPE_DATA_ENC:
            session_keys.append(_session_key(plain))
        elif kind == PACKET_TYPE_EDIT_LIST:
            if edit_list is not None:
                raise InvalidEditList("header holds two edit lists for this key (only one allowed)")
            edit_list = _edit_list(plain)
        else:
            raise UnsupportedMethod(f"header packet of unknown type {kind}")
    if not session_keys:
        raise MalformedHeader("header holds no data encryption key for this recipient")
    return Header(tuple(session_keys), edit_list)


def _session_key(plain: bytes) -> bytes:
    if len(plain) != 8 + KEY_SIZE:
        raise MalformedHeader(f"data encryption packet has {len(plain)} bytes, not {8 + KEY_SIZE}")
    method = int.from_bytes(plain[4:8], "little")
    if method != DATA_METHOD_CHACHA20_POLY1305:
        raise UnsupportedMethod(f"data encryption method {method} is not supported (only 0)")
    return plain[8:]


def _edit_list(plain: bytes) -> tuple[int, ...]:
    count = int.from_bytes(plain[4:8], "little")
    if len(plain) != 8 + 8 * count:
        raise InvalidEditList(f"edit list announces {count} lengths in {len(plain) - 8} bytes")
    lengths = struct.unpack(f"<{count}Q", plain[8:])
    validate_edit_list(lengths)
    return lengths


# -- the operations -----------------------------------------------------------------------------


def open_header(raw: RawHeader, secret_key: bytes) -> Header:
    """Decrypt the packets meant for ``secret_key``; raise NoPacketForKey when there are none."""
    reader_public = public_key_of(secret_key)
    opened = [decrypt_packet(packet, secret_key, reader_public) for packet in raw.packets]
    plaintexts = [plain for plain in opened if plain is not None]
    if not plaintexts:
        raise NoPacketForKey(
            f"none of the {len(raw.packets)} header packets opens with this private key: "
            "the file was encrypted for another recipient; use the matching key"
        )
    return _interpret(plaintexts)


def build_header(
    session_key: bytes,
    recipients: Sequence[bytes],
    *,
    writer_secret: bytes | None = None,
    edit_list: Sequence[int] | None = None,
) -> bytes:
    """A serialized header giving each recipient the session key (and the edit list)."""
    header = Header((session_key,), None if edit_list is None else tuple(edit_list))
    return reencrypt(header, recipients, writer_secret=writer_secret)


def reencrypt(
    header: Header,
    recipients: Sequence[bytes],
    *,
    writer_secret: bytes | None = None,
    keep: Sequence[bytes] = (),
    seed: bytes | None = None,
) -> bytes:
    """Serialize ``header`` for new recipients, followed by the encrypted packets in ``keep``.

    Without a writer key an ephemeral one is used. With a secret ``seed``, the writer key and the
    nonces derive from it, so the same seed gives the same bytes: a server can then answer HTTP
    range requests for one representation across requests. The seed must be secret and must
    change whenever the header's content does (a nonce then never seals two plaintexts).
    """
    if not recipients:
        raise MalformedHeader("give at least one recipient public key")
    if seed is not None:
        writer_secret = _derived(seed, b"writer", KEY_SIZE)
    writer = writer_secret if writer_secret is not None else generate_keypair().secret
    contents = [data_key_packet(key) for key in header.session_keys]
    if header.edit_list is not None:
        contents.append(edit_list_packet(header.edit_list))
    sealed = [
        encrypt_packet(
            content,
            writer,
            pk,
            None if seed is None else _derived(seed, b"nonce%d" % number, 12),
        )
        for number, (pk, content) in enumerate(
            (pk, content) for pk in recipients for content in contents
        )
    ]
    return serialize([*sealed, *keep])


def _derived(seed: bytes, label: bytes, size: int) -> bytes:
    return hashlib.blake2b(label, key=hashlib.sha256(seed).digest(), digest_size=size).digest()


def foreign_packets(raw: RawHeader, secret_key: bytes) -> list[bytes]:
    """The packets of ``raw`` that ``secret_key`` cannot open: they belong to other recipients."""
    reader_public = public_key_of(secret_key)
    return [p for p in raw.packets if decrypt_packet(p, secret_key, reader_public) is None]


def reencrypt_header(
    header_bytes: bytes,
    secret_key: bytes,
    recipients: Sequence[bytes],
    *,
    edit_list: Sequence[int] | None = None,
    writer_secret: bytes | None = None,
    seed: bytes | None = None,
) -> bytes:
    """Open a stored header with ``secret_key`` and seal it again for ``recipients``.

    ``edit_list``, when given, replaces the header's own: this is how a download of part of a
    file is expressed without touching the body. ``seed``: see :func:`reencrypt`.
    """
    header = open_header(parse_header(header_bytes), secret_key)
    if edit_list is not None:
        header = Header(header.session_keys, tuple(edit_list))
    return reencrypt(header, recipients, writer_secret=writer_secret, seed=seed)
