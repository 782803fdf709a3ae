"""What ``serve --demo`` runs beside the gateway: the ports it needs, the simulated operators
(``simulate --all``), the delivery worker and the demo provider's certificate.

Every port is checked before anything starts, and the simulator that answers must be the one
started here (its ``/admin/state`` gives its pid): a worker of this demo never delivers to
another instance's operators. The children run in their own process group: Ctrl-C reaches the
gateway only, which stops them (gateway.cli.supervisor), so none is restarted on the way out.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests

from gateway.cli.supervisor import RUNNING, GiveUp, Start, exit_status

PORT_TAKEN = 2  # exit status of a demo that cannot have its ports
SIMULATOR_START_S = 60  # the simulator compiles every schema set before it listens
_CLI = [sys.executable, "-m", "gateway.cli"]


class CompanionError(subprocess.SubprocessError):
    """A child did not come up (the supervisor counts it as a death; at start, exit status 2)."""


@dataclass(frozen=True)
class Port:
    host: str
    port: int
    use: str  # what the demo needs it for, and how to choose another
    option: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def gateway_port(bind: str) -> list[Port]:
    """The gateway's own port (none for ``unix:``/``fd://`` binds or port 0)."""
    from gateway.deploy_settings import parse_bind

    address = parse_bind(bind)
    if address is None or address[1] == 0:
        return []
    return [Port(address[0] or "0.0.0.0", address[1], "o gateway", "--bind")]


def simulator_ports(simulator: str) -> list[Port]:
    """The simulator's admin port and, after it, one port per operator of the demo config."""
    from gateway.config import DEMO_OPERADORAS
    from gateway.deploy_settings import parse_bind

    try:
        address = parse_bind(simulator)
    except ValueError:
        address = None
    if address is None or not 0 < address[1] <= 65535 - len(DEMO_OPERADORAS):
        raise GiveUp(f"--simulator inválido: {simulator!r} (use HOST:PORTA, com as {len(DEMO_OPERADORAS)} "
                     "portas seguintes livres para as operadoras)", PORT_TAKEN)
    host, port = address[0] or "127.0.0.1", address[1]
    ports = [Port(host, port, "o admin das operadoras simuladas", "--simulator")]
    for index, (registro, nome, _adapter, _codigo) in enumerate(DEMO_OPERADORAS, 1):
        ports.append(Port(host, port + index, f"a operadora simulada {nome} (registro ANS {registro})",
                          "--simulator"))
    return ports


def check_ports(ports: list[Port]) -> None:
    """A :class:`GiveUp` (exit status 2) naming the first port another process holds."""
    for port in ports:
        problem = _cannot_listen(port.host, port.port)
        if problem:
            raise GiveUp(f"serve --demo: não é possível ouvir em {port}, que a demo usa para {port.use}: "
                         f"{problem}; libere a porta ou escolha outra com {port.option} HOST:PORTA",
                         PORT_TAKEN)


def _cannot_listen(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` now (None: it could). SO_REUSEADDR as the
    servers set it: a port left in TIME_WAIT is free."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                  flags=socket.AI_PASSIVE)[0]
    except (OSError, UnicodeError) as exc:
        return f"host desconhecido ({getattr(exc, 'strerror', None) or exc})"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            # strerror as the OS says it ("Address already in use"): what gunicorn logs too
            return exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return None


class SimulatorStarter:
    """Starts ``simulate --all`` and waits until *its* admin answers. A restart goes on from the
    simulated moment the previous one had reached (the clock runs while it is down), not from now."""

    def __init__(self, simulator: str, time_scale: float):
        self.simulator = simulator
        self.time_scale = time_scale
        self._clock: tuple[float, datetime] | None = None  # (monotonic, simulated now) when seen

    def __call__(self, stopping: threading.Event) -> subprocess.Popen:
        command = [*_CLI, "simulate", "--all", "--bind", self.simulator, "--time-scale", str(self.time_scale)]
        if self._clock is not None:
            seen_at, simulated = self._clock
            elapsed = timedelta(seconds=(time.monotonic() - seen_at) * self.time_scale)
            command += ["--start", (simulated + elapsed).isoformat()]
        process = subprocess.Popen(command, process_group=0)
        try:
            self._wait_ready(process, stopping)
        except BaseException:
            _end(process)
            raise
        return process

    def _wait_ready(self, process: subprocess.Popen, stopping: threading.Event) -> None:
        deadline = time.monotonic() + SIMULATOR_START_S
        while not stopping.is_set():
            if exit_status(process) != RUNNING:
                check_ports(simulator_ports(self.simulator))  # the likeliest reason, named
                raise CompanionError(f"as operadoras simuladas não subiram em {self.simulator} "
                                     "(veja o erro acima)")
            state = self._state()
            if state is not None:
                if state.get("pid") != process.pid:
                    raise GiveUp(f"serve --demo: outro simulador já responde em {self.simulator} (pid "
                                 f"{state.get('pid')}); escolha outra porta com --simulator HOST:PORTA",
                                 PORT_TAKEN)
                self._clock = (time.monotonic(), datetime.fromisoformat(state["clock"]["now"]))
                return
            if time.monotonic() > deadline:
                raise CompanionError(f"as operadoras simuladas não responderam em {self.simulator} "
                                     f"em {SIMULATOR_START_S} s")
            stopping.wait(0.3)
        raise CompanionError("interrompido")

    def _state(self) -> dict | None:
        try:
            answer = requests.get(f"http://{self.simulator}/admin/state", timeout=2)
            return answer.json() if answer.ok else None
        except (requests.RequestException, ValueError):
            return None


def worker_starter(simulator: str, database_url: str) -> Start:
    def start(_stopping: threading.Event) -> subprocess.Popen:
        return subprocess.Popen([*_CLI, "worker", "--demo", "--simulator", simulator,
                                 "--database", database_url, "--threads", "2"], process_group=0)

    return start


def _end(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def demo_certificate() -> None:
    """The demo provider's e-CNPJ from the simulator's sandbox AC (made once, reused)."""
    from gateway.config import DEMO_CERTIFICADO, DEMO_CNPJ, demo_certificado
    from gateway.home import gateway_home
    from gateway.security import pki

    runtime = gateway_home() / "simulator" / "runtime"
    try:
        authority = pki.load_authority(runtime)
        chave, certificados = demo_certificado()
        if chave.is_file() and certificados.is_file() and \
                pki.load_leaf(chave.parent, DEMO_CERTIFICADO[1]).chain_pem[1:] == authority.chain_pem:
            return
        chave.parent.mkdir(parents=True, exist_ok=True)
        authority.issue("Clínica Demonstração", cnpj=DEMO_CNPJ).save(chave.parent, DEMO_CERTIFICADO[1])
    except (OSError, ValueError) as exc:
        raise CompanionError(f"certificado do prestador demo: AC do simulador em {runtime}: {exc}") from None
