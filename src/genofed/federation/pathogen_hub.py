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
and become queryable once the hub's operator adds the same organism (and restarts the hub).

Queries: :class:`FederationRecords` loads the rows into one in-memory
:class:`~genofed.pathogen.store.PathogenStore` per organism at hub start, then reads only rows
with a newer ``seq`` (each change takes the next one); a node removed from the hub (its rows go
with it) makes it rebuild the stores. The LAPIS routes are mounted as on the nodes, at
``/pathogen/lapis/{organism}``.

Downloads: the hub has no users of its own. Sequences are for users of member nodes, whose
tokens it verifies with the keys each node registered at join (the subject suffixed with the
node's id, as members do); they accept the data-use terms once at the hub (``POST
/pathogen/terms/accept``), the restricted-use terms too for restricted records, and every
download is audited. ``GET /pathogen/acknowledgements`` gives the labs to thank.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import jwt
import zstandard
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from genofed import db
from genofed.access import audit
from genofed.access.jwks import ALGORITHMS
from genofed.access.tokens import TokenRequestError, check_subject
from genofed.db.models import (
    HubNode,
    HubNodeStatus,
    HubPathogenCursor,
    HubPathogenRecord,
    PathogenSnapshot,
    utcnow,
)
from genofed.errors import GenofedError
from genofed.metadata.accessions import PATHOGEN_SET, allocate, check_character
from genofed.pathogen import acknowledgements, snapshots, terms
from genofed.pathogen.entries import InvalidInput, NotFound
from genofed.pathogen.lapis import lapis_router, parse_filter, read_params
from genofed.pathogen.organisms import Organism
from genofed.pathogen.record import OPEN, PathogenRecord
from genofed.pathogen.registry import describe, get_organism, organism_names
from genofed.pathogen.serving import LiveStores, download_refusal
from genofed.pathogen.store import PathogenStore
from genofed.pathogen.variant_query import QueryError

log = logging.getLogger(__name__)
REPLICATE_PATH = "/pathogen/replicate"
MAX_BATCH = 500  # records per push: each is a few kB, so a push stays well under 8 MiB
PATHOGEN_LOCK_ID = 0x6766706174  # "gfpat": PostgreSQL advisory lock of replication writers
_RECORD_FIELDS = frozenset(PathogenRecord.__dataclass_fields__)
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
    return _digest(organism.reference)


@cache
def _digest(reference: str) -> str:
    return hashlib.sha256(reference.upper().encode()).hexdigest()


LEVEL = 3


@cache
def _dictionary(reference: str) -> zstandard.ZstdCompressionDict:
    dictionary = zstandard.ZstdCompressionDict(
        reference.upper().encode(), dict_type=zstandard.DICT_TYPE_RAWCONTENT
    )
    dictionary.precompute_compress(level=LEVEL)  # else each genome loads it again: 8x slower
    return dictionary


def pack(organism: Organism, sequence: str) -> bytes:
    """A genome compressed against its organism's reference."""
    compressor = zstandard.ZstdCompressor(level=LEVEL, dict_data=_dictionary(organism.reference))
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
    document: dict[str, Any]  # as received: to_json again would cost ~1 ms a record
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
    db.serialize_writers(session, PATHOGEN_LOCK_ID)  # seq values commit in order
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
    document = {key: value for key, value in item.record.items() if key in _RECORD_FIELDS}
    return Incoming(record, document, packed)


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
    row.record = item.document
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


# -- queries over the federation -------------------------------------------------------------


class FederationRecords(LiveStores):
    """The hub's query stores, one :class:`PathogenStore` per organism, over its replicated
    records; the database stays the truth (any number of hub processes can serve queries)."""

    where = "the hub"

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._seq = 0  # the newest row read
        self._nodes: frozenset[str] = frozenset()
        self._verdicts: dict[tuple[str, str], bool] = {}  # (organism, reference) queryable?

    def _catch_up(self, session: Session) -> int:
        nodes = frozenset(session.scalars(select(HubNode.id)))
        if nodes >= self._nodes:
            self._nodes = nodes
            return self._read(session, self._stores)
        # a node was removed, its records with it: new stores, swapped in when full
        log.info("a node left the hub: rebuilding the pathogen query stores")
        self._nodes, self._seq = nodes, 0
        stores: dict[str, PathogenStore] = {}
        read = self._read(session, stores)
        self._stores = stores
        return read

    def _organism(self, session: Session, name: str) -> Organism | None:
        return hub_organism(session, name)

    def _read(self, session: Session, stores: dict[str, PathogenStore]) -> int:
        read = 0
        for chunk in _changed_rows(session, self._seq):
            by_organism: dict[str, list[PathogenRecord]] = {}
            for row in chunk:
                read += 1
                self._seq = max(self._seq, row.seq)
                if self._queryable(session, row.organism, row.reference):
                    record = PathogenRecord.from_json(row.record)
                    by_organism.setdefault(row.organism, []).append(record)
            for organism, records in by_organism.items():
                store = stores.get(organism)
                if store is None:
                    species = hub_organism(session, organism)
                    assert species is not None  # checked by _queryable
                    store = stores.setdefault(organism, PathogenStore(species))
                store.add_many(records)
        return read

    def _queryable(self, session: Session, organism: str, reference: str) -> bool:
        verdict = self._verdicts.get((organism, reference))
        if verdict is None:
            problem = queryable_problem(session, organism, reference)
            if problem is not None:
                log.warning("%s", problem)
            verdict = self._verdicts[organism, reference] = problem is None
        return verdict


def _changed_rows(session: Session, after: int, size: int = 5_000) -> Iterator[Sequence[Any]]:
    """Rows with a ``seq`` above ``after``, oldest change first, in chunks."""
    query = (
        select(
            HubPathogenRecord.seq,
            HubPathogenRecord.organism,
            HubPathogenRecord.reference,
            HubPathogenRecord.record,
        )
        .where(HubPathogenRecord.seq > after)
        .order_by(HubPathogenRecord.seq)
        .execution_options(yield_per=size)
    )
    yield from session.execute(query).partitions(size)


class FederationSequences:
    """The genomes of the hub's records (LAPIS's :class:`~genofed.pathogen.lapis.SequenceSource`):
    unaligned from the packed copy each node pushed, aligned rebuilt from the record's analysis."""

    def __init__(self, engine: Engine, organism: Organism) -> None:
        self.engine = engine
        self.organism = organism

    def unaligned(self, accession_version: str) -> str:
        row = self._row(accession_version)
        if row.sequence is None:
            return ""  # the node had none to give (never for records it released)
        return unpack(self.organism, row.sequence)

    def aligned(self, accession_version: str) -> str:
        alignment = importlib.import_module("genofed.pathogen.alignment")  # heavy: when asked
        record = PathogenRecord.from_json(self._row(accession_version).record)
        return str(alignment.aligned_sequence(self.organism, record.analysis))

    def _row(self, accession_version: str) -> HubPathogenRecord:
        accession, _, version = accession_version.rpartition(".")
        with db.session_scope(self.engine) as session:
            row = session.get(HubPathogenRecord, accession)
            if row is None or str(row.version) != version:
                raise LookupError(f"{accession_version} is not held at the hub (any more)")
            session.expunge(row)
            return row


# -- downloads at the hub: users of member nodes, who accepted the terms here ----------------


class MemberTokenRefused(GenofedError):
    """A bearer token that no approved member node issued, or that does not verify."""


def member_subject(session: Session, token: str) -> str:
    """The subject a member node's token speaks for, suffixed with the node's id as members
    do (``alice@org.genofed.node.be``), verified against the node's keys registered here."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise MemberTokenRefused("the token is malformed (not a JWT)") from None
    node = session.scalars(
        select(HubNode).where(
            HubNode.issuer == claims.get("iss"), HubNode.status == HubNodeStatus.APPROVED
        )
    ).first()
    if node is None:
        raise MemberTokenRefused(
            f"the token's issuer {str(claims.get('iss'))[:200]!r} is not an approved member of "
            "this federation: sign in at your node and use its token"
        )
    keys = {key.get("kid"): key for key in node.jwks.get("keys", []) if isinstance(key, dict)}
    key = keys.get(header.get("kid")) or (next(iter(keys.values())) if len(keys) == 1 else None)
    algorithm = header.get("alg")
    if key is None or algorithm not in ALGORITHMS:
        raise MemberTokenRefused(f"the token is not signed with a key of {node.id}")
    try:
        verified = jwt.decode(
            token,
            jwt.PyJWK(key).key,
            algorithms=[str(algorithm)],
            issuer=node.issuer,
            options={"require": ["iss", "sub", "exp"], "verify_aud": False},
        )
    except (jwt.PyJWTError, jwt.PyJWKError) as error:
        raise MemberTokenRefused(f"the token of {node.id} is refused: {error}") from None
    subject = f"{verified['sub']}@{node.id}"
    try:  # it goes into the audit log: the node's own subject rules
        check_subject(subject)
    except TokenRequestError as error:
        raise MemberTokenRefused(f"the token of {node.id} is refused: {error}") from None
    return subject


# -- the hub's pathogen routes -----------------------------------------------------------------

LAPIS_PREFIX = "/pathogen/lapis/{organism}"  # as on the nodes


class Acceptance(BaseModel):
    terms: str = Field(OPEN, pattern="^(open|restricted)$")


def hub_router() -> APIRouter:
    """The hub's pathogen routes: the terms and their acceptance, the acknowledgements, and
    LAPIS over every released record of the federation (sequences for users of member nodes
    who accepted the terms here)."""
    router = APIRouter(tags=["pathogen"])
    router.add_api_route("/pathogen/organisms", _organisms, methods=["GET"])
    router.add_api_route("/pathogen/terms", _terms, methods=["GET"])
    router.add_api_route("/pathogen/terms/accept", _accept_terms, methods=["POST"])
    router.add_api_route(
        "/pathogen/acknowledgements", _acknowledgements, methods=["GET"], response_model=None
    )
    router.add_api_route("/pathogen/snapshots", _create_snapshot, methods=["POST"], status_code=201)
    router.add_api_route("/pathogen/snapshots/{identifier}", _snapshot, methods=["GET"])
    lapis = lapis_router(_store, sequences=_sequences, sequence_access=_downloader)
    router.include_router(lapis, prefix=LAPIS_PREFIX)
    return router


def _records(request: Request) -> FederationRecords:
    records: FederationRecords = request.app.state.hub.pathogen
    return records


def _store(request: Request) -> PathogenStore:
    return _records(request).store_or_404(request.path_params["organism"])


def _sequences(request: Request) -> FederationSequences:
    return FederationSequences(_records(request).engine, _store(request).organism)


def _organisms(request: Request) -> dict[str, Any]:
    """The organisms the hub queries, described as the nodes do, with their records here."""
    records = _records(request)
    with db.session_scope(records.engine) as session:
        organisms = [get_organism(session, name) for name in organism_names(session)]
    return {
        "organisms": [
            {**describe(organism), "records": len(records.store(organism.name) or ())}
            for organism in organisms
        ]
    }


def _terms() -> dict[str, Any]:
    """The data-use terms a downloader accepts (the nodes' terms, accepted here once)."""
    return {"version": terms.TERMS_VERSION, "terms": terms.TEXTS}


async def _accept_terms(request: Request, body: Acceptance | None = None) -> dict[str, Any]:
    """A user of a member node accepts the terms at the hub (restricted use includes open)."""
    token = _bearer(request)
    kind = OPEN if body is None else body.terms

    def accept() -> dict[str, Any]:
        with db.session_scope(db.for_writing(_records(request).engine)) as session:
            subject = _subject(session, token)
            for each in (OPEN, kind):
                terms.accept(session, subject, each)
            return {"subject": subject, "accepted": sorted(terms.accepted(session, subject))}

    return await run_in_threadpool(accept)


async def _downloader(request: Request) -> str:
    """Sequence downloads: a user of a member node who accepted the terms here, and the
    restricted-use terms too when the selection holds restricted records; audited."""
    token = _bearer(request)
    store = _store(request)
    try:
        chosen = parse_filter(await read_params(request), store)
    except QueryError:
        return ""  # the route answers 400 with the details
    detail = {"path": request.url.path, "query": str(request.url.query)[:500]}

    def check() -> tuple[str, str | None]:
        with db.session_scope(db.for_writing(_records(request).engine)) as session:
            subject = _subject(session, token)
            return subject, download_refusal(
                session, subject, store, chosen, where="at this hub", request_detail=detail
            )

    subject, problem = await run_in_threadpool(check)
    if problem:
        raise HTTPException(403, problem)
    return subject


def _acknowledgements(
    request: Request,
    accessions: str = Query(description="Comma-separated accession.versions."),
    format: str = Query("tsv", pattern="^(tsv|csv|json)$"),
) -> Response:
    """Whom to thank for the records named: originating and submitting labs, authors."""
    names = [name.strip() for name in accessions.split(",") if name.strip()]
    with db.session_scope(_records(request).engine) as session:
        rows = _current(session, names, allow_revoked=True)
    table = [_acknowledgement(row) for row in rows]
    return Response(
        acknowledgements.render(table, format), media_type=acknowledgements.MEDIA_TYPES[format]
    )


def _current(
    session: Session, names: Sequence[str], *, allow_revoked: bool = False
) -> list[HubPathogenRecord]:
    """The rows ``names`` (``accession.version``, or an accession for its current version)
    name, in order; 404/409 naming every name the hub cannot give. The hub holds the current
    version of each record only: older versions are on their node."""
    wanted = list(dict.fromkeys(names))
    accessions = {name.partition(".")[0] for name in wanted}
    held = {
        row.accession: row
        for row in session.scalars(
            select(HubPathogenRecord).where(HubPathogenRecord.accession.in_(accessions))
        )
    }
    missing, older, revoked, found = [], [], [], []
    for name in wanted:
        accession, _, version = name.partition(".")
        row = held.get(accession)
        if row is None:
            missing.append(name)
        elif version and version != str(row.version):
            older.append(f"{name} (the hub holds .{row.version})")
        elif row.revoked and not allow_revoked:
            revoked.append(name)
        else:
            found.append(row)
    if missing:
        raise HTTPException(404, f"not held at the hub: {', '.join(missing[:10])}; check them")
    if older or revoked:
        named = ", ".join([*older, *(f"{name} (revoked)" for name in revoked)][:10])
        raise HTTPException(409, f"not current at the hub: {named}; name current versions")
    return found


def _acknowledgement(row: HubPathogenRecord) -> dict[str, str]:
    metadata = row.record["metadata"]
    named = {column: metadata.get(column, "") for column in acknowledgements.COLUMNS[1:]}
    return {"accession_version": f"{row.accession}.{row.version}", **named}


# Snapshot sets of the federation: GISAID's EPI_SET in spirit, for a paper on several nodes'
# records. Identifiers are accessions of the pathogen-set kind under a prefix no node has.
HUB_PREFIX = "XF"  # an ISO 3166 user-assigned code, never a member's country


class NewSnapshot(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=snapshots.MAX_TITLE)]
    accessions: Annotated[list[str], Field(min_length=1, max_length=snapshots.MAX_MEMBERS)]


async def _create_snapshot(request: Request, body: NewSnapshot) -> dict[str, Any]:
    """Freeze current versions of records of any node under a citable identifier, with the
    labs to thank (a user of a member node)."""
    token = _bearer(request)

    def create() -> dict[str, Any]:
        with db.session_scope(db.for_writing(_records(request).engine)) as session:
            subject = _subject(session, token)
            rows = _current(session, [name.strip() for name in body.accessions if name.strip()])
            rows.sort(key=lambda row: row.accession)
            snapshot = PathogenSnapshot(
                identifier=str(allocate(session, HUB_PREFIX, PATHOGEN_SET)),
                title=" ".join(body.title.split()),
                created_by=subject,
                members=[f"{row.accession}.{row.version}" for row in rows],
                acknowledgements=[_acknowledgement(row) for row in rows],
            )
            session.add(snapshot)
            session.flush()
            audit.record(
                session,
                actor=subject,
                action="pathogen.snapshot",
                detail={"identifier": snapshot.identifier, "size": len(rows)},
            )
            return _snapshot_view(session, snapshot)

    return await run_in_threadpool(create)


def _snapshot(identifier: str, request: Request) -> dict[str, Any]:
    """A snapshot set as cited, naming members revoked or revised since."""
    with db.session_scope(_records(request).engine) as session:
        try:
            snapshot = snapshots.get_snapshot(session, identifier)
        except InvalidInput as error:
            raise HTTPException(400, str(error)) from None
        except NotFound as error:
            raise HTTPException(404, str(error).replace("this node", "this hub")) from None
        return _snapshot_view(session, snapshot)


def _snapshot_view(session: Session, snapshot: PathogenSnapshot) -> dict[str, Any]:
    held = {
        f"{row.accession}.{row.version}": row.revoked
        for row in session.scalars(
            select(HubPathogenRecord).where(
                HubPathogenRecord.accession.in_({m.partition(".")[0] for m in snapshot.members})
            )
        )
    }
    return {
        "identifier": snapshot.identifier,
        "title": snapshot.title,
        "created_by": snapshot.created_by,
        "size": len(snapshot.members),
        "members": snapshot.members,
        "revoked_since": [m for m in snapshot.members if held.get(m)],
        "revised_since": [m for m in snapshot.members if m not in held],
        "acknowledgements": snapshot.acknowledgements,
    }


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401,
            "no bearer token: send 'Authorization: Bearer <token>' with a token from your node",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def _subject(session: Session, token: str) -> str:
    try:
        return member_subject(session, token)
    except MemberTokenRefused as error:
        raise HTTPException(
            401, str(error), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None
