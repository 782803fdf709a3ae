"""Provider identity: CNPJ/CPF, passwords, authentication with lockout, lookup by ``origem``.

Passwords. TISS clients send ``senhaPrestador`` = MD5 hex of the password (32 characters). The
gateway stores only ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` of the lower-cased MD5 hex, so a
database leak gives neither the password nor the MD5 a client could replay.

Authentication (ANS Componente de Segurança): failures are counted per (login, client address) and
per address (gateway.tentativas): a login that fails ``lockout_attempts`` times from one address is
refused from that address for ``lockout_minutes`` (even with the right password), and an address
that fails many logins is refused for every login for a while; the provider's ERP elsewhere keeps
working. Every failure gets the same answer; every attempt is written to ``auditoria``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, selectinload

from gateway import tentativas
from gateway.message.identificacao import (
    PrestadorError,
    md5_hex,
    normaliza_documento,
    tipo_documento,
    valida_registro_ans,
)
from gateway.security.senhas import hash_senha
from gateway.storage.auditoria import ANONIMO, auditar
from gateway.storage.models import FALHA_LOGIN_TABLE, PRESTADOR_TABLE, Prestador, PrestadorCodigo
from gateway.storage.prepared import Db, Prepared
from gateway.tentativas import Limites

if TYPE_CHECKING:
    from gateway.config import Config

# --- authentication ------------------------------------------------------------------------------

Motivo = tentativas.Motivo


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    reason: Motivo | None = None  # why it failed (for the audit only: the client gets one answer)
    prestador: Prestador | None = None  # set when ok
    bloqueado_ate: datetime | None = None  # set when the login from this address, or the address, is locked

    def __bool__(self) -> bool:
        return self.ok


def authenticate(session: Session, login: str, senha_md5: str, *, now: datetime,
                 limites: Limites = tentativas.PADRAO, endereco: str | None = None,
                 commit: bool = True) -> AuthResult:
    """Check loginPrestador/senhaPrestador sent from ``endereco``; count failures, lock, audit.

    Commits by default, so that the counters and the audit row survive the refusal of the request
    that follows; the reads are committed before the scrypt too, so that on SQLite no write lock is
    held while it runs (pass ``commit=False`` to manage the transaction yourself). A naive ``now``
    is taken to be UTC.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    prestador = session.scalars(select(Prestador).options(selectinload(Prestador.codigos))
                                .where(Prestador.login == login)).one_or_none()
    estado = tentativas.situacao(session, tentativas.PRESTADOR, login, endereco, now)
    conta = tentativas.Conta(prestador.senha_hash, prestador.ativo) if prestador is not None else None
    if commit:
        session.commit()  # nothing written yet: the scrypt below runs outside any transaction
    desfecho = tentativas.conferir(session, estado, conta, senha_md5, limites)
    desconhecido = None if prestador is not None else f"login desconhecido: {login[:40]!r}"
    motivo = f"motivo={desfecho.motivo}" if desfecho.motivo else None
    quem = login if prestador is not None else ANONIMO
    auditar(session, quem, "login" if desfecho.ok else "login_recusado",
            "; ".join(x for x in (motivo, desconhecido, desfecho.detalhe) if x) or None, endereco, now)
    session.flush()
    if commit:
        session.commit()
    if desfecho.ok:
        return AuthResult(True, prestador=prestador)
    return AuthResult(False, desfecho.motivo, bloqueado_ate=desfecho.bloqueado_ate)


_F = FALHA_LOGIN_TABLE
# The latest lock of this login from this address or of the address; compared in Python, so that
# the statement binds no timestamp (the request path's cheapest form, about as fast as before).
_BLOQUEIO = (select(func.max(_F.c.bloqueado_ate)).where(
    _F.c.escopo == tentativas.PRESTADOR, _F.c.endereco == bindparam("endereco"),
    _F.c.login.in_([bindparam("login"), bindparam("endereco_inteiro")])).scalar_subquery())
_LIBERADO = Prepared(select(PRESTADOR_TABLE.c.ativo, _BLOQUEIO)
                     .where(PRESTADOR_TABLE.c.id == bindparam("id")))


def liberado(db: Db, prestador_id: int, login: str, endereco: str | None, now: datetime) -> bool:
    """A login verified before (a process's cache) is still good: the provider is active, and
    neither this login from ``endereco`` nor the address is locked. One indexed read, so that a
    lock or a disable made by any worker applies at once."""
    row = _LIBERADO.first(db, {"id": prestador_id, "login": tentativas.chave_login(login),
                               "endereco_inteiro": tentativas.ENDERECO,
                               "endereco": tentativas.chave_endereco(endereco)})
    if row is None or not row[0]:
        return False
    bloqueado_ate = row[1]
    return bloqueado_ate is None or bloqueado_ate <= (now if now.tzinfo else now.replace(tzinfo=UTC))


# --- management ----------------------------------------------------------------------------------

def _set_codigos(session: Session, prestador: Prestador, codigos: Mapping[str, str]) -> None:
    for registro_ans, codigo in codigos.items():
        valida_registro_ans(registro_ans)
        codigo = str(codigo).strip()
        if not 0 < len(codigo) <= 14:
            raise PrestadorError(f"código na operadora {registro_ans} deve ter de 1 a 14 caracteres")
        dono = session.scalars(select(PrestadorCodigo).where(
            PrestadorCodigo.registro_ans == registro_ans,
            PrestadorCodigo.codigo_na_operadora == codigo)).one_or_none()
        if dono is not None and dono.prestador_id != prestador.id:
            raise PrestadorError(f"código {codigo} na operadora {registro_ans} já pertence a outro prestador")
        atual = next((c for c in prestador.codigos if c.registro_ans == registro_ans), None)
        if atual is None:
            prestador.codigos.append(PrestadorCodigo(registro_ans=registro_ans, codigo_na_operadora=codigo))
        else:
            atual.codigo_na_operadora = codigo


def _valida_login(login: str) -> str:
    if not login or len(login) > 20 or any(c.isspace() for c in login):
        raise PrestadorError(f"login deve ter de 1 a 20 caracteres, sem espaços: {login!r}")
    return login


def add_prestador(session: Session, documento: str, nome: str, login: str, senha: str | None,
                  codigos: Mapping[str, str] | None = None, *, senha_md5: bool = False) -> Prestador:
    """Register a provider. ``senha`` is the plain password, or its MD5 hex with ``senha_md5=True``
    (None: no password, cannot log in until one is set). Flushes; the caller commits."""
    documento = normaliza_documento(documento)
    tipo = tipo_documento(documento)
    _valida_login(login)
    if not nome.strip():
        raise PrestadorError("nome do prestador é obrigatório")
    existing = session.scalars(select(Prestador).where(
        (Prestador.login == login) | (Prestador.documento == documento))).first()
    if existing is not None:
        campo = "login" if existing.login == login else "documento"
        raise PrestadorError(f"já existe um prestador com este {campo}")
    senha_hash = None
    if senha is not None:
        senha_hash = hash_senha(senha if senha_md5 else md5_hex(senha))
    prestador = Prestador(documento=documento, tipo_documento=tipo, nome=nome.strip(), login=login,
                          senha_hash=senha_hash, ativo=True, falhas_login=0)
    session.add(prestador)
    session.flush()
    _set_codigos(session, prestador, codigos or {})
    session.flush()
    return prestador


def list_prestadores(session: Session) -> list[Prestador]:
    return list(session.scalars(
        select(Prestador).options(selectinload(Prestador.codigos)).order_by(Prestador.login)))


def get_prestador(session: Session, login: str) -> Prestador | None:
    return session.scalars(select(Prestador).where(Prestador.login == login)).one_or_none()


def disable_prestador(session: Session, login: str) -> Prestador:
    """Refuse every further login of ``login`` (the row and its history stay). Flushes."""
    prestador = get_prestador(session, login)
    if prestador is None:
        raise PrestadorError(f"prestador não encontrado: {login}")
    prestador.ativo = False
    session.flush()
    return prestador


def enable_prestador(session: Session, login: str) -> Prestador:
    """Re-activate ``login`` and lift its locks from every address (failures forgotten; an
    address's own throttle stays). Flushes."""
    prestador = get_prestador(session, login)
    if prestador is None:
        raise PrestadorError(f"prestador não encontrado: {login}")
    prestador.ativo = True
    prestador.bloqueado_ate = None
    prestador.falhas_login = 0
    tentativas.liberar(session, tentativas.PRESTADOR, login)
    session.flush()
    return prestador


def seed_from_config(session: Session, config: Config) -> list[Prestador]:
    """Upsert the config's providers and their codes (matched by documento, else login).

    Existing passwords are replaced only by a configured hash, never cleared; ``ativo`` is left as
    it is (a provider disabled with the CLI stays disabled). Flushes; the caller commits.
    """
    result = []
    for item in config.prestadores:
        by_doc = session.scalars(select(Prestador).where(Prestador.documento == item.documento)).one_or_none()
        by_login = get_prestador(session, item.login)
        if by_doc is not None and by_login is not None and by_doc.id != by_login.id:
            raise PrestadorError(f"prestador {item.documento}: o login {item.login} já pertence a outro")
        prestador = by_doc or by_login
        if prestador is None:
            prestador = Prestador(documento=item.documento, tipo_documento=tipo_documento(item.documento),
                                  nome=item.nome, login=item.login, senha_hash=item.senha_hash,
                                  ativo=True, falhas_login=0)
            session.add(prestador)
        else:
            prestador.documento = item.documento
            prestador.tipo_documento = tipo_documento(item.documento)
            prestador.nome = item.nome
            prestador.login = item.login
            if item.senha_hash is not None:
                prestador.senha_hash = item.senha_hash
        session.flush()
        _set_codigos(session, prestador, item.codigos)
        session.flush()
        result.append(prestador)
    return result


def find_by_origem(session: Session, *, cnpj: str | None = None, cpf: str | None = None,
                   codigo_na_operadora: str | None = None,
                   registro_ans: str | None = None) -> Prestador | None:
    """Resolve ``cabecalho/origem/identificacaoPrestador`` (a choice of
    codigoPrestadorNaOperadora | CPF | CNPJ) to a provider, active or not (the caller checks
    ``ativo``). A código na operadora needs the operator: ``registro_ans`` of ``destino``."""
    given = [x for x in (cnpj, cpf, codigo_na_operadora) if x is not None]
    if len(given) != 1:
        raise ValueError("informe exatamente um de cnpj, cpf, codigo_na_operadora")
    if codigo_na_operadora is None:  # exactly one given: cnpj or cpf
        documento = (cnpj or cpf or "").strip().upper()
        query = select(Prestador).where(Prestador.documento == documento)
        if cnpj is not None:
            query = query.where(Prestador.tipo_documento == "CNPJ")
        else:
            query = query.where(Prestador.tipo_documento == "CPF")
        return session.scalars(query).one_or_none()
    if registro_ans is None:
        raise ValueError("codigo_na_operadora exige registro_ans (o da operadora de destino)")
    return session.scalars(
        select(Prestador).join(PrestadorCodigo).where(
            PrestadorCodigo.registro_ans == registro_ans,
            PrestadorCodigo.codigo_na_operadora == codigo_na_operadora.strip())).one_or_none()

