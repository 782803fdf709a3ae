"""``tiss-gateway worker``: delivers accepted messages to the operators and tracks their protocols.

Run as many as you like, on as many hosts as share the database; each claims its own deliveries.
SIGTERM/SIGINT finish the delivery in hand and stop.

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
from typing import TYPE_CHECKING

from gateway.cli.database import CommandError, check_url, database_options, display_url, upgrade

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.delivery.client import OperatorClients
    from gateway.message.schema_registry import SchemaRegistry

FAILED = 2
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
    from gateway.delivery.worker import Worker, worker_name
    from gateway.message.schema_registry import SchemaRegistry
    from gateway.observability import logs, metrics, stack_dump
    from gateway.storage import db

    try:
        config = server.build_config(args.config, args.database, args.demo, simulator=args.simulator)
        logs.configure_logging((args.log_format or config.logs.formato) == "json", config.logs.nivel)
        url = check_url(db.database_url(config))  # the config holds --database, if given
        if not (args.database or args.demo):  # unchanged: those are migrated by server.prepare or the caller
            upgrade(url)
        if args.demo:
            server.prepare(config)
        if args.metrics_bind:
            _serve_metrics(args.metrics_bind)
    except (ConfigError, CommandError) as exc:
        print(exc, file=sys.stderr)
        return FAILED
    except OSError as exc:  # --metrics-bind: address in use
        print(f"--metrics-bind {args.metrics_bind}: {exc.strerror or exc}", file=sys.stderr)
        return FAILED
    registry = SchemaRegistry()
    db.expect_threads(max(1, args.threads))  # a connection per thread, before the engine is made
    sessions = db.session_factory(db.make_engine(url))
    adapters = server.load_adapters(config, registry)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stack_dump.install()  # kill -USR1: every thread's stack to stderr
    name = worker_name()
    clients = OperatorClients(config)
    threads = [threading.Thread(target=Worker(config, registry, sessions, adapters, name=f"{name}/{i}",
                                              clients=clients).run,
                                args=(stop,), name=f"worker-{i}") for i in range(max(1, args.threads))]
    log.info("worker %s: %s linha(s), banco %s", name, len(threads), display_url(url))
    threading.Thread(target=_warm_up, args=(config, registry, clients), name="warm-up", daemon=True).start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clients.close()
    metrics.mark_process_dead(os.getpid())  # a shared metrics directory: this process's gauges go
    return 0


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
