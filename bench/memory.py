"""Peak memory of accepting a ~15 MB lote in the deployed server (issue 15: at most 10x its size).

    .venv/bin/python bench/memory.py [--runs 3]
    .venv/bin/python bench/memory.py --database postgresql://postgres@127.0.0.1:5432/test

Starts ``tiss-gateway serve --demo`` with one gunicorn worker (gateway.gunicorn_worker: gthread,
its default threads) on SQLite in a temporary home, or on ``--database`` (PostgreSQL: a new schema
of it, dropped at the end). After a warm-up lote, sends valid lotes of 100 SP/SADT guides made
large by repeating each guide's procedimentos (the hash stamped again): one of ~14.5 MB, which
PASA takes whole, and one just under the door's 15 MiB limit, which PASA's 15 MB rule makes the
adapter split at acceptance (the most a lote can cost). For each, the worker process's resident
memory high-water mark while it answers, from /proc: ``VmHWM`` reset to ``VmRSS`` before
(``clear_refs``), read after; the peak is VmHWM after less VmRSS before, and the ratio to the
message's size is the target's. Each lote must get its protocol. Only 127.0.0.1.
"""

import argparse
import copy
import http.client
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.hostile import postgresql_url, sqlite_url, status_kib, worker_pid  # noqa: E402
from gateway.message import hashing  # noqa: E402
from gateway.message.services import ANS_NS  # noqa: E402
from tests.factory import build_lote, envelope  # noqa: E402
from tests.gateway_process import GatewayProcess  # noqa: E402

LOTE = "/tiss/v4_03_00/tissLoteGuias"
HEADERS = {"Content-Type": "text/xml; charset=ISO-8859-1", "SOAPAction": '""'}
PROTOCOLO = re.compile(rb"<ans:numeroProtocolo>[0-9]{12}</ans:numeroProtocolo>")
TARGET = 10.0
MIB = 1024 * 1024
SIZES = {"~14.5 MB (PASA: inteiro)": 14_500_000, "~15.6 MB (PASA: dividido)": 15 * MIB - 100_000}
_PARSER = etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True)


def big_lote(numero: str, size: int) -> bytes:
    """A valid 100-guide SP/SADT loteGuiasWS of about ``size`` bytes, enveloped, hash stamped."""
    data = build_lote("sp-sadt", 100, numero_lote=numero, sequencial=numero)
    tree = etree.ElementTree(etree.fromstring(data, _PARSER))
    root = tree.getroot()
    listas = root.findall(f".//{{{ANS_NS}}}procedimentosExecutados")
    for lista in listas:  # one copy each, to learn what a round of copies weighs once written
        lista.append(copy.deepcopy(lista[0]))
    one_round = len(hashing.rewrite(tree, root)) - len(data)
    for lista in listas:
        first = lista[0]
        for _ in range(max(0, (size - len(data)) // one_round - 1)):
            lista.append(copy.deepcopy(first))
    return envelope(hashing.rewrite(tree, root))


def post(port: int, body: bytes) -> tuple[int, bytes, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        started = time.perf_counter()
        connection.request("POST", LOTE, body=body, headers=HEADERS)
        response = connection.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - started
    finally:
        connection.close()


def measure(server: GatewayProcess, runs: int) -> list[tuple[str, int, list[int], list[float], int]]:
    """Per size: (label, bytes, peaks in bytes, seconds, lotes without a protocol)."""
    numeros = iter(range(1000, 100_000))
    warm = build_lote("sp-sadt", 100, envelope=True, numero_lote="1", sequencial="1")
    port = server.port
    assert port is not None, "servidor não iniciado"
    status, data, _ = post(port, warm)
    if status != 200 or not PROTOCOLO.search(data):
        raise SystemExit(f"o lote de aquecimento não teve protocolo: {status} {data[:500]!r}")
    pid = worker_pid(server)
    results = []
    for label, size in SIZES.items():
        peaks, times, failures, length = [], [], 0, 0
        for _ in range(runs):
            numero = str(next(numeros))
            body = big_lote(numero, size)
            length = len(body)
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            before = status_kib(pid, "VmRSS")
            status, data, elapsed = post(port, body)
            peaks.append((status_kib(pid, "VmHWM") - before) * 1024)
            times.append(elapsed)
            if status != 200 or not PROTOCOLO.search(data) or b"mensagemErro" in data:
                failures += 1
                print(f"  {label}: sem protocolo, HTTP {status}: {data[:300]!r}", flush=True)
        results.append((label, length, peaks, times, failures))
    return results


def report(backend: str, results: list[tuple[str, int, list[int], list[float], int]]) -> int:
    print(f"\n{backend}: pico de RSS do worker (gthread) acima do RSS de antes, o maior de "
          f"{len(results[0][2])} envios; alvo <= {TARGET:.0f}x o tamanho")
    failures = 0
    for label, length, peaks, times, failed in results:
        peak = max(peaks)
        ratio = peak / length
        failures += failed
        print(f"  lote {label:<26} {length / 1e6:6.2f} MB  pico {peak / 1e6:7.1f} MB = {ratio:5.2f}x  "
              f"tempo mediano {statistics.median(times):6.2f} s  "
              f"{'met' if ratio <= TARGET else 'NOT met'}{f'  SEM PROTOCOLO: {failed}' if failed else ''}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", metavar="URL", help="PostgreSQL (a new schema in it); default SQLite")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("--runs 1..20")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        url, cleanup = postgresql_url(args.database) if args.database else sqlite_url(Path(tmp))
        try:
            with GatewayProcess(url, Path(tmp), workers=1, log_dir=Path(tmp)) as server:
                failures = report("PostgreSQL" if args.database else "SQLite", measure(server, args.runs))
        finally:
            cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
