"""The submission inbox, the database-backed queue, accession counters and the metadata model.

Revision ID: 0002_inbox_queue_metadata
Revises: 0001_archive_files
Create Date: 2026-11-24

Frozen like every revision: enum values are spelled out, not imported from the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_inbox_queue_metadata"
down_revision: str | None = "0001_archive_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accession_counters",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_accession_counters")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "ready",
                "running",
                "done",
                "failed",
                name="job_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_jobs_dedup_key")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_jobs_queue_state_available", ["queue", "state", "available_at"], unique=False
        )

    op.create_table(
        "metadata_objects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "study",
                "sample",
                "experiment",
                "run",
                "analysis",
                "dataset",
                "dac",
                "policy",
                name="object_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("accession", sa.String(length=64), nullable=True),
        sa.Column("alias", sa.String(length=255), nullable=False),
        sa.Column("submitter", sa.String(length=255), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "submitted",
                "released",
                "deprecated",
                name="object_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadata_objects")),
        sa.UniqueConstraint("accession", name=op.f("uq_metadata_objects_accession")),
        sa.UniqueConstraint(
            "submitter", "kind", "alias", name=op.f("uq_metadata_objects_submitter")
        ),
    )
    op.create_table(
        "metadata_links",
        sa.Column("source_id", sa.String(length=36), nullable=False),
        sa.Column("target_id", sa.String(length=36), nullable=False),
        sa.Column("relation", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["metadata_objects.id"],
            name=op.f("fk_metadata_links_source_id_metadata_objects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["metadata_objects.id"],
            name=op.f("fk_metadata_links_target_id_metadata_objects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "source_id", "target_id", "relation", name=op.f("pk_metadata_links")
        ),
    )
    with op.batch_alter_table("metadata_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_metadata_links_target_id"), ["target_id"], unique=False
        )

    op.create_table(
        "object_files",
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("file_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["archive_files.id"],
            name=op.f("fk_object_files_file_id_archive_files"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["metadata_objects.id"],
            name=op.f("fk_object_files_object_id_metadata_objects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("object_id", "file_id", name=op.f("pk_object_files")),
    )
    with op.batch_alter_table("object_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_object_files_file_id"), ["file_id"], unique=False)

    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("submitter", sa.String(length=255), nullable=False),
        sa.Column("filename", sa.String(length=1024), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "completed",
                "cancelled",
                name="upload_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("declared_sha256", sa.String(length=64), nullable=True),
        sa.Column("file_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["archive_files.id"],
            name=op.f("fk_upload_sessions_file_id_archive_files"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_sessions")),
    )
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_upload_sessions_submitter"), ["submitter"], unique=False
        )

    op.create_table(
        "upload_parts",
        sa.Column("upload_id", sa.String(length=36), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["upload_sessions.id"],
            name=op.f("fk_upload_parts_upload_id_upload_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", "offset", name=op.f("pk_upload_parts")),
    )
    with op.batch_alter_table("archive_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archive_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("backup_path", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("archive_files", schema=None) as batch_op:
        batch_op.drop_column("backup_path")
        batch_op.drop_column("archive_key")

    op.drop_table("upload_parts")
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upload_sessions_submitter"))

    op.drop_table("upload_sessions")
    with op.batch_alter_table("object_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_object_files_file_id"))

    op.drop_table("object_files")
    with op.batch_alter_table("metadata_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_metadata_links_target_id"))

    op.drop_table("metadata_links")
    op.drop_table("metadata_objects")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_queue_state_available")

    op.drop_table("jobs")
    op.drop_table("accession_counters")
