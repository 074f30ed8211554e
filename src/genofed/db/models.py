"""The node archive's tables, as typed SQLAlchemy models.

Later features extend these tables by adding columns and tables, never by changing existing ones,
so that every change is a forward-only migration. Constraint names come from one naming convention:
migrations can then refer to them by name on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class FileState(enum.StrEnum):
    """Where a file is in the FEGA ingestion life cycle (stored as the lower-case value)."""

    REGISTERED = "registered"
    UPLOADED = "uploaded"
    SUBMITTED = "submitted"
    INGESTED = "ingested"
    ARCHIVED = "archived"
    VERIFIED = "verified"
    BACKED_UP = "backed_up"
    READY = "ready"
    ERROR = "error"
    DISABLED = "disabled"


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as UTC and
    read back with ``tzinfo=UTC``. Naive datetimes are refused: their time zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_file_id() -> str:
    """A random UUID: file ids are assigned before any accession exists and never reused."""
    return str(uuid.uuid4())


def _state_type() -> Enum:
    return _string_enum(FileState, "file_state")


def _string_enum(values: type[enum.StrEnum], name: str) -> Enum:
    # A string with a CHECK constraint rather than a native enum: adding a value is then a
    # portable constraint swap. The length leaves room for longer names.
    return Enum(
        values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda states: [state.value for state in states],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """The declarative base of every genofed table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class ArchiveFile(Base):
    """One submitted file, from its registration in the inbox to its place in the archive.

    The Crypt4GH ``header`` is kept here, apart from the body in the archive store: re-encrypting
    for a requester then rewrites only the header, and the body alone is useless without it.
    """

    __tablename__ = "archive_files"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_file_id)
    accession: Mapped[str | None] = mapped_column(String(64), unique=True)
    submitter: Mapped[str] = mapped_column(String(255))
    inbox_path: Mapped[str] = mapped_column(String(1024))
    state: Mapped[FileState] = mapped_column(_state_type(), default=FileState.REGISTERED)
    header: Mapped[bytes | None] = mapped_column(LargeBinary)
    archive_path: Mapped[str | None] = mapped_column(String(1024))
    archive_size: Mapped[int | None] = mapped_column(BigInteger)
    # fingerprint of the node key the header is sealed for; key rotation moves it
    archive_key: Mapped[str | None] = mapped_column(String(64))
    backup_path: Mapped[str | None] = mapped_column(String(1024))
    decrypted_size: Mapped[int | None] = mapped_column(BigInteger)
    upload_sha256: Mapped[str | None] = mapped_column(String(64))
    archive_sha256: Mapped[str | None] = mapped_column(String(64))
    decrypted_sha256: Mapped[str | None] = mapped_column(String(64))
    decrypted_md5: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    events: Mapped[list[FileEvent]] = relationship(
        back_populates="file",
        cascade="all, delete-orphan",
        passive_deletes=True,  # the database's ON DELETE CASCADE removes them
        order_by="FileEvent.id",
    )


class FileEvent(Base):
    """One step in a file's history: the state it entered, and why (an audit trail)."""

    __tablename__ = "file_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(
        ForeignKey("archive_files.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[FileState] = mapped_column(_state_type())
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    file: Mapped[ArchiveFile] = relationship(back_populates="events")


# -- the submission inbox -----------------------------------------------------------------------


class UploadState(enum.StrEnum):
    """A resumable upload: open while chunks arrive, then completed (or cancelled)."""

    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class UploadSession(Base):
    """One resumable upload of a Crypt4GH file into the inbox.

    Chunks are stored as separate inbox objects (``upload_parts``), so an interrupted upload
    resumes from the last stored byte on any storage backend, S3 included (which cannot append).
    """

    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_file_id)
    submitter: Mapped[str] = mapped_column(String(255), index=True)
    filename: Mapped[str] = mapped_column(String(1024))
    state: Mapped[UploadState] = mapped_column(
        _string_enum(UploadState, "upload_state"), default=UploadState.OPEN
    )
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    declared_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)  # why the node refused it, for the submitter
    file_id: Mapped[str | None] = mapped_column(ForeignKey("archive_files.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    parts: Mapped[list[UploadPart]] = relationship(
        back_populates="upload",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="UploadPart.offset",
    )


class UploadPart(Base):
    """A chunk of an upload, stored whole in the inbox before it is recorded here."""

    __tablename__ = "upload_parts"

    upload_id: Mapped[str] = mapped_column(
        ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(1024))

    upload: Mapped[UploadSession] = relationship(back_populates="parts")


# -- the work queue -----------------------------------------------------------------------------


class JobState(enum.StrEnum):
    READY = "ready"  # waiting for a worker (from available_at on)
    RUNNING = "running"  # leased by a worker until lease_until
    DONE = "done"
    FAILED = "failed"  # retries exhausted or a permanent error: in the error queue


class Job(Base):
    """A message in the database-backed queue, the embedded default for one machine.

    A worker leases a job; if it dies, the lease expires and another worker takes the job again,
    so every stage must be idempotent. ``dedup_key`` makes enqueuing the same work twice a no-op.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_queue_state_available", "queue", "state", "available_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    state: Mapped[JobState] = mapped_column(
        _string_enum(JobState, "job_state"), default=JobState.READY
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column()
    worker: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AccessionCounter(Base):
    """The next number for each kind of accession (file, dataset, study, ...), per node."""

    __tablename__ = "accession_counters"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    next_value: Mapped[int] = mapped_column(BigInteger, default=1)


# -- metadata -----------------------------------------------------------------------------------


class ObjectKind(enum.StrEnum):
    """The EGA object model."""

    STUDY = "study"
    SAMPLE = "sample"
    EXPERIMENT = "experiment"
    RUN = "run"
    ANALYSIS = "analysis"
    DATASET = "dataset"
    DAC = "dac"
    POLICY = "policy"


class ObjectStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RELEASED = "released"  # datasets: visible beyond the node
    DEPRECATED = "deprecated"


class MetadataObject(Base):
    """A study, sample, experiment, run, analysis, dataset, DAC or policy.

    The fields that every kind has are columns; the rest (phenotypes as ontology CURIEs, DUO
    terms of a policy, an analysis's assembly, ...) is the validated ``body``.
    """

    __tablename__ = "metadata_objects"
    __table_args__ = (UniqueConstraint("submitter", "kind", "alias"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_file_id)
    kind: Mapped[ObjectKind] = mapped_column(_string_enum(ObjectKind, "object_kind"))
    accession: Mapped[str | None] = mapped_column(String(64), unique=True)
    alias: Mapped[str] = mapped_column(String(255))  # the submitter's own name for it
    submitter: Mapped[str] = mapped_column(String(255))
    status: Mapped[ObjectStatus] = mapped_column(
        _string_enum(ObjectStatus, "object_status"), default=ObjectStatus.DRAFT
    )
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MetadataLink(Base):
    """A typed reference between objects: a sample's study, a dataset's policy, ..."""

    __tablename__ = "metadata_links"

    source_id: Mapped[str] = mapped_column(
        ForeignKey("metadata_objects.id", ondelete="CASCADE"), primary_key=True
    )
    target_id: Mapped[str] = mapped_column(
        ForeignKey("metadata_objects.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    relation: Mapped[str] = mapped_column(String(32), primary_key=True)


class ObjectFile(Base):
    """An archive file that belongs to a run, an analysis or a dataset."""

    __tablename__ = "object_files"

    object_id: Mapped[str] = mapped_column(
        ForeignKey("metadata_objects.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[str] = mapped_column(
        ForeignKey("archive_files.id", ondelete="CASCADE"), primary_key=True, index=True
    )


# -- access: users, data access requests, grants, the audit log ---------------------------------


class User(Base):
    """A user of the node's embedded issuer (one-machine setups; large nodes trust an OIDC
    provider instead). The password is kept only as a salted scrypt hash."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DacMember(Base):
    """Who sits on a data access committee (by the subject of their tokens)."""

    __tablename__ = "dac_members"

    dac_accession: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class RequestStatus(enum.StrEnum):
    """Where the request for one dataset stands in its DAC's review."""

    SUBMITTED = "submitted"  # waiting for the DAC
    CHANGES_REQUESTED = "changes_requested"  # back with the requester
    APPROVED = "approved"  # a grant exists
    REJECTED = "rejected"
    REVOKED = "revoked"  # approved, then the grant was revoked
    WITHDRAWN = "withdrawn"  # the requester withdrew it


class AccessRequest(Base):
    """A requester's application for one or more datasets, with the purpose in DUO terms."""

    __tablename__ = "access_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_file_id)
    requester: Mapped[str] = mapped_column(String(255), index=True)
    title: Mapped[str] = mapped_column(String(255))
    # {"permission": "HMB", "diseases": [...], "modifiers": ["NCU", "GS=EU"], "description": ..}
    purpose: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duration_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    items: Mapped[list[AccessRequestItem]] = relationship(
        back_populates="request",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="AccessRequestItem.id",
    )


class AccessRequestItem(Base):
    """The part of a request that one dataset's DAC decides."""

    __tablename__ = "access_request_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("access_requests.id", ondelete="CASCADE"), index=True
    )
    dataset_accession: Mapped[str] = mapped_column(String(64), index=True)
    dac_accession: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[RequestStatus] = mapped_column(
        _string_enum(RequestStatus, "request_status"), default=RequestStatus.SUBMITTED
    )
    # The automatic check of the purpose against the dataset's policy: [] when it satisfies it.
    mismatches: Mapped[list[str]] = mapped_column(JSON, default=list)
    comment: Mapped[str | None] = mapped_column(Text)  # the DAC's last word to the requester
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None] = mapped_column()

    request: Mapped[AccessRequest] = relationship(back_populates="items")


class AccessEvent(Base):
    """One transition of a request item: who moved it where, when, and why."""

    __tablename__ = "access_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("access_request_items.id", ondelete="CASCADE"), index=True
    )
    actor: Mapped[str] = mapped_column(String(255))
    status: Mapped[RequestStatus] = mapped_column(_string_enum(RequestStatus, "request_status"))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Grant(Base):
    """Permission for one subject to read one dataset until ``expires_at``; the visas the node
    issues carry its id as their ``jti``, so revoking the grant revokes them."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_subject_dataset", "subject", "dataset_accession"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_file_id)
    subject: Mapped[str] = mapped_column(String(255))
    dataset_accession: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("access_request_items.id", ondelete="SET NULL")
    )
    granted_by: Mapped[str] = mapped_column(String(255))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    conditions: Mapped[list[str]] = mapped_column(JSON, default=list)  # the policy's DUO terms
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_by: Mapped[str | None] = mapped_column(String(255))


class AuditEntry(Base):
    """One entry of the append-only audit log. ``hash`` covers the entry and ``prev_hash``, so
    altering, removing or reordering any entry breaks every hash after it."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # allowed / denied
    dataset: Mapped[str | None] = mapped_column(String(64), index=True)
    file: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


# -- beacon: the variant index, per dataset, and the privacy guard's state ---------------------


class BeaconDataset(Base):
    """How a dataset answers Beacon queries: its security level and the privacy guard's knobs.

    A dataset without a row is ``controlled`` with the default guard: safe by default.
    """

    __tablename__ = "beacon_datasets"

    dataset_accession: Mapped[str] = mapped_column(String(64), primary_key=True)
    security_level: Mapped[str] = mapped_column(String(16), default="controlled")
    min_count: Mapped[int] = mapped_column(Integer, default=5)  # counts below are never exact
    budget_bits: Mapped[float] = mapped_column(Float, default=3.0)  # per user: see docs/privacy.md
    guard_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BeaconSource(Base):
    """A variant file loaded into a dataset's index: loading is incremental, file by file."""

    __tablename__ = "beacon_sources"

    dataset_accession: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    analysis_accession: Mapped[str | None] = mapped_column(String(64))
    assembly: Mapped[str] = mapped_column(String(16))
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    alleles: Mapped[int] = mapped_column(BigInteger, default=0)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class BeaconSample(Base):
    """A genotyped sample of a dataset's index: its number in the carrier bitmaps, and the
    metadata sample (biosample) it is, when the VCF column could be matched."""

    __tablename__ = "beacon_samples"

    dataset_accession: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    file_id: Mapped[str] = mapped_column(String(36))
    vcf_name: Mapped[str] = mapped_column(String(255))
    sample_accession: Mapped[str | None] = mapped_column(String(64), index=True)


class BeaconAllele(Base):
    """One alternate allele of one variant file of a dataset (multi-allelic records are split):
    counts for boolean and count answers, carriers (a serialized roaring bitmap of sample
    numbers) for record-level answers and for joining variants with individuals."""

    __tablename__ = "beacon_alleles"
    __table_args__ = (
        Index("ix_beacon_alleles_position", "dataset_accession", "assembly", "chrom", "start"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dataset_accession: Mapped[str] = mapped_column(String(64))
    file_id: Mapped[str] = mapped_column(String(36), index=True)
    assembly: Mapped[str] = mapped_column(String(16))  # GRCh37 or GRCh38
    chrom: Mapped[str] = mapped_column(String(32))  # without "chr": 1..22, X, Y, MT
    start: Mapped[int] = mapped_column(BigInteger)  # 0-based
    end: Mapped[int] = mapped_column(BigInteger)  # 0-based, exclusive: start + len(ref)
    ref: Mapped[str] = mapped_column(Text)
    alt: Mapped[str] = mapped_column(Text)
    variant_type: Mapped[str] = mapped_column(String(16))  # SNP, MNP, INS, DEL, INDEL, SV kinds
    ac: Mapped[int] = mapped_column(Integer)  # alternate allele count
    an: Mapped[int] = mapped_column(Integer)  # called alleles
    hom: Mapped[int] = mapped_column(Integer)  # samples homozygous for the allele
    carriers: Mapped[bytes] = mapped_column(LargeBinary)


class BeaconGene(Base):
    """A gene of a loaded annotation (GTF/GFF3), for geneId queries."""

    __tablename__ = "beacon_genes"
    __table_args__ = (Index("ix_beacon_genes_symbol", "assembly", "symbol"),)

    assembly: Mapped[str] = mapped_column(String(16), primary_key=True)
    gene_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    chrom: Mapped[str] = mapped_column(String(32))
    start: Mapped[int] = mapped_column(BigInteger)  # 0-based
    end: Mapped[int] = mapped_column(BigInteger)


class BeaconBudget(Base):
    """What a user has spent of a dataset's information budget (privacy guard)."""

    __tablename__ = "beacon_budgets"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    dataset_accession: Mapped[str] = mapped_column(String(64), primary_key=True)
    spent_bits: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BeaconAnswered(Base):
    """Queries a user has been answered (by a digest of the query), so asking again is free."""

    __tablename__ = "beacon_answered"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    dataset_accession: Mapped[str] = mapped_column(String(64), primary_key=True)
    query_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    cost_bits: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- federation: a node's link to its hub, the hub's registry and catalogue ---------------------


class FederationLink(Base):
    """A node's membership of a hub: the hub's key, pinned at join, and where the node stands
    there. One row per hub URL, so pointing the node at another hub starts afresh."""

    __tablename__ = "federation_links"

    hub_url: Mapped[str] = mapped_column(String(512), primary_key=True)
    hub_id: Mapped[str] = mapped_column(String(255))
    hub_key: Mapped[str] = mapped_column(String(64))  # raw Ed25519 public key, base64url
    status: Mapped[str] = mapped_column(String(16))  # the node's status at the hub
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_contact_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)


class FederationPublication(Base):
    """What a node last published to a hub for one dataset: the digest of its public summary.

    A dataset whose summary digest or status differs from its row is published again, so a
    restarted node, or a hub that was down, catches up without anyone's help.
    """

    __tablename__ = "federation_publications"

    hub_url: Mapped[str] = mapped_column(
        ForeignKey("federation_links.hub_url", ondelete="CASCADE"), primary_key=True
    )
    dataset_accession: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # released / deprecated
    digest: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class FederationNonce(Base):
    """A signed call's nonce, kept until its signature is too old to be accepted anyway: a
    second call with the same nonce is a replay."""

    __tablename__ = "federation_nonces"

    keyid: Mapped[str] = mapped_column(String(255), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class HubNodeStatus(enum.StrEnum):
    PENDING = "pending"  # joined; waits for an operator's `genofed hub approve`
    APPROVED = "approved"  # a member: its catalogue is searchable, its keys published


class HubNode(Base):
    """A node registered at the hub (its GA4GH service-info, URL and public keys)."""

    __tablename__ = "hub_nodes"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # its service-info id
    name: Mapped[str] = mapped_column(String(255))
    country: Mapped[str] = mapped_column(String(2))
    url: Mapped[str] = mapped_column(String(1024))
    status: Mapped[HubNodeStatus] = mapped_column(
        _string_enum(HubNodeStatus, "hub_node_status"), default=HubNodeStatus.PENDING
    )
    signing_key: Mapped[str] = mapped_column(String(64))  # request signing, raw base64url
    issuer: Mapped[str] = mapped_column(String(1024))  # the `iss` of its tokens and visas
    jwks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # its visa-issuing keys
    crypt4gh_key: Mapped[str] = mapped_column(Text)
    service_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column()
    approved_by: Mapped[str | None] = mapped_column(String(255))
    last_heartbeat_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class HubDataset(Base):
    """A node's dataset in the hub's catalogue: the public summary it published.

    ``seq`` grows with every change, so a search index catches up by reading what is newer.
    Deprecated datasets keep their row (their page says so) but leave search.
    """

    __tablename__ = "hub_datasets"
    __table_args__ = (UniqueConstraint("node_id", "accession"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("hub_nodes.id", ondelete="CASCADE"))
    accession: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # released / deprecated
    digest: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# -- pathogen records: submissions, entries and their history, terms, snapshot sets ------------


class PathogenState(enum.StrEnum):
    """Where a pathogen entry is, in the manner of Loculus."""

    RECEIVED = "received"  # validated and stored; waits for processing
    PROCESSING = "processing"  # being aligned and checked
    PROCESSED = "processed"  # analysed; ``outcome`` says ok, warnings or errors
    APPROVED = "approved"  # a curator accepted it
    RELEASED = "released"  # public under its data-use terms, as accession.version
    REJECTED = "rejected"  # a curator turned it down
    REVOKED = "revoked"  # withdrawn after release: kept, flagged


class PathogenOrganism(Base):
    """An organism an operator added (the shipped ones live in the package): reference FASTA,
    GFF3 and schema, kept here so that they survive restarts."""

    __tablename__ = "pathogen_organisms"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference_fasta: Mapped[str] = mapped_column(Text)
    annotation_gff3: Mapped[str] = mapped_column(Text)
    earliest_date: Mapped[date] = mapped_column(Date)
    required: Mapped[list[str]] = mapped_column(JSON, default=list)
    optional: Mapped[list[str]] = mapped_column(JSON, default=list)
    clades_tsv: Mapped[str | None] = mapped_column(Text)  # its clade tree, if given
    added_by: Mapped[str] = mapped_column(String(255))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class PathogenSubmission(Base):
    """One batch (FASTA + metadata sheet) as it arrived, with the problems validation found."""

    __tablename__ = "pathogen_submissions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_file_id)
    submitter: Mapped[str] = mapped_column(String(255), index=True)
    organism: Mapped[str] = mapped_column(String(64))
    fasta_name: Mapped[str] = mapped_column(String(1024))
    sheet_name: Mapped[str] = mapped_column(String(1024))
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PathogenEntry(Base):
    """One version of one pathogen record: its sequence, metadata, analysis and state.

    A revision is a new row with the same accession and the next version; earlier versions stay.
    ``change_seq`` grows with every release and revocation, so replication and query stores
    catch up by reading what is newer.
    """

    __tablename__ = "pathogen_entries"
    __table_args__ = (
        UniqueConstraint("accession", "version"),
        Index("ix_pathogen_entries_state_organism", "state", "organism"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    accession: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("pathogen_submissions.id", ondelete="CASCADE"), index=True
    )
    organism: Mapped[str] = mapped_column(String(64))
    submitter: Mapped[str] = mapped_column(String(255), index=True)
    sequence_id: Mapped[str] = mapped_column(String(255))  # the submitter's FASTA id
    virus_name: Mapped[str] = mapped_column(String(255), index=True)
    sheet_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    sequence: Mapped[bytes] = mapped_column(LargeBinary)  # zlib-compressed, unaligned
    state: Mapped[PathogenState] = mapped_column(
        _string_enum(PathogenState, "pathogen_state"), default=PathogenState.RECEIVED
    )
    outcome: Mapped[str | None] = mapped_column(String(16))  # ok / warnings / errors
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)  # why processing failed (no alignment)
    data_use_terms: Mapped[str] = mapped_column(String(16), default="open")
    restricted_until: Mapped[date | None] = mapped_column(Date)
    host_sample: Mapped[str | None] = mapped_column(String(64))  # a controlled sample here
    host_dataset: Mapped[str | None] = mapped_column(String(64))  # the dataset that holds it
    change_seq: Mapped[int | None] = mapped_column(BigInteger, index=True)
    released_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    events: Mapped[list[PathogenEvent]] = relationship(
        back_populates="entry",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="PathogenEvent.id",
    )


class PathogenEvent(Base):
    """One transition of an entry: the state it entered, who moved it, when and why."""

    __tablename__ = "pathogen_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("pathogen_entries.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[PathogenState] = mapped_column(_string_enum(PathogenState, "pathogen_state"))
    actor: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    entry: Mapped[PathogenEntry] = relationship(back_populates="events")


class PathogenTermsAcceptance(Base):
    """A user accepted the node's pathogen data-use terms (``open``) or the restricted-use
    terms (``restricted``), in the version shown to them."""

    __tablename__ = "pathogen_terms_acceptances"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    terms: Mapped[str] = mapped_column(String(16), primary_key=True)
    terms_version: Mapped[str] = mapped_column(String(32))
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow)


class PathogenSnapshot(Base):
    """A citable set of accession.versions, frozen with their acknowledgements."""

    __tablename__ = "pathogen_snapshots"

    identifier: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(255))
    members: Mapped[list[str]] = mapped_column(JSON, default=list)
    acknowledgements: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- federation: pathogen records replicated to the hub -----------------------------------------


class HubPathogenCursor(Base):
    """How far the hub holds a node's pathogen changes: the node's ``change_seq`` up to which
    every release and revocation is applied here. Kept with the records, so a hub that loses
    records loses the cursor with them, and the node sends again from there."""

    __tablename__ = "hub_pathogen_cursors"

    node_id: Mapped[str] = mapped_column(
        ForeignKey("hub_nodes.id", ondelete="CASCADE"), primary_key=True
    )
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class HubPathogenRecord(Base):
    """A node's released pathogen record at the hub: the highest version it pushed, revoked
    once it said so, with the unaligned sequence packed against the organism's reference.

    ``seq`` grows with every change, so the hub's query stores catch up by reading what is newer.
    """

    __tablename__ = "hub_pathogen_records"

    accession: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("hub_nodes.id", ondelete="CASCADE"), index=True)
    organism: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(64))  # sha256 of the node's reference
    version: Mapped[int] = mapped_column(Integer)
    revoked: Mapped[bool] = mapped_column(default=False)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # PathogenRecord.to_json
    sequence: Mapped[bytes | None] = mapped_column(LargeBinary)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
