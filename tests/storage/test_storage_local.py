"""What only the local store does: files, folders, temp files and symbolic links."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from genofed.storage import InvalidKey, LocalStore, StorageError
from genofed.storage.base import TEMP_DIR
from genofed.storage.local import _temp_prefix


def temp_files(store: LocalStore) -> list[Path]:
    temp = store.root / TEMP_DIR
    return list(temp.iterdir()) if temp.exists() else []


def test_the_root_is_created_and_named(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "new" / "root")
    assert store.root.is_dir()
    assert store.describe() == f"local:{tmp_path / 'new' / 'root'}"
    assert repr(store) == f"<LocalStore local:{tmp_path / 'new' / 'root'}>"


def test_an_unusable_root_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match=r"storage\.path"):
        LocalStore(tmp_path / "file" / "root")


def test_objects_are_plain_files(local_store: LocalStore) -> None:
    local_store.put("a/b.c4gh", [b"data"])
    assert (local_store.root / "a" / "b.c4gh").read_bytes() == b"data"
    with local_store.open("a/b.c4gh") as stream:
        assert isinstance(stream, io.BufferedReader)


def test_no_temp_files_remain(local_store: LocalStore) -> None:
    local_store.put("k", [b"x" * 10])

    def broken() -> Iterator[bytes]:
        yield b"y" * 3_000_000
        raise OSError("the source's disk failed")

    with pytest.raises(OSError, match="source's disk") as caught:
        local_store.put("k", broken())
    assert not isinstance(caught.value, StorageError)  # the source's error, not the store's
    assert temp_files(local_store) == []
    assert local_store.size("k") == 10


def test_temp_files_are_never_listed(local_store: LocalStore) -> None:
    (local_store.root / TEMP_DIR).mkdir()
    (local_store.root / TEMP_DIR / "put-leftover").write_bytes(b"partial")
    local_store.put("k", [b"x"])
    assert list(local_store.list()) == ["k"]
    with pytest.raises(InvalidKey):
        local_store.open(f"{TEMP_DIR}/put-leftover")


def test_files_no_key_can_name_are_not_listed(local_store: LocalStore) -> None:
    (local_store.root / "back\\slash").write_bytes(b"")
    (local_store.root / "new\nline").write_bytes(b"")
    (local_store.root / "empty-folder").mkdir()
    local_store.put("ok", [b""])
    assert list(local_store.list()) == ["ok"]


def test_a_file_and_a_folder_cannot_share_a_name(local_store: LocalStore) -> None:
    local_store.put("a/b", [b"x"])
    with pytest.raises(StorageError, match="'a' and 'a/b'"):
        local_store.put("a", [b"y"])
    with pytest.raises(StorageError, match="in the way"):
        local_store.put("a/b/c", [b"z"])
    assert temp_files(local_store) == []
    assert not local_store.exists("a")  # a folder is not an object


def test_delete_prunes_empty_folders_but_not_the_root(local_store: LocalStore) -> None:
    local_store.put("a/b/c", [b"1"])
    local_store.put("a/d", [b"2"])
    local_store.delete("a/b/c")
    assert not (local_store.root / "a" / "b").exists()
    assert (local_store.root / "a").is_dir()
    local_store.delete("a/d")
    assert os.listdir(local_store.root) == [TEMP_DIR]
    assert local_store.root.is_dir()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret").write_bytes(b"not yours")
    return folder


def test_a_symlinked_folder_cannot_lead_out(local_store: LocalStore, outside: Path) -> None:
    (local_store.root / "link").symlink_to(outside, target_is_directory=True)
    for operation in (local_store.open, local_store.size, local_store.exists, local_store.delete):
        with pytest.raises(InvalidKey, match="symbolic link"):
            operation("link/secret")
    with pytest.raises(InvalidKey, match="symbolic link"):
        local_store.put("link/planted", [b"x"])
    with pytest.raises(InvalidKey):
        local_store.list("link/")
    assert list(local_store.list()) == []
    assert sorted(os.listdir(outside)) == ["secret"]


def test_a_symlinked_file_cannot_lead_out(local_store: LocalStore, outside: Path) -> None:
    (local_store.root / "leak").symlink_to(outside / "secret")
    with pytest.raises(InvalidKey, match="symbolic link"):
        local_store.iter_range("leak")
    with pytest.raises(InvalidKey, match="symbolic link"):
        local_store.put("leak", [b"overwrite"])
    assert list(local_store.list()) == []
    assert (outside / "secret").read_bytes() == b"not yours"


def test_symlinks_inside_the_root_work(local_store: LocalStore) -> None:
    local_store.put("real/file", [b"data"])
    (local_store.root / "alias").symlink_to(local_store.root / "real" / "file")
    with local_store.open("alias") as stream:
        assert stream.read() == b"data"
    assert list(local_store.list()) == ["alias", "real/file"]


def test_a_symlink_loop_is_refused(local_store: LocalStore) -> None:
    (local_store.root / "loop").symlink_to(local_store.root / "loop")
    with pytest.raises(InvalidKey):
        local_store.open("loop/x")


def test_sweep_removes_temp_files_of_dead_writers_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    temp = store.root / ".genofed-tmp"
    temp.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    mine = temp / f"{_temp_prefix()}abc"  # a write in progress in this live process
    mine.write_bytes(b"x")
    killed = temp / _temp_prefix().replace(f"-{os.getpid()}-", f"-{dead_pid}-")
    killed = killed.with_name(killed.name + "def")
    killed.write_bytes(b"y")
    foreign_recent = temp / "put-otherhost-1-ghi"
    foreign_recent.write_bytes(b"z")
    foreign_old = temp / "put-otherhost-2-jkl"
    foreign_old.write_bytes(b"w")
    os.utime(foreign_old, (0, 0))

    assert store.sweep_temporary() == 2
    assert mine.exists() and foreign_recent.exists()
    assert not killed.exists() and not foreign_old.exists()
    store.put("a/b", iter([b"still works"]))
    assert store.open("a/b").read() == b"still works"
