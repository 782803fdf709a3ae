"""``tiss-gateway serve``: the SOAP front under gunicorn.

With ``--demo`` it also starts, as child processes, the five simulated operators
(``simulate --all`` on 127.0.0.1:9000-9005, clock at 3600x: a simulated hour per second) and a
delivery worker, so that a lote sent to the demo walks to "Pagamento efetuado" in minutes. Their
ports are checked first (gateway.cli.demo); the gunicorn arbiter supervises them
(gateway.cli.supervisor): one that dies is restarted, one that keeps dying ends the demo.

Binds, TLS files, read deadlines and the database URL are checked before anything starts: each
problem is one line on stderr and exit status 2.
"""

import argparse
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli import demo
from gateway.cli.database import CommandError, check_url, display_url, short_error
from gateway.cli.demo import CompanionError
from gateway.cli.supervisor import GiveUp, Supervisor
from gateway.config import ConfigError

if TYPE_CHECKING:
    from gateway.config import Config

USAGE_ERROR = 2


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
    from gateway.observability import metrics

    parent = os.getpid()
    supervisor = Supervisor(on_give_up=_interrupt)
    try:
        _serve(args, supervisor)
    except ConfigError as exc:
        print(f"configuração inválida: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except (ValueError, CommandError, CompanionError) as exc:  # TLS files, binds, database URL...
        print(exc, file=sys.stderr)
        return USAGE_ERROR
    except GiveUp as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    except (SystemExit, KeyboardInterrupt):
        # gunicorn's exit, or the supervisor's SIGINT (_interrupt) before gunicorn took the signal.
        if os.getpid() == parent and supervisor.failure is not None:
            print(supervisor.failure, file=sys.stderr)
            return supervisor.failure.exit_code
        raise
    finally:
        # gunicorn's workers are forks of this process and unwind this block when they exit (a
        # recycled worker too): only the process that started the companions stops them.
        if os.getpid() == parent:
            supervisor.stop()
            metrics.remove_multiprocess_dir()  # a temporary one, once nobody writes to it
    return 0


def _serve(args: argparse.Namespace, supervisor: Supervisor) -> None:
    from gateway import deploy_settings, server  # gunicorn and the app load only for this command
    from gateway.observability import metrics
    from gateway.security import vault
    from gateway.storage import db

    simulator = demo.simulator_ports(args.simulator) if args.demo else []  # the demo config's addresses
    config = server.build_config(args.config, args.database, args.demo, simulator=args.simulator)
    if args.log_format:
        config = replace(config, logs=replace(config.logs, formato=args.log_format))
    bind = args.bind or os.environ.get(deploy_settings.BIND_ENV) or deploy_settings.DEFAULT_BIND
    workers = args.workers or deploy_settings.workers()
    if args.threads is not None:  # gunicorn_options reads it there, as gunicorn.conf.py does
        os.environ[deploy_settings.THREADS_ENV] = str(args.threads)
    tls = _tls(args)
    deploy_settings.gunicorn_options(config, bind=bind, workers=workers, tls=tls)  # fail before starting
    deploy_settings.check_bind_host(bind)
    check_url(db.database_url(config))
    vault.check()  # ChaveInvalida (a ValueError): one line, exit 2
    companions = args.demo and not args.no_simulator
    if args.demo:  # every port free before anything starts
        demo.check_ports(demo.gateway_port(bind) + (simulator if companions else []))
    if companions:
        supervisor.add("simulador das operadoras", demo.SimulatorStarter(args.simulator, args.time_scale),
                       check=lambda: demo.check_ports(simulator))
        demo.demo_certificate()
    if args.demo:
        print("modo demo: prestador CNPJ 11222333000181, login demo, senha demo; operadoras "
              + ", ".join(f"{o.registro_ans} {o.nome}" for o in config.operadoras.values()), flush=True)
    url = _prepare(config)  # before the worker starts on the same database
    if args.demo and config.console.habilitado:
        from gateway.console.usuarios import seed_demo_database

        seed_demo_database(url)
        print(f"console web: http://{bind}/console (usuário demo, senha demo, papel admin)", flush=True)
    if companions:
        metrics.prepare_multiprocess_dir(config.metricas.diretorio)  # the worker writes there too
        supervisor.add("worker de entrega", demo.worker_starter(args.simulator, url))
        supervisor.watch()
    server.serve(config, bind=bind, workers=workers, url=url, tls=tls)


def _prepare(config: "Config") -> str:
    """:func:`gateway.server.prepare`, a database error in one line."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway import server
    from gateway.storage import db

    try:
        return server.prepare(config)
    except SQLAlchemyError as exc:
        where = display_url(db.database_url(config))
        raise CommandError(f"não foi possível preparar o banco {where}: {short_error(exc)}") from None


def _interrupt(_failure: GiveUp) -> None:
    """A child keeps dying: stop the demo as Ctrl-C would (gunicorn's quick shutdown, or a
    KeyboardInterrupt before gunicorn runs); ``run`` then prints why."""
    os.kill(os.getpid(), signal.SIGINT)
