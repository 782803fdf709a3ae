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

from sqlalchemy import Table, select
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


def prestador_liberado(session: Session, prestador_id: int, now: datetime) -> bool:
    """Active and not locked: one indexed read."""
    row = session.execute(select(Prestador.ativo, Prestador.bloqueado_ate).where(
        Prestador.id == prestador_id)).one_or_none()
    return row is not None and row.ativo and (row.bloqueado_ate is None or row.bloqueado_ate <= now)


def add_mensagem(session: Session, values: Mapping[str, Any]) -> int:
    return _insert(session, Mensagem, values)


def transacao_anterior(session: Session, prestador_id: int, tipo: str,
                       sequencial: str) -> TransacaoAnterior | None:
    row = session.execute(
        select(Transacao.hash, Mensagem.corpo)
        .outerjoin(Mensagem, Mensagem.id == Transacao.resposta_id)
        .where(Transacao.prestador_id == prestador_id, Transacao.tipo_transacao == tipo,
               Transacao.sequencial_transacao == sequencial)).one_or_none()
    return TransacaoAnterior(row.hash, row.corpo) if row is not None else None


def add_transacao(session: Session, *, prestador_id: int, tipo: str, sequencial: str, hash_: str,
                  requisicao_id: int) -> int:
    """Raises IntegrityError when a concurrent copy of the transaction committed first."""
    return _insert(session, Transacao, dict(
        prestador_id=prestador_id, tipo_transacao=tipo, sequencial_transacao=sequencial, hash=hash_,
        requisicao_id=requisicao_id))


def set_resposta(session: Session, transacao_id: int, resposta_id: int) -> None:
    table = _table(Transacao)
    session.connection().execute(table.update().where(table.c.id == transacao_id).values(
        resposta_id=resposta_id))


def lote_existe(session: Session, prestador_id: int, registro_ans: str, numero_lote: str) -> bool:
    return session.execute(select(Lote.id).where(
        Lote.prestador_id == prestador_id, Lote.registro_ans == registro_ans,
        Lote.numero_lote == numero_lote).limit(1)).first() is not None


def add_lote(session: Session, values: Mapping[str, Any], guias: Sequence[Mapping[str, Any]]) -> int:
    """The lote and its guides (one executemany for the guides)."""
    lote_id = _insert(session, Lote, values)
    if guias:
        session.connection().execute(_table(Guia).insert(), [{**g, "lote_id": lote_id} for g in guias])
    return lote_id


def lote_do_protocolo(session: Session, numero: str, prestador_id: int,
                      registro_ans: str) -> LoteGravado | None:
    """The lote behind a protocol number, only if it belongs to this provider and operator."""
    row = session.execute(
        select(Protocolo.numero, Protocolo.status, Lote.id, Lote.numero_lote, Lote.tipo_guia,
               Lote.valor_informado, Lote.criado_em)
        .join(Lote, Lote.protocolo_id == Protocolo.id)
        .where(Protocolo.numero == numero, Protocolo.prestador_id == prestador_id,
               Protocolo.registro_ans == registro_ans)).first()
    if row is None:
        return None
    guias = session.execute(
        select(Guia.numero_guia_prestador, Guia.numero_guia_operadora, Guia.numero_carteira,
               Guia.valor_informado).where(Guia.lote_id == row.id).order_by(Guia.id)).all()
    return LoteGravado(row.numero, row.status, row.numero_lote, row.tipo_guia, row.valor_informado,
                       row.criado_em, [GuiaGravada(*g) for g in guias])


def add_criticas(session: Session, mensagem_id: int, findings: Sequence[Finding], *,
                 lote_id: int | None = None) -> None:
    """The críticas of a message (Table 38 code, text, the element they point at)."""
    rows = [dict(mensagem_id=mensagem_id, lote_id=lote_id, codigo=f.code, mensagem=f.message[:4000],
                 localizacao=f.location, linha=f.line) for f in findings]
    if rows:
        session.connection().execute(_table(Critica).insert(), rows)


def _table(model: type) -> Table:
    return model.__table__  # type: ignore[attr-defined]


def _insert(session: Session, model: type, values: Mapping[str, Any]) -> int:
    """A plain Core insert (the ORM's bulk layer costs more than the statement); returns the id."""
    table = _table(model)
    return session.connection().execute(table.insert().values(**values).returning(table.c.id)).scalar_one()
