"""Per-request cost of the SOAP front in process: the WSGI app called directly, no HTTP, no threads.

    .venv/bin/python bench/inprocess.py [--lotes 200] [--status 1000] [--profile lote|status|ceiling]
                                        [--breakdown lote|status]

Builds the app as a gunicorn worker does (``gateway.server.create_app``, demo config, a migrated
SQLite file in a temporary home), prebuilds every request body (the same ones bench/front.py
sends) and calls the app with a fresh environ per request. Prints min / median / p90 per request
for a 100-guide lote, a status query of such a lote, and the constant-answer app of
bench/constant_app.py (the ceiling's per-request cost without HTTP), plus the cost of the
store's mandatory commit alone. ``--profile`` runs cProfile over one phase and prints the top
functions (cumulative and own time); ``--breakdown`` times the pipeline's steps instead (wrappers
around them, no profiler: mean and median per request); for a lote, issue 15's steps of acceptance
(parse, validate, hash, credentials, rules, storage: message rows, guide rows, commit; the answer),
each also as a multiple of bare validate (lxml parse + schema + MD5) of the same lote, run after
each request. ``--database postgresql://...`` runs on a new schema of that database (dropped after):

    .venv/bin/python bench/inprocess.py --breakdown lote --lotes 100 [--database postgresql://...]
"""

import argparse
import collections
import cProfile
import functools
import gc
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import constant_app  # noqa: E402
from bench.connections import Database  # noqa: E402
from tests.factory import build_lote, build_request  # noqa: E402

LOTE = "/tiss/v4_03_00/tissLoteGuias"
STATUS = "/tiss/v4_03_00/tissSolicitacaoStatusProtocolo"


def environ_for(path: str, body: bytes) -> dict:
    return {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "text/xml; charset=ISO-8859-1", "CONTENT_LENGTH": str(len(body)),
            "HTTP_SOAPACTION": '""', "HTTP_HOST": "127.0.0.1:8080", "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}


def call(app: Callable, path: str, body: bytes) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(code: str, _headers: list, _exc_info: object = None) -> None:
        status.append(code)

    result: Iterable[bytes] = app(environ_for(path, body), start_response)
    data = b"".join(result)
    close = getattr(result, "close", None)
    if close is not None:
        close()
    return status[0], data


def timed(app: Callable, path: str, bodies: list[bytes], check: Callable[[str, bytes], bool],
          after: Callable[[], object] | None = None) -> list[float]:
    """``after``: run after each request, untimed (the bare reference, under the same load)."""
    times = []
    for body in bodies:
        start = time.perf_counter()
        status, data = call(app, path, body)
        times.append(time.perf_counter() - start)
        if not check(status, data):
            raise SystemExit(f"unexpected answer {status}: {data[:1500]!r}")
        if after is not None:
            after()
    return times


def bare_validate(guides: int) -> Callable[[], float]:
    """bench/validate.py's bare minimum (lxml parse + schema + MD5) of the same lote as a bare
    loteGuiasWS (its schema does not declare the SOAP envelope); returns a timer of one run."""
    from bench.validate import bare
    from gateway.message.schema_registry import default_registry

    plain = build_lote("sp-sadt", guides, numero_lote="1000", sequencial="1000")
    schema = default_registry().schema("4.03.00", "loteGuiasWS")

    def run() -> float:
        start = time.perf_counter()
        bare(plain, schema)
        return time.perf_counter() - start

    return run


def summary(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return (f"{label:<34} n={len(times):>5}  min {ordered[0] * 1000:7.3f} ms  median "
            f"{statistics.median(ordered) * 1000:7.3f} ms  p90 {p90 * 1000:7.3f} ms")


def profile(func: Callable[[], object], top: int = 45) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    func()
    profiler.disable()
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(top)
        print(out.getvalue())


# (module, attribute, label) of the steps --breakdown times; indented labels run inside the one
# above. Issue 15's steps of a lote's acceptance: parse, validate, hash, credentials, rules, then
# storage (message rows, guide rows, commit) and the answer.
STEPS = (
    ("gateway.soap.protocol:TissSoapIn", "create_in_document", "parse: read body + safe parse"),
    ("gateway.soap.protocol:TissSoapIn", "decompose_incoming_envelope", "SOAP envelope"),
    ("gateway.inbound.pipeline:Pipeline", "handle", "pipeline (all of it)"),
    ("gateway.message.validation", "schema_findings", "  validate: schema"),
    ("gateway.message.hashing", "check", "  hash check"),
    ("gateway.inbound.checks:Checks", "sender", "  credentials: login (cached) + still allowed"),
    ("gateway.inbound.acceptance", "read_lote", "  read the lote's guides"),
    ("gateway.message.credencial", "redact", "  senhaPrestador found and masked (stored and sealed)"),
    ("adapters.base:Adapter", "avaliar", "  rules: the operator's (adapter)"),
    ("gateway.inbound.status", "answer_status", "  status: read + build the answer"),
    ("gateway.storage.rows", "lote_do_protocolo", "    lote and its guides"),
    ("gateway.message.responses", "situacao_protocolo_draft", "    build situacaoProtocolo"),
    ("gateway.inbound.acceptance", "store_once", "  storage: write transaction (BEGIN .. COMMIT)"),
    ("gateway.storage.rows", "transacao_anterior", "    duplicate?"),
    ("gateway.storage.rows", "add_mensagem", "    message rows (request, answer)"),
    ("gateway.storage.rows", "add_transacao", "    insert transacao"),
    ("gateway.storage.rows", "lote_anterior", "    numeroLote already used?"),
    ("gateway.inbound.acceptance", "insert_protocolo", "    insert protocolo (+ number, history)"),
    ("gateway.storage.rows", "add_lote", "    lote row + guide rows"),
    ("gateway.storage.rows", "_copy_guias", "      guide rows: COPY (PostgreSQL)"),
    ("gateway.storage.rows:_FAST_GUIAS", "executemany", "      guide rows: executemany"),
    ("gateway.security.vault", "seal_spans", "    senhaPrestador sealed for delivery"),
    ("gateway.delivery.outbox", "schedule", "    insert entrega (outbox)"),
    ("gateway.message.responses", "protocolo_recebimento_draft", "    answer: build protocoloRecebimento"),
    ("gateway.message.responses", "envelope", "    answer: hash + serialise"),
    ("sqlalchemy.engine.default:DefaultDialect", "do_commit", "    COMMIT"),
)
WHOLE = "the request (WSGI app call)"


def instrument() -> tuple[dict, dict]:
    """Wrap STEPS with timers; returns (samples by label, calls by label)."""
    import importlib

    samples: dict[str, list[float]] = collections.defaultdict(list)
    for where, name, label in STEPS:
        module, _sep, cls = where.partition(":")
        owner = importlib.import_module(module)
        owner = getattr(owner, cls) if cls else owner
        original = getattr(owner, name)

        def timed_step(*args, _original=original, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                samples[_label].append(time.perf_counter() - start)

        setattr(owner, name, functools.wraps(original)(timed_step))
    return samples, {}


def _depth(label: str) -> int:
    return (len(label) - len(label.lstrip(" "))) // 2


def _rest(step: str, samples: dict[str, list[float]]) -> float | None:
    """The time of ``step`` not in the steps indented under it (summed over the run)."""
    labels = [label for _w, _n, label in STEPS]
    index = labels.index(step)
    children = []
    for label in labels[index + 1:]:
        if _depth(label) <= _depth(step):
            break
        if _depth(label) == _depth(step) + 1:
            children.append(label)
    if not children or not samples.get(step):
        return None
    return sum(samples[step]) - sum(sum(samples.get(c, ())) for c in children)


def print_breakdown(label: str, samples: dict[str, list[float]], requests: int, total: list[float],
                    bare_ms: float | None = None) -> None:
    """Mean and median per request of each step; with ``bare_ms`` (lxml parse + schema + MD5 of the
    same document, bench/validate.py), each step's mean as a fraction of it."""
    def row(step: str, mean_ms: float, median_ms: float | None, per: float | str) -> str:
        median = f"{median_ms:7.3f}" if median_ms is not None else "      -"
        ratio = f"  {mean_ms / bare_ms:5.2f}x bare" if bare_ms else ""
        count = f"({per:.0f}/request)" if isinstance(per, float) else per
        return f"  {step:<46} mean {mean_ms:7.3f}  median {median} ms{ratio}  {count}"

    print(f"{label}: {requests} requests, per request: mean {statistics.mean(total) * 1000:.3f} ms, "
          f"median {statistics.median(total) * 1000:.3f} ms"
          + (f" = {statistics.median(total) * 1000 / bare_ms:.2f}x bare validate ({bare_ms:.3f} ms)"
             if bare_ms else ""))
    print(row(WHOLE, statistics.mean(total) * 1000, statistics.median(total) * 1000, 1.0))
    outside = sum(total) - sum(sum(samples.get(label, ())) for _w, _n, label in STEPS if _depth(label) == 0)
    print(row("spyne/WSGI/middleware (the rest of it)", outside / requests * 1000, None, "(derived)"))
    for _where, _name, step in STEPS:
        found = samples.get(step)
        if not found:
            continue
        per = len(found) / requests
        print(row(step, sum(found) / requests * 1000, statistics.median(found) * per * 1000, per))
        rest = _rest(step, samples)
        if rest is not None:
            inner = "  " * (_depth(step) + 1)
            print(row(f"{inner}(the rest of it)", rest / requests * 1000, None, "(derived)"))


def lote_ok(status: str, data: bytes) -> bool:
    return status.startswith("200") and b"numeroProtocolo>" in data and b"mensagemErro" not in data


def status_ok(status: str, data: bytes) -> bool:
    return status.startswith("200") and b"<ans:statusProtocolo>1</ans:statusProtocolo>" in data


def commit_cost(app: object, repeat: int = 500) -> list[float]:
    """One small write transaction on the app's engine (begin, one insert, commit): the floor of
    any request that stores its message durably."""
    from sqlalchemy import text

    sessions = app.pipeline.sessions  # type: ignore[attr-defined]
    with sessions.begin() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, v TEXT)"))
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        with sessions.begin() as session:
            session.execute(text("INSERT INTO bench_commit (v) VALUES (:v)"), {"v": str(i)})
        times.append(time.perf_counter() - start)
    with sessions.begin() as session:
        session.execute(text("DROP TABLE bench_commit"))
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lotes", type=int, default=200)
    parser.add_argument("--status", type=int, default=1000)
    parser.add_argument("--guides", type=int, default=100)
    parser.add_argument("--profile", choices=("lote", "status", "ceiling"))
    parser.add_argument("--breakdown", choices=("lote", "status"))
    parser.add_argument("--database", metavar="URL",
                        help="PostgreSQL (a new schema in it, dropped after) or an empty database "
                             "(default: a SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tiss-bench-inprocess-") as tmp:
        database = Database(args.database, Path(tmp))
        try:
            return measure(args, tmp, database.url)
        finally:
            database.drop()


def measure(args: argparse.Namespace, tmp: str, database_url: str) -> int:
    os.environ["TISS_GATEWAY_HOME"] = tmp
    from gateway import server

    config = server.build_config(None, database_url, True)
    url = server.prepare(config)
    app = server.create_app(config, url)
    gc.collect()
    gc.freeze()  # as gunicorn workers do (gateway.server.GatewayServer.load)
    try:
        return run(args, app, url)
    finally:
        for sessions in (app.pipeline.sessions, app.pipeline.readers):
            sessions.kw["bind"].dispose()


def run(args: argparse.Namespace, app: Callable, url: str) -> int:

    lotes = [build_lote("sp-sadt", args.guides, envelope=True, numero_lote=str(1000 + i),
                        sequencial=str(1000 + i)) for i in range(args.lotes + 1)]
    samples = instrument()[0] if args.breakdown else {}
    print(f"lote: {len(lotes[0])} bytes, {args.guides} guides")
    status, first = call(app, LOTE, lotes[0])
    assert lote_ok(status, first), first[:2000]
    if args.profile == "lote":
        profile(lambda: timed(app, LOTE, lotes[1:], lote_ok))
        return 0
    samples.clear()
    bare_timer, bare_times = bare_validate(args.guides), []
    lote_times = timed(app, LOTE, lotes[1:], lote_ok,
                       after=lambda: bare_times.append(bare_timer()) if args.breakdown else None)
    if args.breakdown == "lote":
        backend = url.split(":", 1)[0].split("+")[0]
        print_breakdown(f"lote ({args.guides} guias, {backend})", samples, len(lote_times), lote_times,
                        statistics.median(bare_times) * 1000)
        return 0
    protocolo = first.split(b"numeroProtocolo>")[1][:12].decode()
    statuses = [build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=f"s{i}",
                              numero_protocolo=protocolo) for i in range(args.status + 1)]
    status, answer = call(app, STATUS, statuses[0])
    assert status_ok(status, answer), answer[:2000]
    print(f"status: request {len(statuses[0])} bytes, answer {len(answer)} bytes")
    if args.profile == "status":
        profile(lambda: timed(app, STATUS, statuses[1:], status_ok))
        return 0
    samples.clear()
    status_times = timed(app, STATUS, statuses[1:], status_ok)
    if args.breakdown == "status":
        print_breakdown("status do protocolo", samples, len(status_times), status_times)
        return 0
    ceiling = [call(constant_app.app, STATUS, b) for b in statuses[:1]]
    assert ceiling[0][0].startswith("200")
    ceiling_times = timed(constant_app.app, STATUS, statuses[1:], lambda s, _d: s.startswith("200"))
    if args.profile == "ceiling":
        profile(lambda: timed(constant_app.app, STATUS, statuses[1:], lambda s, _d: True))
        return 0
    commit_times = commit_cost(app)
    print(summary(f"lote ({args.guides} guias)", lote_times))
    print(summary("status do protocolo", status_times))
    print(summary("constant app (ceiling, no HTTP)", ceiling_times))
    print(summary("one insert + commit", commit_times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
