"""Where the delivery worker's time goes, per delivered lote, against the operator's own cost.

    .venv/bin/python bench/worker_profile.py [--lotes 200] [--guides 10] [--threads 1]
                                             [--keys capitalprev,pasa] [--database URL] [--cprofile]

Starts the five simulated operators and the gateway (as bench/forward.py), queues ``--lotes``
lotes over HTTP, then runs the delivery worker *in this process* (the same ``Worker`` class
``tiss-gateway worker`` runs, ``--threads`` threads) until the queue is empty, with timers
wrapped around its steps: claim, load, prepare (read, adapter: copy, split, stamp, hash, sign,
validate), post, read the answer (parse, validate), record; then asks every delivered protocol
its status once (tracking). Prints, per delivered lote (per poll for tracking), each step's
wall time and thread CPU, the SQL statements and transactions, and from ``/proc/<pid>/stat``
this process's CPU (the worker's: the gateway and the operators are other processes) against the
simulated operators' process CPU over the same interval: the ratio issue 15 asks to be <= 1.
``--database`` takes a PostgreSQL URL (an empty database or schema). ``--cprofile`` also prints
the top functions of the delivery phase.
"""

import argparse
import cProfile
import functools
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, event, update  # noqa: E402

from adapters import base as adapter_base  # noqa: E402
from bench.forward import pending, queue_lotes  # noqa: E402
from gateway import server  # noqa: E402
from gateway.delivery import client as client_module  # noqa: E402
from gateway.delivery import outbox, reading, tracking  # noqa: E402
from gateway.delivery import worker as worker_module  # noqa: E402
from gateway.delivery.client import OperatorClients  # noqa: E402
from gateway.delivery.worker import Worker  # noqa: E402
from gateway.message import hashing, reader  # noqa: E402
from gateway.message.schema_registry import SchemaRegistry  # noqa: E402
from gateway.security import xmldsig  # noqa: E402
from gateway.storage import db  # noqa: E402
from gateway.storage.models import Entrega  # noqa: E402
from tests.forwarding_stack import Stack, write_config  # noqa: E402
from tests.gateway_process import GatewayProcess  # noqa: E402
from tests.simulator_process import SimulatorProcess  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int | str = "self") -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Totals:
    calls: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    sql: int = 0
    sql_wall: float = 0.0


class StepTimer:
    """Wall and thread CPU of wrapped functions, keyed by their nesting ("deliver/prepare/hash").
    SQL statements are charged to the innermost step running."""

    def __init__(self) -> None:
        self.totals: dict[str, Totals] = defaultdict(Totals)
        self.commits = 0
        self._local = threading.local()
        self._lock = threading.Lock()

    def _stack(self) -> list[str]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        stack = self._stack()
        key = f"{stack[-1]}/{name}" if stack else name
        stack.append(key)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            stack.pop()
            with self._lock:
                found = self.totals[key]
                found.calls += 1
                found.wall += wall
                found.cpu += cpu

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.step(name):
                return original(*args, **kwargs)

        setattr(owner, attr, timed)

    def watch(self, engine: Engine) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def before(_conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool) -> None:
            context._bench_started = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def after(_conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool) -> None:
            stack = self._stack()
            with self._lock:
                found = self.totals[stack[-1] if stack else "(outside)"]
                found.sql += 1
                found.sql_wall += time.perf_counter() - context._bench_started

        @event.listens_for(engine, "commit")
        def commit(_conn: Any) -> None:
            with self._lock:
                self.commits += 1

    def reset(self) -> None:
        with self._lock:
            self.totals.clear()
            self.commits = 0

    def report(self, per: int, title: str) -> None:
        print(f"\n{title} (per {'lote' if 'deliver' in title else 'poll'}: {per} of them; "
              "wall and thread CPU in ms, self = not in a nested step)")
        print(f"{'step':<46}{'calls':>7}{'wall':>9}{'cpu':>8}{'self cpu':>10}{'sql':>6}{'sql ms':>8}")
        for key in sorted(self.totals):
            found = self.totals[key]
            children = [t for k, t in self.totals.items() if k.rpartition("/")[0] == key]
            own = found.cpu - sum(t.cpu for t in children)
            depth = key.count("/")
            label = "  " * depth + key.rpartition("/")[2]
            print(f"{label:<46}{found.calls / per:>7.2f}{found.wall / per * 1000:>9.2f}"
                  f"{found.cpu / per * 1000:>8.2f}{own / per * 1000:>10.2f}{found.sql / per:>6.1f}"
                  f"{found.sql_wall / per * 1000:>8.2f}")
        print(f"transactions committed: {self.commits / per:.2f}")


def instrument(timer: StepTimer) -> None:
    """Timers around each step of a delivery and of a status poll (class attributes: every
    instance, every thread)."""
    timer.wrap(Worker, "run_once", "cycle")
    timer.wrap(outbox, "claim_rows", "claim")
    timer.wrap(outbox, "due", "peek")
    timer.wrap(Worker, "deliver", "deliver")
    timer.wrap(Worker, "_prepare", "prepare")
    timer.wrap(reader, "read", "parse")
    timer.wrap(adapter_base.Adapter, "preparar", "adapter")
    timer.wrap(adapter_base.Adapter, "_documento", "copy")
    timer.wrap(adapter_base, "split_lote", "split")
    timer.wrap(adapter_base, "stamp", "stamp")
    timer.wrap(hashing, "rewrite", "hash+serialise")
    timer.wrap(xmldsig, "sign", "sign")
    timer.wrap(adapter_base, "schema_criticas", "validate")
    timer.wrap(client_module.OperatorClient, "call", "post")
    timer.wrap(worker_module, "read_answer", "read answer")
    timer.wrap(tracking, "read_answer", "read answer")
    timer.wrap(reading, "validate_message", "validate")
    timer.wrap(Worker, "_record", "record")
    timer.wrap(worker_module.outcome, "registrar", "outcome")
    timer.wrap(tracking.Tracker, "run_once", "tracking")
    timer.wrap(tracking.Tracker, "_claim", "claim")
    timer.wrap(tracking.Tracker, "poll", "poll")
    timer.wrap(tracking.Tracker, "_request", "build request")
    timer.wrap(tracking.Tracker, "_schedule", "record")


def drain(workers: list[Worker], *, deliveries: bool, profiles: list[cProfile.Profile] | None = None) -> None:
    """Each worker on its own thread, as ``Worker.run`` does but without idle waits: until a
    cycle finds nothing to do. ``profiles``: each thread's cProfile is added to it."""
    def loop(worker: Worker) -> None:
        profiler = cProfile.Profile() if profiles is not None else None
        if profiler is not None:
            profiler.enable()
        while worker.cycle() if deliveries else worker.tracker.run_once():
            pass
        if profiler is not None and profiles is not None:
            profiler.disable()
            profiles.append(profiler)

    threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def measured(label: str, sim_pid: int, count: int, run: Callable[[], None]) -> tuple[float, float]:
    """Runs ``run``; prints wall, this process's CPU and the operators' per item and their ratio."""
    own, sim, wall = process_cpu(), process_cpu(sim_pid), time.perf_counter()
    run()
    wall = time.perf_counter() - wall
    own, sim = process_cpu() - own, process_cpu(sim_pid) - sim
    print(f"\n{label}: {count} in {wall:.2f} s = {count / wall:.1f}/s; CPU per item: worker "
          f"{own / count * 1000:.2f} ms, simulated operator {sim / count * 1000:.2f} ms; "
          f"worker/operator {own / sim:.2f}", flush=True)
    return own, sim


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lotes", type=int, default=200)
    parser.add_argument("--guides", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="worker threads in this process")
    parser.add_argument("--keys", default="capitalprev,pasa", help="operators, alternately")
    parser.add_argument("--database", metavar="URL", help="gateway database (default: SQLite file)")
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    keys = tuple(args.keys.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        home = Path(tmp)
        simulator = SimulatorProcess(home / "sim").start()
        config_path = write_config(home, simulator, {"consulta_inicial_s": 3600.0, "consulta_max_s": 7200.0})
        url = args.database or f"sqlite:///{home / 'gateway.sqlite'}"
        gateway = GatewayProcess(url, home, demo=False, extra_args=("--config", str(config_path))).start()
        stack = Stack(simulator, gateway, config_path)
        try:
            return profile(args, keys, stack, config_path, url)
        finally:
            stack.close()
            gateway.close()
            simulator.close()


def profile(args: argparse.Namespace, keys: tuple[str, ...], stack: Stack, config_path: Path,
            url: str) -> int:
    warm = 2 * len(keys)
    queue_lotes(stack, warm + args.lotes, args.guides, keys=keys)
    config = server.build_config(config_path, url, False)
    registry = SchemaRegistry()
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    adapters = server.load_adapters(config, registry)
    clients = OperatorClients(config)
    for service in ("tissLoteGuias", "tissSolicitacaoStatusProtocolo"):  # as tiss-gateway worker does
        clients.warm_up(service)
    workers = [Worker(config, registry, sessions, adapters, clients=clients, name=f"bench/{i}")
               for i in range(args.threads)]
    delivered = 0
    while delivered < warm:  # compile schemas, open connections: what a running worker has done
        delivered += workers[0].run_once()
    timer = StepTimer()
    timer.watch(engine)
    instrument(timer)
    sim_pid = stack.simulator.process.pid
    profiles: list[cProfile.Profile] | None = [] if args.cprofile else None
    measured(f"deliveries ({args.threads} thread(s), {args.guides}-guide lotes to {', '.join(keys)})",
             sim_pid, args.lotes, lambda: drain(workers, deliveries=True, profiles=profiles))
    if pending(stack):
        raise SystemExit(f"{pending(stack)} entregas não entregues")
    timer.report(args.lotes, "deliveries")
    timer.reset()
    with sessions.begin() as session:  # every protocol due for its status now
        session.execute(update(Entrega).where(Entrega.estado == "entregue")
                        .values(proxima_consulta_em=datetime.now(UTC)))
    polls = warm + args.lotes
    measured("status polls", sim_pid, polls, lambda: drain(workers, deliveries=False))
    timer.report(polls, "status polls")
    if profiles:
        out = io.StringIO()
        stats = pstats.Stats(*profiles, stream=out)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
        print(out.getvalue())
    clients.close()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
