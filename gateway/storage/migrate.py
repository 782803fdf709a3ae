"""Schema migrations (Alembic), configured in code: no alembic.ini is needed at run time."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from gateway.storage.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: concurrent `upgrade` calls (several workers starting) take turns.
_PG_LOCK_KEY = 0x7155_6761_7465  # "tiss-gate"-ish, any constant bigint
# Alembic's `context`/`op` proxies are process-global: one migration at a time per process.
_IN_PROCESS = threading.Lock()


def alembic_config(url: str | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return heads[0] if len(heads) == 1 else ",".join(sorted(heads))


def revisions() -> set[str]:
    """Every revision this version of the gateway knows (a database past them was migrated by a newer one)."""
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current(connectable: Connection) -> str | None:
    heads = MigrationContext.configure(connectable).get_current_heads()
    return ",".join(sorted(heads)) if heads else None


def upgrade(url: str, engine: Engine | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` (or ``engine``) to ``revision`` (the latest), in one transaction.

    Safe when several processes start at once (gunicorn workers): they take turns, on PostgreSQL
    through an advisory lock, on SQLite through the ``BEGIN IMMEDIATE`` every transaction of
    :func:`gateway.storage.db.make_engine` starts with (SQLite DDL is transactional),
    and the later ones find the schema current.
    """
    own = engine is None
    engine = engine or make_engine(url)
    try:
        with _IN_PROCESS, engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if own:
            engine.dispose()


def is_current(url: str, engine: Engine | None = None) -> bool:
    """True when the database is at the latest revision."""
    own = engine is None
    engine = engine or make_engine(url)
    try:
        with engine.connect() as connection:
            return current(connection) == head()
    finally:
        if own:
            engine.dispose()
