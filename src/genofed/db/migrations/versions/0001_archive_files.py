"""Archive files and their event history: the start of the node archive.

Revision ID: 0001_archive_files
Revises:
Create Date: 2026-11-24

Frozen: the states are spelled out here rather than imported from the models, because this
revision must create the same schema whatever the code later becomes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_archive_files"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = (
    "registered",
    "uploaded",
    "submitted",
    "ingested",
    "archived",
    "verified",
    "backed_up",
    "ready",
    "error",
    "disabled",
)
STATE_CHECK = "state IN ({})".format(", ".join(f"'{state}'" for state in STATES))


def upgrade() -> None:
    op.create_table(
        "archive_files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=True),
        sa.Column("submitter", sa.String(length=255), nullable=False),
        sa.Column("inbox_path", sa.String(length=1024), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("header", sa.LargeBinary(), nullable=True),
        sa.Column("archive_path", sa.String(length=1024), nullable=True),
        sa.Column("archive_size", sa.BigInteger(), nullable=True),
        sa.Column("decrypted_size", sa.BigInteger(), nullable=True),
        sa.Column("upload_sha256", sa.String(length=64), nullable=True),
        sa.Column("archive_sha256", sa.String(length=64), nullable=True),
        sa.Column("decrypted_sha256", sa.String(length=64), nullable=True),
        sa.Column("decrypted_md5", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_files")),
        sa.UniqueConstraint("accession", name=op.f("uq_archive_files_accession")),
        sa.CheckConstraint(STATE_CHECK, name=op.f("ck_archive_files_file_state")),
    )
    op.create_table(
        "file_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_events")),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["archive_files.id"],
            name=op.f("fk_file_events_file_id_archive_files"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(STATE_CHECK, name=op.f("ck_file_events_file_state")),
    )
    op.create_index(op.f("ix_file_events_file_id"), "file_events", ["file_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_file_events_file_id"), table_name="file_events")
    op.drop_table("file_events")
    op.drop_table("archive_files")
