"""Bulkheads for the real-time relays (gateway.delivery.relay): a slow or hung operator holds only
its own few threads of a gunicorn worker process, never the ones that accept lotes and answer
status.

A relay waits for the operator (up to its ``timeout_s``) in one of the process's request threads.
Each process (threads per :func:`worker_threads`) keeps:

- **a relay share**: at most :func:`relay_capacity` relays at once, half its threads rounded down
  (at least one), so the other half always remains for lotes, status and everything else;
- **a bulkhead per operator**: at most its ``[operadoras.NNNNNN] max_relays`` relays at once
  (never more than the share), by default half the share (at least one,
  :func:`operator_limit`), so that one slow operator leaves room for relays to the others.

A relay that finds either full is not queued: :meth:`Bulkhead.slot` raises :class:`Lotado` at
once, which the relay answers with ErroInesperadoServidor ("tente novamente"). Counters under one
lock, not semaphores: the refusal says how many relays are in progress. The limits are per
process: N gunicorn workers relay up to N x ``max_relays`` calls at once to one operator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from gateway import deploy_settings
from gateway.config import Config

_threads: int | None = None  # set by the gunicorn worker before the application loads


def expect_threads(threads: int) -> None:
    """This process serves ``threads`` requests at once (gunicorn's ``threads``, from the worker's
    own settings): the bulkheads of proxies made from now on are sized on it."""
    global _threads
    _threads = threads


def worker_threads() -> int:
    """The request threads of this process: what the gunicorn worker said, else the deployment's
    setting (``TISS_GATEWAY_THREADS``, what ``serve`` and gunicorn.conf.py pass gunicorn)."""
    return _threads or deploy_settings.threads()


def relay_capacity(threads: int) -> int:
    """Relays a process runs at once: half its threads, rounded down (at least one, so that a
    single-thread process still relays)."""
    return max(1, threads // 2)


def operator_limit(max_relays: int | None, capacity: int) -> int:
    """One operator's bulkhead: ``max_relays`` if set, else half the relay share (at least one);
    never above the share."""
    return min(max_relays or max(1, capacity // 2), capacity)


class Lotado(Exception):
    """No room for another relay: the operator's bulkhead (``registro_ans`` set) or the process's
    relay share (None) is full with ``em_andamento`` relays."""

    def __init__(self, registro_ans: str | None, em_andamento: int):
        super().__init__(f"{registro_ans or 'gateway'}: {em_andamento} em andamento")
        self.registro_ans = registro_ans
        self.em_andamento = em_andamento


class Bulkhead:
    """The relay share of one process and each operator's bulkhead within it (thread-safe)."""

    def __init__(self, capacity: int, limits: Mapping[str, int]):
        if capacity < 1 or any(limit < 1 for limit in limits.values()):
            raise ValueError("a capacidade e os limites devem ser >= 1")
        self.capacity = capacity
        self.limits = {registro: min(limit, capacity) for registro, limit in limits.items()}
        self._default = operator_limit(None, capacity)  # an operator not configured at start
        self._lock = threading.Lock()
        self._total = 0
        self._used: dict[str, int] = {}

    @classmethod
    def for_config(cls, config: Config, threads: int | None = None) -> Bulkhead:
        """Sized on ``threads`` (default :func:`worker_threads`) and each operator's ``max_relays``."""
        capacity = relay_capacity(threads or worker_threads())
        return cls(capacity, {registro: operator_limit(o.max_relays, capacity)
                              for registro, o in config.operadoras.items()})

    def limit(self, registro_ans: str) -> int:
        return self.limits.get(registro_ans, self._default)

    def in_use(self, registro_ans: str | None = None) -> int:
        """Relays in progress to the operator (None: to all of them)."""
        with self._lock:
            return self._total if registro_ans is None else self._used.get(registro_ans, 0)

    @contextmanager
    def slot(self, registro_ans: str) -> Iterator[None]:
        """Hold a place for one relay to the operator while the block runs (released however it
        ends); :class:`Lotado` at once when there is none."""
        self._acquire(registro_ans)
        try:
            yield
        finally:
            self._release(registro_ans)

    def _acquire(self, registro_ans: str) -> None:
        with self._lock:
            used = self._used.get(registro_ans, 0)
            if used >= self.limit(registro_ans):
                raise Lotado(registro_ans, used)
            if self._total >= self.capacity:
                raise Lotado(None, self._total)
            self._used[registro_ans] = used + 1
            self._total += 1

    def _release(self, registro_ans: str) -> None:
        with self._lock:
            self._used[registro_ans] -= 1
            self._total -= 1
