"""An operator's organism may come with its clade tree (a clades TSV), kept with it.

Revision ID: 0009_pathogen_clades
Revises: 0008_pathogen_hub
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_pathogen_clades"
down_revision: str | None = "0008_pathogen_hub"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("pathogen_organisms", sa.Column("clades_tsv", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("pathogen_organisms", "clades_tsv")
