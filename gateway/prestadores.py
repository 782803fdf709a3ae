"""Provider identity: CNPJ/CPF, passwords, authentication with lockout, lookup by ``origem``.

Passwords. TISS clients send ``senhaPrestador`` = MD5 hex of the password (32 characters). The
gateway stores only ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` of the lower-cased MD5 hex, so a
database leak gives neither the password nor the MD5 a client could replay.

Authentication (ANS Componente de Segurança): after ``attempts`` consecutive failures a login is
locked for ``lock_minutes`` (even the right password is refused meanwhile); every attempt is
written to ``auditoria``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from gateway.storage.models import Auditoria, Prestador, PrestadorCodigo

if TYPE_CHECKING:
    from gateway.config import Config

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_SALT_BYTES, SCRYPT_DKLEN = 16, 32
ANONIMO = "anonimo"

_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
_REGISTRO_ANS = re.compile(r"[0-9]{6}")
_CNPJ = re.compile(r"[0-9A-Z]{12}[0-9]{2}")  # 4.03.00 st_CNPJ admits the alphanumeric CNPJ
_CPF = re.compile(r"[0-9]{11}")


class PrestadorError(ValueError):
    """A provider operation that cannot be done (bad document, duplicate login, unknown login)."""


# --- documents -----------------------------------------------------------------------------------

def _mod11_digit(values: list[int], weights: list[int]) -> int:
    remainder = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def cnpj_valido(cnpj: str) -> bool:
    """14 characters, check digits right; numeric or alphanumeric (value = ord(c) - 48) CNPJ."""
    if not _CNPJ.fullmatch(cnpj) or len(set(cnpj)) == 1:
        return False
    values = [ord(c) - 48 for c in cnpj]
    first = _mod11_digit(values[:12], [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    second = _mod11_digit([*values[:12], first], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    return values[12:] == [first, second]


def cpf_valido(cpf: str) -> bool:
    if not _CPF.fullmatch(cpf) or len(set(cpf)) == 1:
        return False
    values = [int(c) for c in cpf]
    first = _mod11_digit(values[:9], list(range(10, 1, -1)))
    second = _mod11_digit([*values[:9], first], list(range(11, 1, -1)))
    return values[9:] == [first, second]


def normaliza_documento(documento: str) -> str:
    """Strip the usual punctuation (``11.222.333/0001-81`` → ``11222333000181``), upper-case."""
    return re.sub(r"[.\-/\s]", "", documento).upper()


def tipo_documento(documento: str) -> Literal["CNPJ", "CPF"]:
    """'CNPJ' or 'CPF' for a valid, normalised document; PrestadorError otherwise."""
    if len(documento) == 14:
        if cnpj_valido(documento):
            return "CNPJ"
        raise PrestadorError(f"CNPJ inválido (dígitos verificadores não conferem): {documento}")
    if len(documento) == 11:
        if cpf_valido(documento):
            return "CPF"
        raise PrestadorError(f"CPF inválido (dígitos verificadores não conferem): {documento}")
    raise PrestadorError(f"documento deve ser um CNPJ (14 caracteres) ou CPF (11 dígitos): {documento!r}")


def valida_registro_ans(registro_ans: str) -> str:
    if not isinstance(registro_ans, str) or not _REGISTRO_ANS.fullmatch(registro_ans):
        raise PrestadorError(f"registro ANS deve ter 6 dígitos: {registro_ans!r}")
    return registro_ans


# --- passwords -----------------------------------------------------------------------------------

def md5_hex(senha: str) -> str:
    """What a TISS client sends as senhaPrestador for the password ``senha``."""
    return hashlib.md5(senha.encode("utf-8"), usedforsecurity=False).hexdigest()


def _scrypt(md5_hex_value: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(md5_hex_value.strip().lower().encode("utf-8", "replace"), salt=salt,
                          n=n, r=r, p=p, dklen=dklen, maxmem=256 * 1024 * 1024)


def hash_senha(md5_hex_value: str) -> str:
    """``scrypt$n$r$p$salt$hash`` of the (lower-cased) MD5 hex of a password."""
    if not _MD5_HEX.fullmatch(md5_hex_value.strip()):
        raise PrestadorError("a senha deve ser informada como MD5 em hexadecimal (32 caracteres)")
    salt = secrets.token_bytes(SCRYPT_SALT_BYTES)
    digest = _scrypt(md5_hex_value, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def parse_senha_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, hash) of a stored hash; ValueError if it is not one this module wrote."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("hash de senha não está no formato scrypt$n$r$p$salt$hash")
    n, r, p = (int(x) for x in parts[1:4])
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or n > 2**20:
        raise ValueError("parâmetros scrypt fora da faixa")
    salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    if len(salt) < 8 or len(digest) < 16:
        raise ValueError("salt ou hash scrypt curto demais")
    return n, r, p, salt, digest


def confere_senha(stored: str | None, md5_hex_value: str) -> bool:
    """Constant-time check of the MD5 hex a client sent (any case) against a stored hash."""
    try:
        n, r, p, salt, digest = parse_senha_hash(stored or "")
    except ValueError:
        n, r, p, salt, digest = parse_senha_hash(_dummy_hash())  # same work, then refuse
        _scrypt(md5_hex_value, salt, n, r, p, len(digest))
        return False
    return hmac.compare_digest(_scrypt(md5_hex_value, salt, n, r, p, len(digest)), digest)


@cache
def _dummy_hash() -> str:
    """A hash nobody's password matches, checked for unknown logins so they cost one scrypt too."""
    return hash_senha(secrets.token_hex(16))


# --- authentication ------------------------------------------------------------------------------

Motivo = Literal["desconhecido", "senha", "bloqueado", "inativo"]


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    reason: Motivo | None = None  # why it failed
    prestador: Prestador | None = None  # set when ok
    bloqueado_ate: datetime | None = None  # set when the login is (now) locked

    def __bool__(self) -> bool:
        return self.ok


def auditar(session: Session, quem: str | None, acao: str, detalhe: str | None = None,
            endereco: str | None = None, now: datetime | None = None) -> Auditoria:
    """Add an access-log row (flushed with the session; the caller commits)."""
    row = Auditoria(quem=(quem or ANONIMO)[:100], acao=acao, detalhe=detalhe, endereco=endereco)
    if now is not None:
        row.em = now
    session.add(row)
    return row


def authenticate(session: Session, login: str, senha_md5: str, *, now: datetime, attempts: int = 5,
                 lock_minutes: int = 30, endereco: str | None = None, commit: bool = True) -> AuthResult:
    """Check loginPrestador/senhaPrestador; count failures, lock, audit.

    Commits by default, so that the failure counter and the audit row survive the refusal of the
    request that follows (pass ``commit=False`` to manage the transaction yourself). A naive
    ``now`` is taken to be UTC.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    prestador = session.scalars(select(Prestador).where(Prestador.login == login)).one_or_none()
    quem = login if prestador is not None else ANONIMO
    detalhe_login = None if prestador is not None else f"login desconhecido: {login[:40]!r}"

    def done(result: AuthResult, detalhe: str | None) -> AuthResult:
        acao = "login" if result.ok else "login_recusado"
        motivo = f"motivo={result.reason}" if result.reason else None
        auditar(session, quem, acao, "; ".join(x for x in (motivo, detalhe) if x), endereco, now)
        session.flush()
        if commit:
            session.commit()
        return result

    if prestador is None:
        confere_senha(None, senha_md5)  # as slow as a real check
        return done(AuthResult(False, "desconhecido"), detalhe_login)
    if not prestador.ativo:
        confere_senha(None, senha_md5)
        return done(AuthResult(False, "inativo"), None)
    if prestador.bloqueado_ate is not None and now < prestador.bloqueado_ate:
        confere_senha(None, senha_md5)
        return done(AuthResult(False, "bloqueado", bloqueado_ate=prestador.bloqueado_ate),
                    f"bloqueado até {prestador.bloqueado_ate.isoformat()}")

    if confere_senha(prestador.senha_hash, senha_md5):
        prestador.falhas_login = 0
        prestador.bloqueado_ate = None
        return done(AuthResult(True, prestador=prestador), None)

    # Atomic increment: concurrent wrong guesses all count.
    falhas = session.execute(
        update(Prestador).where(Prestador.id == prestador.id)
        .values(falhas_login=Prestador.falhas_login + 1).returning(Prestador.falhas_login)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    session.expire(prestador, ["falhas_login"])
    if falhas >= attempts:
        until = now + timedelta(minutes=lock_minutes)
        prestador.bloqueado_ate = until
        prestador.falhas_login = 0  # a fresh series of attempts once the lock expires
        return done(AuthResult(False, "senha", bloqueado_ate=until),
                    f"{falhas} falhas seguidas; bloqueado até {until.isoformat()}")
    return done(AuthResult(False, "senha"), f"{falhas} falha(s) seguida(s)")


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
    """Re-activate ``login`` and lift a lockout (failure counter back to zero). Flushes."""
    prestador = get_prestador(session, login)
    if prestador is None:
        raise PrestadorError(f"prestador não encontrado: {login}")
    prestador.ativo = True
    prestador.bloqueado_ate = None
    prestador.falhas_login = 0
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
    if cnpj is not None or cpf is not None:
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

