"""gateway.message.checks: the message-level checks the gateway and the simulated operators share."""

import pytest

from gateway.message import hashing
from gateway.message.checks import Cabecalho, Call, CheckedMessage, Endpoint, check_message, read_cabecalho
from gateway.message.faults import TissFault
from gateway.message.reader import read
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import SERVICE_BY_NAME
from tests.factory import Party, build_lote, build_request

LOTE = SERVICE_BY_NAME["tissLoteGuias"]


def call_of(data: bytes, service=LOTE) -> Call:
    message = read(data)
    return Call(message, service, "10.0.0.1", read_cabecalho(message.root))


def takes_all(version: str) -> str | None:
    return None


ANY_URL = Endpoint(None, None)


def check(call: Call, registry: SchemaRegistry, endpoint: Endpoint = ANY_URL,
          refuse_version=takes_all, policy: hashing.HashPolicy = hashing.STRICT) -> CheckedMessage:
    return check_message(call, endpoint, registry=registry, policy=policy, refuse_version=refuse_version)


def test_cabecalho_read_once():
    call = call_of(build_lote("sp-sadt", 1, sequencial="42"))
    assert call.cabecalho == Cabecalho(tipo="ENVIO_LOTE_GUIAS", sequencial="42", destino="331988",
                                       login="demo", senha=Party().senha_md5, cnpj="11222333000181",
                                       cpf="", codigo="")
    assert call.cabecalho.remetente == "11222333000181"


def test_remetente_is_the_first_identifier_given():
    assert Cabecalho("", "", "", "", "", cnpj="", cpf="12345678901", codigo="9").remetente == "12345678901"
    assert Cabecalho("", "", "", "", "", cnpj="", cpf="", codigo="9").remetente == "9"


@pytest.mark.parametrize("version", ["4.01.00", "4.02.00", "4.03.00"])
def test_a_valid_message(registry, version):
    call = call_of(build_lote("sp-sadt", 2, version=version, envelope=True))
    checked = check(call, registry, Endpoint("tissLoteGuias", version))
    assert checked.version == version
    assert checked.hash_found == hashing.hash_element(call.message.root).text


def test_another_service_than_the_url_names(registry):
    with pytest.raises(TissFault) as raised:
        check(call_of(build_lote("sp-sadt", 1)), registry, Endpoint("tissSolicitacaoProcedimento", None))
    assert (raised.value.tiss_fault, raised.value.code) == ("SchemaInvalido", "5001")


def test_another_version_than_the_url_names(registry):
    with pytest.raises(TissFault) as raised:
        check(call_of(build_lote("sp-sadt", 1, version="4.02.00")), registry, Endpoint(None, "4.03.00"))
    assert (raised.value.tiss_fault, raised.value.code) == ("VersaoInvalida", "5028")


def test_a_version_this_side_does_not_take(registry):
    with pytest.raises(TissFault) as raised:
        check(call_of(build_lote("sp-sadt", 1, version="4.01.00")), registry,
              refuse_version=lambda v: f"não aceito {v}" if v < "4.02.00" else None)
    assert (raised.value.tiss_fault, raised.value.code, raised.value.faultstring) == (
        "VersaoInvalida", "5028", "não aceito 4.01.00")


def test_schema_and_hash(registry):
    data = build_request("solicitacaoStatusProtocoloWS")
    broken = data.replace(b"<ans:numeroProtocolo>", b"<ans:numeroProtocoloX>", 1).replace(
        b"</ans:numeroProtocolo>", b"</ans:numeroProtocoloX>", 1)
    status = SERVICE_BY_NAME["tissSolicitacaoStatusProtocolo"]
    with pytest.raises(TissFault) as raised:
        check(call_of(broken, status), registry)
    assert raised.value.tiss_fault == "SchemaInvalido" and raised.value.findings
    tampered = data.replace(b"123456789", b"123456780")
    with pytest.raises(TissFault) as raised:
        check(call_of(tampered, status), registry)
    assert (raised.value.tiss_fault, raised.value.code) == ("HashInvalido", "5014")


def test_a_version_whose_schemas_are_not_installed_says_how_to_import_them(tmp_path):
    """Before the side's own refusal: 4.01.00 comes in no PyPI package, only by import."""
    bundled_only = SchemaRegistry(tmp_path)
    with pytest.raises(TissFault) as raised:
        check(call_of(build_lote("sp-sadt", 1, version="4.01.00")), bundled_only,
              refuse_version=lambda v: "nunca usado")
    assert (raised.value.tiss_fault, raised.value.code) == ("VersaoInvalida", "5028")
    assert "'tiss-gateway schemas import <zip da ANS ou pasta do PadraoTISS 4.01.00>'" in \
        raised.value.faultstring


def test_another_service_names_the_one_the_message_belongs_to(registry):
    with pytest.raises(TissFault) as raised:
        check(call_of(build_lote("sp-sadt", 1)), registry, Endpoint("tissSolicitacaoProcedimento", None))
    assert "loteGuiasWS é a mensagem do web service tissLoteGuias" in raised.value.faultstring
