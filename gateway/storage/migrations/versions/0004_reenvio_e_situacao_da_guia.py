"""Resubmission of a refused lote under its number; what became of each guide.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

``lote``: the unique key moves from ``numero_lote`` to ``numero_vigente`` (the number while the lote
is accepted or in process; cleared when the operator refuses it whole), and ``reenvio_de_id``
links a resent lote to the refused one. SQLite rebuilds ``lote`` for the constraint (batch mode):
one row per lote, small beside ``mensagem`` and ``guia``. ``guia.situacao`` is a plain
``ADD COLUMN`` (aceita, recusada, cancelada).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lote") as batch:
        batch.add_column(sa.Column("numero_vigente", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("reenvio_de_id", BigId, nullable=True))
        batch.drop_constraint("uq_lote_prestador_id_registro_ans_numero_lote", type_="unique")
        batch.create_foreign_key("fk_lote_reenvio_de_id_lote", "lote", ["reenvio_de_id"], ["id"])
    op.execute("UPDATE lote SET numero_vigente = numero_lote")
    with op.batch_alter_table("lote") as batch:
        batch.create_unique_constraint("uq_lote_prestador_id_registro_ans_numero_vigente",
                                       ["prestador_id", "registro_ans", "numero_vigente"])
        batch.create_index("ix_lote_prestador_id_registro_ans_numero_lote",
                           ["prestador_id", "registro_ans", "numero_lote"], unique=False)
    op.create_index(op.f("ix_lote_reenvio_de_id"), "lote", ["reenvio_de_id"], unique=False)
    # The console finds refused guides and lotes refused in full by these.
    op.create_index(op.f("ix_critica_guia_id"), "critica", ["guia_id"], unique=False)
    op.create_index(op.f("ix_protocolo_status"), "protocolo", ["status"], unique=False)
    op.add_column("guia", sa.Column("situacao", sa.String(length=10), server_default=sa.text("'aceita'"),
                                    nullable=False))


def downgrade() -> None:
    op.drop_column("guia", "situacao")
    op.drop_index(op.f("ix_protocolo_status"), table_name="protocolo")
    op.drop_index(op.f("ix_critica_guia_id"), table_name="critica")
    op.drop_index(op.f("ix_lote_reenvio_de_id"), table_name="lote")
    with op.batch_alter_table("lote") as batch:
        batch.drop_index("ix_lote_prestador_id_registro_ans_numero_lote")
        batch.drop_constraint("uq_lote_prestador_id_registro_ans_numero_vigente", type_="unique")
        batch.drop_constraint("fk_lote_reenvio_de_id_lote", type_="foreignkey")
        batch.drop_column("reenvio_de_id")
        batch.drop_column("numero_vigente")
        batch.create_unique_constraint("uq_lote_prestador_id_registro_ans_numero_lote",
                                       ["prestador_id", "registro_ans", "numero_lote"])
