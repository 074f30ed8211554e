"""The node archive's tables, as typed SQLAlchemy models.

Later features extend these tables by adding columns and tables, never by changing existing ones,
so that every change is a forward-only migration. Constraint names come from one naming convention:
migrations can then refer to them by name on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
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
    # A string with a CHECK constraint rather than a native enum: adding a state is then a
    # portable constraint swap. The length leaves room for longer state names.
    return Enum(
        FileState,
        name="file_state",
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
