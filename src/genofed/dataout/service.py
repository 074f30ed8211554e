"""What a caller may read, and the bytes of a file as they leave the node.

A file leaves the node only as Crypt4GH for the requester's key: the stored header is opened with
the node's key and sealed again for the requester, then the archived body follows unchanged. The
new header is derived from a secret seed (the node key, the file, the recipient), so every request
for the same file and key gets the same bytes: HTTP range requests can resume across requests,
and the ``ETag`` names that representation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, union
from sqlalchemy.orm import Session

from genofed import crypt4gh
from genofed.access.visas import Permissions
from genofed.db import ArchiveFile, FileState, MetadataLink, MetadataObject, ObjectFile
from genofed.errors import GenofedError
from genofed.metadata.datasets import dataset_files, released_datasets_query
from genofed.metadata.references import FILE_CARRIERS
from genofed.storage import ObjectStore

CHUNK = 1024 * 1024


class NoAccess(GenofedError):
    """The caller holds no valid visa for any dataset that contains what they asked for."""


class NotHere(GenofedError):
    """No such dataset or file is released at this node."""


class BadRecipientKey(GenofedError):
    """The Crypt4GH public key to encrypt for is missing or malformed."""


class UnsatisfiableRange(GenofedError):
    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


# -- what the caller may see --------------------------------------------------------------------


def allowed_datasets(session: Session, allowed: Permissions) -> list[MetadataObject]:
    """The released datasets of this node that the caller's visas cover."""
    if not allowed.datasets:
        return []
    query = released_datasets_query().where(MetadataObject.accession.in_(list(allowed.datasets)))
    return list(session.scalars(query.order_by(MetadataObject.accession)))


def readable_dataset(session: Session, allowed: Permissions, accession: str) -> MetadataObject:
    dataset = session.scalars(
        released_datasets_query().where(MetadataObject.accession == accession)
    ).first()
    if dataset is None:
        raise NotHere(f"no released dataset {accession} at this node: check the accession")
    if not allowed.allows(dataset.accession):
        raise NoAccess(_no_visa(allowed, f"dataset {accession}"))
    return dataset


def dataset_file_list(session: Session, dataset: MetadataObject) -> list[dict[str, Any]]:
    return [
        describe_file(file) for file in dataset_files(session, dataset) if file.state == "ready"
    ]


def describe_file(file: ArchiveFile) -> dict[str, Any]:
    return {
        "id": file.accession or file.id,
        "size": file.decrypted_size,
        "encrypted_size": file.archive_size,
        "sha256": file.decrypted_sha256,
        "md5": file.decrypted_md5,
    }


def readable_file(
    session: Session, allowed: Permissions, reference: str
) -> tuple[ArchiveFile, str]:
    """The archived file ``reference`` (accession or id) and a dataset through which the caller
    may read it."""
    file = session.scalars(
        select(ArchiveFile).where(
            or_(ArchiveFile.accession == reference, ArchiveFile.id == reference)
        )
    ).first()
    holders = _released_holders(session, file.id) if file is not None else []
    if file is None or file.state != FileState.READY or not holders:
        raise NotHere(f"no released file {reference} at this node: check the accession")
    for dataset in holders:
        if allowed.allows(dataset):
            return file, dataset
    raise NoAccess(_no_visa(allowed, f"file {reference} (in {', '.join(holders)})"))


def _released_holders(session: Session, file_id: str) -> list[str]:
    """Accessions of the released datasets that contain the file, directly or via runs and
    analyses."""
    own = select(ObjectFile.object_id).where(ObjectFile.file_id == file_id)
    carried = (
        select(MetadataLink.source_id)
        .join(ObjectFile, ObjectFile.object_id == MetadataLink.target_id)
        .where(ObjectFile.file_id == file_id, MetadataLink.relation.in_(FILE_CARRIERS))
    )
    query = released_datasets_query().where(
        MetadataObject.id.in_(union(own, carried).scalar_subquery())
    )
    return [str(d.accession) for d in session.scalars(query.order_by(MetadataObject.accession))]


def _no_visa(allowed: Permissions, what: str) -> str:
    refused = f"; refused visas: {'; '.join(allowed.refused)}" if allowed.refused else ""
    return (
        f"you hold no valid visa for {what}: apply with 'genofed access request' and, once "
        f"approved, fetch your visas from /permissions/<you>{refused}"
    )


# -- the bytes that leave -----------------------------------------------------------------------


def recipient_key(value: str | None) -> bytes:
    """The requester's Crypt4GH public key from a request header: base64 of the 32 bytes (the
    middle line of a ``crypt4gh`` .pub file)."""
    if not value:
        raise BadRecipientKey(
            "send your Crypt4GH public key in the X-C4GH-Public-Key header (the base64 line of "
            "your .pub file): the file is encrypted for it"
        )
    text = value.strip()
    if not text.startswith("-----BEGIN"):
        text = f"-----BEGIN CRYPT4GH PUBLIC KEY-----\n{text}\n-----END CRYPT4GH PUBLIC KEY-----\n"
    try:
        return crypt4gh.decode_public_key(text.encode(), source="X-C4GH-Public-Key")
    except crypt4gh.Crypt4GHError as error:
        raise BadRecipientKey(f"{error}: send the base64 line of your .pub file") from None


@dataclass(frozen=True)
class Representation:
    """A file as one requester receives it: their header, then the archived body."""

    header: bytes
    body_key: str
    body_size: int
    etag: str

    @property
    def size(self) -> int:
        return len(self.header) + self.body_size

    def iter_bytes(self, store: ObjectStore, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the representation, streamed from the store."""
        if start < len(self.header):
            yield self.header[start : min(end, len(self.header))]
        body_start, body_end = max(0, start - len(self.header)), end - len(self.header)
        if body_end > body_start:
            yield from store.iter_range(self.body_key, body_start, body_end, CHUNK)


def representation(
    file: ArchiveFile, node_keys: Sequence[bytes], recipient: bytes
) -> Representation:
    """``file`` for ``recipient``: the stored header opened with the node's current or a
    retired key, sealed again deterministically."""
    assert file.header is not None and file.archive_path is not None
    assert file.archive_size is not None
    header = open_stored_header(file.header, node_keys)
    seed = hmac.new(
        node_keys[0], b"genofed-download\0" + file.id.encode() + recipient + file.header, "sha256"
    ).digest()
    sealed = crypt4gh.header.reencrypt(header, [recipient], seed=seed)
    tag = hashlib.sha256(sealed + (file.archive_sha256 or "").encode()).hexdigest()[:32]
    return Representation(sealed, file.archive_path, file.archive_size, f'"{tag}"')


def open_stored_header(header_bytes: bytes, node_keys: Sequence[bytes]) -> crypt4gh.Header:
    raw = crypt4gh.parse_header(header_bytes)
    for secret in node_keys:
        try:
            return crypt4gh.open_header(raw, secret)
        except crypt4gh.NoPacketForKey:
            continue
    raise GenofedError(
        "the file's stored header opens with none of the node's keys: the operator must "
        "configure the retired key in crypt4gh.previous_secret_keys"
    )


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range ``header`` asks for, as ``[start, end)``; None for the whole file."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise UnsatisfiableRange(
            f"Range {header!r}: only one byte range is served, e.g. 'bytes=0-1023'", size
        )
    first, dash, last = spec.strip().partition("-")
    try:
        if not dash:
            raise ValueError
        if not first:  # the last N bytes
            suffix = int(last)
            if suffix <= 0:
                raise ValueError
            return max(0, size - suffix), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        raise UnsatisfiableRange(
            f"Range {header!r} is malformed: write bytes=START-END, bytes=START- or bytes=-N", size
        ) from None
    if start >= size or end <= start:
        raise UnsatisfiableRange(f"Range {header!r} lies outside the {size} bytes", size)
    return start, min(end, size)
