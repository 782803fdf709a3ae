"""The delivery machinery on its own: circuit breaker, backoff, and outbox claims on a real database
(SQLite and PostgreSQL) with concurrent claimers."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from gateway.config import EntregaSettings
from gateway.delivery import outbox, state
from gateway.delivery.breaker import CircuitBreaker
from gateway.delivery.client import declared_encoding, soap_envelope
from gateway.storage.db import session_factory
from gateway.storage.models import Entrega
from tests.db_fixtures import add_prestador_and_mensagem

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
