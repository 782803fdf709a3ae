"""A slow or down operator holds only its own bulkhead (issue 15, gateway.delivery.bulkhead): a real
``tiss-gateway serve`` (one gunicorn gthread worker process with ``THREADS`` threads) and the
simulated operators, SQLite and PostgreSQL.

- One operator answering in 8 s (its ``timeout_s`` 4 s, ``max_relays`` 2) and more elegibilidades
  to it at once than the process has threads: ``max_relays`` of them wait for it and answer
  ErroInesperadoServidor when its timeout runs out; every other one answers ErroInesperadoServidor
  "ocupada" at once; meanwhile lotes and a status query to another operator are answered each
  within a couple of seconds, before the waiting relays end. The refusals are in /metrics.
- An operator that is down answers ErroInesperadoServidor at once, and every call gives its place
  back: more calls than its bulkhead holds, in a row and at once, are never refused as busy.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from lxml import etree

from gateway import deploy_settings
from tests.db_fixtures import BACKENDS
from tests.factory import build_request
from tests.forwarding_stack import NS, OPERADORAS, Stack, party, write_config
from tests.gateway_process import GatewayProcess
from tests.simulator_process import SimulatorProcess

THREADS = 6  # the process's relay share: 3 (half its threads)
SLOW = "capitalprev"  # the operator that is slow, then down
SLOW_TIMEOUT_S = 4.0  # its timeout_s
MAX_RELAYS = 2  # its bulkhead
LATENCY_MS = 8000
RELAYS = 2 * THREADS - MAX_RELAYS  # more than the process's threads
PROMPT_S = 2.0  # a lote, a status or a refusal answered "at once"
_numbers = itertools.count(int(time.time()) % 100000 * 100)


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tiss_home: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("bulkhead")
    url = f"sqlite:///{home / 'gateway.sqlite'}" if request.param == "sqlite" \
        else request.getfixturevalue("pg_schemas")()
    simulator = SimulatorProcess(home / "sim").start()
    config = slow_operator_config(write_config(home, simulator))
    gateway = GatewayProcess(url, tiss_home, workers=1, demo=False, extra_args=("--config", str(config)),
                             env={deploy_settings.THREADS_ENV: str(THREADS)}).start()
    found = Stack(simulator, gateway, config)
    try:
        yield found
    finally:
        found.close()
        gateway.close()
        simulator.close()


@pytest.fixture(autouse=True)
def logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    failed = request.session.testsfailed
    yield
    stack.simulator.clear_fault(SLOW)
    if request.session.testsfailed > failed:
        print("--- gateway ---\n" + stack.gateway.log()[-15_000:])


def slow_operator_config(path: Path) -> Path:
    """The test stack's config with the slow operator's timeout_s and max_relays."""
    registro = OPERADORAS[SLOW][0]
    text = path.read_text(encoding="utf-8")
    table = re.compile(rf"(\[operadoras\.{registro}\]\n(?:[^\[\n].*\n)*?)timeout_s = [0-9.]+\n")
    text, found = table.subn(rf"\g<1>timeout_s = {SLOW_TIMEOUT_S}\nmax_relays = {MAX_RELAYS}\n", text)
    assert found == 1
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Answered:
    status: int
    fault: str | None  # the tissFault of a tissFaultWS
    text: str  # its faultstring
    seconds: float
    ended: float  # time.monotonic() when it ended


def elegibilidade(stack: Stack, key: str) -> Answered:
    data = build_request("pedidoElegibilidadeWS", envelope=True, sequencial=str(next(_numbers)),
                         party=party(key), numero_carteira=OPERADORAS[key][0] + "0000012345")
    started = time.monotonic()
    response = stack.post("tissVerificaElegibilidade", data)
    ended = time.monotonic()
    root = etree.fromstring(response.content)
    return Answered(response.status_code, root.findtext(".//ans:tissFault", namespaces=NS),
                    root.findtext(".//faultstring") or "", ended - started, ended)


def timed(call: object, *args: object) -> tuple[float, float]:
    """(seconds, end) of ``call(*args)``."""
    started = time.monotonic()
    call(*args)  # type: ignore[operator]
    ended = time.monotonic()
    return ended - started, ended


def metric(stack: Stack, outcome: str) -> float:
    registro = OPERADORAS[SLOW][0]
    text = requests.get(stack.gateway.url("/metrics"), timeout=10).text
    found = re.search(rf'^tiss_gateway_relays_total\{{(?=[^}}]*operadora="{registro}")'
                      rf'(?=[^}}]*outcome="{outcome}")[^}}]*\}} ([0-9.e+]+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_slow_operator_holds_its_bulkhead_only(stack: Stack) -> None:
    assert elegibilidade(stack, SLOW).status == 200  # its WSDL read: the relays below only wait
    stack.send_lote("pasa")
    lotado_before = metric(stack, "lotado")
    stack.simulator.set_fault(SLOW, mode="slow", latency_ms=LATENCY_MS)
    with ThreadPoolExecutor(RELAYS) as pool:
        relays = [pool.submit(elegibilidade, stack, SLOW) for _ in range(RELAYS)]
        time.sleep(0.5)  # the relays are in
        lotes = [timed(stack.send_lote, "pasa") for _ in range(3)]
        _numero, protocolo = stack.send_lote("unimed")
        status = timed(stack.status, "unimed", protocolo)
        answered = [f.result(60) for f in relays]
    waited = [a for a in answered if "ocupada" not in a.text]
    refused = [a for a in answered if "ocupada" in a.text]
    assert len(waited) == MAX_RELAYS, answered
    for a in waited:  # the operator's timeout, not its 8 s
        assert (a.status, a.fault) == (500, "ErroInesperadoServidor") and "não respondeu" in a.text, a
        assert SLOW_TIMEOUT_S - 0.5 <= a.seconds < SLOW_TIMEOUT_S + PROMPT_S, a
    assert len(refused) == RELAYS - MAX_RELAYS
    for a in refused:
        assert (a.status, a.fault) == (500, "ErroInesperadoServidor"), a
        assert a.text == (f"Operadora {SLOW} ocupada: {MAX_RELAYS} consultas em andamento; tente "
                          "novamente em instantes."), a
        assert a.seconds < PROMPT_S, a
    for seconds, ended in [*lotes, status]:  # answered while the slow relays were waiting
        assert seconds < PROMPT_S, (lotes, status)
        assert ended < min(a.ended for a in waited), (lotes, status, waited)
    assert metric(stack, "lotado") == lotado_before + RELAYS - MAX_RELAYS


def test_a_down_operator_fails_at_once_and_gives_every_place_back(stack: Stack) -> None:
    falhas_before = metric(stack, "falha")
    stack.simulator.set_fault(SLOW, mode="down", duration_s=120)
    in_a_row = [elegibilidade(stack, SLOW) for _ in range(MAX_RELAYS + 1)]
    with ThreadPoolExecutor(MAX_RELAYS) as pool:
        at_once = list(pool.map(lambda _n: elegibilidade(stack, SLOW), range(2 * MAX_RELAYS)))
    for a in [*in_a_row, *at_once]:
        assert (a.status, a.fault) == (500, "ErroInesperadoServidor"), a
        assert "não respondeu" in a.text and "ocupada" not in a.text, a
        assert a.seconds < SLOW_TIMEOUT_S, a
    assert metric(stack, "falha") == falhas_before + len(in_a_row) + len(at_once)
    stack.simulator.clear_fault(SLOW)
    assert elegibilidade(stack, SLOW).status == 200
