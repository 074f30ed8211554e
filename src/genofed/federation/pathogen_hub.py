"""The hub's copy of the federation's released pathogen records, and the queries over them.

Nodes push their releases and revocations to the hub in signed batches (``POST
/pathogen/replicate``; the node's side is :mod:`genofed.federation.pathogen_replication`), in
the order of their own change sequence (``change_seq``). The hub keeps:

- one ``hub_pathogen_records`` row per accession: the highest version any push carried, revoked
  once a push said so for that version. Both rules are monotone, so a batch applied twice, late
  or out of order leaves the same rows: replays and resends are harmless;
- per node, a cursor (``hub_pathogen_cursors``): the node's ``change_seq`` up to which every
  change is applied here, which the heartbeat reply tells the node. A batch says which cursor
  it follows (``after``) and moves it to its last change (``through``) only if the hub is there;
  the cursor lives in the same database as the records, so a hub restored from an older backup
  has an older cursor too and the node sends again from that point.

A node may push only its own records: the accession must carry the node's country prefix and a
valid check character, the record must name the node's country, and an accession the hub holds
from another node stays that node's. A batch with one foreign record is refused whole (403): it
is a bug or a forgery, not something to half-apply.

Sequences travel and rest zstd-compressed with the organism's reference as a raw-content
dictionary: a 30 kb SARS-CoV-2 genome takes ~150 bytes instead of ~9 kB with plain zstd, so
the hub holds the unaligned sequence of every record (and serves it while its node is down) for
less space than its metadata. This makes the reference part of the format (as it is of the
mutations): every batch names the sha256 of the node's reference, and the hub queries only
records whose reference is its own organism's; others are kept, reported in the push's reply,
and become queryable once the hub's operator adds the same organism.

Queries: :class:`FederationRecords` loads the rows into one in-memory
:class:`~genofed.pathogen.store.PathogenStore` per organism at hub start, then reads only rows
with a newer ``seq`` (each change takes the next one); a node removed from the hub (its rows go
with it) makes it rebuild the stores.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import zstandard
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from genofed.db.models import HubNode, HubPathogenCursor, HubPathogenRecord, utcnow
from genofed.errors import GenofedError
from genofed.metadata.accessions import check_character
from genofed.pathogen.entries import NotFound
from genofed.pathogen.organisms import Organism
from genofed.pathogen.record import PathogenRecord
from genofed.pathogen.registry import get_organism

log = logging.getLogger(__name__)
REPLICATE_PATH = "/pathogen/replicate"
MAX_BATCH = 500  # records per push: each is a few kB, so a push stays well under 8 MiB
PATHOGEN_LOCK_ID = 0x6766706174  # "gfpat": PostgreSQL advisory lock of replication writers
_ACCESSION = re.compile(r"^GF([A-Z]{2})V\d{11}[0-9A-Z]$")


class ReplicationRefused(GenofedError):
    """A batch the hub does not apply; ``status`` is the HTTP answer (403 foreign, 422 bad)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


# -- the wire format ---------------------------------------------------------------------------


class Replicated(BaseModel):
    """One record as pushed: :meth:`PathogenRecord.to_json` and its sequence (:func:`encode`)."""

    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any]
    sequence: Annotated[str | None, Field(max_length=200_000)] = None


class Replication(BaseModel):
    """Changes ``after`` < change_seq <= ``through`` of one node, all of one organism."""

    model_config = ConfigDict(extra="forbid")

    organism: Annotated[str, Field(min_length=1, max_length=64)]
    reference: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]  # sha256 of the reference
    after: Annotated[int, Field(ge=0)]
    through: Annotated[int, Field(ge=0)]
    records: Annotated[list[Replicated], Field(max_length=MAX_BATCH)]

    @model_validator(mode="after")
    def _ordered(self) -> Replication:
        if self.through < self.after:
            raise ValueError("through must not be below after")
        return self


def reference_digest(organism: Organism) -> str:
    """The sha256 of the organism's reference sequence, as batches name it."""
    return hashlib.sha256(organism.reference.upper().encode()).hexdigest()


@cache
def _dictionary(reference: str) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(
        reference.upper().encode(), dict_type=zstandard.DICT_TYPE_RAWCONTENT
    )


def pack(organism: Organism, sequence: str) -> bytes:
    """A genome compressed against its organism's reference."""
    compressor = zstandard.ZstdCompressor(level=3, dict_data=_dictionary(organism.reference))
    return compressor.compress(sequence.encode("ascii"))


def unpack(organism: Organism, packed: bytes) -> str:
    """The genome :func:`pack` compressed (zstandard.ZstdError if packed otherwise)."""
    decompressor = zstandard.ZstdDecompressor(dict_data=_dictionary(organism.reference))
    return decompressor.decompress(packed).decode("ascii")


def encode(organism: Organism, sequence: str) -> str:
    """:func:`pack` as text for JSON."""
    return base64.b64encode(pack(organism, sequence)).decode("ascii")


# -- applying a batch --------------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    record: PathogenRecord
    packed: bytes | None


def cursor(session: Session, node_id: str) -> int:
    """The node's change_seq up to which the hub holds its changes (0: nothing yet)."""
    row = session.get(HubPathogenCursor, node_id)
    return row.change_seq if row is not None else 0


def state(session: Session, node_id: str) -> dict[str, int]:
    """What the heartbeat reply tells the node: its cursor here."""
    return {"cursor": cursor(session, node_id)}


def apply(session: Session, node: HubNode, batch: Replication) -> dict[str, Any]:
    """Store a node's batch; what it did (counts of created, updated, revoked, unchanged and
    stale records), the node's cursor after it, and why its records cannot be queried here, if so.

    Raises :class:`ReplicationRefused` before changing anything when a record is malformed or
    not the node's.
    """
    incoming = [
        _incoming(node, batch.organism, index, item) for index, item in enumerate(batch.records)
    ]
    _lock_writers(session)
    held = {
        row.accession: row
        for row in session.scalars(
            select(HubPathogenRecord).where(
                HubPathogenRecord.accession.in_({item.record.accession for item in incoming})
            )
        )
    }
    for row in held.values():
        if row.node_id != node.id:
            raise ReplicationRefused(
                f"record {row.accession} was replicated by node {row.node_id}, not {node.id}: "
                "a node pushes only its own records",
                403,
            )
    seq = int(session.scalar(select(func.max(HubPathogenRecord.seq))) or 0)
    counts = Counter({"created": 0, "updated": 0, "revoked": 0, "unchanged": 0, "stale": 0})
    for item in incoming:
        outcome = _merge(session, node, held, item, batch.reference)
        counts[outcome] += 1
        if outcome not in ("unchanged", "stale"):
            seq += 1
            held[item.record.accession].seq = seq
    moved = _advance(session, node.id, batch.after, batch.through)
    session.flush()
    return {
        "applied": dict(counts),
        "cursor": moved,
        "unqueryable": queryable_problem(session, batch.organism, batch.reference),
    }


def _incoming(node: HubNode, organism: str, index: int, item: Replicated) -> Incoming:
    try:
        record = PathogenRecord.from_json(item.record)
        packed = base64.b64decode(item.sequence, validate=True) if item.sequence else None
    except (KeyError, TypeError, ValueError, binascii.Error) as error:
        raise ReplicationRefused(
            f"record {index} of the batch is malformed ({type(error).__name__}: {error}): "
            "send PathogenRecord.to_json and a base64 sequence",
            422,
        ) from None
    if record.organism != organism:
        raise ReplicationRefused(
            f"record {record.accession} is of {record.organism}, in a batch of {organism}", 422
        )
    if not _owned(record, node):
        raise ReplicationRefused(
            f"record {record.accession} (node {record.node}) is not a record of node {node.id} "
            f"({node.country}): a node pushes only accessions GF{node.country}V... it assigned",
            403,
        )
    return Incoming(record, packed)


def _owned(record: PathogenRecord, node: HubNode) -> bool:
    """The accession is the node's (country prefix, valid check character), as the record says."""
    match = _ACCESSION.match(record.accession)
    return bool(
        match
        and match.group(1) == node.country
        and record.node == node.country
        and check_character(record.accession[:-1]) == record.accession[-1]
        and record.version >= 1
    )


def _merge(
    session: Session,
    node: HubNode,
    held: dict[str, HubPathogenRecord],
    item: Incoming,
    reference: str,
) -> str:
    """Keep the highest version; a revocation of it sticks (a resend from before it cannot
    undo it). A new version is a new release: revoked only if the node says so."""
    record = item.record
    row = held.get(record.accession)
    if row is None:
        row = held[record.accession] = HubPathogenRecord(
            accession=record.accession, node_id=node.id
        )
        session.add(row)
        _fill(row, item, reference)
        return "created"
    if record.version < row.version:
        return "stale"
    if record.version > row.version:
        _fill(row, item, reference)
        return "updated"
    if record.revoked and not row.revoked:
        row.revoked = True
        row.record = {**row.record, "revoked": True}
        row.updated_at = utcnow()
        return "revoked"
    return "unchanged"


def _fill(row: HubPathogenRecord, item: Incoming, reference: str) -> None:
    record = item.record
    row.organism = record.organism
    row.reference = reference
    row.version = record.version
    row.revoked = record.revoked
    row.record = record.to_json()
    row.sequence = item.packed
    row.updated_at = utcnow()


def _advance(session: Session, node_id: str, after: int, through: int) -> int:
    """Move the node's cursor to ``through`` if the batch follows what the hub holds."""
    row = session.get(HubPathogenCursor, node_id)
    if row is None:
        row = HubPathogenCursor(node_id=node_id, change_seq=0)
        session.add(row)
    if row.change_seq >= after and through > row.change_seq:
        row.change_seq = through
        row.updated_at = utcnow()
    return row.change_seq


def _lock_writers(session: Session) -> None:
    """One replication writer at a time, so ``seq`` values commit in order (SQLite: the
    writing session's lock; PostgreSQL: an advisory lock until commit)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PATHOGEN_LOCK_ID})


# -- the hub's organisms -----------------------------------------------------------------------


def hub_organism(session: Session, name: str) -> Organism | None:
    """The hub's organism of that name (shipped, or added to the hub's database), if any."""
    try:
        return get_organism(session, name)
    except NotFound:
        return None


def queryable_problem(session: Session, name: str, reference: str) -> str | None:
    """Why records of ``name`` with that reference cannot be queried here; None if they can."""
    organism = hub_organism(session, name)
    if organism is None:
        return (
            f"the hub does not know the organism {name!r}: its records are kept and become "
            "queryable once the hub's operator adds it with the node's reference and annotation"
        )
    if reference_digest(organism) != reference:
        return (
            f"the node's {name} reference is not the hub's (sha256 {reference[:12]}... against "
            f"{reference_digest(organism)[:12]}...): mutations would not mean the same, so its "
            "records are kept but not queried; the operators must use the same reference"
        )
    return None
