"""What a hostile message costs the gateway, next to a valid lote (issue 16).

    .venv/bin/python bench/hostile.py [--runs 3] [--pg-dsn postgresql://postgres@127.0.0.1:5432/test]

For each backend (SQLite; PostgreSQL with ``--pg-dsn`` or ``TISS_GATEWAY_TEST_PG_DSN``) it starts
``tiss-gateway serve --demo`` with one gunicorn worker and posts, ``--runs`` times each:

- ``lote valido``: a valid lote of 100 SP/SADT guides (~470 KB), accepted;
- ``600k atributos``: a 7.1 MB lote whose ``loteGuias`` carries 600,000 unknown attributes;
- ``30k itens``: a lote with 30,000 empty ``procedimentoExecutado`` (two schema errors each);
- ``lixo 3 MB``: 3 MiB of random bytes.

For each: the answer time (median; also per MB of input), the críticas rows and the body bytes
stored for it (read from the database by its X-Request-Id), the worker's peak RSS growth while
answering it (``VmHWM`` of the worker after ``/proc/<pid>/clear_refs``, minus its RSS before; the
largest of the runs, also per byte of input) and the growth it keeps after answering. Time ratios are
to the valid lote's. A valid lote fits in memory the worker already holds (growth ~0), so memory is
shown per input byte rather than as a ratio. Only 127.0.0.1; run as a user that may write
``/proc/<worker>/clear_refs``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from gateway.storage.db import make_engine  # noqa: E402
from gateway.storage.models import Critica, Mensagem  # noqa: E402
from tests.db_fixtures import PG_DSN_ENV, schema_url  # noqa: E402
from tests.factory import build_lote  # noqa: E402
from tests.gateway_process import GatewayProcess  # noqa: E402

LOTE = "/tiss/v4_03_00/tissLoteGuias"
_numbers = itertools.count(1)


def valid_lote() -> bytes:
    numero = str(next(_numbers))
    return build_lote("sp-sadt", 100, envelope=True, numero_lote=numero, sequencial=numero)


def small_lote() -> bytes:
    numero = str(next(_numbers))
    return build_lote("sp-sadt", 1, envelope=True, numero_lote=numero, sequencial=numero)


def attributes() -> bytes:
    flood = b" ".join(b'x%d="1"' % i for i in range(600_000))
    return small_lote().replace(b"<ans:loteGuias>", b"<ans:loteGuias " + flood + b">", 1)


def items() -> bytes:
    flood = b"<ans:procedimentoExecutado/>" * 30_000
    return small_lote().replace(b"<ans:procedimentosExecutados>", b"<ans:procedimentosExecutados>" + flood, 1)


def garbage() -> bytes:
    return secrets.token_bytes(3 * 1024 * 1024)


CASES: dict[str, Callable[[], bytes]] = {
    "lote valido": valid_lote, "600k atributos": attributes, "30k itens": items, "lixo 3 MB": garbage}


@dataclass
class Cost:
    size: int = 0
    times: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    rows: int = 0  # críticas of one run
    stored: int = 0  # body bytes of one run
    peak: int = 0  # worker's RSS growth while answering, bytes (largest run)
    kept: int = 0  # worker's RSS growth left after the answer, bytes (last run)


def worker_pid(server: GatewayProcess) -> int:
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"esperado um worker do gunicorn, há {children}")
    return int(children[0])


def status_kib(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{name} fora de /proc/{pid}/status")


def post(port: int, body: bytes, request_id: str) -> tuple[int, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Content-Type": "text/xml; charset=ISO-8859-1", "SOAPAction": '""', "X-Request-Id": request_id}
    try:
        started = time.perf_counter()
        connection.request("POST", LOTE, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        connection.close()


def measure(server: GatewayProcess, runs: int) -> dict[str, Cost]:
    engine = make_engine(server.database_url, poolclass=NullPool)
    costs: dict[str, Cost] = {}
    try:
        post(server.port, valid_lote(), "aquecimento")  # first-request costs out of the way
        pid = worker_pid(server)
        for label, build in CASES.items():
            cost = costs[label] = Cost()
            for run in range(runs):
                body = build()
                cost.size = len(body)
                request_id = f"bench-{secrets.token_hex(6)}"
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
                before = status_kib(pid, "VmRSS")
                status, elapsed = post(server.port, body, request_id)
                cost.peak = max(cost.peak, (status_kib(pid, "VmHWM") - before) * 1024)
                cost.kept = (status_kib(pid, "VmRSS") - before) * 1024
                cost.times.append(elapsed)
                cost.statuses.add(status)
                if run == 0:
                    cost.rows, cost.stored = stored(engine, request_id)
    finally:
        engine.dispose()
    return costs


def stored(engine, request_id: str) -> tuple[int, int]:
    with engine.connect() as connection:
        mensagem = connection.execute(select(Mensagem.id, func.length(Mensagem.corpo)).where(
            Mensagem.request_id == request_id, Mensagem.direcao == "entrada")).first()
        if mensagem is None:
            return 0, 0
        rows = connection.scalar(select(func.count()).select_from(Critica).where(
            Critica.mensagem_id == mensagem[0]))
    return rows, mensagem[1]


def report(backend: str, costs: dict[str, Cost]) -> None:
    base = costs["lote valido"]
    base_time = statistics.median(base.times)
    print(f"\n{backend}: mediana de {len(base.times)} envios; pico de RSS do worker acima do RSS anterior")
    print(f"{'mensagem':<16}{'bytes':>10}{'HTTP':>5}{'tempo s':>9}{'x valido':>9}{'s/MB':>7}"
          f"{'x valido':>9}{'críticas':>9}{'corpo gravado':>14}{'pico MB':>8}{'pico/bytes':>11}"
          f"{'fica MB':>8}")
    base_per_mb = base_time / (base.size / 2**20)
    for label, cost in costs.items():
        elapsed = statistics.median(cost.times)
        per_mb = elapsed / (cost.size / 2**20)
        print(f"{label:<16}{cost.size:>10}{'/'.join(map(str, sorted(cost.statuses))):>5}{elapsed:>9.3f}"
              f"{elapsed / base_time:>9.1f}{per_mb:>7.3f}{per_mb / base_per_mb:>9.1f}{cost.rows:>9}"
              f"{cost.stored:>14}{cost.peak / 2**20:>8.1f}{cost.peak / cost.size:>11.1f}"
              f"{cost.kept / 2**20:>8.1f}")


def sqlite_url(tmp: Path) -> tuple[str, Callable[[], None]]:
    return f"sqlite:///{tmp / 'gateway.sqlite'}", lambda: None


def postgresql_url(dsn: str) -> tuple[str, Callable[[], None]]:
    admin = make_engine(dsn, poolclass=NullPool)
    schema = f"tg_bench_{int(time.time())}_{secrets.token_hex(4)}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return schema_url(dsn, schema), drop


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-dsn", default=os.environ.get(PG_DSN_ENV))
    args = parser.parse_args()
    backends = ["sqlite", *(["postgresql"] if args.pg_dsn else [])]
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
            url, cleanup = sqlite_url(Path(tmp)) if backend == "sqlite" else postgresql_url(args.pg_dsn)
            try:
                with GatewayProcess(url, Path(tmp), workers=1, log_dir=Path(tmp)) as server:
                    report(backend, measure(server, args.runs))
            finally:
                cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
