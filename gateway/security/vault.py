"""The provider's senhaPrestador kept for delivery, encrypted with a key that is not in the database.

Stored message bodies have the senha masked (gateway.message.credencial); the delivery still has
to send the operator the real one, so each pending delivery keeps it sealed (AES-256-GCM, a random
nonce per value) until it needs it no more. The key comes from ``TISS_GATEWAY_CHAVE_CREDENCIAIS``
(base64 of 32 bytes: every host of a deployment sharing one database needs the same), else from
``<home>/credenciais.key``, created mode 0600 at first use. A database leak without the key gives
nothing a client could log in with; the key is what an operator of the gateway must protect.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from functools import cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.home import gateway_home
from gateway.message import credencial

KEY_ENV = "TISS_GATEWAY_CHAVE_CREDENCIAIS"
KEY_FILE = "credenciais.key"
_NONCE = 12
_VERSION = b"\x01"  # first byte of every sealed value: the format, should it ever change


class ChaveInvalida(ValueError):
    """The key is malformed, or is not the one that sealed the value."""


class Vault:
    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ChaveInvalida("a chave de credenciais deve ter 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, value: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, value, _VERSION)

    def open(self, sealed: bytes) -> bytes:
        if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE + 16:
            raise ChaveInvalida("credencial guardada em formato desconhecido")
        try:
            return self._aead.decrypt(sealed[1:1 + _NONCE], sealed[1 + _NONCE:], _VERSION)
        except InvalidTag:
            raise ChaveInvalida(f"a chave de credenciais não é a que guardou esta senha ({KEY_ENV} ou "
                                f"<home>/{KEY_FILE} diferente entre os processos?)") from None


def default() -> Vault:
    """This process's vault: the environment's key, else the gateway home's key file."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        return _from_env(configured)
    return _from_file(gateway_home() / KEY_FILE)


def check() -> None:
    """This process's key resolved now, as a command starts: the key file is made then, not by the
    first lote on the request path, and an unusable key stops the command before it serves."""
    try:
        default()
    except OSError as exc:
        where = gateway_home() / KEY_FILE
        raise ChaveInvalida(f"chave de credenciais {where}: {exc.strerror or exc}") from None


@cache
def _from_env(encoded: str) -> Vault:
    try:
        return Vault(base64.b64decode(encoded.strip(), validate=True))
    except (binascii.Error, ValueError):
        raise ChaveInvalida(f"{KEY_ENV}: base64 de 32 bytes esperado") from None


@cache
def _from_file(path: Path) -> Vault:
    if not path.exists():
        _create(path)
    return Vault(path.read_bytes())


def _create(path: Path) -> None:
    """A new random key, mode 0600; processes starting at once agree on the first one linked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(32))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: that one is the key
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def seal_senha(data: bytes) -> bytes | None:
    """The senhaPrestador of ``data`` (its spans: gateway.message.credencial) sealed; None if none."""
    return seal_spans(credencial.find(data))


def seal_spans(spans: tuple[credencial.Span, ...]) -> bytes | None:
    return default().seal(credencial.pack(spans)) if spans else None


def with_senha(corpo: bytes, sealed: bytes | None) -> bytes:
    """A stored ``corpo`` as it was before its senha was masked (in memory only)."""
    if not sealed:
        return corpo
    return credencial.restore(corpo, credencial.unpack(default().open(sealed)))
