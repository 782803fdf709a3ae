"""Logins verified recently in this process, so that scrypt runs once a minute per login."""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    prestador_id: int
    documento: str
    codigos: dict[str, str]  # registro ANS -> código na operadora


class LoginCache:
    """Only an HMAC of the password under a per-process random key is kept. A provider disabled or
    a password changed takes effect within ``ttl`` seconds; failures never enter the cache and
    always go through the counter and lockout.
    """

    def __init__(self, ttl: float = 60.0):
        self.ttl = ttl
        self._key = secrets.token_bytes(32)
        self._entries: dict[str, tuple[bytes, Identity, float]] = {}

    def _digest(self, senha: str) -> bytes:
        return hmac.new(self._key, senha.lower().encode(), hashlib.sha256).digest()

    def get(self, login: str, senha: str) -> Identity | None:
        entry = self._entries.get(login)
        if entry and entry[2] > time.monotonic() and hmac.compare_digest(entry[0], self._digest(senha)):
            return entry[1]
        return None

    def forget(self, login: str) -> None:
        self._entries.pop(login, None)

    def remember(self, login: str, senha: str, identity: Identity) -> None:
        self._entries[login] = (self._digest(senha), identity, time.monotonic() + self.ttl)
