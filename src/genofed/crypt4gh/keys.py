"""Crypt4GH keys: X25519 key pairs and their c4gh-v1 key files.

A public key file is the raw 32-byte X25519 public key, base64-armoured. A private key file is the
base64-armoured ``c4gh-v1`` structure: the KDF name, its options (rounds and salt), the cipher name
and the key material, each as a 2-byte big-endian length followed by the bytes. With a passphrase
the key is sealed with ChaCha20-Poly1305 under a key derived by scrypt (default) or bcrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from genofed.crypt4gh.errors import InvalidKeyFile, WrongPassphrase

KEY_SIZE = 32
MAGIC_WORD = b"c4gh-v1"
PRIVATE_BEGIN = b"-----BEGIN CRYPT4GH PRIVATE KEY-----"
PRIVATE_END = b"-----END CRYPT4GH PRIVATE KEY-----"
PUBLIC_BEGIN = b"-----BEGIN CRYPT4GH PUBLIC KEY-----"
PUBLIC_END = b"-----END CRYPT4GH PUBLIC KEY-----"
SALT_SIZE = 16
BCRYPT_ROUNDS = 100

Kdf = Literal["scrypt", "bcrypt"]
Passphrase = str | Callable[[], str] | None


@dataclass(frozen=True)
class KeyPair:
    secret: bytes
    public: bytes


def generate_keypair() -> KeyPair:
    """A fresh X25519 key pair."""
    secret = os.urandom(KEY_SIZE)
    return KeyPair(secret, public_key_of(secret))


def public_key_of(secret_key: bytes) -> bytes:
    """The X25519 public key that belongs to ``secret_key``."""
    return X25519PrivateKey.from_private_bytes(secret_key).public_key().public_bytes_raw()


def fingerprint(public_key: bytes) -> str:
    """A short, stable name for a public key, for people to compare (sha256, 16 hex pairs)."""
    digest = hashlib.sha256(public_key).hexdigest()[:32]
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


# -- private keys -------------------------------------------------------------------------------


def derive_key(kdf: bytes, passphrase: bytes, salt: bytes, rounds: int) -> bytes:
    """The 32-byte key that seals a private key, as the c4gh-v1 format defines it."""
    if kdf == b"scrypt":
        return hashlib.scrypt(passphrase, salt=salt, n=1 << 14, r=8, p=1, dklen=KEY_SIZE)
    if kdf == b"bcrypt":
        import bcrypt

        return bcrypt.kdf(passphrase, salt, KEY_SIZE, rounds, ignore_few_rounds=True)
    if kdf == b"pbkdf2_hmac_sha256":
        return hashlib.pbkdf2_hmac("sha256", passphrase, salt, rounds, dklen=KEY_SIZE)
    raise InvalidKeyFile(f"private key uses the unknown KDF {kdf!r}: regenerate the key")


def encode_private_key(
    secret_key: bytes, passphrase: str | None, *, kdf: Kdf = "scrypt", comment: str | None = None
) -> bytes:
    """The armoured c4gh-v1 private key file; unencrypted only when ``passphrase`` is empty."""
    if passphrase:
        kdf_name = kdf.encode()
        rounds = 0 if kdf == "scrypt" else BCRYPT_ROUNDS
        salt = os.urandom(SALT_SIZE)
        sealing_key = derive_key(kdf_name, passphrase.encode(), salt, rounds)
        nonce = os.urandom(12)
        sealed = nonce + ChaCha20Poly1305(sealing_key).encrypt(nonce, secret_key, None)
        body = (
            MAGIC_WORD
            + _string(kdf_name)
            + _string(rounds.to_bytes(4, "big") + salt)
            + _string(b"chacha20_poly1305")
            + _string(sealed)
        )
    else:
        body = MAGIC_WORD + _string(b"none") + _string(b"none") + _string(secret_key)
    if comment is not None:
        body += _string(comment.encode())
    return _armour(PRIVATE_BEGIN, body, PRIVATE_END)


def decode_private_key(data: bytes, passphrase: Passphrase, *, source: str = "key") -> bytes:
    """The 32-byte secret key inside a c4gh-v1 private key file.

    ``passphrase`` may be a callable, so that a prompt is shown only for encrypted keys.
    """
    reader = _Reader(_unarmour(data, PRIVATE_BEGIN, PRIVATE_END, source), source)
    if reader.take(len(MAGIC_WORD)) != MAGIC_WORD:
        raise InvalidKeyFile(f"{source} is not a c4gh-v1 private key (no c4gh-v1 magic word)")
    kdf = reader.string()
    rounds, salt = 0, b""
    if kdf != b"none":
        options = reader.string()
        rounds, salt = int.from_bytes(options[:4], "big"), options[4:]
    cipher = reader.string()
    material = reader.string()
    if cipher == b"none":
        return _check_key_size(material, source)
    if cipher != b"chacha20_poly1305":
        raise InvalidKeyFile(f"{source} is sealed with the unknown cipher {cipher!r}")
    secret = passphrase() if callable(passphrase) else passphrase
    if not secret:
        raise WrongPassphrase(
            f"{source} is protected by a passphrase: give it at the prompt or in C4GH_PASSPHRASE"
        )
    if len(material) < 12 + KEY_SIZE + 16:
        raise InvalidKeyFile(f"{source} has damaged key material: regenerate or re-copy the key")
    try:
        sealing_key = derive_key(kdf, secret.encode(), salt, rounds)
    except ValueError:  # e.g. zero rounds or an empty salt
        raise InvalidKeyFile(
            f"{source} has damaged KDF options ({kdf.decode(errors='replace')}, {rounds} rounds, "
            f"{len(salt)}-byte salt): regenerate or re-copy the key"
        ) from None
    try:
        plain = ChaCha20Poly1305(sealing_key).decrypt(material[:12], material[12:], None)
    except InvalidTag:
        raise WrongPassphrase(f"the passphrase does not unlock {source}: check it") from None
    return _check_key_size(plain, source)


# -- public keys --------------------------------------------------------------------------------


def encode_public_key(public_key: bytes) -> bytes:
    return _armour(PUBLIC_BEGIN, _check_key_size(public_key, "public key"), PUBLIC_END)


def decode_public_key(data: bytes, *, source: str = "public key") -> bytes:
    return _check_key_size(_unarmour(data, PUBLIC_BEGIN, PUBLIC_END, source), source)


# -- files --------------------------------------------------------------------------------------


def write_keypair(
    secret_path: Path,
    public_path: Path,
    passphrase: str | None,
    *,
    kdf: Kdf = "scrypt",
    comment: str | None = None,
) -> KeyPair:
    """Generate a key pair and write both files; the private one readable by its owner only."""
    pair = generate_keypair()
    for path in (secret_path, public_path):
        if path.exists():
            raise InvalidKeyFile(f"{path} exists already: remove it or choose another path")
    secret_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    encoded = encode_private_key(pair.secret, passphrase, kdf=kdf, comment=comment)
    descriptor = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(encoded)
    public_path.write_bytes(encode_public_key(pair.public))
    return pair


def load_private_key(path: Path, passphrase: Passphrase) -> bytes:
    return decode_private_key(_read_key_file(path), passphrase, source=str(path))


def load_public_key(path: Path) -> bytes:
    return decode_public_key(_read_key_file(path), source=str(path))


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidKeyFile(f"key file {path} does not exist: check the path") from None
    except IsADirectoryError:
        raise InvalidKeyFile(f"key file {path} is a directory: give the key file") from None


# -- encoding helpers ---------------------------------------------------------------------------


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self._data, self._pos, self._source = data, 0, source

    def take(self, size: int) -> bytes:
        chunk = self._data[self._pos : self._pos + size]
        if len(chunk) != size:
            raise InvalidKeyFile(f"{self._source} is truncated: regenerate or re-copy the key")
        self._pos += size
        return chunk

    def string(self) -> bytes:
        return self.take(int.from_bytes(self.take(2), "big"))


def _armour(begin: bytes, body: bytes, end: bytes) -> bytes:
    return begin + b"\n" + base64.b64encode(body) + b"\n" + end + b"\n"


def _unarmour(data: bytes, begin: bytes, end: bytes, source: str) -> bytes:
    """The base64 body between PEM-style lines; older tools label private keys differently."""
    lines = [line.strip() for line in data.strip().splitlines() if line.strip()]
    label_ok = len(lines) >= 3 and lines[0].startswith(b"-----BEGIN ")
    label_ok = label_ok and lines[-1].startswith(b"-----END ")
    if begin == PUBLIC_BEGIN:
        label_ok = label_ok and b"CRYPT4GH" in lines[0]
    if not label_ok:
        kind = "private" if begin == PRIVATE_BEGIN else "public"
        raise InvalidKeyFile(
            f"{source} is not a Crypt4GH {kind} key file (expected {begin.decode()} ... "
            f"{end.decode()}): pass the {kind} key"
        )
    try:
        return base64.b64decode(b"".join(lines[1:-1]), validate=True)
    except binascii.Error:
        raise InvalidKeyFile(f"{source} has damaged base64 content: re-copy the key") from None


def _check_key_size(key: bytes, source: str) -> bytes:
    if len(key) != KEY_SIZE:
        raise InvalidKeyFile(f"{source} holds {len(key)} key bytes, not {KEY_SIZE}")
    return key
