"""A real ``tiss-gateway simulate`` process for HTTP tests: simulated operators on free ports.

``SimulatorProcess(home, operators=("unimed",)).start()`` runs ``python -m gateway.cli simulate``
with ``--bind 127.0.0.1:0`` (every listener on an ephemeral port: no port races between parallel
runs), waits for the ``pronto: <admin URL>`` line it prints, then reads the operators' URLs from
``GET /admin/state``. ``home`` is the ``TISS_GATEWAY_HOME`` (schema sets; the simulator keeps its
run-time certificates under ``home/simulator/runtime``); the database is a SQLite file of this
process's own unless ``database_url`` is given. The clock is frozen by default (``time_scale=0``):
tests move it with :meth:`advance`. ``stop()`` sends SIGTERM (clean shutdown) and SIGKILL only if
the process does not exit in time. Also a context manager.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from tests.gateway_process import dump_stacks, read_log, stop_process

REPO = Path(__file__).resolve().parent.parent
_READY = re.compile(r"^pronto: (http://\S+)$", re.MULTILINE)


class SimulatorError(RuntimeError):
    pass


class SimulatorProcess:
    def __init__(self, home: Path, operators: Sequence[str] | None = None, *, time_scale: float = 0.0,
                 seed: int = 0, database_url: str | None = None, start: str | None = None,
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                 log_dir: Path | None = None):
        """``operators``: profile keys, None for ``--all``; ``start``: the simulated start moment
        (ISO, Brasília time if naive); ``extra_args``: more ``simulate`` options."""
        self.home = Path(home)
        self.operators = tuple(operators) if operators is not None else None
        self.time_scale = time_scale
        self.seed = seed
        self.start_moment = start
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self._tmp = tempfile.TemporaryDirectory(prefix="tiss-sim-", dir=log_dir)
        self.database_url = database_url or f"sqlite:///{Path(self._tmp.name) / 'simulator.sqlite'}"
        self.log_path = Path(self._tmp.name) / "simulator.log"
        self.process: subprocess.Popen | None = None
        self.admin_url: str | None = None
        self.urls: dict[str, str] = {}
        self.versoes: dict[str, tuple[str, ...]] = {}  # the versions each operator takes (its profile)

    # -- process ---------------------------------------------------------------------------------
    def command(self) -> list[str]:
        which = ["--all"] if self.operators is None else list(self.operators)
        moment = ["--start", self.start_moment] if self.start_moment else []
        return [sys.executable, "-m", "gateway.cli", "simulate", *which, "--bind", "127.0.0.1:0",
                "--database", self.database_url, "--time-scale", str(self.time_scale),
                "--seed", str(self.seed), *moment, *self.extra_args]

    def start(self, timeout: float = 120) -> SimulatorProcess:
        env = {**os.environ, "TISS_GATEWAY_HOME": str(self.home), "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.command(), cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except SimulatorError:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                status = self.process.returncode
                raise SimulatorError(f"o simulador terminou com status {status}:\n{self.log()}")
            match = _READY.search(self.log())
            if match:
                self.admin_url = match.group(1)
                operators = self.state()["operators"]
                self.urls = {key: op["url"] for key, op in operators.items()}
                self.versoes = {key: tuple(op["versoes"]) for key, op in operators.items()}
                return
            time.sleep(0.1)
        raise SimulatorError(f"o simulador não ficou pronto em {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return read_log(self.log_path)

    def dump_stacks(self) -> str | None:
        return dump_stacks(self.process, self.log_path)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL to the process group if it does not exit; returns the exit status."""
        process, self.process = self.process, None
        return stop_process(process, timeout)

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- URLs ------------------------------------------------------------------------------------
    def url(self, operadora: str, path: str = "") -> str:
        """The operator's base URL (``http://127.0.0.1:PORT``) followed by ``path``."""
        return self.urls[operadora] + path

    def service_url(self, operadora: str, service: str, version: str | None = "4.03.00") -> str:
        """``/tiss/v4_03_00/<service>`` of the operator (``version=None``: ``/tiss/<service>``)."""
        prefix = f"/tiss/v{version.replace('.', '_')}" if version else "/tiss"
        return self.url(operadora, f"{prefix}/{service}")

    def wsdl_url(self, operadora: str, service: str, version: str | None = "4.03.00") -> str:
        return self.service_url(operadora, service, version) + "?wsdl"

    # -- admin API -------------------------------------------------------------------------------
    def admin(self, method: str, path: str, payload: dict[str, Any] | None = None, *,
              expect: int | None = 200) -> Any:
        """Call the admin API (``path`` under ``/admin``): the JSON answer (text for a PEM).

        ``expect``: the status required (SimulatorError otherwise); None accepts any.
        """
        response = requests.request(method, f"{self.admin_url}/admin/{path.lstrip('/')}", json=payload,
                                    timeout=30)
        if expect is not None and response.status_code != expect:
            raise SimulatorError(f"{method} /admin/{path}: {response.status_code} {response.text}")
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.text

    def state(self) -> dict[str, Any]:
        return self.admin("GET", "state")

    def advance(self, *, seconds: float = 0, hours: float = 0, days: float = 0) -> dict[str, Any]:
        """Move the simulated clock forward; returns the clock state (``now`` ISO, UTC)."""
        return self.admin("POST", "clock/advance", {"seconds": seconds, "hours": hours, "days": days})

    def set_time_scale(self, time_scale: float) -> dict[str, Any]:
        return self.admin("POST", "clock/time-scale", {"time_scale": time_scale})

    def set_fault(self, operadora: str, mode: str, **params: Any) -> dict[str, Any]:
        """``params``: rate, latency_ms, kind, count, duration_s. Returns the operator's state."""
        return self.admin("POST", f"{operadora}/faults", {"mode": mode, **params})

    def clear_fault(self, operadora: str) -> dict[str, Any]:
        return self.admin("DELETE", f"{operadora}/faults")

    def certificate(self, operadora: str) -> str:
        """PEM: the operator's leaf certificate, then the simulator's CA."""
        return self.admin("GET", f"{operadora}/certificate")
