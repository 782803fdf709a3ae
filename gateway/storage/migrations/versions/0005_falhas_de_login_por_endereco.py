"""Failed logins counted per (login, client address) and per address: ``falha_login``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A lock no longer sits on the account (``prestador``/``usuario`` ``falhas_login``, ``bloqueado_ate``,
which anyone could set by failing five times): it sits on the (login, address) that failed, and
an address that fails many logins is refused for every login for a while (gateway.tentativas).
The old per-account counters and locks are cleared here; their columns stay, unused.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "falha_login",
        sa.Column("id", BigId, nullable=False),
        sa.Column("escopo", sa.String(length=10), nullable=False),
        sa.Column("login", sa.String(length=60), nullable=False),
        sa.Column("endereco", sa.String(length=45), nullable=False),
        sa.Column("falhas", sa.Integer(), nullable=False),
        sa.Column("desde", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bloqueado_ate", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("escopo IN ('prestador', 'console')", name=op.f("ck_falha_login_escopo")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_falha_login")),
        sa.UniqueConstraint("escopo", "endereco", "login", name=op.f("uq_falha_login_escopo_endereco_login")),
    )
    op.create_index(op.f("ix_falha_login_desde"), "falha_login", ["desde"], unique=False)
    op.execute("UPDATE prestador SET falhas_login = 0, bloqueado_ate = NULL")
    op.execute("UPDATE usuario SET falhas_login = 0, bloqueado_ate = NULL")


def downgrade() -> None:
    op.drop_index(op.f("ix_falha_login_desde"), table_name="falha_login")
    op.drop_table("falha_login")
