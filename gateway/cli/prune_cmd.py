"""``tiss-gateway prune``: empty message bodies past their retention age, drop old access logs.

The rows stay (metadata, hashes, protocols, lotes, guides, críticas); see
gateway.storage.retention for what is kept and why. Run it from cron, e.g. nightly. Like every
command that writes it migrates the database first; ``--dry-run`` only reads it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TYPE_CHECKING

from gateway.cli.database import FAILED, OK, database_options, with_database

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune", parents=[database_options()],
        help="remove corpos de mensagens antigas (mantém os registros) e auditoria além do prazo")
    parser.add_argument("--older-than", type=int, metavar="DIAS",
                        help="idade dos corpos removidos (padrão: [retencao] corpo_dias, 180)")
    parser.add_argument("--dry-run", action="store_true", help="só conta o que seria removido")
    parser.add_argument("--json", action="store_true", help="o resultado em JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load_config
    from gateway.storage import retention

    if args.older_than is not None and args.older_than < 1:
        print("--older-than deve ser ao menos 1 dia", file=sys.stderr)
        return FAILED
    try:
        settings = load_config(args.config).retencao
    except ConfigError as exc:
        print(f"configuração inválida: {exc}", file=sys.stderr)
        return FAILED

    def action(sessions: sessionmaker[Session]) -> retention.PruneReport:
        return retention.prune(sessions, settings, corpo_dias=args.older_than, dry_run=args.dry_run,
                               quem=f"cli:{_user()}")

    def show(report: retention.PruneReport) -> int:
        print(json.dumps(report.as_dict(), ensure_ascii=False) if args.json else _text(report))
        return OK

    return with_database(args, action, show, write=not args.dry_run)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "desconhecido"


def _text(report) -> str:
    verb = "seriam" if report.dry_run else "foram"
    return "\n".join([
        f"mensagens anteriores a {report.corpo_antes_de:%Y-%m-%d %H:%M} UTC: {report.mensagens} corpo(s) "
        f"{verb} esvaziado(s) ({report.bytes / 1024 / 1024:.1f} MiB); {report.mantidas} mantido(s) "
        "(entregas pendentes, situações, demonstrativos)",
        f"entregas concluídas: {report.entregas} corpo(s) preparado(s) {verb} esvaziado(s)",
        f"auditoria anterior a {report.auditoria_antes_de:%Y-%m-%d} (mínimo 90 dias): {report.auditoria} "
        f"registro(s) {verb} removido(s)",
        *(["(simulação: nada foi alterado)"] if report.dry_run else []),
    ])
