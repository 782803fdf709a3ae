"""``tiss-gateway serve``: the SOAP front under gunicorn.

With ``--demo`` it also starts, as child processes, the five simulated operators
(``simulate --all`` on 127.0.0.1:9000-9005, clock at 3600x: a simulated hour per second) and a
delivery worker, so that a lote sent to the demo walks to "Pagamento efetuado" in minutes.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from gateway.config import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve os web services TISS (gunicorn)")
    parser.add_argument("--bind", default="127.0.0.1:8080", metavar="HOST:PORT")
    parser.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 1)))
    parser.add_argument("--database", metavar="URL", help="URL SQLAlchemy (padrão: SQLite no HOME)")
    parser.add_argument("--config", type=Path, metavar="FILE")
    parser.add_argument("--demo", action="store_true",
                        help="as cinco operadoras dos manuais e o prestador demo (login demo/demo), com "
                             "as operadoras simuladas e um worker")
    parser.add_argument("--no-simulator", action="store_true",
                        help="com --demo: não sobe as operadoras simuladas nem o worker")
    parser.add_argument("--simulator", default="127.0.0.1:9000", metavar="HOST:PORT",
                        help="com --demo: admin das operadoras simuladas (operadoras nas 5 portas seguintes)")
    parser.add_argument("--time-scale", type=float, default=3600.0,
                        help="com --demo: velocidade do relógio das operadoras simuladas (padrão 3600)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gateway import server  # gunicorn and the app load only for this command

    companions: list[subprocess.Popen] = []
    try:
        if args.demo and not args.no_simulator:
            companions.append(_start_simulator(args))
            _demo_certificate()
        config = server.build_config(args.config, args.database, args.demo, simulator=args.simulator)
        if args.demo:
            print("modo demo: prestador CNPJ 11222333000181, login demo, senha demo; operadoras "
                  + ", ".join(f"{o.registro_ans} {o.nome}" for o in config.operadoras.values()), flush=True)
        url = server.prepare(config)  # before the worker starts on the same database
        if args.demo and not args.no_simulator:
            companions.append(_start_worker(args, url))
        server.serve(config, bind=args.bind, workers=args.workers, url=url)
    except ConfigError as exc:
        print(f"configuração inválida: {exc}")
        return 2
    except CompanionError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        for process in companions:
            process.terminate()
        for process in companions:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


class CompanionError(RuntimeError):
    pass


_CLI = [sys.executable, "-m", "gateway.cli"]


def _start_simulator(args: argparse.Namespace) -> subprocess.Popen:
    """``simulate --all``, once its admin answers."""
    simulator = subprocess.Popen([*_CLI, "simulate", "--all", "--bind", args.simulator,
                                  "--time-scale", str(args.time_scale)])
    deadline = time.monotonic() + 60
    while True:
        if simulator.poll() is not None:
            raise CompanionError(f"as operadoras simuladas não subiram em {args.simulator} "
                                 "(porta ocupada? use --simulator HOST:PORT ou --no-simulator)")
        try:
            if requests.get(f"http://{args.simulator}/admin/state", timeout=2).ok:
                return simulator
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            simulator.terminate()
            raise CompanionError(f"as operadoras simuladas não responderam em {args.simulator}")
        time.sleep(0.3)


def _demo_certificate() -> None:
    """The demo provider's e-CNPJ from the simulator's sandbox AC (made once, reused)."""
    from gateway.config import DEMO_CERTIFICADO, DEMO_CNPJ, demo_certificado
    from gateway.home import gateway_home
    from gateway.security import pki

    authority = pki.load_authority(gateway_home() / "simulator" / "runtime")
    chave, certificados = demo_certificado()
    if chave.is_file() and certificados.is_file() and \
            pki.load_leaf(chave.parent, DEMO_CERTIFICADO[1]).chain_pem[1:] == authority.chain_pem:
        return
    chave.parent.mkdir(parents=True, exist_ok=True)
    authority.issue("Clínica Demonstração", cnpj=DEMO_CNPJ).save(chave.parent, DEMO_CERTIFICADO[1])


def _start_worker(args: argparse.Namespace, database_url: str) -> subprocess.Popen:
    return subprocess.Popen([*_CLI, "worker", "--demo", "--simulator", args.simulator,
                             "--database", database_url, "--threads", "2"])
