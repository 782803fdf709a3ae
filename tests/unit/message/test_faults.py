"""gateway.message.faults: the tissFaultWS answers, in the request's encoding, and their texts."""

import pytest
from lxml import etree
from spyne import Fault

from gateway.message.faults import TissFault, fault_reply, wrong_service
from gateway.message.services import ANS_NS, SOAP11_NS

NS = {"ans": ANS_NS, "soap": SOAP11_NS}


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-8"])
@pytest.mark.parametrize(("error", "fault", "code"), [
    (TissFault("LoginInvalido", "Login ou senha inválidos."), "LoginInvalido", "soap:Client"),
    (Fault("Client.SchemaValidationError", "não é válido"), "SchemaInvalido", "soap:Client"),
    (RuntimeError("segredo interno"), "ErroInesperadoServidor", "soap:Server"),
], ids=["tiss-fault", "spyne-client-fault", "bug"])
def test_fault_reply_in_the_encoding_asked(error, fault, code, encoding):
    reply = fault_reply(error, encoding)
    assert reply.encoding == encoding
    assert reply.data.startswith(f"<?xml version='1.0' encoding='{encoding}'?>".encode())
    root = etree.fromstring(reply.data)
    assert root.findtext("soap:Body/soap:Fault/faultcode", namespaces=NS) == code
    assert root.xpath("//ans:tissFault/text()", namespaces=NS) == [fault]
    text = root.findtext("soap:Body/soap:Fault/faultstring", namespaces=NS)
    assert "segredo" not in text
    if "á" in text or "ã" in text:
        assert text.encode(encoding) in reply.data


def test_fault_reply_defaults_to_utf8_and_escapes_what_latin1_cannot_write():
    assert fault_reply(TissFault("SchemaInvalido", "x")).encoding == "UTF-8"
    reply = fault_reply(TissFault("SchemaInvalido", "valor € inválido"), "ISO-8859-1")
    assert b"&#8364;" in reply.data and "inválido".encode("latin-1") in reply.data
    assert etree.fromstring(reply.data).findtext(".//faultstring") == "valor € inválido"


def test_wrong_service_names_the_right_one():
    fault = wrong_service("solicitacaoStatusProtocoloWS", "tissLoteGuias")
    assert (fault.tiss_fault, fault.code, fault.client) == ("SchemaInvalido", "5001", True)
    assert fault.faultstring == (
        "solicitacaoStatusProtocoloWS é a mensagem do web service tissSolicitacaoStatusProtocolo e veio "
        "ao endereço de tissLoteGuias, que recebe loteGuiasWS: envie-a ao endereço que termina em "
        "/tissSolicitacaoStatusProtocolo.")
    assert wrong_service("protocoloRecebimentoWS", "tissLoteGuias").faultstring == (
        "protocoloRecebimentoWS não é uma requisição TISS e veio ao endereço de tissLoteGuias, que recebe "
        "loteGuiasWS.")
