"""The object-store interface every backend implements, its errors, and the rules they share.

Keys are relative, '/'-separated strings. One set of key rules holds for every backend, so an
archive can move between a local folder and a bucket (or be backed up from one to the other)
without a key that works here failing there.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import BinaryIO

from genofed.errors import GenofedError

#: First segment reserved for a backend's temporary files (the local store's atomic writes).
TEMP_DIR = ".genofed-tmp"
#: Default read size: large enough that streaming runs at disk or network speed.
CHUNK_SIZE = 1 << 20
MAX_KEY_BYTES = 1024  # the S3 limit
MAX_SEGMENT_BYTES = 255  # the usual file-name limit of local file systems

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXAMPLE = "use a relative '/'-separated path such as 'datasets/EGAD01/run1.bam.c4gh'"


def _shown(key: object) -> str:
    """The key as a one-line literal, shortened so a huge bad key cannot flood the message."""
    text = repr(key)
    return text if len(text) <= 120 else f"{text[:100]}...{text[-15:]}"


class StorageError(GenofedError):
    """A backend failed (disk, permissions, network, bucket). Never carries credentials."""


class ObjectNotFound(GenofedError):
    """No object at the key."""

    def __init__(self, key: str, store: str) -> None:
        super().__init__(
            f"object {_shown(key)} not found in {store}; check the key, or list the store's keys"
        )
        self.key = key
        self.store = store


class InvalidKey(GenofedError):
    """A key that breaks the rules of :func:`validate_key`."""

    def __init__(self, key: object, reason: str) -> None:
        super().__init__(f"invalid object key {_shown(key)}: {reason}; {_EXAMPLE}")
        self.key = key
        self.reason = reason


class InvalidRange(GenofedError):
    """A byte range that does not fit the object, or is inverted."""


def validate_key(key: str) -> str:
    """Return ``key`` when it is a safe relative path, else raise :class:`InvalidKey`.

    Rejected: empty, absolute, trailing '/', empty, '.' or '..' segments, backslashes, control
    characters (NUL included), the reserved temp folder, and keys over the S3 or file-name
    length limits. Each rule closes a way to escape a store's root or to name one object twice.
    """
    reason = key_problem(key)
    if reason is not None:
        raise InvalidKey(key, reason)
    return key


def key_problem(key: object) -> str | None:
    """Why ``key`` is not a valid key, or None when it is."""
    if not isinstance(key, str):
        return f"it is a {type(key).__name__}, not a string"
    if not key:
        return "it is empty"
    if key.endswith("/"):
        return "it ends with '/' (keys name objects, not folders)"
    return _chars_problem(key) or _segments_problem(key)


def _chars_problem(text: str) -> str | None:
    if text.startswith("/"):
        return "it is absolute (starts with '/')"
    if "\\" in text:
        return "it contains a backslash"
    if "\x00" in text:
        return "it contains a NUL character"
    if _CONTROL.search(text):
        return "it contains a control character"
    try:
        text.encode()
    except UnicodeEncodeError:
        return "it is not valid Unicode (it contains a lone surrogate)"
    return None


def _segments_problem(key: str) -> str | None:
    segments = key.split("/")
    if "" in segments:
        return "it contains an empty segment ('//')"
    if "." in segments or ".." in segments:
        return "it contains a '.' or '..' segment"
    if segments[0] == TEMP_DIR:
        return f"'{TEMP_DIR}' is reserved for temporary files"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"it is longer than {MAX_KEY_BYTES} bytes in UTF-8"
    if any(len(segment.encode()) > MAX_SEGMENT_BYTES for segment in segments):
        return f"a segment is longer than {MAX_SEGMENT_BYTES} bytes in UTF-8"
    return None


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` when listing under it is safe: its folder part must be a valid key.

    The last segment may be partial ('runs/2024' also lists 'runs/2024-01/a'), as in S3.
    """
    folder = prefix.rpartition("/")[0]
    problem = _chars_problem(prefix) or (key_problem(folder) if folder else None)
    if problem is not None:
        raise InvalidKey(prefix, problem)
    return prefix


def iter_source(source: BinaryIO | Iterable[bytes], chunk_size: int) -> Iterator[bytes]:
    """The chunks of a ``put`` source: ``read(chunk_size)`` until EOF, or the iterable's items."""
    if isinstance(source, bytes | bytearray | memoryview | str):
        raise TypeError("put() takes a binary file or an iterable of chunks; wrap bytes as [data]")
    read = getattr(source, "read", None)
    if callable(read):
        return _read_until_eof(read, chunk_size)
    return iter(source)


def _read_until_eof(read: Callable[[int], bytes], chunk_size: int) -> Iterator[bytes]:
    while chunk := read(chunk_size):
        yield chunk


def exact_chunks(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup ``chunks`` into pieces of exactly ``size`` bytes; only the last may be shorter.

    Nothing is yielded for an empty input. Memory stays within one piece plus one input chunk.
    """
    buffer = bytearray()
    for chunk in chunks:
        if not buffer and len(chunk) == size:
            yield bytes(chunk)
            continue
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def check_range(start: int, end: int | None, chunk_size: int) -> None:
    """Reject ranges that are wrong whatever the object: negative or inverted."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if start < 0 or (end is not None and end < start):
        raise InvalidRange(
            f"byte range [{start}, {end}) is invalid: it needs 0 <= start <= end; fix the range"
        )


def clip_range(key: str, store: str, start: int, end: int | None, size: int) -> int:
    """The range's end clipped to ``size``; raises :class:`InvalidRange` when start > size."""
    if start > size:
        raise InvalidRange(
            f"byte range [{start}, {end}) of {_shown(key)} in {store} starts past its end: "
            f"the object has {size} bytes; start at {size} or less"
        )
    return size if end is None else min(end, size)


def started(chunks: Generator[bytes, None, None]) -> Iterator[bytes]:
    """Run ``chunks`` to its first (empty, discarded) yield and return it.

    Range generators yield ``b""`` once their checks are done and their stream is open, so a
    bad range or a missing object fails at call time, and the stream is closed by the
    generator's ``finally`` even if the caller never iterates.
    """
    next(chunks)
    return chunks


class ObjectStore(ABC):
    """A flat namespace of immutable-once-written byte objects addressed by key."""

    @abstractmethod
    def describe(self) -> str:
        """Name the store for messages and logs, e.g. ``local:/srv/archive``; never secrets."""

    @abstractmethod
    def put(self, key: str, source: BinaryIO | Iterable[bytes]) -> int:
        """Store the source atomically in constant memory; return the bytes written.

        Readers see the old object or the whole new one, never a part. If the source raises,
        nothing is left behind and an existing object at the key is untouched.
        """

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the whole object (use it as a context manager)."""

    @abstractmethod
    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Bytes ``[start, end)`` in chunks of at most ``chunk_size``; ``end`` is clipped.

        Raises :class:`InvalidRange` (start past the end) and :class:`ObjectNotFound` at call
        time, not at the first ``next()``.
        """

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's length in bytes."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored at the key."""
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error (deletes are retried)."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, sorted by code point (the S3 order), lazily."""

    def sweep_temporary(self) -> int:
        """Remove what writes killed midway left behind; returns how many. Nothing by default:
        an S3 upload aborted by an error leaves nothing (kills: use a lifecycle rule)."""
        return 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
