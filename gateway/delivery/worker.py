"""The delivery worker: claims deliveries, prepares them through the operator's adapter, sends,
records the answer, retries with backoff, dead-letters; then asks operators about open protocols.

Run any number of them (``tiss-gateway worker``), on any number of hosts sharing the database.

Two transactions per delivery: the claim of a batch, which also prepares what has not been
prepared yet and reads the bytes to send, and the record of each answer. An idle worker reads
whether anything is due before it claims (on SQLite a claim takes the database's one write lock),
and asks for due status queries at most every second or so (they are minutes apart).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, defer, sessionmaker

from adapters.base import Adapter
from gateway.config import Config
from gateway.delivery import appeals, arquivo, leases, outbox, outcome, state, tracking
from gateway.delivery.breaker import CircuitBreaker
from gateway.delivery.client import OperatorClients, TransportError, VersaoSemEndereco, padrao
from gateway.delivery.reading import Reading, read_answer
from gateway.delivery.state import State
from gateway.message import credencial, reader
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import SERVICE_BY_NAME
from gateway.message.tables import GUIA_ACEITA, GUIA_RECUSADA
from gateway.observability import metrics
from gateway.observability.logs import request_context
from gateway.security import vault
from gateway.storage import db, rows
from gateway.storage.models import MENSAGEM_TABLE, PROTOCOLO_TABLE, Entrega
from gateway.storage.prepared import Prepared

log = logging.getLogger("tiss_gateway.delivery")
CYCLE_BACKOFF_MAX_S = 30.0
TRACKING_PAUSE_S = 1.0  # after a tracker cycle that found nothing due (at most consulta_inicial_s)
# The operator's number of a lote sent whole, on its gateway protocol (no need to load the row).
_NUMERO_OPERADORA = Prepared(PROTOCOLO_TABLE.update().where(PROTOCOLO_TABLE.c.id == bindparam("protocolo_id"))
                             .values(numero_operadora=bindparam("numero")))
_SEM_CORPO = (defer(Entrega.corpo),)  # recording an answer: the sent bytes are in hand
_CORPO = Prepared(select(MENSAGEM_TABLE.c.corpo).where(MENSAGEM_TABLE.c.id == bindparam("id")))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def cycle_backoff(idle: float, failures: int) -> float:
    """Seconds to wait after ``failures`` failed cycles in a row: doubling from ``idle`` up to
    CYCLE_BACKOFF_MAX_S, so that a database outage logs one traceback per thread every 30 s instead
    of five a second, and the worker is back within 30 s of the database."""
    return min(CYCLE_BACKOFF_MAX_S, idle * 2 ** min(failures, 16))


class _Unprepared(Exception):
    """A claimed delivery whose preparation raised (the cause): its batch is rolled back, and it
    alone is leased, out of the queue until its lease ends, as if its worker had died."""

    def __init__(self, entrega_id: int):
        super().__init__(entrega_id)
        self.entrega_id = entrega_id


@dataclass(frozen=True)
class Sending:
    """A claimed delivery, prepared: what sending it and recording the answer need."""

    entrega_id: int
    registro_ans: str
    servico: str
    corpo: bytes  # the prepared bytes (every attempt sends these), senhaPrestador masked
    request_id: str | None  # the accepting request's: logged and sent along
    senha_cifrada: bytes | None = None  # put back into corpo in memory to send (gateway.security.vault)


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
            client=self.clients.client, registry=registry, adapters=adapters,
            poll_timeout_s=max((o.timeout_s for o in config.operadoras.values()), default=30.0)))
        bind = sessions.kw.get("bind")  # reads that need no write lock (SQLite): the idle peek
        self.readers = db.reader_factory(bind) if isinstance(bind, Engine) else sessions
        self._idle = False  # the last claim found nothing: peek before the next one
        self._tracking_pause = min(TRACKING_PAUSE_S, self.settings.consulta_inicial_s)
        self._tracking_at = 0.0  # time.monotonic() before which the tracker is not asked
        self._stop = threading.Event()  # run()'s: set, the worker claims nothing more
        # What it holds now, read by the heartbeat and by a stop past its bound (other threads):
        # replaced whole, never changed in place.
        self.holding: frozenset[int] = frozenset()
        self.in_flight: int | None = None  # the delivery being posted

    # -- loop ----------------------------------------------------------------------------------
    def run(self, stop: threading.Event, idle: float = 0.2) -> None:
        log.info("worker %s iniciado", self.name)
        self._stop = self.tracker.stop = stop
        failures = 0  # cycles in a row
        while not stop.is_set():
            try:
                busy = self.cycle()
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

    def cycle(self) -> int:
        """One turn of :meth:`run`: deliveries, then status queries; returns how many it did."""
        return self.run_once() + self._track()

    def run_once(self) -> int:
        """Claim a batch of due deliveries, prepare those sent for the first time (in the same
        transaction: every retry sends these bytes), then send each; returns how many it claimed."""
        now, skip = self.clock(), self.breaker.blocked()
        if self._idle and not self._due(now, skip):
            return 0
        claimed, ready = self._claim(now, skip)
        self._idle = not claimed
        self._send_all(ready)
        return claimed

    def _send_all(self, ready: list[Sending]) -> None:
        """Send a claimed batch, one by one, holding its leases (the heartbeat renews them) until
        each answer is recorded; once stopping, the rest goes back to the queue unsent."""
        self.holding = frozenset(s.entrega_id for s in ready)
        try:
            for index, sending in enumerate(ready):
                if self._stop.is_set():
                    self._give_back([s.entrega_id for s in ready[index:]])
                    return
                self.in_flight = sending.entrega_id
                self.deliver(sending)
                self.in_flight = None
                self.holding = self.holding - {sending.entrega_id}
        finally:  # an exception (the database) leaves the rest leased: taken over when it expires
            self.in_flight, self.holding = None, frozenset()

    def _give_back(self, ids: list[int], incerto: str | None = None) -> None:
        with self.sessions.begin() as session:
            released = outbox.release(session, ids, self.name, incerto=incerto)
        log.info("worker %s parando: %s entrega(s) devolvida(s) à fila%s", self.name, released,
                 " (envio de desfecho incerto)" if incerto else "")

    def abandon(self) -> None:
        """From another thread, once the stop's bound has passed while this worker still holds
        deliveries: the one being posted goes back marked ``incerto`` (the operator may have it),
        the others unsent; no lease is left behind."""
        in_flight, holding = self.in_flight, self.holding
        if in_flight is not None:
            self._give_back([in_flight], f"o worker {self.name} parou durante o envio")
        if holding - {in_flight}:
            self._give_back(sorted(holding - {in_flight}))

    def _claim(self, now: datetime, skip: set[str]) -> tuple[int, list[Sending]]:
        """(how many were claimed, those ready to send), in one transaction."""
        try:
            with self.sessions.begin() as session:
                claimed = outbox.claim_rows(session, self.name, limit=self.batch,
                                            lease=self.settings.reserva_s, now=now, skip=skip)
                ready = [s for entrega in claimed if not self._held_back(entrega)
                         and (s := self._ready(session, entrega))]
                later = self.clock()  # nothing renews a lease while its lote is prepared: renewed here
                if ready and (later - now).total_seconds() > self.settings.reserva_s / 3:
                    outbox.renew(session, [s.entrega_id for s in ready], self.name,
                                 lease=self.settings.reserva_s, now=later)
                return len(claimed), ready
        except _Unprepared as failed:  # the batch rolled back: the others go in the next cycles
            with self.sessions.begin() as session:
                outbox.hold(session, [failed.entrega_id], self.name, lease=self.settings.reserva_s, now=now)
            log.error("entrega %s não pôde ser preparada: tentada de novo em %.0f s", failed.entrega_id,
                      self.settings.reserva_s, extra={"entrega_id": failed.entrega_id})
            raise failed.__cause__ or failed from None  # logged and counted by run()

    def _held_back(self, entrega: Entrega) -> bool:
        """An earlier send's outcome is unknown and its operator does not deduplicate: not sent
        again, a dead letter for a person (gateway.delivery.leases)."""
        motivo = leases.hold_back(entrega, self.settings)
        if motivo is None:
            return False
        state.uncertain(entrega, motivo)
        metrics.delivery(entrega.registro_ans, "incerta")
        log.error("entrega %s retida: %s", entrega.id, motivo, extra=_fields(entrega))
        return True

    def _due(self, now: datetime, skip: set[str]) -> bool:
        with self.readers() as session:
            return outbox.due(session, now=now, skip=skip)

    def _track(self) -> int:
        """The tracker's cycle, skipped for a moment after one that found nothing due: a claim
        per delivery cycle cost as much as the delivery's own."""
        if time.monotonic() < self._tracking_at:
            return 0
        polled = self.tracker.run_once()
        if not polled:
            self._tracking_at = time.monotonic() + self._tracking_pause
        return polled

    def _ready(self, session: Session, entrega: Entrega) -> Sending | None:
        """A delivery just claimed, prepared if it never was (None: nothing to send now)."""
        with request_context(entrega.request_id):
            try:
                if entrega.corpo is None and not self._prepare(session, entrega):
                    return None
            except DBAPIError:
                raise
            except Exception as exc:  # a defect, or a stored message that does not parse
                raise _Unprepared(entrega.id) from exc
        return Sending(entrega.id, entrega.registro_ans, entrega.servico, entrega.corpo or b"",
                       entrega.request_id, entrega.senha_cifrada)

    # -- one delivery ------------------------------------------------------------------------------
    def deliver(self, sending: Sending) -> None:
        """Under the request id of the message delivered: in the logs and sent to the operator."""
        with request_context(sending.request_id):
            self._deliver(sending)

    def _deliver(self, sending: Sending) -> None:
        registro, corpo = sending.registro_ans, sending.corpo
        operadora = self.config.operadoras.get(registro)
        if operadora is not None and arquivo.vai_por_arquivo(operadora, sending.servico):  # a portal's file
            feito = arquivo.entregar(self.sessions, sending.entrega_id, corpo, self.adapters[registro],
                                     operadora, self.name, self.clock())
            metrics.delivery(registro, feito)
            return
        if not self.breaker.allows(registro):
            self._release(sending.entrega_id, "circuito aberto: a operadora falhou seguidamente")
            metrics.delivery(registro, "adiada")
            return
        try:  # the endpoint of the version the adapter prepared it in
            client = self.clients.client(registro, padrao(corpo) or "")
        except VersaoSemEndereco as exc:  # the configuration's doing: the operator is not to blame
            metrics.delivery(registro, self._record(sending, None, Reading("repetir", str(exc))))
            return
        try:  # the senha the provider sent, in memory only: same length, hash and signature hold
            corpo = vault.with_senha(corpo, sending.senha_cifrada)
        except ValueError as exc:  # another key (or none) than the one that sealed it
            metrics.delivery(registro, self._record(sending, None, Reading("repetir", str(exc))))
            return
        started = time.perf_counter()
        try:
            answer = client.call(sending.servico, corpo)
        except TransportError as exc:
            self.breaker.failure(registro)
            incerto = f"sem resposta da operadora depois de conectar: {exc}" if exc.maybe_sent else None
            metrics.delivery(registro, self._record(sending, None, Reading("repetir", str(exc)), incerto))
            return
        elapsed = time.perf_counter() - started
        reading = read_answer(answer, SERVICE_BY_NAME[sending.servico], self.registry)
        (self.breaker.failure if reading.kind == "repetir" else self.breaker.success)(registro)
        metrics.delivery(registro, self._record(sending, answer.body, reading), elapsed)

    def _prepare(self, session: Session, entrega: Entrega) -> bool:
        """Adapter: split, re-stamp, re-hash, sign. Parts beyond the first become new deliveries;
        all of it commits before anything is sent, so every retry sends these very bytes."""
        [(corpo,)] = _CORPO.rows(session, {"id": entrega.mensagem_id})  # the message as accepted
        message = reader.read(vault.with_senha(corpo, entrega.senha_cifrada))  # stored without its senha
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
            entrega.senha_cifrada = None  # refused here: nothing will be sent
            for extra in parts[1:]:  # parts numbered for it: they would be prepared (and split) again
                session.delete(extra)
            return False
        for part, envio in zip(parts, envios, strict=True):
            # Hashed and signed with the real senha; kept masked, the senha sealed beside it.
            redaction = credencial.redact(envio.corpo)
            part.corpo, part.senha_cifrada = redaction.corpo, vault.seal_spans(redaction.spans)
            part.sequencial, part.numero_lote = envio.sequencial, envio.numero_lote
            part.guias = "\n".join(envio.guias) or None
            part.partes = len(envios)
        return True

    def _release(self, entrega_id: int, motivo: str) -> None:
        with self.sessions.begin() as session:
            entrega = session.get_one(Entrega, entrega_id, options=_SEM_CORPO)
            if state.held_by(entrega, self.name):  # else another worker has it now
                state.postponed(entrega, self.clock(), self.settings.circuito_pausa_s, motivo)

    def _record(self, sending: Sending, body: bytes | None, reading: Reading,
                incerto: str | None = None) -> str:
        """Store the attempt and what it means for its lote (gateway.delivery.outcome); returns its
        outcome for the metrics (entregue, recusada, falha, morta, perdida: labels, not states).
        ``incerto``: the operator may have it though no answer came (gateway.delivery.leases)."""
        now = self.clock()
        with self.sessions.begin() as session:
            entrega = session.get_one(Entrega, sending.entrega_id, options=_SEM_CORPO)
            if incerto is not None and state.held_by(entrega, self.name):
                entrega.incerto = incerto[:state.MAX_ERRO]
            result, desfecho = self._store(session, entrega, sending.corpo, body, reading, now)
            registro = entrega.registro_ans
        metrics.guias(registro, GUIA_ACEITA, desfecho.aceitas)  # once committed
        metrics.guias(registro, GUIA_RECUSADA, desfecho.recusadas)
        return result

    def _store(self, session: Session, entrega: Entrega, corpo: bytes, body: bytes | None, reading: Reading,
               now: datetime) -> tuple[str, outcome.Desfecho]:
        if not state.held_by(entrega, self.name):
            return "perdida", outcome.Desfecho()  # lease lost meanwhile: the other worker's answer stands
        if entrega.envio_id is None:  # stored masked, with the SHA-256 of the bytes sent
            sent = self._mensagem(entrega, "saida", _as_sent(corpo, entrega.senha_cifrada))
            entrega.envio_id = rows.add_mensagem(session, sent)
        if body is not None:
            answer_id = rows.add_mensagem(session, self._mensagem(entrega, "entrada", body,
                                                                     reading, entrega.envio_id))
            entrega.resposta_id = answer_id
        try:
            return self._outcome(session, entrega, reading, now)
        finally:
            if entrega.estado in (State.ENTREGUE, State.RECUSADA) and entrega.proxima_consulta_em is None:
                entrega.senha_cifrada = None  # nothing will be sent any more (a dead one may be retried)

    def _outcome(self, session: Session, entrega: Entrega, reading: Reading,
                 now: datetime) -> tuple[str, outcome.Desfecho]:
        if reading.kind == "repetir" and (motivo := leases.hold_back(entrega, self.settings)) is not None:
            state.uncertain(entrega, motivo)  # no answer, and a resend may be taken as a second lote
            log.error("entrega %s retida: %s", entrega.id, motivo, extra=_fields(entrega))
            return "incerta", outcome.Desfecho()
        if reading.kind == "repetir":
            state.failed(entrega, reading.motivo, self.settings, now)
            log.warning("entrega %s (%s) falhou, tentativa %s: %s", entrega.id, entrega.registro_ans,
                        entrega.tentativas, reading.motivo, extra=_fields(entrega))
            return "morta" if entrega.estado == State.MORTA else "falha", outcome.Desfecho()
        if (motivo := leases.already_there(entrega, reading)) is not None:
            state.uncertain(entrega, motivo)
            log.error("entrega %s retida: %s", entrega.id, motivo, extra=_fields(entrega))
            return "incerta", outcome.Desfecho()
        if reading.kind == "recusada":
            state.refused(entrega, reading.motivo)
            rows.add_criticas(session, entrega.resposta_id or entrega.envio_id, reading.criticas,
                              lote_id=entrega.lote_id)
            log.info("entrega %s recusada pela operadora: %s", entrega.id, reading.motivo,
                     extra=_fields(entrega))
            return "recusada", outcome.registrar(session, entrega, reading, now)
        state.delivered(entrega, now, reading.numero_protocolo)
        if entrega.incerto:  # the operator answered the repeat (it deduplicates): kept as history
            log.warning("entrega %s entregue depois de um envio de desfecho incerto (%s): protocolo %s",
                        entrega.id, entrega.incerto, reading.numero_protocolo, extra=_fields(entrega))
        if entrega.servico == "tissLoteGuias":
            tracking.start(entrega, self.settings, now)
        self._single_part_protocol(session, entrega)
        log.info("entrega %s entregue: protocolo da operadora %s", entrega.id, entrega.numero_protocolo,
                 extra=_fields(entrega))
        return "entregue", outcome.registrar(session, entrega, reading, now)

    @staticmethod
    def _single_part_protocol(session: Session, entrega: Entrega) -> None:
        if entrega.protocolo_id is not None and entrega.partes == 1 and entrega.numero_protocolo:
            _NUMERO_OPERADORA.execute(session, {"protocolo_id": entrega.protocolo_id,
                                                "numero": entrega.numero_protocolo[:40]}).close()

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


def _as_sent(corpo: bytes, senha_cifrada: bytes | None) -> bytes:
    """The bytes sent, to be stored masked with their SHA-256; the masked ones if the key fails."""
    try:
        return vault.with_senha(corpo, senha_cifrada)
    except ValueError:
        return corpo


def _fields(entrega: Entrega) -> dict:
    """Extra fields of a delivery's log lines (the JSON logs)."""
    return {"entrega_id": entrega.id, "operadora": entrega.registro_ans, "servico": entrega.servico,
            "parte": entrega.parte}


def _codigo(reading: Reading | None) -> str | None:
    """The Table 38 code of an operator's refusal (the reason of a failure is in ultimo_erro)."""
    if reading is None or reading.kind != "recusada":
        return None
    return next((c.code for c in reading.criticas if c.code), "recusada")
