"""Provider identity: documents, password storage, authentication with lockout, audit, lookup."""

import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import prestadores, tentativas
from gateway.config import PrestadorConfig, demo_config
from gateway.message import identificacao
from gateway.message.identificacao import PrestadorError, cnpj_valido, cpf_valido, md5_hex
from gateway.prestadores import (
    AuthResult,
    add_prestador,
    authenticate,
    disable_prestador,
    enable_prestador,
    find_by_origem,
    list_prestadores,
    seed_from_config,
)
from gateway.security import senhas
from gateway.security.senhas import confere_senha, hash_senha
from gateway.storage.models import Auditoria, FalhaLogin, Prestador
from gateway.tentativas import Limites

NOW = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
SENHA = "s3nh@-forte"
CNPJ = "11222333000181"
CPF = "52998224725"
ERP, OUTRO = "203.0.113.9", "198.51.100.7"  # the provider's ERP; someone else


@pytest.fixture
def clinica(db_session: Session) -> Prestador:
    prestador = add_prestador(db_session, "11.222.333/0001-81", "Clínica Exemplo", "clinica", SENHA,
                              {"329665": "000123", "424188": "5012377"})
    db_session.commit()
    return prestador


def _audit(session: Session) -> list[Auditoria]:
    return list(session.scalars(select(Auditoria).order_by(Auditoria.id)))


# --- documents and passwords (no database) -------------------------------------------------------

def test_document_check_digits() -> None:
    assert cnpj_valido(CNPJ) and not cnpj_valido("11222333000182") and not cnpj_valido("00000000000000")
    assert cnpj_valido("12ABC34501DE35")  # alphanumeric CNPJ (4.03.00 st_CNPJ), Receita example
    assert not cnpj_valido("12ABC34501DE36")
    assert cpf_valido(CPF) and not cpf_valido("52998224724") and not cpf_valido("11111111111")
    assert identificacao.tipo_documento(CNPJ) == "CNPJ" and identificacao.tipo_documento(CPF) == "CPF"
    with pytest.raises(PrestadorError, match="CNPJ inválido"):
        identificacao.tipo_documento("11222333000182")
    with pytest.raises(PrestadorError, match=r"CNPJ .* ou CPF"):
        identificacao.tipo_documento("123")


def test_scrypt_hash_format_and_check() -> None:
    md5 = md5_hex(SENHA)
    stored = hash_senha(md5)
    match = re.fullmatch(r"scrypt\$16384\$8\$1\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)", stored)
    assert match, stored
    n, r, par, salt, digest = senhas.parse_senha_hash(stored)
    assert (n, r, par, len(salt), len(digest)) == (2**14, 8, 1, 16, 32)
    assert digest == hashlib.scrypt(md5.encode(), salt=salt, n=n, r=r, p=par, dklen=32)
    assert md5 not in stored and SENHA not in stored
    assert hash_senha(md5) != stored  # salted
    assert confere_senha(stored, md5)
    assert confere_senha(stored, md5.upper())  # some clients send upper-case hex
    assert hash_senha(md5.upper()) != stored and confere_senha(hash_senha(md5.upper()), md5)
    assert not confere_senha(stored, md5_hex("outra"))
    assert not confere_senha(stored, SENHA)  # the clear password is not the MD5
    assert not confere_senha(None, md5)
    assert not confere_senha("scrypt$garbage", md5)
    with pytest.raises(PrestadorError, match="MD5"):
        hash_senha("not-an-md5")


# --- authentication ------------------------------------------------------------------------------

def test_right_password(db_session: Session, clinica: Prestador) -> None:
    result = authenticate(db_session, "clinica", md5_hex(SENHA), now=NOW, endereco="203.0.113.9")
    assert result.ok and result.reason is None and result.prestador.id == clinica.id
    assert bool(result)
    rows = _audit(db_session)
    assert [(a.quem, a.acao, a.endereco) for a in rows] == [("clinica", "login", "203.0.113.9")]
    assert rows[0].em == NOW


def test_upper_case_md5_accepted(db_session: Session, clinica: Prestador) -> None:
    assert authenticate(db_session, "clinica", md5_hex(SENHA).upper(), now=NOW).ok


def _falha(session: Session, login: str, endereco: str) -> FalhaLogin | None:
    return session.scalars(select(FalhaLogin).where(
        FalhaLogin.escopo == "prestador", FalhaLogin.login == login,
        FalhaLogin.endereco == endereco)).one_or_none()


def _login(session: Session, login: str, senha: str, endereco: str, *, now: datetime = NOW,
           limites: Limites = tentativas.PADRAO) -> AuthResult:
    """authenticate() with the password in clear (its MD5 is what a client sends)."""
    return authenticate(session, login, md5_hex(senha), now=now, endereco=endereco, limites=limites)


def test_wrong_passwords_lock_the_login_from_that_address_only(db_session: Session,
                                                               clinica: Prestador) -> None:
    for attempt in range(1, 5):
        result = _login(db_session, "clinica", "errada", OUTRO)
        assert (result.ok, result.reason, result.bloqueado_ate) == (False, "senha", None)
        assert _falha(db_session, "clinica", OUTRO).falhas == attempt
    fifth = _login(db_session, "clinica", "errada", OUTRO)
    assert (fifth.ok, fifth.reason) == (False, "senha")
    assert fifth.bloqueado_ate == NOW + timedelta(minutes=30)

    # From there even the right password is refused until the lock expires; the ERP's address
    # never noticed.
    for minutes in (1, 29):
        now = NOW + timedelta(minutes=minutes)
        locked = _login(db_session, "clinica", SENHA, OUTRO, now=now)
        assert (locked.ok, locked.reason, locked.bloqueado_ate) == (False, "bloqueado", fifth.bloqueado_ate)
        assert _login(db_session, "clinica", SENHA, ERP, now=now).ok
    assert _login(db_session, "clinica", SENHA, OUTRO, now=NOW + timedelta(minutes=30)).ok

    db_session.refresh(clinica)
    assert clinica.falhas_login == 0 and clinica.bloqueado_ate is None  # the account is not touched
    rows = _audit(db_session)
    refused, ok = ("login_recusado", OUTRO), ("login", ERP)
    assert [(a.acao, a.endereco) for a in rows] == [refused] * 5 + [refused, ok] * 2 + [("login", OUTRO)]
    assert "5 falhas seguidas; bloqueado neste endereço até" in rows[4].detalhe
    assert rows[5].detalhe.startswith("motivo=bloqueado; bloqueado neste endereço até")
    assert _falha(db_session, "clinica", OUTRO) is None  # a success forgets the series


def test_lockout_settings(db_session: Session, clinica: Prestador) -> None:
    limites = Limites(falhas_login=2, bloqueio_login=timedelta(minutes=5))
    assert _login(db_session, "clinica", "errada", ERP, limites=limites).bloqueado_ate is None
    locked = _login(db_session, "clinica", "errada", ERP, limites=limites)
    assert locked.bloqueado_ate == NOW + timedelta(minutes=5)
    assert _login(db_session, "clinica", SENHA, ERP, now=NOW + timedelta(minutes=5)).ok


def test_success_resets_the_counter(db_session: Session, clinica: Prestador) -> None:
    for _ in range(4):
        _login(db_session, "clinica", "errada", ERP)
    assert _login(db_session, "clinica", SENHA, ERP).ok
    for _ in range(4):
        assert _login(db_session, "clinica", "errada", ERP).bloqueado_ate is None
    assert _login(db_session, "clinica", SENHA, ERP).ok


def test_a_series_of_failures_is_forgotten_after_a_day(db_session: Session, clinica: Prestador) -> None:
    for _ in range(4):
        _login(db_session, "clinica", "errada", OUTRO)
    later = _login(db_session, "clinica", "errada", OUTRO, now=NOW + timedelta(days=1, seconds=1))
    assert later.bloqueado_ate is None and _falha(db_session, "clinica", OUTRO).falhas == 1


def test_an_address_failing_many_logins_is_refused_for_every_login(db_session: Session, clinica: Prestador,
                                                                  monkeypatch) -> None:
    limites = Limites(falhas_endereco=3, janela_endereco=timedelta(minutes=10),
                      bloqueio_endereco=timedelta(minutes=15))
    until = NOW + timedelta(minutes=15)
    for login in ("ana", "bia"):
        assert _login(db_session, login, "x", OUTRO, limites=limites).reason == "desconhecido"
    third = _login(db_session, "clinica", "x", OUTRO, limites=limites)
    assert (third.reason, third.bloqueado_ate) == ("senha", until)
    assert "3 falhas deste endereço; endereço bloqueado até" in _audit(db_session)[-1].detalhe

    scrypts = _count_scrypt(monkeypatch)
    soon = NOW + timedelta(minutes=1)
    refused = _login(db_session, "clinica", SENHA, OUTRO, now=soon, limites=limites)
    assert (refused.ok, refused.reason, refused.bloqueado_ate) == (False, "endereco", until)
    assert scrypts == []  # refused whatever the login: nothing to hide, no CPU to spend
    assert _audit(db_session)[-1].detalhe.startswith("motivo=endereco; endereço bloqueado até")
    assert _login(db_session, "clinica", SENHA, ERP, now=soon, limites=limites).ok
    assert _falha(db_session, "clinica", OUTRO).bloqueado_ate is None  # the login itself is not locked
    assert _login(db_session, "clinica", SENHA, OUTRO, now=until, limites=limites).ok


def test_the_address_window_starts_at_its_first_failure(db_session: Session, clinica: Prestador) -> None:
    limites = Limites(falhas_endereco=3, janela_endereco=timedelta(minutes=10))
    for now in (NOW, NOW + timedelta(minutes=5), NOW + timedelta(minutes=10, seconds=1),
                NOW + timedelta(minutes=11)):
        assert _login(db_session, "ana", "x", OUTRO, now=now, limites=limites).bloqueado_ate is None


def test_refusals_by_a_lock_count_nothing_more(db_session: Session, clinica: Prestador) -> None:
    limites = Limites(falhas_login=5, falhas_endereco=6)
    for _ in range(5):
        _login(db_session, "clinica", "errada", OUTRO, limites=limites)
    for _ in range(10):  # a misconfigured ERP retrying: refused, and its other logins left alone
        assert _login(db_session, "clinica", "errada", OUTRO, limites=limites).reason == "bloqueado"
    assert _falha(db_session, "", OUTRO).falhas == 5
    sixth = _login(db_session, "ana", "x", OUTRO, limites=limites)
    assert sixth.bloqueado_ate == NOW + timedelta(minutes=15)


def test_unknown_logins_lock_like_known_ones(db_session: Session, clinica: Prestador) -> None:
    """Nothing in the counting tells a login that exists from one that does not."""
    outcomes = {}
    for login in ("clinica", "ninguem"):
        outcomes[login] = [_login(db_session, login, "errada", OUTRO).bloqueado_ate for _ in range(6)]
    assert outcomes["clinica"] == outcomes["ninguem"] == [None] * 4 + [NOW + timedelta(minutes=30)] * 2


def test_ipv6_addresses_in_one_64_share_their_counters(db_session: Session, clinica: Prestador) -> None:
    for host in range(1, 6):
        _login(db_session, "clinica", "errada", f"2001:db8:1:2::{host}")
    assert _login(db_session, "clinica", SENHA, "2001:db8:1:2:ffff::9").reason == "bloqueado"
    assert _login(db_session, "clinica", SENHA, "2001:db8:1:3::1").ok


def test_enable_lifts_the_locks_of_every_address(db_session: Session, clinica: Prestador) -> None:
    for endereco in (OUTRO, ERP):
        for _ in range(5):
            _login(db_session, "clinica", "errada", endereco)
    assert [e for e, _ate in tentativas.bloqueios(db_session, "prestador", "clinica", NOW)] == [OUTRO, ERP]
    enable_prestador(db_session, "clinica")
    db_session.commit()
    assert tentativas.bloqueios(db_session, "prestador", "clinica", NOW) == []
    assert _login(db_session, "clinica", SENHA, OUTRO).ok


def test_a_cached_login_is_still_good_only_while_unlocked(db_session: Session, clinica: Prestador) -> None:
    """What the SOAP front asks of a login it verified earlier (gateway.inbound.checks)."""
    def liberado(endereco: str) -> bool:
        return prestadores.liberado(db_session, clinica.id, "clinica", endereco, NOW)

    assert liberado(OUTRO) and liberado(ERP)
    for _ in range(5):
        authenticate(db_session, "clinica", md5_hex("errada"), now=NOW, endereco=OUTRO)
    assert not liberado(OUTRO) and liberado(ERP)
    limites = Limites(falhas_endereco=1)
    authenticate(db_session, "ana", md5_hex("x"), now=NOW, endereco="192.0.2.1", limites=limites)
    assert not liberado("192.0.2.1")
    assert prestadores.liberado(db_session, clinica.id, "clinica", OUTRO, NOW + timedelta(minutes=30))
    disable_prestador(db_session, "clinica")
    db_session.commit()
    assert not liberado(ERP)


def test_disabled_provider_refused(db_session: Session, clinica: Prestador) -> None:
    disable_prestador(db_session, "clinica")
    db_session.commit()
    result = authenticate(db_session, "clinica", md5_hex(SENHA), now=NOW)
    assert (result.ok, result.reason, result.prestador) == (False, "inativo", None)
    assert _audit(db_session)[-1].detalhe.startswith("motivo=inativo")
    enable_prestador(db_session, "clinica")
    db_session.commit()
    assert authenticate(db_session, "clinica", md5_hex(SENHA), now=NOW).ok


def _count_scrypt(monkeypatch) -> list[int]:
    senhas._dummy_hash()  # computed once per process, not part of the request
    calls: list[int] = []
    real = hashlib.scrypt
    monkeypatch.setattr(senhas.hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_every_refusal_costs_one_scrypt(db_session: Session, clinica: Prestador, monkeypatch) -> None:
    """Unknown, wrong, inactive and locked take the same time: one scrypt each."""
    calls = _count_scrypt(monkeypatch)
    result = authenticate(db_session, "ninguem", md5_hex(SENHA), now=NOW, endereco="198.51.100.7")
    assert (result.ok, result.reason) == (False, "desconhecido")
    assert len(calls) == 1
    audit = _audit(db_session)[-1]
    assert (audit.quem, audit.acao, audit.endereco) == ("anonimo", "login_recusado", "198.51.100.7")
    assert "ninguem" in audit.detalhe
    for expected in ["senha"] * 5 + ["bloqueado"]:
        calls.clear()
        assert authenticate(db_session, "clinica", md5_hex("errada"), now=NOW).reason == expected
        assert len(calls) == 1
    disable_prestador(db_session, "clinica")
    db_session.commit()
    calls.clear()
    assert authenticate(db_session, "clinica", md5_hex(SENHA), now=NOW, endereco=ERP).reason == "inativo"
    assert len(calls) == 1


def test_provider_without_password_cannot_log_in(db_session: Session) -> None:
    add_prestador(db_session, CPF, "Dra. Maria", "maria", None)
    db_session.commit()
    assert authenticate(db_session, "maria", md5_hex(""), now=NOW).reason == "senha"


def test_authenticate_without_commit(db_session: Session, clinica: Prestador) -> None:
    authenticate(db_session, "clinica", md5_hex("errada"), now=NOW, commit=False)
    db_session.rollback()
    assert _audit(db_session) == []


# --- management ---------------------------------------------------------------------------------

def test_add_and_list(db_session: Session, clinica: Prestador) -> None:
    add_prestador(db_session, CPF, "Dra. Maria", "maria", md5_hex("x"), senha_md5=True)
    db_session.commit()
    listed = list_prestadores(db_session)
    assert [x.login for x in listed] == ["clinica", "maria"]
    assert listed[0].documento == CNPJ and listed[0].tipo_documento == "CNPJ"
    assert {c.registro_ans: c.codigo_na_operadora for c in listed[0].codigos} == {
        "329665": "000123", "424188": "5012377"}
    assert listed[0].codigo_em("329665") == "000123" and listed[0].codigo_em("331988") is None
    assert listed[1].tipo_documento == "CPF"
    assert authenticate(db_session, "maria", md5_hex("x"), now=NOW).ok


@pytest.mark.parametrize(("documento", "login", "codigos", "message"), [
    (CNPJ, "outro", {}, "documento"),
    ("12ABC34501DE35", "clinica", {}, "login"),
    ("12ABC34501DE35", "outro", {"329665": "000123"}, "outro prestador"),
    ("12ABC34501DE35", "outro", {"32966": "1"}, "6 dígitos"),
    ("11222333000182", "outro", {}, "CNPJ inválido"),
    ("12ABC34501DE35", "com espaço", {}, "login"),
])
def test_add_refused(db_session: Session, clinica: Prestador, documento, login, codigos, message) -> None:
    with pytest.raises(PrestadorError, match=message):
        add_prestador(db_session, documento, "Outro", login, "x", codigos)


def test_disable_unknown(db_session: Session) -> None:
    with pytest.raises(PrestadorError, match="não encontrado"):
        disable_prestador(db_session, "ninguem")


def test_seed_from_config(db_session: Session) -> None:
    config = demo_config()
    seed_from_config(db_session, config)
    db_session.commit()
    demo = find_by_origem(db_session, cnpj=CNPJ)
    assert demo is not None and demo.login == "demo"
    assert authenticate(db_session, "demo", md5_hex("demo"), now=NOW).ok
    assert len(demo.codigos) == 5

    # Again, without a password and with a changed code: the password stays, the code changes.
    item = config.prestadores[0]
    codigos = dict(item.codigos) | {"329665": "999"}
    novo = PrestadorConfig(item.documento, "Novo nome", "demo", None, codigos)
    changed = replace(config, prestadores=(novo,))
    disable_prestador(db_session, "demo")
    seed_from_config(db_session, changed)
    db_session.commit()
    db_session.expire_all()
    demo = find_by_origem(db_session, codigo_na_operadora="999", registro_ans="329665")
    assert demo is not None and demo.nome == "Novo nome" and demo.senha_hash is not None
    assert not demo.ativo  # seeding does not re-enable
    assert len(list_prestadores(db_session)) == 1


def test_find_by_origem(db_session: Session, clinica: Prestador) -> None:
    add_prestador(db_session, CPF, "Dra. Maria", "maria", "x", {"329665": "777"})
    db_session.commit()
    assert find_by_origem(db_session, cnpj=CNPJ).login == "clinica"
    assert find_by_origem(db_session, cpf=CPF).login == "maria"
    assert find_by_origem(db_session, cpf=CNPJ) is None  # a CNPJ sent as cpfContratado
    assert find_by_origem(db_session, codigo_na_operadora="000123", registro_ans="329665").login == "clinica"
    assert find_by_origem(db_session, codigo_na_operadora="777", registro_ans="329665").login == "maria"
    assert find_by_origem(db_session, codigo_na_operadora="000123", registro_ans="424188") is None
    assert find_by_origem(db_session, codigo_na_operadora="5012377", registro_ans="424188").login == "clinica"
    with pytest.raises(ValueError, match="registro_ans"):
        find_by_origem(db_session, codigo_na_operadora="000123")
    with pytest.raises(ValueError, match="exatamente um"):
        find_by_origem(db_session, cnpj=CNPJ, cpf=CPF)
