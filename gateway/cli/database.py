"""Opening the database from the command line: for reading or for writing, never both by accident.

Reading (listings, ``protocolo show``, ``db current``, ``prune --dry-run``) never creates nor
migrates a database: a missing SQLite file, or a schema other than this version's, is an error
naming the fix (``tiss-gateway db upgrade``). SQLite is opened without creating the file
(``mode=rw``) and with ``query_only``; PostgreSQL transactions are ``READ ONLY``: a listing cannot
run DDL on production.
Writing (``db upgrade``, ``prestador``/``usuario add|disable|enable``, ``entregas retry``, ``prune``,
``worker``) migrates first, as before. Either way a URL of a database the gateway does not run on
(``mysql://``, a typo) is one line on stderr and exit status 2.

SQLAlchemy and Alembic are imported inside the functions: building the parser must stay cheap for
every other ``tiss-gateway`` command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL
    from sqlalchemy.orm import Session, sessionmaker

OK, REFUSED, FAILED = 0, 1, 2  # REFUSED: the command refused the request (see with_database)
# The drivers the gateway is built and tested on (after gateway.storage.db.normalize_url).
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
SQLITE_READ_TIMEOUT_S = 30
UPGRADE_HINT = "rode `tiss-gateway db upgrade`"

T = TypeVar("T")


class CommandError(Exception):
    """A configuration or database problem, reported on stderr with exit status 2."""


class MissingDatabase(CommandError):
    """The SQLite file of a read command does not exist (it is not created)."""


def database_options() -> argparse.ArgumentParser:
    """``--database`` / ``--config``, shared by every command that opens the database."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--database", metavar="URL",
                        help="URL do banco (padrão: o da configuração, ou sqlite em TISS_GATEWAY_HOME)")
    parent.add_argument("--config", metavar="FILE", type=Path, help="arquivo de configuração TOML")
    return parent


def resolve_url(args: argparse.Namespace) -> str:
    """The database of ``--database``, the config or the default, checked by :func:`check_url`."""
    from gateway.config import ConfigError, load_config
    from gateway.storage.db import database_url

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CommandError(f"configuração inválida: {exc}") from None
    return check_url(database_url(config, args.database))


def check_url(url: str) -> str:
    """``url`` if the gateway can open it (SQLite, or PostgreSQL with psycopg installed), else a
    :class:`CommandError` of one line. The URL itself is never echoed: it may hold a password."""
    from sqlalchemy.exc import ArgumentError

    from gateway.storage.db import normalize_url

    expected = "use sqlite:///ARQUIVO ou postgresql://USUARIO@HOST/BANCO"
    try:
        parsed = normalize_url(url)
    except (ArgumentError, ValueError):
        raise CommandError(f"URL de banco inválida ({expected})") from None
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise CommandError(f"banco não suportado: {parsed.drivername}:// ({expected})")
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:  # PostgreSQL without the extra
        raise CommandError(f"driver {exc.name} não instalado para {parsed.drivername}:// "
                           "(pip install 'tiss-gateway[postgres]')") from None
    return url


def display_url(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def short_error(exc: Exception) -> str:
    """The first line of a database error (the driver's message when there is one)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --- writing: migrate first ----------------------------------------------------------------------

def upgrade(url: str) -> str:
    """Migrate the database at ``url`` to the latest revision (creating a SQLite file)."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.storage import migrate

    try:
        migrate.upgrade(url)
    except SQLAlchemyError as exc:
        raise CommandError(f"não foi possível migrar {display_url(url)}: {short_error(exc)}") from None
    return url


def upgraded_url(args: argparse.Namespace) -> str:
    """Resolve the database and migrate it to the latest revision."""
    return upgrade(resolve_url(args))


def open_for_writing(url: str) -> Engine:
    """The gateway's engine on ``url``, migrated first."""
    from gateway.storage.db import make_engine

    return make_engine(upgrade(url))


# --- reading: never create, never migrate ---------------------------------------------------------

def read_only_engine(url: str) -> Engine:
    """An engine that cannot write: SQLite ``query_only`` (a missing file is
    :class:`MissingDatabase`, not a new empty database), PostgreSQL in ``READ ONLY`` transactions."""
    from sqlalchemy.engine import make_url

    from gateway.storage.db import make_engine

    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_reader(url)
    return make_engine(url).execution_options(postgresql_readonly=True)


def _sqlite_reader(url: str) -> Engine:
    # Not gateway.storage.db.make_engine: its connections switch the file to WAL and create the
    # writers' lock file, both writes. Transactions begin DEFERRED, one snapshot for the command.
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    engine = create_engine(_uri_that_does_not_create(url), poolclass=NullPool,
                           connect_args={"timeout": SQLITE_READ_TIMEOUT_S})
    event.listen(engine, "connect", _query_only)
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
    return engine


def _query_only(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN, not the driver
    dbapi_connection.execute("PRAGMA query_only = ON")


def _uri_that_does_not_create(url: str) -> URL:
    """The SQLite URL as a ``file:...?mode=rw`` URI (an in-memory database stays as it is).
    Not ``mode=ro``: a read-only connection leaves the ``-wal`` and ``-shm`` files behind, owned
    by whoever ran the command; the last read-write connection to close removes them."""
    from sqlalchemy.engine import make_url

    from gateway.storage.db import sqlite_file

    parsed = make_url(url)
    path = sqlite_file(parsed)
    if path is None:
        return parsed
    if path.startswith("file:") and "uri" in parsed.query:  # the user's own URI: only never create
        mode = parsed.query.get("mode", "rwc")
        return parsed.update_query_dict({"mode": "rw" if mode == "rwc" else mode})
    if not Path(path).exists():
        raise MissingDatabase(f"banco não encontrado: {path} não existe (confira --database ou a "
                              f"configuração; para criá-lo, {UPGRADE_HINT})")
    path = "file:" + quote(os.path.abspath(path))  # '?', '#', '%' in a name are not URI syntax
    return parsed.set(database=path, query={**parsed.query, "uri": "true", "mode": "rw"})


def schema_revision(engine: Engine) -> str | None:
    """The database's revision (None: no gateway schema)."""
    from gateway.storage import migrate

    with engine.connect() as connection:
        return migrate.current(connection)


def require_current(url: str, revision: str | None) -> None:
    """A :class:`CommandError` unless ``revision`` is the one this version of the gateway runs on."""
    from gateway.storage import migrate

    head = migrate.head()
    if revision == head:
        return
    where = display_url(url)
    if revision is None:
        raise CommandError(f"{where} não tem o schema do gateway: {UPGRADE_HINT}")
    if revision in migrate.revisions():
        raise CommandError(f"{where} está na revisão {revision}, esta versão usa a {head}: {UPGRADE_HINT}")
    raise CommandError(f"{where} está na revisão {revision}, desconhecida desta versão (mais recente "
                       f"{head}): o banco foi migrado por uma versão mais nova do tiss-gateway")


def open_for_reading(url: str) -> Engine:
    """A read-only engine on ``url``, whose schema is current (nothing is created or migrated)."""
    from sqlalchemy.exc import SQLAlchemyError

    engine = read_only_engine(url)
    try:
        require_current(url, schema_revision(engine))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise CommandError(f"não foi possível abrir {display_url(url)}: {short_error(exc)}") from None
    except CommandError:
        engine.dispose()
        raise
    return engine


# --- running a command on the database ------------------------------------------------------------

def print_ok(output: object) -> int:
    """The usual ending of a command: print what it produced, exit 0."""
    print(output)
    return OK


def with_database(args: argparse.Namespace, action: Callable[[sessionmaker[Session]], T],
                  show: Callable[[T], int] = print_ok,
                  refused: type[Exception] | tuple[type[Exception], ...] = (), *, write: bool) -> int:
    """Open the database (``write``: migrated first; else read-only, see the module docstring),
    run ``action`` with a session factory, then return ``show(result)`` (called once the engine is
    closed). A ``refused`` exception prints ``recusado: …`` and exits 1; a configuration or
    database problem exits 2."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.storage.db import session_factory

    try:
        url = resolve_url(args)
        engine = open_for_writing(url) if write else open_for_reading(url)
    except CommandError as exc:
        print(exc, file=sys.stderr)
        return FAILED
    try:
        output = action(session_factory(engine))
    except refused as exc:
        print(f"recusado: {exc}", file=sys.stderr)
        return REFUSED
    except SQLAlchemyError as exc:
        print(f"erro no banco {display_url(url)}: {short_error(exc)}", file=sys.stderr)
        return FAILED
    finally:
        engine.dispose()
    return show(output)


def with_session(args: argparse.Namespace, action: Callable[[Session], T],
                 show: Callable[[T], int] = print_ok,
                 refused: type[Exception] | tuple[type[Exception], ...] = (), *, write: bool) -> int:
    """:func:`with_database` with ``action`` run in one transaction: committed when it returns,
    rolled back when it raises (a refusal included)."""
    def in_transaction(sessions: sessionmaker[Session]) -> T:
        with sessions.begin() as session:
            return action(session)

    return with_database(args, in_transaction, show, refused, write=write)
