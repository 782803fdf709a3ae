"""Leases and sends of unknown outcome on a real database (SQLite and PostgreSQL): the heartbeat
renews only what a worker holds, a stopping worker gives back what it holds, and a prepared
delivery taken over from a dead worker is marked ``incerto``: sent again to an operator that
deduplicates sequencialTransacao, held for a person otherwise."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from adapters import Destino, load_adapter
from gateway.config import demo_config
from gateway.delivery import outbox
from gateway.delivery.client import Answer, TransportError
from gateway.delivery.leases import Heartbeat
from gateway.delivery.worker import Worker
from gateway.message.schema_registry import SchemaRegistry
from gateway.storage.db import session_factory
from gateway.storage.models import Entrega, Mensagem
from tests.db_fixtures import add_prestador_and_mensagem, queue_lote
from tests.factory import Party, build_lote
from tests.fake_operadora import FakeOperadora

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PASA = "331988"


def _queue(engine: Engine, count: int) -> list[int]:
    with session_factory(engine).begin() as session:
        prestador, mensagem = add_prestador_and_mensagem(session)
        return [outbox.schedule(session, registro_ans=PASA, servico="tissLoteGuias",
                                prestador_id=prestador.id, mensagem_id=mensagem.id, now=NOW)
                for _ in range(count)]


def _rows(engine: Engine) -> dict[int, Entrega]:
    with session_factory(engine)() as session:
        return {e.id: e for e in session.scalars(select(Entrega))}


def test_the_heartbeat_renews_the_leases_a_worker_holds_and_no_other(db_engine: Engine) -> None:
    first, second, held_aside = _queue(db_engine, 3)
    sessions = session_factory(db_engine)
    with sessions.begin() as session:
        assert outbox.claim(session, "w1", limit=2, lease=30, now=NOW) == [first, second]
        outbox.hold(session, [held_aside], "w1", lease=30, now=NOW)  # unprepared: left to expire
    holding = {"w1": frozenset({first}), "w2": frozenset({second})}  # w2 never held ``second``
    beat = Heartbeat(sessions, lambda: holding.items(), replace(demo_config().entregas, reserva_s=30),
                     clock=lambda: NOW + timedelta(seconds=20))
    assert beat.beat() == 1
    rows = _rows(db_engine)
    assert rows[first].reservada_ate == NOW + timedelta(seconds=50)
    assert rows[second].reservada_ate == rows[held_aside].reservada_ate == NOW + timedelta(seconds=30)
    with sessions.begin() as session:  # past the others' leases: a live worker's stays its own
        assert outbox.claim(session, "w3", limit=5, lease=30, now=NOW + timedelta(seconds=40)) == [
            second, held_aside]


def test_a_stopping_worker_gives_back_what_it_holds_without_counting_an_attempt(db_engine: Engine) -> None:
    unsent, posting, other = _queue(db_engine, 3)
    sessions = session_factory(db_engine)
    with sessions.begin() as session:
        assert outbox.claim(session, "w1", limit=2, lease=30, now=NOW) == [unsent, posting]
        assert outbox.claim(session, "w2", limit=1, lease=30, now=NOW) == [other]
    with sessions.begin() as session:
        assert outbox.release(session, [unsent, other], "w1") == 1  # ``other`` is w2's
        assert outbox.release(session, [posting], "w1", incerto="parou durante o envio") == 1
    rows = _rows(db_engine)
    for entrega_id in (unsent, posting):
        entrega = rows[entrega_id]
        assert (entrega.estado, entrega.reservada_por, entrega.reservada_ate, entrega.tentativas) == (
            "pendente", None, None, 0)
    assert rows[unsent].incerto is None and rows[posting].incerto == "parou durante o envio"
    assert (rows[other].estado, rows[other].reservada_por) == ("enviando", "w2")
    with sessions.begin() as session:  # due at once: the next worker takes them
        assert outbox.claim(session, "w3", limit=5, lease=30, now=NOW) == [unsent, posting]


# --- a worker that dies mid-post, and the one that takes over -------------------------------------

class Died(BaseException):
    """The process ending mid-post (kill -9): nothing after it runs."""


class DiesPosting:
    """Takes the lote (the operator has it), then the worker dies before the answer is recorded."""

    def __init__(self, operadora: FakeOperadora):
        self.operadora = operadora

    def client(self, registro_ans: str, versao: str) -> DiesPosting:
        self.registro_ans = registro_ans
        return self

    def call(self, servico: str, corpo: bytes) -> Answer:
        self.operadora.client(self.registro_ans, "4.03.00").call(servico, corpo)
        raise Died


def _worker(engine: Engine, registry: SchemaRegistry, operadora: object, *, at: datetime,
            sem_deduplicacao: tuple[str, ...] = ()) -> Worker:
    config = demo_config("127.0.0.1:9000")
    entregas = replace(config.entregas, reserva_s=30, sem_deduplicacao=sem_deduplicacao)
    config = replace(config, entregas=entregas)
    adapter = load_adapter("pasa", Destino(PASA, ("4.03.00",)), registry)
    return Worker(config, registry, session_factory(engine), {PASA: adapter}, clock=lambda: at,
                  clients=operadora)  # type: ignore[arg-type]


def _lote_sent_by_a_dying_worker(engine: Engine, registry: SchemaRegistry, operadora: FakeOperadora) -> int:
    entrega_id = queue_lote(engine, PASA, "801", NOW, guias=1)
    with contextlib.suppress(Died):
        _worker(engine, registry, DiesPosting(operadora), at=NOW).run_once()
    assert len(operadora.lotes) == 1
    return entrega_id


def test_a_delivery_taken_over_from_a_dead_worker_is_not_sent_to_an_operator_that_does_not_deduplicate(
        db_engine: Engine, registry: SchemaRegistry) -> None:
    operadora = FakeOperadora()
    entrega_id = _lote_sent_by_a_dying_worker(db_engine, registry, operadora)
    later = _worker(db_engine, registry, operadora, at=NOW + timedelta(seconds=31), sem_deduplicacao=(PASA,))
    assert later.run_once() == 1
    assert len(operadora.lotes) == 1 and operadora.calls == [(PASA, "tissLoteGuias")]  # not sent again
    entrega = _rows(db_engine)[entrega_id]
    assert (entrega.estado, entrega.reservada_por, entrega.tentativas) == ("morta", None, 0)
    assert entrega.incerto is not None and "expirou sem resposta registrada" in entrega.incerto
    erro = entrega.ultimo_erro or ""
    assert "não reenviada" in erro and "lote 801 (sequencialTransacao" in erro
    assert f"entregas retry {entrega_id}" in erro
    with session_factory(db_engine).begin() as session:  # a person asked the operator: it has not
        assert outbox.retry_dead(session, [entrega_id], now=NOW + timedelta(seconds=31)) == 1
    assert later.run_once() == 1 and len(operadora.calls) == 2
    entrega = _rows(db_engine)[entrega_id]
    assert (entrega.estado, entrega.incerto) == ("entregue", None)


def test_a_delivery_taken_over_from_a_dead_worker_is_sent_again_to_an_operator_that_deduplicates(
        db_engine: Engine, registry: SchemaRegistry) -> None:
    operadora = FakeOperadora()
    entrega_id = _lote_sent_by_a_dying_worker(db_engine, registry, operadora)
    early = _worker(db_engine, registry, operadora, at=NOW + timedelta(seconds=29))
    assert early.run_once() == 0  # the lease has not run out yet
    later = _worker(db_engine, registry, operadora, at=NOW + timedelta(seconds=31))
    assert later.run_once() == 1 and len(operadora.calls) == 2  # the same bytes, same sequencial
    entrega = _rows(db_engine)[entrega_id]
    assert entrega.estado == "entregue" and entrega.incerto is not None  # kept: the history


class TimesOut(DiesPosting):
    """Takes the lote, but its answer never comes (a read timeout): the worker lives on."""

    def call(self, servico: str, corpo: bytes) -> Answer:
        self.operadora.client(self.registro_ans, "4.03.00").call(servico, corpo)
        raise TransportError("ReadTimeoutError: read timed out", maybe_sent=True)


class Refuses(DiesPosting):
    """Nothing listens: nothing was sent."""

    def call(self, servico: str, corpo: bytes) -> Answer:
        raise TransportError("NewConnectionError: connection refused")


def _lote(engine: Engine) -> int:
    corpo = build_lote("consulta", 1, numero_lote="802", sequencial="802", party=Party(registro_ans=PASA))
    with session_factory(engine).begin() as session:
        prestador, _mensagem = add_prestador_and_mensagem(session)
        mensagem = Mensagem(direcao="entrada", tamanho=len(corpo), corpo=corpo, prestador_id=prestador.id)
        session.add(mensagem)
        session.flush()
        return outbox.schedule(session, registro_ans=PASA, servico="tissLoteGuias", prestador_id=prestador.id,
                               mensagem_id=mensagem.id, now=NOW)


def test_a_post_that_times_out_is_held_for_an_operator_that_does_not_deduplicate(
        db_engine: Engine, registry: SchemaRegistry) -> None:
    operadora = FakeOperadora()
    entrega_id = _lote(db_engine)
    worker = _worker(db_engine, registry, TimesOut(operadora), at=NOW, sem_deduplicacao=(PASA,))
    assert worker.run_once() == 1
    entrega = _rows(db_engine)[entrega_id]
    assert (entrega.estado, entrega.reservada_por) == ("morta", None)
    assert entrega.incerto is not None and "ReadTimeoutError" in entrega.incerto
    assert "não reenviada" in (entrega.ultimo_erro or "")
    assert _worker(db_engine, registry, operadora, at=NOW + timedelta(hours=1)).run_once() == 0
    assert len(operadora.lotes) == 1


def test_a_post_that_times_out_is_retried_to_an_operator_that_deduplicates_and_a_refused_connection_always(
        db_engine: Engine, registry: SchemaRegistry) -> None:
    operadora = FakeOperadora()
    entrega_id = _lote(db_engine)
    assert _worker(db_engine, registry, TimesOut(operadora), at=NOW).run_once() == 1
    entrega = _rows(db_engine)[entrega_id]
    assert (entrega.estado, entrega.tentativas) == ("pendente", 1) and entrega.incerto

    with session_factory(db_engine).begin() as session:
        second = outbox.schedule(session, registro_ans=PASA, servico="tissLoteGuias",
                                 prestador_id=entrega.prestador_id, mensagem_id=entrega.mensagem_id, now=NOW)
        session.get_one(Entrega, entrega_id).proxima_em = NOW + timedelta(days=1)  # out of the way
    assert _worker(db_engine, registry, Refuses(operadora), at=NOW, sem_deduplicacao=(PASA,)).run_once() == 1
    refused = _rows(db_engine)[second]
    assert (refused.estado, refused.tentativas, refused.incerto) == ("pendente", 1, None)


def test_a_lease_runs_from_the_end_of_a_slow_preparation(db_engine: Engine, registry: SchemaRegistry) -> None:
    """Nothing renews a lease while its lote is prepared in the claim's transaction: a preparation
    that took more than a third of the lease renews it at the end, so no other worker takes over a
    lote that was never sent."""
    entrega_id = queue_lote(db_engine, PASA, "811", NOW, guias=1)
    ticks = iter([NOW])  # the claim's time, then 20 s later for everything after it (preparing)
    made = _worker(db_engine, registry, FakeOperadora(), at=NOW)
    made.clock = lambda: next(ticks, NOW + timedelta(seconds=20))
    made._send_all = lambda ready: None  # type: ignore[method-assign]  # claimed and prepared, not sent
    assert made.run_once() == 1
    with session_factory(db_engine)() as session:
        entrega = session.get(Entrega, entrega_id)
        assert entrega is not None and entrega.corpo  # prepared
        assert entrega.reservada_ate == NOW + timedelta(seconds=20 + 30)
