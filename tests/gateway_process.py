"""A real ``tiss-gateway serve`` process for HTTP tests and benchmarks.

``GatewayProcess(database_url, home).start()`` runs ``python -m gateway.cli serve --demo`` (gunicorn,
sync workers) on a free 127.0.0.1 port, waits for ``/healthz`` and keeps the log in a file;
``stop()`` sends SIGTERM to the gunicorn arbiter (graceful) and SIGKILL to its process group only if
it does not exit in time. Also usable as a context manager.

Each process gets its own ``XDG_RUNTIME_DIR``: gunicorn (>= 25.1) opens a control socket at
``$XDG_RUNTIME_DIR/gunicorn.ctl`` (else ``~/.gunicorn/gunicorn.ctl``), and two servers sharing that
path would take it from each other.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from gateway.observability import stack_dump

REPO = Path(__file__).resolve().parent.parent


class GatewayError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(n: int) -> int:
    """A base port with ``n`` consecutive free ports (listeners that take PORT, PORT+1, ...)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + n > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + n):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free block of ports")


def cli(*args: str, home: Path, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python -m gateway.cli <args>`` with ``TISS_GATEWAY_HOME=home``."""
    env = {**os.environ, "TISS_GATEWAY_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)


class GatewayProcess:
    def __init__(self, database_url: str, home: Path, *, workers: int = 2, demo: bool = True,
                 extra_args: tuple[str, ...] = (), log_dir: Path | None = None,
                 app_args: tuple[str, ...] | None = None, env: dict[str, str] | None = None,
                 tls_ca: Path | None = None):
        """``app_args``: run ``gunicorn <app_args>`` instead of the gateway (e.g. a benchmark's
        baseline app); ``env``: extra environment variables for the server; ``tls_ca``: the server
        speaks HTTPS (``extra_args`` name its certificate) with a certificate from this AC."""
        self.tls_ca = tls_ca
        self.database_url = database_url
        self.home = Path(home)
        self.workers = workers
        self.demo = demo
        self.extra_args = extra_args
        self.app_args = app_args
        self.env = dict(env or {})
        self._tmp = tempfile.TemporaryDirectory(prefix="tiss-gw-", dir=log_dir)
        self.log_path = Path(self._tmp.name) / "server.log"
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def command(self, port: int) -> list[str]:
        bind = f"127.0.0.1:{port}"
        if self.app_args is not None:
            return [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(self.workers),
                    "--worker-class", "sync", "--access-logfile", "-", *self.app_args]
        demo = ["--demo", "--no-simulator"] if self.demo else []  # companions: tests start their own
        return [sys.executable, "-m", "gateway.cli", "serve", *demo, "--bind", bind,
                "--workers", str(self.workers), "--database", self.database_url,
                *self.extra_args]

    def start(self, timeout: float = 90) -> GatewayProcess:
        last_error = None
        for _attempt in range(3):  # a free port can be taken between the probe and gunicorn's bind
            try:
                self._start_once(free_port(), timeout)
                return self
            except GatewayError as exc:
                last_error = exc
                self.stop()
                if "in use" not in self.log():
                    break
        raise last_error  # type: ignore[misc]

    def _start_once(self, port: int, timeout: float) -> None:
        self.port = port
        runtime = Path(self._tmp.name) / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env = {**os.environ, "TISS_GATEWAY_HOME": str(self.home), "XDG_RUNTIME_DIR": str(runtime),
               "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.command(port))}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.command(port), cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise GatewayError(f"o servidor terminou com status {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url("/healthz"), timeout=2,
                                verify=str(self.tls_ca) if self.tls_ca else True).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise GatewayError(f"o servidor não respondeu /healthz em {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return read_log(self.log_path)

    def stop(self, timeout: float = 30) -> None:
        process, self.process = self.process, None
        stop_process(process, timeout)

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()


class WorkerProcess:
    """A real ``tiss-gateway worker`` process (``kill()`` is SIGKILL: the crash tests)."""

    def __init__(self, database_url: str, home: Path, config: Path, *, threads: int = 4,
                 log_dir: Path | None = None, extra_args: tuple[str, ...] = ()):
        self.database_url = database_url
        self.extra_args = extra_args
        self.home = Path(home)
        self.config = config
        self.threads = threads
        self._tmp = tempfile.TemporaryDirectory(prefix="tiss-worker-", dir=log_dir)
        self.log_path = Path(self._tmp.name) / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, "TISS_GATEWAY_HOME": str(self.home), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "gateway.cli", "worker", "--config", str(self.config),
                   "--database", self.database_url, "--threads", str(self.threads), *self.extra_args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self) -> str:
        return read_log(self.log_path)

    def dump_stacks(self) -> str | None:
        return dump_stacks(self.process, self.log_path)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self, timeout: float = 30) -> None:
        process, self.process = self.process, None
        stop_process(process, timeout)

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()


def read_log(path: Path) -> str:
    """A process's log file so far ("" before it exists)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def dump_stacks(process: subprocess.Popen | None, log_path: Path, wait: float = 10) -> str | None:
    """Have a running worker or simulator print every thread's stack into its log (SIGUSR1,
    ``gateway.observability.stack_dump``): what a stuck process was doing, for a failure. Returns
    that dump once it is whole in the log (None: no dump), found by its first and last lines, since
    the process's own lines keep growing the log around it."""
    if process is None or process.poll() is not None:
        return None
    start, end = stack_dump.start_line(process.pid), stack_dump.end_line(process.pid)
    before = read_log(log_path).count(end)
    process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        log = read_log(log_path)
        if log.count(end) > before:
            last = log.rindex(end)
            return log[log.rindex(start, 0, last):last + len(end)]
        time.sleep(0.05)
    return None


def stop_process(process: subprocess.Popen | None, timeout: float = 30) -> int | None:
    """SIGTERM (gunicorn: graceful shutdown of the workers), then SIGKILL to the process group it
    leads if it does not exit in ``timeout``; returns the exit status."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    return process.returncode
