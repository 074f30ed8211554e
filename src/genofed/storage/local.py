"""The default store: a folder on a local (or network) file system.

Writes go to a temp file in ``<root>/.genofed-tmp`` (same file system, so the final rename is
atomic), are fsynced, then renamed over the key with ``os.replace``. Every key is resolved and
must stay inside the root, so neither '..' nor a symbolic link can reach other files.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import time
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from genofed.storage.base import (
    CHUNK_SIZE,
    TEMP_DIR,
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    check_range,
    clip_range,
    iter_source,
    key_problem,
    started,
    validate_key,
    validate_prefix,
)

STALE_TEMP_SECONDS = 24 * 3600
_HOST = socket.gethostname().replace("-", "_")

# What the OS raises when a key's path is missing or runs through a file instead of a folder.
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
_RENAME_ATTEMPTS = 3


class LocalStore(ObjectStore):
    """Objects as files under ``root``; the key's '/' separators become folders."""

    def __init__(self, root: Path) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(
                f"cannot create the storage folder {root}: {error.strerror}; "
                "create it or point storage.path at a writable folder"
            ) from error
        self.root = root.resolve()
        self._temp = self.root / TEMP_DIR

    def describe(self) -> str:
        return f"local:{self.root}"

    def put(self, key: str, source: BinaryIO | Iterable[bytes]) -> int:
        target = self._path(key)
        chunks = iter_source(source, CHUNK_SIZE)
        with self._failures(key):
            self._temp.mkdir(exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=self._temp, prefix=_temp_prefix())
        temp = Path(temp_name)
        try:
            written = self._write(key, fd, chunks)
            with self._failures(key):
                _move_into_place(temp, target)
                _fsync_folder(target.parent)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return written

    def sweep_temporary(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Delete temp files of writes that died (a process killed mid-write); returns how many.

        A temp file names its writer: one of this host whose process is gone is removed at once,
        one of another host (a shared file system) once it is older than ``older_than`` seconds.
        """
        removed = 0
        for temp in self._temp.glob("put-*") if self._temp.is_dir() else ():
            if _abandoned(temp, older_than):
                temp.unlink(missing_ok=True)
                removed += 1
        return removed

    def _write(self, key: str, fd: int, chunks: Iterator[bytes]) -> int:
        """Copy the chunks into the temp file and fsync it; source errors pass through as-is."""
        written = 0
        with open(fd, "wb", buffering=CHUNK_SIZE) as out:
            for chunk in chunks:
                with self._failures(key):
                    out.write(chunk)
                written += len(chunk)
            with self._failures(key):
                out.flush()
                os.fsync(out.fileno())
        return written

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb", buffering=CHUNK_SIZE)
        except _MISSING:
            raise ObjectNotFound(key, self.describe()) from None
        except OSError as error:
            raise self._failure(key, error) from error

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        check_range(start, end, chunk_size)
        return started(self._range(key, start, end, chunk_size))

    def _range(
        self, key: str, start: int, end: int | None, chunk_size: int
    ) -> Generator[bytes, None, None]:
        with self.open(key) as stream:
            stop = clip_range(key, self.describe(), start, end, os.fstat(stream.fileno()).st_size)
            stream.seek(start)
            yield b""  # checks done: see base.started
            remaining = stop - start
            while remaining > 0 and (chunk := stream.read(min(chunk_size, remaining))):
                remaining -= len(chunk)
                yield chunk

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            info = path.stat()
        except _MISSING:
            raise ObjectNotFound(key, self.describe()) from None
        except OSError as error:
            raise self._failure(key, error) from error
        if not stat.S_ISREG(info.st_mode):
            raise ObjectNotFound(key, self.describe())
        return info.st_size

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except _MISSING:
            return
        except OSError as error:
            raise self._failure(key, error) from error
        self._prune(path.parent)

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        start = self._path(folder) if folder else self.root
        return (key for key in self._walk(start, folder) if key.startswith(prefix))

    def _walk(self, folder: Path, base: str) -> Iterator[str]:
        """Keys under ``folder`` in key order, one directory listing in memory at a time.

        Sorting a folder's entry as 'name/' puts its keys exactly where they belong among
        its siblings ('a-c' < 'a/b' < 'a0'). Symlinked folders are not followed (no cycles).
        """
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=_sort_name)
        except _MISSING:
            return
        except OSError as error:
            raise self._failure(base, error) from error
        for entry in entries:
            key = f"{base}/{entry.name}" if base else entry.name
            if key_problem(key) is not None:
                continue  # the temp folder, or a file no key can name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), key)
            elif entry.is_file() and (not entry.is_symlink() or self._inside(key)):
                yield key

    def _path(self, key: str) -> Path:
        """The key's resolved file path, refused when a symlink leads it out of the root."""
        validate_key(key)
        try:
            resolved = self.root.joinpath(*key.split("/")).resolve()
        except RuntimeError:  # Python 3.11 reports symlink loops this way
            raise InvalidKey(key, "its path runs into a symbolic link loop") from None
        inside = resolved.parts[len(self.root.parts) :]
        if not resolved.is_relative_to(self.root) or not inside or inside[0] == TEMP_DIR:
            raise InvalidKey(key, "a symbolic link leads it outside the store")
        return resolved

    def _inside(self, key: str) -> bool:
        try:
            self._path(key)
        except InvalidKey:
            return False
        return True

    def _prune(self, folder: Path) -> None:
        """Remove the folders a delete left empty, so 'a' can be a key again after 'a/b'."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or in use): it stays
            folder = folder.parent

    @contextmanager
    def _failures(self, key: str) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise self._failure(key, error) from error

    def _failure(self, key: str, error: OSError) -> StorageError:
        where = f"{key!r} in {self.describe()}"
        if isinstance(error, FileExistsError | NotADirectoryError | IsADirectoryError):
            return StorageError(
                f"cannot store {where}: another object's path is in the way "
                f"({error.strerror}: {error.filename}); a local store cannot hold both "
                "'a' and 'a/b', so choose another key"
            )
        return StorageError(
            f"file system error on {where}: {error.strerror or error}; "
            "check the folder's permissions and free space"
        )


def _sort_name(entry: os.DirEntry[str]) -> str:
    return entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name


def _move_into_place(temp: Path, target: Path) -> None:
    """Rename ``temp`` over ``target``, creating its folder first.

    A concurrent delete may prune that folder between the mkdir and the rename; then retry.
    """
    for attempt in range(_RENAME_ATTEMPTS):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(temp, target)
            return
        except FileNotFoundError:
            if attempt == _RENAME_ATTEMPTS - 1:
                raise


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable: a crash after put() returns must not lose the object."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_prefix() -> str:
    return f"put-{_HOST}-{os.getpid()}-"


def _abandoned(temp: Path, older_than: float) -> bool:
    parts = temp.name.split("-", 3)  # put, host, pid, random
    if len(parts) == 4 and parts[1] == _HOST and parts[2].isdigit():
        return not _alive(int(parts[2]))
    try:
        return time.time() - temp.stat().st_mtime > older_than
    except FileNotFoundError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
