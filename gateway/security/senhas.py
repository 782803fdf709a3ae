"""Stored passwords: scrypt of the MD5 hex a TISS client sends as ``senhaPrestador`` (and the
console's logins), so a database leak gives neither the password nor a digest a client could
replay. Checking an unknown login costs the same as a known one.
"""

import base64
import hashlib
import hmac
import re
import secrets
from functools import cache

from gateway.message.identificacao import PrestadorError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_SALT_BYTES, SCRYPT_DKLEN = 16, 32

_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")


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
