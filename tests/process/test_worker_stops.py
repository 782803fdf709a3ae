"""Worker processes that stop, crash or start without a database (issue 16, finding 8), on SQLite
and PostgreSQL, against the simulated operators: SIGTERM exits within ``parada_s`` whatever is in
flight and leaves no lease; a live worker's lease is renewed while it waits for a slow operator, a
killed one's is taken over in seconds; a lote posted by a worker killed mid-send reaches an
operator that does not deduplicate sequencialTransacao once, the delivery held for a person."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select

from gateway.storage.models import Entrega
from tests.forwarding_stack import OPERADORAS, OPERATOR_TIMEOUT_S, Stack, wait_until, write_config
from tests.gateway_process import REPO, WorkerProcess, cli, free_port, read_log

pytestmark = pytest.mark.usefixtures("own_workers", "clean_faults", "logs_on_failure")
SLOW_MS = 40_000  # an operator answering this late: the post is in flight the whole test


def _config(stack: Stack, home: Path, **entregas: object) -> Path:
    """The stack's operators with a long operator timeout (a slow answer stays in flight)."""
    home.mkdir(exist_ok=True)
    path = write_config(home, stack.simulator, entregas)  # type: ignore[arg-type]
    text = path.read_text(encoding="utf-8").replace(f"timeout_s = {OPERATOR_TIMEOUT_S}", "timeout_s = 60")
    path.write_text(text, encoding="utf-8")
    return path


def _worker(stack: Stack, config: Path, threads: int = 1) -> WorkerProcess:
    worker = WorkerProcess(stack.gateway.database_url, stack.gateway.home, config, threads=threads)
    stack.workers.append(worker.start())
    wait_until(lambda: "iniciado" in worker.log() or None, what="worker iniciado")
    return worker


def _entrega(stack: Stack, protocolo: str) -> Entrega:
    found = stack.entregas(protocolo)
    assert len(found) == 1
    return found[0]


def _received(stack: Stack, key: str, numero: str) -> int:
    return stack.operator_lotes(key, numero).get(numero, 0)


@pytest.fixture
def own_workers(stack: Stack) -> Iterator[None]:
    """The test's workers stop with it (after logs_on_failure printed their logs): a worker left
    over from another test, with another configuration, would take this test's deliveries."""
    before = list(stack.workers)
    yield
    for worker in [w for w in stack.workers if w not in before]:
        worker.close()
        stack.workers.remove(worker)


@pytest.fixture
def no_dedup(stack: Stack) -> Iterator[None]:
    yield
    stack.simulator.admin("POST", "pasa/deduplicacao", {"sequencial": True, "lote": True})


def test_sigterm_exits_within_parada_s_mid_post_and_leaves_no_lease(stack: Stack, tmp_path: Path) -> None:
    config = _config(stack, tmp_path / "w", parada_s=3.0, reserva_s=30.0)
    stack.simulator.set_fault("capitalprev", "slow", latency_ms=SLOW_MS)
    sent = [stack.send_lote("capitalprev", 1) for _ in range(2)]  # one batch: posted one by one
    worker = _worker(stack, config)
    wait_until(lambda: _received(stack, "capitalprev", sent[0][0]) or None, what="o primeiro lote em envio")
    assert worker.process is not None
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=20) == 0
    elapsed = time.monotonic() - started
    print(f"parada_s 3: parou em {elapsed:.1f} s com um envio de {SLOW_MS / 1000:.0f} s em curso")
    # Before: the post in hand was waited for (SLOW_MS). The margin is for a loaded machine.
    assert elapsed < SLOW_MS / 1000 / 2, f"parou em {elapsed:.1f} s"
    posting, unsent = (_entrega(stack, protocolo) for _numero, protocolo in sent)
    for entrega in (posting, unsent):  # nothing left for a lease to run out on
        assert (entrega.estado, entrega.reservada_por, entrega.tentativas) == ("pendente", None, 0)
    assert posting.incerto and "parou durante o envio" in posting.incerto
    assert unsent.incerto is None
    assert "2 linha(s)" not in worker.log() and "1 linha(s) interrompida(s) no envio" in worker.log()

    stack.simulator.clear_fault("capitalprev")
    _worker(stack, config)  # the operator deduplicates: the repeat gets its first answer
    for numero, protocolo in sent:
        wait_until(lambda p=protocolo: stack.delivered(p), what=f"lote {numero}")  # type: ignore[misc]
        assert stack.operator_lotes("capitalprev", numero) == {numero: 1}


def test_a_live_worker_keeps_its_lease_past_reserva_s_and_a_killed_ones_is_taken_over_in_seconds(
        stack: Stack, tmp_path: Path) -> None:
    lease = 2.0
    config = _config(stack, tmp_path / "w", reserva_s=lease)
    stack.simulator.set_fault("capitalprev", "slow", latency_ms=4 * lease * 1000)
    first = _worker(stack, config)
    assert first.process is not None
    owner = f":{first.process.pid}:"
    numero, protocolo = stack.send_lote("capitalprev", 1)
    wait_until(lambda: _received(stack, "capitalprev", numero) or None, what="lote em envio")
    second = _worker(stack, config)  # idle, looking for expired leases
    while not stack.delivered(protocolo):  # the post takes 4 leases: renewed all along
        entrega = _entrega(stack, protocolo)
        assert entrega.estado == "entregue" or owner in (entrega.reservada_por or ""), entrega.reservada_por
        time.sleep(0.2)
    assert _entrega(stack, protocolo).tentativas == 1

    # Another slow operator: the idle worker's status polls (capitalprev's lotes) must not keep it
    # busy. The idle one goes while the first claims, so that the lote is the first's.
    stack.simulator.clear_fault("capitalprev")
    stack.simulator.set_fault("pasa", "slow", latency_ms=4 * lease * 1000)
    second.close()
    stack.workers.remove(second)
    numero, protocolo = stack.send_lote("pasa", 1)
    wait_until(lambda: _received(stack, "pasa", numero) or None, what="lote em envio")
    assert owner in (_entrega(stack, protocolo).reservada_por or "")
    _worker(stack, config)
    first.kill()
    killed = time.monotonic()
    wait_until(lambda: owner not in (_entrega(stack, protocolo).reservada_por or owner) or None, timeout=30,
               what="entrega retomada")
    taken_over = time.monotonic() - killed
    print(f"reserva_s {lease}: retomada {taken_over:.1f} s depois do kill -9")
    assert taken_over < 10 * lease, f"retomada em {taken_over:.1f} s"  # a margin for a loaded machine
    wait_until(lambda: stack.delivered(protocolo), what="entrega retomada e entregue")
    assert stack.operator_lotes("pasa", numero) == {numero: 1}  # it deduplicates: the repeat answered


@pytest.mark.parametrize("operadora", ["nenhuma", "lote"])
def test_a_lote_posted_by_a_worker_killed_mid_send_reaches_a_non_deduplicating_operator_once(
        stack: Stack, tmp_path: Path, no_dedup: None, operadora: str) -> None:
    """``nenhuma``: the operator takes any repeat as a new lote, and is listed in
    ``sem_deduplicacao``: the gateway does not send it again. ``lote``: it does not deduplicate
    sequencialTransacao but refuses a numeroLote it has (3268), and is not listed: the resend tells
    the gateway the first send arrived, which is not a refusal of the lote."""
    registro = OPERADORAS["pasa"][0]
    listed = {"sem_deduplicacao": [registro]} if operadora == "nenhuma" else {}
    config = _config(stack, tmp_path / "w", reserva_s=1.0, **listed)
    stack.simulator.admin("POST", "pasa/deduplicacao",
                          {"sequencial": False, "lote": operadora == "lote"})
    stack.simulator.set_fault("pasa", "slow", latency_ms=SLOW_MS)
    first = _worker(stack, config)
    numero, protocolo = stack.send_lote("pasa", 1)
    wait_until(lambda: _received(stack, "pasa", numero) or None, what="lote em envio")
    first.kill()
    stack.simulator.clear_fault("pasa")
    _worker(stack, config)

    def held() -> Entrega | None:
        entrega = _entrega(stack, protocolo)
        return entrega if entrega.estado == "morta" else None

    entrega: Any = wait_until(held, timeout=30, what="entrega retida")
    assert entrega.incerto and "expirou sem resposta registrada" in entrega.incerto
    wanted = "não elimina repetições" if operadora == "nenhuma" else "já tem o lote"
    assert wanted in (entrega.ultimo_erro or "")
    time.sleep(1.5)  # past another lease: still not sent again
    assert stack.operator_lotes("pasa", numero) == {numero: 1}
    assert _entrega(stack, protocolo).estado == "morta"
    listing = cli("entregas", "list", "--estado", "morta", "--json", "--config", str(config),
                  "--database", stack.gateway.database_url, home=stack.gateway.home)
    assert listing.returncode == 0, listing.stderr
    row = next(r for r in json.loads(listing.stdout) if r["id"] == entrega.id)
    assert row["erro"].startswith("desfecho incerto") and "expirou sem resposta" in row["incerto"]
    with stack.db.connect() as connection:  # not a refusal: the lote keeps its number at the operator
        status = connection.execute(select(Entrega.status).where(Entrega.id == entrega.id)).scalar()
    assert status != 99


class _Door:
    """A TCP port where the database is down (nothing listens) until :meth:`open`, then forwards
    every connection to the real server: a database that comes back."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.server: socketserver.ThreadingTCPServer | None = None

    def open(self) -> None:
        target = self.target

        class Forward(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(target) as upstream:
                    pump = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
                    pump.start()
                    _pump(self.request, upstream)
                    pump.join(5)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Forward)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)


def _down_database(stack: Stack, request: pytest.FixtureRequest,
                   tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """(URL of a fresh database that is down, a function that brings it up): SQLite in a folder
    that does not exist yet; PostgreSQL behind a port nobody listens on yet."""
    if stack.gateway.database_url.startswith("sqlite"):
        folder = tmp_path / "banco"
        return f"sqlite:///{folder / 'gateway.sqlite'}", folder.mkdir
    url = make_url(request.getfixturevalue("pg_schemas")())
    door = _Door((url.host or "127.0.0.1", url.port or 5432))
    request.addfinalizer(door.close)
    return url.set(host="127.0.0.1", port=door.port).render_as_string(hide_password=False), door.open


def _start_demo_worker(url: str, home: Path) -> tuple[subprocess.Popen, Path]:
    log = home / "worker.log"
    env = {**os.environ, "TISS_GATEWAY_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        command = [sys.executable, "-m", "gateway.cli", "worker", "--demo", "--database", url]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT)
    return process, log


def test_a_worker_started_with_the_database_down_waits_and_comes_up_when_it_is_back(
        stack: Stack, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url, bring_up = _down_database(stack, request, tmp_path)
    process, log = _start_demo_worker(url, tmp_path)
    try:
        wait_until(lambda: "nova tentativa em" in read_log(log) or None, what="o worker esperando o banco")
        assert process.poll() is None, read_log(log)
        bring_up()
        wait_until(lambda: "iniciado" in read_log(log) or None, what="o worker iniciado com o banco de volta")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, read_log(log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = read_log(log)
    assert "Traceback" not in output, output
    assert "indisponível" in output, output


def test_a_worker_waiting_for_the_database_stops_on_sigterm_without_a_traceback(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nada"  # nothing listens there
    process, log = _start_demo_worker(url, tmp_path)
    try:
        wait_until(lambda: "nova tentativa em" in read_log(log) or None, what="o worker esperando o banco")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 143
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = read_log(log)
    assert "Traceback" not in output, output
    assert "indisponível" in output, output
