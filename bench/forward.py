"""End-to-end forwarding: lotes/s through gateway, workers and simulated operators; delivery lag.

    .venv/bin/python bench/forward.py [--lotes 300] [--guides 10] [--database URL]

1. Starts the five simulated operators (``simulate --all``, no latency) and ``serve`` (2 gunicorn
   workers) with a config pointing at them; SQLite by default.
2. Throughput: queues ``--lotes`` lotes (Capital Prev and PASA alternately) with no worker running,
   then starts 1 worker process (4 threads) and times until all are delivered; again with 2
   worker processes for a fresh batch. Prints lotes/s and the ratio 2 workers / 1 worker.
3. Lag: with 1 worker running and every operator answer delayed 100 ms (the simulator's slow
   fault), sends lotes at a steady pace and reports acceptance -> delivered lag, p50/p99.

Everything on 127.0.0.1; each phase is bounded in time (``--max-seconds``).
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from gateway.storage.models import Entrega, Lote  # noqa: E402
from tests.factory import build_lote  # noqa: E402
from tests.forwarding_stack import Stack, new_number, party, write_config  # noqa: E402
from tests.gateway_process import GatewayProcess  # noqa: E402
from tests.simulator_process import SimulatorProcess  # noqa: E402

KEYS = ("capitalprev", "pasa")


def queue_lotes(stack: Stack, count: int, guides: int) -> list[str]:
    bodies = []
    for index in range(count):
        key, numero = KEYS[index % len(KEYS)], new_number()
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


def drain(stack: Stack, workers: int, max_seconds: float) -> float:
    started = [stack.worker(threads=4) for _ in range(workers)]
    start = time.perf_counter()
    try:
        while pending(stack):
            if time.perf_counter() - start > max_seconds:
                raise SystemExit(f"não entregou tudo em {max_seconds} s")
            time.sleep(0.05)
        return time.perf_counter() - start
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-forward-") as tmp:
        home = Path(tmp)
        simulator = SimulatorProcess(home / "sim").start()
        # Protocols are asked about once a minute here (production default: 5 min), not every second
        # as in the tests: polling is not what this measures.
        config = write_config(home, simulator, {"consulta_inicial_s": 60.0, "consulta_max_s": 600.0})
        url = args.database or f"sqlite:///{home / 'gateway.sqlite'}"
        gateway = GatewayProcess(url, home, demo=False, extra_args=("--config", str(config))).start()
        stack = Stack(simulator, gateway, config)
        try:
            rates = {}
            for workers in (1, 2):
                queue_lotes(stack, args.lotes, args.guides)
                elapsed = drain(stack, workers, args.max_seconds)
                rates[workers] = args.lotes / elapsed
                print(f"{workers} worker(s) x 4 threads: {args.lotes} lotes of {args.guides} guides "
                      f"in {elapsed:.2f} s = {rates[workers]:.1f} lotes/s", flush=True)
            print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}")

            for key in KEYS:
                simulator.set_fault(key, mode="slow", latency_ms=100, rate=1.0)
            worker = stack.worker(threads=4)
            time.sleep(5)  # steady state: a new worker first reads the operators' WSDLs (zeep)
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
        finally:
            stack.close()
            gateway.close()
            simulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
