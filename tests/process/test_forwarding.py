"""End to end: what an ERP sends once reaches the right operator in the form the operator accepts,
exactly once, whatever the operator does meanwhile (down, slow, failing, answering garbage), and the
ERP follows it to payment by polling the gateway.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from lxml import etree
from sqlalchemy import func, select

from gateway.storage.models import Entrega, Protocolo
from simulator.lifecycle import GLOSA_TOTAL
from simulator.profile import load_profile
from tests.factory import build_lote, glosas_drawn
from tests.forwarding_stack import NS, OPERADORAS, OPERATOR_TIMEOUT_S, Stack, new_number, party, wait_until
from tests.gateway_process import WorkerProcess, cli

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")

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


def _lote_number(glosado_in_full: bool) -> str:
    """A fresh number of a 2-guide lote that PASA glosa in full, or not (the stack's seed is 0)."""
    pasa = load_profile("pasa")
    while True:
        numero = new_number()
        if all(kind == GLOSA_TOTAL for kind in glosas_drawn(pasa, numero, 2, seed=0)) == glosado_in_full:
            return numero


@pytest.mark.parametrize(("glosado_in_full", "final"), [(False, 6), (True, 4)], ids=["paid", "glosado"])
def test_the_status_walk_to_the_end_is_seen_through_the_gateway(
        stack: Stack, worker: WorkerProcess, glosado_in_full: bool, final: int) -> None:
    numero, protocolo = stack.send_lote("pasa", 2, numero=_lote_number(glosado_in_full))
    wait_until(lambda: stack.delivered(protocolo), what="entrega")
    assert stack.glosado_in_full("pasa", numero) is glosado_in_full  # the operator's own verdict
    # PASA pays 7 days after receipt (manual); a lote glosado in full ends at 4 instead
    stack.simulator.advance(days=30)

    def final_status() -> int | None:
        parts = stack.entregas(protocolo)
        return parts[0].status if parts and parts[0].status in (4, 6) else None

    assert wait_until(final_status, what="status final na operadora") == final
    answer = stack.status("pasa", protocolo)
    assert answer.findtext(".//ans:detalheLote/ans:statusProtocolo", namespaces=NS) == str(final)
    with stack.db.connect() as connection:
        history = connection.execute(select(Protocolo).where(Protocolo.numero == protocolo)).one()
    assert history.status == final


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


# --- the commands of the people running the gateway -------------------------------------------


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return cli(*args, "--config", str(stack.config), "--database", stack.gateway.database_url,
               home=stack.gateway.home)


def test_a_dead_lettered_delivery_is_listed_and_retried_by_command(stack: Stack,
                                                                   worker: WorkerProcess) -> None:
    numero, protocolo, entrega = stack.send_lote_until_dead("capitalprev")
    assert entrega.tentativas == 12 and entrega.ultimo_erro
    listed = _cli(stack, "entregas", "list", "--estado", "morta", "--json")
    assert listed.returncode == 0, listed.stderr
    assert entrega.id in [row["id"] for row in json.loads(listed.stdout)]
    assert stack.operator_lotes("capitalprev", numero) == {}

    stack.simulator.clear_fault("capitalprev")
    retried = _cli(stack, "entregas", "retry", str(entrega.id))
    assert retried.returncode == 0 and "1 entrega" in retried.stdout, retried.stdout + retried.stderr
    wait_until(lambda: stack.delivered(protocolo), what="entrega depois do retry")
    assert stack.operator_lotes("capitalprev", numero) == {numero: 1}
    assert _cli(stack, "entregas", "retry", str(entrega.id)).returncode == 1  # nothing dead any more


def test_protocolo_show_and_lote_list(stack: Stack, worker: WorkerProcess) -> None:
    numero, protocolo = stack.send_lote("cassems", 60)
    parts = wait_until(lambda: stack.delivered(protocolo), what="as duas partes")
    shown = _cli(stack, "protocolo", "show", protocolo, "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["lote"] == numero and data["guias"] == 60 and data["status"].startswith("1 ")
    assert [e["protocolo_operadora"] for e in data["entregas"]] == [p.numero_protocolo for p in parts]
    assert [e["parte"] for e in data["entregas"]] == ["1/2", "2/2"]
    text = _cli(stack, "protocolo", "show", protocolo).stdout
    assert "entregas:" in text and parts[1].numero_protocolo in text
    assert _cli(stack, "protocolo", "show", "999999999999").returncode == 1
    listed = json.loads(_cli(stack, "lote", "list", "--operadora", OPERADORAS["cassems"][0], "--json").stdout)
    assert any((row["lote"], row["protocolo"], row["guias"]) == (numero, protocolo, 60) for row in listed)
    # The operator's own name of the status follows the TISS one (CASSEMS calls 1 Recebido "Lote enviado").
    assert data["status"] == "1 Recebido (CASSEMS: Lote enviado)"
    assert "status: 1 Recebido (CASSEMS: Lote enviado)" in text.splitlines()
    (row,) = [row for row in listed if row["protocolo"] == protocolo]
    assert row["status"] == "1 Recebido (CASSEMS: Lote enviado)"


def test_sigusr1_prints_every_thread_of_the_worker_and_the_simulator(stack: Stack,
                                                                     worker: WorkerProcess) -> None:
    """What a stuck process is doing, without stopping it: the delivery threads and the WSDL
    warm-up of the worker, the request server of the simulator."""
    wait_until(lambda: "iniciado" in worker.log() or None, what="worker iniciado")
    dump = worker.dump_stacks()
    assert dump, worker.log()[-3000:]
    assert re.search(r"Thread 0x[0-9a-f]+ \(worker-0\).*\n(?:  File .*\n)+", dump), dump
    assert "gateway/delivery/worker.py" in dump and "(MainThread)" in dump
    dump = stack.simulator.dump_stacks()
    assert dump, stack.simulator.log()[-3000:]
    server = r"\(listener-pasa\).*\n(?:  File .*\n)*  File .*socketserver\.py.* in serve_forever"
    assert re.search(server, dump), dump
    assert worker.process is not None and worker.process.poll() is None  # still running
    _numero, protocolo = stack.send_lote("pasa", 1)
    wait_until(lambda: stack.delivered(protocolo), what="entrega depois do SIGUSR1")
