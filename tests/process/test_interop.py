"""Real SOAP client stacks against a real gateway in its default configuration (``serve --demo``,
faults under HTTP 500, only the bundled 4.02.00 and 4.03.00 schemas): zeep, suds, PHP's SoapClient
and Java JAX-WS (wsimport's classes), each in 4.02.00 and 4.03.00, as an ERP would use them:

1. send a lote (built and hashed here in UTF-8, what every one of these stacks sends; handed to
   the stack as its own objects where it reads them: zeep's, JAX-WS's JAXB classes; as raw XML
   where it does not: PHP ``SoapVar(XSD_ANYXML)``, suds ``__inject``) and get its protocol;
2. ask the protocol's status with a request the stack builds from the WSDL's types, its TISS hash
   computed by the client over what it sends (PHP over its arrays, suds and Java over the
   serialised request, as INTEROP-NOTES describes ERPs doing; Java's handler restamps the lote's
   too, after JAXB wrote it again);
3. read a wrong password (LoginInvalido) and a bad hash (HashInvalido) as the stack's typed fault:
   zeep ``Fault``, suds ``WebFault``, PHP ``SoapFault`` with ``detail->tissFaultWS->tissFault``,
   JAX-WS the generated ``TissFault`` exception with its ``tissFaultWS``.

One gateway for the module; each stack logs in as a provider of its own (5 wrong passwords would
lock a shared login). PHP and Java are installed with apt-get when missing (tests/interop/stacks.py)
and skipped, with the reason, only where they cannot be; Java's wsimport + javac run in the
background from the module's first test, once per version (kept between sessions, keyed by the
WSDLs), while the other stacks run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree
from suds import WebFault
from suds.client import Client as SudsClient
from zeep.transports import Transport

from gateway.message.services import ANS_NS, SOAP11_NS
from tests.factory import Party, build_lote, build_request, cnpj_check_digits
from tests.gateway_process import GatewayProcess, cli
from tests.interop import stacks
from tests.interop.suds_client import Cabecalho, SudsErp, tiss_fault

VERSIONS = ("4.02.00", "4.03.00")
NS = {"ans": ANS_NS, "soap": SOAP11_NS}
BAD_HASH = "0123456789abcdef0123456789abcdef"
IMPORT_401 = "tiss-gateway schemas import <zip da ANS ou pasta do PadraoTISS 4.01.00>"
DATA, HORA = "2026-01-19", "10:15:30"
PARTIES = {stack: Party(cnpj=cnpj_check_digits(f"2{i}0000000001"), login=f"erp-{stack}",
                        senha=f"senha-{stack}")
           for i, stack in enumerate(("zeep", "suds", "php", "java"), start=1)}
WRONG_SENHA = hashlib.md5(b"senha-errada", usedforsecurity=False).hexdigest()

_ids = itertools.count(1)


def new_id() -> str:
    return str(next(_ids))


def vpath(version: str) -> str:
    return "v" + version.replace(".", "_")


@dataclass(frozen=True)
class Expected:
    """What every stack must have read, whatever its API."""

    protocolo: str
    status_numero: str
    status: str
    faults: dict[str, str]  # case -> tissFault read
    texts: dict[str, str]  # case -> faultstring read


def check(result: Expected) -> None:
    assert re.fullmatch(r"[0-9]{12}", result.protocolo), result
    assert (result.status_numero, result.status) == (result.protocolo, "1"), result
    assert result.faults == {"LoginInvalido": "LoginInvalido", "HashInvalido": "HashInvalido"}, result
    assert "inválidos" in result.texts["LoginInvalido"], result  # Portuguese, decoded right
    assert "[5014]" in result.texts["HashInvalido"], result


# --- the gateway, the providers, the Java build --------------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("interop-home")  # nothing imported: the default schema sets
    url = f"sqlite:///{tmp_path_factory.mktemp('interop-db') / 'gateway.sqlite'}"
    server = GatewayProcess(url, home, workers=2)
    server.start()
    try:
        for index, party in enumerate(PARTIES.values(), 1):
            # a code at PASA: a provider without one is refused there (1206, adapters.rules)
            done = cli("prestador", "add", "--database", url, "--documento", party.cnpj, "--nome",
                       f"ERP {party.login}", "--login", party.login or "", "--senha-stdin",
                       "--codigo", f"331988=9{index}", home=home, stdin=party.senha + "\n")
            assert done.returncode == 0, done.stderr
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module", autouse=True)
def java_builds(request: pytest.FixtureRequest,
                gateway: GatewayProcess) -> Iterator[dict[str, Future[Path]]]:
    """wsimport + javac of each version, started at the module's first test, in the background
    (when the session runs a JAX-WS test at all)."""
    versions = [v for v in VERSIONS if any(item.name == f"test_jaxws[{v}]" for item in request.session.items)]
    with ThreadPoolExecutor(2, thread_name_prefix="java-build") as pool:
        yield {v: pool.submit(stacks.java_classes, gateway.base_url, vpath(v)) for v in versions}


def wsdl(gateway: GatewayProcess, version: str, service: str) -> str:
    return gateway.url(f"/tiss/{vpath(version)}/{service}?wsdl")


def lote_xml(version: str, stack: str) -> bytes:
    numero = new_id()
    return build_lote("sp-sadt", 2, version=version, encoding="UTF-8", numero_lote=numero,
                      sequencial=numero, party=PARTIES[stack])


def bare(document: bytes) -> str:
    """A document without its XML declaration, as text (what a stack is handed as raw XML)."""
    return re.sub(rb"^<\?xml[^>]*\?>\s*", b"", document).decode("utf-8")


# --- zeep ----------------------------------------------------------------------------------------


def _zeep_kwargs(client: zeep.Client, data: bytes) -> dict:
    root = etree.fromstring(data)
    value = client.get_element(f"{{{ANS_NS}}}{etree.QName(root).localname}").parse(root, client.wsdl.types)
    return {name: value[name] for name in value}


@pytest.mark.parametrize("version", VERSIONS)
def test_zeep(gateway, version):
    party = PARTIES["zeep"]
    transport = Transport(timeout=60, operation_timeout=60)
    lotes = zeep.Client(wsdl(gateway, version, "tissLoteGuias"), transport=transport)
    status = zeep.Client(wsdl(gateway, version, "tissSolicitacaoStatusProtocolo"), transport=transport)
    answer = lotes.service.tissLoteGuias_Operation(**_zeep_kwargs(lotes, lote_xml(version, "zeep")))
    protocolo = answer.recebimentoLote.protocoloRecebimento.detalheProtocolo.numeroProtocolo

    def ask(data: bytes):
        return status.service.tissSolicitacaoStatusProtocolo_Operation(**_zeep_kwargs(status, data))

    def request(**kwargs) -> bytes:
        return build_request("solicitacaoStatusProtocoloWS", version=version, encoding="UTF-8",
                             sequencial=new_id(), numero_protocolo=protocolo, **kwargs)

    detalhe = ask(request(party=party)).situacaoProtocolo.situacaoDoProtocolo.lote.detalheLote
    cases = {"LoginInvalido": request(party=Party(cnpj=party.cnpj, login=party.login, senha="errada")),
             "HashInvalido": re.sub(rb"<ans:hash>\w+</ans:hash>", f"<ans:hash>{BAD_HASH}</ans:hash>".encode(),
                                    request(party=party))}
    faults, texts = {}, {}
    for name, data in cases.items():
        with pytest.raises(zeep.exceptions.Fault) as caught:
            ask(data)
        faults[name] = caught.value.detail.xpath("ans:tissFaultWS/ans:tissFault/text()", namespaces=NS)[0]
        texts[name] = caught.value.message
    check(Expected(protocolo, detalhe.numeroProtocolo, detalhe.statusProtocolo, faults, texts))


# --- suds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_suds(gateway, version):
    party = PARTIES["suds"]
    erp = SudsErp(wsdl(gateway, version, "tissLoteGuias"),
                  wsdl(gateway, version, "tissSolicitacaoStatusProtocolo"))
    numero = new_id()
    protocolo = erp.send_lote(build_lote("sp-sadt", 2, version=version, encoding="UTF-8", envelope=True,
                                         numero_lote=numero, sequencial=numero, party=party))
    def cabecalho(senha: str) -> Cabecalho:
        return Cabecalho(new_id(), DATA, HORA, party.cnpj, party.registro_ans, version, party.login or "",
                         senha)

    detalhe = erp.status(cabecalho(party.senha_md5), protocolo).situacaoProtocolo.situacaoDoProtocolo \
        .lote.detalheLote
    faults, texts = {}, {}
    for name, (senha, fixed) in {"LoginInvalido": (WRONG_SENHA, None),
                                 "HashInvalido": (party.senha_md5, BAD_HASH)}.items():
        asked = cabecalho(senha)
        with pytest.raises(WebFault) as caught:
            erp.status(asked, protocolo, fixed_hash=fixed)
        _code, texts[name], faults[name] = tiss_fault(caught.value)
    check(Expected(protocolo, str(detalhe.numeroProtocolo), str(detalhe.statusProtocolo), faults, texts))


# --- PHP SoapClient ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_php_soapclient(gateway, version, tmp_path):
    try:
        stacks.ensure(stacks.PHP)
    except stacks.StackUnavailable as exc:
        pytest.skip(str(exc))
    party = PARTIES["php"]
    plan = {
        "lote_wsdl": wsdl(gateway, version, "tissLoteGuias"),
        "status_wsdl": wsdl(gateway, version, "tissSolicitacaoStatusProtocolo"),
        "lote_xml": bare(lote_xml(version, "php")),
        "cabecalho": {"sequencial": new_id(), "data": DATA, "hora": HORA, "cnpj": party.cnpj,
                      "registro_ans": party.registro_ans, "padrao": version, "login": party.login,
                      "senha_md5": party.senha_md5},
        "faults": [{"name": "LoginInvalido", "sequencial": new_id(), "senha_md5": WRONG_SENHA},
                   {"name": "HashInvalido", "sequencial": new_id(), "hash": BAD_HASH}],
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    out = json.loads(stacks.run_php(tmp_path / "plan.json"))
    assert "error" not in out, out
    faults = out["faults"]
    for fault in faults.values():
        assert fault["class"] == "SoapFault" and fault["faultcode"].endswith("Client"), fault
        assert fault["http"].startswith("HTTP/1.1 500"), fault
    check(Expected(out["protocolo"], out["status"]["numeroProtocolo"], out["status"]["statusProtocolo"],
                   {name: fault["tissFault"] for name, fault in faults.items()},
                   {name: fault["faultstring"] for name, fault in faults.items()}))


# --- refusals read by a typed stack: a version whose schemas are not installed ---------------------


def test_a_version_not_installed_says_how_to_import_it(gateway):
    numero = new_id()
    envelope = build_lote("sp-sadt", 1, version="4.01.00", encoding="UTF-8", envelope=True,
                          numero_lote=numero, sequencial=numero, party=PARTIES["suds"])
    client = SudsClient(wsdl(gateway, "4.03.00", "tissLoteGuias"), cache=None, timeout=60,
                        location=gateway.url("/tiss/tissLoteGuias"))  # the version from Padrao
    with pytest.raises(WebFault) as caught:
        client.service.tissLoteGuias_Operation(__inject={"msg": envelope})
    _code, text, fault = tiss_fault(caught.value)
    assert fault == "VersaoInvalida" and IMPORT_401 in text, text
    posted = requests.post(gateway.url("/tiss/v4_01_00/tissLoteGuias"), data=envelope, timeout=60,
                           headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
    assert posted.status_code == 500
    root = etree.fromstring(posted.content)
    assert root.xpath("//ans:tissFault/text()", namespaces=NS) == ["VersaoInvalida"]
    assert IMPORT_401 in root.findtext(".//faultstring")
    listed = requests.get(gateway.url("/tiss/v4_01_00/tissLoteGuias?wsdl"), timeout=30)
    assert listed.status_code == 404 and IMPORT_401 in listed.text


# --- Java JAX-WS (last: its build runs in the background meanwhile) --------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_jaxws(gateway, version, java_builds, tmp_path):
    try:
        classes = java_builds[version].result(timeout=600)
    except stacks.StackUnavailable as exc:
        pytest.skip(str(exc))
    party = PARTIES["java"]
    lote = tmp_path / "lote.xml"
    lote.write_bytes(lote_xml(version, "java"))
    plan = {
        "lote.wsdl": wsdl(gateway, version, "tissLoteGuias"),
        "status.wsdl": wsdl(gateway, version, "tissSolicitacaoStatusProtocolo"),
        "lote.file": str(lote), "sequencial": new_id(), "data": DATA, "hora": HORA, "cnpj": party.cnpj,
        "registroANS": party.registro_ans, "padrao": version, "login": party.login or "",
        "senha": party.senha_md5, "faults": "LoginInvalido,HashInvalido",
        "fault.LoginInvalido.sequencial": new_id(), "fault.LoginInvalido.senha": WRONG_SENHA,
        "fault.HashInvalido.sequencial": new_id(), "fault.HashInvalido.hash": BAD_HASH,
    }
    out = stacks.run_java(classes, plan, tmp_path)
    cases = ("LoginInvalido", "HashInvalido")
    assert all(out[f"fault.{name}.class"] == "tiss.status.TissFault" for name in cases), out
    check(Expected(out["protocolo"], out["status.numeroProtocolo"], out["status.statusProtocolo"],
                   {name: out[f"fault.{name}.tissFault"] for name in cases},
                   {name: out[f"fault.{name}.message"] for name in cases}))
