"""``tiss-gateway db upgrade|current [--database URL] [--config FILE]``: the schema migrations."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

# SQLAlchemy and Alembic are imported inside the functions: registering these commands must not
# slow down every other `tiss-gateway` command.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

OK, NOT_CURRENT, FAILED = 0, 1, 2
REFUSED = 1  # a command that opens the database refused the request (see with_database)

T = TypeVar("T")


class CommandError(Exception):
    """A configuration or database problem, reported on stderr with exit status 2."""


def database_options() -> argparse.ArgumentParser:
    """``--database`` / ``--config``, shared by every command that opens the database."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--database", metavar="URL",
                        help="URL do banco (padrão: o da configuração, ou sqlite em TISS_GATEWAY_HOME)")
    parent.add_argument("--config", metavar="FILE", type=Path, help="arquivo de configuração TOML")
    return parent


def resolve_url(args: argparse.Namespace) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from gateway.config import ConfigError, load_config
    from gateway.storage.db import database_url

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CommandError(f"configuração inválida: {exc}") from None
    url = database_url(config, args.database)
    try:
        make_url(url)
    except ArgumentError as exc:
        raise CommandError(f"URL de banco inválida: {exc}") from None
    return url


def display_url(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def upgraded_url(args: argparse.Namespace) -> str:
    """Resolve the database and migrate it to the latest revision."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.storage import migrate

    url = resolve_url(args)
    try:
        migrate.upgrade(url)
    except SQLAlchemyError as exc:
        raise CommandError(f"não foi possível migrar {display_url(url)}: {short_error(exc)}") from None
    return url


def print_ok(output: object) -> int:
    """The usual ending of a command: print what it produced, exit 0."""
    print(output)
    return OK


def with_database(args: argparse.Namespace, action: Callable[[sessionmaker[Session]], T],
                  show: Callable[[T], int] = print_ok,
                  refused: type[Exception] | tuple[type[Exception], ...] = ()) -> int:
    """Migrate the database, run ``action`` with a session factory, then return ``show(result)``
    (called once the engine is closed). A ``refused`` exception prints ``recusado: …`` and exits 1;
    a configuration or database problem exits 2."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.storage.db import make_engine, session_factory

    try:
        url = upgraded_url(args)
    except CommandError as exc:
        print(exc, file=sys.stderr)
        return FAILED
    engine = make_engine(url)
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
                 refused: type[Exception] | tuple[type[Exception], ...] = ()) -> int:
    """:func:`with_database` with ``action`` run in one transaction: committed when it returns,
    rolled back when it raises (a refusal included)."""
    def in_transaction(sessions: sessionmaker[Session]) -> T:
        with sessions.begin() as session:
            return action(session)

    return with_database(args, in_transaction, show, refused)


def short_error(exc: Exception) -> str:
    """The first line of a database error (the driver's message when there is one)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _missing_sqlite_file(url: str) -> bool:
    from gateway.storage.db import sqlite_file

    path = sqlite_file(url)
    return path is not None and not Path(path).exists()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="banco de dados (migrações do schema)")
    commands = parser.add_subparsers(dest="db_command", required=True)
    options = database_options()
    upgrade = commands.add_parser("upgrade", parents=[options],
                                  help="atualiza o schema para a versão mais recente")
    upgrade.set_defaults(run=run_upgrade)
    current = commands.add_parser("current", parents=[options],
                                  help="mostra a revisão do banco (status 1 se desatualizado)")
    current.set_defaults(run=run_current)


def run_upgrade(args: argparse.Namespace) -> int:
    from gateway.storage import migrate

    try:
        url = upgraded_url(args)
    except CommandError as exc:
        print(exc, file=sys.stderr)
        return FAILED
    print(f"{display_url(url)}: schema na revisão {migrate.head()}")
    return OK


def run_current(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.storage import migrate
    from gateway.storage.db import make_engine

    try:
        url = resolve_url(args)
        if _missing_sqlite_file(url):  # do not create it just to say it is empty
            revision = None
        else:
            engine = make_engine(url)
            try:
                with engine.connect() as connection:
                    revision = migrate.current(connection)
            finally:
                engine.dispose()
    except CommandError as exc:
        print(exc, file=sys.stderr)
        return FAILED
    except SQLAlchemyError as exc:
        print(f"não foi possível abrir {display_url(url)}: {short_error(exc)}", file=sys.stderr)
        return FAILED
    head = migrate.head()
    state = "atualizado" if revision == head else "desatualizado: rode `tiss-gateway db upgrade`"
    print(f"{display_url(url)}: revisão {revision or 'nenhuma'} (mais recente {head}; {state})")
    return OK if revision == head else NOT_CURRENT
