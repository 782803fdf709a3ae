"""Failed logins, counted per client address: a lockout per (login, address) and a throttle per address.

A lock on the account let anyone lock a provider's ERP, or the console admin, out for half an hour
with five wrong passwords. Failures are counted per address instead (ANS Componente de Segurança
still holds: repeated failures lock):

- ``lockout_attempts`` failures of one login from one address (none succeeding, within a day)
  refuse that login *from that address* for ``lockout_minutes``, even with the right password;
  the provider's ERP at its own address keeps working;
- an address that fails ``throttle_failures`` logins, any logins, within ``throttle_window_minutes``
  of its first failure is refused for every login for ``throttle_minutes``; no account is touched.

Only a checked password counts (unknown login, inactive account, wrong password): a request refused
by a lock counts nothing more. Unknown logins are counted like known ones, so nothing here tells
which logins exist. The address is the one the front ends see (``Call.endereco``, the console's
``Request.endereco``); IPv6 addresses count per /64 (what one customer usually gets), IPv4 per
address.

The counters are rows of ``falha_login`` (one per (escopo, login, address), one per (escopo,
address) with an empty login), each moved by one atomic upsert: every gunicorn worker, thread
and host counts the same failures, and a restart forgets none. A series begun over a day ago
starts again, and its row is deleted on the way (by any later failure).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import case, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.security.senhas import confere_senha
from gateway.storage.models import ESCOPOS_LOGIN, FALHA_LOGIN_TABLE

if TYPE_CHECKING:
    from gateway.config import GatewaySettings

PRESTADOR, CONSOLE = ESCOPOS_LOGIN
ENDERECO = ""  # the login column of an address's own row (no login is empty)
LOGIN_MAX = 60  # the column's width: longer (unknown) logins are counted by their first 60
MEMORIA = timedelta(days=1)  # a series of failures older than this starts again; its row goes
_LIMPEZA = 500  # idle rows deleted per failure, at most

_T = FALHA_LOGIN_TABLE

# Why an attempt failed, for the audit only: the client gets the same answer for all of them.
Motivo = Literal["desconhecido", "inativo", "senha", "bloqueado", "endereco"]


@dataclass(frozen=True)
class Limites:
    """How many failures lock what, for how long (``[gateway]`` lockout_* and throttle_*)."""

    falhas_login: int = 5
    bloqueio_login: timedelta = timedelta(minutes=30)
    falhas_endereco: int = 20
    janela_endereco: timedelta = timedelta(minutes=10)
    bloqueio_endereco: timedelta = timedelta(minutes=15)

    @classmethod
    def de(cls, settings: GatewaySettings) -> Limites:
        return cls(settings.lockout_attempts, timedelta(minutes=settings.lockout_minutes),
                   settings.throttle_failures, timedelta(minutes=settings.throttle_window_minutes),
                   timedelta(minutes=settings.throttle_minutes))


PADRAO = Limites()


@lru_cache(maxsize=4096)
def chave_endereco(endereco: str | None) -> str:
    """The key an address's failures are counted under: an IPv4 address as it is, an IPv6 one as
    its /64 (an IPv4-mapped one as its IPv4); anything else as given (none: "")."""
    texto = (endereco or "").strip()
    try:
        ip = ipaddress.ip_address(texto)
    except ValueError:
        return texto[:45]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def chave_login(login: str) -> str:
    return login[:LOGIN_MAX]


@dataclass(frozen=True)
class Situacao:
    """What stands against a login attempt before its password is looked at."""

    escopo: str
    login: str
    endereco: str  # chave_endereco
    now: datetime
    login_bloqueado_ate: datetime | None  # this login, from this address
    endereco_bloqueado_ate: datetime | None  # every login, from this address


def situacao(session: Session, escopo: str, login: str, endereco: str | None, now: datetime) -> Situacao:
    """The locks in force for ``login`` from ``endereco`` (one indexed read)."""
    chave, login = chave_endereco(endereco), chave_login(login)
    rows = session.execute(select(_T.c.login, _T.c.bloqueado_ate).where(
        _T.c.escopo == escopo, _T.c.endereco == chave, _T.c.login.in_([login, ENDERECO]),
        _T.c.bloqueado_ate > now)).all()
    locks = {row.login: row.bloqueado_ate for row in rows}
    return Situacao(escopo, login, chave, now, locks.get(login) if login else None, locks.get(ENDERECO))


@dataclass(frozen=True)
class Conta:
    """The account a login names (a provider or a console user), as far as a check needs it."""

    senha_hash: str | None
    ativo: bool


@dataclass(frozen=True)
class Desfecho:
    """The outcome of an attempt: what to answer (ok or not: one answer for every failure) and
    what to audit (``motivo``, ``detalhe``)."""

    ok: bool
    motivo: Motivo | None = None
    bloqueado_ate: datetime | None = None  # the lock in force or just set (login or address)
    detalhe: str | None = None


def conferir(session: Session, estado: Situacao, conta: Conta | None, senha_md5: str,
             limites: Limites) -> Desfecho:
    """Check the password the client sent against ``conta`` (None: unknown login) and count the
    outcome. Every refusal but a blocked address costs one scrypt, like a real check: unknown,
    inactive, wrong and locked cannot be told apart by time. A blocked address is refused at once:
    that does not depend on the login, and a flood from it costs no CPU. The caller audits and
    commits."""
    if estado.endereco_bloqueado_ate is not None:
        return Desfecho(False, "endereco", estado.endereco_bloqueado_ate,
                        f"endereço bloqueado até {estado.endereco_bloqueado_ate.isoformat()}")
    ativa = conta is not None and conta.ativo
    certa = confere_senha(conta.senha_hash if conta is not None and conta.ativo else None, senha_md5)
    if estado.login_bloqueado_ate is not None:  # counted no further: the lock already holds
        return Desfecho(False, "bloqueado", estado.login_bloqueado_ate,
                        f"bloqueado neste endereço até {estado.login_bloqueado_ate.isoformat()}")
    if ativa and certa:
        if estado.login:
            session.execute(delete(_T).where(_T.c.escopo == estado.escopo, _T.c.endereco == estado.endereco,
                                             _T.c.login == estado.login))
        return Desfecho(True)
    return _falhou(session, estado, "desconhecido" if conta is None else "senha" if ativa else "inativo",
                   limites)


def _falhou(session: Session, estado: Situacao, motivo: Motivo, limites: Limites) -> Desfecho:
    now, partes, bloqueado_ate = estado.now, [], None
    if estado.login:
        falhas, ate = _contar(session, estado, estado.login, limites.falhas_login,
                              now - MEMORIA, limites.bloqueio_login)
        if ate is not None:
            bloqueado_ate = ate
            partes.append(f"{limites.falhas_login} falhas seguidas; bloqueado neste endereço até "
                          f"{ate.isoformat()}")
        else:
            partes.append(f"{falhas} falha(s) seguida(s)")
    _falhas, ate = _contar(session, estado, ENDERECO, limites.falhas_endereco,
                           now - limites.janela_endereco, limites.bloqueio_endereco)
    if ate is not None:
        bloqueado_ate = bloqueado_ate or ate
        partes.append(f"{limites.falhas_endereco} falhas deste endereço; endereço bloqueado até "
                      f"{ate.isoformat()}")
    _esquecer_antigas(session, now)
    return Desfecho(False, motivo, bloqueado_ate, "; ".join(partes))


def _contar(session: Session, estado: Situacao, login: str, limite: int, inicio: datetime,
            bloqueio: timedelta) -> tuple[int, datetime | None]:
    """One failure more on the row (escopo, login, address), atomically. A series begun before
    ``inicio`` starts again; reaching ``limite`` locks the row until now + ``bloqueio`` and starts a
    fresh series. Returns (failures now, the lock's end if this failure set it)."""
    now = estado.now
    ate = now + bloqueio
    velha = _T.c.desde < inicio
    contadas = case((velha, 1), else_=_T.c.falhas + 1)
    travou = contadas >= limite
    novo = limite <= 1  # the first failure already locks
    insert = _insert_for(session).values(
        escopo=estado.escopo, login=login, endereco=estado.endereco, falhas=0 if novo else 1, desde=now,
        bloqueado_ate=ate if novo else None)
    upsert = insert.on_conflict_do_update(
        index_elements=[_T.c.escopo, _T.c.endereco, _T.c.login],
        set_={"falhas": case((travou, 0), else_=contadas),  # every expression sees the old row
              "desde": case((or_(travou, velha), now), else_=_T.c.desde),
              "bloqueado_ate": case((travou, ate), else_=_T.c.bloqueado_ate)},
    ).returning(_T.c.falhas, _T.c.bloqueado_ate)
    row = session.execute(upsert).one()
    falhas, bloqueado_ate = int(row.falhas), row.bloqueado_ate
    return (limite, bloqueado_ate) if falhas == 0 else (falhas, None)


def _insert_for(session: Session) -> Any:
    """The dialect's INSERT with ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_T)


def _esquecer_antigas(session: Session, now: datetime) -> None:
    """Delete rows whose series began over a day ago (their next failure would start afresh) and
    whose lock is over. Rows another transaction holds are skipped (PostgreSQL), so that two
    failures never wait on each other here."""
    idle = (select(_T.c.id).where(_T.c.desde < now - MEMORIA,
                                  or_(_T.c.bloqueado_ate.is_(None), _T.c.bloqueado_ate <= now))
            .limit(_LIMPEZA).with_for_update(skip_locked=True))
    session.execute(delete(_T).where(_T.c.id.in_(idle)))


def liberar(session: Session, escopo: str, login: str) -> int:
    """Lift every lock and forget every failure of ``login`` (all addresses): ``prestador enable``,
    ``usuario enable``. Address throttles stay. Returns the rows removed."""
    result = session.execute(delete(_T).where(_T.c.escopo == escopo, _T.c.login == chave_login(login)))
    return int(getattr(result, "rowcount", 0) or 0)


def bloqueios(session: Session, escopo: str, login: str, now: datetime) -> list[tuple[str, datetime]]:
    """The addresses ``login`` is locked from now, with each lock's end."""
    rows = session.execute(select(_T.c.endereco, _T.c.bloqueado_ate).where(
        _T.c.escopo == escopo, _T.c.login == chave_login(login), _T.c.bloqueado_ate > now)
        .order_by(_T.c.endereco)).all()
    return [(row.endereco, row.bloqueado_ate) for row in rows]
