"""The SOAP front over HTTP: a real ``tiss-gateway serve --demo`` (gunicorn, 2 sync workers) per
database backend, talked to with ``requests`` (raw SOAP) and zeep (WSDL clients).

One server per backend for the whole module (SQLite file / PostgreSQL schema of its own, migrated
and seeded by ``serve``); tests share it, so each uses its own numeroLote / sequencialTransacao
and compares table counts before and after. The database is read directly (SQLAlchemy) to check
what the gateway stored.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree
from sqlalchemy import Engine, func, select
from sqlalchemy.pool import NullPool
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport

from gateway.message import credencial, hashing
from gateway.message.services import ANS_NS, SERVICE_BY_NAME, SERVICE_BY_REQUEST, SERVICES, SOAP11_NS
from gateway.message.validation import validate
from gateway.storage.db import make_engine
from gateway.storage.models import Critica, Lote, Mensagem, Protocolo, Transacao
from tests.conftest import OFFICIAL_SCHEMAS
from tests.db_fixtures import BACKENDS
from tests.factory import Party, build_lote, build_mensagem_tiss, build_request, cnpj_check_digits, envelope
from tests.gateway_process import GatewayProcess, cli
from tests.process.test_lockout import http_from

NS = {"ans": ANS_NS, "soap": SOAP11_NS}
V403 = "/tiss/v4_03_00"
LOTE = f"{V403}/tissLoteGuias"
STATUS = f"{V403}/tissSolicitacaoStatusProtocolo"
# Store-and-forward services (answered with a receipt) and the synchronous ones, relayed to the
# operator in real time: the demo operators' endpoints (127.0.0.1:9001..) have nobody listening
# here, so these answer ErroInesperadoServidor (HTTP 500) at once (connection refused).
RECEIPT_SERVICES = ("tissLoteAnexo", "tissRecursoGlosa", "tissComunicacaoBeneficiario", "tissEnvioDocumentos")
OPERATOR_SERVICES = ("tissSolicitacaoDemonstrativoRetorno", "tissVerificaElegibilidade",
                     "tissSolicitacaoProcedimento", "tissSolicitacaoStatusAutorizacao",
                     "tissSolicitacaoStatusRecursoGlosa", "tissCancelaGuia")
# The response part of each receipt and where its protocol number is (None: the receipt has none).
RECEIPT_PROTOCOL = {
    "tissLoteAnexo": ("loteAnexo", ("protocoloRecebimentoAnexo", "nrProtocoloRecebimento")),
    "tissRecursoGlosa": ("recebimentoRecurso", ("protocoloRecebimento", "nrProtocoloRecursoGlosa")),
    "tissComunicacaoBeneficiario": ("reciboComunicacao", None),
    "tissEnvioDocumentos": ("recebimentoDocumento", ("reciboDocumentos", "protocoloDoc")),
}
OUTRO = Party(cnpj=cnpj_check_digits("114447770001"), login="outro", senha="outra-senha")
BLOQUEIO = Party(cnpj=cnpj_check_digits("987654320001"), login="bloqueio", senha="certa")
CACHED = Party(cnpj=cnpj_check_digits("551234560001"), login="cacheado", senha="boa-senha")
MiB = 1024 * 1024

_ids = itertools.count(1)


def new_id() -> str:
    """A numeroLote / sequencialTransacao not used before in this module."""
    return str(next(_ids))


# --- the server and the database ------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(request: pytest.FixtureRequest, tiss_home: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('front-http') / 'gateway.sqlite'}"
    else:
        url = request.getfixturevalue("pg_schemas")()  # a fresh schema, migrated by serve
    server = GatewayProcess(url, tiss_home, workers=2)
    server.start()
    try:
        for index, party in enumerate((OUTRO, BLOQUEIO, CACHED), 1):
            # a code at PASA: a provider without one is refused there (1206, adapters.rules)
            done = cli("prestador", "add", "--database", url, "--documento", party.cnpj, "--nome",
                       f"Prestador {party.login}", "--login", party.login, "--senha-stdin",
                       "--codigo", f"331988=8{index}", home=tiss_home, stdin=party.senha + "\n")
            assert done.returncode == 0, done.stderr
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def db(gateway: GatewayProcess) -> Iterator[Engine]:
    engine = make_engine(gateway.database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _server_log_on_failure(request: pytest.FixtureRequest, gateway: GatewayProcess) -> Iterator[None]:
    """Print what the server logged during a failed test (shown with the failure)."""
    start = gateway.log_path.stat().st_size if gateway.log_path.exists() else 0
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        with gateway.log_path.open("rb") as log:
            log.seek(start)
            print(f"--- log do gateway ({gateway.log_path}) ---")
            print(log.read().decode("utf-8", "replace")[-30_000:])


def count(engine: Engine, model, *where) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(model).where(*where))


def criticas_of(engine: Engine, mensagem_id: int) -> list[tuple[str | None, str, str | None]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(
            select(Critica.codigo, Critica.mensagem, Critica.localizacao)
            .where(Critica.mensagem_id == mensagem_id).order_by(Critica.id))]


def last_refused(engine: Engine) -> Mensagem:
    with engine.connect() as connection:
        return connection.execute(select(Mensagem).where(Mensagem.resultado == "recusada")
                                  .order_by(Mensagem.id.desc()).limit(1)).one()


# --- HTTP helpers ---------------------------------------------------------------------------------


def declared_encoding(data: bytes) -> str:
    match = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([\w.-]+)", data)
    return match.group(1).decode("ascii") if match else "UTF-8"


def post(gateway: GatewayProcess, path: str, data, *, content_type: str | None = None,
         timeout: float = 60, source: str | None = None) -> requests.Response:
    """``source``: a loopback address to send from (the lockout counts failures per address: the
    tests that lock a login do it from their own address, not the one every other test uses)."""
    if content_type is None:
        charset = declared_encoding(data) if isinstance(data, bytes) else None
        content_type = f"text/xml; charset={charset}" if charset else "text/xml"
    http = http_from(source) if source else requests.Session()
    return http.post(gateway.url(path), data=data, timeout=timeout,
                     headers={"Content-Type": content_type, "SOAPAction": '""'})


def answer(response: requests.Response, kind: str | None = None) -> etree._Element:
    """The *WS element of a 200 answer, after checking that the bytes validate (schema + hash)."""
    assert response.status_code == 200, response.content[:2000]
    assert response.headers["Content-Type"].startswith("text/xml")
    report = validate(response.content)
    assert report.valid, [f.to_dict() for f in report.findings]
    root = etree.fromstring(response.content).find("soap:Body", NS)[0]
    if kind is not None:
        assert etree.QName(root).localname == kind
    return root


def fault(response: requests.Response) -> tuple[str, str]:
    """(tissFault, faultstring) of a SOAP fault answer."""
    assert response.headers["Content-Type"].startswith("text/xml"), response.content[:500]
    root = etree.fromstring(response.content)
    found = root.xpath("soap:Body/soap:Fault/detail/ans:tissFaultWS/ans:tissFault/text()", namespaces=NS)
    assert len(found) == 1, response.content
    return found[0], root.findtext("soap:Body/soap:Fault/faultstring", namespaces=NS)


def text(element: etree._Element, path: str) -> str:
    found = element.xpath(path, namespaces=NS)
    assert len(found) == 1, (path, etree.tostring(element)[:3000])
    return found[0].text


def protocolo_of(response: requests.Response) -> str:
    root = answer(response, "protocoloRecebimentoWS")
    return text(root, "ans:recebimentoLote/ans:protocoloRecebimento/ans:detalheProtocolo/ans:numeroProtocolo")


def glosa_of(root: etree._Element) -> str:
    return text(root, ".//ans:mensagemErro/ans:codigoGlosa")


def restamp(data: bytes) -> bytes:
    """A bare *WS document edited by a test, with its hash recomputed (declared-encoding rule)."""
    root = etree.fromstring(data)
    digest = hashing.compute(root, declared_encoding(data))
    return re.sub(rb"<ans:hash>[0-9a-fA-F]*</ans:hash>", f"<ans:hash>{digest}</ans:hash>".encode(), data)


def lote(numero: str | None = None, *, n: int = 1, **kwargs) -> bytes:
    numero = numero or new_id()
    kwargs.setdefault("sequencial", numero)
    return build_lote(kwargs.pop("guide_type", "sp-sadt"), n, envelope=True, numero_lote=numero, **kwargs)


def status_request(numero_protocolo: str, **kwargs) -> bytes:
    return build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=new_id(),
                         numero_protocolo=numero_protocolo, **kwargs)


# --- 1. zeep clients: the served WSDLs and the official 4.01.00 ones --------------------------------


def _zeep_kwargs(client: zeep.Client, data: bytes) -> dict:
    """The factory's message as the keyword arguments of the zeep operation."""
    root = etree.fromstring(data)
    value = client.get_element(f"{{{ANS_NS}}}{etree.QName(root).localname}").parse(root, client.wsdl.types)
    return {name: value[name] for name in value}


def _call_every_operation(make: Callable[[str], tuple[zeep.Client, object, HistoryPlugin]],
                          version: str, db: Engine) -> None:
    protocolo = None
    for service in sorted(SERVICES, key=lambda s: s.name != "tissLoteGuias"):  # the lote first
        client, proxy, history = make(service.name)
        seq = new_id()
        fields = {"numero_lote": seq} if service.name != "tissSolicitacaoStatusProtocolo" \
            else {"numero_protocolo": protocolo}
        # zeep re-serialises what it is given, in UTF-8: build the message in UTF-8 so that the
        # hash stays right if zeep writes the same values back (checked below on what it sent).
        data = build_request(service.request, version=version, encoding="UTF-8", sequencial=seq,
                             **fields)
        operation = getattr(proxy, service.operation)
        if service.name in OPERATOR_SERVICES:
            with pytest.raises(zeep.exceptions.Fault) as caught:
                operation(**_zeep_kwargs(client, data))
            detail = caught.value.detail
            assert detail is not None, service.name
            assert detail.xpath("ans:tissFaultWS/ans:tissFault/text()", namespaces=NS) == \
                ["ErroInesperadoServidor"], service.name
            result = None
        else:
            result = operation(**_zeep_kwargs(client, data))
        sent = history.last_sent["envelope"].find("soap:Body", NS)[0]
        assert etree.QName(sent).localname == service.request
        assert hashing.check(sent, "UTF-8").accepted, f"zeep changed the hashed values of {service.name}"
        if service.name == "tissLoteGuias":
            protocolo = result.recebimentoLote.protocoloRecebimento.detalheProtocolo.numeroProtocolo
            assert re.fullmatch(r"[0-9]{12}", protocolo)
            assert result.recebimentoLote.mensagemErro is None
        elif service.name == "tissSolicitacaoStatusProtocolo":
            situacao = result.situacaoProtocolo
            assert situacao.mensagemErro is None
            detalhe = situacao.situacaoDoProtocolo.lote.detalheLote
            assert (detalhe.statusProtocolo, detalhe.numeroProtocolo) == ("1", protocolo)
        elif service.name in RECEIPT_SERVICES:
            part, numero = RECEIPT_PROTOCOL[service.name]
            body = result[part]
            assert body is not None and body.mensagemErro is None, (service.name, result)
            if numero:
                assert re.fullmatch(r"[0-9]{12}", body[numero[0]][numero[1]]), service.name
    assert count(db, Lote, Lote.protocolo_id.isnot(None)) >= 1


def test_zeep_client_from_the_served_wsdl_calls_every_operation(gateway, db):
    def make(name: str):
        history = HistoryPlugin()
        client = zeep.Client(gateway.url(f"{V403}/{name}?wsdl"), plugins=[history],
                             transport=Transport(timeout=60, operation_timeout=60))
        return client, client.service, history

    _call_every_operation(make, "4.03.00", db)


def test_zeep_client_from_the_official_4_01_00_wsdl_calls_every_operation(gateway, db):
    def make(name: str):
        history = HistoryPlugin()
        path = OFFICIAL_SCHEMAS / "4.01.00" / f"{name}V4_01_00.wsdl"
        # The official xmldsig-core-schema.xsd declares entities: zeep refuses it by default.
        client = zeep.Client(str(path), plugins=[history], settings=zeep.Settings(forbid_entities=False),
                             transport=Transport(timeout=60, operation_timeout=60))
        (binding,) = client.wsdl.bindings  # soap:address is empty in the official files
        return client, client.create_service(binding, gateway.url(f"/tiss/v4_01_00/{name}")), history

    _call_every_operation(make, "4.01.00", db)


# --- 2. every failure path: a tissFault, HTTP 500 (413 for the size), and the message stored -------


def _soap(body: bytes) -> bytes:
    return (f'<soapenv:Envelope xmlns:soapenv="{SOAP11_NS}"><soapenv:Body>'.encode()
            + body + b"</soapenv:Body></soapenv:Envelope>")


def _bare_lote(**kwargs) -> bytes:
    numero = new_id()
    return build_lote("sp-sadt", 1, numero_lote=numero, sequencial=numero, **kwargs)


def _with_padrao(version: str) -> bytes:
    return restamp(_bare_lote().replace(b"<ans:Padrao>4.03.00</ans:Padrao>",
                                        f"<ans:Padrao>{version}</ans:Padrao>".encode()))


def _numero_lote_too_long() -> bytes:
    return restamp(re.sub(rb"<ans:numeroLote>\d+</ans:numeroLote>",
                          b"<ans:numeroLote>1234567890123456</ans:numeroLote>", _bare_lote()))


def _wrong_hash() -> bytes:
    return re.sub(rb"<ans:hash>\w+</ans:hash>", b"<ans:hash>0123456789abcdef0123456789abcdef</ans:hash>",
                  lote())


def _undeclared(data: bytes) -> bytes:
    """A document without its XML declaration."""
    return re.sub(rb"^<\?xml[^>]*\?>\s*", b"", data)


def _mensagem_tiss() -> bytes:
    numero = new_id()
    return build_mensagem_tiss("sp-sadt", 1, numero_lote=numero, sequencial=numero, encoding="UTF-8")


def _wrapped(before: bytes, after: bytes) -> Callable[[], bytes]:
    """A lote whose *WS element comes inside ``before`` ... ``after`` in the Body (UTF-8: the
    envelope declares no encoding)."""
    def build() -> bytes:
        return _soap(before + _undeclared(_bare_lote(encoding="UTF-8")) + after)
    return build


XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE soapenv:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       + _soap(b'<ans:loteGuiasWS xmlns:ans="' + ANS_NS.encode() + b'">&xxe;</ans:loteGuiasWS>'))
LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
          b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]>' + _soap(b"<x>&lol3;</x>"))

# id -> (path, request builder, tissFault, stored codigo_erro, text expected in the faultstring)
FAILURES: dict[str, tuple[str, Callable[[], bytes], str, str, str | None]] = {
    "malformed-xml": (LOTE, lambda: lote()[:-40], "SchemaInvalido", "5002", "XML malformado"),
    "not-xml": (LOTE, lambda: b"ol\xe1, isto n\xe3o \xe9 XML", "SchemaInvalido", "5002", None),
    "doctype-xxe": (LOTE, lambda: XXE, "SchemaInvalido", "5002", "DOCTYPE"),
    "doctype-entity-expansion": (LOTE, lambda: LAUGHS, "SchemaInvalido", "5002", "DOCTYPE"),
    "not-a-soap-envelope": (LOTE, _bare_lote, "SchemaInvalido", "5001", "loteGuiasWS sem Envelope SOAP 1.1"),
    "soap-1.2": (LOTE, lambda: lote().replace(SOAP11_NS.encode(), b"http://www.w3.org/2003/05/soap-envelope"),
                 "SchemaInvalido", "5001", "SOAP 1.2 não é aceito"),
    "empty-body": (LOTE, lambda: _soap(b""), "SchemaInvalido", "5001", "sem mensagem TISS"),
    "header-without-body": (LOTE, lambda: f'<e:Envelope xmlns:e="{SOAP11_NS}"><e:Header/></e:Envelope>'
                            .encode(), "SchemaInvalido", "5001", "sem mensagem TISS"),
    "unknown-body-element": (LOTE, lambda: _soap(b'<pedido xmlns="urn:outro"><a>1</a></pedido>'),
                             "SchemaInvalido", "5001", None),
    "unknown-ans-element": (LOTE, lambda: _soap(f'<ans:fooWS xmlns:ans="{ANS_NS}"/>'.encode()),
                            "SchemaInvalido", "5001", "fooWS, que não é uma requisição TISS"),
    "body-of-another-service": (LOTE, lambda: status_request("123"), "SchemaInvalido", "5001",
                                "é a mensagem do web service tissSolicitacaoStatusProtocolo e veio ao "
                                "endereço de tissLoteGuias, que recebe loteGuiasWS"),
    "response-element": (LOTE, lambda: _soap(f'<ans:protocoloRecebimentoWS xmlns:ans="{ANS_NS}"/>'.encode()),
                         "SchemaInvalido", "5001", "é a resposta do web service tissLoteGuias"),
    "mensagemTISS-in-body": (LOTE, lambda: _soap(_undeclared(_mensagem_tiss())),
                             "SchemaInvalido", "5001", "mensagemTISS é o formato de arquivo"),
    "mensagemTISS-bare": (LOTE, _mensagem_tiss, "SchemaInvalido", "5001",
                          "o web service tissLoteGuias recebe o elemento loteGuiasWS"),
    "envelope-in-body": (LOTE, _wrapped(f'<e:Envelope xmlns:e="{SOAP11_NS}"><e:Body>'.encode(),
                                        b"</e:Body></e:Envelope>"),
                         "SchemaInvalido", "5001", "loteGuiasWS veio dentro de outro Envelope SOAP"),
    "operation-wrapper": (LOTE, _wrapped(b'<op:tissLoteGuias_Operation xmlns:op="urn:op">',
                                         b"</op:tissLoteGuias_Operation>"),
                          "SchemaInvalido", "5001", "Mensagem encapsulada duas vezes"),
    "ws-inside-ws": (LOTE, _wrapped(f'<ans:loteGuiasWS xmlns:ans="{ANS_NS}">'.encode(),
                                    b"</ans:loteGuiasWS>"),
                     "SchemaInvalido", "5001", "passe só os filhos de loteGuiasWS"),
    "url-version-not-padrao": ("/tiss/v4_02_00/tissLoteGuias", lote, "VersaoInvalida", "5028", "4.02.00"),
    "unknown-version-versionless": ("/tiss/tissLoteGuias", lambda: envelope(_with_padrao("9.99.99")),
                                    "VersaoInvalida", "5028", "9.99.99"),
    "unknown-version-at-v4_03_00": (LOTE, lambda: envelope(_with_padrao("9.99.99")), "VersaoInvalida",
                                    "5028", "9.99.99"),
    "no-padrao": ("/tiss/tissLoteGuias", lambda: envelope(restamp(
        _bare_lote().replace(b"<ans:Padrao>4.03.00</ans:Padrao>", b"<ans:Padrao></ans:Padrao>"))),
        "VersaoInvalida", "5028", "Padrao"),
    "schema-invalid": (LOTE, lambda: envelope(_numero_lote_too_long()), "SchemaInvalido", "5001",
                       "numeroLote"),
    "101-guides": (LOTE, lambda: lote(n=101, guide_type="consulta"), "SchemaInvalido", "5001", "5015"),
    "wrong-hash": (LOTE, _wrong_hash, "HashInvalido", "5014", "não confere"),
    "hash-variant-not-accepted": (LOTE, lambda: lote(hash_variant="utf-8"), "HashInvalido", "5014",
                                  "variante 'utf-8'"),
    "no-login": (LOTE, lambda: lote(party=Party(login=None)), "LoginInvalido", "5005", "não informado"),
    "wrong-password": (LOTE, lambda: lote(party=Party(senha="errada")), "LoginInvalido", "5005", None),
    "unknown-login": (LOTE, lambda: lote(party=Party(login="ninguem")), "LoginInvalido", "5005", None),
    "origem-another-cnpj": (LOTE, lambda: lote(party=Party(cnpj=OUTRO.cnpj)), "RemetenteInvalido", "5005",
                            None),
    "origem-unknown-codigo": (LOTE, lambda: lote(party=Party(codigo_na_operadora="999")),
                              "RemetenteInvalido", "5005", None),
    "destino-not-configured": (LOTE, lambda: lote(party=Party(registro_ans="999999")),
                               "DestinatarioInvalido", "5027", "999999"),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
def test_failure_answers_a_tiss_fault_and_stores_the_message(gateway, db, case):
    path, build, expected_fault, code, expected_text = FAILURES[case]
    data = build()
    before = count(db, Mensagem, Mensagem.resultado == "recusada")
    response = post(gateway, path, data)
    assert response.status_code == 500, (response.status_code, response.content[:1000])
    found, faultstring = fault(response)
    assert found == expected_fault, faultstring
    if expected_text:
        assert expected_text in faultstring
    assert b"root:" not in response.content  # nothing of /etc/passwd came back
    assert count(db, Mensagem, Mensagem.resultado == "recusada") == before + 1
    row = last_refused(db)
    # refused before login: the body is kept up to refused_body_bytes, its senhaPrestador masked
    kept = credencial.redact(data).corpo[:64 * 1024]
    assert (row.codigo_erro, row.corpo, row.tamanho, row.direcao) == (code, kept, len(data), "entrada")
    assert row.servico == ("tissSolicitacaoStatusProtocolo" if case == "body-of-another-service"
                           else "tissLoteGuias")
    criticas = criticas_of(db, row.id)
    assert criticas and criticas[0][0] == code, criticas
    assert all(text for _code, text, _where in criticas)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversize_is_refused_with_413_and_stored(gateway, db, chunked):
    body = lote()
    data = body + b" " * (16 * MiB - len(body))
    before = count(db, Mensagem, Mensagem.resultado == "recusada")
    if chunked:
        sent = post(gateway, LOTE, (data[i:i + MiB] for i in range(0, len(data), MiB)))
    else:
        sent = post(gateway, LOTE, data)
    assert sent.status_code == 413
    assert sent.headers["Content-Type"] == "text/xml; charset=ISO-8859-1"  # what the lote declares
    found, faultstring = fault(sent)
    assert found == "SchemaInvalido" and "5002" in faultstring
    assert count(db, Mensagem, Mensagem.resultado == "recusada") == before + 1
    row = last_refused(db)
    assert (row.codigo_erro, row.servico) == ("5002", "tissLoteGuias")
    assert row.tamanho > 15 * MiB


# The request's declared encoding (ISO-8859-1 or UTF-8, under any of their names) -> the fault's.
# An unknown login answers "Login ou senha inválidos." (accented) and locks nobody out.
NINGUEM = Party(login="sem-cadastro")
FAULT_ENCODINGS = {
    "iso-8859-1": (lambda: lote(party=NINGUEM), "ISO-8859-1"),
    "utf-8": (lambda: lote(party=NINGUEM, encoding="UTF-8"), "UTF-8"),
    "latin1-alias": (lambda: restamp_declared(lote(party=NINGUEM), b"latin1"), "ISO-8859-1"),
    "malformed-iso-8859-1": (lambda: lote()[:-40], "ISO-8859-1"),  # unparsed: the declaration is read
    "windows-1252": (lambda: restamp_declared(lote(party=NINGUEM), b"windows-1252"), "UTF-8"),
    "no-declaration": (lambda: _undeclared(lote(encoding="UTF-8", party=NINGUEM)), "UTF-8"),
    "not-xml": (lambda: b"ol\xe1, isto n\xe3o \xe9 XML", "UTF-8"),
}


def restamp_declared(data: bytes, encoding: bytes) -> bytes:
    """``data`` (ISO-8859-1) declaring the same encoding under another name, hash unchanged."""
    return data.replace(b'encoding="ISO-8859-1"', b'encoding="' + encoding + b'"', 1)


@pytest.mark.parametrize("case", FAULT_ENCODINGS, ids=list(FAULT_ENCODINGS))
def test_fault_is_written_in_the_request_encoding(gateway, case):
    build, expected = FAULT_ENCODINGS[case]
    response = post(gateway, LOTE, build())
    assert response.status_code == 500
    assert response.headers["Content-Type"] == f"text/xml; charset={expected}"
    assert declared_encoding(response.content).upper() == expected
    found, faultstring = fault(response)
    assert found in ("LoginInvalido", "SchemaInvalido")
    if found == "LoginInvalido":  # the accented text in the bytes of that encoding
        assert "inválidos" in faultstring
        assert "inválidos".encode(expected) in response.content


def test_comment_before_the_tiss_element_is_accepted(gateway):
    data = lote().replace(b"<soapenv:Body>", b"<soapenv:Body><!-- gerado pelo sistema X --><?pi x?>")
    assert re.fullmatch(r"[0-9]{12}", protocolo_of(post(gateway, LOTE, data)))


def test_lockout_after_five_wrong_passwords(gateway, db):
    wrong = Party(cnpj=BLOQUEIO.cnpj, login=BLOQUEIO.login, senha="errada")
    before = count(db, Mensagem, Mensagem.resultado == "recusada")
    for _ in range(5):
        response = post(gateway, LOTE, lote(party=wrong), source="127.0.5.1")
        assert response.status_code == 500
        assert fault(response)[0] == "LoginInvalido"
    response = post(gateway, LOTE, lote(party=BLOQUEIO), source="127.0.5.1")  # the right password, too late
    assert response.status_code == 500
    found, faultstring = fault(response)
    assert (found, faultstring) == ("LoginInvalido", "Login ou senha inválidos.")  # as for a wrong one
    assert count(db, Mensagem, Mensagem.resultado == "recusada") == before + 6
    assert last_refused(db).codigo_erro == "5005"


def test_lock_and_disable_apply_to_a_login_already_verified(gateway, db, tiss_home):
    """Verified logins are cached per worker; a lock or a disable must still apply at once."""
    for _ in range(4):  # enough for both workers to have verified (and cached) the login
        assert post(gateway, LOTE, lote(party=CACHED), source="127.0.5.2").status_code == 200
    wrong = Party(cnpj=CACHED.cnpj, login=CACHED.login, senha="errada")
    for _ in range(5):
        assert fault(post(gateway, LOTE, lote(party=wrong), source="127.0.5.2"))[0] == "LoginInvalido"
    for _ in range(4):
        found, text = fault(post(gateway, LOTE, lote(party=CACHED), source="127.0.5.2"))
        assert (found, text) == ("LoginInvalido", "Login ou senha inválidos.")
    enabled = cli("prestador", "enable", CACHED.login, "--database", gateway.database_url, home=tiss_home)
    assert enabled.returncode == 0, enabled.stderr
    for _ in range(4):
        assert post(gateway, LOTE, lote(party=CACHED), source="127.0.5.2").status_code == 200
    disabled = cli("prestador", "disable", CACHED.login, "--database", gateway.database_url, home=tiss_home)
    assert disabled.returncode == 0, disabled.stderr
    for _ in range(4):
        assert fault(post(gateway, LOTE, lote(party=CACHED), source="127.0.5.2"))[0] == "LoginInvalido"


# --- the synchronous services with the operator unreachable: 500 ErroInesperadoServidor ------------


@pytest.mark.parametrize("name", OPERATOR_SERVICES)
def test_synchronous_service_with_the_operator_unreachable_answers_500_and_stores_the_request(
        gateway, db, name):
    service = SERVICE_BY_NAME[name]
    sequencial = new_id()
    before = count(db, Mensagem, Mensagem.servico == name)
    response = post(gateway, f"{V403}/{name}", build_request(service.request, envelope=True,
                                                             sequencial=sequencial), timeout=20)
    assert response.status_code == 500
    found, text = fault(response)
    assert found == "ErroInesperadoServidor"
    assert "PASA" in text, text  # names the operator
    with db.connect() as connection:
        stored = connection.execute(select(Mensagem).where(
            Mensagem.servico == name, Mensagem.direcao == "entrada", Mensagem.destinatario == "331988",
            Mensagem.sequencial_transacao == sequencial)).one()
    assert stored.resultado == "erro" and stored.codigo_erro == "ErroInesperadoServidor"
    assert count(db, Mensagem, Mensagem.servico == name) > before
    assert count(db, Transacao, Transacao.requisicao_id == stored.id) == 0  # the provider may retry


# --- 3. idempotency ------------------------------------------------------------------------------


def test_same_lote_twice_gets_the_same_bytes_and_one_protocol(gateway, db):
    numero = new_id()
    data = lote(numero, n=3)
    lotes, protocolos = count(db, Lote), count(db, Protocolo)
    first, second = post(gateway, LOTE, data), post(gateway, LOTE, data)
    protocolo = protocolo_of(first)
    assert second.content == first.content
    assert (count(db, Lote), count(db, Protocolo)) == (lotes + 1, protocolos + 1)
    assert count(db, Lote, Lote.numero_lote == numero) == 1
    assert count(db, Protocolo, Protocolo.numero == protocolo) == 1


@pytest.mark.parametrize(("version", "code"), [("4.03.00", "3268"), ("4.01.00", "1308")])
def test_same_numero_lote_in_another_transaction_is_refused_in_the_answer(gateway, db, version, code):
    numero = new_id()
    protocolo_of(post(gateway, "/tiss/tissLoteGuias", lote(numero, version=version)))
    lotes = count(db, Lote)
    again = post(gateway, "/tiss/tissLoteGuias", lote(numero, version=version, sequencial=new_id()))
    root = answer(again, "protocoloRecebimentoWS")
    assert glosa_of(root) == code
    assert root.find("ans:recebimentoLote/ans:protocoloRecebimento", NS) is None
    assert count(db, Lote) == lotes
    with db.connect() as connection:
        request_id = connection.scalar(select(Mensagem.id).where(
            Mensagem.direcao == "entrada", Mensagem.resultado == "aceita").order_by(Mensagem.id.desc()))
    assert criticas_of(db, request_id) == [(code, f"Número de lote {numero} já informado anteriormente.",
                                            "loteGuias/numeroLote")]


def test_same_sequencial_with_other_content_is_refused(gateway):
    numero = new_id()
    protocolo_of(post(gateway, LOTE, lote(numero)))
    response = post(gateway, LOTE, lote(new_id(), sequencial=numero))
    assert response.status_code == 500
    found, faultstring = fault(response)
    assert found == "SchemaInvalido" and numero in faultstring


def _concurrently(gateway: GatewayProcess, bodies: list[bytes]) -> list[requests.Response]:
    barrier = threading.Barrier(len(bodies))

    def send(body: bytes) -> requests.Response:
        with requests.Session() as session:
            barrier.wait(30)
            return session.post(gateway.url(LOTE), data=body, timeout=120,
                                headers={"Content-Type": "text/xml; charset=ISO-8859-1", "SOAPAction": '""'})

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_same_lote_from_ten_threads_gets_one_protocol(gateway, db):
    numero = new_id()
    data = lote(numero, n=5)
    protocolos, transacoes = count(db, Protocolo), count(db, Transacao)
    responses = _concurrently(gateway, [data] * 10)
    assert [r.status_code for r in responses] == [200] * 10, [r.content[:1500] for r in responses]
    assert len({protocolo_of(r) for r in responses}) == 1
    assert len({r.content for r in responses}) == 1
    assert count(db, Lote, Lote.numero_lote == numero) == 1
    assert count(db, Protocolo) == protocolos + 1
    assert count(db, Transacao) == transacoes + 1


def test_same_numero_lote_in_ten_concurrent_transactions_gets_one_protocol(gateway, db):
    numero = new_id()
    protocolos = count(db, Protocolo)
    responses = _concurrently(gateway, [lote(numero, sequencial=new_id()) for _ in range(10)])
    assert [r.status_code for r in responses] == [200] * 10, [r.content[:1500] for r in responses]
    roots = [answer(r, "protocoloRecebimentoWS") for r in responses]
    accepted = [r for r in roots if r.find(".//ans:mensagemErro", NS) is None]
    assert len(accepted) == 1
    assert sorted(glosa_of(r) for r in roots if r is not accepted[0]) == ["3268"] * 9
    assert count(db, Lote, Lote.numero_lote == numero) == 1
    assert count(db, Protocolo) == protocolos + 1


# --- 4. status ---------------------------------------------------------------------------------------


def test_status_of_the_protocol_just_issued(gateway):
    numero = new_id()
    data = lote(numero, n=3)
    protocolo = protocolo_of(post(gateway, LOTE, data))
    root = answer(post(gateway, STATUS, status_request(protocolo)), "situacaoProtocoloWS")
    detalhe = root.find("ans:situacaoProtocolo/ans:situacaoDoProtocolo/ans:lote/ans:detalheLote", NS)
    assert detalhe is not None, etree.tostring(root)
    assert text(detalhe, "ans:statusProtocolo") == "1"
    assert text(detalhe, "ans:numeroProtocolo") == protocolo
    assert text(detalhe, "ans:numeroLote") == numero
    sent = etree.fromstring(data).xpath("//ans:guiaSP-SADT/ans:cabecalhoGuia/ans:numeroGuiaPrestador/text()",
                                        namespaces=NS)
    listed = detalhe.xpath("ans:guiasTISS//ans:numeroGuiaPrestador/text()", namespaces=NS)
    assert listed == sent and len(sent) == 3


def _nao_localizado(root: etree._Element, numero: str) -> bytes:
    """situacaoProtocolo of a 'não localizado' answer, with the asked number taken out."""
    assert glosa_of(root) == "3291"
    assert root.find(".//ans:detalheLote", NS) is None
    situacao = etree.tostring(root.find("ans:situacaoProtocolo", NS), method="c14n")
    assert numero.encode() in situacao
    return situacao.replace(numero.encode(), b"#")


def test_unknown_and_foreign_protocols_get_the_same_nao_localizado(gateway):
    theirs = protocolo_of(post(gateway, LOTE, lote(party=OUTRO)))
    own_view = answer(post(gateway, STATUS, status_request(theirs, party=OUTRO)), "situacaoProtocoloWS")
    assert text(own_view, ".//ans:detalheLote/ans:numeroProtocolo") == theirs
    unknown = "999999999999"
    assert unknown != theirs
    foreign = answer(post(gateway, STATUS, status_request(theirs)), "situacaoProtocoloWS")
    missing = answer(post(gateway, STATUS, status_request(unknown)), "situacaoProtocoloWS")
    assert _nao_localizado(foreign, theirs) == _nao_localizado(missing, unknown)


# --- 5. versions, WSDL and XSD ----------------------------------------------------------------------


@pytest.mark.parametrize("version", ["4.01.00", "4.02.00", "4.03.00"])
def test_versionless_endpoints_take_the_version_from_padrao(gateway, version):
    protocolo = protocolo_of(post(gateway, "/tiss/tissLoteGuias", lote(version=version, n=2)))
    for kind, fields in [("solicitacaoStatusProtocoloWS", {"numero_protocolo": protocolo}),
                         *((SERVICE_BY_NAME[name].request, {}) for name in RECEIPT_SERVICES)]:
        service = SERVICE_BY_REQUEST[kind]
        data = build_request(kind, version=version, envelope=True, sequencial=new_id(), numero_lote=new_id(),
                             **fields)
        response = post(gateway, f"/tiss/{service.name}", data)
        root = answer(response, service.response)  # validates schema and hash
        assert validate(response.content).version == version
        assert root.find(".//ans:mensagemErro", NS) is None, etree.tostring(root)


@pytest.mark.parametrize("version", ["4.01.00", "4.02.00", "4.03.00"])
def test_versioned_endpoint_of_each_version(gateway, version):
    path = f"/tiss/v{version.replace('.', '_')}/tissLoteGuias"
    response = post(gateway, path, lote(version=version, encoding="UTF-8"))
    protocolo_of(response)
    assert validate(response.content).version == version
    assert "charset=UTF-8" in response.headers["Content-Type"]


@pytest.mark.parametrize("path", [f"{V403}/tissLoteGuias", "/tiss/tissLoteGuias",
                                  "/tiss/v4_01_00/tissRecursoGlosa",
                                  "/tiss/v4_02_00/tissSolicitacaoStatusRecursoGlosa"])
def test_wsdl_get(gateway, path):
    response = requests.get(gateway.url(path) + "?wsdl", timeout=30)
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert etree.QName(root).localname == "definitions"
    address = root.xpath("//soap:address/@location", namespaces={"soap": "http://schemas.xmlsoap.org/wsdl/soap/"})
    version = path.split("/")[2] if path.count("/") == 3 else "v4_03_00"
    assert address == [gateway.url(f"/tiss/{version}/{path.rsplit('/', 1)[1]}")]
    (location,) = root.xpath("//xsd:import/@schemaLocation", namespaces={"xsd": "http://www.w3.org/2001/XMLSchema"})
    assert requests.get(location, timeout=30).status_code == 200


def test_xsd_get(gateway):
    response = requests.get(gateway.url(f"{V403}/schemas/tissWebServicesV4_03_00.xsd"), timeout=30)
    assert response.status_code == 200
    assert etree.QName(etree.fromstring(response.content)).localname == "schema"
    dsig = requests.get(gateway.url(f"{V403}/schemas/xmldsig-core-schema.xsd"), timeout=30)
    assert dsig.status_code == 200 and b"<!DOCTYPE" not in dsig.content
    for missing in ("naoexiste.xsd", "..%2F..%2Fconfig.toml", "tissV4_03_00.wsdl"):
        assert requests.get(gateway.url(f"{V403}/schemas/{missing}"), timeout=30).status_code == 404
    assert requests.get(gateway.url("/tiss/v9_99_99/tissLoteGuias?wsdl"), timeout=30).status_code == 404
    assert requests.get(gateway.url("/tiss/v4_03_00/tissNaoExiste?wsdl"), timeout=30).status_code == 404
    assert requests.get(gateway.url(LOTE), timeout=30).status_code == 405
