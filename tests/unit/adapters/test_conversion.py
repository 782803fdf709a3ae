"""Version conversion and the *WS form a message is sent in (adapters.conversion)."""

from __future__ import annotations

import copy
from datetime import date, datetime
from decimal import Decimal

import pytest
from lxml import etree

from adapters import AdapterError
from gateway.message import hashing
from gateway.message.responses import (
    ReplyContext,
    codigos_glosa,
    glosa_elegibilidade,
    mensagem_erro,
    reply_context,
)
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import SERVICE_BY_NAME
from tests.factory import (
    build_lote,
    build_mensagem_tiss,
    build_request,
    numero_guia_prestador,
)
from tests.unit.adapters.support import (
    NS,
    adapter,
    check_part,
    codes,
    numeros,
    party,
    preparar,
    read,
)


def test_mensagem_tiss_lote_is_sent_as_lote_guias_ws(registry: SchemaRegistry) -> None:
    message = read(build_mensagem_tiss("consulta", 60, numero_lote="42", party=party("cassems")))
    a = adapter(registry, "pasa")
    assert a.criticas(message) == []
    (envio,) = preparar(a, message)
    part = check_part(envio, registry, hashing.DECLARED)
    assert envio.servico == "tissLoteGuias" and envio.numero_lote == "42"
    assert numeros(part) == [numero_guia_prestador("42", i) for i in range(1, 61)]


def test_a_message_in_a_soap_envelope_is_sent_bare(registry: SchemaRegistry) -> None:
    message = read(build_lote("consulta", 3, envelope=True, party=party("pasa")))
    assert message.in_envelope
    (envio,) = preparar(adapter(registry, "pasa"), message)
    assert b"Envelope" not in envio.corpo
    check_part(envio, registry, hashing.DECLARED)


# ------------------------------------------------------------------------------- versions


def test_versao_destino(registry: SchemaRegistry) -> None:
    a = adapter(registry, "pasa", ("4.01.00", "4.02.00"))
    assert a.versao_destino("4.01.00") == "4.01.00"
    assert a.versao_destino("4.02.00") == "4.02.00"
    assert a.versao_destino("4.03.00") == "4.02.00"
    assert adapter(registry, "unimed", ("4.03.00",)).versao_destino("4.01.00") == "4.03.00"


@pytest.mark.parametrize("tipo", ["consulta", "sp-sadt", "odonto", "resumo-internacao"])
@pytest.mark.parametrize("origem", ["4.01.00", "4.02.00"])
def test_restamped_to_403_where_the_structures_are_equal(registry: SchemaRegistry, tipo: str,
                                                         origem: str) -> None:
    a = adapter(registry, "unimed", ("4.03.00",))
    message = read(build_lote(tipo, 4, version=origem, party=party("unimed")))
    assert a.criticas(message) == []
    (envio,) = preparar(a, message)
    assert envio.versao == "4.03.00"
    part = check_part(envio, registry, hashing.DECLARED)
    assert part.root.findtext("ans:cabecalho/ans:Padrao", namespaces=NS) == "4.03.00"
    assert numeros(part) == numeros(message)


def test_honorarios_402_to_403_lack_carater_atendimento(registry: SchemaRegistry) -> None:
    a = adapter(registry, "unimed", ("4.03.00",))
    message = read(build_lote("honorarios", 3, version="4.02.00", party=party("unimed")))
    found = a.criticas(message)
    assert codes(found) == ["5001"]  # one crítica for the element, naming every guide
    text = found[0].message
    assert "caraterAtendimento" in text and "dadosInternacao" in text
    assert "4.02.00" in text and "4.03.00" in text
    for i in (1, 2, 3):
        assert numero_guia_prestador("1", i) in text
    assert "dadosInternacao" in (found[0].location or "")
    assert set(codes(found)) <= codigos_glosa("4.02.00")
    with pytest.raises(AdapterError):
        preparar(a, message)


def test_honorarios_403_as_402_lose_nothing_required(registry: SchemaRegistry) -> None:
    a = adapter(registry, "ipasgo", ("4.02.00",))
    message = read(build_lote("honorarios", 2, version="4.03.00", party=party("ipasgo")))
    found = a.criticas(message)
    # caraterAtendimento does not exist in 4.02.00: downwards it is the element that is refused
    assert codes(found) == ["5001"] and "caraterAtendimento" in found[0].message
    assert "não existe na versão 4.02.00" in found[0].message


def test_optional_403_elements_are_refused_downwards(registry: SchemaRegistry) -> None:
    a = adapter(registry, "capitalprev", ("4.02.00",))
    message = read(build_lote("resumo-internacao", 2, version="4.03.00", party=party("capitalprev")))
    found = a.criticas(message)
    assert found and set(codes(found)) == {"5001"}
    assert all("centroConsumo" in x.message for x in found)


def test_a_target_version_not_installed_is_5028(registry: SchemaRegistry) -> None:
    a = adapter(registry, "pasa", ("4.04.00",))
    found = a.criticas(read(build_lote("consulta", 1, party=party("pasa"))))
    assert codes(found) == ["5028"] and "4.04.00" in found[0].message


# ------------------------------------------------------------------------------- answers


STATUS_RECURSO = SERVICE_BY_NAME["tissSolicitacaoStatusRecursoGlosa"]


def _ctx(kind: str, version: str = "4.03.00") -> ReplyContext:
    """The context of an operator's answer to a ``kind`` request in ``version``."""
    pedido = read(build_request(kind, version=version, party=party("unimed")))
    return reply_context(pedido.root, registro_ans="331872", sequencial="7", now=datetime(2026, 1, 20, 9, 30))


def test_an_answer_in_403_is_given_in_402_with_its_refusal_code_recoded(registry: SchemaRegistry) -> None:
    root = mensagem_erro(_ctx("solicitacaoStatusRecursoGlosaWS"), STATUS_RECURSO, "3291",
                         "Protocolo de recurso 48761 não localizado.")
    a = adapter(registry, "unimed", ("4.03.00",))
    assert a.resposta_para(root, "4.02.00", "ISO-8859-1") == []
    assert root.findtext("ans:cabecalho/ans:Padrao", namespaces=NS) == "4.02.00"
    erro = root.find(".//ans:mensagemErro", NS)
    assert erro.findtext("ans:codigoGlosa", namespaces=NS) == "3162"  # 4.02.00's "protocolo não encontrado"
    assert erro.findtext("ans:descricaoGlosa", namespaces=NS) == "Protocolo de recurso 48761 não localizado."


def test_a_refusal_code_without_an_equivalent_becomes_5002_with_the_operators_words(
        registry: SchemaRegistry) -> None:
    assert "3200" in codigos_glosa("4.03.00") and "3200" not in codigos_glosa("4.02.00")
    root = glosa_elegibilidade(_ctx("pedidoElegibilidadeWS"), "3200", "Motivo da operadora.")
    assert adapter(registry, "unimed", ("4.03.00",)).resposta_para(root, "4.02.00", "UTF-8") == []
    motivo = root.find("ans:respostaElegibilidade/ans:codigoGlosa", NS)
    assert motivo.findtext("ans:codigoGlosa", namespaces=NS) == "5002"
    assert motivo.findtext("ans:descricaoGlosa", namespaces=NS) == "Motivo da operadora."


def test_an_answer_in_its_own_version_is_left_as_it_is(registry: SchemaRegistry) -> None:
    root = mensagem_erro(_ctx("solicitacaoStatusRecursoGlosaWS"), STATUS_RECURSO, "3291", "Não localizado.")
    assert adapter(registry, "unimed", ("4.03.00",)).resposta_para(root, "4.03.00", "UTF-8") == []
    assert root.findtext(".//ans:mensagemErro/ans:codigoGlosa", namespaces=NS) == "3291"


def test_an_answer_whose_structures_do_not_fit_the_providers_version_names_the_element(
        registry: SchemaRegistry) -> None:
    """observacao of a guide in a demonstrativo de análise exists only from 4.03.00."""
    from simulator import answers

    item = answers.ItemAnalisado(answers.Procedimento("22", "40304361", "Hemograma"), Decimal("100.50"))
    guia = answers.GuiaAnalisada("5551", "3318720000012345", date(2026, 1, 5), (item,))
    root = answers.demonstrativo_analise_conta(
        _ctx("solicitacaoDemonstrativoRetornoWS"), numero_demonstrativo="1",
        operadora=answers.Operadora("Unimed", "33187200000154"),
        prestador=answers.Prestador("20345", "11222333000181"),
        protocolos=[answers.ProtocoloSituacao("48761", "555", date(2026, 1, 10), 6, (guia,))])
    etree.SubElement(root.find(".//ans:relacaoGuias", NS), f"{{{NS['ans']}}}observacao").text = "Conferida."
    a = adapter(registry, "unimed", ("4.03.00",))
    assert a.resposta_para(copy.deepcopy(root), "4.03.00", "UTF-8") == []  # valid where it came from
    found = a.resposta_para(root, "4.02.00", "UTF-8")
    assert codes(found) == ["5001"]
    assert "observacao" in found[0].message and "não existe na versão 4.02.00" in found[0].message
    assert "resposta da operadora Unimed São José dos Campos na versão 4.03.00" in found[0].message
