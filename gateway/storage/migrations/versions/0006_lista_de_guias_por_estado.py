"""A protocol's state version; the guide list of its situação answer kept once per state.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

``protocolo.versao`` is bumped by every change to what a lote's situação answer lists (a plain
``ADD COLUMN``, 0 for the protocols there are). ``guias_da_situacao`` keeps the rendered guide list
per (protocolo, versao, Padrao); ``resposta_situacao`` names the list a stored answer was cut from
(gateway.storage.kept_lists). Answers stored before keep their whole bodies.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("protocolo", sa.Column("versao", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.create_table(
        "guias_da_situacao",
        sa.Column("id", BigId, nullable=False),
        sa.Column("protocolo_id", BigId, nullable=False),
        sa.Column("versao", sa.Integer(), nullable=False),
        sa.Column("padrao", sa.String(length=8), nullable=False),
        sa.Column("lista", sa.Text(), nullable=False),
        sa.Column("folhas", sa.Text(), nullable=False),
        sa.Column("valor_processado", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("valor_glosa", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("valor_liberado", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("criada_em", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["protocolo_id"], ["protocolo.id"],
                                name=op.f("fk_guias_da_situacao_protocolo_id_protocolo")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guias_da_situacao")),
        sa.UniqueConstraint("protocolo_id", "versao", "padrao",
                            name=op.f("uq_guias_da_situacao_protocolo_id_versao_padrao")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "resposta_situacao",
        sa.Column("mensagem_id", BigId, nullable=False),
        sa.Column("guias_id", BigId, nullable=False),
        sa.Column("codificacao", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["guias_id"], ["guias_da_situacao.id"],
                                name=op.f("fk_resposta_situacao_guias_id_guias_da_situacao")),
        sa.ForeignKeyConstraint(["mensagem_id"], ["mensagem.id"],
                                name=op.f("fk_resposta_situacao_mensagem_id_mensagem")),
        sa.PrimaryKeyConstraint("mensagem_id", name=op.f("pk_resposta_situacao")),
    )
    op.create_index(op.f("ix_resposta_situacao_guias_id"), "resposta_situacao", ["guias_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_resposta_situacao_guias_id"), table_name="resposta_situacao")
    op.drop_table("resposta_situacao")
    op.drop_table("guias_da_situacao")
    op.drop_column("protocolo", "versao")
