"""Simulated time: real elapsed time multiplied by ``time_scale``, plus whatever an admin advanced.

``now()`` is a UTC-aware datetime (what the database stores and what the lifecycle compares).
TISS dates and times (dataRegistroTransacao, dataEnvioLote, data de pagamento...) are the
operator's local time: :func:`horario_local` converts to Brasília time, a fixed UTC-3 (Brazil has
had no daylight saving since 2019, and a fixed offset needs no tz database).
"""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

BRASILIA = timezone(timedelta(hours=-3), "BRT")


def horario_local(moment: datetime) -> datetime:
    """``moment`` (aware, or naive taken as UTC) in Brasília time, as TISS messages write it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BRASILIA)


class SimClock:
    """A thread-safe simulated clock.

    ``time_scale`` 1.0 runs at wall-clock speed, 3600 makes a real second a simulated hour, 0
    freezes time (only :meth:`advance` moves it: what tests want). ``start`` is the simulated
    moment at creation (default: the real now).
    """

    def __init__(self, time_scale: float = 1.0, start: datetime | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        if time_scale < 0:
            raise ValueError(f"time_scale deve ser >= 0, não {time_scale}")
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._time_scale = float(time_scale)
        self._anchor_real = monotonic()
        self._anchor_sim = (start or datetime.now(UTC)).astimezone(UTC)
        self._advanced = timedelta(0)

    @property
    def time_scale(self) -> float:
        return self._time_scale

    @property
    def advanced(self) -> timedelta:
        """Total simulated time added by :meth:`advance` (for the admin state)."""
        with self._lock:
            return self._advanced

    def now(self) -> datetime:
        """The simulated moment, UTC-aware."""
        with self._lock:
            return self._now_locked()

    def __call__(self) -> datetime:  # usable wherever a ``Callable[[], datetime]`` clock is expected
        return self.now()

    def local_now(self) -> datetime:
        return horario_local(self.now())

    def advance(self, delta: timedelta) -> datetime:
        """Jump forward by ``delta`` of simulated time; returns the new now. Time never goes back."""
        if delta < timedelta(0):
            raise ValueError("o relógio simulado não volta no tempo")
        with self._lock:
            self._advanced += delta
            return self._now_locked()

    def set_time_scale(self, time_scale: float) -> None:
        """Change the speed from now on, without a jump in simulated time."""
        if time_scale < 0:
            raise ValueError(f"time_scale deve ser >= 0, não {time_scale}")
        with self._lock:
            self._anchor_sim = self._now_locked() - self._advanced
            self._anchor_real = self._monotonic()
            self._time_scale = float(time_scale)

    def _now_locked(self) -> datetime:
        elapsed = (self._monotonic() - self._anchor_real) * self._time_scale
        return self._anchor_sim + timedelta(seconds=elapsed) + self._advanced
