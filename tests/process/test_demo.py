"""The README's run command: ``serve --demo`` brings up the gateway, the five simulated operators and a
worker; a lote sent to it is delivered and its status moves with the simulated clock. It needs its
ports free (else one line naming the port, exit 2), restarts a child that dies and stops them all."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree

from gateway.cli import demo
from gateway.cli.supervisor import GiveUp
from gateway.message.services import ANS_NS
from gateway.security import pki
from tests.factory import Party, build_lote, build_request
from tests.gateway_process import REPO, cli, free_port, free_port_block
from tests.simulator_process import SimulatorError, SimulatorProcess

NS = {"ans": ANS_NS}
PASA = Party(registro_ans="331988", codigo_na_operadora="1004567")
IPASGO = Party(registro_ans="424188", codigo_na_operadora="5012377")
UNIMED = Party(registro_ans="331872", codigo_na_operadora="20345")


def _post(url: str, body: bytes) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=30)


def _demo_command(port: int, base: int) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "serve", "--demo", "--bind", f"127.0.0.1:{port}",
            "--simulator", f"127.0.0.1:{base}", "--workers", "2"]


def _demo_env(home: Path) -> dict[str, str]:
    runtime = home / "run"
    runtime.mkdir(exist_ok=True)
    return {**os.environ, "TISS_GATEWAY_HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
            "PYTHONUNBUFFERED": "1"}


def _start_demo(home: Path, port: int, base: int) -> subprocess.Popen:
    """``serve --demo`` logging to ``home/demo.log``, once its gateway answers /healthz."""
    with (home / "demo.log").open("ab") as log:
        process = subprocess.Popen(_demo_command(port, base), cwd=REPO, env=_demo_env(home), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                return process
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_demo(process)
            raise AssertionError((home / "demo.log").read_text())
        time.sleep(0.3)


def _stop_demo(process: subprocess.Popen) -> None:
    """SIGTERM to the demo (as a service manager does), SIGKILL to its group if it hangs."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _companions(pid: int) -> dict[str, int]:
    """The demo's ``worker`` and ``simulate`` children (their own process group: not gunicorn's)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"gateway.cli" in command:
            for name in ("worker", "simulate"):
                if name.encode() in command:
                    found[name] = int(stat.parent.name)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, what: str, log: Path, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, (what, log.read_text()[-5000:])
        time.sleep(0.3)


def test_serve_demo_delivers_a_lote_and_its_status_moves(tmp_path: Path) -> None:
    port, base = free_port(), free_port_block(6)
    process = _start_demo(tmp_path, port, base)
    gateway = f"http://127.0.0.1:{port}/tiss/v4_03_00"
    companions = _companions(process.pid)
    try:
        assert set(companions) == {"worker", "simulate"}, companions
        sent = _post(f"{gateway}/tissLoteGuias", build_lote("consulta", 2, envelope=True, party=PASA,
                                                             numero_lote="501", sequencial="501"))
        assert sent.status_code == 200, sent.text
        protocolo = re.search(rb"<ans:numeroProtocolo>(\w+)<", sent.content).group(1).decode()
        status, seen = "1", set()
        deadline = time.monotonic() + 90
        sequencial = 600
        while status == "1" and time.monotonic() < deadline:
            time.sleep(2)
            sequencial += 1
            answer = _post(f"{gateway}/tissSolicitacaoStatusProtocolo", build_request(
                "solicitacaoStatusProtocoloWS", envelope=True, sequencial=str(sequencial),
                numero_protocolo=protocolo, party=PASA))
            status = etree.fromstring(answer.content).findtext(".//ans:statusProtocolo", namespaces=NS)
            seen.add(status)
        assert status not in (None, "1"), ((tmp_path / "demo.log").read_text()[-5000:], seen)

        # IPASGO takes only signed messages: the demo signs with the demo provider's certificate.
        sent = _post(f"{gateway}/tissLoteGuias", build_lote("consulta", 1, envelope=True, party=IPASGO,
                                                             numero_lote="502", sequencial="502"))
        assert sent.status_code == 200, sent.text
        _wait_delivered(tmp_path, "424188")
        # Unimed takes only 4.03.00: a 4.02.00 lote is converted and delivered (to its 4.03.00 address).
        lote = build_lote("consulta", 1, envelope=True, party=UNIMED, numero_lote="503", sequencial="503",
                          version="4.02.00")
        sent = _post(gateway.replace("v4_03_00", "v4_02_00") + "/tissLoteGuias", lote)
        assert sent.status_code == 200, sent.text
        _wait_delivered(tmp_path, "331872")
    finally:
        _stop_demo(process)
    # SIGTERM to the demo alone stops its children too (they are not in its process group).
    assert process.returncode == 0, (tmp_path / "demo.log").read_text()[-3000:]
    assert not [pid for pid in companions.values() if _alive(pid)]


def _wait_delivered(home: Path, registro: str) -> None:
    """The operator's first delivery is delivered (``entregas list``)."""
    deadline = time.monotonic() + 60
    while True:
        listed = cli("entregas", "list", "--operadora", registro, "--json", home=home)
        rows = json.loads(listed.stdout) if listed.returncode == 0 else []
        if rows and rows[0]["estado"] == "entregue":
            return
        assert time.monotonic() < deadline, (rows, (home / "demo.log").read_text()[-5000:])
        time.sleep(1)


@pytest.mark.parametrize(("taken", "said"), [
    (0, "o gateway"), (1, "o admin das operadoras simuladas"),
    (5, "a operadora simulada CASSEMS (registro ANS 413534)")])
def test_serve_demo_on_a_port_in_use_exits_naming_it(tmp_path: Path, taken: int, said: str) -> None:
    """Nothing starts (no simulator, no worker, no gateway): one line naming the port and its use.
    ``taken``: 0 the gateway's port, else the simulator's n-th (1 its admin)."""
    for _attempt in range(3):  # another process on this machine may take a port of the block meanwhile
        port, base = free_port(), free_port_block(6)
        occupied = port if taken == 0 else base + taken - 1
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", occupied))
            holder.listen()
            done = subprocess.run(_demo_command(port, base), cwd=REPO, env=_demo_env(tmp_path),
                                  capture_output=True, text=True, timeout=120, check=False)
        if f"ouvir em 127.0.0.1:{occupied}," in done.stderr or "Address already in use" not in done.stderr:
            break
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [
        f"serve --demo: não é possível ouvir em 127.0.0.1:{occupied}, que a demo usa para {said}: Address "
        f"already in use; libere a porta ou escolha outra com {'--bind' if taken == 0 else '--simulator'} "
        "HOST:PORTA"], done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "simulator").exists()  # no simulator ever ran in this home


@contextlib.contextmanager
def _other_simulator(home: Path) -> Iterator[tuple[SimulatorProcess, int]]:
    """Another instance's ``simulate --all`` on a block of free ports, and its base port. Another
    block if one of its ports was taken before it listened (other processes share the machine)."""
    for attempt in range(3):
        base = free_port_block(6)
        other = SimulatorProcess(home / str(attempt), extra_args=("--bind", f"127.0.0.1:{base}"))
        try:
            other.start()
        except SimulatorError:
            other.close()
            if attempt == 2:
                raise
            continue
        try:
            yield other, base
        finally:
            other.close()
        return


@pytest.mark.parametrize("home_used_before", [False, True])
def test_serve_demo_never_uses_another_instances_simulator(tmp_path: Path, home_used_before: bool) -> None:
    """Another demo's simulator on the ports: a fresh home used to end in a traceback (no CA key),
    a used one in a worker delivering to the other instance's operators."""
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    if home_used_before:
        pki.load_or_create_authority(home / "simulator" / "runtime")
    with _other_simulator(tmp_path / "other") as (_other, base):
        done = subprocess.run(_demo_command(port, base), cwd=REPO, env=_demo_env(home), capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert f"não é possível ouvir em 127.0.0.1:{base}, que a demo usa para o admin das operadoras " \
               "simuladas: Address already in use" in done.stderr
        assert "Traceback" not in done.stderr and "linha(s)" not in done.stdout + done.stderr  # no worker


def test_a_simulator_answering_on_its_port_must_be_the_one_started(tmp_path: Path, monkeypatch) -> None:
    """The race the port check cannot see (another simulator takes the port after it): the admin
    that answers is not taken for our own, whichever of the two ways the start fails."""
    monkeypatch.setenv("TISS_GATEWAY_HOME", str(tmp_path / "home"))
    with _other_simulator(tmp_path / "other") as (other, base):
        assert other.process is not None
        with pytest.raises(GiveUp) as caught:
            demo.SimulatorStarter(f"127.0.0.1:{base}", 3600)(threading.Event())
        said = str(caught.value)
        assert caught.value.exit_code == 2
        assert f"outro simulador já responde em 127.0.0.1:{base} (pid {other.process.pid})" in said \
            or f"não é possível ouvir em 127.0.0.1:{base}" in said, said
        mine = _companions(os.getpid())
        assert set(mine.values()) <= {other.process.pid}, mine  # the one it started is gone
        assert _admin_pid(base) == other.process.pid


def test_serve_demo_restarts_what_dies_and_gives_up_when_it_cannot(tmp_path: Path) -> None:
    """kill -9 of the worker and of the simulator: both come back and a lote is still delivered.
    Then the simulator dies with its admin port taken: the demo stops, naming the port, exit 2."""
    port, base = free_port(), free_port_block(6)
    log = tmp_path / "demo.log"
    process = _start_demo(tmp_path, port, base)
    try:
        first = _companions(process.pid)
        os.kill(first["worker"], signal.SIGKILL)
        os.kill(first["simulate"], signal.SIGKILL)
        def restarted() -> dict[str, int] | None:
            now = _companions(process.pid)
            return now if set(now) == set(first) and not set(now.values()) & set(first.values()) else None

        again = _wait_for(restarted, "worker e simulador reiniciados", log)
        for name, child in (("worker de entrega", "worker"), ("simulador das operadoras", "simulate")):
            assert f"{name} (pid {first[child]}) terminou" in log.read_text()
        _wait_for(lambda: _admin_pid(base) == again["simulate"], "simulador novo responde", log)

        gateway = f"http://127.0.0.1:{port}/tiss/v4_03_00"
        sent = _post(f"{gateway}/tissLoteGuias", build_lote("consulta", 1, envelope=True, party=PASA,
                                                             numero_lote="701", sequencial="701"))
        assert sent.status_code == 200, sent.text
        _wait_delivered(tmp_path, "331988")

        os.kill(again["simulate"], signal.SIGKILL)
        with socket.socket() as holder:
            _wait_for(lambda: _bound(holder, base), "porta do admin tomada", log, timeout=10)
            holder.listen()
            process.wait(180)
        assert process.returncode == 2, log.read_text()[-5000:]
        assert f"não é possível ouvir em 127.0.0.1:{base}, que a demo usa para o admin das operadoras " \
               "simuladas" in log.read_text()
        assert not _alive(again["worker"])  # never left delivering to whoever took the port
    finally:
        if process.poll() is None:
            _stop_demo(process)


def _admin_pid(base: int) -> int | None:
    try:
        return requests.get(f"http://127.0.0.1:{base}/admin/state", timeout=2).json().get("pid")
    except (requests.RequestException, ValueError):
        return None


def _bound(sock: socket.socket, port: int) -> bool:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the killed listener's TIME_WAITs
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True
