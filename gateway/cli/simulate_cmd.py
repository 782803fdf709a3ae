"""``tiss-gateway simulate OPERADORA ...|--all``: the simulated operators (a sandbox).

The simulator lives in the top-level ``simulator`` package, apart from the gateway's forwarding
code; it is imported only when this command runs.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

USAGE_ERROR = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate", help="simula operadoras (sandbox): os 12 serviços TISS, falhas injetáveis",
        description="Sobe operadoras simuladas, cada uma na sua porta (admin na porta de --bind, "
                    "operadoras nas seguintes). API de administração em /admin/state.")
    parser.add_argument("operators", nargs="*", metavar="OPERADORA",
                        help="chave do perfil (capitalprev, pasa, unimed, cassems, ipasgo)")
    parser.add_argument("--all", action="store_true", help="todas as operadoras com perfil")
    parser.add_argument("--bind", default="127.0.0.1:9000", metavar="HOST:PORT",
                        help="admin em PORT, operadoras em PORT+1, PORT+2...; porta 0: portas livres "
                             "quaisquer (padrão: 127.0.0.1:9000)")
    parser.add_argument("--database", metavar="URL",
                        help="URL SQLAlchemy (padrão: sqlite em <home>/simulator.sqlite)")
    parser.add_argument("--home", type=Path, metavar="DIR",
                        help="pasta do simulador: banco, certificados (padrão: $TISS_GATEWAY_HOME/simulator)")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="velocidade do relógio simulado: 1 = real, 3600 = 1 s vale 1 h, 0 = parado "
                             "(só avança por /admin/clock/advance)")
    parser.add_argument("--start", metavar="DATA", type=_moment,
                        help="momento simulado inicial, ISO (hora de Brasília se sem fuso; padrão: agora)")
    parser.add_argument("--seed", type=int, default=0, help="semente das glosas e das falhas (padrão 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gateway.observability import stack_dump
    from simulator import server
    from simulator.profile import PROFILE_KEYS

    keys = list(PROFILE_KEYS) if args.all else _unique(args.operators)
    if not keys or (args.all and args.operators):
        problem = "informe as operadoras ou --all, não ambos" if keys else "informe as operadoras ou --all"
        print(f"{problem} (perfis: {', '.join(PROFILE_KEYS)})", file=sys.stderr)
        return USAGE_ERROR
    unknown = [k for k in keys if k not in PROFILE_KEYS]
    if unknown:
        print(f"operadora desconhecida: {', '.join(unknown)} (perfis: {', '.join(PROFILE_KEYS)})",
              file=sys.stderr)
        return USAGE_ERROR
    if args.time_scale < 0:
        print("--time-scale deve ser >= 0", file=sys.stderr)
        return USAGE_ERROR
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    # Spyne logs a traceback for every client fault (the operator's answer already says it) and a
    # line per operator at start.
    logging.getLogger("spyne").setLevel(logging.WARNING)
    logging.getLogger("spyne.application.client").setLevel(logging.CRITICAL)
    home = server.simulator_home(args.home)
    home.mkdir(parents=True, exist_ok=True)
    database = args.database or f"sqlite:///{(home / 'simulator.sqlite').resolve()}"
    try:
        host, port = server.parse_bind(args.bind)
        simulator = server.build(keys, host=host, port=port, database_url=database, home=home,
                                 time_scale=args.time_scale, seed=args.seed, start=args.start)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        stack_dump.install()  # kill -USR1: every thread's stack to stderr
        server.run(simulator, stop)
    except server.StartupError as exc:
        print(f"simulador: {exc}", file=sys.stderr)
        return USAGE_ERROR
    return 0


def _unique(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(k.strip().lower() for k in keys))


def _moment(text: str) -> datetime:
    from simulator.clock import BRASILIA

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"data inválida: {text!r} (ex.: 2025-03-10T08:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=BRASILIA)

