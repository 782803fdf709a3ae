"""The forwarding test bed: the gateway (gunicorn), its workers and the five simulated operators,
each a separate process talking HTTP; the gateway's database on SQLite and on PostgreSQL.

A pytest plugin (tests/conftest.py): modules that use ``stack`` also mark
``pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")``.
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
from gateway.message.identificacao import md5_hex
from gateway.message.services import ANS_NS
from gateway.security import pki
from gateway.security.senhas import hash_senha
from gateway.storage.db import make_engine
from gateway.storage.models import Entrega, Protocolo
from simulator.lifecycle import GLOSA_TOTAL
from simulator.models import SimGuia, SimLote
from simulator.profile import load_profile
from tests.db_fixtures import BACKENDS
from tests.factory import Party, build_lote, build_request
from tests.gateway_process import GatewayProcess, WorkerProcess
from tests.simulator_process import SimulatorProcess

NS = {"ans": ANS_NS}
OPERADORAS = {key: (registro, codigo) for registro, _nome, key, codigo in DEMO_OPERADORAS}
GUIDE = {"capitalprev": "sp-sadt", "pasa": "consulta", "unimed": "sp-sadt", "cassems": "odonto",
         "ipasgo": "consulta"}
OPERATOR_TIMEOUT_S = 2.0
# An operator the gateway serves without forwarding (no endereços: stored only) whose web service
# takes only 4.02.00: what a 4.03.00 message would lose on the way down is refused at acceptance.
SO_402 = "999402"
# A provider the gateway knows and the operators do not: they answer its calls with their own
# tissFault (LoginInvalido).
SEM_CONTRATO = Party(cnpj="99888777000100", login="semcontrato", registro_ans=OPERADORAS["unimed"][0])
_PADRAO = re.compile(rb"<(?:[\w.-]+:)?Padrao>\s*([0-9.]+)\s*<")
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


TEST_ENTREGAS = {"espera_inicial_s": 0.2, "espera_max_s": 1.0, "reserva_s": 4.0, "circuito_falhas": 50,
                 "circuito_pausa_s": 0.5, "consulta_inicial_s": 0.3, "consulta_max_s": 1.0}


def write_config(home: Path, simulator: SimulatorProcess, entregas: dict[str, float] | None = None) -> Path:
    """The five operators at the simulator's URLs (each version the simulated operator takes at its
    own address), fast retries and polling (``entregas`` overrides them), IPASGO signed with a
    certificate of the simulator's own AC (the one it trusts); a store-only operator taking only
    4.02.00 (SO_402); the demo provider and one the operators do not know (SEM_CONTRATO)."""
    authority = pki.load_authority(simulator.home / "simulator" / "runtime")
    leaf = authority.issue("Gateway TISS de Teste", cnpj="11222333000181")
    leaf.save(home, "gateway-ipasgo")
    settings = {**TEST_ENTREGAS, **(entregas or {})}
    lines = ["[entregas]", *(f"{k} = {v}" for k, v in settings.items()), ""]
    for key, (registro, _codigo) in OPERADORAS.items():
        profile = load_profile(key)  # how the operator shows itself in a guide (Unimed's rule)
        lines += [f"[operadoras.{registro}]", f'nome = "{key}"', f'adapter = "{key}"',
                  f"timeout_s = {OPERATOR_TIMEOUT_S}", f'cnpj = "{profile.cnpj}"']
        if profile.codigos_proprios:
            lines.append("codigos_proprios = [" + ", ".join(f'"{c}"' for c in profile.codigos_proprios) + "]")
        if key == "ipasgo":
            lines += [f'assinatura_chave = "{home / "gateway-ipasgo-key.pem"}"',
                      f'assinatura_certificados = "{home / "gateway-ipasgo-cert.pem"}"']
        lines.append(f"[operadoras.{registro}.enderecos]")
        lines += [f'"{v}" = "{simulator.url(key)}/tiss/v{v.replace(".", "_")}"'
                  for v in simulator.versoes[key]]
        lines.append("")
    lines += [f"[operadoras.{SO_402}]", 'nome = "Operadora só 4.02.00"', 'adapter = "pasa"',
              'versoes_operadora = ["4.02.00"]', ""]
    lines += ["[[prestadores]]", f'documento = "{SEM_CONTRATO.cnpj}"', 'nome = "Clínica Sem Contrato"',
              f'login = "{SEM_CONTRATO.login}"',
              f'senha_hash = "{hash_senha(md5_hex(SEM_CONTRATO.senha))}"', ""]
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

    def post(self, service: str, body: bytes, version: str | None = None) -> requests.Response:
        """POST to the gateway's address of ``version`` (default: the body's own Padrao)."""
        found = _PADRAO.search(body)
        version = version or (found.group(1).decode() if found else "4.03.00")
        return requests.post(self.gateway.url(f"/tiss/v{version.replace('.', '_')}/{service}"), data=body,
                             headers={"Content-Type": "text/xml; charset=ISO-8859-1"}, timeout=60)

    def send_lote(self, key: str, n: int = 1, *, guide: str | None = None, numero: str | None = None,
                  build: Callable[[bytes], bytes] | None = None, version: str = "4.03.00") -> tuple[str, str]:
        """(numeroLote, gateway protocol) of an accepted lote (sent in ``version``)."""
        numero = numero or new_number()
        body = build_lote(guide or GUIDE[key], n, envelope=True, numero_lote=numero, sequencial=numero,
                          party=party(key), version=version)
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

    def send_lote_until_dead(self, key: str) -> tuple[str, str, Entrega]:
        """(numeroLote, gateway protocol, delivery) of a one-guide lote sent while operator ``key``
        is down, once its delivery is dead-lettered; the operator stays down until the test clears
        the fault."""
        self.simulator.set_fault(key, mode="down", duration_s=600)
        numero, protocolo = self.send_lote(key, 1)

        def dead() -> Entrega | None:
            found = self.entregas(protocolo)
            return found[0] if found and found[0].estado == "morta" else None

        return numero, protocolo, wait_until(dead, timeout=90, what="entrega morta")

    def operator_lotes(self, key: str, numero: str) -> dict[str, int]:
        """numeroLote -> how many times the operator took it (the lote or its parts)."""
        registro = OPERADORAS[key][0]
        with self.sim_db.connect() as connection:
            rows = connection.execute(select(SimLote.numero_lote, func.count()).where(
                SimLote.registro_ans == registro,
                (SimLote.numero_lote == numero) | SimLote.numero_lote.like(f"{numero}-%"),
            ).group_by(SimLote.numero_lote))
            return dict(rows.all())

    def glosado_in_full(self, key: str, numero: str) -> bool:
        """The operator glosou every guide of lote ``numero`` (its flow then ends at 4 Encerrado
        sem pagamento instead of 6 Pagamento efetuado)."""
        with self.sim_db.connect() as connection:
            kinds = connection.scalars(
                select(SimGuia.glosa).join(SimLote, SimGuia.lote_id == SimLote.id).where(
                    SimLote.registro_ans == OPERADORAS[key][0], SimLote.numero_lote == numero)).all()
        assert kinds, f"a operadora não tem o lote {numero}"
        return all(kind == GLOSA_TOTAL for kind in kinds)

    def status(self, key: str, protocolo: str, version: str = "4.03.00") -> etree._Element:
        body = build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=new_number(),
                             numero_protocolo=protocolo, party=party(key), version=version)
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
def worker(request: pytest.FixtureRequest, stack: Stack) -> Iterator[WorkerProcess]:
    failed = request.session.testsfailed
    found = stack.worker()
    yield found
    if request.session.testsfailed > failed:  # torn down before logs_on_failure: its log goes now
        _print_worker(found)
    found.close()
    stack.workers.remove(found)


def _print_worker(worker: WorkerProcess) -> None:
    worker.dump_stacks()
    print("--- worker ---\n" + worker.log()[-15_000:])


@pytest.fixture
def clean_faults(stack: Stack) -> Iterator[None]:
    yield
    for key in OPERADORAS:
        stack.simulator.clear_fault(key)


@pytest.fixture
def logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        for worker in stack.workers:
            _print_worker(worker)
        stack.simulator.dump_stacks()
        print("--- gateway ---\n" + stack.gateway.log()[-10_000:])
        print("--- simulador ---\n" + stack.simulator.log()[-20_000:])
