"""End to end over HTTP: the two TISS versions in force (4.02.00 and 4.03.00) with every operator.

Each operator's web service takes the versions of its simulated profile (Unimed only 4.03.00, the
others both), each version at its own address (one WSDL per service and version). A message goes
to the operator's address of its version; one in a version the operator does not take is converted
by the adapter (a 4.02.00 lote to Unimed goes as 4.03.00); a real-time answer comes back in the
version the provider asked in. What cannot be converted is refused at acceptance, before any
protocol: no message that got a protocol is refused later for its version.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.message import hashing, reader
from gateway.message.services import ANS_NS, SERVICE_BY_NAME
from gateway.message.validation import validate
from gateway.storage.models import Entrega, Mensagem, Protocolo
from simulator.clock import horario_local
from simulator.lifecycle import GLOSA_TOTAL
from simulator.models import SimLote, SimMensagem
from simulator.profile import load_profile
from tests.factory import Party, build_lote, build_request, glosas_drawn
from tests.forwarding_stack import (
    NS,
    OPERADORAS,
    SO_402,
    Stack,
    new_number,
    party,
    wait_until,
)
from tests.gateway_process import WorkerProcess

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")

A = f"{{{ANS_NS}}}"
VERSIONS = ("4.02.00", "4.03.00")
CARTEIRA_OK = "0000012345"


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[WorkerProcess]:
    """One worker for the whole module (delivery and status polls of every test)."""
    found = stack.worker()
    yield found
    found.close()
    stack.workers.remove(found)


def taken(stack: Stack, key: str, version: str) -> str:
    """The version the operator gets a message sent in ``version`` in: the same if it takes it,
    else the newest it takes."""
    versoes = stack.simulator.versoes[key]
    return version if version in versoes else max(versoes)


def answer(response: requests.Response, service: str, version: str) -> etree._Element:
    """The *WS root of a 200 answer valid in ``version`` (schema, strict hash), in that version."""
    assert response.status_code == 200, response.text[:3000]
    report = validate(response.content)
    assert report.valid, (report.to_dict(), response.text[:3000])
    assert report.hash.variant == hashing.DECLARED and report.kind == SERVICE_BY_NAME[service].response
    root = reader.read(response.content).root
    assert root.findtext("ans:cabecalho/ans:Padrao", namespaces=NS) == version
    return root


def request(key: str, kind: str, version: str, **fields) -> bytes:
    return build_request(kind, envelope=True, sequencial=new_number(), party=party(key), version=version,
                         **fields)


def sent_versions(stack: Stack, servico: str, sequencial: str) -> list[str | None]:
    """The version of every document the gateway sent an operator for one provider transaction."""
    with stack.db.connect() as connection:
        return list(connection.scalars(select(Mensagem.versao).where(
            Mensagem.servico == servico, Mensagem.sequencial_transacao == sequencial,
            Mensagem.direcao == "saida", Mensagem.resultado != "resposta")))


def sim_lote(stack: Stack, key: str, numero: str) -> SimLote:
    with Session(stack.sim_db, expire_on_commit=False) as session:
        return session.scalars(select(SimLote).where(SimLote.registro_ans == OPERADORAS[key][0],
                                                     SimLote.numero_lote == numero)).one()


# --- the operators' addresses ------------------------------------------------------------------


@pytest.mark.parametrize("key", list(OPERADORAS))
def test_each_version_the_operator_takes_has_its_own_wsdl_and_address(stack: Stack, key: str) -> None:
    for version in VERSIONS:
        path = f"/tiss/v{version.replace('.', '_')}/tissLoteGuias"
        response = requests.get(stack.simulator.url(key, path) + "?wsdl", timeout=30)
        if version not in stack.simulator.versoes[key]:
            assert response.status_code == 404  # Unimed: no 4.02.00 web service at all
            continue
        assert response.status_code == 200, response.text[:500]
        (address,) = etree.fromstring(response.content).xpath(
            "//*[local-name()='address']/@location")
        assert address == stack.simulator.url(key, path)  # never another version's address


# --- every operator, both versions in force ------------------------------------------------------


def _paid(key: str, n: int) -> str:
    """A fresh number of an n-guide lote the operator does not glosa in full (the stack's seed is
    0): it is analysed and paid, so that its demonstrativos exist."""
    profile = load_profile(key)
    while True:
        numero = new_number()
        if not all(kind == GLOSA_TOTAL for kind in glosas_drawn(profile, numero, n, seed=0)):
            return numero


def _elegibilidade(key: str, version: str, sequencial: str) -> bytes:
    """A valid card, valid long after the clock the tests move (the factory's validity is the end
    of the year after its version's default date)."""
    message = reader.read(build_request("pedidoElegibilidadeWS", envelope=True, sequencial=sequencial,
                                        party=party(key), version=version,
                                        numero_carteira=OPERADORAS[key][0] + CARTEIRA_OK))
    message.root.find(f".//{A}validadeCarteira").text = "2099-12-31"
    return hashing.rewrite(message.tree, message.root)


def _demonstrativo(stack: Stack, key: str, version: str, numero: str, protocolo: str) -> etree._Element:
    """A demonstrativo the operator issues for the lote: de análise by its protocol, or (CASSEMS,
    which issues only the dental payment one, 240 h after receipt) de pagamento odontologia of the
    month it paid the lote."""
    if key != "cassems":
        data = request(key, "solicitacaoDemonstrativoRetornoWS", version, demonstrativo="analise",
                       numero_protocolo=protocolo)
    else:
        pago = horario_local(sim_lote(stack, key, numero).recebido_em + timedelta(hours=240))
        message = reader.read(request(key, "solicitacaoDemonstrativoRetornoWS", version,
                                      demonstrativo="pagamento", competencia=pago.strftime("%Y%m")))
        message.root.find(f".//{A}tipoDemonstrativo").text = "3"
        data = hashing.rewrite(message.tree, message.root)
    response = stack.post("tissSolicitacaoDemonstrativoRetorno", data)
    return answer(response, "tissSolicitacaoDemonstrativoRetorno", version)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("key", list(OPERADORAS))
def test_a_lote_and_real_time_calls_in_either_version_reach_every_operator(
        stack: Stack, worker: WorkerProcess, key: str, version: str) -> None:
    expected = taken(stack, key, version)  # 4.02.00 to Unimed: converted to 4.03.00
    numero, protocolo = stack.send_lote(key, 2, version=version, numero=_paid(key, 2))
    (part,) = wait_until(lambda: stack.delivered(protocolo), what=f"entrega do lote {numero} a {key}")
    assert sim_lote(stack, key, numero).versao == expected  # the operator took it in a version it takes
    assert sent_versions(stack, "tissLoteGuias", part.sequencial) == [expected]

    stack.simulator.advance(days=11)  # every operator has analysed it (and CASSEMS paid it)
    moved = wait_until(lambda: (e := stack.entregas(protocolo)[0]).status not in (None, 1) and e,
                       what="a situação do lote na operadora")
    status = stack.status(key, protocolo, version)
    assert status.findtext(".//ans:cabecalho/ans:Padrao", namespaces=NS) == version
    assert status.findtext(".//ans:detalheLote/ans:statusProtocolo", namespaces=NS) == str(moved.status)
    with stack.db.connect() as connection:  # the poll went in the part's version, to that address
        poll = connection.scalar(select(Mensagem.versao).where(Mensagem.id == moved.situacao_id))
    assert poll == expected

    sequencial = new_number()
    eligible = answer(stack.post("tissVerificaElegibilidade", _elegibilidade(key, version, sequencial)),
                      "tissVerificaElegibilidade", version)
    recibo = "ans:respostaElegibilidade/ans:reciboElegibilidade/"
    assert eligible.findtext(recibo + "ans:respostaSolicitacao", namespaces=NS) == "S"
    assert eligible.findtext(recibo + "ans:nomeBeneficiario", namespaces=NS)  # the operator's content
    assert sent_versions(stack, "tissVerificaElegibilidade", sequencial) == [expected]

    dem = _demonstrativo(stack, key, version, numero, protocolo)
    body = dem.find("ans:demonstrativoRetorno", NS)
    assert body is not None and body.find("ans:mensagemErro", NS) is None, etree.tostring(body)[-600:]
    numeros = {e.text for e in dem.iter(f"{A}numeroProtocolo")}
    assert protocolo in numeros and part.numero_protocolo not in numeros  # the gateway's number


# --- refused at acceptance, before a protocol ---------------------------------------------------


def test_a_402_honorarios_lote_unimed_cannot_take_is_refused_at_acceptance(stack: Stack) -> None:
    """4.03.00 requires caraterAtendimento in honorários: a 4.02.00 guide has none to convert."""
    numero = new_number()
    response = stack.post("tissLoteGuias", build_lote("honorarios", 1, envelope=True, numero_lote=numero,
                                                      sequencial=numero, party=party("unimed"),
                                                      version="4.02.00"))
    root = answer(response, "tissLoteGuias", "4.02.00")
    erro = root.find("ans:recebimentoLote/ans:mensagemErro", NS)
    assert erro is not None, etree.tostring(root)[:2000]
    assert erro.findtext("ans:codigoGlosa", namespaces=NS) == "5001"
    assert "caraterAtendimento" in erro.findtext("ans:descricaoGlosa", namespaces=NS)
    assert root.find(".//ans:protocoloRecebimento", NS) is None
    assert stack.operator_lotes("unimed", numero) == {}


def test_a_recurso_that_cannot_go_down_to_402_is_refused_at_acceptance(stack: Stack) -> None:
    """The store-and-forward services other than lotes are checked too: a 4.03.00 recurso with
    centroConsumo (4.03.00 only) to an operator that takes only 4.02.00."""
    so_402 = Party(registro_ans=SO_402)
    down = build_request("loteRecursoGlosaWS", envelope=True, sequencial=new_number(), party=so_402,
                         numero_lote="1", numero_protocolo="123456789")
    root = answer(stack.post("tissRecursoGlosa", down), "tissRecursoGlosa", "4.03.00")
    erro = root.find("ans:recebimentoRecurso/ans:mensagemErro", NS)
    assert erro is not None, etree.tostring(root)[:2000]
    assert "centroConsumo" in erro.findtext("ans:descricaoGlosa", namespaces=NS)
    assert not re.search(rb"<ans:nrProtocoloRecursoGlosa>", etree.tostring(root))
    same = build_request("loteRecursoGlosaWS", envelope=True, sequencial=new_number(), party=so_402,
                         numero_lote="1", numero_protocolo="123456789", version="4.02.00")
    root = answer(stack.post("tissRecursoGlosa", same), "tissRecursoGlosa", "4.02.00")
    assert root.findtext(".//ans:nrProtocoloRecursoGlosa", namespaces=NS)  # as it is: a receipt


# --- the operator's numbers stay the operator's ----------------------------------------------------


@pytest.mark.parametrize(("key", "version", "code"), [("pasa", "4.03.00", "3291"),
                                                     ("unimed", "4.02.00", "3162")])
def test_an_operators_text_names_the_gateways_protocol(stack: Stack, worker: WorkerProcess, key: str,
                                                      version: str, code: str) -> None:
    """Asked the status of a recurso by a lote's protocol, the operator says its own number was
    not found: the provider reads the gateway's (and, for a 4.02.00 provider of Unimed, the
    4.03.00 code 3291 as 4.02.00's 3162)."""
    _numero, protocolo = stack.send_lote(key, 1)
    (part,) = wait_until(lambda: stack.delivered(protocolo), what="entrega do lote")
    root = answer(stack.post("tissSolicitacaoStatusRecursoGlosa", request(
        key, "solicitacaoStatusRecursoGlosaWS", version, numero_protocolo=protocolo)),
        "tissSolicitacaoStatusRecursoGlosa", version)
    erro = root.find("ans:situacaoProtocoloRecurso/ans:mensagemErro", NS)
    assert erro is not None, etree.tostring(root)[:2000]
    assert erro.findtext("ans:codigoGlosa", namespaces=NS) == code
    assert protocolo in erro.findtext("ans:descricaoGlosa", namespaces=NS)
    assert part.numero_protocolo.encode() not in etree.tostring(root)


# --- the module's outcome ---------------------------------------------------------------------


def test_no_message_that_got_a_protocol_was_refused_for_its_version(stack: Stack) -> None:
    with stack.db.connect() as connection:
        entregas = list(connection.execute(select(Entrega.estado, Entrega.registro_ans, Entrega.ultimo_erro)
                                           .join(Protocolo, Entrega.protocolo_id == Protocolo.id)))
    assert entregas and all(e.estado == "entregue" for e in entregas), entregas
    with stack.sim_db.connect() as connection:
        refused = connection.scalars(select(SimMensagem.codigo_erro).where(
            SimMensagem.codigo_erro.in_(("5028", "VersaoInvalida")))).all()
    assert refused == []
