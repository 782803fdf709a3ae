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
from dataclasses import replace
from pathlib import Path

import requests

from gateway.config import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve os web services TISS (gunicorn)")
    parser.add_argument("--bind", metavar="HOST:PORT",
                        help="padrão: $TISS_GATEWAY_BIND ou 127.0.0.1:8080")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="padrão: $TISS_GATEWAY_WORKERS ou 2 × núcleos + 1 (até 8)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="requisições simultâneas por worker (gthread); padrão: $TISS_GATEWAY_THREADS "
                             "ou 8. Prazos de leitura: $TISS_GATEWAY_HEADER_TIMEOUT, "
                             "$TISS_GATEWAY_BODY_TIMEOUT...")
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
    parser.add_argument("--log-format", choices=("json", "texto"),
                        help="logs em JSON, um objeto por linha, ou texto (padrão: [logs] formato, json)")
    tls = parser.add_argument_group("TLS (gunicorn; ou termine o TLS num proxy reverso)")
    tls.add_argument("--certfile", metavar="PEM", help="certificado do servidor (e a cadeia)")
    tls.add_argument("--keyfile", metavar="PEM", help="chave privada do servidor")
    tls.add_argument("--ca-certs", metavar="PEM",
                     help="ACs dos certificados de cliente: pede e verifica o certificado do cliente "
                          "(exigido por prestador com certificado_cliente na configuração)")
    tls.add_argument("--require-client-cert", action="store_true",
                     help="recusa no TLS todo cliente sem certificado emitido por --ca-certs")
    parser.set_defaults(run=run)


def _tls(args: argparse.Namespace):
    from gateway.deploy_settings import Tls

    if args.certfile is None and args.keyfile is None and args.ca_certs is None \
            and not args.require_client_cert:
        return Tls.from_env()
    return Tls(args.certfile, args.keyfile, args.ca_certs, args.require_client_cert)


def run(args: argparse.Namespace) -> int:
    from gateway import deploy_settings, server  # gunicorn and the app load only for this command
    from gateway.observability import metrics

    companions: list[subprocess.Popen] = []
    parent = os.getpid()
    try:
        if args.demo and not args.no_simulator:
            companions.append(_start_simulator(args))
            _demo_certificate()
        config = server.build_config(args.config, args.database, args.demo, simulator=args.simulator)
        if args.log_format:
            config = replace(config, logs=replace(config.logs, formato=args.log_format))
        if args.demo:
            print("modo demo: prestador CNPJ 11222333000181, login demo, senha demo; operadoras "
                  + ", ".join(f"{o.registro_ans} {o.nome}" for o in config.operadoras.values()), flush=True)
        bind = args.bind or os.environ.get(deploy_settings.BIND_ENV) or deploy_settings.DEFAULT_BIND
        workers = args.workers or deploy_settings.workers()
        if args.threads is not None:  # gunicorn_options reads it there, as gunicorn.conf.py does
            os.environ[deploy_settings.THREADS_ENV] = str(args.threads)
        tls = _tls(args)
        deploy_settings.gunicorn_options(config, bind=bind, workers=workers, tls=tls)  # fail before starting
        url = server.prepare(config)  # before the worker starts on the same database
        if args.demo and config.console.habilitado:
            from gateway.console.usuarios import seed_demo_database

            seed_demo_database(url)
            print(f"console web: http://{bind}/console (usuário demo, senha demo, papel admin)", flush=True)
        if args.demo and not args.no_simulator:
            metrics.prepare_multiprocess_dir(config.metricas.diretorio)  # the worker writes there too
            companions.append(_start_worker(args, url))
        server.serve(config, bind=bind, workers=workers, url=url, tls=tls)
    except ConfigError as exc:
        print(f"configuração inválida: {exc}")
        return 2
    except ValueError as exc:  # TLS files, TISS_GATEWAY_WORKERS...
        print(exc, file=sys.stderr)
        return 2
    except CompanionError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        # gunicorn's workers are forks of this process and unwind this block when they exit (a
        # recycled worker too): only the process that started the companions stops them.
        if os.getpid() == parent:
            for process in companions:
                process.terminate()
            for process in companions:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            metrics.remove_multiprocess_dir()  # a temporary one, once nobody writes to it
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
