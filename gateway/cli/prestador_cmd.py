"""``tiss-gateway prestador add|list|disable|enable``: providers allowed to use the gateway.

``add``, ``disable`` and ``enable`` migrate the database first; ``list`` only reads it (see
gateway.cli.database). Passwords and their hashes are never printed; prefer
``--senha-stdin`` to ``--senha`` (a command-line argument is visible to other local users).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.cli.database import REFUSED, database_options, with_session

if TYPE_CHECKING:  # imported when a command runs, not when the parser is built
    from sqlalchemy.orm import Session

    from gateway.storage.models import Prestador



def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("prestador", help="prestadores (login, senha, códigos nas operadoras)")
    commands = parser.add_subparsers(dest="prestador_command", required=True)
    options = database_options()

    add = commands.add_parser("add", parents=[options], help="cadastra um prestador")
    add.add_argument("--documento", required=True, help="CNPJ (14) ou CPF (11)")
    add.add_argument("--nome", required=True)
    add.add_argument("--login", required=True, help="loginPrestador (até 20 caracteres)")
    senha = add.add_mutually_exclusive_group(required=True)
    senha.add_argument("--senha",
                       help="senha em claro (visível na lista de processos: prefira --senha-stdin)")
    senha.add_argument("--senha-stdin", action="store_true", help="lê a senha da primeira linha da entrada")
    add.add_argument("--codigo", action="append", default=[], metavar="REGISTRO=CODIGO",
                     help="código do prestador na operadora (repetível)")
    add.set_defaults(run=run_add)

    listing = commands.add_parser("list", parents=[options], help="lista os prestadores")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)

    disable = commands.add_parser("disable", parents=[options], help="recusa todo login do prestador")
    disable.add_argument("login")
    disable.set_defaults(run=run_disable)

    enable = commands.add_parser("enable", parents=[options],
                                 help="reativa o prestador e desfaz um bloqueio por tentativas")
    enable.add_argument("login")
    enable.set_defaults(run=run_enable)


def _codigos(values: list[str]) -> dict[str, str]:
    from gateway.prestadores import PrestadorError

    codigos: dict[str, str] = {}
    for value in values:
        registro, sep, codigo = value.partition("=")
        if not sep or not registro.strip() or not codigo.strip():
            raise PrestadorError(f"--codigo deve ser REGISTRO=CODIGO (ex.: 329665=000123): {value!r}")
        if registro.strip() in codigos:
            raise PrestadorError(f"--codigo repetido para a operadora {registro.strip()}")
        codigos[registro.strip()] = codigo.strip()
    return codigos


def _with_session(args: argparse.Namespace, action: Callable[[Session], str], *, write: bool) -> int:
    """Run ``action`` in a transaction (``write``: on the migrated database, committed), then print
    what it returned."""
    from gateway.prestadores import PrestadorError

    return with_session(args, action, refused=PrestadorError, write=write)


def run_add(args: argparse.Namespace) -> int:
    if args.senha_stdin:
        senha = sys.stdin.readline().rstrip("\r\n")
        if not senha:
            print("recusado: senha vazia na entrada padrão", file=sys.stderr)
            return REFUSED
    else:
        senha = args.senha
        if not senha:
            print("recusado: senha vazia", file=sys.stderr)
            return REFUSED

    def action(session: Session) -> str:
        from gateway.prestadores import add_prestador

        codigos = _codigos(args.codigo)
        prestador = add_prestador(session, args.documento, args.nome, args.login, senha, codigos)
        listed = ", ".join(f"{c.registro_ans}={c.codigo_na_operadora}" for c in prestador.codigos)
        return (f"prestador {prestador.login} cadastrado ({prestador.tipo_documento} {prestador.documento})"
                + (f"; códigos: {listed}" if listed else ""))

    return _with_session(args, action, write=True)


def _as_dict(prestador: Prestador) -> dict[str, Any]:
    return {
        "login": prestador.login,
        "documento": prestador.documento,
        "tipo_documento": prestador.tipo_documento,
        "nome": prestador.nome,
        "ativo": prestador.ativo,
        "tem_senha": prestador.senha_hash is not None,
        "falhas_login": prestador.falhas_login,
        "bloqueado_ate": prestador.bloqueado_ate.isoformat() if prestador.bloqueado_ate else None,
        "codigos": {c.registro_ans: c.codigo_na_operadora for c in prestador.codigos},
        "criado_em": prestador.criado_em.isoformat(),
    }


def run_list(args: argparse.Namespace) -> int:
    def action(session: Session) -> str:
        from gateway.prestadores import list_prestadores

        rows = [_as_dict(p) for p in list_prestadores(session)]
        if args.json:
            return json.dumps(rows, ensure_ascii=False, indent=2)
        if not rows:
            return "nenhum prestador cadastrado"
        lines = []
        for row in rows:
            estado = "ativo" if row["ativo"] else "DESATIVADO"
            if row["bloqueado_ate"]:
                estado += f", bloqueado até {row['bloqueado_ate']}"
            codigos = ", ".join(f"{k}={v}" for k, v in row["codigos"].items()) or "-"
            lines.append(f"{row['login']:<20}  {row['tipo_documento']:<4} {row['documento']:<14}  "
                         f"{estado:<10}  {row['nome']}  [códigos: {codigos}]")
        return "\n".join(lines)

    return _with_session(args, action, write=False)


def run_disable(args: argparse.Namespace) -> int:
    def action(session: Session) -> str:
        from gateway.prestadores import disable_prestador

        return f"prestador {disable_prestador(session, args.login).login} desativado"

    return _with_session(args, action, write=True)


def run_enable(args: argparse.Namespace) -> int:
    def action(session: Session) -> str:
        from gateway.prestadores import enable_prestador

        prestador = enable_prestador(session, args.login)
        return f"prestador {prestador.login} ativo (bloqueio e contador de falhas zerados)"

    return _with_session(args, action, write=True)
