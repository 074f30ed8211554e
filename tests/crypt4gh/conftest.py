"""Fixtures for the Crypt4GH engine and CLI tests; helpers live in ``c4gh_support``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c4gh_support import KeyFiles

from genofed import crypt4gh as c4gh

# The reference library logs every failed packet or segment key at ERROR level: keep it quiet.
logging.getLogger("crypt4gh").setLevel(logging.CRITICAL + 1)


@pytest.fixture(scope="session")
def keys() -> list[c4gh.KeyPair]:
    """Five in-memory key pairs (a session is shared by the tests of one xdist worker)."""
    return [c4gh.generate_keypair() for _ in range(5)]


@pytest.fixture
def make_key_files(tmp_path: Path) -> Callable[..., KeyFiles]:
    """Write a key pair with the engine; unprotected unless a passphrase is given."""
    counter = iter(range(1000))

    def make(passphrase: str | None = None, kdf: str = "scrypt") -> KeyFiles:
        n = next(counter)
        sk, pk = tmp_path / f"k{n}.sec", tmp_path / f"k{n}.pub"
        pair = c4gh.write_keypair(sk, pk, passphrase, kdf=kdf)  # type: ignore[arg-type]
        return KeyFiles(sk, pk, pair.secret, pair.public, passphrase)

    return make


@pytest.fixture(scope="session")
def vectors(shared_dir: Path) -> Path:
    path = shared_dir / "specs" / "crypt4gh-vectors"
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def alice(vectors: Path) -> KeyFiles:
    sk, pk = vectors / "alice.sec", vectors / "alice.pub"
    return KeyFiles(sk, pk, c4gh.load_private_key(sk, "alice"), c4gh.load_public_key(pk), "alice")


@pytest.fixture(scope="session")
def bob(vectors: Path) -> KeyFiles:
    sk, pk = vectors / "bob.sec", vectors / "bob.pub"
    return KeyFiles(sk, pk, c4gh.load_private_key(sk, "bob"), c4gh.load_public_key(pk), "bob")
