"""A circuit breaker per operator: stop calling one that keeps failing, try again after a pause.

Closed: calls go through; ``failures`` consecutive failures open it. Open: no calls until
``pause`` has passed; then one trial call (half-open) closes it on success or reopens it.
Per worker process: each worker learns on its own, which is enough to stop the hammering.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    trial: bool = False


class CircuitBreaker:
    def __init__(self, failures: int, pause: float, clock: Callable[[], float] = time.monotonic, *,
                 on_change: Callable[[str, bool], None] | None = None):
        self.max_failures = failures
        self.pause = pause
        self.clock = clock
        self.on_change = on_change  # (key, open?) when a circuit opens or closes (metrics)
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def allows(self, key: str) -> bool:
        """May a call to ``key`` go out now? (In half-open, only one trial call at a time.)"""
        with self._lock:
            state = self._states.get(key)
            if state is None or state.failures < self.max_failures:
                return True
            if self.clock() < state.open_until or state.trial:
                return False
            state.trial = True
            return True

    def blocked(self) -> set[str]:
        """Keys whose circuit is open right now (to leave their deliveries unclaimed)."""
        now = self.clock()
        with self._lock:
            return {k for k, s in self._states.items()
                    if s.failures >= self.max_failures and (now < s.open_until or s.trial)}

    def success(self, key: str) -> None:
        with self._lock:
            state = self._states.pop(key, None)
        if state is not None and state.failures >= self.max_failures and self.on_change:
            self.on_change(key, False)

    def failure(self, key: str) -> None:
        with self._lock:
            state = self._states.setdefault(key, _State())
            state.failures += 1
            state.trial = False
            opened = state.failures >= self.max_failures
            if opened:
                state.open_until = self.clock() + self.pause
        if opened and self.on_change:
            self.on_change(key, True)
