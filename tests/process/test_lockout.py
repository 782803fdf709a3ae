"""Lockout that cannot be used against a provider or the console admin (issue 16, finding 6), over
HTTP against a real ``tiss-gateway serve --demo`` (gunicorn, 2 workers) per database backend.

Clients come from different loopback addresses (127.0.x.y: the whole 127/8 is the loopback on
Linux), so the gateway sees them as different client addresses: an attacker's failures lock the
login from the attacker's address only, an address failing many logins is refused for every
login, and unknown, wrong, inactive and locked get the same answer. Each test has its own
providers and addresses; the counters are read back from ``falha_login``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree
from requests.adapters import HTTPAdapter
from sqlalchemy import Engine, select
from sqlalchemy.pool import NullPool

from gateway.message.services import ANS_NS, SOAP11_NS
from gateway.storage.db import make_engine
from gateway.storage.models import Auditoria, FalhaLogin, Mensagem
from tests.console_client import Console
from tests.db_fixtures import BACKENDS, backend_url, reading_engine
from tests.factory import Party, build_lote, cnpj_check_digits
from tests.gateway_process import GatewayProcess, cli

LOTE = "/tiss/v4_03_00/tissLoteGuias"
NS = {"ans": ANS_NS, "soap": SOAP11_NS}
TEXTO = "Login ou senha inválidos."
_numeros = iter(range(1, 10**6))


class _FromAddress(HTTPAdapter):
    """Connections from a given local address (a client at another IP, as far as the server sees)."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def http_from(address: str, http: requests.Session | None = None) -> requests.Session:
    http = http or requests.Session()
    http.mount("http://", _FromAddress(address))
    return http


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(request: pytest.FixtureRequest, tiss_home: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with GatewayProcess(backend_url(request, tmp_path_factory, "lockout"), tiss_home, workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def db(gateway: GatewayProcess) -> Iterator[Engine]:
    yield from reading_engine(gateway.database_url)


def prestador(gateway: GatewayProcess, base: str, login: str) -> Party:
    """A provider of its own for one test (with a code at PASA, where its lotes go)."""
    party = Party(cnpj=cnpj_check_digits(base), login=login, senha=f"senha-{login}")
    done = cli("prestador", "add", "--database", gateway.database_url, "--documento", party.cnpj, "--nome",
               f"Prestador {login}", "--login", login, "--senha-stdin", "--codigo", f"331988=7{base}",
               home=gateway.home, stdin=party.senha + "\n")
    assert done.returncode == 0, done.stderr
    return party


def errada(party: Party, login: str | None = None) -> Party:
    return Party(cnpj=party.cnpj, login=login or party.login, senha="errada")


def enviar(gateway: GatewayProcess, address: str, party: Party) -> requests.Response:
    numero = str(next(_numeros))
    data = build_lote("sp-sadt", 1, envelope=True, numero_lote=numero, sequencial=numero, party=party)
    return http_from(address).post(gateway.url(LOTE), data=data, timeout=60, headers={
        "Content-Type": "text/xml; charset=ISO-8859-1", "SOAPAction": '""'})  # build_lote's encoding


def resposta(response: requests.Response) -> tuple[int, str, str]:
    """(HTTP status, tissFault, faultstring) of a fault; ``(200, "", "")`` for an answer."""
    if response.status_code == 200:
        return 200, "", ""
    root = etree.fromstring(response.content)
    found = root.xpath("soap:Body/soap:Fault/detail/ans:tissFaultWS/ans:tissFault/text()", namespaces=NS)
    return response.status_code, found[0], root.findtext("soap:Body/soap:Fault/faultstring", namespaces=NS)


RECUSADO = (500, "LoginInvalido", TEXTO)
ACEITO = (200, "", "")


def falhas(db: Engine, login: str, endereco: str, escopo: str = "prestador") -> FalhaLogin | None:
    with db.connect() as connection:
        return connection.execute(select(FalhaLogin).where(
            FalhaLogin.escopo == escopo, FalhaLogin.login == login, FalhaLogin.endereco == endereco)).first()


def auditoria(db: Engine, endereco: str) -> list[Auditoria]:
    with db.connect() as connection:
        return list(connection.execute(select(Auditoria).where(Auditoria.endereco == endereco)
                                       .order_by(Auditoria.id)))


# --- the SOAP front -----------------------------------------------------------------------------------


def test_an_attacker_elsewhere_cannot_lock_the_provider_out(gateway, db):
    party, erp, atacante = prestador(gateway, "610000010001", "vitima"), "127.0.1.1", "127.0.1.2"
    for _ in range(5):
        assert resposta(enviar(gateway, atacante, errada(party))) == RECUSADO
    assert resposta(enviar(gateway, atacante, party)) == RECUSADO  # the right password, from there
    for _ in range(4):  # the provider's ERP, on both workers, never noticed
        assert resposta(enviar(gateway, erp, party)) == ACEITO
    row = falhas(db, party.login, atacante)
    assert row.bloqueado_ate is not None and falhas(db, party.login, erp) is None
    motivos = [a.detalhe for a in auditoria(db, atacante)]
    assert len(motivos) == 6 and "5 falhas seguidas; bloqueado neste endereço" in motivos[4]
    assert motivos[5].startswith("motivo=bloqueado")
    assert [a.acao for a in auditoria(db, erp)] == ["login"] * len(auditoria(db, erp))


def test_unknown_wrong_inactive_and_locked_get_the_same_answer(gateway, db):
    party, endereco = prestador(gateway, "620000020001", "mesma"), "127.0.2.1"
    inativo = prestador(gateway, "620000020002", "inativo")
    done = cli("prestador", "disable", inativo.login, "--database", gateway.database_url, home=gateway.home)
    assert done.returncode == 0, done.stderr
    cases = {"desconhecido": Party(cnpj=party.cnpj, login="nao-existe", senha="x"), "senha": errada(party),
             "inativo": inativo}
    seen: dict[str, list[tuple[int, str, str]]] = {}

    def attempt(case: str, who: Party) -> None:
        seen.setdefault(case, []).append(resposta(enviar(gateway, endereco, who)))
        with db.connect() as connection:
            codigo = connection.scalar(select(Mensagem.codigo_erro).where(Mensagem.endereco == endereco)
                                       .order_by(Mensagem.id.desc()).limit(1))
        assert codigo == "5005"

    for case, who in cases.items():
        for _ in range(3 if case != "senha" else 5):  # the fifth wrong password locks
            attempt(case, who)
    for _ in range(3):
        attempt("bloqueado", party)  # the right password, locked from here
    assert {answer for answers in seen.values() for answer in answers} == {RECUSADO}
    # That each case costs one scrypt (no case stands out by its time) is a unit test
    # (tests/unit/test_prestadores.py): timings over HTTP on a shared machine prove nothing.
    motivos = [a.detalhe.split(";")[0] for a in auditoria(db, endereco)]
    assert set(motivos) == {"motivo=desconhecido", "motivo=senha", "motivo=inativo", "motivo=bloqueado"}


def test_an_address_failing_many_logins_is_refused_for_every_login(gateway, db):
    """[gateway] throttle_failures (20) failures in throttle_window_minutes (10) from one address."""
    party, atacante, erp = prestador(gateway, "630000030001", "terceira"), "127.0.3.1", "127.0.3.2"
    for n in range(20):
        assert resposta(enviar(gateway, atacante, Party(login=f"chute{n}", senha="x"))) == RECUSADO
    assert resposta(enviar(gateway, atacante, party)) == RECUSADO  # a right login, from there
    assert resposta(enviar(gateway, erp, party)) == ACEITO
    assert falhas(db, "", atacante).bloqueado_ate is not None
    assert falhas(db, party.login, atacante) is None  # no account touched
    ultimo = auditoria(db, atacante)[-1]
    assert (ultimo.quem, ultimo.acao) == (party.login, "login_recusado")
    assert ultimo.detalhe.startswith("motivo=endereco; endereço bloqueado até")


def test_a_cached_login_follows_the_locks_of_its_address(gateway, db):
    """Verified logins are cached per worker and per address: the ERP's stays good while another
    address is locked, and a lock from the ERP's own address applies at once on every worker."""
    party, erp, atacante = prestador(gateway, "640000040001", "cache"), "127.0.4.1", "127.0.4.2"
    for _ in range(4):  # enough for both workers to have verified (and cached) the login
        assert resposta(enviar(gateway, erp, party)) == ACEITO
    for _ in range(5):
        assert resposta(enviar(gateway, atacante, errada(party))) == RECUSADO
    for _ in range(4):
        assert resposta(enviar(gateway, erp, party)) == ACEITO
    for _ in range(5):
        assert resposta(enviar(gateway, erp, errada(party))) == RECUSADO
    for _ in range(4):
        assert resposta(enviar(gateway, erp, party)) == RECUSADO
    enabled = cli("prestador", "enable", party.login, "--database", gateway.database_url, home=gateway.home)
    assert enabled.returncode == 0, enabled.stderr
    for address in (erp, atacante):
        assert resposta(enviar(gateway, address, party)) == ACEITO


def test_the_counters_live_in_the_database_shared_by_every_process(gateway, db, tiss_home):
    """Failures seen by one server count on another one on the same database (another host, or the
    same one after a restart): nothing is kept in a process."""
    party, atacante = prestador(gateway, "650000050001", "partilhada"), "127.0.5.1"
    for _ in range(3):
        assert resposta(enviar(gateway, atacante, errada(party))) == RECUSADO
    with GatewayProcess(gateway.database_url, tiss_home, workers=1) as outro:
        for _ in range(2):
            assert resposta(enviar(outro, atacante, errada(party))) == RECUSADO
        assert resposta(enviar(outro, atacante, party)) == RECUSADO
    assert resposta(enviar(gateway, atacante, party)) == RECUSADO
    assert falhas(db, party.login, atacante).bloqueado_ate is not None
    assert resposta(enviar(gateway, "127.0.5.2", party)) == ACEITO


# --- the web console ----------------------------------------------------------------------------------


def console_from(gateway: GatewayProcess, address: str) -> Console:
    client = Console(gateway.base_url)
    http_from(address, client.http)
    return client


def mensagem(response: requests.Response) -> str:
    found = etree.HTML(response.text).xpath('//*[@role="alert"]')
    return " ".join(" ".join("".join(e.itertext()).split()) for e in found)


def test_nobody_elsewhere_can_lock_the_console_admin_out(gateway, db):
    """serve --demo's console user ``demo`` (admin, senha demo)."""
    atacante, admin = "127.0.6.2", "127.0.6.1"
    pages = [console_from(gateway, atacante).login("demo", "errada") for _ in range(5)]
    pages.append(console_from(gateway, atacante).login("demo", "demo"))  # right, locked from here
    pages.append(console_from(gateway, atacante).login("ninguem", "x"))
    assert [p.status_code for p in pages] == [401] * 7
    assert len({mensagem(p) for p in pages}) == 1 and mensagem(pages[0])
    assert console_from(gateway, admin).login("demo", "demo").status_code == 303
    assert falhas(db, "demo", atacante, "console").bloqueado_ate is not None
    motivos = [a.detalhe for a in auditoria(db, atacante) if a.acao == "console_login_recusado"]
    assert motivos[5].startswith("motivo=bloqueado") and "login desconhecido" in motivos[6]


def test_a_console_address_failing_many_logins_is_refused_for_every_login(gateway, db):
    atacante, escritorio = "127.0.6.3", "127.0.6.4"
    done = cli("usuario", "add", "operadora.b", "--nome", "Operador B", "--papel", "operador",
               "--senha-stdin", "--database", gateway.database_url, home=gateway.home,
               stdin="senha-forte-123\n")
    assert done.returncode == 0, done.stderr
    for n in range(20):
        assert console_from(gateway, atacante).login(f"chute{n}", "x").status_code == 401
    assert console_from(gateway, atacante).login("operadora.b", "senha-forte-123").status_code == 401
    assert console_from(gateway, escritorio).login("operadora.b", "senha-forte-123").status_code == 303
    assert falhas(db, "", atacante, "console").bloqueado_ate is not None
    assert falhas(db, "operadora.b", atacante, "console") is None  # no account touched


# --- behind a reverse proxy ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def behind_proxy(tiss_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway whose trusted proxy is 127.0.9.9: requests from there name their client in
    X-Forwarded-For (as nginx does); every other peer's header is ignored."""
    from tests.process.test_hostile import configured, write_config

    home = tmp_path_factory.mktemp("lockout-proxy")
    config = write_config(home, trusted_proxies=["127.0.9.9"])
    with configured(f"sqlite:///{home / 'gateway.sqlite'}", tiss_home, config, workers=2) as server:
        yield server


def enviar_via(gateway: GatewayProcess, peer: str, forwarded: str, party: Party) -> requests.Response:
    numero = str(next(_numeros))
    data = build_lote("sp-sadt", 1, envelope=True, numero_lote=numero, sequencial=numero, party=party)
    return http_from(peer).post(gateway.url(LOTE), data=data, timeout=60, headers={
        "Content-Type": "text/xml; charset=ISO-8859-1", "X-Forwarded-For": forwarded})


def test_behind_a_trusted_proxy_the_lock_follows_the_forwarded_client(behind_proxy):
    """Through the proxy the attacker (10.0.0.66) locks only itself; the ERP (10.0.0.5) comes
    through the same proxy and keeps working. A peer that is not the proxy cannot pick its
    address with the header: its failures count on its own address."""
    party, proxy = prestador(behind_proxy, "680000080001", "atras"), "127.0.9.9"
    for _ in range(5):
        assert resposta(enviar_via(behind_proxy, proxy, "10.0.0.66", errada(party))) == RECUSADO
    assert resposta(enviar_via(behind_proxy, proxy, "10.0.0.66", party)) == RECUSADO  # locked there
    assert resposta(enviar_via(behind_proxy, proxy, "203.0.113.7, 10.0.0.5", party)) == ACEITO
    engine = make_engine(behind_proxy.database_url, poolclass=NullPool)
    try:
        assert falhas(engine, party.login, "10.0.0.66").bloqueado_ate is not None
        assert falhas(engine, party.login, proxy) is None  # never the proxy's address
        spoofer = "127.0.9.10"  # not a trusted proxy: X-Forwarded-For is ignored
        for forwarded in ("10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5"):
            assert resposta(enviar_via(behind_proxy, spoofer, forwarded, errada(party))) == RECUSADO
        assert falhas(engine, party.login, spoofer).bloqueado_ate is not None
        assert resposta(enviar_via(behind_proxy, spoofer, "10.0.0.5", party)) == RECUSADO
    finally:
        engine.dispose()
