"""gateway.tentativas: failed logins counted per (login, address) and per address, in the database."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway import tentativas
from gateway.config import ConfigError, GatewaySettings, parse_config
from gateway.message.identificacao import md5_hex
from gateway.storage.db import session_factory
from gateway.storage.models import FalhaLogin
from gateway.tentativas import Conta, Limites, chave_endereco

NOW = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
ENDERECO = "198.51.100.7"


def _falhar(session: Session, login: str, *, now: datetime = NOW, endereco: str = ENDERECO,
            limites: Limites = tentativas.PADRAO) -> tentativas.Desfecho:
    estado = tentativas.situacao(session, tentativas.PRESTADOR, login, endereco, now)
    desfecho = tentativas.conferir(session, estado, None, md5_hex("x"), limites)
    session.commit()
    return desfecho


def _rows(session: Session) -> dict[tuple[str, str], int]:
    return {(r.login, r.endereco): r.falhas for r in session.scalars(select(FalhaLogin))}


@pytest.mark.parametrize(("endereco", "chave"), [
    ("203.0.113.9", "203.0.113.9"),
    (" 203.0.113.9 ", "203.0.113.9"),
    ("2001:db8:1:2::5", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    (None, ""),
    ("", ""),
    ("unix:/run/gunicorn.sock", "unix:/run/gunicorn.sock"),
])
def test_the_key_of_an_address(endereco: str | None, chave: str) -> None:
    assert chave_endereco(endereco) == chave


def test_limits_come_from_the_gateway_settings() -> None:
    assert Limites.de(GatewaySettings()) == tentativas.PADRAO == Limites(
        5, timedelta(minutes=30), 20, timedelta(minutes=10), timedelta(minutes=15))
    config = parse_config({"gateway": {"lockout_attempts": 3, "lockout_minutes": 60, "throttle_failures": 50,
                                       "throttle_window_minutes": 5, "throttle_minutes": 120}})
    assert Limites.de(config.gateway) == Limites(3, timedelta(minutes=60), 50, timedelta(minutes=5),
                                                 timedelta(minutes=120))


@pytest.mark.parametrize(("key", "value"), [
    ("throttle_failures", 0), ("throttle_window_minutes", 24 * 60 + 1), ("throttle_minutes", 0),
    ("throttle_failures", "20"),
])
def test_bad_throttle_settings_are_refused(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"gateway.{key}"):
        parse_config({"gateway": {key: value}})


def test_a_lock_of_one_failure(db_session: Session) -> None:
    limites = Limites(falhas_login=1, falhas_endereco=1)
    desfecho = _falhar(db_session, "ana", limites=limites)
    assert desfecho.bloqueado_ate == NOW + timedelta(minutes=30)
    estado = tentativas.situacao(db_session, tentativas.PRESTADOR, "bia", ENDERECO, NOW)
    assert estado.endereco_bloqueado_ate == NOW + timedelta(minutes=15)
    assert estado.login_bloqueado_ate is None


def test_scopes_count_apart(db_session: Session) -> None:
    """A console user's failures do not lock a SOAP login of the same name, nor the other way."""
    for _ in range(5):
        _falhar(db_session, "ana")
    estado = tentativas.situacao(db_session, tentativas.CONSOLE, "ana", ENDERECO, NOW)
    assert estado.login_bloqueado_ate is None and estado.endereco_bloqueado_ate is None


def test_long_unknown_logins_are_counted_by_their_first_60_characters(db_session: Session) -> None:
    _falhar(db_session, "x" * 200)
    assert _rows(db_session) == {("x" * 60, ENDERECO): 1, ("", ENDERECO): 1}


def test_rows_idle_for_a_day_are_deleted(db_session: Session) -> None:
    _falhar(db_session, "ana", endereco="192.0.2.1")
    for _ in range(5):
        _falhar(db_session, "bia", endereco="192.0.2.2", limites=Limites(bloqueio_login=timedelta(days=2)))
    _falhar(db_session, "carla", now=NOW + timedelta(days=1, seconds=1))
    assert _rows(db_session) == {("bia", "192.0.2.2"): 0, ("carla", ENDERECO): 1, ("", ENDERECO): 1}


def test_concurrent_failures_all_count(db_engine: Engine) -> None:
    """Gunicorn threads and workers failing at once: every failure is counted, none lost."""
    sessions, threads_n, each = session_factory(db_engine), 8, 3
    limites = Limites(falhas_login=1000, falhas_endereco=1000)
    errors: list[BaseException] = []

    def fail() -> None:
        try:
            for _ in range(each):
                with sessions() as session:
                    _falhar(session, "ana", limites=limites)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=fail) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        assert _rows(session) == {("ana", ENDERECO): threads_n * each, ("", ENDERECO): threads_n * each}


def test_a_success_forgets_the_series_of_its_own_address_only(db_session: Session) -> None:
    from gateway.security.senhas import hash_senha

    conta = Conta(hash_senha(md5_hex("certa")), True)
    for endereco in ("192.0.2.1", "192.0.2.2"):
        _falhar(db_session, "ana", endereco=endereco)
    estado = tentativas.situacao(db_session, tentativas.PRESTADOR, "ana", "192.0.2.1", NOW)
    assert tentativas.conferir(db_session, estado, conta, md5_hex("certa"), tentativas.PADRAO).ok
    db_session.commit()
    assert _rows(db_session) == {("ana", "192.0.2.2"): 1, ("", "192.0.2.1"): 1, ("", "192.0.2.2"): 1}
