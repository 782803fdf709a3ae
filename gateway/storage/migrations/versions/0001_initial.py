"""Initial schema: prestadores, mensagens, transações, lotes/guias, protocolos, críticas, auditoria.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Written by autogenerate against gateway/storage/models.py, then reviewed: timestamps are plain
``DateTime(timezone=True)`` here (models.UtcDateTime is a Python-side wrapper around it), and keys
are BIGINT on PostgreSQL but INTEGER on SQLite (only ``INTEGER PRIMARY KEY`` autoincrements there).
Works on SQLite and PostgreSQL; later revisions that alter tables must use ``op.batch_alter_table``
(env.py renders batch operations on SQLite).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auditoria",
        sa.Column("id", BigId, nullable=False),
        sa.Column("em", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quem", sa.String(length=100), nullable=False),
        sa.Column("acao", sa.String(length=40), nullable=False),
        sa.Column("detalhe", sa.Text(), nullable=True),
        sa.Column("endereco", sa.String(length=45), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auditoria")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_auditoria_em"), "auditoria", ["em"], unique=False)
    op.create_index(op.f("ix_auditoria_quem"), "auditoria", ["quem"], unique=False)
    op.create_table(
        "prestador",
        sa.Column("id", BigId, nullable=False),
        sa.Column("documento", sa.String(length=14), nullable=False),
        sa.Column("tipo_documento", sa.String(length=4), nullable=False),
        sa.Column("nome", sa.String(length=150), nullable=False),
        sa.Column("login", sa.String(length=20), nullable=False),
        sa.Column("senha_hash", sa.String(length=200), nullable=True),
        sa.Column("ativo", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("falhas_login", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("bloqueado_ate", sa.DateTime(timezone=True), nullable=True),
        sa.Column("criado_em", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("tipo_documento IN ('CNPJ', 'CPF')", name=op.f("ck_prestador_tipo_documento")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prestador")),
        sa.UniqueConstraint("documento", name=op.f("uq_prestador_documento")),
        sa.UniqueConstraint("login", name=op.f("uq_prestador_login")),
    )
    op.create_table(
        "mensagem",
        sa.Column("id", BigId, nullable=False),
        sa.Column("direcao", sa.String(length=7), nullable=False),
        sa.Column("servico", sa.String(length=60), nullable=True),
        sa.Column("versao", sa.String(length=8), nullable=True),
        sa.Column("tipo_transacao", sa.String(length=60), nullable=True),
        sa.Column("sequencial_transacao", sa.String(length=20), nullable=True),
        sa.Column("hash", sa.String(length=32), nullable=True),
        sa.Column("tamanho", sa.Integer(), nullable=False),
        sa.Column("corpo", sa.LargeBinary(), nullable=False),
        sa.Column("remetente", sa.String(length=20), nullable=True),
        sa.Column("destinatario", sa.String(length=20), nullable=True),
        sa.Column("prestador_id", BigId, nullable=True),
        sa.Column("resultado", sa.String(length=10), nullable=True),
        sa.Column("codigo_erro", sa.String(length=40), nullable=True),
        sa.Column("endereco", sa.String(length=45), nullable=True),
        sa.Column("resposta_de_id", BigId, nullable=True),
        sa.Column("criada_em", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("direcao IN ('entrada', 'saida')", name=op.f("ck_mensagem_direcao")),
        sa.ForeignKeyConstraint(
            ["prestador_id"], ["prestador.id"], name=op.f("fk_mensagem_prestador_id_prestador")
        ),
        sa.ForeignKeyConstraint(
            ["resposta_de_id"], ["mensagem.id"], name=op.f("fk_mensagem_resposta_de_id_mensagem")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mensagem")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_mensagem_criada_em"), "mensagem", ["criada_em"], unique=False)
    op.create_index(
        op.f("ix_mensagem_prestador_id_criada_em"), "mensagem", ["prestador_id", "criada_em"], unique=False
    )
    op.create_index(op.f("ix_mensagem_resposta_de_id"), "mensagem", ["resposta_de_id"], unique=False)
    op.create_table(
        "prestador_codigo",
        sa.Column("id", BigId, nullable=False),
        sa.Column("prestador_id", BigId, nullable=False),
        sa.Column("registro_ans", sa.String(length=6), nullable=False),
        sa.Column("codigo_na_operadora", sa.String(length=14), nullable=False),
        sa.ForeignKeyConstraint(
            ["prestador_id"],
            ["prestador.id"],
            name=op.f("fk_prestador_codigo_prestador_id_prestador"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prestador_codigo")),
        sa.UniqueConstraint(
            "prestador_id", "registro_ans", name=op.f("uq_prestador_codigo_prestador_id_registro_ans")
        ),
        sa.UniqueConstraint(
            "registro_ans",
            "codigo_na_operadora",
            name=op.f("uq_prestador_codigo_registro_ans_codigo_na_operadora"),
        ),
    )
    op.create_table(
        "protocolo",
        sa.Column("id", BigId, nullable=False),
        sa.Column("numero", sa.String(length=12), nullable=False),
        sa.Column("tipo", sa.String(length=12), nullable=False),
        sa.Column("prestador_id", BigId, nullable=False),
        sa.Column("registro_ans", sa.String(length=6), nullable=False),
        sa.Column("status", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("numero_operadora", sa.String(length=40), nullable=True),
        sa.Column("criado_em", sa.DateTime(timezone=True), nullable=False),
        sa.Column("atualizado_em", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prestador_id"], ["prestador.id"], name=op.f("fk_protocolo_prestador_id_prestador")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocolo")),
        sa.UniqueConstraint("numero", name=op.f("uq_protocolo_numero")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_protocolo_prestador_id_numero"), "protocolo", ["prestador_id", "numero"], unique=False
    )
    op.create_table(
        "lote",
        sa.Column("id", BigId, nullable=False),
        sa.Column("prestador_id", BigId, nullable=False),
        sa.Column("registro_ans", sa.String(length=6), nullable=False),
        sa.Column("numero_lote", sa.String(length=20), nullable=False),
        sa.Column("tipo_guia", sa.String(length=40), nullable=False),
        sa.Column("quantidade_guias", sa.Integer(), nullable=False),
        sa.Column("valor_informado", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("hash", sa.String(length=32), nullable=True),
        sa.Column("mensagem_id", BigId, nullable=True),
        sa.Column("protocolo_id", BigId, nullable=True),
        sa.Column("criado_em", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["mensagem_id"], ["mensagem.id"], name=op.f("fk_lote_mensagem_id_mensagem")),
        sa.ForeignKeyConstraint(
            ["prestador_id"], ["prestador.id"], name=op.f("fk_lote_prestador_id_prestador")
        ),
        sa.ForeignKeyConstraint(
            ["protocolo_id"], ["protocolo.id"], name=op.f("fk_lote_protocolo_id_protocolo")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lote")),
        sa.UniqueConstraint(
            "prestador_id",
            "registro_ans",
            "numero_lote",
            name=op.f("uq_lote_prestador_id_registro_ans_numero_lote"),
        ),
    )
    op.create_index(op.f("ix_lote_protocolo_id"), "lote", ["protocolo_id"], unique=False)
    op.create_table(
        "protocolo_status",
        sa.Column("id", BigId, nullable=False),
        sa.Column("protocolo_id", BigId, nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("em", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origem", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["protocolo_id"],
            ["protocolo.id"],
            name=op.f("fk_protocolo_status_protocolo_id_protocolo"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocolo_status")),
    )
    op.create_index(
        op.f("ix_protocolo_status_protocolo_id"), "protocolo_status", ["protocolo_id"], unique=False
    )
    op.create_table(
        "transacao",
        sa.Column("id", BigId, nullable=False),
        sa.Column("prestador_id", BigId, nullable=False),
        sa.Column("tipo_transacao", sa.String(length=60), nullable=False),
        sa.Column("sequencial_transacao", sa.String(length=20), nullable=False),
        sa.Column("hash", sa.String(length=32), nullable=True),
        sa.Column("requisicao_id", BigId, nullable=False),
        sa.Column("resposta_id", BigId, nullable=True),
        sa.Column("criada_em", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prestador_id"], ["prestador.id"], name=op.f("fk_transacao_prestador_id_prestador")
        ),
        sa.ForeignKeyConstraint(
            ["requisicao_id"], ["mensagem.id"], name=op.f("fk_transacao_requisicao_id_mensagem")
        ),
        sa.ForeignKeyConstraint(
            ["resposta_id"], ["mensagem.id"], name=op.f("fk_transacao_resposta_id_mensagem")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transacao")),
        sa.UniqueConstraint(
            "prestador_id",
            "tipo_transacao",
            "sequencial_transacao",
            name=op.f("uq_transacao_prestador_id_tipo_transacao_sequencial_transacao"),
        ),
    )
    op.create_table(
        "guia",
        sa.Column("id", BigId, nullable=False),
        sa.Column("lote_id", BigId, nullable=False),
        sa.Column("numero_guia_prestador", sa.String(length=20), nullable=False),
        sa.Column("numero_guia_operadora", sa.String(length=20), nullable=True),
        sa.Column("tipo", sa.String(length=40), nullable=False),
        sa.Column("numero_carteira", sa.String(length=20), nullable=True),
        sa.Column("valor_informado", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lote_id"], ["lote.id"], name=op.f("fk_guia_lote_id_lote"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guia")),
    )
    op.create_index(op.f("ix_guia_lote_id"), "guia", ["lote_id"], unique=False)
    op.create_table(
        "critica",
        sa.Column("id", BigId, nullable=False),
        sa.Column("mensagem_id", BigId, nullable=True),
        sa.Column("lote_id", BigId, nullable=True),
        sa.Column("guia_id", BigId, nullable=True),
        sa.Column("codigo", sa.String(length=10), nullable=True),
        sa.Column("mensagem", sa.Text(), nullable=False),
        sa.Column("localizacao", sa.Text(), nullable=True),
        sa.Column("linha", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["guia_id"], ["guia.id"], name=op.f("fk_critica_guia_id_guia"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["lote_id"], ["lote.id"], name=op.f("fk_critica_lote_id_lote"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["mensagem_id"], ["mensagem.id"], name=op.f("fk_critica_mensagem_id_mensagem")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_critica")),
    )
    op.create_index(op.f("ix_critica_lote_id"), "critica", ["lote_id"], unique=False)
    op.create_index(op.f("ix_critica_mensagem_id"), "critica", ["mensagem_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_critica_mensagem_id"), table_name="critica")
    op.drop_index(op.f("ix_critica_lote_id"), table_name="critica")
    op.drop_table("critica")
    op.drop_index(op.f("ix_guia_lote_id"), table_name="guia")
    op.drop_table("guia")
    op.drop_table("transacao")
    op.drop_index(op.f("ix_protocolo_status_protocolo_id"), table_name="protocolo_status")
    op.drop_table("protocolo_status")
    op.drop_index(op.f("ix_lote_protocolo_id"), table_name="lote")
    op.drop_table("lote")
    op.drop_index(op.f("ix_protocolo_prestador_id_numero"), table_name="protocolo")
    op.drop_table("protocolo")
    op.drop_table("prestador_codigo")
    op.drop_index(op.f("ix_mensagem_resposta_de_id"), table_name="mensagem")
    op.drop_index(op.f("ix_mensagem_prestador_id_criada_em"), table_name="mensagem")
    op.drop_index(op.f("ix_mensagem_criada_em"), table_name="mensagem")
    op.drop_table("mensagem")
    op.drop_table("prestador")
    op.drop_index(op.f("ix_auditoria_quem"), table_name="auditoria")
    op.drop_index(op.f("ix_auditoria_em"), table_name="auditoria")
    op.drop_table("auditoria")
