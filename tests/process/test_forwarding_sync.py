"""End to end over HTTP: the synchronous services relayed to the simulated operators in real time
(elegibilidade, autorização and its status, cancelamento, demonstrativos, status de recurso), the
status of a forwarded lote answered from the gateway's data, signatures (IPASGO) and an operator
that fails. Gateway, worker and the five operators are separate processes (tests/forwarding_stack).

Every answer checked here validates against the official schema of its version with the hash of
the strict declared-encoding rule, and carries no signature (the operator's is removed).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.delivery import relay as proxy
from gateway.message import credencial, hashing, reader, responses
from gateway.message.services import ANS_NS, DSIG_NS, SERVICE_BY_NAME
from gateway.message.validation import validate, validate_message
from gateway.storage.models import Demonstrativo, Entrega, Mensagem, Protocolo, Transacao
from gateway.storage.rows import ProtocoloDaOperadora
from simulator import answers
from simulator.clock import horario_local
from simulator.models import SimCancelamento, SimGuia, SimLote
from tests.factory import build_request, numero_guia_prestador
from tests.forwarding_stack import (
    NS,
    OPERADORAS,
    OPERATOR_TIMEOUT_S,
    SEM_CONTRATO,
    Stack,
    new_number,
    party,
    wait_until,
)
from tests.gateway_process import WorkerProcess
from tests.process.test_operation_rules import glosado, lote_glosado
from tests.unit.message.test_recurso import recurso_request

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")

A = f"{{{ANS_NS}}}"
CARTEIRA_OK = "0000012345"  # suffixes of the profiles' elegibilidade rules: 0000, 9999, 7777, 6666, 8888


# --- helpers -------------------------------------------------------------------------------------


def carteira(key: str, final: str = CARTEIRA_OK) -> str:
    return OPERADORAS[key][0] + final


def request(key: str, kind: str, *, sequencial: str | None = None, change=None, **fields) -> bytes:
    """A request of the provider to ``key``'s operator; ``change`` edits the tree (hash re-stamped)."""
    data = build_request(kind, envelope=True, sequencial=sequencial or new_number(), party=party(key),
                         **fields)
    return rehash(data, change) if change else data


def rehash(data: bytes, change) -> bytes:
    message = reader.read(data)
    change(message.root)
    return hashing.rewrite(message.tree, message.root)


def ask(stack: Stack, service: str, data: bytes) -> requests.Response:
    return stack.post(service, data)


def answer(response: requests.Response, service: str) -> etree._Element:
    """The *WS root of a 200 answer, after checking schema, strict hash and no signature."""
    assert response.status_code == 200, response.text[:3000]
    report = validate(response.content)
    assert report.valid, (report.to_dict(), response.text[:3000])
    assert report.hash.variant == hashing.DECLARED
    assert report.kind == SERVICE_BY_NAME[service].response
    root = reader.read(response.content).root
    assert not [e for e in root.iter(f"{A}Signature", f"{A}Signatures", f"{{{DSIG_NS}}}Signature")]
    return root


def fault_of(response: requests.Response) -> tuple[str, str]:
    root = etree.fromstring(response.content)
    found = root.findtext(".//ans:tissFaultWS/ans:tissFault", namespaces=NS)
    return found, root.findtext(".//faultstring") or ""


def text(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    if not found:
        print("XML:", etree.tostring(root).decode("utf-8", "replace")[:5000])
    assert found, path
    return found[0].text


def delivered(stack: Stack, key: str, n: int = 1, **kwargs) -> tuple[str, str, list[Entrega]]:
    numero, protocolo = stack.send_lote(key, n, **kwargs)
    parts = wait_until(lambda: stack.delivered(protocolo), what=f"entrega do lote {numero} a {key}")
    return numero, protocolo, parts


def sim_lotes(stack: Stack, key: str, numeros: list[str]) -> list[SimLote]:
    """The operator's lotes (ORM objects, detached: their value properties work)."""
    with Session(stack.sim_db, expire_on_commit=False) as session:
        return list(session.scalars(select(SimLote).where(
            SimLote.registro_ans == OPERADORAS[key][0], SimLote.numero_lote.in_(numeros))
            .order_by(SimLote.numero_lote)))


def sim_guias(stack: Stack, lote_ids: list[int]) -> dict[str, SimGuia]:
    with Session(stack.sim_db, expire_on_commit=False) as session:
        return {g.numero_guia_prestador: g
                for g in session.scalars(select(SimGuia).where(SimGuia.lote_id.in_(lote_ids)))}


def mensagens(stack: Stack, servico: str, sequencial: str) -> list[Mensagem]:
    """The gateway's rows of one provider transaction (and of what it sent the operator for it), in
    the order written: request, [sent, operator's answer]..., answer given."""
    sequenciais = [sequencial, *(f"{sequencial}-{n}" for n in range(2, 5))]
    with stack.db.connect() as connection:
        return list(connection.execute(select(Mensagem).where(
            Mensagem.servico == servico, Mensagem.sequencial_transacao.in_(sequenciais))
            .order_by(Mensagem.id)))


def enviadas(rows: list[Mensagem]) -> list[Mensagem]:
    """What went to the operator (the answer given to the provider is a "resposta")."""
    return [m for m in rows if m.direcao == "saida" and m.resultado != "resposta"]


def money(element: etree._Element, path: str) -> Decimal:
    return Decimal(text(element, path))


# --- elegibilidade ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(OPERADORAS))
def test_elegibilidade_is_the_operators_answer(stack: Stack, key: str) -> None:
    refused = answer(ask(stack, "tissVerificaElegibilidade", request(
        key, "pedidoElegibilidadeWS", numero_carteira=carteira(key, "0000000000"))),
        "tissVerificaElegibilidade")
    recibo = "ans:respostaElegibilidade/ans:reciboElegibilidade/"
    assert text(refused, recibo + "ans:respostaSolicitacao") == "N"
    assert text(refused, recibo + "ans:motivosNegativa/ans:motivoNegativa/ans:codigoGlosa") == "1001"
    eligible = answer(ask(stack, "tissVerificaElegibilidade", request(
        key, "pedidoElegibilidadeWS", numero_carteira=carteira(key))), "tissVerificaElegibilidade")
    assert text(eligible, recibo + "ans:respostaSolicitacao") == "S"
    assert text(eligible, recibo + "ans:registroANS") == OPERADORAS[key][0]
    assert text(eligible, recibo + "ans:nomeBeneficiario")  # only the operator knows the name


def test_the_exchange_is_stored_linked_and_a_replay_does_not_ask_again(stack: Stack) -> None:
    sequencial = new_number()
    data = request("pasa", "pedidoElegibilidadeWS", sequencial=sequencial, numero_carteira=carteira("pasa"))
    first = ask(stack, "tissVerificaElegibilidade", data)
    answer(first, "tissVerificaElegibilidade")
    again = ask(stack, "tissVerificaElegibilidade", data)
    assert again.status_code == 200 and again.content == first.content  # the same bytes
    rows = mensagens(stack, "tissVerificaElegibilidade", sequencial)
    request_row, sent, operator, given = rows  # asked the operator once
    # Stored as received with the senhaPrestador masked (no credential at rest), its SHA-256 kept.
    assert (request_row.direcao, request_row.resultado, request_row.corpo) == (
        "entrada", "aceita", credencial.redact(data).corpo)
    assert request_row.sha256_original == hashlib.sha256(data).hexdigest()
    assert (sent.direcao, sent.destinatario, sent.resposta_de_id) == ("saida", "331988", request_row.id)
    assert (operator.direcao, operator.remetente, operator.resposta_de_id) == ("entrada", "331988", sent.id)
    assert (given.direcao, given.resposta_de_id, given.corpo) == ("saida", request_row.id, first.content)
    # PASA hashes its answers in UTF-8 whatever they declare: the provider gets the declared rule.
    assert reader.read(operator.corpo).encoding == reader.read(given.corpo).encoding
    with stack.db.connect() as connection:
        transacao = connection.execute(select(Transacao).where(
            Transacao.requisicao_id == request_row.id)).one()
    assert transacao.resposta_id == given.id


# --- autorização ---------------------------------------------------------------------------------

# (operator, procedure authorised, denied and its motive, held "em análise" and for how many hours)
AUTORIZACOES = {
    "pasa": ("40304361", ("40316521", "1426"), ("40901122", 24)),
    "unimed": ("40304361", ("40805026", "3145"), ("40316521", 12)),
}


def _one_procedure(code: str):
    def change(root: etree._Element) -> None:
        solicitados = root.findall(f".//{A}procedimentosSolicitados")
        for extra in solicitados[1:]:
            extra.getparent().remove(extra)
        solicitados[0].find(f"{A}procedimento/{A}codigoProcedimento").text = code
    return change


def _autorizacao(stack: Stack, key: str, code: str) -> tuple[str, etree._Element]:
    guia = new_number()
    response = ask(stack, "tissSolicitacaoProcedimento", request(
        key, "solicitacaoProcedimentoWS", numero_guia_prestador=guia, numero_carteira=carteira(key),
        change=_one_procedure(code)))
    return guia, answer(response, "tissSolicitacaoProcedimento")


def _status_autorizacao(stack: Stack, key: str, guia: str) -> etree._Element:
    response = ask(stack, "tissSolicitacaoStatusAutorizacao", request(
        key, "solicitacaoStatusAutorizacaoWS", numero_guia_prestador=guia, numero_carteira=carteira(key)))
    return answer(response, "tissSolicitacaoStatusAutorizacao")


@pytest.mark.parametrize("key", list(AUTORIZACOES))
def test_autorizacao_authorised_denied_and_under_analysis_then_its_status(stack: Stack, key: str) -> None:
    autorizado, (negado, motivo), (em_analise, horas) = AUTORIZACOES[key]
    servico = "ans:autorizacaoProcedimento/ans:autorizacaoServico/"
    _guia, root = _autorizacao(stack, key, autorizado)
    assert text(root, servico + "ans:statusSolicitacao") == "1"
    assert text(root, servico + "ans:dadosAutorizacao/ans:senha")  # the operator's senha
    _guia, root = _autorizacao(stack, key, negado)
    assert text(root, servico + "ans:statusSolicitacao") == "3"
    assert motivo in [e.text for e in root.iter(f"{A}codigoGlosa")]
    guia, root = _autorizacao(stack, key, em_analise)
    assert text(root, servico + "ans:statusSolicitacao") == "2"
    numero_operadora = text(root, servico + "ans:dadosAutorizacao/ans:numeroGuiaOperadora")

    situacao = "ans:situacaoAutorizacao/ans:autorizacaoServico/"
    status = _status_autorizacao(stack, key, guia)
    assert text(status, situacao + "ans:statusSolicitacao") == "2"
    stack.simulator.advance(hours=horas + 1)
    status = _status_autorizacao(stack, key, guia)
    assert text(status, situacao + "ans:statusSolicitacao") == "1"
    assert text(status, situacao + "ans:dadosAutorizacao/ans:numeroGuiaOperadora") == numero_operadora


def test_a_refusal_in_the_operators_answer_is_relayed(stack: Stack) -> None:
    status = _status_autorizacao(stack, "capitalprev", new_number())  # never asked for
    assert text(status, "ans:situacaoAutorizacao/ans:mensagemErro/ans:codigoGlosa") == "1307"


def test_a_tiss_fault_of_the_operator_is_relayed_as_it_said_it(stack: Stack) -> None:
    # A provider the gateway serves and Unimed does not know: Unimed's own LoginInvalido.
    sequencial = new_number()
    data = build_request("pedidoElegibilidadeWS", envelope=True, sequencial=sequencial, party=SEM_CONTRATO,
                         numero_carteira=carteira("unimed"))
    response = ask(stack, "tissVerificaElegibilidade", data)
    assert response.status_code == 500, response.text[:2000]  # the message's fault, not the gateway's
    found, faultstring = fault_of(response)
    assert found == "LoginInvalido"
    assert faultstring == "Login ou senha inválidos. (operadora unimed)"  # its words, and whose
    request_row, sent, operator = mensagens(stack, "tissVerificaElegibilidade", sequencial)  # no Transacao
    assert (request_row.resultado, sent.destinatario, operator.remetente) == ("recusada", "331872", "331872")
    assert b"LoginInvalido" in operator.corpo


# --- cancelamento --------------------------------------------------------------------------------


def test_cancelamento_of_a_guide_of_a_delivered_lote(stack: Stack, worker: WorkerProcess) -> None:
    numero, protocolo, (part,) = delivered(stack, "capitalprev", 3)
    guia = numero_guia_prestador(numero, 2)
    root = answer(ask(stack, "tissCancelaGuia", request(
        "capitalprev", "cancelaGuiaWS", cancelamento="guia", numero_guia_prestador=guia,
        numero_protocolo=protocolo)), "tissCancelaGuia")
    dados = "ans:reciboCancelaGuia/ans:reciboCancelaGuia/ans:retornoStatus/ans:guiasCanceladas/ans:dadosGuia/"
    assert text(root, dados + "ans:numeroGuiaPrestador") == guia
    assert text(root, dados + "ans:statusCancelamento") == "1"  # cancelado com sucesso, by the operator
    assert text(root, dados + "ans:numeroProtocolo") == protocolo  # the gateway's, as asked
    with stack.sim_db.connect() as connection:  # the operator was asked with its own protocol
        cancelamento = connection.execute(select(SimCancelamento).where(
            SimCancelamento.numero_guia_prestador == guia)).one()
    assert cancelamento.numero_protocolo == part.numero_protocolo != protocolo


def test_cancelamento_of_a_split_lote_cancels_every_part(stack: Stack, worker: WorkerProcess) -> None:
    numero, protocolo, parts = delivered(stack, "cassems", 60)
    assert len(parts) == 2
    sequencial = new_number()
    root = answer(ask(stack, "tissCancelaGuia", request(
        "cassems", "cancelaGuiaWS", sequencial=sequencial, cancelamento="lote", numero_lote=numero,
        numero_protocolo=protocolo)), "tissCancelaGuia")
    lote = "ans:reciboCancelaGuia/ans:reciboCancelaGuia/ans:retornoStatus/ans:loteCancelado/"
    assert text(root, lote + "ans:numeroLote") == numero
    assert text(root, lote + "ans:numeroprotocolo") == protocolo
    assert text(root, lote + "ans:statusCancelamento") == "1"
    sims = sim_lotes(stack, "cassems", [f"{numero}-1", f"{numero}-2"])
    assert len(sims) == 2 and all(sim.cancelado_em is not None for sim in sims)
    sent = enviadas(mensagens(stack, "tissCancelaGuia", sequencial))
    assert [m.sequencial_transacao for m in sent] == [sequencial, f"{sequencial}-2"]


# --- demonstrativos ----------------------------------------------------------------------------


def _pedido_analise(key: str, protocolo: str) -> bytes:
    return request(key, "solicitacaoDemonstrativoRetornoWS", demonstrativo="analise",
                   numero_protocolo=protocolo)


def _analise(stack: Stack, key: str, protocolo: str) -> requests.Response:
    return ask(stack, "tissSolicitacaoDemonstrativoRetorno", _pedido_analise(key, protocolo))


def test_demonstrativo_de_analise_of_a_lote(stack: Stack, worker: WorkerProcess) -> None:
    numero, protocolo, (part,) = delivered(stack, "pasa", 2)
    early = answer(_analise(stack, "pasa", protocolo), "tissSolicitacaoDemonstrativoRetorno")
    assert text(early, "ans:demonstrativoRetorno/ans:mensagemErro/ans:codigoGlosa") == "3019"  # not analysed
    stack.simulator.advance(hours=49)  # PASA: "Liberado para faturamento" after 48 h
    pedido = _pedido_analise("pasa", protocolo)
    response = ask(stack, "tissSolicitacaoDemonstrativoRetorno", pedido)
    root = answer(response, "tissSolicitacaoDemonstrativoRetorno")
    dem = root.find("ans:demonstrativoRetorno/ans:demonstrativoAnaliseConta", NS)
    assert text(dem, "ans:cabecalhoDemonstrativo/ans:registroANS") == "331988"
    (dados,) = dem.findall("ans:dadosConta/ans:dadosProtocolo", NS)
    assert text(dados, "ans:numeroProtocolo") == protocolo  # the gateway's, not the operator's
    assert text(dados, "ans:numeroLotePrestador") == numero
    (sim,) = sim_lotes(stack, "pasa", [numero])
    assert sim.numero_protocolo == part.numero_protocolo
    guias = sim_guias(stack, [sim.id])
    relacao = dados.findall("ans:relacaoGuias", NS)
    assert sorted(text(g, "ans:numeroGuiaPrestador") for g in relacao) == sorted(guias)
    for guia in relacao:
        sim_guia = guias[text(guia, "ans:numeroGuiaPrestador")]
        assert money(guia, "ans:valorInformadoGuia") == sim_guia.valor_informado
        assert money(guia, "ans:valorLiberadoGuia") == sim_guia.valor_liberado
    assert money(dados, "ans:valorLiberadoProtocolo") == sim.valor_liberado
    replay = ask(stack, "tissSolicitacaoDemonstrativoRetorno", pedido)
    assert replay.content == response.content  # the same transaction again: the same bytes, kept
    answer(_analise(stack, "pasa", protocolo), "tissSolicitacaoDemonstrativoRetorno")  # a new ask: fetched
    with stack.db.connect() as connection:
        kept = list(connection.execute(select(Demonstrativo).join(
            Protocolo, Demonstrativo.protocolo_id == Protocolo.id).where(Protocolo.numero == protocolo)))
    assert [(d.tipo, d.numero_protocolo) for d in kept] == [("2", part.numero_protocolo)] * 2


def test_demonstrativo_de_analise_the_operator_does_not_issue_is_its_refusal(stack: Stack,
                                                                            worker: WorkerProcess) -> None:
    _numero, protocolo, _parts = delivered(stack, "cassems", 51)  # split 50 + 1
    root = answer(_analise(stack, "cassems", protocolo), "tissSolicitacaoDemonstrativoRetorno")
    assert text(root, "ans:demonstrativoRetorno/ans:mensagemErro/ans:codigoGlosa") == "3148"


def _competencia(sim: SimLote, horas: int) -> str:
    return horario_local(sim.recebido_em + timedelta(hours=horas)).strftime("%Y%m")


def test_demonstrativo_de_pagamento_after_the_payment_date(stack: Stack, worker: WorkerProcess) -> None:
    numero, protocolo, _parts = delivered(stack, "pasa", 3)
    (sim,) = sim_lotes(stack, "pasa", [numero])
    stack.simulator.advance(days=8)  # PASA pays 7 days after receipt
    root = answer(ask(stack, "tissSolicitacaoDemonstrativoRetorno", request(
        "pasa", "solicitacaoDemonstrativoRetornoWS", demonstrativo="pagamento",
        competencia=_competencia(sim, 168))), "tissSolicitacaoDemonstrativoRetorno")
    dem = root.find("ans:demonstrativoRetorno/ans:demonstrativoPagamento", NS)
    assert dem is not None, etree.tostring(root)[:3000]
    ours = [r for r in dem.iterfind(".//ans:relacaoProtocolos", NS) if text(r, "ans:numeroLote") == numero]
    assert len(ours) == 1
    assert text(ours[0], "ans:numeroProtocolo") == protocolo
    assert money(ours[0], "ans:valorLiberado") == sim.valor_liberado
    assert len(ours[0].findall("ans:guiasDoLote", NS)) == 3


def test_demonstrativo_odontologia_of_a_split_lote_is_one_protocol(stack: Stack,
                                                                   worker: WorkerProcess) -> None:
    numero, protocolo, parts = delivered(stack, "cassems", 60)
    sims = sim_lotes(stack, "cassems", [f"{numero}-1", f"{numero}-2"])
    assert [s.numero_protocolo for s in sims] == [p.numero_protocolo for p in parts]
    stack.simulator.advance(days=11)  # CASSEMS pays 10 days after receipt
    pagamento = _competencia(sims[0], 240)

    def tipo_3(root: etree._Element) -> None:
        root.find(f".//{A}tipoDemonstrativo").text = "3"

    root = answer(ask(stack, "tissSolicitacaoDemonstrativoRetorno", request(
        "cassems", "solicitacaoDemonstrativoRetornoWS", demonstrativo="pagamento", competencia=pagamento,
        change=tipo_3)), "tissSolicitacaoDemonstrativoRetorno")
    dem = root.find("ans:demonstrativoRetorno/ans:demonstrativoPagamentoOdonto", NS)
    assert dem is not None, etree.tostring(root)[:3000]
    ours = [p for p in dem.iterfind("ans:dadosPagamentoPorData/ans:protocolos", NS)
            if text(p, "ans:numeroProtocolo") == protocolo]
    assert len(ours) == 1  # the two operator lotes are one protocol again
    assert not [p for p in dem.iter(f"{A}numeroProtocolo") if p.text in {s.numero_protocolo for s in sims}]
    entry = ours[0]
    assert text(entry, "ans:numeroLote") == numero
    guias = entry.findall("ans:dadosPagamentoGuia", NS)
    assert len(guias) == 60
    assert {text(g, "ans:numeroGuiaPrestador") for g in guias} == set(sim_guias(stack, [s.id for s in sims]))
    for total, guide_total in (("valorTotalInformadoPorProtocolo", "valorTotalInformadoGuia"),
                               ("valorTotalGlosaPorProtocolo", "valorTotalGlosaGuia"),
                               ("valorTotalLiberadoPorProtocolo", "valorTotalLiberadoGuia")):
        assert money(entry, f"ans:totaisPorProtocolo/ans:{total}") == sum(money(g, f"ans:{guide_total}")
                                                                          for g in guias)
    assert money(entry, "ans:totaisPorProtocolo/ans:valorTotalLiberadoPorProtocolo") == sum(
        s.valor_liberado for s in sims)


def _analise_de_partes(separados: bool) -> etree._Element:
    """A demonstrativo de análise the simulated operator builds for two parts of lote 555
    (protocols 48761, 48762) and another lote: in one demonstrativoAnaliseConta, or the second part
    in a demonstrativo of its own."""
    pedido = reader.read(request("pasa", "solicitacaoDemonstrativoRetornoWS", demonstrativo="analise"))
    ctx = responses.reply_context(pedido.root, registro_ans="331988", sequencial="77",
                                  now=datetime(2026, 1, 19, 10, 15, 30))

    def guia(parte: int, g: int) -> answers.GuiaAnalisada:
        glosas = (answers.Glosa("1705", Decimal("10.00")),) if g == 1 else ()
        item = answers.ItemAnalisado(answers.Procedimento("22", "40304361", "Hemograma"),
                                     Decimal(f"{100 + g}.50"), glosas=glosas)
        return answers.GuiaAnalisada(f"555{parte}{g:04d}", "3319880000012345", date(2026, 1, 5), (item,))

    partes = [answers.ProtocoloSituacao(f"4876{i}", f"555-{i}", date(2026, 1, 10 + i), status,
                                        tuple(guia(i, g) for g in range(1, 4)))
              for i, status in ((1, 6), (2, 5))]
    outro = answers.ProtocoloSituacao("99", "777", date(2026, 1, 9), 6, partes[0].guias[:1])

    def demonstrativo(protocolos: list[answers.ProtocoloSituacao]) -> etree._Element:
        return answers.demonstrativo_analise_conta(
            ctx, numero_demonstrativo="1", operadora=answers.Operadora("PASA", "39419809000198"),
            prestador=answers.Prestador("1004567", "11222333000181"), protocolos=protocolos)

    if not separados:
        return demonstrativo([partes[0], outro, partes[1]])
    root = demonstrativo([partes[0], outro])
    root.find("ans:demonstrativoRetorno", NS).append(
        demonstrativo([partes[1]]).find("ans:demonstrativoRetorno/ans:demonstrativoAnaliseConta", NS))
    return root


@pytest.mark.parametrize("separados", [False, True], ids=["one-demonstrativo", "two-demonstrativos"])
def test_demonstrativo_de_analise_of_parts_merges_into_one_protocol(registry, separados: bool) -> None:
    """The merge of a split lote's parts in a demonstrativo de análise, on answers the simulated
    operator builds (no simulated operator issuing análise splits lotes: CASSEMS issues only the
    dental payment demonstrativo)."""
    root = _analise_de_partes(separados)
    conhecidos = {f"4876{i}": ProtocoloDaOperadora(1, "000000000123", "555", f"555-{i}") for i in (1, 2)}
    proxy._traduzir(root, conhecidos)
    proxy._fundir_partes(root, {"000000000123"})
    entries = root.findall(".//ans:dadosProtocolo", NS)
    assert [text(e, "ans:numeroProtocolo") for e in entries] == ["000000000123", "99"]
    merged = entries[0]
    assert text(merged, "ans:numeroLotePrestador") == "555"
    assert text(merged, "ans:dataProtocolo") == "2026-01-11"  # the first part's
    assert text(merged, "ans:situacaoProtocolo") == "5"  # the least advanced part's
    assert len(merged.findall("ans:relacaoGuias", NS)) == 6
    for name in ("valorInformadoProtocolo", "valorProcessadoProtocolo", "valorLiberadoProtocolo",
                 "valorGlosaProtocolo"):
        por_guia = name.replace("Protocolo", "Guia")
        assert money(merged, f"ans:{name}") == sum(money(g, f"ans:{por_guia}")
                                                   for g in merged.findall("ans:relacaoGuias", NS))
    assert money(merged, "ans:valorGlosaProtocolo") == Decimal("20.00")
    (dem,) = root.findall(".//ans:demonstrativoAnaliseConta", NS)  # an emptied one is dropped
    for geral, protocolo in (("valorInformadoGeral", "valorInformadoProtocolo"),
                             ("valorLiberadoGeral", "valorLiberadoProtocolo"),
                             ("valorGlosaGeral", "valorGlosaProtocolo")):
        assert money(dem, f"ans:{geral}") == sum(money(e, f"ans:{protocolo}") for e in entries)
    report = validate_message(reader.read(responses.envelope(root, "ISO-8859-1")), registry=registry)
    assert report.valid, report.to_dict()


# --- status de recurso ----------------------------------------------------------------------------


def _recurso(stack: Stack, key: str, numero_lote: str, guia: str, protocolo_recursado: str) -> str:
    response = stack.post("tissRecursoGlosa", request(
        key, "loteRecursoGlosaWS", numero_lote=numero_lote, numero_guia_prestador=guia,
        numero_protocolo=protocolo_recursado))
    assert response.status_code == 200, response.text[:2000]
    return re.search(rb"<ans:nrProtocoloRecursoGlosa>(\w+)<", response.content).group(1).decode()


def _status_recurso(stack: Stack, key: str, protocolo: str) -> etree._Element:
    return answer(ask(stack, "tissSolicitacaoStatusRecursoGlosa", request(
        key, "solicitacaoStatusRecursoGlosaWS", numero_protocolo=protocolo)),
        "tissSolicitacaoStatusRecursoGlosa")


@pytest.mark.parametrize("numero_do", ["gateway", "operadora"])
def test_status_de_recurso_is_the_operators(stack: Stack, worker: WorkerProcess, numero_do: str) -> None:
    numero = lote_glosado(stack, "pasa", 12)  # the operator glosa something in it: appealable
    numero, protocolo, (part,) = delivered(stack, "pasa", 12, numero=numero)
    stack.simulator.advance(hours=49)  # analysed: its glosas can be appealed
    _protocolo_operadora, guia, item = glosado(stack, "pasa", numero)
    # The provider names the appealed lote by the gateway's protocol (translated by the worker into
    # the operator's) or by the operator's own (sent as written).
    recursado = protocolo if numero_do == "gateway" else part.numero_protocolo
    response = stack.post("tissRecursoGlosa", recurso_request(
        {guia: [item]}, numero_protocolo=recursado, numero_lote=numero, party=party("pasa"),
        sequencial=new_number(), with_envelope=True))
    assert response.status_code == 200, response.text[:2000]
    recurso = re.search(rb"<ans:nrProtocoloRecursoGlosa>(\w+)<", response.content).group(1).decode()
    entrega = wait_until(lambda: stack.delivered(recurso) or refused(stack, recurso),
                         what="entrega do recurso")[0]
    assert entrega.estado == "entregue", entrega.ultimo_erro
    status = _status_recurso(stack, "pasa", recurso)
    recibo = "ans:situacaoProtocoloRecurso/ans:reciboGlosaStatus/"
    assert text(status, recibo + "ans:nrProtocoloRecursoGlosa") == recurso  # the gateway's
    assert text(status, recibo + "ans:situacaoProtocolo") == "1"
    assert entrega.numero_protocolo != recurso
    stack.simulator.advance(hours=49)
    decided = _status_recurso(stack, "pasa", recurso)
    glosa = decided.find("ans:situacaoProtocoloRecurso/ans:reciboGlosa", NS)
    assert glosa is not None, etree.tostring(decided)[:3000]
    assert text(glosa, "ans:numeroProtocolo") == protocolo  # the appealed lote, as the gateway's
    assert text(glosa, "ans:valorTotalAcatado")


def refused(stack: Stack, protocolo: str) -> list[Entrega]:
    return [e for e in stack.entregas(protocolo) if e.estado == "recusada"]


def test_status_of_a_recurso_the_operator_refused_is_its_critica(stack: Stack,
                                                                worker: WorkerProcess) -> None:
    recurso = _recurso(stack, "pasa", new_number(), "1", "999999999999")  # a protocol nobody has
    wait_until(lambda: refused(stack, recurso), what="recusa do recurso")
    sequencial = new_number()
    root = answer(ask(stack, "tissSolicitacaoStatusRecursoGlosa", request(
        "pasa", "solicitacaoStatusRecursoGlosaWS", sequencial=sequencial, numero_protocolo=recurso)),
        "tissSolicitacaoStatusRecursoGlosa")
    assert text(root, "ans:situacaoProtocoloRecurso/ans:mensagemErro/ans:codigoGlosa") == "3291"
    rows = mensagens(stack, "tissSolicitacaoStatusRecursoGlosa", sequencial)
    assert [m.direcao for m in rows] == ["entrada", "saida"]  # the operator was not asked


# --- the status of a forwarded lote (from the gateway's data) ----------------------------------


def _status(stack: Stack, key: str, protocolo: str) -> etree._Element:
    return answer(stack.post("tissSolicitacaoStatusProtocolo", request(
        key, "solicitacaoStatusProtocoloWS", numero_protocolo=protocolo)), "tissSolicitacaoStatusProtocolo")


def test_status_of_a_split_lote_lists_every_part_and_then_the_operators_values(stack: Stack,
                                                                             worker: WorkerProcess) -> None:
    numero, protocolo, parts = delivered(stack, "cassems", 60)
    assert len(parts) == 2
    root = _status(stack, "cassems", protocolo)
    detalhe = root.find(".//ans:detalheLote", NS)
    assert text(detalhe, "ans:statusProtocolo") == "1"
    guias = detalhe.findall("ans:guiasTISS/ans:guiasOdonto/ans:guias", NS)
    assert len(guias) == 60  # both parts' guides
    assert all(money(g, "ans:vlInformadoGuia/ans:valorGlosa") == 0 for g in guias)

    stack.simulator.advance(days=6)  # CASSEMS: "Liberado para pagamento" 120 h after receipt

    def analysed() -> bool:
        found = stack.entregas(protocolo)
        return all(e.status == 3 and e.situacao_id for e in found)

    wait_until(analysed, what="as duas partes analisadas segundo a operadora")
    root = _status(stack, "cassems", protocolo)
    detalhe = root.find(".//ans:detalheLote", NS)
    assert text(detalhe, "ans:statusProtocolo") == "3"
    sims = sim_lotes(stack, "cassems", [f"{numero}-1", f"{numero}-2"])
    esperado = sim_guias(stack, [s.id for s in sims])
    guias = detalhe.findall("ans:guiasTISS/ans:guiasOdonto/ans:guias", NS)
    assert {text(g, "ans:numeroGuiaPrestador") for g in guias} == set(esperado)
    for guia in guias:
        sim_guia = esperado[text(guia, "ans:numeroGuiaPrestador")]
        assert money(guia, "ans:vlInformadoGuia/ans:valorGlosa") == sim_guia.valor_glosa
        assert money(guia, "ans:vlInformadoGuia/ans:valorLiberado") == sim_guia.valor_liberado
        assert text(guia, "ans:numeroGuiaOperadora") == sim_guia.numero_guia_operadora
    assert any(g.valor_glosa for g in esperado.values()), "nenhuma glosa: os valores não provam nada"
    assert money(detalhe, "ans:valorTotalLote/ans:valorGlosa") == sum(s.valor_glosa for s in sims)
    assert money(detalhe, "ans:valorTotalLote/ans:valorLiberado") == sum(s.valor_liberado for s in sims)


def test_a_part_the_operator_refused_makes_the_status_its_critica(stack: Stack,
                                                                 worker: WorkerProcess) -> None:
    numero, _protocolo, _parts = delivered(stack, "cassems", 51)  # the operator has "<numero>-1"
    # A lote the provider numbers like a part of another: the operator already has that number.
    _numero, protocolo = stack.send_lote("cassems", 1, numero=f"{numero}-1")
    wait_until(lambda: refused(stack, protocolo), what="recusa do lote")
    root = _status(stack, "cassems", protocolo)
    assert text(root, "ans:situacaoProtocolo/ans:mensagemErro/ans:codigoGlosa") == "3268"
    demonstrativo = answer(_analise(stack, "cassems", protocolo), "tissSolicitacaoDemonstrativoRetorno")
    assert text(demonstrativo, "ans:demonstrativoRetorno/ans:mensagemErro/ans:codigoGlosa") == "3268"


# --- signatures ---------------------------------------------------------------------------------


def test_ipasgo_signed_both_ways_the_provider_gets_it_unsigned_and_rehashed(stack: Stack) -> None:
    sequencial = new_number()
    root = answer(ask(stack, "tissVerificaElegibilidade", request(
        "ipasgo", "pedidoElegibilidadeWS", sequencial=sequencial, numero_carteira=carteira("ipasgo"))),
        "tissVerificaElegibilidade")
    assert text(root, "ans:respostaElegibilidade/ans:reciboElegibilidade/ans:respostaSolicitacao") == "S"
    _request, sent, operator, given = mensagens(stack, "tissVerificaElegibilidade", sequencial)
    assert b"SignatureValue" in sent.corpo  # the gateway signs towards IPASGO (it requires it)
    assert b"SignatureValue" in operator.corpo  # IPASGO signs its answers
    assert b"SignatureValue" not in given.corpo


# --- the operator fails ---------------------------------------------------------------------------

FAULTS = {
    "down": dict(mode="down", duration_s=30),
    "slow": dict(mode="slow", latency_ms=int(OPERATOR_TIMEOUT_S * 1000) + 800, count=1),
    "http500": dict(mode="error", kind="http500", count=1),
    "soap-fault": dict(mode="error", kind="soap_fault", count=1),
    "malformed": dict(mode="malformed", count=1),
    "wrong-hash": dict(mode="wrong_hash", count=1),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_an_operator_that_fails_is_a_server_error_and_the_same_request_can_be_retried(
        stack: Stack, fault: str) -> None:
    stack.simulator.set_fault("unimed", **FAULTS[fault])
    sequencial = new_number()
    data = request("unimed", "pedidoElegibilidadeWS", sequencial=sequencial,
                   numero_carteira=carteira("unimed"))
    response = ask(stack, "tissVerificaElegibilidade", data)
    assert response.status_code == 500, response.text[:2000]
    found, faultstring = fault_of(response)
    assert found == "ErroInesperadoServidor" and "unimed" in faultstring
    stored = mensagens(stack, "tissVerificaElegibilidade", sequencial)[0]  # the request, with no Transacao
    masked = credencial.redact(data).corpo  # stored without its senhaPrestador
    assert (stored.direcao, stored.resultado, stored.corpo) == ("entrada", "erro", masked)
    stack.simulator.clear_fault("unimed")

    def retry() -> requests.Response | None:
        found = ask(stack, "tissVerificaElegibilidade", data)
        return found if found.status_code == 200 else None

    retried = wait_until(retry, timeout=30, what="a mesma transação depois da falha")
    root = answer(retried, "tissVerificaElegibilidade")
    assert text(root, "ans:respostaElegibilidade/ans:reciboElegibilidade/ans:respostaSolicitacao") == "S"

