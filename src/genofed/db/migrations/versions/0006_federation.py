"""Federation: a node's link to its hub and what it published there; the hub's registry of
nodes and its catalogue of their datasets; nonces of signed calls (both sides).

Revision ID: 0006_federation
Revises: 0005_beacon
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_federation"
down_revision: str | None = "0005_beacon"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "federation_links",
        sa.Column("hub_url", sa.String(length=512), nullable=False),
        sa.Column("hub_id", sa.String(length=255), nullable=False),
        sa.Column("hub_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("hub_url", name=op.f("pk_federation_links")),
    )
    op.create_table(
        "federation_nonces",
        sa.Column("keyid", sa.String(length=255), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("keyid", "nonce", name=op.f("pk_federation_nonces")),
    )
    with op.batch_alter_table("federation_nonces", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_federation_nonces_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "hub_nodes",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                name="hub_node_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("signing_key", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=1024), nullable=False),
        sa.Column("jwks", sa.JSON(), nullable=False),
        sa.Column("crypt4gh_key", sa.Text(), nullable=False),
        sa.Column("service_info", sa.JSON(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(length=255), nullable=True),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_nodes")),
    )
    op.create_table(
        "federation_publications",
        sa.Column("hub_url", sa.String(length=512), nullable=False),
        sa.Column("dataset_accession", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hub_url"],
            ["federation_links.hub_url"],
            name=op.f("fk_federation_publications_hub_url_federation_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "hub_url", "dataset_accession", name=op.f("pk_federation_publications")
        ),
    )
    op.create_table(
        "hub_datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["hub_nodes.id"],
            name=op.f("fk_hub_datasets_node_id_hub_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_datasets")),
        sa.UniqueConstraint("node_id", "accession", name=op.f("uq_hub_datasets_node_id")),
    )
    with op.batch_alter_table("hub_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hub_datasets_seq"), ["seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hub_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hub_datasets_seq"))

    op.drop_table("hub_datasets")
    op.drop_table("federation_publications")
    op.drop_table("hub_nodes")
    with op.batch_alter_table("federation_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_federation_nonces_expires_at"))

    op.drop_table("federation_nonces")
    op.drop_table("federation_links")
