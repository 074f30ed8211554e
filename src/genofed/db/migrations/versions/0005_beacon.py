"""Beacon: per-dataset variant index (sources, samples, alleles with carrier bitmaps), genes,
the privacy guard's dataset settings, budgets and answered queries.

Revision ID: 0005_beacon
Revises: 0004_access
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_beacon"
down_revision: str | None = "0004_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "beacon_alleles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dataset_accession", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.String(length=36), nullable=False),
        sa.Column("assembly", sa.String(length=16), nullable=False),
        sa.Column("chrom", sa.String(length=32), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("alt", sa.Text(), nullable=False),
        sa.Column("variant_type", sa.String(length=16), nullable=False),
        sa.Column("ac", sa.Integer(), nullable=False),
        sa.Column("an", sa.Integer(), nullable=False),
        sa.Column("hom", sa.Integer(), nullable=False),
        sa.Column("carriers", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_beacon_alleles")),
    )
    with op.batch_alter_table("beacon_alleles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_beacon_alleles_file_id"), ["file_id"], unique=False)
        batch_op.create_index(
            "ix_beacon_alleles_position",
            ["dataset_accession", "assembly", "chrom", "start"],
            unique=False,
        )

    op.create_table(
        "beacon_answered",
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("dataset_accession", sa.String(length=64), nullable=False),
        sa.Column("query_digest", sa.String(length=64), nullable=False),
        sa.Column("cost_bits", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "subject", "dataset_accession", "query_digest", name=op.f("pk_beacon_answered")
        ),
    )
    op.create_table(
        "beacon_budgets",
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("dataset_accession", sa.String(length=64), nullable=False),
        sa.Column("spent_bits", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", "dataset_accession", name=op.f("pk_beacon_budgets")),
    )
    op.create_table(
        "beacon_datasets",
        sa.Column("dataset_accession", sa.String(length=64), nullable=False),
        sa.Column("security_level", sa.String(length=16), nullable=False),
        sa.Column("min_count", sa.Integer(), nullable=False),
        sa.Column("budget_bits", sa.Float(), nullable=False),
        sa.Column("guard_enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_accession", name=op.f("pk_beacon_datasets")),
    )
    op.create_table(
        "beacon_genes",
        sa.Column("assembly", sa.String(length=16), nullable=False),
        sa.Column("gene_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("chrom", sa.String(length=32), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("assembly", "gene_id", name=op.f("pk_beacon_genes")),
    )
    with op.batch_alter_table("beacon_genes", schema=None) as batch_op:
        batch_op.create_index("ix_beacon_genes_symbol", ["assembly", "symbol"], unique=False)

    op.create_table(
        "beacon_samples",
        sa.Column("dataset_accession", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("file_id", sa.String(length=36), nullable=False),
        sa.Column("vcf_name", sa.String(length=255), nullable=False),
        sa.Column("sample_accession", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("dataset_accession", "number", name=op.f("pk_beacon_samples")),
    )
    with op.batch_alter_table("beacon_samples", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_beacon_samples_sample_accession"), ["sample_accession"], unique=False
        )

    op.create_table(
        "beacon_sources",
        sa.Column("dataset_accession", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.String(length=36), nullable=False),
        sa.Column("analysis_accession", sa.String(length=64), nullable=True),
        sa.Column("assembly", sa.String(length=16), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("alleles", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_accession", "file_id", name=op.f("pk_beacon_sources")),
    )


def downgrade() -> None:
    op.drop_table("beacon_sources")
    with op.batch_alter_table("beacon_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_beacon_samples_sample_accession"))

    op.drop_table("beacon_samples")
    with op.batch_alter_table("beacon_genes", schema=None) as batch_op:
        batch_op.drop_index("ix_beacon_genes_symbol")

    op.drop_table("beacon_genes")
    op.drop_table("beacon_datasets")
    op.drop_table("beacon_budgets")
    op.drop_table("beacon_answered")
    with op.batch_alter_table("beacon_alleles", schema=None) as batch_op:
        batch_op.drop_index("ix_beacon_alleles_position")
        batch_op.drop_index(batch_op.f("ix_beacon_alleles_file_id"))

    op.drop_table("beacon_alleles")
