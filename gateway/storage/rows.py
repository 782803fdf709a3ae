"""The rows of messages, transactions, lotes, protocols and demonstrativos, read and written as
Core statements by the request path, the relay and the worker (whichever way a message went).

Every accepted message runs these: a handful of statements per request instead of ORM units of
work (a 100-guide lote was ~60% ORM bookkeeping); the ones every request runs go through
:mod:`gateway.storage.prepared` (compiled once, run on the driver's cursor). The ORM models stay
the schema and serve the commands and tests; nothing here commits — the caller's transaction does.
Each function takes the caller's Session or, where it has one at hand, its Connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, exc, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gateway.message import credencial
from gateway.message.findings import Finding
from gateway.message.tables import GUIA_ACEITA
from gateway.storage import kept_lists
from gateway.storage.models import (
    CRITICA_TABLE,
    DEMONSTRATIVO_TABLE,
    ENTREGA_TABLE,
    GUIA_TABLE,
    GUIAS_DA_SITUACAO_TABLE,
    LOTE_TABLE,
    MENSAGEM_TABLE,
    PRESTADOR_TABLE,
    PROTOCOLO_TABLE,
    RESPOSTA_SITUACAO_TABLE,
    TRANSACAO_TABLE,
)
from gateway.storage.prepared import Db, Prepared, connection_of


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
    situacao: str = GUIA_ACEITA  # SITUACOES_GUIA


@dataclass(frozen=True)
class LoteGravado:
    numero_protocolo: str
    status: int
    numero_lote: str
    tipo_guia: str
    valor_informado: Decimal | None
    criado_em: datetime
    guias: list[GuiaGravada]
    lote_id: int | None = None


@dataclass(frozen=True)
class EstadoDoProtocolo:
    """A lote's protocol as its situação answer starts from (its guides apart): one indexed read."""

    protocolo_id: int
    versao: int  # protocolo.versao: changes with anything the answer lists
    numero_protocolo: str
    status: int
    lote_id: int
    numero_lote: str
    tipo_guia: str
    valor_informado: Decimal | None
    criado_em: datetime


@dataclass(frozen=True)
class ParteEncaminhada:
    """One delivery (outbox row) of a message the gateway forwards: one per operator lote part."""

    parte: int
    partes: int | None  # None until the worker prepared it
    estado: str  # ESTADOS_ENTREGA
    numero_lote: str | None  # the part's numeroLote as sent (the provider's, or "<número>-<parte>")
    numero_protocolo: str | None  # the operator's protocol, once delivered
    guias: tuple[str, ...]  # numeroGuiaPrestador of the part
    resposta_id: int | None  # the operator's answer to the delivery (its críticas hang on it)
    envio_id: int | None
    situacao_id: int | None  # the operator's last situação answer (lotes)


@dataclass(frozen=True)
class ProtocoloEncaminhado:
    """A gateway protocol and the operator deliveries behind it."""

    protocolo_id: int
    numero: str  # the gateway's
    tipo: str
    status: int
    numero_lote: str | None  # the provider's numeroLote (lotes only)
    partes: list[ParteEncaminhada]

    @property
    def entregue(self) -> bool:
        """Every part prepared and delivered: each has its operator protocol."""
        return bool(self.partes) and all(
            p.estado == "entregue" and p.numero_protocolo and p.partes == len(self.partes)
            for p in self.partes)

    @property
    def recusada(self) -> ParteEncaminhada | None:
        """The first part the operator (or the adapter) refused, if any."""
        return next((p for p in self.partes if p.estado == "recusada"), None)


@dataclass(frozen=True)
class ProtocoloDaOperadora:
    """What an operator protocol number is at the gateway."""

    protocolo_id: int
    numero: str  # the gateway's protocol
    numero_lote: str | None  # the provider's numeroLote
    numero_lote_parte: str | None  # the operator's numeroLote (differs for a split lote)


# Statements are built once: building a select() or insert() costs more than running it here.
_P, _M, _T, _L, _G, _PR = (PRESTADOR_TABLE, MENSAGEM_TABLE, TRANSACAO_TABLE, LOTE_TABLE, GUIA_TABLE,
                          PROTOCOLO_TABLE)
_PRESTADOR = select(_P.c.ativo, _P.c.bloqueado_ate).where(_P.c.id == bindparam("id"))
# The answer as sent: a situação answer stored without its guide list gets it back (kept_lists).
_K, _RS = GUIAS_DA_SITUACAO_TABLE, RESPOSTA_SITUACAO_TABLE
_TRANSACAO = (select(_T.c.hash, _M.c.corpo, _K.c.lista, _RS.c.codificacao)
              .select_from(_T.outerjoin(_M, _M.c.id == _T.c.resposta_id)
                           .outerjoin(_RS, _RS.c.mensagem_id == _M.c.id)
                           .outerjoin(_K, _K.c.id == _RS.c.guias_id))
              .where(_T.c.prestador_id == bindparam("prestador_id"),
                     _T.c.tipo_transacao == bindparam("tipo"),
                     _T.c.sequencial_transacao == bindparam("sequencial")))
_LOTE_ANTERIOR = (select(_L.c.id, _L.c.numero_vigente)
                  .where(_L.c.prestador_id == bindparam("prestador_id"),
                         _L.c.registro_ans == bindparam("registro_ans"),
                         _L.c.numero_lote == bindparam("numero_lote"))
                  .order_by(_L.c.numero_vigente.is_(None), _L.c.id.desc()).limit(1))
_LOTE_DO_PROTOCOLO = (
    select(_PR.c.numero, _PR.c.status, _L.c.id, _L.c.numero_lote, _L.c.tipo_guia, _L.c.valor_informado,
           _L.c.criado_em)
    .select_from(_PR.join(_L, _L.c.protocolo_id == _PR.c.id))
    .where(_PR.c.numero == bindparam("numero"), _PR.c.prestador_id == bindparam("prestador_id"),
           _PR.c.registro_ans == bindparam("registro_ans")).limit(1))
_ESTADO_DO_PROTOCOLO = (
    select(_PR.c.id, _PR.c.versao, _PR.c.numero, _PR.c.status, _L.c.id, _L.c.numero_lote, _L.c.tipo_guia,
           _L.c.valor_informado, _L.c.criado_em)
    .select_from(_PR.join(_L, _L.c.protocolo_id == _PR.c.id))
    .where(_PR.c.numero == bindparam("numero"), _PR.c.prestador_id == bindparam("prestador_id"),
           _PR.c.registro_ans == bindparam("registro_ans")).limit(1))
_BUMP_VERSAO = _PR.update().where(_PR.c.id == bindparam("protocolo_id")).values(versao=_PR.c.versao + 1)
_GUIAS_DO_LOTE = (select(_G.c.numero_guia_prestador, _G.c.numero_guia_operadora, _G.c.numero_carteira,
                         _G.c.valor_informado, _G.c.situacao)
                  .where(_G.c.lote_id == bindparam("lote_id")).order_by(_G.c.id))
_INSERT = {table.name: table.insert().returning(table.c.id) for table in (_M, _T, _L)}
_INSERTS: dict[tuple[str, tuple[str, ...]], Prepared] = {}  # (table, columns given) -> statement
_GUIA_COLUNAS = ("lote_id", "numero_guia_prestador", "numero_guia_operadora", "tipo", "numero_carteira",
                 "valor_informado", "situacao")
_E, _C, _D = ENTREGA_TABLE, CRITICA_TABLE, DEMONSTRATIVO_TABLE
_COLUNAS_PARTE = (select(_E.c.parte, _E.c.partes, _E.c.estado, _E.c.numero_lote, _E.c.numero_protocolo,
                         _E.c.guias, _E.c.resposta_id, _E.c.envio_id, _E.c.situacao_id)
                  .order_by(_E.c.parte, _E.c.id))
_PARTES = _COLUNAS_PARTE.where(_E.c.protocolo_id == bindparam("protocolo_id"))
_PARTES_DO_LOTE = _COLUNAS_PARTE.where(_E.c.lote_id == bindparam("lote_id"))
_PROTOCOLO = (select(_PR.c.id, _PR.c.numero, _PR.c.tipo, _PR.c.status, _L.c.numero_lote)
              .select_from(_PR.outerjoin(_L, _L.c.protocolo_id == _PR.c.id))
              .where(_PR.c.prestador_id == bindparam("prestador_id"),
                     _PR.c.registro_ans == bindparam("registro_ans")))
_PROTOCOLO_POR_NUMERO = _PROTOCOLO.where(_PR.c.numero == bindparam("numero")).limit(1)
_PROTOCOLO_POR_LOTE = _PROTOCOLO.where(_L.c.numero_lote == bindparam("numero_lote")).limit(1)
_CRITICA = (select(_C.c.codigo, _C.c.mensagem).where(_C.c.mensagem_id == bindparam("mensagem_id"))
            .order_by(_C.c.id).limit(1))
_CRITICA_COLUNAS = ("mensagem_id", "lote_id", "guia_id", "codigo", "mensagem", "localizacao", "linha")
# The statements every request runs, on the driver's cursor (gateway.storage.prepared).
_FAST = {name: Prepared(statement) for name, statement in (
    ("prestador", _PRESTADOR), ("transacao", _TRANSACAO),
    ("lote_anterior", _LOTE_ANTERIOR),
    ("lote_do_protocolo", _LOTE_DO_PROTOCOLO), ("guias_do_lote", _GUIAS_DO_LOTE),
    ("estado_do_protocolo", _ESTADO_DO_PROTOCOLO), ("bump_versao", _BUMP_VERSAO),
    ("partes_do_lote", _PARTES_DO_LOTE), ("critica", _CRITICA))}
_FAST_GUIAS = Prepared(_G.insert(), _GUIA_COLUNAS)
_COPY_GUIAS = f"COPY {_G.name} ({', '.join(_GUIA_COLUNAS)}) FROM STDIN"
_FAST_CRITICAS = Prepared(_C.insert(), _CRITICA_COLUNAS)


def prestador_liberado(session: Db, prestador_id: int, now: datetime) -> bool:
    """Active and not locked: one indexed read."""
    row = _FAST["prestador"].first(session, {"id": prestador_id})
    if row is None:
        return False
    ativo, bloqueado_ate = row
    return bool(ativo) and (bloqueado_ate is None or bloqueado_ate <= now)


def add_mensagem(session: Db, values: Mapping[str, Any],
                 redaction: credencial.Redaction | None = None) -> int:
    """Stored without senhaPrestador (no credential at rest): masked in ``corpo``, with the SHA-256
    and length of the bytes as given kept beside it. ``redaction``: ``corpo``'s, when the caller
    already made it."""
    corpo = values.get("corpo")
    if corpo:
        redaction = redaction or credencial.redact(corpo)
        if redaction.removida:
            values = {**values, "corpo": redaction.corpo, "sha256_original": redaction.sha256_original,
                      "tamanho_original": len(corpo)}
    return _insert(session, _M, values)


def transacao_anterior(session: Db, prestador_id: int, tipo: str,
                       sequencial: str) -> TransacaoAnterior | None:
    row = _FAST["transacao"].first(session, {"prestador_id": prestador_id, "tipo": tipo,
                                             "sequencial": sequencial})
    if row is None:
        return None
    hash_, corpo, lista, encoding = row
    return TransacaoAnterior(hash_, kept_lists.whole(corpo, lista, encoding))


def add_transacao(session: Db, *, prestador_id: int, tipo: str, sequencial: str, hash_: str,
                  requisicao_id: int, resposta_id: int) -> int:
    """Written once, last, naming the request and its stored answer. Raises IntegrityError when a
    concurrent copy of the transaction committed first."""
    values = dict(prestador_id=prestador_id, tipo_transacao=tipo, sequencial_transacao=sequencial, hash=hash_,
                  requisicao_id=requisicao_id, resposta_id=resposta_id)
    return _insert(session, _T, values)


@dataclass(frozen=True)
class LoteAnterior:
    """The latest earlier lote under a provider's lote number (the one in force, if any)."""

    lote_id: int
    vigente: bool  # accepted or in process: the number is taken (3268); else refused in full


def lote_anterior(session: Db, prestador_id: int, registro_ans: str, numero_lote: str) -> LoteAnterior | None:
    row = _FAST["lote_anterior"].first(session, {
        "prestador_id": prestador_id, "registro_ans": registro_ans, "numero_lote": numero_lote})
    return LoteAnterior(row[0], row[1] is not None) if row is not None else None


def add_lote(session: Db, values: Mapping[str, Any], guias: Sequence[Mapping[str, Any]]) -> int:
    """The lote and its guides (a guide's ``situacao`` defaults to GUIA_ACEITA): on PostgreSQL one
    COPY for the guides (100 rows: 0.9 ms against 2.6 ms for an executemany, measured
    interleaved), elsewhere one executemany (SQLite runs in process: no round trips to save)."""
    lote_id = _insert(session, _L, values)
    if guias:
        rows = [{"situacao": GUIA_ACEITA, **g, "lote_id": lote_id} for g in guias]
        connection = connection_of(session)
        if connection.dialect.name == "postgresql":
            _copy_guias(connection, rows)
        else:
            _FAST_GUIAS.executemany(connection, rows)
    return lote_id


def _copy_guias(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """The guide rows by ``COPY ... FROM STDIN`` (psycopg 3), in the caller's transaction; a driver
    error is raised as SQLAlchemy's, as :mod:`gateway.storage.prepared` does."""
    dbapi = connection.dialect.loaded_dbapi
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(_COPY_GUIAS) as copy:
            for row in rows:
                copy.write_row([row[column] for column in _GUIA_COLUNAS])
    except dbapi.Error as error:
        raise exc.DBAPIError.instance(_COPY_GUIAS, rows, error, dbapi.Error,
                                      dialect=connection.dialect) from error
    finally:
        cursor.close()


def lote_do_protocolo(session: Db, numero: str, prestador_id: int,
                      registro_ans: str) -> LoteGravado | None:
    """The lote behind a protocol number, only if it belongs to this provider and operator."""
    connection = connection_of(session)
    row = _FAST["lote_do_protocolo"].first(connection, {
        "numero": numero, "prestador_id": prestador_id, "registro_ans": registro_ans})
    if row is None:
        return None
    numero, status, lote_id, numero_lote, tipo_guia, valor_informado, criado_em = row
    guias = _FAST["guias_do_lote"].rows(connection, {"lote_id": lote_id})
    return LoteGravado(numero, status, numero_lote, tipo_guia, valor_informado, criado_em,
                       [GuiaGravada(*g) for g in guias], lote_id)


def estado_do_protocolo(session: Db, numero: str, prestador_id: int,
                        registro_ans: str) -> EstadoDoProtocolo | None:
    """The lote protocol ``numero``, only if it belongs to this provider and operator."""
    row = _FAST["estado_do_protocolo"].first(session, {
        "numero": numero, "prestador_id": prestador_id, "registro_ans": registro_ans})
    return EstadoDoProtocolo(*row) if row is not None else None


def guias_do_lote(session: Db, lote_id: int) -> list[GuiaGravada]:
    return [GuiaGravada(*g) for g in _FAST["guias_do_lote"].rows(session, {"lote_id": lote_id})]


def bump_versao(session: Db, protocolo_id: int | None) -> None:
    """A change to what the protocol's situação answer lists (a guide's situação, a part's
    situação answer): a new state version, in the writer's transaction, so that no answer is
    rendered from a kept guide list of the state before (gateway.storage.kept_lists). One atomic
    UPDATE: concurrent writers never lose a bump."""
    if protocolo_id is not None:
        _FAST["bump_versao"].execute(session, {"protocolo_id": protocolo_id}).close()


def partes_do_lote(session: Db, lote_id: int) -> list[ParteEncaminhada]:
    """The deliveries of a lote (one per operator part; none when the operator is not connected)."""
    rows = _FAST["partes_do_lote"].rows(session, {"lote_id": lote_id})
    return [_parte(*r) for r in rows]


def protocolo_encaminhado(session: Session, *, prestador_id: int, registro_ans: str,
                          numero: str | None = None, numero_lote: str | None = None,
                          ) -> ProtocoloEncaminhado | None:
    """A gateway protocol of this provider at this operator, by its number or by the numeroLote of
    its lote, with the deliveries behind it (None: not one of the gateway's)."""
    params = {"prestador_id": prestador_id, "registro_ans": registro_ans}
    connection = session.connection()
    if numero is not None:
        row = connection.execute(_PROTOCOLO_POR_NUMERO, {**params, "numero": numero}).first()
    else:
        row = connection.execute(_PROTOCOLO_POR_LOTE, {**params, "numero_lote": numero_lote}).first()
    if row is None:
        return None
    partes = connection.execute(_PARTES, {"protocolo_id": row.id}).all()
    return ProtocoloEncaminhado(row.id, row.numero, row.tipo, row.status, row.numero_lote,
                                [_parte(*p.tuple()) for p in partes])


def protocolos_da_operadora(session: Db, numeros: Sequence[str], *, prestador_id: int,
                            registro_ans: str) -> dict[str, ProtocoloDaOperadora]:
    """Operator protocol numbers of this provider's deliveries -> the gateway protocols they are."""
    if not numeros:
        return {}
    query = (select(_E.c.numero_protocolo, _E.c.numero_lote, _PR.c.id, _PR.c.numero, _L.c.numero_lote)
             .select_from(_E.join(_PR, _PR.c.id == _E.c.protocolo_id)
                          .outerjoin(_L, _L.c.protocolo_id == _PR.c.id))
             .where(_E.c.registro_ans == registro_ans, _E.c.prestador_id == prestador_id,
                    _E.c.numero_protocolo.in_(sorted(set(numeros)))))
    return {row[0]: ProtocoloDaOperadora(row[2], row[3], row[4], row[1])
            for row in connection_of(session).execute(query)}


def critica_de(session: Db, mensagem_id: int | None) -> tuple[str | None, str] | None:
    """The first crítica stored for a message: (Table 38 code or None, text)."""
    if mensagem_id is None:
        return None
    row = _FAST["critica"].first(session, {"mensagem_id": mensagem_id})
    return (row[0], row[1]) if row is not None else None


def corpos(session: Db, ids: Sequence[int]) -> dict[int, bytes]:
    """Stored message bytes by id."""
    if not ids:
        return {}
    query = select(_M.c.id, _M.c.corpo).where(_M.c.id.in_(sorted(set(ids))))
    return {row.id: row.corpo for row in connection_of(session).execute(query)}


def add_demonstrativos(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Demonstrativos fetched from an operator (gateway.storage.models.Demonstrativo)."""
    if rows:
        session.connection().execute(_D.insert(), list(rows))


def _parte(parte: int, partes: int | None, estado: str, numero_lote: str | None, numero_protocolo: str | None,
           guias: str | None, resposta_id: int | None, envio_id: int | None,
           situacao_id: int | None) -> ParteEncaminhada:
    """One row of _COLUNAS_PARTE."""
    return ParteEncaminhada(parte, partes, estado, numero_lote, numero_protocolo,
                            tuple(g for g in (guias or "").split("\n") if g), resposta_id, envio_id,
                            situacao_id)


def add_criticas(session: Db, mensagem_id: int | None, findings: Sequence[Finding], *,
                 lote_id: int | None = None, guia_id: int | None = None) -> None:
    """The críticas of a message (Table 38 code, text, the element they point at); ``guia_id``:
    the guide they refuse."""
    rows = [dict(mensagem_id=mensagem_id, lote_id=lote_id, guia_id=guia_id, codigo=f.code,
                 mensagem=f.message[:4000], localizacao=f.location, linha=f.line) for f in findings]
    if rows:
        _FAST_CRITICAS.executemany(session, rows)


def _insert(session: Db, table: Table, values: Mapping[str, Any]) -> int:
    """An insert on the driver's cursor (gateway.storage.prepared); returns the new id."""
    key = (table.name, tuple(values))
    statement = _INSERTS.get(key)
    if statement is None:
        statement = _INSERTS[key] = Prepared(_INSERT[table.name], key[1])
    return statement.scalar(session, values)


def guia_ids(session: Db, lote_id: int, situacao: str | None = None) -> dict[str, int]:
    """numeroGuiaPrestador -> guia.id of a lote's guides (to hang a guide's críticas on it);
    ``situacao``: only the guides in it."""
    query = select(_G.c.numero_guia_prestador, _G.c.id).where(_G.c.lote_id == lote_id)
    if situacao is not None:
        query = query.where(_G.c.situacao == situacao)
    return {row[0]: row[1] for row in connection_of(session).execute(query)}


def set_situacao_guias(session: Db, guia_ids: Sequence[int], situacao: str) -> None:
    """What became of these guides (guia.situacao, SITUACOES_GUIA)."""
    if guia_ids:
        connection_of(session).execute(
            _G.update().where(_G.c.id.in_(sorted(set(guia_ids)))).values(situacao=situacao))


def add_criticas_das_guias(session: Db, mensagem_id: int | None,
                           criticas: Sequence[tuple[int, Finding]], *, lote_id: int) -> None:
    """Críticas each refusing one guide ((guia.id, finding) pairs): one executemany."""
    rows = [dict(mensagem_id=mensagem_id, lote_id=lote_id, guia_id=guia_id, codigo=f.code,
                 mensagem=f.message[:4000], localizacao=f.location, linha=f.line) for guia_id, f in criticas]
    if rows:
        _FAST_CRITICAS.executemany(session, rows)
