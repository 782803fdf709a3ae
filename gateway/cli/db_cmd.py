"""``tiss-gateway db upgrade|current [--database URL] [--config FILE]``: the schema migrations.

``upgrade`` creates and migrates the database; ``current`` only reads it (a missing SQLite file is
reported as having no revision, and is not created). How the other commands open the database is
in :mod:`gateway.cli.database`.
"""

from __future__ import annotations

import argparse
import sys

from gateway.cli.database import (
    FAILED,
    OK,
    CommandError,
    MissingDatabase,
    database_options,
    display_url,
    read_only_engine,
    resolve_url,
    schema_revision,
    short_error,
    upgraded_url,
)

NOT_CURRENT = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="banco de dados (migrações do schema)")
    commands = parser.add_subparsers(dest="db_command", required=True)
    options = database_options()
    upgrade = commands.add_parser("upgrade", parents=[options],
                                  help="cria o banco se preciso e atualiza o schema para a última versão")
    upgrade.set_defaults(run=run_upgrade)
    current = commands.add_parser("current", parents=[options],
                                  help="mostra a revisão do banco, sem alterá-lo (status 1 se desatualizado)")
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


def _revision(url: str) -> tuple[str | None, str]:
    """The database's revision and a note on it ("" or why there is none)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = read_only_engine(url)
    except MissingDatabase:
        return None, " (o arquivo não existe)"
    try:
        return schema_revision(engine), ""
    except SQLAlchemyError as exc:
        raise CommandError(f"não foi possível abrir {display_url(url)}: {short_error(exc)}") from None
    finally:
        engine.dispose()


def _state(revision: str | None) -> str:
    from gateway.storage import migrate

    if revision == migrate.head():
        return "atualizado"
    if revision is None or revision in migrate.revisions():
        return "desatualizado: rode `tiss-gateway db upgrade`"
    return "desconhecida: o banco foi migrado por uma versão mais nova do tiss-gateway"


def run_current(args: argparse.Namespace) -> int:
    from gateway.storage import migrate

    try:
        url = resolve_url(args)
        revision, note = _revision(url)
    except CommandError as exc:
        print(exc, file=sys.stderr)
        return FAILED
    head = migrate.head()
    print(f"{display_url(url)}: revisão {revision or 'nenhuma'}{note} "
          f"(mais recente {head}; {_state(revision)})")
    return OK if revision == head else NOT_CURRENT
