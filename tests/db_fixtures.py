"""Database fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL.

``database_url`` is parametrized over ``sqlite`` (a new file under the test's tmp_path) and
``postgresql`` (skipped unless ``TISS_GATEWAY_TEST_PG_DSN`` is set, e.g.
``postgresql://postgres@127.0.0.1:5432/test``).

PostgreSQL isolation: each test session creates its own schemas (``tg_test_<epoch>_<random>``) in
the DSN's database and reaches them through ``search_path`` (the ``options`` connection
parameter), so concurrent runs against the same server do not meet. One schema is migrated once
per session and every table in it is truncated (``RESTART IDENTITY``) before each test; tests
that need an empty database get a schema of their own. All of them are dropped at the end of the
session, and schemas left over by a crashed run more than a day ago are dropped at the start.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from gateway.delivery import outbox
from gateway.storage.db import make_engine, session_factory
from gateway.storage.migrate import upgrade
from gateway.storage.models import Base, Mensagem, Prestador
from tests.factory import Party, build_lote

__all__ = ["database_url", "db_engine", "db_session", "empty_database_url", "pg_migrated_url", "pg_schemas"]

PG_DSN_ENV = "TISS_GATEWAY_TEST_PG_DSN"
SCHEMA_PREFIX = "tg_test_"
STALE_AFTER_SECONDS = 24 * 3600


def pg_dsn() -> str | None:
    return os.environ.get(PG_DSN_ENV) or None


BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(pg_dsn() is None, reason=f"{PG_DSN_ENV} not set")),
]


def schema_url(dsn: str, schema: str) -> str:
    """``dsn`` with every connection's search_path set to ``schema``."""
    url = make_url(dsn).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _drop_stale_schemas(engine: Engine) -> None:
    cutoff = time.time() - STALE_AFTER_SECONDS
    with engine.begin() as connection:
        names = list(connection.scalars(text(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"), {"prefix": SCHEMA_PREFIX + "%"}))
    for name in names:
        stamp = name.removeprefix(SCHEMA_PREFIX).split("_", 1)[0]
        if stamp.isdigit() and int(stamp) < cutoff:
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty PostgreSQL schemas (as database URLs), dropped after the session."""
    dsn = pg_dsn()
    if dsn is None:
        pytest.skip(f"{PG_DSN_ENV} not set")
    admin = make_engine(dsn, poolclass=NullPool)
    _drop_stale_schemas(admin)
    created: list[str] = []

    def create() -> str:
        name = f"{SCHEMA_PREFIX}{int(time.time())}_{secrets.token_hex(4)}"
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        created.append(name)
        return schema_url(dsn, name)

    try:
        yield create
    finally:
        # One transaction per schema: dropping them all at once takes a lock per object of every
        # schema and runs out of the server's lock table (max_locks_per_transaction).
        for name in created:
            with admin.begin() as connection:
                connection.execute(text("SET LOCAL lock_timeout = '30s'"))
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_migrated_url(pg_schemas: Callable[[], str]) -> str:
    url = pg_schemas()
    upgrade(url)
    return url


def _truncate_all(url: str) -> None:
    engine = make_engine(url, poolclass=NullPool)
    try:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '30s'"))  # a leaked session: fail, not hang
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A migrated, empty database of its own for this test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.sqlite'}"
        upgrade(url)
        return url
    url = request.getfixturevalue("pg_migrated_url")
    _truncate_all(url)
    return url


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A database with no tables at all (for migration tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite'}"
    return request.getfixturevalue("pg_schemas")()


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    with session_factory(db_engine)() as session:
        yield session


def add_prestador_and_mensagem(session: Session) -> tuple[Prestador, Mensagem]:
    """A provider and one received message of it: what an entrega or a protocol row needs."""
    prestador = Prestador(documento="11222333000181", tipo_documento="CNPJ", nome="P", login="p")
    session.add(prestador)
    session.flush()
    mensagem = Mensagem(direcao="entrada", tamanho=1, corpo=b"x", prestador_id=prestador.id)
    session.add(mensagem)
    session.flush()
    return prestador, mensagem


def queue_lote(engine: Engine, registro_ans: str, numero: str, when: datetime, guias: int = 2) -> int:
    """A consulta lote to ``registro_ans`` accepted and scheduled, not prepared yet (as acceptance
    leaves it): its entrega's id."""
    corpo = build_lote("consulta", guias, numero_lote=numero, sequencial=numero,
                       party=Party(registro_ans=registro_ans))
    with session_factory(engine).begin() as session:
        prestador = session.scalars(select(Prestador)).first()
        if prestador is None:
            prestador, _mensagem = add_prestador_and_mensagem(session)
        mensagem = Mensagem(direcao="entrada", tamanho=len(corpo), corpo=corpo, prestador_id=prestador.id)
        session.add(mensagem)
        session.flush()
        return outbox.schedule(session, registro_ans=registro_ans, servico="tissLoteGuias",
                               prestador_id=prestador.id, mensagem_id=mensagem.id, now=when)


def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str) -> str:
    """A fresh database of the BACKENDS parameter ``request`` is on: a SQLite file in a new
    ``name`` folder, or a new PostgreSQL schema (migrated by whoever opens it first)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp(name) / 'gateway.sqlite'}"
    return request.getfixturevalue("pg_schemas")()


def reading_engine(url: str) -> Iterator[Engine]:
    """An engine for a test to read a server's database with (no pool: nothing held open)."""
    engine = make_engine(url, poolclass=NullPool)
    yield engine
    engine.dispose()
