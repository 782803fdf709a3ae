"""Engine and session set-up for SQLite (default, a file under the gateway home) and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from gateway.home import gateway_home
from gateway.storage.sqlite_lock import LockingConnection

if TYPE_CHECKING:
    from gateway.config import Config

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PAGE_SIZE = 16_384
SAFETY_NET_BYTES = 16 * 1024 * 1024  # of WAL, before a COMMIT checkpoints by itself
log = logging.getLogger("tiss_gateway.storage")
# Pool of the engines this process makes (SQLAlchemy's defaults until expect_threads says otherwise).
_pool = {"pool_size": 5, "max_overflow": 10}


def expect_threads(threads: int) -> None:
    """This process serves ``threads`` requests at once (a gunicorn gthread worker, before it loads
    the app): engines made from now on keep a connection per thread, and as many again in
    overflow (a request may hold a read connection and a write session at once). With
    SQLAlchemy's 5 + 10, connections past the fifth were opened and closed on every request and a
    sixteenth request waited for a free one."""
    _pool.update(pool_size=max(5, threads), max_overflow=max(10, threads))


def default_database_url() -> str:
    """``sqlite:///<home>/gateway.sqlite`` (the home directory is created if missing)."""
    home = gateway_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'gateway.sqlite').resolve()}"


def database_url(config: Config | None = None, override: str | None = None) -> str:
    """The database to use: ``override`` (e.g. ``--database``), the config's, or the default."""
    if override:
        return override
    if config is not None and config.gateway.database_url:
        return config.gateway.database_url
    return default_database_url()


def sqlite_file(url: str | URL) -> str | None:
    """The database file of a SQLite URL (None: another database, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return parsed.database


def normalize_url(url: str | URL) -> URL:
    """Map ``postgresql://`` / ``postgres://`` to the psycopg 3 driver; leave the rest alone."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine with the gateway's connection settings.

    SQLite: WAL journal, ``busy_timeout`` 30 s, foreign keys enforced (set on every connection).
    PostgreSQL: psycopg 3, pre-ping so that a restarted server does not fail the next request.
    """
    parsed = normalize_url(url)
    if "poolclass" not in kwargs and _queue_pooled(parsed):
        for key, value in _pool.items():
            kwargs.setdefault(key, value)
    if parsed.get_backend_name() == "sqlite":
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args.setdefault("factory", LockingConnection)  # writers queue on a kernel lock
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "connect", _postgresql_on_connect)
    return engine


def _queue_pooled(parsed: URL) -> bool:
    """Whether SQLAlchemy gives this URL a QueuePool (SQLite in memory gets one connection per thread)."""
    if parsed.get_backend_name() != "sqlite":
        return True
    path = sqlite_file(parsed)
    return path is not None and not path.startswith("file:")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own BEGIN is deferred: a transaction that reads and then writes fails at once with
    # SQLITE_BUSY_SNAPSHOT when another worker wrote in between (busy_timeout does not help).
    # Take the transaction out of the driver's hands and begin every one IMMEDIATE instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # A new file gets 16 KB pages: a 470 KB lote is written as a quarter of the WAL frames
        # (two writes each) of 4 KB pages; lote median -1 to -6 ms in two A/B runs, status queries
        # unchanged (bench/inprocess.py). An existing database keeps its page size (a no-op in WAL mode).
        cursor.execute(f"PRAGMA page_size = {SQLITE_PAGE_SIZE}")
        cursor.execute("PRAGMA journal_mode = WAL")  # persistent; a no-op for :memory:
        cursor.execute("PRAGMA foreign_keys = ON")
        # Checkpoints run in a thread of each gateway process (gateway.storage.checkpoint); a
        # commit checkpoints by itself only past this many pages of log.
        page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
        cursor.execute(f"PRAGMA wal_autocheckpoint = {max(1000, SAFETY_NET_BYTES // page_size)}")
        # With WAL, NORMAL writes every COMMIT to the WAL before it returns (a crash of the process,
        # e.g. a killed worker, loses nothing acknowledged: tests/process/test_durability.py) but
        # syncs the WAL to disk only at checkpoints: an OS crash or power loss can lose the last commits
        # (the database stays consistent). FULL would sync on every commit (measured +1.2 ms per
        # status query, +3.7 ms per 470 KB lote). Production runs PostgreSQL (synchronous_commit on).
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _postgresql_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Message bodies are XML of up to 15 MB, kept as bytea and compressed by TOAST: with the
    # default pglz a 470 KB lote cost ~10 ms of the request (to 105 KB), with lz4 ~1 ms (to 41 KB).
    # A server built without lz4 refuses the setting and keeps pglz.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # a SET inside a transaction would go with its rollback
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET default_toast_compression = lz4")
    except Exception:  # the server refused it (no lz4): it keeps its default
        log.info("PostgreSQL sem lz4: mensagens comprimidas com pglz")
    finally:
        dbapi_connection.autocommit = autocommit
    # Bytes go in binary (psycopg's default for %s is text: bytea hex-escaped, twice the size):
    # a 470 KB lote's insert 4.3 -> 2.7 ms.
    from psycopg.types.string import BytesBinaryDumper  # psycopg is the postgres extra

    dbapi_connection.adapters.register_dumper(bytes, BytesBinaryDumper)


def no_flush_wait(connection: Any) -> None:
    """This transaction's COMMIT returns before its WAL reaches the disk (PostgreSQL
    ``synchronous_commit = off``, for this transaction only). For a write that may be lost with the
    database server's host (never with a gateway process, and the database stays consistent), such
    as a status poll's record: a status poll is no accepted message, and one whose record is lost
    is answered again from the current state. On SQLite (WAL, ``synchronous=NORMAL``) no COMMIT
    waits for the disk anyway. ``connection``: a SQLAlchemy Connection in a transaction."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


def _sqlite_begin_immediate(connection: Any) -> None:
    mode = connection.get_execution_options().get(_SQLITE_BEGIN, "IMMEDIATE")
    dbapi_connection = connection.connection.dbapi_connection
    writing = mode == "IMMEDIATE" and isinstance(dbapi_connection, LockingConnection)
    if writing:
        try:
            dbapi_connection.begin_write()
        except sqlite3.OperationalError as error:  # timed out: as SQLite's own "database is locked"
            raise exc.OperationalError(f"BEGIN {mode}", None, error) from error
    try:
        connection.exec_driver_sql(f"BEGIN {mode}")
    except BaseException:
        if writing:
            dbapi_connection.rollback()  # gives the write lock back
        raise


_SQLITE_BEGIN = "tiss_sqlite_begin"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """The application's session maker (SQLAlchemy defaults: objects expire on commit)."""
    return sessionmaker(engine)


def reader_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for transactions that only read. On SQLite they begin DEFERRED: a WAL reader takes
    no lock, so checks like "is this login still allowed" do not queue behind other workers'
    writes (a read-only transaction cannot hit SQLITE_BUSY_SNAPSHOT). Writing in one is a bug."""
    return sessionmaker(engine.execution_options(**{_SQLITE_BEGIN: "DEFERRED"}))
