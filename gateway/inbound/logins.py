"""Logins verified recently in this process, so that scrypt runs once a minute per login and address."""

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    prestador_id: int
    documento: str
    codigos: dict[str, str]  # registro ANS -> código na operadora


Key = tuple[str, str | None]  # (login, client address)


class LoginCache:
    """Only an HMAC of the password under a per-process random key is kept. Entries are per
    (login, client address), like the lockout: a login verified from the ERP's address says nothing
    about another address, and a failure from elsewhere does not evict the ERP's entry. A provider
    disabled or a password changed takes effect within ``ttl`` seconds; failures never enter the
    cache and always go through the counters and locks. Thread-safe (gthread workers); at most
    ``max_entries`` entries, the expired ones dropped first.
    """

    def __init__(self, ttl: float = 60.0, max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: dict[Key, tuple[bytes, Identity, float]] = {}
        self._lock = threading.Lock()

    def _digest(self, senha: str) -> bytes:
        return hmac.new(self._key, senha.lower().encode(), hashlib.sha256).digest()

    def get(self, login: str, senha: str, endereco: str | None = None) -> Identity | None:
        with self._lock:
            entry = self._entries.get((login, endereco))
        if entry and entry[2] > time.monotonic() and hmac.compare_digest(entry[0], self._digest(senha)):
            return entry[1]
        return None

    def forget(self, login: str, endereco: str | None = None) -> None:
        with self._lock:
            self._entries.pop((login, endereco), None)

    def remember(self, login: str, senha: str, identity: Identity, endereco: str | None = None) -> None:
        entry = (self._digest(senha), identity, time.monotonic() + self.ttl)
        with self._lock:
            self._entries.pop((login, endereco), None)  # re-inserted last: the oldest go first
            if len(self._entries) >= self.max_entries:
                self._make_room()
            self._entries[(login, endereco)] = entry

    def _make_room(self) -> None:
        """Drop the expired entries, else the oldest one (the lock is held)."""
        now = time.monotonic()
        for key in [k for k, (_d, _i, until) in self._entries.items() if until <= now]:
            del self._entries[key]
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
