"""The access log (``auditoria``): who did what, from where; written by authentication, the
console and maintenance commands, kept by retention for at least 90 days.
"""

from datetime import datetime

from sqlalchemy.orm import Session

from gateway.storage.models import Auditoria

ANONIMO = "anonimo"


def auditar(session: Session, quem: str | None, acao: str, detalhe: str | None = None,
            endereco: str | None = None, now: datetime | None = None) -> Auditoria:
    """Add an access-log row (flushed with the session; the caller commits)."""
    row = Auditoria(quem=(quem or ANONIMO)[:100], acao=acao, detalhe=detalhe, endereco=endereco)
    if now is not None:
        row.em = now
    session.add(row)
    return row
