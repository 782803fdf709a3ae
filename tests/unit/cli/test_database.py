"""gateway.cli.database: which URLs the command line opens, and that reading never writes."""

import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.cli.database import (
    CommandError,
    MissingDatabase,
    check_url,
    read_only_engine,
    require_current,
    schema_revision,
)
from gateway.storage import migrate
from gateway.storage.db import sqlite_file


@pytest.mark.parametrize("url", ["sqlite:///x.sqlite", "sqlite://", "sqlite+pysqlite:///x",
                                 "postgresql://u@h/d", "postgres://u@h/d", "postgresql+psycopg://u:p@h:5/d"])
def test_supported_urls(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(("url", "said"), [
    ("mysql://tiss:topsecret@h/d", "banco não suportado: mysql://"),
    ("postgresql+asyncpg://tiss:topsecret@h/d", "banco não suportado: postgresql+asyncpg://"),
    ("postgresql+psycopg2://tiss:topsecret@h/d", "banco não suportado: postgresql+psycopg2://"),
    ("foo://tiss:topsecret@h/d", "banco não suportado: foo://"),
    ("nonsense topsecret", "URL de banco inválida"),
    ("postgresql://tiss:topsecret@h:porta/d", "URL de banco inválida"),
])
def test_unsupported_urls_are_one_line_without_the_password(url: str, said: str) -> None:
    with pytest.raises(CommandError) as refused:
        check_url(url)
    message = str(refused.value)
    assert message.startswith(said) and "\n" not in message and "topsecret" not in message


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(MissingDatabase, match="não existe"):
        read_only_engine(f"sqlite:///{tmp_path / 'typo.sqlite'}")
    assert list(tmp_path.iterdir()) == []


def test_reading_cannot_write_and_leaves_no_file(database_url: str) -> None:
    path = sqlite_file(database_url)
    before = sorted(Path(path).parent.iterdir()) if path else []
    engine = read_only_engine(database_url)
    try:
        assert schema_revision(engine) == migrate.head()
        with engine.begin() as connection:
            assert connection.execute(text("SELECT count(*) FROM lote")).scalar() == 0
        with pytest.raises(DBAPIError, match=r"read-only|readonly"), engine.begin() as connection:
            connection.execute(text("CREATE TABLE intrusa (a INTEGER)"))
    finally:
        engine.dispose()
    if path:  # no -wal/-shm (nor lock file) left behind by whoever ran the command
        assert sorted(Path(path).parent.iterdir()) == before


def test_a_sqlite_path_with_uri_characters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a #%é b' / 'g.sqlite'}"
    (tmp_path / "a #%é b").mkdir()
    migrate.upgrade(url)
    engine = read_only_engine(url)
    try:
        assert schema_revision(engine) == migrate.head()
    finally:
        engine.dispose()


@pytest.mark.parametrize(("revision", "said"), [
    (None, "não tem o schema do gateway: rode `tiss-gateway db upgrade`"),
    ("0003", "está na revisão 0003, esta versão usa a"),
    ("9999", "desconhecida desta versão"),
])
def test_a_schema_other_than_head_is_refused(revision: str | None, said: str) -> None:
    require_current("sqlite:///x", migrate.head())
    with pytest.raises(CommandError, match=re.escape(said)):
        require_current("sqlite:///x", revision)
