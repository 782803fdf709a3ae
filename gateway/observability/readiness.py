"""What ``/readyz`` checks: the database answers and takes writes, its migrations are current, the
schemas compiled.

One query per check (``alembic_version``: it proves the database reachable and says the revision);
the code's head revision is read once per process; the verdict is kept for ``ttl`` seconds so that
load balancers probing every worker often cost nothing, and a database that can be written again
is ready again at the next probe.

Writes, reported under ``database``: on PostgreSQL an insert into ``mensagem`` of no rows (what
every request writes; nothing is written, no sequence value taken, waiting at most 2 s for the
table's lock): a read-only server (a standby, ``default_transaction_read_only``) or a role without
the right refuses it all the same. A server whose disk is full fails its writes (PostgreSQL stops,
or refuses to extend a file) and is then unreachable or failing for every request alike. On SQLite
a write rolled back never reaches the disk (and would queue for the write lock), so the file system
of the database is checked instead: read-only, no write permission, or less free space than
``[gateway] min_free_disk_mb`` (a lote is written twice, to the WAL and to the file).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.message.schema_registry import SchemaRegistry
from gateway.observability.metrics import short_error
from gateway.storage import migrate
from gateway.storage.db import sqlite_file

# The schemas create_app compiles before serving (the first request must not pay for them).
SCHEMA_KINDS = ("mensagemTISS", "loteGuiasWS")
_PING = text("SELECT 1")
_REVISION = text("SELECT version_num FROM alembic_version")
_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '2s'")
_WRITE = text("INSERT INTO mensagem (direcao, tamanho, corpo) SELECT 'entrada', 0, ''::bytea WHERE false")
MiB = 1024 * 1024


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
    def __init__(self, readers: Callable[[], Session], registry: SchemaRegistry, *, ttl: float = 2.0,
                 min_free_bytes: int = 64 * MiB):
        self.readers = readers
        self.registry = registry
        self.ttl = ttl
        self.min_free_bytes = min_free_bytes  # SQLite: free space its file system must have
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
        head = _head()
        try:
            with self.readers() as session:  # ends rolled back
                revision = _revision(session)
                refused = _write_refusal(session) if revision == head else None
                url = session.connection().engine.url
        except SQLAlchemyError as exc:
            return _failed(verdict, "database", f"inacessível: {short_error(exc)}",
                           migrations="não verificadas")
        if revision != head:
            return _failed(verdict, "migrations", f"banco na revisão {revision or 'nenhuma'}, código na "
                           f"{head} (rode `tiss-gateway db upgrade`)")
        refused = refused or _file_system_refusal(url, self.min_free_bytes)
        return _failed(verdict, "database", refused) if refused else verdict

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


def _write_refusal(session: Session) -> str | None:
    """Why PostgreSQL refuses writes (None: it takes them)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return None
    try:
        with connection.begin_nested():
            connection.execute(_LOCK_TIMEOUT)
            connection.execute(_WRITE)
    except SQLAlchemyError as exc:
        return f"o banco recusa escritas: {short_error(exc)}"
    return None


def _file_system_refusal(url: URL, min_free_bytes: int) -> str | None:
    """Why a SQLite database's file system cannot take writes (None: another database, or it can)."""
    path = sqlite_file(url)
    if path is None:
        return None
    directory = os.path.dirname(os.path.abspath(path))
    try:
        stat = os.statvfs(directory)
    except OSError as exc:
        return f"diretório do banco inacessível: {exc}"
    if stat.f_flag & os.ST_RDONLY:
        return f"sistema de arquivos somente leitura: {directory}"
    if not (os.access(directory, os.W_OK) and os.access(path, os.W_OK)):
        return f"sem permissão de escrita em {path} (ou no seu diretório)"
    free = stat.f_bavail * stat.f_frsize
    if free < min_free_bytes:
        return (f"disco quase cheio: {free / MiB:.1f} MiB livres em {directory} (mínimo "
                f"{min_free_bytes / MiB:.0f} MiB, [gateway] min_free_disk_mb)")
    return None


def _failed(verdict: Verdict, check: str, why: str, **others: str) -> Verdict:
    return Verdict(False, {**verdict.checks, check: why, **others})
