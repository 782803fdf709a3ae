"""``tiss-gateway serve``: the SOAP front under gunicorn."""

import argparse
import os
from pathlib import Path

from gateway.config import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve os web services TISS (gunicorn)")
    parser.add_argument("--bind", default="127.0.0.1:8080", metavar="HOST:PORT")
    parser.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 1)))
    parser.add_argument("--database", metavar="URL", help="URL SQLAlchemy (padrão: SQLite no HOME)")
    parser.add_argument("--config", type=Path, metavar="FILE")
    parser.add_argument("--demo", action="store_true",
                        help="as cinco operadoras dos manuais e o prestador demo (login demo/demo)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gateway import server  # gunicorn and the app load only for this command

    try:
        config = server.build_config(args.config, args.database, args.demo)
    except ConfigError as exc:
        print(f"configuração inválida: {exc}")
        return 2
    if args.demo:
        print("modo demo: prestador CNPJ 11222333000181, login demo, senha demo; operadoras "
              + ", ".join(f"{o.registro_ans} {o.nome}" for o in config.operadoras.values()))
    server.serve(config, bind=args.bind, workers=args.workers)
    return 0
