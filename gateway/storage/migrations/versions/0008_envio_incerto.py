"""Deliveries whose send has an unknown outcome.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

``entrega.incerto`` says why an earlier send of the delivery may have reached the operator without
the gateway recording its answer (its worker died, was stopped or lost its lease mid-send): NULL
for every delivery there is (gateway.delivery.leases).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("entrega", sa.Column("incerto", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entrega") as batch:
        batch.drop_column("incerto")
