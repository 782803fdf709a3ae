"""WAL checkpoints in a thread of each gateway process (gateway.storage.checkpoint), and the page
size of new SQLite files (gateway.storage.db). Real SQLite files."""

import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, text

from gateway.storage import checkpoint, db
from tests.forwarding_stack import wait_until

MB = 1024 * 1024


def _write_megabytes(path: Path, megabytes: int) -> Engine:
    """Left open: closing the last connection checkpoints the whole log (SQLite does that)."""
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS corpo (id INTEGER PRIMARY KEY, dados BLOB)"))
    for i in range(megabytes):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO corpo (dados) VALUES (:d)"), {"d": bytes([i % 251]) * MB})
    return engine


def test_without_the_thread_commits_leave_the_data_in_the_log(tmp_path: Path) -> None:
    """The control: below the safety net no COMMIT checkpoints, the database file stays small."""
    path = tmp_path / "g.sqlite"
    engine = _write_megabytes(path, 4)
    time.sleep(0.5)
    assert path.stat().st_size < MB
    assert Path(f"{path}-wal").stat().st_size > 4 * MB
    engine.dispose()


def test_the_thread_copies_the_log_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    worker = checkpoint.Checkpointer(str(path), interval=0.05)
    worker.start()
    try:
        engine = _write_megabytes(path, 4)
        wait_until(lambda: path.stat().st_size > 4 * MB, timeout=10, what="o log copiado para o arquivo")
        # the file grows while the first round is still running: wait for it to be counted
        wait_until(lambda: worker.rounds > 0, timeout=10, what="a primeira rodada contada")
        engine.dispose()
    finally:
        worker.stop()
    assert not worker.is_alive()
    connection = sqlite3.connect(path)  # the data is whole, read through the file
    assert connection.execute("SELECT count(*), sum(length(dados)) FROM corpo").fetchone() == (4, 4 * MB)
    connection.close()


def test_one_thread_per_process_and_file_and_none_for_other_databases(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    first = checkpoint.start_for(url)
    try:
        assert first is not None and first.is_alive()
        assert checkpoint.start_for(url) is first
        assert checkpoint.start_for("postgresql://postgres@127.0.0.1:5432/test") is None
        assert checkpoint.start_for("sqlite://") is None  # in memory
    finally:
        first.stop()


def test_new_files_get_16_kb_pages_existing_ones_keep_theirs(tmp_path: Path) -> None:
    fresh = tmp_path / "novo.sqlite"
    engine = db.make_engine(f"sqlite:///{fresh}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        assert connection.execute(text("PRAGMA page_size")).scalar() == db.SQLITE_PAGE_SIZE
        # the automatic checkpoint, a safety net, at 16 MB of log whatever the page size
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1024
    engine.dispose()

    old = tmp_path / "antigo.sqlite"
    raw = sqlite3.connect(old)
    raw.execute("PRAGMA page_size = 4096")
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    raw.close()
    engine = db.make_engine(f"sqlite:///{old}")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t DEFAULT VALUES"))
        assert connection.execute(text("PRAGMA page_size")).scalar() == 4096
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 4096
    engine.dispose()
