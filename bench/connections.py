"""Lote acceptance while idle and slow-loris connections are held, against the same gateway without
them (issue 15: p99 within 1.5x, every lote answered).

    .venv/bin/python bench/connections.py --seconds 120                    # the target: 2 minutes each
    .venv/bin/python bench/connections.py --seconds 120 --database postgresql://postgres@127.0.0.1:5432/test

1. Starts ``tiss-gateway serve --demo`` (gunicorn, ``--workers`` processes of
   gateway.gunicorn_worker with the default threads and read deadlines) on SQLite in a temporary
   home, or on ``--database`` (PostgreSQL: in a new schema of that database, dropped at the end).
2. Runs ``--blocks`` pairs of blocks, one quiet and one held, in alternating order, ``--seconds``
   in total for each kind (the default, 30 s, is a quick run): while held, ``--idle`` idle
   connections and ``--slow`` slow-loris ones (a head byte a second; 10 each) are kept open, each
   reopened when the gateway closes it. In both, after the same 1 s pause, one client sends a lote
   of ``--guides`` guides every 1 / ``--rate`` s on a new connection. ``--idle 0 --slow 0`` is the
   A/A run: the ratio this machine's noise alone gives.
3. Prints p50/p99 of lote acceptance in each kind, the ratio of the p99s (target <= 1.5), the lotes
   not answered with a protocol (target 0) and what the held connections got.

Alternating blocks put both kinds under the same machine load. Only 127.0.0.1; every wait is bounded.
"""

import argparse
import http.client
import math
import re
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gateway import deploy_settings  # noqa: E402
from gateway.storage.db import make_engine  # noqa: E402
from tests.db_fixtures import schema_url  # noqa: E402
from tests.factory import build_lote  # noqa: E402
from tests.gateway_process import GatewayProcess  # noqa: E402
from tests.held_connections import HeldConnections  # noqa: E402

LOTE = "/tiss/v4_03_00/tissLoteGuias"
HEADERS = {"Content-Type": "text/xml; charset=ISO-8859-1", "SOAPAction": '""'}
PROTOCOLO = re.compile(rb"<ans:numeroProtocolo>[0-9]{12}</ans:numeroProtocolo>")
TARGET = 1.5


@dataclass
class Latencies:
    values: list[float] = field(default_factory=list)
    failures: int = 0

    def pct(self, q: float) -> float:
        ordered = sorted(self.values)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    def line(self, label: str) -> str:
        return (f"{label:<30} {len(self.values):>4} lotes  p50 {self.pct(0.5):>6.1f} ms  "
                f"p90 {self.pct(0.9):>6.1f}  p99 {self.pct(0.99):>6.1f}  max {self.pct(1.0):>6.1f} ms  "
                f"not answered {self.failures}")


def post(port: int, body: bytes) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", LOTE, body=body, headers=HEADERS)
        response = connection.getresponse()
        return response.status == 200 and PROTOCOLO.search(response.read()) is not None
    except OSError:
        return False
    finally:
        connection.close()


def send(port: int, bodies: list[bytes], seconds: float, rate: float, into: Latencies) -> None:
    """A lote every 1 / rate s (or at once after a slower answer) for ``seconds``."""
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < end and bodies:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += 1 / rate
        start = time.perf_counter()
        answered = post(port, bodies.pop())
        into.values.append(time.perf_counter() - start)
        into.failures += not answered


class Database:
    """The gateway's database: a SQLite file, or a new schema of a PostgreSQL database (dropped after)."""

    def __init__(self, url: str | None, home: Path):
        self.admin, self.schema = None, None
        if url is None:
            self.url = f"sqlite:///{home / 'gateway.sqlite'}"
        elif make_url(url).get_backend_name() == "postgresql":
            self.schema = f"tg_bench_{int(time.time())}_{secrets.token_hex(3)}"
            self.admin = make_engine(url, poolclass=NullPool)
            with self.admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            self.url = schema_url(url, self.schema)
        else:
            self.url = url

    def drop(self) -> None:
        if self.admin is not None:
            with self.admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            self.admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per kind (quiet, held); the target: 120")
    parser.add_argument("--blocks", type=int, default=4, help="quiet/held pairs the time is split into")
    parser.add_argument("--rate", type=float, default=4.0, help="lotes per second from the client")
    parser.add_argument("--guides", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--idle", type=int, default=10, help="idle connections held (0 and --slow 0: A/A)")
    parser.add_argument("--slow", type=int, default=10, help="slow-loris connections held")
    parser.add_argument("--database", metavar="URL",
                        help="PostgreSQL (a new schema in it) or an empty database")
    args = parser.parse_args()
    if not (1 <= args.seconds <= 3600 and 1 <= args.blocks <= 100 and 0.1 <= args.rate <= 50
            and 1 <= args.guides <= 100):
        parser.error("--seconds 1..3600, --blocks 1..100, --rate 0.1..50, --guides 1..100")

    block = args.seconds / args.blocks
    # per block: one at its start and one per 1 / rate s; the 2 s warm-up likewise
    count = 2 * args.blocks * (math.ceil(block * args.rate) + 1) + math.ceil(2 * args.rate) + 1
    print(f"building {count} lotes of {args.guides} SP/SADT guides...", flush=True)
    bodies = [build_lote("sp-sadt", args.guides, envelope=True, numero_lote=str(9000 + i),
                         sequencial=str(9000 + i)) for i in range(count)]
    quiet, held = Latencies(), Latencies()
    with tempfile.TemporaryDirectory(prefix="tiss-bench-connections-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        database = Database(args.database, home)
        try:
            with GatewayProcess(database.url, home, workers=args.workers, log_dir=Path(tmp)) as gateway:
                warm = Latencies()
                send(gateway.port, bodies, 2.0, args.rate, warm)  # every worker process loaded
                closed, timed_out, reopen_failures = 0, 0, 0
                for pair in range(args.blocks):
                    # quiet-held, then held-quiet: neither kind always follows the other
                    for kind in (quiet, held) if pair % 2 == 0 else (held, quiet):
                        idle, slow = (args.idle, args.slow) if kind is held else (0, 0)
                        attackers = HeldConnections(gateway.port, idle=idle, slow=slow, reopen=True)
                        with attackers:
                            time.sleep(1.0)  # (held) all accepted and the slow ones dripping; (quiet) alike
                            send(gateway.port, bodies, block, args.rate, kind)
                        closed += len(attackers.closed)
                        timed_out += sum(c.answer.startswith(b"HTTP/1.1 408") for c in attackers.closed)
                        reopen_failures += attackers.open_failures
                print(f"held connections closed by the gateway (and reopened): {closed}, {timed_out} of them "
                      f"with a 408; failed reconnects: {reopen_failures}")
        finally:
            database.drop()

    backend = "SQLite" if database.url.startswith("sqlite") else "PostgreSQL"
    limits = deploy_settings.ReadLimits()
    print(f"\n{backend}, gunicorn {args.workers} workers x {deploy_settings.threads()} threads "
          f"({deploy_settings.WORKER_CLASS}), head deadline {limits.header_s:.0f} s; one client, "
          f"{args.rate:g} lotes/s of {args.guides} guides, {args.seconds:g} s per kind in "
          f"{args.blocks} blocks")
    print(quiet.line("quiet"))
    print(held.line(f"{args.idle} idle + {args.slow} slow-loris held"))
    ratio = held.pct(0.99) / quiet.pct(0.99)
    print(f"  -> p99 held / quiet = {ratio:.2f} (p50: {held.pct(0.5) / quiet.pct(0.5):.2f}); "
          f"target <= {TARGET}: {'met' if ratio <= TARGET and held.failures == 0 else 'NOT met'}; "
          "every lote answered: "
          f"{'yes' if held.failures == quiet.failures == 0 else 'NO'}")
    print(f"  median of all: quiet {statistics.median(quiet.values) * 1000:.1f} ms, "
          f"held {statistics.median(held.values) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
