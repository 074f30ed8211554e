"""Pathogen records replicated to the hub: the newest version of each node's released record
(revoked ones flagged) with its packed sequence, and per node the cursor of its changes held.

Revision ID: 0008_pathogen_hub
Revises: 0007_pathogen
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_pathogen_hub"
down_revision: str | None = "0007_pathogen"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_pathogen_cursors",
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["hub_nodes.id"],
            name=op.f("fk_hub_pathogen_cursors_node_id_hub_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_hub_pathogen_cursors")),
    )
    op.create_table(
        "hub_pathogen_records",
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("organism", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("sequence", sa.LargeBinary(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["hub_nodes.id"],
            name=op.f("fk_hub_pathogen_records_node_id_hub_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("accession", name=op.f("pk_hub_pathogen_records")),
    )
    with op.batch_alter_table("hub_pathogen_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hub_pathogen_records_node_id"), ["node_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_hub_pathogen_records_seq"), ["seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hub_pathogen_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hub_pathogen_records_seq"))
        batch_op.drop_index(batch_op.f("ix_hub_pathogen_records_node_id"))

    op.drop_table("hub_pathogen_records")
    op.drop_table("hub_pathogen_cursors")
