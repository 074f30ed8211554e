"""Encrypt / decrypt round trips around segment and batch boundaries, for 1-3 recipients."""

from __future__ import annotations

import io

import pytest
from c4gh_support import (
    CSEG,
    SEG,
    NonSeekable,
    c4gh_settings,
    decrypt_bytes,
    encrypt_bytes,
    split_bytes,
    synthetic,
)
from hypothesis import given
from hypothesis import strategies as st

from genofed import crypt4gh as c4gh

BATCH = 64 * SEG  # the engine works 64 segments at a time

sizes = st.one_of(
    st.integers(0, 4 * SEG),
    st.sampled_from(
        [k * SEG + d for k in range(0, 5) for d in (-2, -1, 0, 1, 2) if k * SEG + d >= 0]
    ),
)


@c4gh_settings(50)
@given(size=sizes, n_recipients=st.integers(1, 3), use_writer=st.booleans(), seed=st.integers(0, 9))
def test_every_recipient_decrypts_and_others_cannot(
    size: int, n_recipients: int, use_writer: bool, seed: int, keys: list[c4gh.KeyPair]
) -> None:
    plain = synthetic(size, seed=seed)
    recipients = keys[:n_recipients]
    writer = keys[4].secret if use_writer else None
    enc = encrypt_bytes(plain, [k.public for k in recipients], writer_secret=writer)
    header, body = split_bytes(enc)
    assert len(body) == c4gh.cipher_size(size)
    assert c4gh.plain_size(len(body)) == size
    assert len(c4gh.parse_header(header).packets) == n_recipients
    for k in recipients:
        assert decrypt_bytes(enc, k.secret) == plain
        out = io.BytesIO()
        c4gh.decrypt(NonSeekable(enc), out, k.secret)
        assert out.getvalue() == plain
    with pytest.raises(c4gh.NoPacketForKey):
        decrypt_bytes(enc, keys[3].secret)


@pytest.mark.parametrize("size", [BATCH - 1, BATCH, BATCH + 1, 2 * BATCH + SEG + 7])
def test_round_trip_around_batch_boundaries(size: int, keys: list[c4gh.KeyPair]) -> None:
    plain = synthetic(size, seed=size)
    enc = encrypt_bytes(plain, [keys[0].public])
    assert len(split_bytes(enc)[1]) == c4gh.cipher_size(size)
    assert decrypt_bytes(enc, keys[0].secret) == plain
    out = io.BytesIO()
    assert c4gh.decrypt(NonSeekable(enc), out, keys[0].secret) == size
    assert out.getvalue() == plain


def test_segments_use_fresh_nonces_and_the_session_key(keys: list[c4gh.KeyPair]) -> None:
    """Identical plaintext segments encrypt differently; each opens alone with the session key."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    plain = b"\x00" * (3 * SEG + 10)
    enc = encrypt_bytes(plain, [keys[0].public])
    header, body = split_bytes(enc)
    session_key = c4gh.open_header(c4gh.parse_header(header), keys[0].secret).session_keys[0]
    segments = [body[i : i + CSEG] for i in range(0, len(body), CSEG)]
    assert len({s[:12] for s in segments}) == len(segments) == 4
    assert len({s[12:] for s in segments[:3]}) == 3
    aead = ChaCha20Poly1305(session_key)
    assert b"".join(aead.decrypt(s[:12], s[12:], None) for s in segments) == plain


def test_two_encryptions_differ(keys: list[c4gh.KeyPair]) -> None:
    plain = synthetic(1000)
    assert encrypt_bytes(plain, [keys[0].public]) != encrypt_bytes(plain, [keys[0].public])


def test_encrypt_returns_plaintext_size_and_reports_progress(keys: list[c4gh.KeyPair]) -> None:
    plain = synthetic(2 * SEG + 3)
    ticks: list[int] = []
    out = io.BytesIO()
    size = c4gh.encrypt(io.BytesIO(plain), out, [keys[0].public], progress=ticks.append)
    assert size == len(plain)
    assert sum(ticks) == len(plain)


def test_encrypt_needs_a_recipient() -> None:
    with pytest.raises(c4gh.Crypt4GHError):
        encrypt_bytes(b"data", [])
