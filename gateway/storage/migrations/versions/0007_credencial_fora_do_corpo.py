"""No credential at rest: stored bodies without senhaPrestador, the delivery's senha sealed.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-12

``mensagem.sha256_original`` and ``tamanho_original``: the SHA-256 and length of a message as
received or sent, set when its ``senhaPrestador`` was masked before storing it
(gateway.message.credencial), so an audit still shows it was intact. ``entrega.senha_cifrada``:
the senha a delivery sends, sealed with a key kept outside the database (gateway.security.vault),
emptied once the delivery needs it no more. Plain ``ADD COLUMN``s; rows stored before keep their
bodies as they were.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("mensagem", sa.Column("sha256_original", sa.String(length=64), nullable=True))
    op.add_column("mensagem", sa.Column("tamanho_original", sa.Integer(), nullable=True))
    op.add_column("entrega", sa.Column("senha_cifrada", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("entrega", "senha_cifrada")
    op.drop_column("mensagem", "tamanho_original")
    op.drop_column("mensagem", "sha256_original")
