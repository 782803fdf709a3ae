"""Protocol tracking: ask each operator the situação of open lotes, back off as they age, stop at a
final status, and keep the gateway protocol's status as the least advanced of the parts the
operator took (gateway.delivery.outcome).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree
from sqlalchemy import Integer, bindparam, select, update
from sqlalchemy.orm import Session, defer, sessionmaker

from adapters.base import Adapter
from gateway.config import EntregaSettings
from gateway.delivery import outbox, outcome
from gateway.delivery.breaker import CircuitBreaker
from gateway.delivery.client import (
    OperatorClient,
    TransportError,
    VersaoSemEndereco,
    declared_encoding,
    padrao,
)
from gateway.delivery.reading import read_answer
from gateway.delivery.state import State
from gateway.delivery.status_names import StatusNames
from gateway.message import reader
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SERVICE_BY_NAME
from gateway.message.situacao import read_situacao
from gateway.message.tables import FINAL_STATUS, RECEBIDO
from gateway.observability import metrics
from gateway.observability.logs import request_context
from gateway.security import vault
from gateway.storage import rows
from gateway.storage.models import ENTREGA_TABLE, Entrega

log = logging.getLogger("tiss_gateway.tracking")
_A = f"{{{ANS_NS}}}"
STATUS_SERVICE = SERVICE_BY_NAME["tissSolicitacaoStatusProtocolo"]
_POLL_OUTCOME = {"entregue": "respondida", "repetir": "falha"}  # metrics; "recusada" stays
_CONTRATADO = {"CNPJ": "cnpjContratado", "CPF": "cpfContratado",
               "codigoPrestadorNaOperadora": "codigoPrestadorNaOperadora"}


@dataclass(frozen=True)
class Due:
    """A part whose status is due, as claimed: what asking the operator about it needs."""

    id: int
    registro_ans: str
    corpo: bytes  # the part as sent: the status query copies its cabeçalho (its version, encoding)
    numero_protocolo: str | None
    consultas: int
    request_id: str | None
    senha_cifrada: bytes | None = None  # corpo's senhaPrestador, sealed (gateway.security.vault)


_E = ENTREGA_TABLE
# Built once (the worker asks every cycle it is not delivering); SQLite ignores FOR UPDATE. The
# estado test is an expression (estado || ''): as a plain column SQLite took the (estado,
# proxima_em) index for it and read every part ever delivered, 73 ms a claim at 200k of them
# (holding the write lock); the proxima_consulta_em index finds the few due (PostgreSQL's choice).
_CLAIM = (select(_E.c.id, _E.c.registro_ans, _E.c.proxima_consulta_em, _E.c.corpo, _E.c.numero_protocolo,
                 _E.c.consultas, _E.c.request_id, _E.c.senha_cifrada)
          .where((_E.c.estado + "") == State.ENTREGUE, _E.c.proxima_consulta_em <= bindparam("now"),
                 _E.c.registro_ans.not_in(bindparam("blocked", expanding=True)))
          .order_by(_E.c.proxima_consulta_em).limit(bindparam("limit", type_=Integer))
          .with_for_update(skip_locked=True))


def start(entrega: Entrega, settings: EntregaSettings, now: datetime) -> None:
    """A lote just delivered: "Recebido" until the operator says otherwise, first asked soon."""
    entrega.status, entrega.status_em = RECEBIDO, now
    entrega.proxima_consulta_em = now + timedelta(seconds=outbox.next_status_query(settings, 0))


@dataclass(frozen=True)
class TrackerContext:
    """What the tracker shares with the worker that runs it (built by the worker)."""

    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    settings: EntregaSettings
    breaker: CircuitBreaker  # the worker's: an operator failing deliveries is not asked either
    client: Callable[[str, str], OperatorClient]  # (registro ANS, versão) -> the operator's endpoint
    registry: SchemaRegistry
    adapters: Mapping[str, Adapter]  # registro ANS -> the operator's adapter
    poll_timeout_s: float = 30.0  # the longest an operator may take to answer one poll


class Tracker:
    def __init__(self, context: TrackerContext, batch: int = 8):
        self.context = context
        self.batch = batch
        self.names = StatusNames(context.adapters)
        self.stop = threading.Event()  # the worker's, once it runs: set, no more polls

    def run_once(self) -> int:
        """Poll the due parts; once :attr:`stop` is set the rest wait for their claim to run out."""
        now = self.context.clock()
        # The claim is not renewed by the heartbeat: it covers the whole batch's polls.
        lease = timedelta(seconds=self.context.settings.reserva_s + self.batch * self.context.poll_timeout_s)
        with self.context.sessions.begin() as session:
            due = self._claim(session, now, lease)
        for part in due:
            if self.stop.is_set():
                break
            self.poll(part)
        return len(due)

    def _claim(self, session: Session, now: datetime, lease: timedelta) -> list[Due]:
        """Due protocols, with what asking about them needs (no other read before the call);
        pushing ``proxima_consulta_em`` ahead by the lease is the claim. How late each is against
        its schedule goes to the poll-lag metric."""
        rows = session.execute(_CLAIM, {"now": now, "limit": self.batch,
                                        "blocked": list(self.context.breaker.blocked()) or [""]}).all()
        if rows:
            session.execute(update(_E).where(_E.c.id.in_([row.id for row in rows]))
                            .values(proxima_consulta_em=now + lease))
        for row in rows:
            metrics.poll_lag(row.registro_ans, (now - row.proxima_consulta_em).total_seconds())
        return [Due(row.id, row.registro_ans, row.corpo or b"", row.numero_protocolo, row.consultas,
                    row.request_id, row.senha_cifrada) for row in rows]

    def poll(self, due: Due) -> None:
        """Under the request id of the message whose protocol it asks about (logs, operator)."""
        with request_context(due.request_id):
            self._poll(due)

    def _poll(self, due: Due) -> None:
        context, entrega_id, registro = self.context, due.id, due.registro_ans
        if not context.breaker.allows(registro):
            metrics.status_poll(registro, "adiada")
            return self._schedule(entrega_id, None, None)
        try:  # in the version of the part it asks about: the endpoint that took the part
            request, versao = self._request(due)  # ChaveInvalida: the senha's seal cannot be opened
            answer = context.client(registro, versao).call(STATUS_SERVICE.name, request)
        except (VersaoSemEndereco, vault.ChaveInvalida) as exc:
            metrics.status_poll(registro, "falha")
            log.warning("consulta de situação da entrega %s: %s", entrega_id, exc,
                        extra={"entrega_id": entrega_id, "operadora": registro})
            return self._schedule(entrega_id, None, None)
        except TransportError as exc:
            context.breaker.failure(registro)
            metrics.status_poll(registro, "falha")
            log.warning("consulta de situação da entrega %s falhou: %s", entrega_id, exc,
                        extra={"entrega_id": entrega_id, "operadora": registro})
            return self._schedule(entrega_id, None, None)
        reading = read_answer(answer, STATUS_SERVICE, context.registry)
        (context.breaker.failure if reading.kind == "repetir" else context.breaker.success)(registro)
        metrics.status_poll(registro, _POLL_OUTCOME.get(reading.kind, reading.kind))
        status = _status_of(reading.message.root) if reading.kind == "entregue" and reading.message else None
        log.debug("consulta de situação da entrega %s: %s", entrega_id, reading.kind,
                  extra={"entrega_id": entrega_id, "operadora": registro, "status": status})
        self._schedule(entrega_id, status, (request, answer.body))

    def _request(self, entrega: Due) -> tuple[bytes, str]:
        """A solicitacaoStatusProtocoloWS as the provider would send it, through the adapter, and
        its version: the part's own (the operator took the part in it)."""
        encoding = declared_encoding(entrega.corpo)
        # The part is stored without its senha: the operator gets the one the provider sent.
        cabecalho = copy.deepcopy(_cabecalho(vault.with_senha(entrega.corpo, entrega.senha_cifrada)))
        cabecalho.find(f"{_A}identificacaoTransacao/{_A}tipoTransacao").text = "SOLIC_STATUS_PROTOCOLO"
        root = etree.Element(f"{_A}solicitacaoStatusProtocoloWS", nsmap={"ans": ANS_NS})
        root.append(cabecalho)
        body = etree.SubElement(root, f"{_A}solicitacaoStatusProtocolo")
        dados = etree.SubElement(body, f"{_A}dadosPrestador")
        name, value = _prestador(cabecalho)
        etree.SubElement(dados, f"{_A}{_CONTRATADO[name]}").text = value
        etree.SubElement(body, f"{_A}numeroProtocolo").text = entrega.numero_protocolo
        etree.SubElement(root, f"{_A}hash")
        data = etree.tostring(root, encoding=encoding, xml_declaration=True)
        request = reader.TissMessage(data, etree.ElementTree(root), root, etree.QName(root).localname,
                                     (cabecalho.findtext(f"{_A}Padrao") or "").strip() or None, encoding,
                                     False)  # built here: nothing to parse again
        sequencial = str(entrega.id * 1000 + entrega.consultas % 1000)
        adapter = self.context.adapters[entrega.registro_ans]
        envios = adapter.preparar(request, sequenciais=lambda _n: [sequencial], agora=self.context.clock())
        return envios[0].corpo, envios[0].versao

    def _schedule(self, entrega_id: int, status: int | None, exchange: tuple[bytes, bytes] | None) -> None:
        context, now = self.context, self.context.clock()
        with context.sessions.begin() as session:
            entrega = session.get_one(Entrega, entrega_id, options=(defer(Entrega.corpo),))  # not needed
            entrega.consultas += 1
            if exchange is not None:
                sent = rows.add_mensagem(session, _row(entrega, "saida", exchange[0]))
                answer = _row(entrega, "entrada", exchange[1], sent)
                entrega.situacao_id = rows.add_mensagem(session, answer)
                rows.bump_versao(session, entrega.protocolo_id)  # its values are the lote's situação's
            if status is not None:
                if status != entrega.status:
                    log.info("entrega %s: situação %s -> %s", entrega.id, entrega.status,
                             self.names.describe(entrega.registro_ans, status),
                             extra={"entrega_id": entrega.id, "operadora": entrega.registro_ans,
                                    "status": status})
                entrega.status, entrega.status_em = status, now
                self._aggregate(session, entrega, now)
            if entrega.status in FINAL_STATUS:
                entrega.proxima_consulta_em = None  # the operator will not change it any more
                entrega.senha_cifrada = None  # nor will it be asked again
            else:
                delay = outbox.next_status_query(context.settings, entrega.consultas)
                entrega.proxima_consulta_em = now + timedelta(seconds=delay)

    @staticmethod
    def _aggregate(session: Session, entrega: Entrega, now: datetime) -> None:
        """The lote protocol follows its parts (gateway.delivery.outcome: refused parts left out,
        RECUSADO_PELA_OPERADORA kept)."""
        if entrega.protocolo_id is not None:
            outcome.atualizar_protocolo(session, entrega.protocolo_id, entrega.registro_ans, now)


def _status_of(root: etree._Element) -> int | None:
    """The operator's statusProtocolo in its (validated) situacaoProtocoloWS; None if it has none."""
    situacao = read_situacao(root)
    return situacao.status if situacao is not None else None


def _cabecalho(corpo: bytes, chunk: int = 16384) -> etree._Element:
    """The cabeçalho of a part as sent, parsed from the part's first bytes only (it opens every
    *WS document; a part may have 15 MB of guides after it)."""
    parser = etree.XMLPullParser(events=("end",), tag=f"{_A}cabecalho", resolve_entities=False,
                                 no_network=True, load_dtd=False, huge_tree=True)
    for start in range(0, len(corpo), chunk):
        parser.feed(corpo[start:start + chunk])
        for _event, element in parser.read_events():
            return element
    raise ValueError("parte sem cabecalho")


def _prestador(cabecalho: etree._Element) -> tuple[str, str]:
    ident = cabecalho.find(f"{_A}origem/{_A}identificacaoPrestador")
    for child in ident if ident is not None else ():
        name = etree.QName(child).localname
        if name in _CONTRATADO and child.text:
            return name, child.text.strip()
    raise ValueError("cabecalho sem identificação do prestador")


def _row(entrega: Entrega, direcao: str, data: bytes, resposta_de: int | None = None) -> dict:
    return dict(direcao=direcao, servico=STATUS_SERVICE.name, tamanho=len(data), corpo=data,
                versao=padrao(data), prestador_id=entrega.prestador_id, destinatario=entrega.registro_ans,
                resultado="aceita", resposta_de_id=resposta_de, request_id=entrega.request_id)
