"""Whole-file operations: encrypt, decrypt (all or a range), re-encrypt, split header from body."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import BinaryIO

from genofed.crypt4gh.header import (
    Header,
    build_header,
    foreign_packets,
    open_header,
    read_header,
    reencrypt,
)
from genofed.crypt4gh.segments import (
    Progress,
    SegmentReader,
    Writable,
    decrypt_extents,
    edit_list_extents,
    encrypt_segments,
    select_range,
)

SESSION_KEY_SIZE = 32


def encrypt(
    src: BinaryIO,
    dst: Writable,
    recipients: Sequence[bytes],
    *,
    writer_secret: bytes | None = None,
    progress: Progress | None = None,
) -> int:
    """Encrypt ``src`` for every public key in ``recipients``; returns the plaintext size."""
    session_key = os.urandom(SESSION_KEY_SIZE)
    dst.write(build_header(session_key, recipients, writer_secret=writer_secret))
    return encrypt_segments(src, dst, session_key, progress)


def decrypt(
    src: BinaryIO,
    dst: Writable,
    secret_key: bytes,
    *,
    start: int = 0,
    end: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Decrypt ``src`` into ``dst``, optionally only plaintext bytes ``[start, end)``.

    The range is over the plaintext as the header's edit list presents it. Only the segments
    that hold wanted bytes are decrypted; seekable sources skip the others without reading them.
    Returns the number of plaintext bytes written.
    """
    header = open_header(read_header(src), secret_key)
    return decrypt_body(src, dst, header, start=start, end=end, progress=progress)


def decrypt_body(
    body: BinaryIO,
    dst: Writable,
    header: Header,
    *,
    start: int = 0,
    end: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Decrypt a data portion kept apart from its header (as the archive stores files)."""
    extents = edit_list_extents(header.edit_list)
    if start or end is not None:
        extents = select_range(extents, start, end)
    reader = SegmentReader(body, header.session_keys, progress)
    return decrypt_extents(reader, dst, extents)


def reencrypt_stream(
    src: BinaryIO,
    dst: Writable,
    secret_key: bytes,
    recipients: Sequence[bytes],
    *,
    edit_list: Sequence[int] | None = None,
    writer_secret: bytes | None = None,
    trim: bool = True,
) -> None:
    """Copy ``src`` to ``dst`` with its header sealed for new recipients; the body is untouched.

    Unless ``trim``, the packets meant for other recipients are kept, as the reference tool does.
    """
    raw = read_header(src)
    header = open_header(raw, secret_key)
    if edit_list is not None:
        header = Header(header.session_keys, tuple(edit_list))
    keep = () if trim else foreign_packets(raw, secret_key)
    dst.write(reencrypt(header, recipients, writer_secret=writer_secret, keep=keep))
    shutil.copyfileobj(src, dst, 1 << 20)


def split(src: BinaryIO) -> bytes:
    """Read the header of ``src`` and return its bytes; ``src`` is left at the first segment."""
    return read_header(src).to_bytes()
