"""Read-only SQL of the console pages. Every query takes the user's scope: ``prestador_id`` None
sees every provider, a number only that provider's rows (another provider's lote is "not found",
exactly like a missing one). Lists are paginated (LIMIT/OFFSET, one row more than a page to know
whether a next page exists: no COUNT over big tables) and ordered by primary key or indexed
columns; the message bodies are read one at a time, only where a page shows or parses one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, exists, func, literal, literal_column, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from gateway.console import desfecho as desfecho_
from gateway.console import situacao
from gateway.console.formatos import BRASILIA, inicio_do_dia
from gateway.delivery.state import NOT_SENT, State
from gateway.message.tables import (
    GUIA_ACEITA,
    GUIA_RECUSADA,
    RECEBIDO,
    RECUSADO_PELA_OPERADORA,
    STATUS_ANALISADOS,
)
from gateway.storage import kept_lists
from gateway.storage.models import (
    Critica,
    Demonstrativo,
    Entrega,
    Guia,
    Lote,
    Mensagem,
    Prestador,
    Protocolo,
    ProtocoloStatus,
)

POR_PAGINA = 50


@dataclass(frozen=True)
class Pagina:
    linhas: list[Any]
    pagina: int
    tem_proxima: bool


def _pagina(session: Session, query, pagina: int, por_pagina: int = POR_PAGINA) -> Pagina:
    pagina = max(1, pagina)
    rows = session.execute(query.limit(por_pagina + 1).offset((pagina - 1) * por_pagina)).all()
    return Pagina(list(rows[:por_pagina]), pagina, len(rows) > por_pagina)


# --- lotes ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FiltroLotes:
    de: date | None = None
    ate: date | None = None
    registro_ans: str | None = None
    prestador_id: int | None = None
    situacao: str | None = None  # a dm_statusProtocolo as text, or situacao.RECUSADO / FALHA / ENVIO
    busca: str | None = None  # protocolo (gateway's or operator's), número do lote or da guia


def _entrega_do_lote(*estados: State):
    return exists().where(Entrega.lote_id == Lote.id, Entrega.estado.in_(estados))


def _entrega_parada():
    """A delivery dead, or refused by its adapter (situacao.PARADAS)."""
    nao_preparada = and_(Entrega.estado == State.RECUSADA, Entrega.resposta_id.is_(None))
    return exists().where(Entrega.lote_id == Lote.id, or_(Entrega.estado == State.MORTA, nao_preparada))


def _filtro_situacao(codigo: str):
    """The lotes whose light (situacao.do_lote) is ``codigo``."""
    status = func.coalesce(Protocolo.status, RECEBIDO)
    if codigo == situacao.RECUSADO:
        return status == RECUSADO_PELA_OPERADORA
    pelo_protocolo = status != RECUSADO_PELA_OPERADORA
    if codigo == situacao.FALHA:
        return and_(pelo_protocolo, _entrega_parada())
    if codigo == situacao.ENVIO:
        return and_(pelo_protocolo, _entrega_do_lote(*NOT_SENT), ~_entrega_parada())
    return and_(status == int(codigo), ~_entrega_parada(), ~_entrega_do_lote(*NOT_SENT))


def _busca(texto: str):
    entrega = exists().where(Entrega.lote_id == Lote.id,
                             or_(Entrega.numero_protocolo == texto, Entrega.numero_lote == texto))
    guia = exists().where(Guia.lote_id == Lote.id,
                          or_(Guia.numero_guia_prestador == texto, Guia.numero_guia_operadora == texto))
    return or_(Protocolo.numero == texto, Protocolo.numero_operadora == texto, Lote.numero_lote == texto,
               entrega, guia)


def lotes(session: Session, filtro: FiltroLotes, *, escopo_prestador: int | None, pagina: int) -> Pagina:
    """Rows: Lote columns, protocol number/status/operator number, provider name, ``luz`` and
    ``contagem`` (guides accepted, their value)."""
    query = (select(Lote.id, Lote.numero_lote, Lote.registro_ans, Lote.tipo_guia, Lote.quantidade_guias,
                    Lote.valor_informado, Lote.criado_em, Lote.prestador_id,
                    Protocolo.numero.label("protocolo"), Protocolo.status, Protocolo.numero_operadora,
                    Prestador.nome.label("prestador_nome"))
             .select_from(Lote).outerjoin(Protocolo, Lote.protocolo_id == Protocolo.id)
             .join(Prestador, Lote.prestador_id == Prestador.id).order_by(Lote.id.desc()))
    prestador = escopo_prestador if escopo_prestador is not None else filtro.prestador_id
    if prestador is not None:
        query = query.where(Lote.prestador_id == prestador)
    if filtro.registro_ans:
        query = query.where(Lote.registro_ans == filtro.registro_ans)
    if filtro.de:
        query = query.where(Lote.criado_em >= inicio_do_dia(filtro.de))
    if filtro.ate:
        query = query.where(Lote.criado_em < inicio_do_dia(filtro.ate + timedelta(days=1)))
    if filtro.situacao:
        query = query.where(_filtro_situacao(filtro.situacao))
    if filtro.busca:
        query = query.where(_busca(filtro.busca))
    page = _pagina(session, query, pagina)
    ids = [row.id for row in page.linhas]
    estados, contagens = estados_das_entregas(session, ids), contagens_das_guias(session, ids)
    page.linhas[:] = [_ComLuz(row, situacao.do_lote(row.status, estados.get(row.id, Counter())),
                              desfecho_.contagem(contagens.get(row.id, {}), status=row.status))
                      for row in page.linhas]
    return page


class _ComLuz:
    """A result row plus its status light and guide counts (rows are immutable)."""

    def __init__(self, row: Any, luz: situacao.Luz, contagem: desfecho_.Contagem):
        self._row, self.luz, self.contagem = row, luz, contagem

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def estados_das_entregas(session: Session, lote_ids: list[int]) -> dict[int, Counter]:
    """lote id -> how many of its deliveries are in each state (situacao.estado_da_luz)."""
    if not lote_ids:
        return {}
    respondida = Entrega.resposta_id.is_not(None)
    rows = session.execute(select(Entrega.lote_id, Entrega.estado, respondida, func.count())
                           .where(Entrega.lote_id.in_(lote_ids))
                           .group_by(Entrega.lote_id, Entrega.estado, respondida))
    found: dict[int, Counter] = {}
    for lote_id, estado, answered, n in rows:  # lote_id is not NULL: the IN above
        found.setdefault(cast(int, lote_id), Counter())[situacao.estado_da_luz(estado, bool(answered))] += n
    return found


def contagens_das_guias(session: Session, lote_ids: list[int]) -> dict[int, dict[str, tuple[int, Any]]]:
    """lote id -> guia.situacao -> (guides, their informed value)."""
    if not lote_ids:
        return {}
    rows = session.execute(select(Guia.lote_id, Guia.situacao, func.count(), func.sum(Guia.valor_informado))
                           .where(Guia.lote_id.in_(lote_ids)).group_by(Guia.lote_id, Guia.situacao))
    found: dict[int, dict[str, tuple[int, Any]]] = {}
    for lote_id, situacao_, n, valor in rows:
        found.setdefault(lote_id, {})[situacao_] = (n, valor)
    return found


def prestadores(session: Session) -> list[Any]:
    return list(session.execute(select(Prestador.id, Prestador.nome, Prestador.documento)
                                .order_by(Prestador.nome)))


# --- one lote ------------------------------------------------------------------------------------

def lote(session: Session, lote_id: int, *, escopo_prestador: int | None) -> Any | None:
    query = (select(Lote, Protocolo, Prestador).select_from(Lote)
             .outerjoin(Protocolo, Lote.protocolo_id == Protocolo.id)
             .join(Prestador, Lote.prestador_id == Prestador.id).where(Lote.id == lote_id))
    if escopo_prestador is not None:
        query = query.where(Lote.prestador_id == escopo_prestador)
    return session.execute(query).first()


def guias(session: Session, lote_id: int) -> list[Guia]:
    return list(session.scalars(select(Guia).where(Guia.lote_id == lote_id).order_by(Guia.id)))


def criticas(session: Session, lote_id: int, mensagem_ids: Iterable[int | None]) -> list[Critica]:
    """The lote's críticas, of the lote or of one of its guides: those hung on the lote and those
    found in ``mensagem_ids`` (its request, the operator's answers). Both columns are indexed;
    critica.guia_id is not, so it is never the way in."""
    return criticas_dos_lotes(session, [lote_id], mensagem_ids)


def criticas_dos_lotes(session: Session, lote_ids: list[int],
                       mensagem_ids: Iterable[int | None]) -> list[Critica]:
    """The críticas hung on these lotes or found in these messages, oldest first."""
    if not lote_ids:
        return []
    ids = sorted({i for i in mensagem_ids if i is not None})
    dos_lotes = Critica.lote_id.in_(lote_ids)
    where = or_(dos_lotes, Critica.mensagem_id.in_(ids)) if ids else dos_lotes
    return list(session.scalars(select(Critica).where(where).order_by(Critica.id)))


def mensagens_do_lote(lote: Lote, entregas_: Iterable[Entrega]) -> list[int | None]:
    """The messages a lote's críticas may be found in: its request and the operator's answers."""
    return [lote.mensagem_id, *(i for e in entregas_ for i in (e.resposta_id, e.situacao_id))]


def desfecho(session: Session, lote: Lote, status: int | None,
             entregas_: Iterable[Entrega]) -> desfecho_.Desfecho:
    """What became of the lote's guides (desfecho.montar)."""
    return desfecho_.montar(guias(session, lote.id),
                            criticas(session, lote.id, mensagens_do_lote(lote, entregas_)),
                            status=status, mensagem_id=lote.mensagem_id)


def cadeia(session: Session, lote: Lote) -> desfecho_.Cadeia:
    """The resubmissions through ``lote``: the lotes under its number (same provider and operator,
    an indexed lookup), linked by reenvio_de_id."""
    numero = (lote.prestador_id, lote.registro_ans, lote.numero_lote)
    return desfecho_.cadeia(lote.id, elos(session, [numero]))


def elos(session: Session, numeros: list[tuple[int, str, str]]) -> list[desfecho_.Elo]:
    """Every lote under these (prestador_id, registro_ans, numero_lote), with its protocol and
    when the operator refused it."""
    if not numeros:
        return []
    mesmo_numero = tuple_(Lote.prestador_id, Lote.registro_ans, Lote.numero_lote).in_(sorted(set(numeros)))
    rows = session.execute(
        select(Lote.id, Lote.numero_lote, Lote.criado_em, Lote.reenvio_de_id, Lote.protocolo_id,
               Protocolo.numero, Protocolo.status, Protocolo.atualizado_em)
        .outerjoin(Protocolo, Lote.protocolo_id == Protocolo.id).where(mesmo_numero)).all()
    recusas = _recusados_em(session, [r.protocolo_id for r in rows if r.status == RECUSADO_PELA_OPERADORA])
    return [desfecho_.Elo(r.id, r.numero_lote, r.numero, r.status, r.criado_em, r.reenvio_de_id,
                          recusas.get(r.protocolo_id, r.atualizado_em)
                          if r.status == RECUSADO_PELA_OPERADORA else None) for r in rows]


def _recusados_em(session: Session, protocolo_ids: list[int]) -> dict[int, datetime]:
    """protocol id -> when its status became RECUSADO_PELA_OPERADORA (history, indexed by protocol)."""
    if not protocolo_ids:
        return {}
    rows = session.execute(select(ProtocoloStatus.protocolo_id, func.min(ProtocoloStatus.em))
                           .where(ProtocoloStatus.protocolo_id.in_(sorted(set(protocolo_ids))),
                                  ProtocoloStatus.status == RECUSADO_PELA_OPERADORA)
                           .group_by(ProtocoloStatus.protocolo_id))
    return {protocolo_id: em for protocolo_id, em in rows}


def entregas(session: Session, lote_id: int) -> list[Entrega]:
    return list(session.scalars(select(Entrega).where(Entrega.lote_id == lote_id)
                                .order_by(Entrega.parte, Entrega.id)))


def historico(session: Session, protocolo_id: int | None) -> list[ProtocoloStatus]:
    if protocolo_id is None:
        return []
    return list(session.scalars(select(ProtocoloStatus).where(ProtocoloStatus.protocolo_id == protocolo_id)
                                .order_by(ProtocoloStatus.id)))


def demonstrativos_do_protocolo(session: Session, protocolo_id: int | None) -> list[Demonstrativo]:
    if protocolo_id is None:
        return []
    return list(session.scalars(select(Demonstrativo).where(Demonstrativo.protocolo_id == protocolo_id)
                                .order_by(Demonstrativo.id.desc())))


_COLUNAS_MENSAGEM = (Mensagem.id, Mensagem.direcao, Mensagem.servico, Mensagem.tamanho, Mensagem.resultado,
                     Mensagem.codigo_erro, Mensagem.criada_em, Mensagem.resposta_de_id, Mensagem.destinatario,
                     Mensagem.sequencial_transacao, Mensagem.corpo_removido_em, Mensagem.prestador_id)


def mensagens(session: Session, ids: set[int]) -> list[Any]:
    """The messages ``ids`` and every message that answers one of them (no bodies)."""
    if not ids:
        return []
    query = (select(*_COLUNAS_MENSAGEM)
             .where(or_(Mensagem.id.in_(sorted(ids)), Mensagem.resposta_de_id.in_(sorted(ids))))
             .order_by(Mensagem.id))
    return list(session.execute(query))


def mensagem(session: Session, mensagem_id: int, *, escopo_prestador: int | None) -> Any | None:
    query = select(*_COLUNAS_MENSAGEM, Mensagem.remetente, Mensagem.versao, Mensagem.tipo_transacao,
                   Mensagem.hash, Mensagem.endereco, Mensagem.sha256_original,
                   Mensagem.tamanho_original).where(Mensagem.id == mensagem_id)
    if escopo_prestador is not None:
        query = query.where(Mensagem.prestador_id == escopo_prestador)
    return session.execute(query).first()


def corpo(session: Session, mensagem_id: int) -> bytes | None:
    """The bytes as sent or received (a status answer's kept guide list put back in its frame)."""
    return kept_lists.stored_answer(session, mensagem_id)


def criticas_da_mensagem(session: Session, mensagem_id: int) -> list[Critica]:
    query = select(Critica).where(Critica.mensagem_id == mensagem_id).order_by(Critica.id)
    return list(session.scalars(query))


def lote_da_mensagem(session: Session, mensagem_id: int) -> int | None:
    """The lote a message belongs to: its request, or a delivery's envio/answer/situação."""
    found = session.scalar(select(Lote.id).where(Lote.mensagem_id == mensagem_id).limit(1))
    if found is not None:
        return found
    return session.scalar(select(Entrega.lote_id).where(
        Entrega.lote_id.is_not(None),
        or_(Entrega.envio_id == mensagem_id, Entrega.resposta_id == mensagem_id,
            Entrega.situacao_id == mensagem_id)).limit(1))


# --- refusals -------------------------------------------------------------------------------------

def recusadas(session: Session, *, escopo_prestador: int | None, pagina: int) -> Pagina:
    """Provider messages the gateway refused at once (schema, hash, login, the operator's rules...),
    newest first; driven by critica.mensagem_id (indexed), far smaller than mensagem. Not the
    críticas of a lote that has a protocol (hung on the lote or on a guide: recusadas_com_protocolo)
    nor those of the operators' answers (they answer a message the gateway sent)."""
    primeira = (select(Critica.mensagem_id.label("mensagem_id"), func.min(Critica.id).label("critica_id"))
                .where(Critica.mensagem_id.is_not(None), Critica.lote_id.is_(None), Critica.guia_id.is_(None))
                .group_by(Critica.mensagem_id).subquery())
    query = (select(Mensagem.id, Mensagem.criada_em, Mensagem.servico, Mensagem.codigo_erro,
                    Mensagem.resultado, Mensagem.remetente, Mensagem.destinatario, Mensagem.endereco,
                    Prestador.nome.label("prestador_nome"), Critica.codigo, Critica.mensagem.label("texto"),
                    Critica.localizacao)
             .select_from(primeira).join(Mensagem, Mensagem.id == primeira.c.mensagem_id)
             .join(Critica, Critica.id == primeira.c.critica_id)
             .outerjoin(Prestador, Prestador.id == Mensagem.prestador_id)
             .where(Mensagem.direcao == "entrada", Mensagem.resposta_de_id.is_(None))
             .order_by(primeira.c.mensagem_id.desc()))
    if escopo_prestador is not None:
        query = query.where(Mensagem.prestador_id == escopo_prestador)
    return _pagina(session, query, pagina)


def _guia_recusada():
    """The lote has a refused guide (guia.lote_id is indexed)."""
    return exists().where(Guia.lote_id == Lote.id, Guia.situacao == GUIA_RECUSADA)


def recusadas_com_protocolo(session: Session, *, escopo_prestador: int | None, pagina: int) -> Pagina:
    """Lotes that got a protocol and were refused whole by the operator (RECUSADO_PELA_OPERADORA) or
    in part (guides refused, by the operator or at acceptance), newest first. Rows: Lote columns,
    protocol number and status, provider name; ``desfecho`` and ``reenviado_como`` are added by
    :func:`com_desfecho`."""
    query = (select(Lote.id, Lote.numero_lote, Lote.registro_ans, Lote.prestador_id, Lote.criado_em,
                    Lote.mensagem_id, Protocolo.numero.label("protocolo"), Protocolo.status,
                    Prestador.nome.label("prestador_nome"))
             .select_from(Lote).join(Protocolo, Lote.protocolo_id == Protocolo.id)
             .join(Prestador, Lote.prestador_id == Prestador.id)
             .where(or_(Protocolo.status == RECUSADO_PELA_OPERADORA, _guia_recusada()))
             .order_by(Lote.id.desc()))
    if escopo_prestador is not None:
        query = query.where(Lote.prestador_id == escopo_prestador)
    return _pagina(session, query, pagina)


@dataclass(frozen=True)
class LoteRecusado:
    linha: Any  # a recusadas_com_protocolo row
    desfecho: desfecho_.Desfecho
    recusado_em: datetime | None
    reenviado_como: desfecho_.Elo | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.linha, name)


def _respostas_da_operadora(session: Session, lote_ids: list[int]) -> dict[int, set[int]]:
    """lote id -> the operator's answers to its deliveries (where its críticas may be)."""
    found: dict[int, set[int]] = {}
    rows = session.execute(select(Entrega.lote_id, Entrega.resposta_id, Entrega.situacao_id)
                           .where(Entrega.lote_id.in_(lote_ids)))
    for lote_id, *answers in rows:  # lote_id is not NULL: the IN above
        found.setdefault(cast(int, lote_id), set()).update(a for a in answers if a is not None)
    return found


def com_desfecho(session: Session, page: Pagina) -> Pagina:
    """The rows of :func:`recusadas_com_protocolo` with their guides' outcome and resubmission."""
    ids = [row.id for row in page.linhas]
    if not ids:
        return page
    lotes, respostas = set(ids), _respostas_da_operadora(session, ids)
    guias_: dict[int, list[Guia]] = {}
    for guia in session.scalars(select(Guia).where(Guia.lote_id.in_(ids)).order_by(Guia.id)):
        guias_.setdefault(guia.lote_id, []).append(guia)
    # Each lote's críticas: hung on it, or found in its request or the operator's answers.
    do_lote = {m: row.id for row in page.linhas for m in respostas.get(row.id, set()) | {row.mensagem_id}
               if m is not None}
    criticas_: dict[int, list[Critica]] = {}
    for c in criticas_dos_lotes(session, ids, do_lote):
        lote_id = c.lote_id if c.lote_id in lotes else do_lote.get(c.mensagem_id or 0)
        if lote_id is not None:
            criticas_.setdefault(lote_id, []).append(c)
    elos_ = elos(session, [(row.prestador_id, row.registro_ans, row.numero_lote) for row in page.linhas])
    linhas = []
    for row in page.linhas:
        feito = desfecho_.montar(guias_.get(row.id, []), criticas_.get(row.id, []), status=row.status,
                                 mensagem_id=row.mensagem_id)
        cadeia_ = desfecho_.cadeia(row.id, elos_)
        atual = next(e for e in cadeia_.elos if e.lote_id == row.id)
        linhas.append(LoteRecusado(row, feito, atual.recusado_em, cadeia_.seguinte))
    return Pagina(linhas, page.pagina, page.tem_proxima)


# --- deliveries ----------------------------------------------------------------------------------

def entregas_mortas(session: Session, *, escopo_prestador: int | None, registro_ans: str | None,
                    pagina: int) -> Pagina:
    query = (select(Entrega.id, Entrega.registro_ans, Entrega.servico, Entrega.parte, Entrega.partes,
                    Entrega.numero_lote, Entrega.tentativas, Entrega.ultimo_erro, Entrega.criada_em,
                    Entrega.lote_id, Protocolo.numero.label("protocolo"),
                    Prestador.nome.label("prestador_nome"))
             .select_from(Entrega).outerjoin(Protocolo, Entrega.protocolo_id == Protocolo.id)
             .join(Prestador, Entrega.prestador_id == Prestador.id)
             .where(Entrega.estado == State.MORTA).order_by(Entrega.id.desc()))
    if escopo_prestador is not None:
        query = query.where(Entrega.prestador_id == escopo_prestador)
    if registro_ans:
        query = query.where(Entrega.registro_ans == registro_ans)
    return _pagina(session, query, pagina)


def entrega(session: Session, entrega_id: int) -> Entrega | None:
    return session.get(Entrega, entrega_id)


# --- demonstrativos ------------------------------------------------------------------------------

def demonstrativos(session: Session, *, escopo_prestador: int | None, registro_ans: str | None,
                   tipo: str | None, pagina: int) -> Pagina:
    query = (select(Demonstrativo.id, Demonstrativo.registro_ans, Demonstrativo.tipo,
                    Demonstrativo.numero_protocolo, Demonstrativo.obtido_em, Demonstrativo.mensagem_id,
                    Protocolo.numero.label("protocolo"), Lote.id.label("lote_id"), Lote.numero_lote,
                    Prestador.nome.label("prestador_nome"))
             .select_from(Demonstrativo).outerjoin(Protocolo, Demonstrativo.protocolo_id == Protocolo.id)
             .outerjoin(Lote, Lote.protocolo_id == Demonstrativo.protocolo_id)
             .join(Prestador, Demonstrativo.prestador_id == Prestador.id).order_by(Demonstrativo.id.desc()))
    if escopo_prestador is not None:
        query = query.where(Demonstrativo.prestador_id == escopo_prestador)
    if registro_ans:
        query = query.where(Demonstrativo.registro_ans == registro_ans)
    if tipo:
        query = query.where(Demonstrativo.tipo == tipo)
    return _pagina(session, query, pagina)


def demonstrativo(session: Session, demonstrativo_id: int, *, escopo_prestador: int | None) -> Any | None:
    query = (select(Demonstrativo, Prestador.nome.label("prestador_nome"),
                    Protocolo.numero.label("protocolo"), Lote.id.label("lote_id"), Lote.numero_lote)
             .select_from(Demonstrativo).join(Prestador, Demonstrativo.prestador_id == Prestador.id)
             .outerjoin(Protocolo, Demonstrativo.protocolo_id == Protocolo.id)
             .outerjoin(Lote, Lote.protocolo_id == Demonstrativo.protocolo_id)
             .where(Demonstrativo.id == demonstrativo_id))
    if escopo_prestador is not None:
        query = query.where(Demonstrativo.prestador_id == escopo_prestador)
    return session.execute(query).first()


def protocolos_da_operadora(session: Session, registro_ans: str, numeros: list[str],
                            prestador_id: int) -> dict[str, int]:
    """The operator's protocol numbers of this provider's deliveries -> the lote they belong to."""
    if not numeros:
        return {}
    rows = session.execute(select(Entrega.numero_protocolo, Entrega.lote_id).where(
        Entrega.registro_ans == registro_ans, Entrega.prestador_id == prestador_id,
        Entrega.numero_protocolo.in_(sorted(set(numeros))), Entrega.lote_id.is_not(None)))
    return {cast(str, numero): cast(int, lote_id) for numero, lote_id in rows}  # both not NULL (where)


# --- charts --------------------------------------------------------------------------------------

def lotes_por_dia(session: Session, inicio: date, fim: date, *, escopo_prestador: int | None,
                  registro_ans: str | None) -> dict[date, int]:
    """Lotes received per Brasília day (grouped in SQL on the indexed criado_em)."""
    if session.get_bind().dialect.name == "sqlite":
        dia = func.date(Lote.criado_em, literal("-3 hours"))
    else:
        # An interval, not the text '-03:00': PostgreSQL reads a text offset POSIX-style (sign inverted).
        dia = func.date(func.timezone(literal_column("INTERVAL '-03:00'"), Lote.criado_em))
    query = (select(dia, func.count()).where(Lote.criado_em >= inicio_do_dia(inicio),
                                             Lote.criado_em < inicio_do_dia(fim + timedelta(days=1)))
             .group_by(dia))
    if escopo_prestador is not None:
        query = query.where(Lote.prestador_id == escopo_prestador)
    if registro_ans:
        query = query.where(Lote.registro_ans == registro_ans)
    found: dict[date, int] = {}
    for value, n in session.execute(query):
        found[value if isinstance(value, date) else date.fromisoformat(str(value))] = cast(int, n)
    return found


def partes_analisadas(session: Session, inicio: date, fim: date, *, escopo_prestador: int | None,
                      registro_ans: str | None, limite: int) -> list[Any]:
    """The parts of the period's newest ``limite`` lotes whose every part the operator analysed,
    with what may hold their analysis (the situação answer; demonstrativos go by protocol) and the
    value of the lote's accepted guides (``valor_aceito``: what the operator analysed)."""
    pendente = exists().where(Entrega.lote_id == Lote.id, or_(
        Entrega.estado != State.ENTREGUE, Entrega.status.is_(None), Entrega.status.not_in(STATUS_ANALISADOS)))
    lotes = (select(Lote.id).where(Lote.criado_em >= inicio_do_dia(inicio),
                                   Lote.criado_em < inicio_do_dia(fim + timedelta(days=1)),
                                   exists().where(Entrega.lote_id == Lote.id), ~pendente)
             .order_by(Lote.id.desc()).limit(limite))
    if escopo_prestador is not None:
        lotes = lotes.where(Lote.prestador_id == escopo_prestador)
    if registro_ans:
        lotes = lotes.where(Lote.registro_ans == registro_ans)
    E = aliased(Entrega)
    aceito = (select(func.sum(Guia.valor_informado))
              .where(Guia.lote_id == Lote.id, Guia.situacao == GUIA_ACEITA).correlate(Lote).scalar_subquery())
    query = (select(Lote.id.label("lote_id"), Lote.registro_ans, aceito.label("valor_aceito"),
                    Lote.protocolo_id, E.numero_protocolo, E.estado, E.situacao_id, E.status)
             .join(E, E.lote_id == Lote.id).where(Lote.id.in_(lotes.scalar_subquery()))
             .order_by(Lote.id, E.parte))
    return list(session.execute(query))


def demonstrativos_dos_protocolos(session: Session, protocolo_ids: list[int]) -> list[Any]:
    """(protocolo_id, mensagem_id) of the stored análise / odonto demonstrativos, newest last."""
    if not protocolo_ids:
        return []
    found: list[Any] = []
    ids = sorted(set(protocolo_ids))
    for start in range(0, len(ids), 500):
        found += session.execute(select(Demonstrativo.protocolo_id, Demonstrativo.mensagem_id).where(
            Demonstrativo.protocolo_id.in_(ids[start:start + 500]), Demonstrativo.tipo.in_(("2", "3")))
            .order_by(Demonstrativo.id)).all()
    return found


def hoje() -> date:
    return datetime.now(BRASILIA).date()
