"""``kill -USR1 PID``: every thread's stack to stderr, and the process keeps running.

For a worker or simulator that seems stuck. The dump runs as an ordinary Python signal handler,
in the main thread and holding the GIL, so the threads it reads cannot end under it.
``faulthandler.register(SIGUSR1, all_threads=True)`` reads them without the GIL: it killed CI's
worker with SIGSEGV while its WSDL warm-up thread was ending, and a script that starts and joins
threads while it signals itself crashed 6 times in 6 with it, 0 in 6 with this handler.

The cost of that safety: the handler waits for the main thread to run Python again. The main
threads of the worker and the simulator only wait (join, Event.wait), and the kernel wakes them
for a signal. A process that dies on a fatal signal (a crash in C) still prints its stacks, from
``faulthandler.enable``: that process is ending anyway.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import traceback
from types import FrameType


def install(fd: int = 2) -> None:
    """SIGUSR1 dumps every thread's stack to ``fd``; fatal signals dump them as the process dies."""
    faulthandler.enable(file=sys.stderr, all_threads=True)
    signal.signal(signal.SIGUSR1, lambda _signum, _frame: _write(fd, format_stacks()))


def format_stacks() -> str:
    """Each thread, most recent call first, in faulthandler's layout plus the thread's name,
    between a first and a last line that let a reader find the whole dump in a busy log."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    blocks = [_format_thread(ident, names.get(ident, "?"), frame)
              for ident, frame in sys._current_frames().items()]
    pid = os.getpid()
    return f"{start_line(pid)}\n" + "\n".join(blocks) + f"\n{end_line(pid)}\n"


def start_line(pid: int) -> str:
    return f"Stacks of process {pid}, most recent call first:"


def end_line(pid: int) -> str:
    return f"(end of the stacks of process {pid})"


def _format_thread(ident: int, name: str, frame: FrameType) -> str:
    lines = [f"Thread 0x{ident:016x} ({name}) (most recent call first):"]
    steps = traceback.StackSummary.extract(traceback.walk_stack(frame), lookup_lines=False)
    lines += [f'  File "{step.filename}", line {step.lineno} in {step.name}' for step in steps]
    return "\n".join(lines) + "\n"


def _write(fd: int, text: str) -> None:
    """Straight to the descriptor: the handler may interrupt the main thread inside a write to
    ``sys.stderr``, and a buffered stream refuses a reentrant write."""
    data = text.encode("utf-8", "replace")
    while data:
        data = data[os.write(fd, data):]
