"""Pathogen records: operators' organisms, submission batches, entries (one row per
accession version) with their state history, data-use terms accepted, citable snapshot sets.

Revision ID: 0007_pathogen
Revises: 0006_federation
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_pathogen"
down_revision: str | None = "0006_federation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pathogen_organisms",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("reference_fasta", sa.Text(), nullable=False),
        sa.Column("annotation_gff3", sa.Text(), nullable=False),
        sa.Column("earliest_date", sa.Date(), nullable=False),
        sa.Column("required", sa.JSON(), nullable=False),
        sa.Column("optional", sa.JSON(), nullable=False),
        sa.Column("added_by", sa.String(length=255), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pathogen_organisms")),
    )
    op.create_table(
        "pathogen_snapshots",
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("acknowledgements", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identifier", name=op.f("pk_pathogen_snapshots")),
    )
    op.create_table(
        "pathogen_submissions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("submitter", sa.String(length=255), nullable=False),
        sa.Column("organism", sa.String(length=64), nullable=False),
        sa.Column("fasta_name", sa.String(length=1024), nullable=False),
        sa.Column("sheet_name", sa.String(length=1024), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pathogen_submissions")),
    )
    with op.batch_alter_table("pathogen_submissions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pathogen_submissions_submitter"), ["submitter"], unique=False
        )

    op.create_table(
        "pathogen_terms_acceptances",
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("terms", sa.String(length=16), nullable=False),
        sa.Column("terms_version", sa.String(length=32), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", "terms", name=op.f("pk_pathogen_terms_acceptances")),
    )
    op.create_table(
        "pathogen_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("organism", sa.String(length=64), nullable=False),
        sa.Column("submitter", sa.String(length=255), nullable=False),
        sa.Column("sequence_id", sa.String(length=255), nullable=False),
        sa.Column("virus_name", sa.String(length=255), nullable=False),
        sa.Column("sheet_metadata", sa.JSON(), nullable=False),
        sa.Column("sequence", sa.LargeBinary(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "received",
                "processing",
                "processed",
                "approved",
                "released",
                "rejected",
                "revoked",
                name="pathogen_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("analysis", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("data_use_terms", sa.String(length=16), nullable=False),
        sa.Column("restricted_until", sa.Date(), nullable=True),
        sa.Column("host_sample", sa.String(length=64), nullable=True),
        sa.Column("host_dataset", sa.String(length=64), nullable=True),
        sa.Column("change_seq", sa.BigInteger(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["pathogen_submissions.id"],
            name=op.f("fk_pathogen_entries_submission_id_pathogen_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pathogen_entries")),
        sa.UniqueConstraint("accession", "version", name=op.f("uq_pathogen_entries_accession")),
    )
    with op.batch_alter_table("pathogen_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pathogen_entries_accession"), ["accession"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pathogen_entries_change_seq"), ["change_seq"], unique=False
        )
        batch_op.create_index(
            "ix_pathogen_entries_state_organism", ["state", "organism"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pathogen_entries_submission_id"), ["submission_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pathogen_entries_submitter"), ["submitter"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pathogen_entries_virus_name"), ["virus_name"], unique=False
        )

    op.create_table(
        "pathogen_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "received",
                "processing",
                "processed",
                "approved",
                "released",
                "rejected",
                "revoked",
                name="pathogen_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["pathogen_entries.id"],
            name=op.f("fk_pathogen_events_entry_id_pathogen_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pathogen_events")),
    )
    with op.batch_alter_table("pathogen_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pathogen_events_entry_id"), ["entry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pathogen_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pathogen_events_entry_id"))

    op.drop_table("pathogen_events")
    with op.batch_alter_table("pathogen_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pathogen_entries_virus_name"))
        batch_op.drop_index(batch_op.f("ix_pathogen_entries_submitter"))
        batch_op.drop_index(batch_op.f("ix_pathogen_entries_submission_id"))
        batch_op.drop_index("ix_pathogen_entries_state_organism")
        batch_op.drop_index(batch_op.f("ix_pathogen_entries_change_seq"))
        batch_op.drop_index(batch_op.f("ix_pathogen_entries_accession"))

    op.drop_table("pathogen_entries")
    op.drop_table("pathogen_terms_acceptances")
    with op.batch_alter_table("pathogen_submissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pathogen_submissions_submitter"))

    op.drop_table("pathogen_submissions")
    op.drop_table("pathogen_snapshots")
    op.drop_table("pathogen_organisms")
