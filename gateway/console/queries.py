"""Read-only SQL of the console pages. Every query takes the user's scope: ``prestador_id`` None
sees every provider, a number only that provider's rows (another provider's lote is "not found",
exactly like a missing one). Lists are paginated (LIMIT/OFFSET, one row more than a page to know
whether a next page exists: no COUNT over big tables) and ordered by primary key or indexed
columns; the message bodies are read one at a time, only where a page shows or parses one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, exists, func, literal, literal_column, or_, select
from sqlalchemy.orm import Session, aliased

from gateway.console import situacao
from gateway.console.formatos import BRASILIA, inicio_do_dia
from gateway.delivery.state import NOT_SENT, State
from gateway.message.tables import STATUS_ANALISADOS
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


def _filtro_situacao(codigo: str):
    if codigo == situacao.RECUSADO:
        return _entrega_do_lote(State.RECUSADA)
    if codigo == situacao.FALHA:
        return and_(_entrega_do_lote(State.MORTA), ~_entrega_do_lote(State.RECUSADA))
    if codigo == situacao.ENVIO:
        return and_(_entrega_do_lote(*NOT_SENT), ~_entrega_do_lote(State.RECUSADA, State.MORTA))
    status = int(codigo)
    return and_(func.coalesce(Protocolo.status, 1) == status,
                ~_entrega_do_lote(State.RECUSADA, State.MORTA, *NOT_SENT))


def _busca(texto: str):
    entrega = exists().where(Entrega.lote_id == Lote.id,
                             or_(Entrega.numero_protocolo == texto, Entrega.numero_lote == texto))
    guia = exists().where(Guia.lote_id == Lote.id,
                          or_(Guia.numero_guia_prestador == texto, Guia.numero_guia_operadora == texto))
    return or_(Protocolo.numero == texto, Protocolo.numero_operadora == texto, Lote.numero_lote == texto,
               entrega, guia)


def lotes(session: Session, filtro: FiltroLotes, *, escopo_prestador: int | None, pagina: int) -> Pagina:
    """Rows: Lote columns, protocol number/status/operator number, provider name, and ``luz``."""
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
    estados = estados_das_entregas(session, [row.id for row in page.linhas])
    page.linhas[:] = [_ComLuz(row, situacao.do_lote(row.status, estados.get(row.id, Counter())))
                      for row in page.linhas]
    return page


class _ComLuz:
    """A result row plus its status light (rows are immutable)."""

    def __init__(self, row: Any, luz: situacao.Luz):
        self._row, self.luz = row, luz

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def estados_das_entregas(session: Session, lote_ids: list[int]) -> dict[int, Counter]:
    if not lote_ids:
        return {}
    rows = session.execute(select(Entrega.lote_id, Entrega.estado, func.count())
                           .where(Entrega.lote_id.in_(lote_ids)).group_by(Entrega.lote_id, Entrega.estado))
    found: dict[int, Counter] = {}
    for lote_id, estado, n in rows:  # lote_id is not NULL: the IN above
        found.setdefault(cast(int, lote_id), Counter())[estado] = n
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


def criticas(session: Session, lote_id: int, mensagem_id: int | None) -> list[Critica]:
    where = Critica.lote_id == lote_id
    if mensagem_id is not None:
        where = or_(where, Critica.mensagem_id == mensagem_id)
    return list(session.scalars(select(Critica).where(where).order_by(Critica.id)))


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
                   Mensagem.hash, Mensagem.endereco).where(Mensagem.id == mensagem_id)
    if escopo_prestador is not None:
        query = query.where(Mensagem.prestador_id == escopo_prestador)
    return session.execute(query).first()


def corpo(session: Session, mensagem_id: int) -> bytes | None:
    return session.scalar(select(Mensagem.corpo).where(Mensagem.id == mensagem_id))


def corpos(session: Session, ids: list[int]) -> dict[int, bytes]:
    if not ids:
        return {}
    query = select(Mensagem.id, Mensagem.corpo).where(Mensagem.id.in_(sorted(set(ids))))
    return dict(session.execute(query).all())


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


# --- messages refused at the gateway ---------------------------------------------------------------

def recusadas(session: Session, *, escopo_prestador: int | None, pagina: int) -> Pagina:
    """Incoming messages with críticas (refused at once: schema, hash, login, the operator's rules...),
    newest first; driven by critica.mensagem_id (indexed), far smaller than mensagem."""
    primeira = (select(Critica.mensagem_id.label("mensagem_id"), func.min(Critica.id).label("critica_id"))
                .where(Critica.mensagem_id.is_not(None)).group_by(Critica.mensagem_id).subquery())
    query = (select(Mensagem.id, Mensagem.criada_em, Mensagem.servico, Mensagem.codigo_erro,
                    Mensagem.resultado, Mensagem.remetente, Mensagem.destinatario, Mensagem.endereco,
                    Prestador.nome.label("prestador_nome"), Critica.codigo, Critica.mensagem.label("texto"),
                    Critica.localizacao)
             .select_from(primeira).join(Mensagem, Mensagem.id == primeira.c.mensagem_id)
             .join(Critica, Critica.id == primeira.c.critica_id)
             .outerjoin(Prestador, Prestador.id == Mensagem.prestador_id)
             .where(Mensagem.direcao == "entrada").order_by(primeira.c.mensagem_id.desc()))
    if escopo_prestador is not None:
        query = query.where(Mensagem.prestador_id == escopo_prestador)
    return _pagina(session, query, pagina)


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
    with what may hold their analysis (the situação answer; demonstrativos go by protocol)."""
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
    query = (select(Lote.id.label("lote_id"), Lote.registro_ans, Lote.valor_informado, Lote.protocolo_id,
                    E.numero_protocolo, E.estado, E.situacao_id, E.status)
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
