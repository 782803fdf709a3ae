"""The reads and writes of the request path, as Core statements.

Every accepted message runs these: a handful of statements per request instead of ORM units of
work (a 100-guide lote was ~60% ORM bookkeeping). The ORM models stay the schema and serve the
commands and tests; nothing here commits — the caller's transaction does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from gateway.message.findings import Finding
from gateway.storage.models import Critica, Guia, Lote, Mensagem, Prestador, Protocolo, Transacao


@dataclass(frozen=True)
class TransacaoAnterior:
    """An earlier request with the same (prestador, tipoTransacao, sequencialTransacao)."""

    hash: str | None
    resposta: bytes | None


@dataclass(frozen=True)
class GuiaGravada:
    numero_guia_prestador: str
    numero_guia_operadora: str | None
    numero_carteira: str | None
    valor_informado: Decimal | None


@dataclass(frozen=True)
class LoteGravado:
    numero_protocolo: str
    status: int
    numero_lote: str
    tipo_guia: str
    valor_informado: Decimal | None
    criado_em: datetime
    guias: list[GuiaGravada]


# Statements are built once: building a select() or insert() costs more than running it here.
_P, _M, _T, _L, _G, _PR = (m.__table__ for m in (Prestador, Mensagem, Transacao, Lote, Guia, Protocolo))  # type: ignore[attr-defined]
_PRESTADOR = select(_P.c.ativo, _P.c.bloqueado_ate).where(_P.c.id == bindparam("id"))
_TRANSACAO = (select(_T.c.hash, _M.c.corpo).select_from(_T.outerjoin(_M, _M.c.id == _T.c.resposta_id))
              .where(_T.c.prestador_id == bindparam("prestador_id"),
                     _T.c.tipo_transacao == bindparam("tipo"),
                     _T.c.sequencial_transacao == bindparam("sequencial")))
_RESPOSTA = _T.update().where(_T.c.id == bindparam("transacao_id")).values(resposta_id=bindparam("resposta"))
_LOTE_EXISTE = select(_L.c.id).where(_L.c.prestador_id == bindparam("prestador_id"),
                                     _L.c.registro_ans == bindparam("registro_ans"),
                                     _L.c.numero_lote == bindparam("numero_lote")).limit(1)
_LOTE_DO_PROTOCOLO = (
    select(_PR.c.numero, _PR.c.status, _L.c.id, _L.c.numero_lote, _L.c.tipo_guia, _L.c.valor_informado,
           _L.c.criado_em)
    .select_from(_PR.join(_L, _L.c.protocolo_id == _PR.c.id))
    .where(_PR.c.numero == bindparam("numero"), _PR.c.prestador_id == bindparam("prestador_id"),
           _PR.c.registro_ans == bindparam("registro_ans")).limit(1))
_GUIAS_DO_LOTE = (select(_G.c.numero_guia_prestador, _G.c.numero_guia_operadora, _G.c.numero_carteira,
                         _G.c.valor_informado).where(_G.c.lote_id == bindparam("lote_id")).order_by(_G.c.id))
_INSERT = {table.name: table.insert().returning(table.c.id) for table in (_M, _T, _L)}


def prestador_liberado(session: Session, prestador_id: int, now: datetime) -> bool:
    """Active and not locked: one indexed read."""
    row = session.connection().execute(_PRESTADOR, {"id": prestador_id}).one_or_none()
    return row is not None and row.ativo and (row.bloqueado_ate is None or row.bloqueado_ate <= now)


def add_mensagem(session: Session, values: Mapping[str, Any]) -> int:
    return _insert(session, _M, values)


def transacao_anterior(session: Session, prestador_id: int, tipo: str,
                       sequencial: str) -> TransacaoAnterior | None:
    row = session.connection().execute(_TRANSACAO, {"prestador_id": prestador_id, "tipo": tipo,
                                                    "sequencial": sequencial}).one_or_none()
    return TransacaoAnterior(row.hash, row.corpo) if row is not None else None


def add_transacao(session: Session, *, prestador_id: int, tipo: str, sequencial: str, hash_: str,
                  requisicao_id: int) -> int:
    """Raises IntegrityError when a concurrent copy of the transaction committed first."""
    return _insert(session, _T, dict(
        prestador_id=prestador_id, tipo_transacao=tipo, sequencial_transacao=sequencial, hash=hash_,
        requisicao_id=requisicao_id))


def set_resposta(session: Session, transacao_id: int, resposta_id: int) -> None:
    session.connection().execute(_RESPOSTA, {"transacao_id": transacao_id, "resposta": resposta_id})


def lote_existe(session: Session, prestador_id: int, registro_ans: str, numero_lote: str) -> bool:
    return session.connection().execute(_LOTE_EXISTE, {
        "prestador_id": prestador_id, "registro_ans": registro_ans, "numero_lote": numero_lote,
    }).first() is not None


def add_lote(session: Session, values: Mapping[str, Any], guias: Sequence[Mapping[str, Any]]) -> int:
    """The lote and its guides (one executemany for the guides)."""
    lote_id = _insert(session, _L, values)
    if guias:
        session.connection().execute(_G.insert(), [{**g, "lote_id": lote_id} for g in guias])
    return lote_id


def lote_do_protocolo(session: Session, numero: str, prestador_id: int,
                      registro_ans: str) -> LoteGravado | None:
    """The lote behind a protocol number, only if it belongs to this provider and operator."""
    connection = session.connection()
    row = connection.execute(_LOTE_DO_PROTOCOLO, {
        "numero": numero, "prestador_id": prestador_id, "registro_ans": registro_ans}).first()
    if row is None:
        return None
    guias = connection.execute(_GUIAS_DO_LOTE, {"lote_id": row.id}).all()
    return LoteGravado(row.numero, row.status, row.numero_lote, row.tipo_guia, row.valor_informado,
                       row.criado_em, [GuiaGravada(*g) for g in guias])


def add_criticas(session: Session, mensagem_id: int, findings: Sequence[Finding], *,
                 lote_id: int | None = None) -> None:
    """The críticas of a message (Table 38 code, text, the element they point at)."""
    rows = [dict(mensagem_id=mensagem_id, lote_id=lote_id, codigo=f.code, mensagem=f.message[:4000],
                 localizacao=f.location, linha=f.line) for f in findings]
    if rows:
        session.connection().execute(Critica.__table__.insert(), rows)  # type: ignore[attr-defined]


def _insert(session: Session, table: Table, values: Mapping[str, Any]) -> int:
    """A plain Core insert (the ORM's bulk layer costs more than the statement); returns the id."""
    return session.connection().execute(_INSERT[table.name], values).scalar_one()
