"""The delivery's senha sealed with a key outside the database (gateway.security.vault)."""

import base64
import stat
from pathlib import Path

import pytest

from gateway.message import credencial
from gateway.security import vault

SENHA = b"fe01ce2a7fbac8fafaed7c982a04e229"
MESSAGE = b"<a:x xmlns:a='u'><a:senhaPrestador>" + SENHA + b"</a:senhaPrestador></a:x>"


def test_key_file_0600_in_the_home(tiss_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(vault.KEY_ENV, raising=False)
    sealed = vault.seal_senha(MESSAGE)
    key = tiss_home / vault.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    assert sealed is not None and SENHA not in sealed
    assert vault.with_senha(credencial.redact(MESSAGE).corpo, sealed) == MESSAGE
    assert vault.seal_senha(b"<x/>") is None and vault.with_senha(b"<x/>", None) == b"<x/>"


def test_env_key_wins_and_another_key_cannot_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(vault.KEY_ENV, base64.b64encode(b"k" * 32).decode())
    sealed = vault.seal_senha(MESSAGE)
    assert sealed is not None
    monkeypatch.setenv(vault.KEY_ENV, base64.b64encode(b"o" * 32).decode())
    with pytest.raises(vault.ChaveInvalida, match="não é a que guardou"):
        vault.with_senha(credencial.redact(MESSAGE).corpo, sealed)
    monkeypatch.setenv(vault.KEY_ENV, "curta")
    with pytest.raises(vault.ChaveInvalida):
        vault.default()


def test_two_seals_differ_and_tampering_is_refused() -> None:
    box = vault.Vault(b"\x01" * 32)
    first, second = box.seal(SENHA), box.seal(SENHA)
    assert first != second and box.open(first) == box.open(second) == SENHA
    with pytest.raises(vault.ChaveInvalida):
        box.open(first[:-1] + bytes([first[-1] ^ 1]))
    with pytest.raises(vault.ChaveInvalida):
        box.open(b"\x02" + first[1:])
