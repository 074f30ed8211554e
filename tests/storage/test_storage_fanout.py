"""put_everywhere: one stream into several stores, all or nothing."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from genofed.storage import LocalStore
from genofed.storage.fanout import put_everywhere


class Broken(LocalStore):
    """A store whose writes fail after ``after`` bytes."""

    def __init__(self, root: Path, after: int) -> None:
        super().__init__(root)
        self.after = after

    def put(self, key, source):  # type: ignore[no-untyped-def]
        def failing():  # type: ignore[no-untyped-def]
            seen = 0
            for chunk in source:
                seen += len(chunk)
                if seen > self.after:
                    raise OSError("disk full")
                yield chunk

        return super().put(key, failing())


def test_every_store_gets_the_whole_object(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    stores = [LocalStore(tmp_path / name) for name in ("archive", "backup", "mirror")]
    assert put_everywhere(stores, "f/1", io.BytesIO(data), chunk_size=256 * 1024) == len(data)
    for store in stores:
        assert store.open("f/1").read() == data


@pytest.mark.parametrize("broken", [0, 1], ids=["first store fails", "second store fails"])
def test_a_failing_store_leaves_nothing_anywhere(tmp_path: Path, broken: int) -> None:
    data = os.urandom(2 * 1024 * 1024)
    stores = [LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")]
    stores[broken] = Broken(tmp_path / f"broken{broken}", after=1024 * 1024)
    with pytest.raises(OSError, match="disk full"):
        put_everywhere(stores, "f/1", io.BytesIO(data), chunk_size=64 * 1024)
    for store in stores:
        assert not store.exists("f/1")
        assert list(store.list()) == []


def test_a_failing_source_leaves_nothing_anywhere(tmp_path: Path) -> None:
    class Failing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 512 * 1024:
                raise OSError("connection reset")
            return super().read(size)

    stores = [LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")]
    with pytest.raises(OSError, match="connection reset"):
        put_everywhere(stores, "f/1", Failing(os.urandom(1024 * 1024)), chunk_size=64 * 1024)
    assert not stores[0].exists("f/1") and not stores[1].exists("f/1")
