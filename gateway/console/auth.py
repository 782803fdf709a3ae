"""Console sign-in: passwords with lockout, sessions, CSRF tokens, and the access log.

Sessions: the cookie carries a random token (256 bits); the database keeps only its SHA-256 as
the session id, so a leaked table does not sign anyone in. A session ends ``sessao_horas`` after
login (absolute: using it does not extend it), at logout, or when the user is disabled. Every
session has its own CSRF token, sent back in a hidden field of every form; the login form, which
has no session yet, uses a double-submit cookie.

Lockout, as for providers (ANS Componente de Segurança, gateway.tentativas): failures are counted
per (login, client address) and per address; ``lockout_attempts`` failures of a login from one
address refuse it from that address only (even with the right password), so nobody elsewhere can
lock the admin out; an address failing many logins is refused for every login for a while. Unknown,
wrong, inactive and locked get the same page, and cost one scrypt each. Every attempt, logout,
retry and raw-XML download is written to ``auditoria``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway import tentativas
from gateway.message.identificacao import md5_hex
from gateway.storage.auditoria import ANONIMO, auditar
from gateway.storage.models import SessaoConsole, Usuario
from gateway.tentativas import Limites

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
    motivo: tentativas.Motivo | None = None  # for the audit: the page is the same for every failure


def autenticar(session: Session, login: str, senha: str, *, now: datetime, endereco: str | None,
               limites: Limites | None = None, attempts: int | None = None,
               lock_minutes: int | None = None) -> Entrada:
    """Check a console login from ``endereco``; count failures, lock, audit (the caller commits).

    ``limites``: ``Limites.de(config.gateway)``; without it, ``attempts`` and ``lock_minutes`` with
    the default address throttle.
    """
    limites = limites or _limites(attempts, lock_minutes)
    usuario = None
    if 0 < len(login) <= 60:
        usuario = session.scalars(select(Usuario).where(Usuario.login == login)).one_or_none()
    estado = tentativas.situacao(session, tentativas.CONSOLE, login, endereco, now)
    conta = tentativas.Conta(usuario.senha_hash, usuario.ativo) if usuario is not None else None
    desfecho = tentativas.conferir(session, estado, conta, md5_hex(senha), limites)
    if desfecho.ok and usuario is not None:
        usuario.ultimo_acesso_em = now
    desconhecido = None if usuario is not None else f"login desconhecido: {login[:40]!r}"
    motivo = f"motivo={desfecho.motivo}" if desfecho.motivo else None
    auditar(session, usuario.login if usuario is not None else ANONIMO,
            "console_login" if desfecho.ok else "console_login_recusado",
            "; ".join(x for x in (motivo, desconhecido, desfecho.detalhe) if x) or None, endereco, now)
    return Entrada(usuario if desfecho.ok else None, desfecho.motivo)


def _limites(attempts: int | None, lock_minutes: int | None) -> Limites:
    padrao = tentativas.PADRAO
    return replace(padrao, falhas_login=attempts or padrao.falhas_login,
                   bloqueio_login=timedelta(minutes=lock_minutes) if lock_minutes else padrao.bloqueio_login)


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
