"""The relays' bulkheads (gateway.delivery.bulkhead): sizing, a place taken and given back on every
path, the refusal when full; and, through the gateway's pipeline with simulated operators in
process (tests.inprocess_operators), a real-time call that finds its operator's bulkhead full is
ErroInesperadoServidor at once, stored without Transacao and counted, and no path of a relay
keeps a place (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree
from prometheus_client import REGISTRY
from sqlalchemy import select

from gateway import deploy_settings
from gateway.config import Config, ConfigError, Operadora, parse_config
from gateway.delivery import bulkhead
from gateway.delivery.bulkhead import Bulkhead, Lotado
from gateway.delivery.client import Answer, TransportError
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS
from gateway.storage.models import Mensagem, Transacao
from tests import wsgi_call
from tests.factory import build_request
from tests.inprocess_operators import OPERADORAS, InProcess, Operadoras, party

NS = {"ans": ANS_NS}
PASA, CAPITALPREV = OPERADORAS["pasa"][0], OPERADORAS["capitalprev"][0]
_sequenciais = itertools.count(int(time.time()) % 100000 * 100)


# --------------------------------------------------------------------------- sizing


@pytest.mark.parametrize(("threads", "capacity", "default"), [(1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 2, 1),
                                                             (8, 4, 2), (9, 4, 2), (16, 8, 4)])
def test_half_the_threads_relay_and_an_operator_gets_half_of_that(threads: int, capacity: int,
                                                                   default: int) -> None:
    assert bulkhead.relay_capacity(threads) == capacity
    assert threads - capacity >= threads / 2 or threads == 1  # the other half stays for lotes and status
    assert bulkhead.operator_limit(None, capacity) == default


def test_max_relays_is_the_operators_limit_within_the_share() -> None:
    assert bulkhead.operator_limit(3, 4) == 3
    assert bulkhead.operator_limit(1, 4) == 1
    assert bulkhead.operator_limit(10, 4) == 4  # never more than the process's relay share


def operadora(registro: str, max_relays: int | None = None) -> Operadora:
    return Operadora(registro, registro, "pasa", max_relays=max_relays)


def test_for_config_sizes_each_operator_on_the_threads() -> None:
    config = Config(operadoras={PASA: operadora(PASA, 3), CAPITALPREV: operadora(CAPITALPREV)})
    found = Bulkhead.for_config(config, threads=8)
    assert found.capacity == 4
    assert (found.limit(PASA), found.limit(CAPITALPREV), found.limit("999999")) == (3, 2, 2)


def test_the_workers_threads_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulkhead, "_threads", None)
    monkeypatch.setenv(deploy_settings.THREADS_ENV, "6")
    assert bulkhead.worker_threads() == 6  # what serve and gunicorn.conf.py give gunicorn
    monkeypatch.delenv(deploy_settings.THREADS_ENV)
    assert bulkhead.worker_threads() == deploy_settings.DEFAULT_THREADS
    bulkhead.expect_threads(12)  # gunicorn's worker, from its own settings
    assert bulkhead.worker_threads() == 12
    assert Bulkhead.for_config(Config()).capacity == 6


def test_max_relays_in_the_config() -> None:
    base = {"nome": "PASA", "adapter": "pasa"}
    assert parse_config({"operadoras": {PASA: {**base, "max_relays": 5}}}).operadoras[PASA].max_relays == 5
    assert parse_config({"operadoras": {PASA: base}}).operadoras[PASA].max_relays is None
    for wrong in (0, 1001, 2.5, "3", True):
        with pytest.raises(ConfigError, match=f"operadoras.{PASA}.max_relays"):
            parse_config({"operadoras": {PASA: {**base, "max_relays": wrong}}})


# --------------------------------------------------------------------------- places


def test_a_full_operator_is_refused_at_once_and_others_still_relay() -> None:
    found = Bulkhead(3, {PASA: 2, CAPITALPREV: 2})
    with found.slot(PASA), found.slot(PASA):
        started = time.monotonic()
        with pytest.raises(Lotado) as full, found.slot(PASA):
            pass
        assert time.monotonic() - started < 0.1
        assert (full.value.registro_ans, full.value.em_andamento) == (PASA, 2)
        with found.slot(CAPITALPREV):  # the third place of the share
            assert (found.in_use(PASA), found.in_use(CAPITALPREV), found.in_use()) == (2, 1, 3)
    assert found.in_use() == 0


def test_the_share_of_the_process_bounds_every_operator_together() -> None:
    found = Bulkhead(2, {PASA: 2, CAPITALPREV: 2})
    with found.slot(PASA), found.slot(CAPITALPREV):
        with pytest.raises(Lotado) as full, found.slot(CAPITALPREV):
            pass
        assert (full.value.registro_ans, full.value.em_andamento) == (None, 2)
    assert (found.in_use(PASA), found.in_use(CAPITALPREV), found.in_use()) == (0, 0, 0)


def test_a_place_is_given_back_when_the_relay_raises() -> None:
    found = Bulkhead(2, {PASA: 1})
    for error in (TransportError("timeout"), RuntimeError("defeito"), KeyboardInterrupt()):
        with pytest.raises(type(error)), found.slot(PASA):
            raise error
        assert found.in_use() == 0
    with found.slot(PASA):  # and it is free again
        assert found.in_use(PASA) == 1


def test_limits_hold_under_threads() -> None:
    found = Bulkhead(4, {PASA: 3})
    peak, refused, lock = [0], [0], threading.Lock()

    def relay(_n: int) -> None:
        try:
            with found.slot(PASA):
                with lock:
                    peak[0] = max(peak[0], found.in_use(PASA))
                time.sleep(0.002)
        except Lotado:
            with lock:
                refused[0] += 1

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(relay, range(800)))
    assert peak[0] == 3 and refused[0] > 0
    assert found.in_use() == 0


def test_a_bulkhead_needs_room() -> None:
    with pytest.raises(ValueError):
        Bulkhead(0, {})
    with pytest.raises(ValueError):
        Bulkhead(2, {PASA: 0})


# --------------------------------------------------------------------------- through the pipeline


@dataclass
class Controlled:
    """The in-process operators, with what the next calls to PASA do: ``ok`` (the operator
    answers), ``timeout`` (TransportError, as a read timeout), ``crash`` (an unexpected exception),
    ``hold`` (answers once ``release`` is set; ``holding`` is set while it waits)."""

    inner: Operadoras
    mode: str = "ok"  # PASA's; the others answer
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def client(self, registro_ans: str, versao: str) -> Controlled._Client:
        return Controlled._Client(self, registro_ans, self.inner.client(registro_ans, versao))

    @dataclass
    class _Client:
        outer: Controlled
        registro_ans: str
        inner: object

        def call(self, service: str, document: bytes) -> Answer:
            mode = self.outer.mode if self.registro_ans == PASA else "ok"
            if mode == "timeout":
                raise TransportError("ReadTimeout: read timed out. (read timeout=2.0)")
            if mode == "crash":
                raise RuntimeError("defeito")
            if mode == "hold":
                self.outer.holding.set()
                assert self.outer.release.wait(30)
            return self.inner.call(service, document)  # type: ignore[attr-defined]


@pytest.fixture
def gateway(database_url: str, registry: SchemaRegistry,
            tmp_path: Path) -> Iterator[tuple[InProcess, Controlled]]:
    found = InProcess(database_url, registry, tmp_path, ("pasa", "capitalprev"))
    controlled = Controlled(found.operadoras)
    proxy = found.pipeline.relay.proxy
    proxy.clients = controlled  # type: ignore[assignment]
    proxy.bulkhead = Bulkhead(2, {PASA: 1, CAPITALPREV: 1})
    yield found, controlled
    controlled.release.set()
    found.close()


def elegibilidade(stack: InProcess, key: str) -> tuple[wsgi_call.Posted, str]:
    sequencial = str(next(_sequenciais))
    data = build_request("pedidoElegibilidadeWS", envelope=True, sequencial=sequencial, party=party(key),
                         numero_carteira=OPERADORAS[key][0] + "0000012345")
    return wsgi_call.post(stack.app, "/tiss/v4_03_00/tissVerificaElegibilidade", data), sequencial


def fault(posted: wsgi_call.Posted) -> tuple[str | None, str]:
    root = etree.fromstring(posted.body)
    return root.findtext(".//ans:tissFault", namespaces=NS), root.findtext(".//faultstring") or ""


def relays(registro: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("tiss_gateway_relays_total", {"operadora": registro,
                                                                  "outcome": outcome}) or 0.0


def in_flight(registro: str) -> float:
    return REGISTRY.get_sample_value("tiss_gateway_relays_in_flight", {"operadora": registro}) or 0.0


def test_a_call_to_a_full_operator_is_a_server_error_at_once_stored_and_counted(
        gateway: tuple[InProcess, Controlled]) -> None:
    stack, operators = gateway
    operators.mode = "hold"
    lotado_before = relays(PASA, "lotado")
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(elegibilidade, stack, "pasa")
        assert operators.holding.wait(30)
        assert in_flight(PASA) == 1
        started = time.monotonic()
        refused, sequencial = elegibilidade(stack, "pasa")
        assert time.monotonic() - started < 2  # not queued behind the one in progress
        assert refused.status.startswith("500")
        tiss_fault, text = fault(refused)
        assert tiss_fault == "ErroInesperadoServidor"
        assert text == "Operadora PASA ocupada: 1 consultas em andamento; tente novamente em instantes."
        assert relays(PASA, "lotado") == lotado_before + 1
        other, _ = elegibilidade(stack, "capitalprev")  # another operator's bulkhead: free
        assert other.status.startswith("200"), other.body[:2000]
        operators.release.set()
        assert held.result(30)[0].status.startswith("200")
    assert stack.pipeline.relay.proxy.bulkhead.in_use() == 0 and in_flight(PASA) == 0
    with stack.sessions() as session:  # the request kept for audit, no Transacao: it may be sent again
        (row,) = session.scalars(select(Mensagem).where(Mensagem.sequencial_transacao == sequencial)).all()
        assert (row.direcao, row.resultado, row.codigo_erro) == ("entrada", "erro", "ErroInesperadoServidor")
        assert not session.scalars(select(Transacao.id).where(
            Transacao.sequencial_transacao == sequencial)).all()
    operators.mode = "ok"
    again, _ = elegibilidade(stack, "pasa")
    assert again.status.startswith("200"), again.body[:2000]


@pytest.mark.parametrize("mode", ["ok", "timeout", "crash"])
def test_no_relay_keeps_its_place(gateway: tuple[InProcess, Controlled], mode: str) -> None:
    stack, operators = gateway
    operators.mode = mode
    outcome = {"ok": "respondida", "timeout": "falha"}.get(mode)
    before = relays(PASA, outcome) if outcome else 0.0
    for _ in range(3):  # PASA's bulkhead holds one: a place kept would refuse the next call
        posted, _sequencial = elegibilidade(stack, "pasa")
        if mode == "ok":
            assert posted.status.startswith("200"), posted.body[:2000]
        else:
            assert posted.status.startswith("500")
            tiss_fault, text = fault(posted)
            assert tiss_fault == "ErroInesperadoServidor" and "ocupada" not in text, text
        assert stack.pipeline.relay.proxy.bulkhead.in_use() == 0 and in_flight(PASA) == 0
    if outcome:
        assert relays(PASA, outcome) == before + 3


def test_a_call_when_the_process_share_is_full_is_refused_for_any_operator(
        gateway: tuple[InProcess, Controlled]) -> None:
    stack, operators = gateway
    stack.pipeline.relay.proxy.bulkhead = Bulkhead(1, {PASA: 1, CAPITALPREV: 1})
    operators.mode = "hold"
    before = relays(CAPITALPREV, "gateway_lotado")
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(elegibilidade, stack, "pasa")
        assert operators.holding.wait(30)
        refused, _sequencial = elegibilidade(stack, "capitalprev")
        operators.release.set()
        assert held.result(30)[0].status.startswith("200")
    assert refused.status.startswith("500")
    assert fault(refused) == ("ErroInesperadoServidor", "Gateway ocupado: 1 consultas em tempo real em "
                              "andamento; tente novamente em instantes.")
    assert relays(CAPITALPREV, "gateway_lotado") == before + 1
