"""Random access to an archived file's plaintext, for htsget: only the segments a range needs
are fetched from storage and decrypted, so a region of a 100 GB BAM costs a few reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from genofed import crypt4gh
from genofed.crypt4gh.segments import CIPHER_SEGMENT_SIZE, SEGMENT_SIZE
from genofed.dataout.service import open_stored_header
from genofed.db import ArchiveFile
from genofed.errors import GenofedError
from genofed.storage import ObjectStore

NONCE = 12
Reader = Callable[[int, int], bytes]


class NotRandomAccess(GenofedError):
    """The file cannot be read by range (its header carries an edit list)."""


def plain_reader(file: ArchiveFile, node_keys: Sequence[bytes], store: ObjectStore) -> Reader:
    """``read(start, end)``: plaintext bytes ``[start, end)`` of ``file`` (clipped at its end)."""
    assert file.header is not None and file.archive_path is not None
    header = open_stored_header(file.header, node_keys)
    if header.edit_list is not None:
        raise NotRandomAccess(
            f"file {file.accession} was submitted with a Crypt4GH edit list; it can be "
            "downloaded whole but not served by region"
        )
    ciphers = [ChaCha20Poly1305(key) for key in header.session_keys]
    key, size = file.archive_path, file.decrypted_size or 0

    def read(start: int, end: int) -> bytes:
        end = min(end, size)
        if end <= start:
            return b""
        first, last = crypt4gh.segment_span(start, end)
        sealed = b"".join(store.iter_range(key, first, last))
        plain = bytearray()
        for offset in range(0, len(sealed), CIPHER_SEGMENT_SIZE):
            plain += _open_segment(ciphers, sealed[offset : offset + CIPHER_SEGMENT_SIZE])
        skip = start - (first // CIPHER_SEGMENT_SIZE) * SEGMENT_SIZE
        return bytes(plain[skip : skip + end - start])

    return read


def _open_segment(ciphers: Sequence[ChaCha20Poly1305], segment: bytes) -> bytes:
    for cipher in ciphers:
        try:
            return cipher.decrypt(segment[:NONCE], segment[NONCE:], None)
        except InvalidTag:
            continue
    raise crypt4gh.SegmentAuthenticationFailed(
        "an archived segment fails authentication: the archive copy is damaged; restore it "
        "from the backup"
    )
