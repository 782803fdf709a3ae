"""The delivery worker: claims deliveries, prepares them through the operator's adapter, sends,
records the answer, retries with backoff, dead-letters; then asks operators about open protocols.

Run any number of them (``tiss-gateway worker``), on any number of hosts sharing the database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from adapters.base import Adapter
from gateway.config import Config
from gateway.delivery import appeals, outbox, outcome, state, tracking
from gateway.delivery.breaker import CircuitBreaker
from gateway.delivery.client import OperatorClients, TransportError, VersaoSemEndereco, padrao
from gateway.delivery.reading import Reading, read_answer
from gateway.delivery.state import State
from gateway.message import reader
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import SERVICE_BY_NAME
from gateway.message.tables import GUIA_ACEITA, GUIA_RECUSADA
from gateway.observability import metrics
from gateway.observability.logs import request_context, request_id_var
from gateway.storage import rows
from gateway.storage.models import Entrega, Mensagem, Protocolo

log = logging.getLogger("tiss_gateway.delivery")
CYCLE_BACKOFF_MAX_S = 30.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def cycle_backoff(idle: float, failures: int) -> float:
    """Seconds to wait after ``failures`` failed cycles in a row: doubling from ``idle`` up to
    CYCLE_BACKOFF_MAX_S, so that a database outage logs one traceback per thread every 30 s instead
    of five a second, and the worker is back within 30 s of the database."""
    return min(CYCLE_BACKOFF_MAX_S, idle * 2 ** min(failures, 16))


class Worker:
    def __init__(self, config: Config, registry: SchemaRegistry, sessions: sessionmaker[Session],
                 adapters: Mapping[str, Adapter], *, name: str | None = None, batch: int = 2,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 clients: OperatorClients | None = None):
        self.config = config
        self.settings = config.entregas
        self.registry = registry
        self.sessions = sessions
        self.adapters = adapters
        self.name = name or worker_name()
        self.batch = batch
        self.clock = clock
        self.breaker = CircuitBreaker(self.settings.circuito_falhas, self.settings.circuito_pausa_s,
                                      on_change=metrics.circuit)
        self.clients = clients or OperatorClients(config)
        self.tracker = tracking.Tracker(tracking.TrackerContext(
            sessions=sessions, clock=clock, settings=self.settings, breaker=self.breaker,
            client=self.clients.client, registry=registry, adapters=adapters))

    # -- loop ----------------------------------------------------------------------------------
    def run(self, stop: threading.Event, idle: float = 0.2) -> None:
        log.info("worker %s iniciado", self.name)
        failures = 0  # cycles in a row
        while not stop.is_set():
            try:
                busy = self.run_once() + self.tracker.run_once()
            except Exception as exc:  # a bug or a database outage must not kill the worker
                failures += 1
                metrics.worker_cycle_failed(database=isinstance(exc, DBAPIError))
                log.exception("falha no ciclo do worker (%s seguida(s))", failures)
                stop.wait(cycle_backoff(idle, failures))
                continue
            if failures:
                log.info("ciclo do worker voltou a funcionar depois de %s falha(s)", failures)
                failures = 0
            if not busy:
                stop.wait(idle)

    def run_once(self) -> int:
        with self.sessions.begin() as session:
            ids = outbox.claim(session, self.name, limit=self.batch, lease=self.settings.reserva_s,
                               now=self.clock(), skip=self.breaker.blocked())
        for entrega_id in ids:
            self.deliver(entrega_id)
        return len(ids)

    # -- one delivery ------------------------------------------------------------------------------
    def deliver(self, entrega_id: int) -> None:
        """Under the request id of the message delivered: in the logs and sent to the operator."""
        with request_context(None):  # _deliver sets the id once it has read the delivery
            self._deliver(entrega_id)

    def _deliver(self, entrega_id: int) -> None:
        with self.sessions.begin() as session:
            entrega = session.get_one(Entrega, entrega_id)
            request_id_var.set(entrega.request_id)
            if not state.held_by(entrega, self.name) or entrega.estado != State.ENVIANDO:
                return  # another worker took it over (our lease expired)
            if entrega.corpo is None and not self._prepare(session, entrega):
                return
            registro, servico, corpo = entrega.registro_ans, entrega.servico, entrega.corpo or b""
        if not self.breaker.allows(registro):
            self._release(entrega_id, "circuito aberto: a operadora falhou seguidamente")
            metrics.delivery(registro, "adiada")
            return
        try:  # the endpoint of the version the adapter prepared it in
            client = self.clients.client(registro, padrao(corpo) or "")
        except VersaoSemEndereco as exc:  # the configuration's doing: the operator is not to blame
            metrics.delivery(registro, self._record(entrega_id, None, Reading("repetir", str(exc))))
            return
        started = time.perf_counter()
        try:
            answer = client.call(servico, corpo)
        except TransportError as exc:
            self.breaker.failure(registro)
            metrics.delivery(registro, self._record(entrega_id, None, Reading("repetir", str(exc))))
            return
        elapsed = time.perf_counter() - started
        reading = read_answer(answer, SERVICE_BY_NAME[servico], self.registry)
        (self.breaker.failure if reading.kind == "repetir" else self.breaker.success)(registro)
        metrics.delivery(registro, self._record(entrega_id, answer.body, reading), elapsed)

    def _prepare(self, session: Session, entrega: Entrega) -> bool:
        """Adapter: split, re-stamp, re-hash, sign. Parts beyond the first become new deliveries;
        all of it commits before anything is sent, so every retry sends these very bytes."""
        request = session.get_one(Mensagem, entrega.mensagem_id)
        message = reader.read(request.corpo)
        now = self.clock()
        if entrega.servico == "tissRecursoGlosa":
            waiting = appeals.translate(session, entrega, message.root)
            if waiting:  # the appealed lote is not at the operator yet: ask again later
                state.postponed(entrega, now, self.settings.espera_max_s / 10, waiting)
                return False
        parts: list[Entrega] = [entrega]

        def sequenciais(count: int) -> list[str]:
            while len(parts) < count:
                extra = Entrega(registro_ans=entrega.registro_ans, servico=entrega.servico,
                                prestador_id=entrega.prestador_id, mensagem_id=entrega.mensagem_id,
                                protocolo_id=entrega.protocolo_id, lote_id=entrega.lote_id,
                                parte=len(parts) + 1, request_id=entrega.request_id, **state.queued(now))
                session.add(extra)
                parts.append(extra)
            session.flush()
            return [str(p.id) for p in parts[:count]]

        try:
            envios = self.adapters[entrega.registro_ans].preparar(message, sequenciais=sequenciais, agora=now)
        except Exception as exc:  # a message the adapter cannot convert: a person must look at it
            log.exception("entrega %s: preparação falhou", entrega.id, extra=_fields(entrega))
            metrics.delivery(entrega.registro_ans, "recusada")
            state.refused(entrega, f"preparação falhou: {exc}", attempted=False)
            return False
        for part, envio in zip(parts, envios, strict=True):
            part.corpo, part.sequencial, part.numero_lote = envio.corpo, envio.sequencial, envio.numero_lote
            part.guias = "\n".join(envio.guias) or None
            part.partes = len(envios)
        return True

    def _release(self, entrega_id: int, motivo: str) -> None:
        with self.sessions.begin() as session:
            entrega = session.get_one(Entrega, entrega_id)
            state.postponed(entrega, self.clock(), self.settings.circuito_pausa_s, motivo)

    def _record(self, entrega_id: int, body: bytes | None, reading: Reading) -> str:
        """Store the attempt and what it means for its lote (gateway.delivery.outcome); returns its
        outcome for the metrics (entregue, recusada, falha, morta, perdida: labels, not states)."""
        now = self.clock()
        with self.sessions.begin() as session:
            entrega = session.get_one(Entrega, entrega_id)
            result, desfecho = self._store(session, entrega, body, reading, now)
            registro = entrega.registro_ans
        metrics.guias(registro, GUIA_ACEITA, desfecho.aceitas)  # once committed
        metrics.guias(registro, GUIA_RECUSADA, desfecho.recusadas)
        return result

    def _store(self, session: Session, entrega: Entrega, body: bytes | None, reading: Reading,
               now: datetime) -> tuple[str, outcome.Desfecho]:
        if not state.held_by(entrega, self.name):
            return "perdida", outcome.Desfecho()  # lease lost meanwhile: the other worker's answer stands
        if entrega.envio_id is None:
            sent = self._mensagem(entrega, "saida", entrega.corpo)
            entrega.envio_id = rows.add_mensagem(session, sent)
        if body is not None:
            answer_id = rows.add_mensagem(session, self._mensagem(entrega, "entrada", body,
                                                                     reading, entrega.envio_id))
            entrega.resposta_id = answer_id
        if reading.kind == "repetir":
            state.failed(entrega, reading.motivo, self.settings, now)
            log.warning("entrega %s (%s) falhou, tentativa %s: %s", entrega.id, entrega.registro_ans,
                        entrega.tentativas, reading.motivo, extra=_fields(entrega))
            return "morta" if entrega.estado == State.MORTA else "falha", outcome.Desfecho()
        if reading.kind == "recusada":
            state.refused(entrega, reading.motivo)
            rows.add_criticas(session, entrega.resposta_id or entrega.envio_id, reading.criticas,
                              lote_id=entrega.lote_id)
            log.info("entrega %s recusada pela operadora: %s", entrega.id, reading.motivo,
                     extra=_fields(entrega))
            return "recusada", outcome.registrar(session, entrega, reading, now)
        state.delivered(entrega, now, reading.numero_protocolo)
        if entrega.servico == "tissLoteGuias":
            tracking.start(entrega, self.settings, now)
        self._single_part_protocol(session, entrega)
        log.info("entrega %s entregue: protocolo da operadora %s", entrega.id, entrega.numero_protocolo,
                 extra=_fields(entrega))
        return "entregue", outcome.registrar(session, entrega, reading, now)

    @staticmethod
    def _single_part_protocol(session: Session, entrega: Entrega) -> None:
        if entrega.protocolo_id is not None and entrega.partes == 1 and entrega.numero_protocolo:
            protocolo = session.get_one(Protocolo, entrega.protocolo_id)
            protocolo.numero_operadora = entrega.numero_protocolo[:40]

    @staticmethod
    def _mensagem(entrega: Entrega, direcao: str, data: bytes | None, reading: Reading | None = None,
                  resposta_de: int | None = None) -> dict:
        data = data or b""
        resultado = {"entregue": "aceita", "recusada": "recusada", "repetir": "erro"}[
            reading.kind] if reading else "aceita"
        return dict(direcao=direcao, servico=entrega.servico, tamanho=len(data), corpo=data,
                    versao=padrao(data), prestador_id=entrega.prestador_id, destinatario=entrega.registro_ans,
                    sequencial_transacao=entrega.sequencial, resultado=resultado,
                    codigo_erro=_codigo(reading),
                    resposta_de_id=resposta_de, request_id=entrega.request_id)


def _fields(entrega: Entrega) -> dict:
    """Extra fields of a delivery's log lines (the JSON logs)."""
    return {"entrega_id": entrega.id, "operadora": entrega.registro_ans, "servico": entrega.servico,
            "parte": entrega.parte}


def _codigo(reading: Reading | None) -> str | None:
    """The Table 38 code of an operator's refusal (the reason of a failure is in ultimo_erro)."""
    if reading is None or reading.kind != "recusada":
        return None
    return next((c.code for c in reading.criticas if c.code), "recusada")
