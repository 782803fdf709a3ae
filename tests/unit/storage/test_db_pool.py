"""Engines of a threaded gunicorn worker keep a database connection per request thread
(gateway.storage.db.expect_threads, called by gateway.gunicorn_worker before the app loads)."""

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from gateway.storage import db


@pytest.fixture(autouse=True)
def _own_pool_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "_pool", dict(db._pool))  # expect_threads changes the process's setting


def _hold_at_once(engine, n: int) -> list[BaseException]:
    """``n`` threads that each hold a connection (a read-only transaction: no write lock) until all
    of them have one."""
    barrier, errors, readers = threading.Barrier(n, timeout=10), [], db.reader_factory(engine)

    def hold() -> None:
        try:
            with readers() as session:
                session.execute(text("SELECT 1"))
                barrier.wait()
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=hold) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def test_sixteen_request_threads_get_sixteen_connections(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    db.expect_threads(16)
    engine = db.make_engine(url, pool_timeout=1)
    assert (engine.pool.size(), engine.pool._max_overflow) == (16, 16)
    assert _hold_at_once(engine, 16) == []
    engine.dispose()


def test_without_it_the_sixteenth_thread_waits_for_a_connection(tmp_path: Path) -> None:
    """SQLAlchemy's 5 + 10: what a gthread worker with 16 threads would have met."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'g.sqlite'}", pool_timeout=1)
    errors = _hold_at_once(engine, 16)
    assert errors and any("QueuePool limit" in str(e) for e in errors)
    engine.dispose()


def test_pools_the_caller_chose_and_sqlite_in_memory_are_left_alone(tmp_path: Path) -> None:
    db.expect_threads(12)
    assert db.make_engine(f"sqlite:///{tmp_path / 'g.sqlite'}", pool_size=3).pool.size() == 3
    assert isinstance(db.make_engine(f"sqlite:///{tmp_path / 'g.sqlite'}", poolclass=NullPool).pool, NullPool)
    db.make_engine("sqlite://")  # SingletonThreadPool takes no pool_size: no TypeError
    assert db.make_engine("postgresql://u@127.0.0.1:1/x").pool.size() == 12
    db.expect_threads(2)  # never below SQLAlchemy's defaults
    assert db.make_engine("postgresql://u@127.0.0.1:1/x").pool.size() == 5
