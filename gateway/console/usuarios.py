"""Console users (table ``usuario``): add, list, disable, enable; the demo user.

Passwords are kept in the providers' scrypt format (``gateway.prestadores.hash_senha``) over the
MD5 hex of the password, so one checked, constant-time routine serves both kinds of login.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from gateway import tentativas
from gateway.message.identificacao import md5_hex, normaliza_documento
from gateway.security.senhas import hash_senha
from gateway.storage.models import PAPEIS_USUARIO, Prestador, SessaoConsole, Usuario

SENHA_MINIMA = 8
DEMO_LOGIN = DEMO_SENHA = "demo"


class UsuarioError(ValueError):
    """A user operation that cannot be done (bad login, duplicate, unknown provider...)."""


def _valida_login(login: str) -> str:
    if not login or len(login) > 60 or any(c.isspace() for c in login) or not login.isprintable():
        raise UsuarioError(f"login deve ter de 1 a 60 caracteres visíveis, sem espaços: {login!r}")
    return login


def _prestador(session: Session, documento_ou_login: str) -> Prestador:
    documento = normaliza_documento(documento_ou_login)
    found = session.scalars(select(Prestador).where(
        (Prestador.documento == documento) | (Prestador.login == documento_ou_login))).first()
    if found is None:
        raise UsuarioError(f"prestador não encontrado (CNPJ/CPF ou login): {documento_ou_login}")
    return found


def add_usuario(session: Session, login: str, nome: str, papel: str, senha: str,
                prestador: str | None = None, *, senha_minima: int = SENHA_MINIMA) -> Usuario:
    """Register a console user. ``prestador`` (CNPJ/CPF or login) is required for, and only for,
    the ``prestador`` role. Flushes; the caller commits."""
    _valida_login(login)
    if papel not in PAPEIS_USUARIO:
        raise UsuarioError(f"papel deve ser um de {', '.join(PAPEIS_USUARIO)}: {papel!r}")
    if not nome.strip():
        raise UsuarioError("nome do usuário é obrigatório")
    if len(senha) < senha_minima:
        raise UsuarioError(f"a senha deve ter pelo menos {senha_minima} caracteres")
    if (papel == "prestador") != (prestador is not None):
        raise UsuarioError("--prestador é obrigatório para o papel prestador, e só para ele")
    if session.scalars(select(Usuario.id).where(Usuario.login == login)).first() is not None:
        raise UsuarioError(f"já existe um usuário com o login {login}")
    usuario = Usuario(login=login, nome=nome.strip()[:150], papel=papel,
                      senha_hash=hash_senha(md5_hex(senha)), ativo=True, falhas_login=0,
                      prestador_id=_prestador(session, prestador).id if prestador is not None else None)
    session.add(usuario)
    session.flush()
    return usuario


def list_usuarios(session: Session) -> list[Usuario]:
    return list(session.scalars(select(Usuario).options(selectinload(Usuario.prestador))
                                .order_by(Usuario.login)))


def _get(session: Session, login: str) -> Usuario:
    usuario = session.scalars(select(Usuario).where(Usuario.login == login)).one_or_none()
    if usuario is None:
        raise UsuarioError(f"usuário não encontrado: {login}")
    return usuario


def disable_usuario(session: Session, login: str) -> Usuario:
    """Refuse every further login and end the user's open sessions at once. Flushes."""
    usuario = _get(session, login)
    usuario.ativo = False
    session.execute(delete(SessaoConsole).where(SessaoConsole.usuario_id == usuario.id))
    session.flush()
    return usuario


def enable_usuario(session: Session, login: str) -> Usuario:
    """Re-activate a user and lift its locks from every address (failures forgotten; an address's
    own throttle stays). Flushes."""
    usuario = _get(session, login)
    usuario.ativo, usuario.bloqueado_ate, usuario.falhas_login = True, None, 0
    tentativas.liberar(session, tentativas.CONSOLE, login)
    session.flush()
    return usuario


def seed_demo(session: Session) -> bool:
    """``serve --demo``: console user ``demo`` (senha ``demo``, papel admin) unless one exists.
    True when it was created. Flushes; the caller commits."""
    if session.scalars(select(Usuario.id).where(Usuario.login == DEMO_LOGIN)).first() is not None:
        return False
    add_usuario(session, DEMO_LOGIN, "Administrador (demonstração)", "admin", DEMO_SENHA, senha_minima=1)
    return True


def seed_demo_database(url: str) -> bool:
    """:func:`seed_demo` in its own transaction on the database at ``url`` (already migrated)."""
    from gateway.storage.db import make_engine, session_factory

    engine = make_engine(url)
    try:
        with session_factory(engine).begin() as session:
            return seed_demo(session)
    finally:
        engine.dispose()
