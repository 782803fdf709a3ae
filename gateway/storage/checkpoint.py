"""WAL checkpoints off the request path (SQLite).

In WAL mode SQLite copies the log back into the database file (a checkpoint) inside the COMMIT that
takes the log past ``wal_autocheckpoint`` pages: with 470 KB lotes that was one request in eight
paying 10-15 ms, the lote p99 (bench/front.py). Each gateway process runs a :class:`Checkpointer`
thread that does a PASSIVE checkpoint every ``interval`` seconds on its own connection; Python's
sqlite3 lets go of the GIL while SQLite works, so the copy runs beside the requests on another
core. PASSIVE never waits for nor blocks readers and writers: frames a reader still needs are left
for the next round. Request connections keep an automatic checkpoint, set high
(``gateway.storage.db.SAFETY_NET_BYTES`` of log), for when this thread falls behind.
One thread per database file and process.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

from sqlalchemy.engine import URL

from gateway.storage.db import sqlite_file

log = logging.getLogger("tiss_gateway.storage")

INTERVAL_S = 0.25
_running: dict[tuple[int, str], Checkpointer] = {}
_registry = threading.Lock()


class Checkpointer(threading.Thread):
    """A daemon thread: ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval`` seconds."""

    def __init__(self, path: str, interval: float = INTERVAL_S):
        super().__init__(name="wal-checkpoint", daemon=True)
        self.path = path
        self.interval = interval
        self.rounds = 0  # completed checkpoint calls (tests, diagnostics)
        self._stopping = threading.Event()

    def run(self) -> None:
        connection = None
        try:
            while not self._stopping.wait(self.interval):
                try:
                    if connection is None:
                        connection = sqlite3.connect(self.path, timeout=1, isolation_level=None,
                                                     check_same_thread=False)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.rounds += 1
                except sqlite3.Error as error:  # busy, file gone...: the next round tries again
                    log.debug("checkpoint do WAL adiado: %s", error)
        finally:
            if connection is not None:
                connection.close()

    def stop(self, timeout: float = 5) -> None:
        self._stopping.set()
        self.join(timeout)


def start_for(url: str | URL, interval: float = INTERVAL_S) -> Checkpointer | None:
    """This process's checkpointer of ``url``, started if it is not running yet (None when ``url``
    is not a SQLite file). Keyed by pid too: a thread does not survive a fork."""
    path = sqlite_file(url)
    if path is None:
        return None
    key = (os.getpid(), os.path.realpath(path))
    with _registry:
        checkpointer = _running.get(key)
        if checkpointer is None or not checkpointer.is_alive():
            checkpointer = _running[key] = Checkpointer(path, interval)
            checkpointer.start()
        return checkpointer
