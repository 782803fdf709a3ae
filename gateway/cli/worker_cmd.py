"""``tiss-gateway worker``: delivers accepted messages to the operators and tracks their protocols.

Run as many as you like, on as many hosts as share the database; each claims its own deliveries.
SIGTERM/SIGINT finish the delivery in hand and stop.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from gateway.cli.db_cmd import CommandError, database_options, display_url, upgraded_url

FAILED = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", parents=[database_options()],
                                   help="entrega às operadoras e acompanha os protocolos")
    parser.add_argument("--threads", type=int, default=4,
                        help="entregas em paralelo neste processo (padrão 4)")
    parser.add_argument("--demo", action="store_true",
                        help="a configuração demo (operadoras simuladas de `simulate --all` na porta 9000)")
    parser.add_argument("--simulator", default="127.0.0.1:9000", metavar="HOST:PORT",
                        help="com --demo: onde está o admin do simulador (operadoras nas portas seguintes)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gateway import server
    from gateway.config import ConfigError
    from gateway.delivery.client import OperatorClients
    from gateway.delivery.worker import Worker, worker_name
    from gateway.message.schema_registry import SchemaRegistry
    from gateway.storage import db

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = server.build_config(args.config, args.database, args.demo, simulator=args.simulator)
        url = args.database or (db.database_url(config) if args.demo else upgraded_url(args))
        if args.demo:
            server.prepare(config)
    except (ConfigError, CommandError) as exc:
        print(exc, file=sys.stderr)
        return FAILED
    registry = SchemaRegistry()
    sessions = db.session_factory(db.make_engine(url))
    adapters = server.load_adapters(config, registry)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    name = worker_name()
    clients = OperatorClients(config)
    threads = [threading.Thread(target=Worker(config, registry, sessions, adapters, name=f"{name}/{i}",
                                              clients=clients).run,
                                args=(stop,), name=f"worker-{i}") for i in range(max(1, args.threads))]
    print(f"worker {name}: {len(threads)} linha(s), banco {display_url(url)}", flush=True)
    threading.Thread(target=clients.warm_up, name="wsdl-warm-up", daemon=True).start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clients.close()
    return 0
