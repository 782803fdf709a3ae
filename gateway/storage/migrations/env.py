"""Alembic environment, driven programmatically by :mod:`gateway.storage.migrate`.

The caller passes an open connection in ``config.attributes["connection"]`` (the migration then
runs inside the caller's transaction); without one, ``sqlalchemy.url`` is used (``alembic``
command line with ``-x`` or an ini file).
"""

from alembic import context
from sqlalchemy.engine import Connection

from gateway.storage.db import make_engine
from gateway.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER via table copy on SQLite
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic: sem conexão em config.attributes e sem sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
