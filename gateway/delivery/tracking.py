"""Protocol tracking: ask each operator the situação of open lotes, back off as they age, stop at a
final status, and keep the gateway protocol's status as the least advanced of the parts the
operator took (gateway.delivery.outcome).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session, sessionmaker

from adapters.base import Adapter
from gateway.config import EntregaSettings
from gateway.delivery import outbox, outcome
from gateway.delivery.breaker import CircuitBreaker
from gateway.delivery.client import OperatorClient, TransportError, VersaoSemEndereco, padrao
from gateway.delivery.reading import read_answer
from gateway.delivery.state import State
from gateway.delivery.status_names import StatusNames
from gateway.message import reader
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SERVICE_BY_NAME
from gateway.message.situacao import read_situacao
from gateway.message.tables import FINAL_STATUS, RECEBIDO
from gateway.observability import metrics
from gateway.observability.logs import request_context, request_id_var
from gateway.storage import rows
from gateway.storage.models import Entrega

log = logging.getLogger("tiss_gateway.tracking")
_A = f"{{{ANS_NS}}}"
STATUS_SERVICE = SERVICE_BY_NAME["tissSolicitacaoStatusProtocolo"]
_POLL_OUTCOME = {"entregue": "respondida", "repetir": "falha"}  # metrics; "recusada" stays
_CONTRATADO = {"CNPJ": "cnpjContratado", "CPF": "cpfContratado",
               "codigoPrestadorNaOperadora": "codigoPrestadorNaOperadora"}


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


class Tracker:
    def __init__(self, context: TrackerContext, batch: int = 8):
        self.context = context
        self.batch = batch
        self.names = StatusNames(context.adapters)

    def run_once(self) -> int:
        now = self.context.clock()
        lease = timedelta(seconds=self.context.settings.reserva_s)
        with self.context.sessions.begin() as session:
            ids = self._claim(session, now, lease)
        for entrega_id in ids:
            self.poll(entrega_id)
        return len(ids)

    def _claim(self, session: Session, now: datetime, lease: timedelta) -> list[int]:
        """Due protocols; pushing ``proxima_consulta_em`` ahead by the lease is the claim. How late
        each is against its schedule goes to the poll-lag metric."""
        query = (select(Entrega.id, Entrega.registro_ans, Entrega.proxima_consulta_em).where(and_(
            Entrega.estado == State.ENTREGUE, Entrega.proxima_consulta_em <= now,
            Entrega.registro_ans.not_in(self.context.breaker.blocked() or {""})))
            .order_by(Entrega.proxima_consulta_em).limit(self.batch))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = session.execute(query).all()
        ids = [row.id for row in rows]
        if ids:
            session.execute(update(Entrega).where(Entrega.id.in_(ids))
                            .values(proxima_consulta_em=now + lease))
        for row in rows:
            metrics.poll_lag(row.registro_ans, (now - row.proxima_consulta_em).total_seconds())
        return ids

    def poll(self, entrega_id: int) -> None:
        """Under the request id of the message whose protocol it asks about (logs, operator)."""
        with request_context(None):  # _poll sets the id once it has read the delivery
            self._poll(entrega_id)

    def _poll(self, entrega_id: int) -> None:
        context = self.context
        with context.sessions() as session:
            entrega = session.get_one(Entrega, entrega_id)
            request_id_var.set(entrega.request_id)
            registro = entrega.registro_ans
            request, versao = self._request(entrega)
        if not context.breaker.allows(registro):
            metrics.status_poll(registro, "adiada")
            return self._schedule(entrega_id, None, None)
        try:  # in the version of the part it asks about: the endpoint that took the part
            answer = context.client(registro, versao).call(STATUS_SERVICE.name, request)
        except VersaoSemEndereco as exc:
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

    def _request(self, entrega: Entrega) -> tuple[bytes, str]:
        """A solicitacaoStatusProtocoloWS as the provider would send it, through the adapter, and
        its version: the part's own (the operator took the part in it)."""
        part = reader.read(entrega.corpo or b"")
        cabecalho = copy.deepcopy(part.root.find(f"{_A}cabecalho"))
        cabecalho.find(f"{_A}identificacaoTransacao/{_A}tipoTransacao").text = "SOLIC_STATUS_PROTOCOLO"
        root = etree.Element(f"{_A}solicitacaoStatusProtocoloWS", nsmap={"ans": ANS_NS})
        root.append(cabecalho)
        body = etree.SubElement(root, f"{_A}solicitacaoStatusProtocolo")
        dados = etree.SubElement(body, f"{_A}dadosPrestador")
        name, value = _prestador(cabecalho)
        etree.SubElement(dados, f"{_A}{_CONTRATADO[name]}").text = value
        etree.SubElement(body, f"{_A}numeroProtocolo").text = entrega.numero_protocolo
        etree.SubElement(root, f"{_A}hash")
        data = etree.tostring(root, encoding=part.encoding, xml_declaration=True)
        sequencial = str(entrega.id * 1000 + entrega.consultas % 1000)
        adapter = self.context.adapters[entrega.registro_ans]
        envios = adapter.preparar(reader.read(data), sequenciais=lambda _n: [sequencial],
                                  agora=self.context.clock())
        return envios[0].corpo, envios[0].versao

    def _schedule(self, entrega_id: int, status: int | None, exchange: tuple[bytes, bytes] | None) -> None:
        context, now = self.context, self.context.clock()
        with context.sessions.begin() as session:
            entrega = session.get_one(Entrega, entrega_id)
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
