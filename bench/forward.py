"""End-to-end forwarding: lotes/s through gateway, workers and simulated operators, the workers' CPU
per lote against the operators'; delivery lag.

    .venv/bin/python bench/forward.py [--lotes 300] [--guides 10] [--rounds 3] [--database URL]

1. Starts the five simulated operators (``simulate --all``, no latency) and ``serve`` (2 gunicorn
   workers) with a config pointing at them; SQLite by default.
2. Throughput: queues ``--lotes`` lotes (Capital Prev and PASA alternately) and holds them
   (``proxima_em`` in the future), starts 1 worker process (4 threads), waits until it has warmed
   up (imports, schemas, WSDLs: its CPU use settles; the start-up is printed apart, as is the CPU
   of 2 s with nothing due), releases the lotes and times until all are delivered; then with 2
   worker processes for a fresh batch; ``--rounds`` times, alternated (1, 2, 2, 1, ...). Prints
   lotes/s, and from ``/proc/<pid>/stat`` over the same interval the CPU per delivered lote of
   the worker processes, of the simulated operators' process (to accept it) and of this run's
   PostgreSQL backends (with ``--database``); then the medians: 2 workers / 1 worker (issue 15:
   >= 1 on PostgreSQL) and worker/operator CPU (issue 15: <= 1). ``--rounds 0``: lag only.
3. Lag: with 1 worker running and every operator answer delayed 100 ms (the simulator's slow
   fault), sends lotes at a steady pace and reports acceptance -> delivered lag, p50/p99.

Everything on 127.0.0.1; each phase is bounded in time (``--max-seconds``). bench/worker_profile.py
breaks the worker's time down by step.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, make_url, select, text, update  # noqa: E402

from gateway.storage.models import Entrega, Lote  # noqa: E402
from tests.factory import build_lote  # noqa: E402
from tests.forwarding_stack import Stack, new_number, party, write_config  # noqa: E402
from tests.gateway_process import GatewayProcess, WorkerProcess  # noqa: E402
from tests.simulator_process import SimulatorProcess  # noqa: E402

KEYS = ("capitalprev", "pasa")


def queue_lotes(stack: Stack, count: int, guides: int, keys: tuple[str, ...] = KEYS) -> list[str]:
    bodies = []
    for index in range(count):
        key, numero = keys[index % len(keys)], new_number()
        bodies.append(build_lote("consulta", guides, envelope=True, numero_lote=numero, sequencial=numero,
                                 party=party(key)))
    numeros: list[str] = []
    lock = threading.Lock()

    def send(chunk: list[bytes]) -> None:
        for body in chunk:
            response = stack.post("tissLoteGuias", body)
            assert response.status_code == 200, response.text[:500]
            with lock:
                numeros.append(body.split(b"<ans:numeroLote>")[1].split(b"<")[0].decode())

    threads = [threading.Thread(target=send, args=(bodies[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return numeros


def pending(stack: Stack) -> int:
    with stack.db.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Entrega)
                                 .where(Entrega.estado != "entregue"))


def hold(stack: Stack, until: datetime) -> None:
    """Pending deliveries due at ``until`` (far ahead: held; now: released)."""
    with stack.db.begin() as connection:
        connection.execute(update(Entrega).where(Entrega.estado == "pendente").values(proxima_em=until))


TICKS = os.sysconf("SC_CLK_TCK")
IDLE_S = 2.0


def process_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat, fields 14 and 15); 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


APPLICATION = "tiss-bench-forward"  # the PostgreSQL backends of this run (not other clients')


def postgres_pids(stack: Stack) -> list[int]:
    """The PostgreSQL server processes serving this run's connections (local server)."""
    with stack.db.connect() as connection:
        query = text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")
        return list(connection.scalars(query, {"name": APPLICATION}))


def warmed_up(workers: list[WorkerProcess], max_seconds: float = 30.0) -> None:
    """Until the workers' CPU settles (imports, schemas, WSDLs done: idle polling only)."""
    pids = [w.process.pid for w in workers if w.process is not None]
    last, deadline = sum(map(process_cpu, pids)), time.monotonic() + max_seconds
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(map(process_cpu, pids))
        quiet = quiet + 1 if now - last < 0.05 * len(pids) else 0
        last = now


def drain(stack: Stack, workers: int, max_seconds: float, database: bool) -> tuple[float, dict[str, float]]:
    """Seconds to deliver every held lote with ``workers`` warm worker processes, and the CPU
    seconds each side spent meanwhile (workers, operators, PostgreSQL server); "startup": the
    workers' CPU before (imports, schemas, WSDLs), which the old version of this bench timed too;
    "idle": theirs over IDLE_S seconds with nothing due."""
    hold(stack, datetime.now(UTC) + timedelta(days=1))
    started = [stack.worker(threads=4) for _ in range(workers)]
    try:
        warmed_up(started)
        sides = {"workers": [w.process.pid for w in started if w.process is not None],
                 "operators": [stack.simulator.process.pid],
                 "postgres": postgres_pids(stack) if database else []}
        startup = sum(map(process_cpu, sides["workers"]))
        time.sleep(IDLE_S)  # nothing due: what waiting for work costs
        before = {side: sum(map(process_cpu, pids)) for side, pids in sides.items()}
        hold(stack, datetime.now(UTC))
        start = time.perf_counter()
        while pending(stack):
            if time.perf_counter() - start > max_seconds:
                raise SystemExit(f"não entregou tudo em {max_seconds} s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        spent = {side: sum(map(process_cpu, pids)) - before[side] for side, pids in sides.items()}
        return elapsed, {**spent, "startup": startup, "idle": before["workers"] - startup}
    finally:
        for worker in started:
            worker.close()
            stack.workers.remove(worker)


def lags(stack: Stack, numeros: set[str]) -> list[float]:
    with stack.db.connect() as connection:
        rows = connection.execute(select(Lote.criado_em, Entrega.entregue_em).join(
            Entrega, Entrega.lote_id == Lote.id).where(Lote.numero_lote.in_(numeros)))
        return [(done - accepted).total_seconds() for accepted, done in rows if done is not None]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lotes", type=int, default=300)
    parser.add_argument("--guides", type=int, default=10)
    parser.add_argument("--lag-lotes", type=int, default=100)
    parser.add_argument("--lag-rate", type=float, default=10.0, help="lotes/s sent in the lag phase")
    parser.add_argument("--database", metavar="URL", help="gateway database (default: SQLite file)")
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="1-worker and 2-worker runs, alternated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-forward-") as tmp:
        home = Path(tmp)
        simulator = SimulatorProcess(home / "sim").start()
        # Protocols are first asked about after an hour (production default: 5 min): polling is not
        # what this measures (bench/worker_profile.py does), and with polls due a minute after
        # delivery, every round after the first also polled the lotes of the rounds before.
        config = write_config(home, simulator, {"consulta_inicial_s": 3600.0, "consulta_max_s": 7200.0})
        url = f"sqlite:///{home / 'gateway.sqlite'}"
        if args.database:
            url = make_url(args.database).update_query_dict({"application_name": APPLICATION})
            url = url.render_as_string(hide_password=False)
        gateway = GatewayProcess(url, home, demo=False, extra_args=("--config", str(config))).start()
        stack = Stack(simulator, gateway, config)
        try:
            if args.rounds:
                rounds(stack, args)
            if args.lag_lotes:
                lag(stack, args)
        finally:
            stack.close()
            gateway.close()
            simulator.close()
    return 0


def rounds(stack: Stack, args: argparse.Namespace) -> None:
    """1 and 2 worker processes, alternated (1, 2, 2, 1, 1, 2...: a drift of the machine favours
    neither); the medians."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    ratios: list[float] = []
    for index in range(args.rounds):
        for workers in ((1, 2), (2, 1))[index % 2]:
            rate, ratio = throughput(stack, workers, args)
            rates[workers].append(rate)
            ratios.append(ratio)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"median of {args.rounds}: 1 worker {one:.1f} lotes/s, 2 workers {two:.1f} lotes/s; "
          f"2 workers / 1 worker: {two / one:.2f}; worker/operator CPU per lote: "
          f"{statistics.median(ratios):.2f}")


def throughput(stack: Stack, workers: int, args: argparse.Namespace) -> tuple[float, float]:
    """Lotes/s of ``workers`` processes and their CPU per lote over the operators'."""
    queue_lotes(stack, args.lotes, args.guides)
    elapsed, cpu = drain(stack, workers, args.max_seconds, bool(args.database))
    per_lote = {side: seconds / args.lotes * 1000 for side, seconds in cpu.items()}
    database = f", PostgreSQL {per_lote['postgres']:.1f} ms" if args.database else ""
    ratio = cpu["workers"] / cpu["operators"]
    print(f"{workers} worker(s) x 4 threads: {args.lotes} lotes of {args.guides} guides in {elapsed:.2f} s "
          f"= {args.lotes / elapsed:.1f} lotes/s; CPU per lote: workers {per_lote['workers']:.1f} ms, "
          f"operators {per_lote['operators']:.1f} ms{database}; worker/operator {ratio:.2f} "
          f"(per worker process: start-up {cpu['startup'] / workers:.2f} s CPU, idle "
          f"{cpu['idle'] / workers / IDLE_S * 1000:.0f} ms CPU/s)", flush=True)
    return args.lotes / elapsed, ratio


def lag(stack: Stack, args: argparse.Namespace) -> None:
    """Acceptance -> delivered under 100 ms of operator latency, lotes sent at a steady pace."""
    for key in KEYS:
        stack.simulator.set_fault(key, mode="slow", latency_ms=100, rate=1.0)
    worker = stack.worker(threads=4)
    warmed_up([worker])  # steady state: a new worker first reads the operators' WSDLs (zeep)
    sent: set[str] = set()
    for _ in range(args.lag_lotes):
        sent.update(queue_lotes(stack, 1, args.guides))
        time.sleep(1 / args.lag_rate)
    deadline = time.monotonic() + args.max_seconds
    while pending(stack) and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.close()
    found = sorted(lags(stack, sent))
    p99 = found[min(len(found) - 1, round(0.99 * (len(found) - 1)))]
    print(f"lag with 100 ms operator latency, {args.lag_rate:g} lotes/s, 1 worker: "
          f"p50 {statistics.median(found) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
          f"({len(found)} lotes; the floor is the 100 ms latency plus the worker's idle poll)")


if __name__ == "__main__":
    sys.exit(main())
