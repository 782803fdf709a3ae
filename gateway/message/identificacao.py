"""Who a TISS message says it comes from: CNPJ and CPF check digits, registro ANS, the
``senhaPrestador`` digest a client sends. Pure rules, shared by the config, the inbound checks,
the adapters and the simulated operators.
"""

import hashlib
import re
from typing import Literal

_REGISTRO_ANS = re.compile(r"[0-9]{6}")
_CNPJ = re.compile(r"[0-9A-Z]{12}[0-9]{2}")  # 4.03.00 st_CNPJ admits the alphanumeric CNPJ
_CPF = re.compile(r"[0-9]{11}")


class PrestadorError(ValueError):
    """A provider operation that cannot be done (bad document, duplicate login, unknown login)."""


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


def md5_hex(senha: str) -> str:
    """What a TISS client sends as senhaPrestador for the password ``senha``."""
    return hashlib.md5(senha.encode("utf-8"), usedforsecurity=False).hexdigest()
