"""gateway.cli.supervisor with real child processes (short Python scripts) and short pauses."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from gateway.cli.supervisor import RUNNING, Backoff, GiveUp, Supervisor, exit_status

FAST = Backoff(first_s=0.05, max_s=0.2, stable_s=60, max_deaths=3)  # a slow start is no "long life"


def _python(code: str):
    def start(_stopping: threading.Event) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", code])

    return start


def _ticks_until(supervisor: Supervisor, done, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline
        supervisor.tick()
        time.sleep(0.02)


def test_a_dead_child_is_restarted_after_its_pause() -> None:
    supervisor = Supervisor(FAST)
    first = supervisor.add("worker de entrega", _python("import time; time.sleep(60)"))
    try:
        first.kill()
        _ticks_until(supervisor, lambda: supervisor.children[0].process not in (None, first))
        child = supervisor.children[0]
        assert child.deaths == 1 and exit_status(child.process) == RUNNING
        assert exit_status(first) == "sinal SIGKILL"
    finally:
        supervisor.stop(timeout_s=5)
    assert exit_status(supervisor.children[0].process) == "sinal SIGTERM"


def test_a_child_that_keeps_dying_is_given_up_with_its_last_status() -> None:
    supervisor = Supervisor(FAST)
    supervisor.add("simulador das operadoras", _python("raise SystemExit(3)"))
    with pytest.raises(GiveUp, match=r"simulador das operadoras terminou 4 vezes seguidas, cada uma em menos "
                                     r"de 60 s \(a última: código 3\)"):
        _ticks_until(supervisor, lambda: False)


def test_a_child_that_lived_long_enough_starts_counting_again() -> None:
    supervisor = Supervisor(Backoff(first_s=0.05, stable_s=0.3, max_deaths=1))
    supervisor.add("worker de entrega", _python("import time; time.sleep(0.5)"))
    try:  # each run outlives stable_s: never given up
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            supervisor.tick()
            time.sleep(0.02)
        assert supervisor.children[0].deaths == 1
    finally:
        supervisor.stop(timeout_s=5)


def test_a_check_that_fails_gives_up_at_once() -> None:
    def taken() -> None:
        raise GiveUp("porta tomada", 2)

    supervisor = Supervisor(FAST)
    supervisor.add("simulador das operadoras", _python("pass"), check=taken)
    with pytest.raises(GiveUp, match="porta tomada") as caught:
        _ticks_until(supervisor, lambda: False)
    assert caught.value.exit_code == 2 and supervisor.children[0].deaths == 1


def test_the_thread_reports_a_give_up_and_stop_ends_every_child() -> None:
    failures: list[GiveUp] = []
    supervisor = Supervisor(FAST, poll_s=0.02, on_give_up=failures.append)
    sleeper = supervisor.add("worker de entrega", _python("import time; time.sleep(60)"))
    supervisor.add("simulador das operadoras", _python("raise SystemExit(1)"))
    supervisor.watch()
    deadline = time.monotonic() + 20
    while not failures:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert supervisor.failure is failures[0] and "simulador das operadoras" in str(failures[0])
    supervisor.stop(timeout_s=5)
    assert exit_status(sleeper) == "sinal SIGTERM"


def test_a_start_that_fails_counts_as_a_death() -> None:
    calls = []

    def start(_stopping: threading.Event) -> subprocess.Popen:
        calls.append(1)
        if len(calls) > 1:
            raise OSError("sem memória")
        return subprocess.Popen([sys.executable, "-c", "pass"])

    supervisor = Supervisor(FAST)
    supervisor.add("worker de entrega", start)
    with pytest.raises(GiveUp, match="a última: não iniciou"):
        _ticks_until(supervisor, lambda: False)
    assert len(calls) == 4
