"""Console sign-in: passwords with lockout, sessions, CSRF tokens, and the access log.

Sessions: the cookie carries a random token (256 bits); the database keeps only its SHA-256 as
the session id, so a leaked table does not sign anyone in. A session ends ``sessao_horas`` after
login (absolute: using it does not extend it), at logout, or when the user is disabled. Every
session has its own CSRF token, sent back in a hidden field of every form; the login form, which
has no session yet, uses a double-submit cookie.

Lockout, as for providers (ANS Componente de Segurança): after ``attempts`` consecutive failures
the login is refused for ``lock_minutes``, even with the right password; unknown logins cost one
scrypt too. Every attempt, logout, retry and raw-XML download is written to ``auditoria``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gateway.message.identificacao import md5_hex
from gateway.security.senhas import confere_senha
from gateway.storage.auditoria import ANONIMO, auditar
from gateway.storage.models import SessaoConsole, Usuario

PODEM_REENVIAR = frozenset({"admin", "operador"})


@dataclass(frozen=True)
class Escopo:
    """The signed-in user as the pages see them."""

    usuario_id: int
    login: str
    nome: str
    papel: str
    usuario_prestador_id: int | None
    sessao_id: str
    csrf: str
    expira_em: datetime

    @property
    def prestador_id(self) -> int | None:
        """The only provider whose data this user sees (None: every provider's)."""
        return self.usuario_prestador_id if self.papel == "prestador" else None

    @property
    def pode_reenviar(self) -> bool:
        return self.papel in PODEM_REENVIAR


def novo_token() -> str:
    return secrets.token_urlsafe(32)


def sessao_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def mesmo_token(esperado: str | None, recebido: str | None) -> bool:
    if not esperado or not recebido:
        return False
    return hmac.compare_digest(esperado.encode("utf-8", "replace"), recebido.encode("utf-8", "replace"))


@dataclass(frozen=True)
class Entrada:
    """The outcome of a login attempt."""

    usuario: Usuario | None
    motivo: str | None = None  # desconhecido | senha | bloqueado | inativo


def autenticar(session: Session, login: str, senha: str, *, now: datetime, attempts: int,
               lock_minutes: int, endereco: str | None) -> Entrada:
    """Check a console login; count failures, lock, audit (the caller commits)."""
    usuario = None
    if 0 < len(login) <= 60:
        usuario = session.scalars(select(Usuario).where(Usuario.login == login)).one_or_none()
    digest = md5_hex(senha)

    def done(entrada: Entrada, detalhe: str | None = None) -> Entrada:
        quem = usuario.login if usuario is not None else ANONIMO
        if usuario is None:
            detalhe = f"login desconhecido: {login[:40]!r}"
        motivo = f"motivo={entrada.motivo}" if entrada.motivo else None
        auditar(session, quem, "console_login" if entrada.usuario else "console_login_recusado",
                "; ".join(x for x in (motivo, detalhe) if x) or None, endereco, now)
        return entrada

    if usuario is None or not usuario.ativo:
        confere_senha(None, digest)  # as slow as a real check
        return done(Entrada(None, "desconhecido" if usuario is None else "inativo"))
    if usuario.bloqueado_ate is not None and now < usuario.bloqueado_ate:
        confere_senha(None, digest)
        return done(Entrada(None, "bloqueado"), f"bloqueado até {usuario.bloqueado_ate.isoformat()}")
    if confere_senha(usuario.senha_hash, digest):
        usuario.falhas_login, usuario.bloqueado_ate, usuario.ultimo_acesso_em = 0, None, now
        return done(Entrada(usuario))
    # Atomic increment: concurrent wrong guesses all count.
    falhas = session.execute(
        update(Usuario).where(Usuario.id == usuario.id).values(falhas_login=Usuario.falhas_login + 1)
        .returning(Usuario.falhas_login).execution_options(synchronize_session=False)).scalar_one()
    session.expire(usuario, ["falhas_login"])
    if falhas >= attempts:
        usuario.bloqueado_ate = now + timedelta(minutes=lock_minutes)
        usuario.falhas_login = 0  # a fresh series once the lock expires
        return done(Entrada(None, "senha"), f"{falhas} falhas seguidas; bloqueado até "
                                            f"{usuario.bloqueado_ate.isoformat()}")
    return done(Entrada(None, "senha"), f"{falhas} falha(s) seguida(s)")


def abrir_sessao(session: Session, usuario: Usuario, *, now: datetime, horas: float,
                 endereco: str | None) -> tuple[str, SessaoConsole]:
    """A new session (the cookie's token, the row). Expired sessions are swept on the way."""
    session.execute(delete(SessaoConsole).where(SessaoConsole.expira_em < now))
    token = novo_token()
    row = SessaoConsole(id=sessao_id(token), usuario_id=usuario.id, csrf=novo_token(), criada_em=now,
                        expira_em=now + timedelta(hours=horas), endereco=endereco)
    session.add(row)
    return token, row


_SESSAO = (select(SessaoConsole.id, SessaoConsole.csrf, SessaoConsole.expira_em, Usuario.id, Usuario.login,
                  Usuario.nome, Usuario.papel, Usuario.prestador_id, Usuario.ativo)
           .join(Usuario, Usuario.id == SessaoConsole.usuario_id))


def escopo_do_token(session: Session, token: str | None, now: datetime) -> Escopo | None:
    """The user of a session cookie, if the session exists, has not expired and the user is active."""
    if not token or len(token) > 200:
        return None
    row = session.execute(_SESSAO.where(SessaoConsole.id == sessao_id(token))).first()
    if row is None or row.expira_em <= now or not row.ativo:
        return None
    return Escopo(usuario_id=row[3], login=row.login, nome=row.nome, papel=row.papel,
                  usuario_prestador_id=row.prestador_id, sessao_id=row[0], csrf=row.csrf,
                  expira_em=row.expira_em)


def fechar_sessao(session: Session, escopo: Escopo, *, now: datetime, endereco: str | None) -> None:
    session.execute(delete(SessaoConsole).where(SessaoConsole.id == escopo.sessao_id))
    auditar(session, escopo.login, "console_logout", None, endereco, now)
