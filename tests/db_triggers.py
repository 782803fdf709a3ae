"""Triggers a test installs to let the database itself tell what the code wrote. The migrated
PostgreSQL schema is shared by a module's tests (only truncated between them): every trigger is
dropped when its test ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Engine


def _statements(engine: Engine, name: str, table: str, create_sqlite: str, plpgsql: str,
                timing: str) -> tuple[list[str], list[str]]:
    if engine.dialect.name == "sqlite":
        return ([f"CREATE TRIGGER {name} {timing} ON {table} BEGIN {create_sqlite} END"],
                [f"DROP TRIGGER {name}"])
    return ([f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {plpgsql} END $$",
             f"CREATE TRIGGER {name} {timing} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"],
            [f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()"])


@contextmanager
def installed(engine: Engine, create: list[str], drop: list[str]) -> Iterator[None]:
    with engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))


@contextmanager
def no_update_of(engine: Engine, table: str) -> Iterator[None]:
    """Any UPDATE of a ``table`` row fails its transaction with '<table> reescrita'."""
    message = f"{table} reescrita"
    create, drop = _statements(engine, f"{table}_escrita_uma_vez", table,
                               f"SELECT RAISE(ABORT, '{message}');",
                               f"RAISE EXCEPTION '{message}';", "BEFORE UPDATE")
    with installed(engine, create, drop):
        yield
