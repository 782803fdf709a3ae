"""What ``/readyz`` checks: the database answers, its migrations are current, the schemas compiled.

One query per check (``alembic_version``: it proves the database reachable and says the revision);
the code's head revision is read once per process; the verdict is kept for ``ttl`` seconds so that
load balancers probing every worker often cost nothing.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.message.schema_registry import SchemaRegistry
from gateway.observability.metrics import short_error
from gateway.storage import migrate

# The schemas create_app compiles before serving (the first request must not pay for them).
SCHEMA_KINDS = ("mensagemTISS", "loteGuiasWS")
_PING = text("SELECT 1")
_REVISION = text("SELECT version_num FROM alembic_version")


@dataclass(frozen=True)
class Verdict:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)  # check -> "ok" or what is wrong

    @property
    def reason(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.checks.items() if v != "ok") or "ok"


@functools.cache
def _head() -> str:
    return migrate.head()


class Readiness:
    def __init__(self, readers: Callable[[], Session], registry: SchemaRegistry, *, ttl: float = 2.0):
        self.readers = readers
        self.registry = registry
        self.ttl = ttl
        self._cached: tuple[float, Verdict] | None = None
        self._lock = threading.Lock()

    def verdict(self) -> Verdict:
        with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
        verdict = Verdict(True, {"database": "ok", "migrations": "ok", "schemas": "ok"})
        verdict = self._database(verdict)
        verdict = self._schemas(verdict)
        with self._lock:
            self._cached = (time.monotonic(), verdict)
        return verdict

    def _database(self, verdict: Verdict) -> Verdict:
        try:
            with self.readers() as session:
                revision = _revision(session)
        except SQLAlchemyError as exc:
            return _failed(verdict, "database", f"inacessível: {short_error(exc)}",
                           migrations="não verificadas")
        head = _head()
        if revision != head:
            return _failed(verdict, "migrations", f"banco na revisão {revision or 'nenhuma'}, código na "
                           f"{head} (rode `tiss-gateway db upgrade`)")
        return verdict

    def _schemas(self, verdict: Verdict) -> Verdict:
        try:
            versions = self.registry.versions()
            for version in versions:
                for kind in SCHEMA_KINDS:
                    self.registry.schema(version, kind)  # compiled at start: a dict lookup
        except Exception as exc:  # a set whose files changed on disk, a broken import...
            return _failed(verdict, "schemas", f"{type(exc).__name__}: {exc}"[:300])
        if not versions:
            return _failed(verdict, "schemas", "nenhuma versão instalada")
        return verdict


def _revision(session: Session) -> str | None:
    """The database's Alembic revision (None: never migrated). Raises when it cannot be reached.
    A plain query: Alembic's MigrationContext would log two lines per probe."""
    connection = session.connection()
    connection.execute(_PING)
    try:
        with connection.begin_nested():
            heads: Sequence[str] = connection.execute(_REVISION).scalars().all()
    except (OperationalError, ProgrammingError):  # no alembic_version table
        return None
    return ",".join(sorted(heads)) or None


def _failed(verdict: Verdict, check: str, why: str, **others: str) -> Verdict:
    return Verdict(False, {**verdict.checks, check: why, **others})
