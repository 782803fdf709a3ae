"""The ``refuse`` fault (simulator.faults) in process, around a stand-in operator app: the service's
mensagemErro with the code and text asked, valid and hashed, and nothing reaching the operator.
(The other modes are tested with the listeners and a real simulator in
tests/process/test_simulator_faults.py.)"""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from gateway.message import reader
from gateway.message.hashing import LENIENT
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS
from gateway.message.validation import validate_message
from simulator.faults import Fault, FaultInjector, FaultState, Responder
from tests.factory import Party, build_lote, build_request

NS = {"ans": ANS_NS}
UNIMED = "339679"
NOW = datetime(2026, 11, 21, 9, 30)
RESPONDER = Responder(UNIMED, now=lambda: NOW)


class OperatorApp:
    """The operator behind the injector: records what reaches it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, environ, start_response):
        self.bodies.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"operadora"]


def post(middleware: FaultInjector, body: bytes) -> tuple[str, dict[str, str], bytes]:
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/tiss/v4_03_00/tissLoteGuias",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    seen: dict = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    data = b"".join(middleware(environ, start_response))
    return seen["status"], seen["headers"], data


def injector(fault: Fault, responder: Responder | None = RESPONDER) -> tuple[FaultInjector, OperatorApp]:
    state = FaultState("unimed")
    state.set(fault)
    app = OperatorApp()
    return FaultInjector(app, state, responder=responder), app


def lote(version: str = "4.03.00") -> bytes:
    return build_lote("sp-sadt", 2, version=version, envelope=True, party=Party(registro_ans=UNIMED))


def erro_do_lote(message: reader.TissMessage) -> tuple[str | None, str | None]:
    """(codigoGlosa, descricaoGlosa) of a protocoloRecebimentoWS mensagemErro."""
    erro = message.root.find("ans:recebimentoLote/ans:mensagemErro", NS)
    assert erro is not None
    return erro.findtext("ans:codigoGlosa", namespaces=NS), erro.findtext("ans:descricaoGlosa", namespaces=NS)


@pytest.mark.parametrize(("data", "message"), [
    ({"mode": "refuse"}, "refuse exige code"),
    ({"mode": "refuse", "code": "12"}, "refuse exige code"),
    ({"mode": "refuse", "code": 1308}, "code deve ser texto"),
    ({"mode": "error", "code": "1308"}, "só se aplicam a refuse"),
    ({"mode": "slow", "latency_ms": 10, "text": "x"}, "só se aplicam a refuse"),
])
def test_refuse_needs_a_table_38_code(data, message):
    with pytest.raises(ValueError, match=message):
        Fault.from_dict(data)


def test_refuse_round_trip():
    fault = Fault.from_dict({"mode": "refuse", "code": "1308", "text": "lote repetido", "count": 1})
    assert fault == Fault("refuse", count=1, code="1308", text="lote repetido")
    assert fault.to_dict() == {"mode": "refuse", "rate": 1.0, "count": 1, "code": "1308",
                               "text": "lote repetido"}


def test_refuse_answers_the_services_mensagem_erro_and_the_operator_sees_nothing(registry: SchemaRegistry):
    middleware, app = injector(Fault("refuse", code="1308", text="lote já apresentado", count=1))
    status, headers, data = post(middleware, lote())
    assert status == "200 OK" and headers["Content-Type"] == "text/xml; charset=ISO-8859-1"
    message = reader.read(data)
    assert message.kind == "protocoloRecebimentoWS"
    assert validate_message(message, registry=registry, policy=LENIENT).valid  # schema and hash
    assert erro_do_lote(message) == ("1308", "lote já apresentado")
    assert message.root.findtext("ans:cabecalho/ans:origem/ans:registroANS", namespaces=NS) == UNIMED
    assert message.root.findtext("ans:cabecalho/ans:identificacaoTransacao/ans:dataRegistroTransacao",
                                 namespaces=NS) == "2026-11-21"
    assert app.bodies == []  # nothing processed nor stored
    body = lote()
    assert post(middleware, body)[2] == b"operadora" and app.bodies == [body]  # count=1: then it takes


def test_refuse_defaults_to_the_codes_term_and_fits_the_service(registry: SchemaRegistry):
    middleware, _app = injector(Fault("refuse", code="1001"))
    pedido = build_request("pedidoElegibilidadeWS", envelope=True, party=Party(registro_ans=UNIMED))
    message = reader.read(post(middleware, pedido)[2])
    assert message.kind == "respostaElegibilidadeWS"  # no mensagemErro there: its codigoGlosa
    assert validate_message(message, registry=registry, policy=LENIENT).valid
    glosa = message.root.find("ans:respostaElegibilidade/ans:codigoGlosa", NS)
    assert glosa.findtext("ans:codigoGlosa", namespaces=NS) == "1001"
    assert glosa.findtext("ans:descricaoGlosa", namespaces=NS) == "NÚMERO DA CARTEIRA INVÁLIDO"


def test_a_code_the_version_lacks_goes_as_5002_with_the_code_in_the_text(registry: SchemaRegistry):
    middleware, _app = injector(Fault("refuse", code="3268"))
    message = reader.read(post(middleware, lote("4.02.00"))[2])
    assert validate_message(message, registry=registry, policy=LENIENT).valid
    assert erro_do_lote(message) == ("5002", "[3268] NÚMERO DE LOTE JÁ INFORMADO ANTERIORMENTE")


def test_without_a_responder_it_answers_for_the_requests_destino(registry: SchemaRegistry):
    middleware, _app = injector(Fault("refuse", code="1308"), responder=None)
    message = reader.read(post(middleware, lote())[2])
    assert message.root.findtext("ans:cabecalho/ans:origem/ans:registroANS", namespaces=NS) == UNIMED
    assert validate_message(message, registry=registry, policy=LENIENT).valid


def test_what_it_cannot_read_goes_on_to_the_operator():
    middleware, app = injector(Fault("refuse", code="1308"))
    assert post(middleware, b"<nada/>")[2] == b"operadora"
    assert app.bodies == [b"<nada/>"]
