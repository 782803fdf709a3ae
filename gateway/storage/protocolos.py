"""Protocol numbers: 12 characters, unique, increasing, never reused.

The number is the row id zero-padded to 12 digits. The id comes from SQLite ``AUTOINCREMENT``
(never hands out an id used before, even after deletes) or a PostgreSQL sequence (non-transactional:
a rolled-back allocation leaves a gap, never a duplicate), so concurrent writers cannot collide.
The row is inserted with a placeholder that cannot look like a number (it starts with ``~``), then
the number is written in the same transaction: other transactions never see the placeholder.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from gateway.message.tables import RECEBIDO, SITUACOES_PROTOCOLO
from gateway.storage.models import (
    PROTOCOLO_STATUS_TABLE,
    PROTOCOLO_TABLE,
    TIPOS_PROTOCOLO,
    Protocolo,
    ProtocoloStatus,
    utcnow,
)
from gateway.storage.prepared import Db, Prepared, connection_of

NUMERO_DIGITS = 12
NUMERO_MAX = 10**NUMERO_DIGITS - 1


def numero_for(protocolo_id: int) -> str:
    if not 0 < protocolo_id <= NUMERO_MAX:
        raise OverflowError(f"id de protocolo fora da faixa de {NUMERO_DIGITS} dígitos: {protocolo_id}")
    return f"{protocolo_id:0{NUMERO_DIGITS}d}"


_TABLE, _HISTORICO_TABLE = PROTOCOLO_TABLE, PROTOCOLO_STATUS_TABLE
_INSERT = _TABLE.insert().returning(_TABLE.c.id)
_NUMERO = _TABLE.update().where(_TABLE.c.id == bindparam("protocolo_id")).values(numero=bindparam("numero"))
_HISTORICO = _HISTORICO_TABLE.insert()
# On the driver's cursor (gateway.storage.prepared): these run on every message accepted.
_FAST_INSERT = Prepared(_INSERT, ("numero", "tipo", "prestador_id", "registro_ans", "status", "criado_em",
                                  "atualizado_em"))
_FAST_NUMERO = Prepared(_NUMERO)
_FAST_HISTORICO = Prepared(_HISTORICO, ("protocolo_id", "status", "em", "origem"))


def insert_protocolo(session: Db, *, tipo: str, prestador_id: int, registro_ans: str,
                     origem: str = "gateway", now: datetime | None = None) -> tuple[int, str]:
    """Create a protocol (status 1 Recebido, recorded in the history); returns (id, numero).

    Three Core statements, no ORM objects: this runs on every accepted message. Does not commit:
    the protocol belongs to the caller's transaction (a rollback discards it; its id is then
    skipped, never reused).
    """
    if tipo not in TIPOS_PROTOCOLO:
        raise ValueError(f"tipo de protocolo desconhecido: {tipo!r} (esperado um de {TIPOS_PROTOCOLO})")
    now = now or utcnow()
    connection = connection_of(session)
    protocolo_id = _FAST_INSERT.scalar(connection, dict(
        numero="~" + secrets.token_hex(5), tipo=tipo, prestador_id=prestador_id,
        registro_ans=registro_ans, status=RECEBIDO, criado_em=now, atualizado_em=now,
    ))
    numero = numero_for(protocolo_id)
    _FAST_NUMERO.execute(connection, {"protocolo_id": protocolo_id, "numero": numero}).close()
    _FAST_HISTORICO.executemany(connection, [dict(protocolo_id=protocolo_id, status=RECEBIDO, em=now,
                                                  origem=origem)])
    return protocolo_id, numero


def new_protocolo(session: Session, *, tipo: str, prestador_id: int, registro_ans: str,
                  origem: str = "gateway", now: datetime | None = None) -> Protocolo:
    """:func:`insert_protocolo`, returning the ORM object."""
    protocolo_id, _numero = insert_protocolo(session, tipo=tipo, prestador_id=prestador_id,
                                             registro_ans=registro_ans, origem=origem, now=now)
    return session.get_one(Protocolo, protocolo_id)


def set_status(session: Session, protocolo: Protocolo, status: int, origem: str,
               now: datetime | None = None) -> ProtocoloStatus:
    """Change a protocol's dm_statusProtocolo and append it to the history (flushes, no commit)."""
    if status not in SITUACOES_PROTOCOLO:
        raise ValueError(f"status de protocolo inválido: {status!r} (dm_statusProtocolo 1-10, ou "
                         "RECUSADO_PELA_OPERADORA)")
    now = now or utcnow()
    protocolo.status = status
    protocolo.atualizado_em = now
    entry = ProtocoloStatus(status=status, em=now, origem=origem)
    protocolo.historico.append(entry)
    session.flush()
    return entry
