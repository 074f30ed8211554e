"""Threads: encrypt/decrypt write behind on a helper thread (commit 29e6b39) and split batches
between two workers. Several transfers at once must neither corrupt nor block one another."""

from __future__ import annotations

import io
import os
import sqlite3
import threading
import time

import pytest
from c4gh_support import SEG, decrypt_bytes, encrypt_bytes, synthetic

from genofed import crypt4gh as c4gh

SIZE = 130 * SEG + 77  # three batches


@pytest.fixture(scope="module")
def sample(keys: list[c4gh.KeyPair]) -> dict[str, bytes]:
    plain = synthetic(SIZE, seed=31)
    return {"plain": plain, "enc": encrypt_bytes(plain, [keys[0].public])}


class SlowCopyingSink:
    """Takes its time inside ``write`` and copies only at the end: any reuse of the buffer
    while the write is in flight shows up as corrupted output."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        first = bytes(view[:64])
        time.sleep(0.01)
        copy = bytes(view)
        assert copy[:64] == first, "the buffer changed during the write"
        self.chunks.append(copy)
        return len(copy)


def test_buffers_are_not_reused_while_a_slow_write_is_in_flight(sample, keys) -> None:
    sink = SlowCopyingSink()
    assert c4gh.decrypt(io.BytesIO(sample["enc"]), sink, keys[0].secret) == SIZE
    assert b"".join(sink.chunks) == sample["plain"]
    sink = SlowCopyingSink()
    assert c4gh.encrypt(io.BytesIO(sample["plain"]), sink, [keys[1].public]) == SIZE
    assert decrypt_bytes(b"".join(sink.chunks), keys[1].secret) == sample["plain"]
    # ranges over an edit list go through the same path, with cache hits in between
    sink = SlowCopyingSink()
    header = c4gh.split(io.BytesIO(sample["enc"]))
    edited = c4gh.reencrypt_header(
        header, keys[0].secret, [keys[0].public], edit_list=[5, 10, 3, 70 * SEG, 1, 4]
    )
    body = sample["enc"][len(header) :]
    c4gh.decrypt(io.BytesIO(edited + body), sink, keys[0].secret)
    plain = sample["plain"]
    assert (
        b"".join(sink.chunks)
        == plain[5:15] + plain[18 : 18 + 70 * SEG] + plain[19 + 70 * SEG : 23 + 70 * SEG]
    )


def test_concurrent_transfers_are_correct(sample, keys) -> None:
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            if n % 2:
                results[n] = decrypt_bytes(sample["enc"], keys[0].secret, start=n, end=SIZE - n)
            else:
                results[n] = decrypt_bytes(
                    encrypt_bytes(sample["plain"], [keys[2].public]), keys[2].secret
                )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    for n, got in results.items():
        assert got == (sample["plain"][n : SIZE - n] if n % 2 else sample["plain"]), n
    assert len(results) == 6


def test_a_stalled_destination_does_not_block_other_transfers(sample, keys) -> None:
    entered, release = threading.Event(), threading.Event()

    class Stalled:
        def write(self, data: bytes | memoryview) -> int:
            entered.set()
            release.wait(30)
            return len(data)

    # Both transfers span several segments, so both use the shared pool of cipher threads.
    large = encrypt_bytes(os.urandom(5 * 1024 * 1024), [keys[0].public])
    other_plain = os.urandom(5 * SEG + 1)
    other_file = encrypt_bytes(other_plain, [keys[0].public])
    stalled = threading.Thread(
        target=c4gh.decrypt, args=(io.BytesIO(large), Stalled(), keys[0].secret), daemon=True
    )
    done = threading.Event()

    def other() -> None:
        assert decrypt_bytes(other_file, keys[0].secret) == other_plain
        done.set()

    other_thread = threading.Thread(target=other, daemon=True)
    try:
        stalled.start()
        assert entered.wait(10)
        other_thread.start()
        finished = done.wait(3)
    finally:
        release.set()
        stalled.join(30)
        other_thread.join(30)
    assert done.is_set()  # it did finish once the stalled client moved on ...
    assert finished  # ... but not before


def test_destination_is_written_from_the_calling_thread(sample, keys) -> None:
    plain = sample["plain"][: 3 * SEG]
    enc = encrypt_bytes(plain, [keys[0].public])
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE TABLE t (b BLOB)")
        connection.execute("INSERT INTO t VALUES (zeroblob(?))", (len(plain),))
        with connection.blobopen("t", "b", 1) as blob:
            c4gh.decrypt(io.BytesIO(enc), blob, keys[0].secret)
            blob.seek(0)
            assert blob.read() == plain
    finally:
        connection.close()
