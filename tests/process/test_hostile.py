"""Hostile clients and bad days over HTTP (issue 16, findings 1, 2, 4, 5 and 7): a real
``tiss-gateway serve`` per database backend, what a refused message costs it, what it takes at
the door, what its WSDL says, and when ``/readyz`` says it can no longer write.

Costs are checked as rows and bytes stored (the time and memory of the same messages are measured
by ``bench/hostile.py``, not here). The disk-full case mounts a small tmpfs for the SQLite file (it
needs root or CAP_SYS_ADMIN, and is skipped with the reason otherwise); the PostgreSQL read-only case
makes the gateway's own role read-only (``default_transaction_read_only``).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from gateway.message import credencial, hashing
from gateway.message.identificacao import md5_hex
from gateway.message.services import ANS_NS, SOAP11_NS
from gateway.security.senhas import hash_senha
from gateway.storage.db import make_engine
from gateway.storage.models import Critica, Lote, Mensagem
from tests.db_fixtures import BACKENDS, backend_url, pg_dsn, reading_engine, schema_url
from tests.factory import build_lote
from tests.gateway_process import GatewayProcess

NS = {"ans": ANS_NS, "soap": SOAP11_NS, "wsdlsoap": "http://schemas.xmlsoap.org/wsdl/soap/"}
LOTE = "/tiss/v4_03_00/tissLoteGuias"
KEPT = 64 * 1024  # [gateway] refused_body_bytes, default
_ids = itertools.count(1)


def new_id() -> str:
    return str(next(_ids))


def lote(**kwargs) -> bytes:
    numero = new_id()
    return build_lote("sp-sadt", 1, envelope=True, numero_lote=numero, sequencial=numero, **kwargs)


def post(server: GatewayProcess, data: bytes, content_type: str | None = "text/xml; charset=ISO-8859-1",
         path: str = LOTE, request_id: str | None = None) -> requests.Response:
    headers = {"SOAPAction": '""', "Content-Type": content_type}
    if request_id:
        headers["X-Request-Id"] = request_id
    if content_type is None:  # requests would send none for bytes anyway; make sure
        headers.pop("Content-Type")
    return requests.post(server.url(path), data=data, headers=headers, timeout=120)


def fault(response: requests.Response) -> tuple[str, str]:
    root = etree.fromstring(response.content)
    return (root.findtext(".//ans:tissFault", namespaces=NS),
            root.findtext("soap:Body/soap:Fault/faultstring", namespaces=NS))


def accepted(response: requests.Response) -> bool:
    return response.status_code == 200 and b"numeroProtocolo" in response.content


def stored(engine: Engine, request_id: str) -> tuple[Mensagem, list[tuple[str | None, str]]]:
    with engine.connect() as connection:
        mensagem = connection.execute(select(Mensagem).where(Mensagem.request_id == request_id)).one()
        criticas = connection.execute(select(Critica.codigo, Critica.mensagem).where(
            Critica.mensagem_id == mensagem.id).order_by(Critica.id)).all()
    return mensagem, [tuple(c) for c in criticas]


def count(engine: Engine, model, *where) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(model).where(*where))


# --- the gateways -------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
def gateway(request, tiss_home: Path, tmp_path_factory) -> Iterator[GatewayProcess]:
    """``serve --demo``: the default settings."""
    with GatewayProcess(backend_url(request, tmp_path_factory, "hostile"), tiss_home, workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def db(gateway: GatewayProcess) -> Iterator[Engine]:
    yield from reading_engine(gateway.database_url)


def write_config(home: Path, **gateway_settings: object) -> Path:
    """PASA (store only) and the demo provider, with these ``[gateway]`` settings."""
    lines = ["[gateway]", *(f"{k} = {_toml(v)}" for k, v in gateway_settings.items()), "",
             "[operadoras.331988]", 'nome = "PASA"', 'adapter = "pasa"', "",
             "[[prestadores]]", 'documento = "11222333000181"', 'nome = "Clínica Demo"', 'login = "demo"',
             f'senha_hash = "{hash_senha(md5_hex("demo"))}"', "[prestadores.codigos]", '"331988" = "1004567"']
    path = home / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return str(value)


def configured(url: str, home: Path, config: Path, workers: int = 1) -> GatewayProcess:
    return GatewayProcess(url, home, workers=workers, demo=False, extra_args=("--config", str(config)))


# --- 1. findings amplification before login -----------------------------------------------------------

def test_600k_unknown_attributes_cost_one_critica_and_64_kb(gateway, db):
    attributes = b" ".join(b'x%d="1"' % i for i in range(600_000))
    data = lote().replace(b"<ans:loteGuias>", b"<ans:loteGuias " + attributes + b">", 1)
    assert len(data) > 7_000_000
    response = post(gateway, data, request_id="hostil-atributos")
    assert response.status_code == 500
    found, text = fault(response)
    assert found == "SchemaInvalido" and "Mensagem com 600000 atributos" in text
    mensagem, criticas = stored(db, "hostil-atributos")
    kept = credencial.redact(data).corpo[:KEPT]  # no senha at rest
    assert (mensagem.tamanho, mensagem.corpo, mensagem.codigo_erro) == (len(data), kept, "5001")
    assert mensagem.sha256_original == hashlib.sha256(data).hexdigest()
    assert [c for c, _text in criticas] == ["5001", None]  # today: 600,000 rows
    assert criticas[1][1].endswith(f"SHA-256 da mensagem inteira: {hashlib.sha256(data).hexdigest()}.")
    assert accepted(post(gateway, lote()))  # the worker is fine


def test_many_schema_errors_are_answered_and_stored_as_the_first_100(gateway, db):
    data = lote().replace(b"<ans:procedimentosExecutados>",
                          b"<ans:procedimentosExecutados>" + b"<ans:procedimentoExecutado/>" * 30_000, 1)
    response = post(gateway, data, request_id="hostil-itens")
    found, text = fault(response)
    assert found == "SchemaInvalido" and text.count("Missing child element") == 5  # the first five
    _mensagem, criticas = stored(db, "hostil-itens")
    assert len(criticas) == 100 + 2  # 100, "stopped after 100", the body's digest; today: 30,000
    assert criticas[100][1].startswith("Verificação interrompida após 100 críticas")


# --- 2. refused bodies before login; a budget per address -------------------------------------------

def test_garbage_bodies_are_kept_up_to_64_kb(gateway, db):
    garbage = secrets.token_bytes(3 * 1024 * 1024)
    for i in range(6):
        response = post(gateway, garbage, request_id=f"hostil-lixo-{i}")
        assert response.status_code == 500 and fault(response)[0] == "SchemaInvalido"
    with db.connect() as connection:
        sizes = connection.execute(select(Mensagem.tamanho, func.length(Mensagem.corpo)).where(
            Mensagem.request_id.like("hostil-lixo-%"))).all()
    assert sizes == [(len(garbage), KEPT)] * 6  # today: 6 x 3 MiB


@pytest.fixture(scope="module", params=BACKENDS)
def budgeted(request, tiss_home: Path, tmp_path_factory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("budget")
    config = write_config(home, refusals_per_minute=3)
    with configured(backend_url(request, tmp_path_factory, "budget"), tiss_home, config) as server:
        yield server


def test_refusals_past_the_budget_are_answered_not_stored(budgeted):
    engine = make_engine(budgeted.database_url, poolclass=NullPool)
    try:
        if time.time() % 60 > 50:  # the budget's window is the minute: start in a fresh one
            time.sleep(61 - time.time() % 60)
        for i in range(8):
            response = post(budgeted, b"nada disso \xe9 XML", request_id=f"budget-{i}")
            assert response.status_code == 500 and fault(response)[0] == "SchemaInvalido"
        assert count(engine, Mensagem, Mensagem.request_id.like("budget-%")) == 3
        assert "recusas acima do limite (3 por minuto de 127.0.0.1" in budgeted.log()
        assert accepted(post(budgeted, lote()))  # a provider's own messages are not refusals
    finally:
        engine.dispose()


# --- 4 and 5: what is taken at the door ----------------------------------------------------------------

def restamped(data: bytes, encoding: str) -> bytes:
    """A bare lote with its hash computed over its values in ``encoding``."""
    digest = hashing.compute(etree.fromstring(data), encoding)
    return re.sub(rb"<ans:hash>[0-9a-fA-F]+</ans:hash>", f"<ans:hash>{digest}</ans:hash>".encode(), data)


def soap(body: bytes, declaration: bytes = b"") -> bytes:
    return (declaration + f'<soapenv:Envelope xmlns:soapenv="{SOAP11_NS}"><soapenv:Body>'.encode() + body
            + b"</soapenv:Body></soapenv:Envelope>")


def bare(encoding: str = "UTF-8") -> bytes:
    """A bare lote without its XML declaration (hash by the declared rule of ``encoding``)."""
    numero = new_id()
    data = build_lote("sp-sadt", 1, encoding=encoding, numero_lote=numero, sequencial=numero)
    return re.sub(rb"^<\?xml[^>]*\?>\s*", b"", data)


def utf16_lote() -> bytes:
    """A lote in UTF-16 whose hash matches by the declared-encoding rule (the gateway took it)."""
    text = soap(bare()).decode("utf-8")
    data = ('<?xml version="1.0" encoding="UTF-16"?>' + text).encode("utf-16")
    root = etree.fromstring(data).find("soap:Body", NS)[0]
    digest = hashing.compute(root, "UTF-16")
    return re.sub(r"<ans:hash>\w+</ans:hash>", f"<ans:hash>{digest}</ans:hash>",
                  data.decode("utf-16")).encode("utf-16")


def utf8_declared_latin1() -> bytes:
    """What suds sends for an ISO-8859-1 document: its text re-encoded as UTF-8, the declaration
    left saying ISO-8859-1, the hash (computed by the client) over the UTF-8 values."""
    numero = new_id()
    latin1 = build_lote("sp-sadt", 1, numero_lote=numero, sequencial=numero)
    return soap(re.sub(rb"^<\?xml[^>]*\?>\s*", b"", restamped(latin1, "UTF-8")).decode("latin-1").encode(),
                b'<?xml version="1.0" encoding="ISO-8859-1"?>')


DOOR: dict[str, tuple[Callable[[], bytes], str | None, str, str]] = {
    # case: (body, Content-Type, HTTP status, text of the fault)
    "utf-16": (utf16_lote, "text/xml; charset=UTF-16", "500", "informada no Content-Type não é aceita"),
    "utf-16-declared": (utf16_lote, "text/xml", "500", "Mensagem codificada em UTF-16"),
    "windows-1252": (lambda: soap(bare("ISO-8859-1"), b'<?xml version="1.0" encoding="windows-1252"?>'),
                     "text/xml", "500", "Codificação windows-1252 declarada na mensagem não é aceita"),
    "utf-8-declared-latin1": (utf8_declared_latin1, "text/xml; charset=ISO-8859-1", "500",
                              "declara ISO-8859-1, mas seus bytes são UTF-8"),
    "two-lotes": (lambda: soap(bare() + bare()), "text/xml; charset=UTF-8", "500",
                  "O soap:Body traz mais de um elemento (loteGuiasWS e loteGuiasWS)"),
    "json": (lambda: soap(bare()), "application/json", "415", "Content-Type application/json não é aceito"),
    "no-content-type": (lambda: soap(bare()), None, "415", "Requisição sem Content-Type"),
    "soap-1.2-type": (lambda: soap(bare()), "application/soap+xml; charset=utf-8", "415",
                      "application/soap+xml é o do SOAP 1.2"),
}


@pytest.mark.parametrize("case", DOOR, ids=list(DOOR))
def test_what_is_refused_at_the_door(gateway, db, case):
    build, content_type, status, expected = DOOR[case]
    data = build()
    lotes = count(db, Lote)
    request_id = "porta-" + case.replace(".", "")  # X-Request-Id: [A-Za-z0-9_-] only
    response = post(gateway, data, content_type, request_id=request_id)
    assert str(response.status_code) == status, response.content[:1000]
    found, text = fault(response)
    assert found == "SchemaInvalido" and expected in text, text
    assert count(db, Lote) == lotes  # today: a protocol (and, for two lotes, the second one lost)
    mensagem, criticas = stored(db, request_id)
    assert mensagem.resultado == "recusada" and mensagem.corpo == credencial.redact(data).corpo  # no senha
    assert criticas[0] == ("5001", text)


def test_what_is_taken_at_the_door(gateway):
    """The same lote in ISO-8859-1 and UTF-8, under any charset of theirs, with comments around it."""
    assert accepted(post(gateway, lote(), "text/xml; charset=ISO-8859-1"))
    assert accepted(post(gateway, lote(encoding="UTF-8"), "text/xml; charset=utf-8"))
    assert accepted(post(gateway, lote(), "text/xml"))
    assert accepted(post(gateway, lote(), 'text/xml; charset="latin1"'))
    commented = soap(b"<!-- ERP X -->\n" + bare() + b"\n<!-- fim -->\n")
    assert accepted(post(gateway, commented, "text/xml; charset=UTF-8"))


# --- 7. the WSDL's soap:address ------------------------------------------------------------------------

def wsdl_address(server: GatewayProcess, **headers: str) -> str:
    response = requests.get(server.url(LOTE) + "?wsdl", headers=headers, timeout=30)
    assert response.status_code == 200
    (location,) = etree.fromstring(response.content).xpath("//wsdlsoap:address/@location", namespaces=NS)
    return location


@pytest.fixture(scope="module")
def behind_a_proxy(tiss_home: Path, tmp_path_factory) -> Iterator[GatewayProcess]:
    """A gateway whose only trusted proxy is 10.9.9.9 (not the tests' 127.0.0.1)."""
    home = tmp_path_factory.mktemp("proxy")
    config = write_config(home, trusted_proxies=["10.9.9.9"])
    with configured(f"sqlite:///{home / 'gateway.sqlite'}", tiss_home, config) as server:
        yield server


def test_soap_address_takes_no_scheme_from_an_untrusted_peer(behind_a_proxy):
    port = behind_a_proxy.port
    assert wsdl_address(behind_a_proxy, Host="evil.example", **{"X-Forwarded-Proto": "javascript"}) \
        == "http://evil.example/tiss/v4_03_00/tissLoteGuias"  # today: javascript://evil.example/...
    assert wsdl_address(behind_a_proxy, **{"X-Forwarded-Proto": "https"}) \
        == f"http://127.0.0.1:{port}/tiss/v4_03_00/tissLoteGuias"
    assert wsdl_address(behind_a_proxy, Host='evil.example"><x') \
        == f"http://127.0.0.1:{port}/tiss/v4_03_00/tissLoteGuias"


def test_soap_address_takes_https_from_a_trusted_proxy(gateway):
    """``serve --demo`` has no trusted_proxies: gunicorn's default trusts this host (127.0.0.1)."""
    assert wsdl_address(gateway, Host="tiss.example", **{"X-Forwarded-Proto": "https"}) \
        == "https://tiss.example/tiss/v4_03_00/tissLoteGuias"
    assert wsdl_address(gateway, Host="tiss.example", **{"X-Forwarded-Proto": "javascript"}) \
        == "http://tiss.example/tiss/v4_03_00/tissLoteGuias"


# --- 2. /readyz when the database cannot write ----------------------------------------------------------

def readyz(server: GatewayProcess) -> tuple[int, dict]:
    response = requests.get(server.url("/readyz"), timeout=30)
    return response.status_code, response.json()


def wait_for(server: GatewayProcess, status: int, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        code, body = readyz(server)
        if code == status or time.monotonic() > deadline:
            assert code == status, body
            return body
        time.sleep(0.3)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs: a real file system that fills up."""
    mount = tmp_path / "disco"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"montar um tmpfs exige root ou CAP_SYS_ADMIN: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path, leave_bytes: int) -> Path:
    """A file that leaves ``leave_bytes`` free on ``directory``'s file system."""
    stat = os.statvfs(directory)
    filler = directory / "enchimento"
    with filler.open("wb") as file:
        remaining = stat.f_bavail * stat.f_frsize - leave_bytes
        while remaining > 0:
            chunk = min(remaining, 1024 * 1024)
            file.write(b"\0" * chunk)
            remaining -= chunk
    return filler


def test_readyz_fails_while_the_sqlite_disk_is_full(small_disk, tiss_home, tmp_path):
    config = write_config(tmp_path, min_free_disk_mb=8)
    with configured(f"sqlite:///{small_disk / 'gateway.sqlite'}", tiss_home, config) as server:
        assert wait_for(server, 200)["checks"]["database"] == "ok"
        filler = fill(small_disk, leave_bytes=1024 * 1024)
        body = wait_for(server, 503)  # today: 200 while lotes get HTTP 500
        assert body["checks"]["database"].startswith("disco quase cheio:"), body
        assert body["checks"]["migrations"] == "ok"
        filler.unlink()
        assert wait_for(server, 200)["checks"]["database"] == "ok"  # by itself
        assert accepted(post(server, lote()))


@pytest.mark.skipif(pg_dsn() is None, reason="TISS_GATEWAY_TEST_PG_DSN not set")
def test_readyz_fails_while_postgresql_is_read_only(tiss_home, tmp_path):
    """The gateway's role made read-only (as on a standby): its sessions refuse every write."""
    dsn = pg_dsn()
    assert dsn is not None
    admin = make_engine(dsn, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    role = f"tg_ro_{secrets.token_hex(4)}"
    schema = f"tg_test_{int(time.time())}_{secrets.token_hex(4)}"

    def kick() -> None:  # new sessions take the role's settings
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE usename = :role"), {"role": role})

    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"'))
    try:
        url = schema_url(make_url(dsn).set(username=role, password=None).render_as_string(False), schema)
        config = write_config(tmp_path)
        with configured(url, tiss_home, config) as server:
            assert wait_for(server, 200)["checks"]["database"] == "ok"
            with admin.connect() as connection:
                connection.execute(text(f'ALTER ROLE "{role}" SET default_transaction_read_only = on'))
            kick()
            body = wait_for(server, 503)
            assert body["checks"]["database"].startswith("o banco recusa escritas:"), body
            assert "read-only" in body["checks"]["database"]
            with admin.connect() as connection:
                connection.execute(text(f'ALTER ROLE "{role}" RESET default_transaction_read_only'))
            kick()
            assert wait_for(server, 200)["checks"]["database"] == "ok"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            kick()
            connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
