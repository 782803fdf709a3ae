"""SQLite writers queue on a kernel lock (gateway.storage.sqlite_lock), not on SQLite's busy sleeps.

Real files, real processes: a helper process holds ``<database>-writelock`` and the test's engine
must wait for it and go on the moment it is released; the lock is given back at COMMIT,
ROLLBACK, a failed BEGIN and close; threads of one process take turns; a thread that would wait
for itself times out like SQLite instead of hanging.
"""

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from gateway.storage import db

HOLD_S = 0.6


def _engine(path: Path, **connect_args):
    engine = db.make_engine(f"sqlite:///{path}", connect_args=connect_args)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)"))
    return engine


def _locked_elsewhere(lock_file: Path) -> bool:
    """Whether another process could take the write lock right now."""
    probe = textwrap.dedent(f"""
        import fcntl, os, sys
        fd = os.open({str(lock_file)!r}, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(3)
    """)
    return subprocess.run([sys.executable, "-c", probe], timeout=30).returncode == 3


def test_the_lock_is_held_exactly_while_a_write_transaction_is_open(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    engine = _engine(path)
    lock_file = Path(f"{path}-writelock")
    assert not _locked_elsewhere(lock_file)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert _locked_elsewhere(lock_file)
    assert not _locked_elsewhere(lock_file)  # COMMIT gave it back

    with pytest.raises(RuntimeError), engine.begin() as connection:
        connection.execute(text("INSERT INTO t (v) VALUES ('b')"))
        raise RuntimeError("rollback")
    assert not _locked_elsewhere(lock_file)  # ROLLBACK too

    readers = db.reader_factory(engine)
    with readers() as session:  # a read-only (DEFERRED) transaction takes no write lock
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 1
        assert not _locked_elsewhere(lock_file)

    connection = engine.connect()
    connection.begin()
    connection.execute(text("INSERT INTO t (v) VALUES ('c')"))
    assert _locked_elsewhere(lock_file)
    connection.invalidate()  # the driver connection is closed under the open transaction
    assert not _locked_elsewhere(lock_file)
    engine.dispose()


def test_a_writer_waits_for_another_process_and_goes_on_when_it_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    engine = _engine(path)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({f"{path}-writelock"!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep({HOLD_S})
        released = time.time()
        fcntl.flock(fd, fcntl.LOCK_UN)
        print(released, flush=True)
        time.sleep(5)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.time()
        with engine.begin() as connection:  # SQLite itself is free: only the kernel lock is held
            began = time.time()
            connection.execute(text("INSERT INTO t (v) VALUES ('after')"))
        released = float(holder.stdout.readline())
    finally:
        holder.kill()
        holder.wait(10)
    assert began - start >= HOLD_S * 0.8, "the write did not wait for the other process"
    # Woken by the kernel at the release (SQLite's busy handler sleeps up to 100 ms per try).
    assert began - released < 0.05, f"{(began - released) * 1000:.0f} ms after the release"
    engine.dispose()


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "g.sqlite")
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            for i in range(100):
                with engine.begin() as connection:
                    connection.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{name}{i}"})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(DISTINCT v) FROM t")).scalar() == 400
    engine.dispose()


def test_a_thread_waits_for_another_threads_write_and_the_kernel_lock_stays_held(tmp_path: Path) -> None:
    """flock belongs to the open file, shared by the threads of a process (gunicorn's gthread
    workers): without the in-process lock a second thread would pass it at once, and the first
    one's COMMIT would release the kernel lock under the second one's transaction."""
    path = tmp_path / "g.sqlite"
    engine = _engine(path)
    lock_file = Path(f"{path}-writelock")
    second_began = threading.Event()
    first_done = threading.Event()
    seen: dict[str, bool] = {}

    def second() -> None:
        with engine.begin() as connection:
            second_began.set()
            seen["waited"] = first_done.is_set()
            seen["held"] = _locked_elsewhere(lock_file)
            connection.execute(text("INSERT INTO t (v) VALUES ('second')"))

    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t (v) VALUES ('first')"))
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(HOLD_S)  # the second thread is at its BEGIN meanwhile
        first_done.set()
    thread.join(60)
    assert second_began.is_set()
    assert seen == {"waited": True, "held": True}
    engine.dispose()


def test_a_thread_waiting_for_its_own_write_times_out_like_sqlite(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "g.sqlite", timeout=0.3)
    with engine.begin() as first:
        first.execute(text("INSERT INTO t (v) VALUES ('first')"))
        start = time.monotonic()
        with pytest.raises(OperationalError, match="locked"), engine.begin() as second:
            second.execute(text("INSERT INTO t (v) VALUES ('second')"))
        assert time.monotonic() - start < 5
    with engine.connect() as connection:
        assert connection.execute(text("SELECT v FROM t")).scalars().all() == ["first"]
    assert not _locked_elsewhere(Path(f"{tmp_path / 'g.sqlite'}-writelock"))
    engine.dispose()


def test_a_forked_child_opens_its_own_lock(tmp_path: Path) -> None:
    """gunicorn forks its workers: a child must not inherit the parent's lock (flock belongs to the
    open file, which a fork shares; a held threading lock is copied held)."""
    path = tmp_path / "g.sqlite"
    engine = _engine(path)
    with engine.begin() as connection:  # the parent holds its lock across the fork
        connection.execute(text("INSERT INTO t (v) VALUES ('parent')"))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: a fresh engine on the same file
            os.close(read)
            try:
                child = db.make_engine(f"sqlite:///{path}", connect_args={"timeout": 0.3})
                with child.begin():
                    os.write(write, b"entered")
            except OperationalError as error:
                os.write(write, str(error.orig).encode())
            finally:
                os._exit(0)
        os.close(write)
        answer = os.read(read, 500).decode()
        os.waitpid(pid, 0)
        os.close(read)
    # Its own open file: it waited for the parent's flock like any other process (an inherited one
    # would have let it through to SQLite's busy timeout, or stopped it at the copied thread lock).
    assert answer == "database is locked (write lock held by another process)"
    engine.dispose()
