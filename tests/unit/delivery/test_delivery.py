"""The delivery machinery on its own: circuit breaker, backoff, outbox claims on a real database
(SQLite and PostgreSQL) with concurrent claimers, and the worker's transactions per delivery."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, select

from adapters import Adapter, AdapterError, Destino, Envio, load_adapter
from gateway.config import EntregaSettings, demo_config
from gateway.delivery import outbox, state
from gateway.delivery.breaker import CircuitBreaker
from gateway.delivery.client import Answer, declared_encoding, soap_envelope
from gateway.delivery.worker import Worker
from gateway.message.reader import MessageError, TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.storage.db import session_factory
from gateway.storage.models import Entrega, Mensagem
from tests.db_fixtures import add_prestador_and_mensagem, queue_lote
from tests.fake_operadora import FakeOperadora

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)



class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_and_lets_one_trial_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, pause=10, clock=clock)
    for _ in range(2):
        breaker.failure("329665")
    assert breaker.allows("329665") and not breaker.blocked()
    breaker.failure("329665")
    assert not breaker.allows("329665") and breaker.blocked() == {"329665"}
    assert breaker.allows("331988")  # one operator's trouble is its own
    clock.now = 10.5
    assert breaker.allows("329665")  # half-open: one trial
    assert not breaker.allows("329665")  # and only one
    breaker.failure("329665")
    assert not breaker.allows("329665")  # reopened for another pause
    clock.now = 21
    assert breaker.allows("329665")
    breaker.success("329665")
    assert breaker.allows("329665") and breaker.allows("329665") and not breaker.blocked()


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(failures=2, pause=10, clock=FakeClock())
    breaker.failure("x")
    breaker.success("x")
    breaker.failure("x")
    assert breaker.allows("x")


def test_backoff_doubles_with_jitter_up_to_the_ceiling() -> None:
    settings = EntregaSettings(espera_inicial_s=2, espera_max_s=60)
    rng = random.Random(7)
    for tentativas, ceiling in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (30, 60)]:
        delays = [state.retry_delay(settings, tentativas, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (tentativas, min(delays), max(delays))
        assert max(delays) - min(delays) > ceiling / 4  # jitter spreads the retries


def test_status_queries_back_off_as_the_protocol_ages() -> None:
    settings = EntregaSettings(consulta_inicial_s=300, consulta_max_s=6 * 3600)
    delays = [outbox.next_status_query(settings, n) for n in range(10)]
    assert delays[0] == 300 and delays == sorted(delays) and delays[-1] == 6 * 3600


def test_the_envelope_keeps_the_document_bytes_and_its_declared_encoding() -> None:
    text = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<ans:x xmlns:ans="u">ção</ans:x>'
    document = text.encode("latin-1")
    wrapped = soap_envelope(document)
    assert wrapped.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<soapenv:Envelope')
    assert '<ans:x xmlns:ans="u">ção</ans:x>'.encode("latin-1") in wrapped
    assert declared_encoding(document) == "ISO-8859-1" and declared_encoding(b"<a/>") == "UTF-8"


def _queue(engine: Engine, count: int) -> list[int]:
    with session_factory(engine).begin() as session:
        prestador, mensagem = add_prestador_and_mensagem(session)
        return [outbox.schedule(session, registro_ans="329665", servico="tissLoteGuias",
                                prestador_id=prestador.id, mensagem_id=mensagem.id, now=NOW)
                for _ in range(count)]


def test_concurrent_claims_never_share_a_delivery(db_engine: Engine) -> None:
    ids = _queue(db_engine, 60)
    sessions = session_factory(db_engine)
    taken: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def claimer(name: str) -> None:
        barrier.wait()
        mine: list[int] = []
        while True:
            with sessions.begin() as session:
                got = outbox.claim(session, name, limit=3, lease=60, now=NOW)
            if not got:
                break
            mine += got
        taken[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [i for mine in taken.values() for i in mine]
    assert sorted(claimed) == sorted(ids)  # every delivery once, none twice
    with sessions() as session:
        owners = dict(session.execute(select(Entrega.id, Entrega.reservada_por)).all())
    assert all(owners[i] == name for name, mine in taken.items() for i in mine)


def test_an_expired_lease_is_claimed_again_and_a_live_one_is_not(db_engine: Engine) -> None:
    [entrega_id] = _queue(db_engine, 1)
    sessions = session_factory(db_engine)
    with sessions.begin() as session:
        assert outbox.claim(session, "killed", limit=5, lease=30, now=NOW) == [entrega_id]
    with sessions.begin() as session:
        assert outbox.claim(session, "other", limit=5, lease=30, now=NOW + timedelta(seconds=29)) == []
    with sessions.begin() as session:
        later = NOW + timedelta(seconds=31)
        assert outbox.claim(session, "other", limit=5, lease=30, now=later) == [entrega_id]


def test_failures_back_off_then_dead_letter_and_retry_brings_them_back(db_engine: Engine) -> None:
    [entrega_id] = _queue(db_engine, 1)
    settings = EntregaSettings(tentativas=3, espera_inicial_s=1, espera_max_s=1)
    sessions = session_factory(db_engine)
    for attempt in range(1, 4):
        with sessions.begin() as session:
            moment = NOW + timedelta(hours=attempt)
            assert outbox.claim(session, "w", limit=1, lease=30, now=moment) == [entrega_id]
            entrega = session.get_one(Entrega, entrega_id)
            state.failed(entrega, f"falha {attempt}", settings, NOW + timedelta(hours=attempt))
    with sessions() as session:
        entrega = session.get_one(Entrega, entrega_id)
        assert (entrega.estado, entrega.tentativas, entrega.ultimo_erro) == ("morta", 3, "falha 3")
    with sessions.begin() as session:
        assert outbox.claim(session, "w", limit=1, lease=30, now=NOW + timedelta(days=9)) == []
        assert outbox.retry_dead(session, [entrega_id], now=NOW) == 1
    with sessions.begin() as session:
        assert outbox.claim(session, "w", limit=1, lease=30, now=NOW) == [entrega_id]
        assert session.get_one(Entrega, entrega_id).tentativas == 0


# --- the worker's transactions (a fake operator answering in process) ------------------------------

PASA = "331988"


def _worker(engine: Engine, registry: SchemaRegistry, operadora: object, *,
            clock: Callable[[], datetime] = lambda: NOW, **entregas: float) -> Worker:
    config = demo_config("127.0.0.1:9000")
    config = replace(config, entregas=replace(config.entregas, **entregas))
    adapter = load_adapter("pasa", Destino(PASA, ("4.03.00",)), registry)
    return Worker(config, registry, session_factory(engine), {PASA: adapter}, clock=clock,
                  clients=operadora)  # type: ignore[arg-type]


def _queue_lote(engine: Engine, numero: str = "701") -> int:
    return queue_lote(engine, PASA, numero, NOW)


def _commits(engine: Engine) -> list[int]:
    """A list that grows by one with every transaction committed on ``engine``."""
    found: list[int] = []
    event.listen(engine, "commit", lambda _connection: found.append(1))
    return found


def test_a_delivery_commits_twice_the_claim_that_prepares_it_and_the_answer(
        db_engine: Engine, registry: SchemaRegistry) -> None:
    """The bytes are prepared and kept in the claiming transaction (every retry sends them), and
    sent without reading the row again; the answer is recorded in a second one."""
    entrega_id = _queue_lote(db_engine)
    operadora = FakeOperadora()
    worker = _worker(db_engine, registry, operadora)
    commits = _commits(db_engine)
    assert worker.run_once() == 1
    assert len(commits) == 2
    assert operadora.calls == [(PASA, "tissLoteGuias")]
    with session_factory(db_engine)() as session:
        entrega = session.get_one(Entrega, entrega_id)
        assert (entrega.estado, entrega.tentativas, entrega.reservada_por) == ("entregue", 1, None)
        assert (entrega.sequencial, entrega.partes, entrega.numero_protocolo) == (str(entrega_id), 1, "OP1")
        sent = session.get_one(Mensagem, entrega.envio_id)
        assert sent.corpo == entrega.corpo and entrega.resposta_id is not None


def test_an_idle_worker_asks_with_a_read_and_claims_only_what_is_due(db_engine: Engine,
                                                                      registry: SchemaRegistry) -> None:
    """On SQLite a claim takes the database's one write lock, which the gateway's requests wait
    for: a worker whose last claim found nothing reads first, and writes only when there is work."""
    worker = _worker(db_engine, registry, FakeOperadora())
    assert worker.run_once() == 0  # the first claim: in a transaction that finds nothing
    commits = _commits(db_engine)
    for _ in range(3):
        assert worker.run_once() == 0
    assert commits == []
    _queue_lote(db_engine)
    assert worker.run_once() == 1


def test_the_tracker_is_asked_again_only_after_a_pause_when_nothing_was_due(
        db_engine: Engine, registry: SchemaRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Status queries are minutes apart: a tracker claim on every delivery cycle cost as much as
    the delivery's own claim. The pause is at most the first query's delay."""
    worker = _worker(db_engine, registry, FakeOperadora(), consulta_inicial_s=0.2)
    asked: list[int] = []
    found = [0, 0, 1, 0]  # polls made by each tracker cycle

    def tracker_cycle() -> int:
        asked.append(1)
        return found[len(asked) - 1]

    monkeypatch.setattr(worker.tracker, "run_once", tracker_cycle)
    assert worker.cycle() == 0 and worker.cycle() == 0
    assert len(asked) == 1  # nothing due: not asked again at once
    time.sleep(0.25)
    assert worker.cycle() == 0 and len(asked) == 2
    time.sleep(0.25)
    assert worker.cycle() == 1 and worker.cycle() == 0 and len(asked) == 4  # after a poll: at once


def test_an_answer_that_comes_after_the_lease_was_taken_over_is_not_recorded(
        db_engine: Engine, registry: SchemaRegistry) -> None:
    """The claim read the row, but the record reads it again: a worker whose lease expired while
    it waited for the operator leaves the delivery to the worker that has it now."""
    entrega_id = _queue_lote(db_engine)
    operadora = FakeOperadora()

    class Slow:
        def client(self, registro_ans: str, versao: str) -> Slow:
            return self

        def call(self, servico: str, corpo: bytes) -> Answer:
            with session_factory(db_engine).begin() as session:  # the lease ran out meanwhile
                later = NOW + timedelta(seconds=301)
                assert outbox.claim(session, "other", limit=5, lease=300, now=later) == [entrega_id]
            return operadora.client(PASA, "4.03.00").call(servico, corpo)

    worker = _worker(db_engine, registry, Slow(), reserva_s=300)
    assert worker.run_once() == 1
    with session_factory(db_engine)() as session:
        entrega = session.get_one(Entrega, entrega_id)
        assert (entrega.estado, entrega.reservada_por, entrega.tentativas) == ("enviando", "other", 0)
        assert entrega.envio_id is None and entrega.corpo is not None  # the bytes the other one sends


def test_a_delivery_that_cannot_be_prepared_does_not_hold_up_the_others(db_engine: Engine,
                                                                        registry: SchemaRegistry) -> None:
    """Preparing happens in the claiming transaction: a delivery whose preparation raises rolls
    its batch back, and alone stays leased (tried again when the lease ends, as if its worker had
    died); the others of the batch go in the next cycle."""
    broken = _queue_lote(db_engine, "702")
    with session_factory(db_engine).begin() as session:  # a stored message that no longer parses
        mensagem = session.get_one(Mensagem, session.get_one(Entrega, broken).mensagem_id)
        mensagem.corpo = b"<ans:loteGuiasWS"
    good = _queue_lote(db_engine, "703")
    operadora = FakeOperadora()
    worker = _worker(db_engine, registry, operadora)
    with pytest.raises(MessageError):
        worker.run_once()
    assert worker.run_once() == 1 and len(operadora.calls) == 1
    with session_factory(db_engine)() as session:
        assert session.get_one(Entrega, good).estado == "entregue"
        held = session.get_one(Entrega, broken)
        assert (held.estado, held.reservada_por, held.corpo) == ("enviando", worker.name, None)


def test_a_lote_its_adapter_refuses_after_numbering_its_parts_leaves_no_part_behind(
        db_engine: Engine, registry: SchemaRegistry) -> None:
    """The parts an adapter numbered (their ids are their sequenciais) before it refused the lote
    go with the refusal: left pending, each would be prepared, split and refused again."""

    class Refusing(Adapter):
        nome = "Recusa depois de dividir"

        def preparar(self, message: TissMessage, *, sequenciais: Callable[[int], list[str]] | list[str],
                     agora: datetime) -> list[Envio]:
            assert callable(sequenciais) and len(sequenciais(2)) == 2
            raise AdapterError("a parte 2 não valida")

    entrega_id = _queue_lote(db_engine)
    config = demo_config("127.0.0.1:9000")
    worker = Worker(config, registry, session_factory(db_engine),
                    {PASA: Refusing(Destino(PASA, ("4.03.00",)), registry)}, clock=lambda: NOW,
                    clients=FakeOperadora())  # type: ignore[arg-type]
    assert worker.run_once() == 1
    with session_factory(db_engine)() as session:
        assert [(e.id, e.estado) for e in session.scalars(select(Entrega))] == [(entrega_id, "recusada")]
