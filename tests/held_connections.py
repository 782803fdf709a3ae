"""Idle and slow-loris connections held against a server (tests/process/test_connections.py and
bench/connections.py).

``HeldConnections(port, idle=10, slow=10).start()`` opens the connections and, from one thread,
sends each slow one a byte of a request head every ``interval`` seconds (a head that never ends)
while the idle ones send nothing. Whatever the server answers is read; a connection the server
closes is recorded in ``closed`` (when, after how long, what it answered) and, with
``reopen=True``, replaced, so that as many connections stay held as asked (an attacker keeps
coming back). ``stop()`` closes them all.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

SLOW_HEAD = b"POST /tiss/v4_03_00/tissLoteGuias HTTP/1.1\r\nHost: gateway\r\nX-Devagar: "


@dataclass
class Held:
    kind: str  # "idle" or "slow"
    sock: socket.socket
    opened: float = field(default_factory=time.monotonic)
    sent: int = 0
    answer: bytes = b""


@dataclass(frozen=True)
class Closed:
    kind: str
    held_s: float  # from connect to the server's close
    sent: int  # bytes the client had sent
    answer: bytes  # what the server wrote before closing


class HeldConnections:
    def __init__(self, port: int, *, idle: int, slow: int, interval: float = 1.0, reopen: bool = False,
                 host: str = "127.0.0.1"):
        self.address = (host, port)
        self.counts = {"idle": idle, "slow": slow}
        self.interval = interval
        self.reopen = reopen
        self.closed: list[Closed] = []
        self.open_failures = 0
        self._held: dict[socket.socket, Held] = {}
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="held-connections", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> HeldConnections:
        for kind, count in self.counts.items():
            for _ in range(count):
                self._open(kind)
        self._thread.start()
        return self

    def held(self) -> dict[str, int]:
        with self._lock:
            kinds = [h.kind for h in self._held.values()]
        return {kind: kinds.count(kind) for kind in self.counts}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for held in list(self._held.values()):
            self._forget(held)
        self._selector.close()

    def __enter__(self) -> HeldConnections:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _open(self, kind: str) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=5)
        except OSError:
            self.open_failures += 1
            return
        sock.setblocking(False)
        held = Held(kind, sock)
        with self._lock:
            self._held[sock] = held
        self._selector.register(sock, selectors.EVENT_READ, held)

    def _forget(self, held: Held) -> None:
        with self._lock:
            self._held.pop(held.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(held.sock)
        held.sock.close()

    def _run(self) -> None:
        next_byte = time.monotonic() + self.interval
        while not self._stop.is_set():
            for key, _events in self._selector.select(timeout=max(0.0, next_byte - time.monotonic())):
                self._read(key.data)
            if time.monotonic() >= next_byte:
                next_byte += self.interval
                for held in [h for h in list(self._held.values()) if h.kind == "slow"]:
                    self._drip(held)

    def _drip(self, held: Held) -> None:
        byte = SLOW_HEAD[held.sent:held.sent + 1] or b"a"  # the header's value never ends
        try:
            held.sock.send(byte)
            held.sent += 1
        except OSError:
            self._closed(held)

    def _read(self, held: Held) -> None:
        try:
            data = held.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            held.answer += data
            return
        self._closed(held)

    def _closed(self, held: Held) -> None:
        self.closed.append(Closed(held.kind, time.monotonic() - held.opened, held.sent, held.answer))
        self._forget(held)
        if self.reopen and not self._stop.is_set():
            self._open(held.kind)
