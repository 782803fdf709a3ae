"""``tiss-gateway worker``: delivers accepted messages to the operators and tracks their protocols.

Run as many as you like, on as many hosts as share the database; each claims its own deliveries.
SIGTERM/SIGINT: nothing more is claimed, what was claimed and not sent goes back to the queue, and
the process exits within ``[entregas] parada_s`` (15 s): a post still in flight then is given back
marked as of unknown outcome (gateway.delivery.leases). A database down at start is waited for,
one line per try, backing off up to 30 s.

Metrics: ``--metrics-bind HOST:PORT`` serves this process's ``/metrics`` (deliveries, operator
answer times, status polls and their lag, circuits). A worker started by ``serve --demo`` inherits
the gateway's ``PROMETHEUS_MULTIPROC_DIR`` instead, and its metrics are in the gateway's
``/metrics``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from gateway.cli.database import CommandError, check_url, database_options, display_url, upgrade

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.delivery.client import OperatorClients
    from gateway.delivery.worker import Worker
    from gateway.message.schema_registry import SchemaRegistry

FAILED = 2
STOPPED = 143  # SIGTERM while waiting for the database: nothing was started
DATABASE_WAIT_MAX_S = 30.0
T = TypeVar("T")
log = logging.getLogger("tiss_gateway.worker")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", parents=[database_options()],
                                   help="entrega às operadoras e acompanha os protocolos")
    parser.add_argument("--threads", type=int, default=4,
                        help="entregas em paralelo neste processo (padrão 4)")
    parser.add_argument("--demo", action="store_true",
                        help="a configuração demo (operadoras simuladas de `simulate --all` na porta 9000)")
    parser.add_argument("--simulator", default="127.0.0.1:9000", metavar="HOST:PORT",
                        help="com --demo: onde está o admin do simulador (operadoras nas portas seguintes)")
    parser.add_argument("--metrics-bind", metavar="HOST:PORT",
                        help="serve as métricas deste worker em http://HOST:PORT/metrics (Prometheus)")
    parser.add_argument("--log-format", choices=("json", "texto"),
                        help="logs em JSON, um objeto por linha, ou texto (padrão: [logs] formato, json)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gateway import server
    from gateway.config import ConfigError
    from gateway.delivery.client import OperatorClients
    from gateway.delivery.leases import Heartbeat
    from gateway.delivery.worker import Worker, worker_name
    from gateway.message.schema_registry import SchemaRegistry
    from gateway.observability import logs, metrics, stack_dump
    from gateway.security import vault
    from gateway.storage import db

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        config = server.build_config(args.config, args.database, args.demo, simulator=args.simulator)
        logs.configure_logging((args.log_format or config.logs.formato) == "json", config.logs.nivel)
        url = check_url(db.database_url(config))  # the config holds --database, if given
        vault.check()
        # --demo: migrated and seeded by server.prepare; --database: unchanged, the caller migrates it
        migrating = (lambda: server.prepare(config)) if args.demo else None if args.database else \
            (lambda: upgrade(url))
        if migrating is not None and _when_database_up(migrating, url, stop) is None:
            return STOPPED
        if args.metrics_bind:
            _serve_metrics(args.metrics_bind)
    except (ConfigError, CommandError, vault.ChaveInvalida) as exc:
        print(exc, file=sys.stderr)
        return FAILED
    except OSError as exc:  # --metrics-bind: address in use
        print(f"--metrics-bind {args.metrics_bind}: {exc.strerror or exc}", file=sys.stderr)
        return FAILED
    registry = SchemaRegistry()
    db.expect_threads(max(1, args.threads))  # a connection per thread, before the engine is made
    sessions = db.session_factory(db.make_engine(url))
    adapters = server.load_adapters(config, registry)
    stack_dump.install()  # kill -USR1: every thread's stack to stderr
    name = worker_name()
    clients = OperatorClients(config)
    workers = [Worker(config, registry, sessions, adapters, name=f"{name}/{i}", clients=clients)
               for i in range(max(1, args.threads))]
    # Daemons: a thread stuck in a post past parada_s must not keep the process alive.
    threads = [threading.Thread(target=w.run, args=(stop,), name=f"worker-{i}", daemon=True)
               for i, w in enumerate(workers)]
    log.info("worker %s: %s linha(s), banco %s", name, len(threads), display_url(url))
    threading.Thread(target=_warm_up, args=(config, registry, clients), name="warm-up", daemon=True).start()
    heartbeat = Heartbeat(sessions, lambda: [(w.name, w.holding) for w in workers], config.entregas).start()
    for thread in threads:
        thread.start()
    stop.wait()
    _stop_within(config.entregas.parada_s, workers, threads)
    heartbeat.stop()
    clients.close()
    metrics.mark_process_dead(os.getpid())  # a shared metrics directory: this process's gauges go
    return 0


def _stop_within(bound: float, workers: Sequence[Worker], threads: Sequence[threading.Thread]) -> None:
    """Wait up to ``bound`` seconds for the threads to finish what they hold (they claim nothing
    more and give back what they have not sent); then give back, as of unknown outcome, whatever
    a thread is still posting, and go: no lease is left for a takeover to wait out."""
    started = time.monotonic()
    deadline = started + max(0.0, bound - 1.0)  # a second kept for giving back and exiting
    log.info("parando: nada mais será reservado; saída em até %.0f s", bound)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [w for w, t in zip(workers, threads, strict=True) if t.is_alive()]
    for worker in stuck:
        try:
            worker.abandon()
        except Exception as exc:  # the database: the lease runs out (reserva_s) instead
            log.error("worker %s: não foi possível devolver as entregas em curso: %s", worker.name, exc)
    log.info("worker parado em %.1f s (%s linha(s) interrompida(s) no envio)", time.monotonic() - started,
             len(stuck))


def _when_database_up(step: Callable[[], T], url: str, stop: threading.Event) -> T | None:
    """``step`` once the database answers: while it cannot be reached, one line per try (no
    traceback), backing off from 0.5 s to 30 s; None if stopped meanwhile."""
    from sqlalchemy.exc import OperationalError

    wait = 0.5
    while True:
        try:
            return step()
        except (OperationalError, CommandError) as exc:
            if isinstance(exc, CommandError) and not isinstance(exc.__context__, OperationalError):
                raise  # not the database being away: a wrong URL, a failed migration...
            cause = exc.__context__ if isinstance(exc, CommandError) else exc
            print(f"banco de dados {display_url(url)} indisponível ({_first_line(cause)}); nova tentativa "
                  f"em {wait:.1f} s", file=sys.stderr, flush=True)
        if stop.wait(wait):
            return None
        wait = min(DATABASE_WAIT_MAX_S, wait * 2)


def _first_line(exc: BaseException | None) -> str:
    text = str(getattr(exc, "orig", None) or exc or "").strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _warm_up(config: Config, registry: SchemaRegistry, clients: OperatorClients) -> None:
    """Compile the web services' schemas of the versions the operators take and read the WSDLs of
    lotes and status now, so that the first deliveries do not pay for them (~0.3 s a version,
    ~0.06 s a WSDL)."""
    versoes = {v for operadora in config.operadoras.values() for v in operadora.enderecos}
    for versao in sorted(versoes & set(registry.versions())):
        try:
            registry.schema(versao, "loteGuiasWS")
        except Exception:  # the deliveries in that version fail and log it too
            log.exception("schemas da versão %s não compilaram", versao)
    for service in ("tissLoteGuias", "tissSolicitacaoStatusProtocolo"):  # every lote is tracked
        clients.warm_up(service)


def _serve_metrics(bind: str) -> None:
    """``/metrics`` of this process on a daemon thread (the shared directory's sum if inherited)."""
    from prometheus_client import start_http_server

    from gateway.observability import metrics

    host, _sep, port = bind.rpartition(":")
    if not port.isdigit():
        raise CommandError(f"--metrics-bind deve ser HOST:PORTA: {bind!r}")
    start_http_server(int(port), addr=host or "127.0.0.1", registry=metrics.base_registry())
    log.info("métricas do worker em http://%s/metrics", bind)
