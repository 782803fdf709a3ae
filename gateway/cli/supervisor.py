"""Child processes that must keep running (``serve --demo``'s delivery worker and simulated
operators): one that dies is logged and started again after a pause that doubles with each quick
death; one that keeps dying, or that cannot be started again (its port now someone else's), makes
the supervisor give up and say why.

The supervisor runs on a thread of the gunicorn arbiter, whose SIGCHLD handler reaps every child
with ``waitpid(-1)``: a child's exit status is then lost to us, and only its death is known.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("tiss_gateway.demo")

# A start function gets the supervisor's stop event: waiting for a child to come up ends early
# when the supervisor is stopping.
Start = Callable[[threading.Event], subprocess.Popen]


class GiveUp(Exception):
    """A child cannot be kept running; the message says why, in Portuguese, for the user."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Backoff:
    """Pauses before a restart: ``first_s``, doubling, at most ``max_s``. A child that lived
    ``stable_s`` starts counting again; after ``max_deaths`` quick deaths in a row it is given up."""

    first_s: float = 1.0
    max_s: float = 30.0
    stable_s: float = 60.0
    max_deaths: int = 5

    def pause(self, deaths: int) -> float:
        return min(self.first_s * 2 ** max(deaths - 1, 0), self.max_s)


@dataclass
class Child:
    name: str  # for the user, a masculine noun: "worker de entrega", "simulador das operadoras"
    start: Start
    check: Callable[[], None]  # before a restart: raises GiveUp if starting again is pointless
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    deaths: int = 0
    restart_at: float | None = None  # set while dead, waiting for its pause


class Supervisor:
    def __init__(self, backoff: Backoff = Backoff(), *, poll_s: float = 0.5,
                 on_give_up: Callable[[GiveUp], None] = lambda _exc: None):
        self.backoff = backoff
        self.poll_s = poll_s
        self.on_give_up = on_give_up
        self.failure: GiveUp | None = None
        self.children: list[Child] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, start: Start, *, check: Callable[[], None] = lambda: None) -> subprocess.Popen:
        """Start a child now (in the caller: a failure to come up is the caller's) and keep it."""
        child = Child(name, start, check, started_at=time.monotonic())
        child.process = start(self._stopping)
        self.children.append(child)
        return child.process

    def watch(self) -> None:
        """Supervise on a daemon thread until :meth:`stop` or a give-up."""
        self._thread = threading.Thread(target=self._loop, name="demo-supervisor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.wait(self.poll_s):
            try:
                self.tick()
            except GiveUp as exc:
                log.error("%s", exc)
                self.failure = exc
                self.on_give_up(exc)
                return

    def tick(self) -> None:
        """One round: note the children that died, restart those whose pause is over."""
        for child in self.children:
            if self._stopping.is_set():
                return
            if child.restart_at is None:
                self._note_death(child)
            elif time.monotonic() >= child.restart_at:
                child.check()
                self._restart(child)

    def _note_death(self, child: Child) -> None:
        status = exit_status(child.process)
        if status == RUNNING:
            return
        lived = time.monotonic() - child.started_at
        child.deaths = child.deaths + 1 if lived < self.backoff.stable_s else 1
        pid = child.process.pid if child.process is not None else "-"
        if child.deaths > self.backoff.max_deaths:
            raise GiveUp(f"{child.name} terminou {child.deaths} vezes seguidas, cada uma em menos de "
                         f"{self.backoff.stable_s:.0f} s (a última: {status}); a demo foi encerrada")
        child.process = None  # its pid may be reused: never signalled again
        pause = self.backoff.pause(child.deaths)
        log.warning("%s (pid %s) terminou (%s) após %.0f s; reiniciando em %.0f s", child.name, pid,
                    status, lived, pause)
        child.check()
        child.restart_at = time.monotonic() + pause

    def _restart(self, child: Child) -> None:
        child.restart_at = None
        self._start(child)
        if child.process is not None:
            log.warning("%s reiniciado (pid %s)", child.name, child.process.pid)

    def _start(self, child: Child) -> None:
        child.started_at = time.monotonic()
        try:
            child.process = child.start(self._stopping)
        except (OSError, subprocess.SubprocessError) as exc:  # counted as a death at the next tick
            log.error("%s não iniciou: %s", child.name, exc)
            child.process = None

    def stop(self, timeout_s: float = 30) -> None:
        """Stop supervising (a restart under way finishes first), then SIGTERM every child, and
        SIGKILL those still running after ``timeout_s``."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        alive = [c.process for c in self.children
                 if c.process is not None and exit_status(c.process) == RUNNING]
        for process in alive:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in alive:
            while exit_status(process) == RUNNING and time.monotonic() < deadline:
                time.sleep(0.05)
            if exit_status(process) == RUNNING:
                _signal(process, signal.SIGKILL)
                _wait(process)


RUNNING = "em execução"
UNKNOWN = "estado de saída desconhecido"


def exit_status(process: subprocess.Popen | None) -> str:
    """How ``process`` ended, for the log, or :data:`RUNNING`. Our own ``waitpid``, not
    ``Popen.poll``: that one reports exit code 0 for a child someone else reaped."""
    if process is None:
        return "não iniciou"
    if process.returncode is None:
        try:
            pid, status = os.waitpid(process.pid, os.WNOHANG)
        except ChildProcessError:  # the gunicorn arbiter reaped it
            return UNKNOWN
        if pid == 0:
            return RUNNING
        process.returncode = os.waitstatus_to_exitcode(status)
    code = process.returncode
    if code < 0:
        return f"sinal {signal.Signals(-code).name}" if -code in signal.valid_signals() else f"sinal {-code}"
    return f"código {code}"


def _signal(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # not Popen.send_signal: a reaped child is 0 there
        os.kill(process.pid, signum)


def _wait(process: subprocess.Popen, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while exit_status(process) == RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
