"""``tiss-gateway usuario add|list|disable|enable``: the people who sign in to the web console.

``usuario add LOGIN --nome NOME --papel admin|operador|prestador [--prestador CNPJ] [--senha-stdin]``:
without ``--senha-stdin`` the password is asked twice on the terminal (never a command-line
argument: other local users could read it). Roles: ``admin`` and ``operador`` see everything and
retry dead deliveries; ``prestador`` sees only the data of its provider (``--prestador``, CNPJ/CPF or
the provider's login). ``add``, ``disable`` and ``enable`` migrate the database first; ``list`` only
reads it (see gateway.cli.database). Passwords and hashes are never printed. ``disable`` also ends
the user's open sessions.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.cli.database import REFUSED, database_options, with_session

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gateway.storage.models import Usuario

PAPEIS = ("admin", "operador", "prestador")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("usuario", help="usuários do console web (/console)")
    commands = parser.add_subparsers(dest="usuario_command", required=True)
    options = database_options()

    add = commands.add_parser("add", parents=[options], help="cadastra um usuário do console")
    add.add_argument("login")
    add.add_argument("--nome", required=True)
    add.add_argument("--papel", required=True, choices=PAPEIS,
                     help="admin e operador veem tudo e reenviam entregas; prestador vê só o seu prestador")
    add.add_argument("--prestador", metavar="CNPJ",
                     help="com --papel prestador: CNPJ/CPF (ou login) do prestador")
    add.add_argument("--senha-stdin", action="store_true",
                     help="lê a senha da primeira linha da entrada (sem ela, pergunta no terminal)")
    add.set_defaults(run=run_add)

    listing = commands.add_parser("list", parents=[options], help="lista os usuários")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)

    disable = commands.add_parser("disable", parents=[options], help="recusa todo login e encerra as sessões")
    disable.add_argument("login")
    disable.set_defaults(run=run_disable)

    enable = commands.add_parser("enable", parents=[options],
                                 help="reativa e desfaz um bloqueio por tentativas")
    enable.add_argument("login")
    enable.set_defaults(run=run_enable)


def _with_session(args: argparse.Namespace, action: Callable[[Session], str], *, write: bool) -> int:
    from gateway.console.usuarios import UsuarioError

    return with_session(args, action, refused=UsuarioError, write=write)


def _senha(args: argparse.Namespace) -> str | None:
    if args.senha_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("recusado: sem terminal para perguntar a senha; use --senha-stdin", file=sys.stderr)
        return None
    senha = getpass.getpass("Senha: ")
    if senha != getpass.getpass("Repita a senha: "):
        print("recusado: as senhas não conferem", file=sys.stderr)
        return None
    return senha


def run_add(args: argparse.Namespace) -> int:
    senha = _senha(args)
    if senha is None:
        return REFUSED
    if not senha:
        print("recusado: senha vazia", file=sys.stderr)
        return REFUSED

    def action(session: Session) -> str:
        from gateway.console.usuarios import add_usuario

        usuario = add_usuario(session, args.login, args.nome, args.papel, senha, args.prestador)
        dono = f" do prestador {usuario.prestador.nome}" if usuario.prestador is not None else ""
        return f"usuário {usuario.login} cadastrado (papel {usuario.papel}{dono})"

    return _with_session(args, action, write=True)


def _as_dict(usuario: Usuario) -> dict[str, object]:
    return {
        "login": usuario.login,
        "nome": usuario.nome,
        "papel": usuario.papel,
        "prestador": usuario.prestador.documento if usuario.prestador is not None else None,
        "ativo": usuario.ativo,
        "falhas_login": usuario.falhas_login,
        "bloqueado_ate": usuario.bloqueado_ate.isoformat() if usuario.bloqueado_ate else None,
        "ultimo_acesso_em": usuario.ultimo_acesso_em.isoformat() if usuario.ultimo_acesso_em else None,
        "criado_em": usuario.criado_em.isoformat(),
    }


def run_list(args: argparse.Namespace) -> int:
    def action(session: Session) -> str:
        from gateway.console.usuarios import list_usuarios

        rows = [_as_dict(u) for u in list_usuarios(session)]
        if args.json:
            return json.dumps(rows, ensure_ascii=False, indent=2)
        if not rows:
            return ("nenhum usuário cadastrado (crie o primeiro: "
                    "tiss-gateway usuario add LOGIN --nome NOME --papel admin)")
        lines = []
        for row in rows:
            estado = "ativo" if row["ativo"] else "DESATIVADO"
            if row["bloqueado_ate"]:
                estado += f", bloqueado até {row['bloqueado_ate']}"
            prestador = f"  [prestador {row['prestador']}]" if row["prestador"] else ""
            lines.append(f"{row['login']:<20}  {row['papel']:<9}  {estado:<10}  {row['nome']}{prestador}")
        return "\n".join(lines)

    return _with_session(args, action, write=False)


def run_disable(args: argparse.Namespace) -> int:
    def action(session: Session) -> str:
        from gateway.console.usuarios import disable_usuario

        return f"usuário {disable_usuario(session, args.login).login} desativado (sessões encerradas)"

    return _with_session(args, action, write=True)


def run_enable(args: argparse.Namespace) -> int:
    def action(session: Session) -> str:
        from gateway.console.usuarios import enable_usuario

        return f"usuário {enable_usuario(session, args.login).login} ativo (bloqueio e falhas zerados)"

    return _with_session(args, action, write=True)
