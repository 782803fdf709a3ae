"""Deliveries that go as upload files (the operator's ``canal = "arquivo"``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09

``arquivo``: one row per delivery prepared as a mensagemTISS file for a person to upload in the
operator's portal (gateway.delivery.arquivo): its name by the TISS rule, the message holding its
bytes, when it was written to the drop folder and when the portal's protocol was recorded. A new
table: no existing table changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "arquivo",
        sa.Column("id", BigId, nullable=False),
        sa.Column("entrega_id", BigId, nullable=False),
        sa.Column("lote_id", BigId, nullable=True),
        sa.Column("mensagem_id", BigId, nullable=False),
        sa.Column("nome", sa.String(length=60), nullable=False),
        sa.Column("criado_em", sa.DateTime(timezone=True), nullable=False),
        sa.Column("na_pasta_em", sa.DateTime(timezone=True), nullable=True),
        sa.Column("protocolo_em", sa.DateTime(timezone=True), nullable=True),
        sa.Column("protocolo_por", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["entrega_id"], ["entrega.id"], name=op.f("fk_arquivo_entrega_id_entrega")),
        sa.ForeignKeyConstraint(["lote_id"], ["lote.id"], name=op.f("fk_arquivo_lote_id_lote")),
        sa.ForeignKeyConstraint(["mensagem_id"], ["mensagem.id"],
                                name=op.f("fk_arquivo_mensagem_id_mensagem")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_arquivo")),
        sa.UniqueConstraint("entrega_id", name=op.f("uq_arquivo_entrega_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_arquivo_lote_id"), "arquivo", ["lote_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_arquivo_lote_id"), table_name="arquivo")
    op.drop_table("arquivo")
