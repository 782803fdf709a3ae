"""End to end: the gateway (gunicorn), its workers and the five simulated operators, each a separate
process talking HTTP; the gateway's database on SQLite and on PostgreSQL.

What an ERP sends once reaches the right operator in the form the operator accepts, exactly once,
whatever the operator does meanwhile (down, slow, failing, answering garbage), and the ERP follows
it to payment by polling the gateway.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.pool import NullPool

from gateway.config import DEMO_OPERADORAS
from gateway.message.services import ANS_NS
from gateway.prestadores import hash_senha, md5_hex
from gateway.security import pki
from gateway.storage.db import make_engine
from gateway.storage.models import Entrega, Protocolo
from simulator.models import SimLote
from tests.db_fixtures import BACKENDS
from tests.factory import Party, build_lote, build_request
from tests.gateway_process import GatewayProcess, WorkerProcess
from tests.simulator_process import SimulatorProcess

NS = {"ans": ANS_NS}
OPERADORAS = {key: (registro, codigo) for registro, _nome, key, codigo in DEMO_OPERADORAS}
GUIDE = {"capitalprev": "sp-sadt", "pasa": "consulta", "unimed": "sp-sadt", "cassems": "odonto",
         "ipasgo": "consulta"}
OPERATOR_TIMEOUT_S = 2.0
_numbers = itertools.count(int(time.time()) % 100000 * 1000)


def new_number() -> str:
    return str(next(_numbers))


def party(key: str) -> Party:
    registro, codigo = OPERADORAS[key]
    return Party(registro_ans=registro, codigo_na_operadora=codigo)


def wait_until(check: Callable[[], object], timeout: float = 60, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"não aconteceu em {timeout} s: {what}")
        time.sleep(0.2)


def write_config(home: Path, simulator: SimulatorProcess) -> Path:
    """The five operators at the simulator's URLs, fast retries and polling, IPASGO signed with a
    certificate of the simulator's own AC (the one it trusts)."""
    authority = pki.load_authority(simulator.home / "simulator" / "runtime")
    leaf = authority.issue("Gateway TISS de Teste", cnpj="11222333000181")
    leaf.save(home, "gateway-ipasgo")
    lines = ["[entregas]", "espera_inicial_s = 0.2", "espera_max_s = 1.0", "reserva_s = 4.0",
             "circuito_falhas = 50", "circuito_pausa_s = 0.5", "consulta_inicial_s = 0.3",
             "consulta_max_s = 1.0", ""]
    for key, (registro, _codigo) in OPERADORAS.items():
        lines += [f"[operadoras.{registro}]", f'nome = "{key}"', f'adapter = "{key}"',
                  f'endpoint = "{simulator.url(key)}/tiss"', f"timeout_s = {OPERATOR_TIMEOUT_S}"]
        if key == "ipasgo":
            lines += [f'assinatura_chave = "{home / "gateway-ipasgo-key.pem"}"',
                      f'assinatura_certificados = "{home / "gateway-ipasgo-cert.pem"}"']
        lines.append("")
    lines += ["[[prestadores]]", 'documento = "11222333000181"', 'nome = "Clínica Demo"', 'login = "demo"',
              f'senha_hash = "{hash_senha(md5_hex("demo"))}"', "[prestadores.codigos]"]
    lines += [f'"{registro}" = "{codigo}"' for registro, codigo in OPERADORAS.values()]
    path = home / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Stack:
    def __init__(self, simulator: SimulatorProcess, gateway: GatewayProcess, config: Path):
        self.simulator = simulator
        self.gateway = gateway
        self.config = config
        self.db = make_engine(gateway.database_url, poolclass=NullPool)
        self.sim_db = make_engine(simulator.database_url, poolclass=NullPool)
        self.workers: list[WorkerProcess] = []

    def worker(self, threads: int = 4) -> WorkerProcess:
        worker = WorkerProcess(self.gateway.database_url, self.gateway.home, self.config, threads=threads)
        self.workers.append(worker.start())
        return worker

    def post(self, service: str, body: bytes) -> requests.Response:
        return requests.post(self.gateway.url(f"/tiss/v4_03_00/{service}"), data=body,
                             headers={"Content-Type": "text/xml; charset=ISO-8859-1"}, timeout=60)

    def send_lote(self, key: str, n: int = 1, *, guide: str | None = None, numero: str | None = None,
                  build: Callable[[bytes], bytes] | None = None) -> tuple[str, str]:
        """(numeroLote, gateway protocol) of an accepted lote."""
        numero = numero or new_number()
        body = build_lote(guide or GUIDE[key], n, envelope=True, numero_lote=numero, sequencial=numero,
                          party=party(key))
        response = self.post("tissLoteGuias", build(body) if build else body)
        assert response.status_code == 200, response.text[:2000]
        found = re.search(rb"<ans:numeroProtocolo>(\w+)</ans:numeroProtocolo>", response.content)
        assert found, response.text[:2000]
        return numero, found.group(1).decode()

    def entregas(self, protocolo: str) -> list[Entrega]:
        with self.db.connect() as connection:
            query = (select(Entrega).join(Protocolo, Entrega.protocolo_id == Protocolo.id)
                     .where(Protocolo.numero == protocolo).order_by(Entrega.parte))
            return list(connection.execute(query))

    def delivered(self, protocolo: str) -> list[Entrega] | None:
        found = self.entregas(protocolo)
        return found if found and found[0].partes and len(found) == found[0].partes and all(
            e.estado == "entregue" for e in found) else None

    def operator_lotes(self, key: str, numero: str) -> dict[str, int]:
        """numeroLote -> how many times the operator took it (the lote or its parts)."""
        registro = OPERADORAS[key][0]
        with self.sim_db.connect() as connection:
            rows = connection.execute(select(SimLote.numero_lote, func.count()).where(
                SimLote.registro_ans == registro,
                (SimLote.numero_lote == numero) | SimLote.numero_lote.like(f"{numero}-%"),
            ).group_by(SimLote.numero_lote))
            return dict(rows.all())

    def status(self, key: str, protocolo: str) -> etree._Element:
        body = build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=new_number(),
                             numero_protocolo=protocolo, party=party(key))
        response = self.post("tissSolicitacaoStatusProtocolo", body)
        assert response.status_code == 200, response.text[:2000]
        return etree.fromstring(response.content)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.db.dispose()
        self.sim_db.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tiss_home: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("forwarding")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'gateway.sqlite'}"
    else:
        url = request.getfixturevalue("pg_schemas")()
    simulator = SimulatorProcess(home / "sim").start()
    config = write_config(home, simulator)
    gateway = GatewayProcess(url, tiss_home, demo=False, extra_args=("--config", str(config))).start()
    stack = Stack(simulator, gateway, config)
    try:
        yield stack
    finally:
        stack.close()
        gateway.close()
        simulator.close()


@pytest.fixture
def worker(stack: Stack) -> Iterator[WorkerProcess]:
    found = stack.worker()
    yield found
    found.close()
    stack.workers.remove(found)


@pytest.fixture(autouse=True)
def _no_faults_left(stack: Stack) -> Iterator[None]:
    yield
    for key in OPERADORAS:
        stack.simulator.clear_fault(key)


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        for worker in stack.workers:
            print("--- worker ---\n" + worker.log()[-15_000:])
        print("--- gateway ---\n" + stack.gateway.log()[-10_000:])
        print("--- simulador ---\n" + stack.simulator.log()[-10_000:])


# --- every operator ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(OPERADORAS))
def test_a_lote_reaches_its_operator_once(stack: Stack, worker: WorkerProcess, key: str) -> None:
    numero, protocolo = stack.send_lote(key, 3)
    parts = wait_until(lambda: stack.delivered(protocolo), what=f"entrega do lote {numero} a {key}")
    assert len(parts) == 1 and parts[0].numero_protocolo
    assert stack.operator_lotes(key, numero) == {numero: 1}
    with stack.db.connect() as connection:
        numero_operadora = connection.scalar(select(Protocolo.numero_operadora).where(
            Protocolo.numero == protocolo))
    assert numero_operadora == parts[0].numero_protocolo


def test_cassems_gets_a_lote_of_60_dental_guides_as_50_and_10(stack: Stack, worker: WorkerProcess) -> None:
    numero, protocolo = stack.send_lote("cassems", 60)
    parts = wait_until(lambda: stack.delivered(protocolo), what="as duas partes")
    assert [p.numero_lote for p in parts] == [f"{numero}-1", f"{numero}-2"]
    assert [len(p.guias.split()) for p in parts] == [50, 10]
    assert len({p.numero_protocolo for p in parts}) == 2
    assert stack.operator_lotes("cassems", numero) == {f"{numero}-1": 1, f"{numero}-2": 1}


@pytest.mark.parametrize(("key", "guide", "code"), [("cassems", "sp-sadt", "1301"),
                                                    ("unimed", "sp-sadt", "1311")])
def test_a_lote_the_operator_would_refuse_is_refused_at_once(stack: Stack, key: str, guide: str,
                                                             code: str) -> None:
    numero = new_number()
    body = build_lote(guide, 2, envelope=True, numero_lote=numero, sequencial=numero, party=party(key))
    if key == "unimed":  # manual, campo 30: the executante named is the operator itself
        body = _restamp(re.sub(rb"(<ans:contratadoExecutante><ans:codigoPrestadorNaOperadora>)\w+",
                               rb"\g<1>331872", body))
    response = stack.post("tissLoteGuias", body)
    assert response.status_code == 200, response.text[:2000]
    root = etree.fromstring(response.content)
    assert root.findtext(".//ans:mensagemErro/ans:codigoGlosa", namespaces=NS) == code
    assert stack.operator_lotes(key, numero) == {}


def _restamp(envelope_bytes: bytes) -> bytes:
    from gateway.message import hashing, reader

    message = reader.read(envelope_bytes)
    return hashing.rewrite(message.tree, message.root)


# --- tracking ---------------------------------------------------------------------------------


def test_the_status_walk_to_payment_is_seen_through_the_gateway(stack: Stack, worker: WorkerProcess) -> None:
    _numero, protocolo = stack.send_lote("pasa", 2)
    wait_until(lambda: stack.delivered(protocolo), what="entrega")
    stack.simulator.advance(days=30)  # PASA pays 7 days after receipt (manual)

    def final_status() -> int | None:
        parts = stack.entregas(protocolo)
        return parts[0].status if parts and parts[0].status in (4, 6) else None

    status = wait_until(final_status, what="status final na operadora")
    answer = stack.status("pasa", protocolo)
    assert answer.findtext(".//ans:detalheLote/ans:statusProtocolo", namespaces=NS) == str(status)
    assert status == 6
    with stack.db.connect() as connection:
        history = connection.execute(select(Protocolo).where(Protocolo.numero == protocolo)).one()
    assert history.status == 6


# --- the operator misbehaves ------------------------------------------------------------------

FAULTS = {
    "down": dict(mode="down", duration_s=2),
    "slow": dict(mode="slow", latency_ms=int(OPERATOR_TIMEOUT_S * 1000) + 800, count=2),
    "http500": dict(mode="error", kind="http500", rate=1.0, count=3),
    "soap-fault": dict(mode="error", kind="soap_fault", rate=1.0, count=3),
    "malformed": dict(mode="malformed", rate=1.0, count=3),
    "wrong-hash": dict(mode="wrong_hash", rate=1.0, count=3),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_lote_is_delivered_exactly_once_whatever_the_operator_does(
        stack: Stack, worker: WorkerProcess, fault: str) -> None:
    stack.simulator.set_fault("capitalprev", **FAULTS[fault])
    sent = [stack.send_lote("capitalprev", 1) for _ in range(4)]
    for numero, protocolo in sent:
        wait_until(lambda p=protocolo: stack.delivered(p), timeout=90, what=f"lote {numero} com {fault}")
    for numero, _protocolo in sent:
        assert stack.operator_lotes("capitalprev", numero) == {numero: 1}
    if fault != "down":
        tries = sum(stack.entregas(p)[0].tentativas for _n, p in sent)
        assert tries > len(sent), "a falha injetada não foi vista por nenhuma entrega"


def test_a_worker_killed_mid_run_loses_nothing_and_sends_nothing_twice(stack: Stack) -> None:
    sent = [stack.send_lote("pasa", 1) for _ in range(200)]  # queued first: the kill lands mid-run

    def delivered_count() -> int:
        with stack.db.connect() as connection:
            return connection.scalar(select(func.count()).select_from(Entrega).where(
                Entrega.registro_ans == OPERADORAS["pasa"][0], Entrega.estado == "entregue",
                Entrega.lote_id.is_not(None)))

    before = delivered_count()
    first = stack.worker(threads=4)
    wait_until(lambda: delivered_count() >= before + 20 or None, what="algumas entregas antes do kill")
    first.kill()
    assert delivered_count() < before + 200, "o worker terminou tudo antes do kill"
    stack.worker(threads=4)
    for numero, protocolo in sent:
        wait_until(lambda p=protocolo: stack.delivered(p), timeout=120, what=f"lote {numero}")
    for numero, _protocolo in sent:
        assert stack.operator_lotes("pasa", numero) == {numero: 1}
