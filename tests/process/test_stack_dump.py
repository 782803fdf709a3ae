"""SIGUSR1 stack dumps (gateway.observability.stack_dump): readable, and safe while threads come
and go. The worker and simulator processes are covered in tests/process/test_forwarding.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from gateway.observability import stack_dump

# Threads start and end in a loop while the process signals itself: the dump must read them
# without crashing (faulthandler's all-threads dump died here with SIGSEGV in every try).
_CHURN = r"""
import os, signal, sys, threading, time
from gateway.observability import stack_dump

log = sys.argv[1]
stack_dump.install(fd=os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
stop = time.monotonic() + 1.5

def churn():
    while time.monotonic() < stop:
        batch = [threading.Thread(target=sum, args=(range(1000),)) for _ in range(20)]
        for thread in batch:
            thread.start()
        for thread in batch:
            thread.join()

def signal_self():
    while time.monotonic() < stop:
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.001)

threads = [threading.Thread(target=churn) for _ in range(3)] + [threading.Thread(target=signal_self)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with open(log) as dumps:
    print("dumps", dumps.read().count("(MainThread) (most recent call first)"))
"""


def test_every_thread_is_listed_with_its_name_and_calls() -> None:
    parked = threading.Event()

    def waiting_for_work() -> None:
        parked.wait()

    helper = threading.Thread(target=waiting_for_work, name="linha-de-entrega")
    helper.start()
    try:
        _until_parked(helper)
        text = stack_dump.format_stacks()
    finally:
        parked.set()
        helper.join()
    pid = os.getpid()  # the first and last lines: a reader finds the whole dump in a busy log
    assert text.startswith(f"{stack_dump.start_line(pid)}\n")
    assert text.endswith(f"\n{stack_dump.end_line(pid)}\n")
    blocks = {block.splitlines()[0]: block for block in text.split("\n", 1)[1].split("\n\n")[:-1]}
    helper_block = next(block for head, block in blocks.items() if "(linha-de-entrega)" in head)
    assert f"Thread 0x{helper.ident:016x} (linha-de-entrega) (most recent call first):" in helper_block
    calls = helper_block.splitlines()[1:]
    assert calls[0].endswith(" in wait") and "threading.py" in calls[0]  # most recent call first
    assert any(line.endswith(" in waiting_for_work") and __file__ in line for line in calls)
    main = f"0x{threading.main_thread().ident:016x}"
    main_block = next(block for head, block in blocks.items() if main in head)
    assert "test_every_thread_is_listed_with_its_name_and_calls" in main_block


def _until_parked(thread: threading.Thread, timeout: float = 10) -> None:
    """Until ``thread`` is inside Event.wait: just started, it may still be on its way there."""
    deadline = time.monotonic() + timeout
    while (frame := sys._current_frames().get(thread.ident)) is None or frame.f_code.co_name != "wait":
        assert time.monotonic() < deadline, "a linha não chegou ao wait"
        time.sleep(0.01)


def test_signals_while_threads_start_and_end_never_crash_the_process(tmp_path: Path) -> None:
    for attempt in range(4):
        log = tmp_path / f"stacks-{attempt}.txt"
        done = subprocess.run([sys.executable, "-c", _CHURN, str(log)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
        assert int(done.stdout.split()[-1]) > 50  # dumps written while the threads churned
