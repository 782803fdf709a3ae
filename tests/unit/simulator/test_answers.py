"""The simulated operators' answers: schema-valid, hashed, and with values that add up, in
4.01.00, 4.02.00 and 4.03.00. Requests come from tests/factory.py (and the recurso fixtures of
test_responses); each answer is enveloped, read back and validated by ``check``."""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from gateway.message import hashing, reader, validation
from gateway.message import responses as r
from gateway.message.conta import read_conta
from simulator import answers as a
from tests.factory import Party, build_lote, build_request
from tests.unit.message.test_responses import NS, REGISTRO, VERSIONS, check, ctx_for, request_for

A = "{http://www.ans.gov.br/padroes/tiss/schemas}"
# Identified by its code at the operator (accented: ISO-8859-1 and UTF-8 hashes differ), as
# tests.unit.message.test_responses.check expects.
PARTY = Party(codigo_na_operadora="CLÍNICA-0001", registro_ans=REGISTRO)
OPERADORA = a.Operadora("Caixa de Assistência São José", "12345678000199")
PRESTADOR = a.Prestador("CLÍNICA-0001", "11222333000181", "2079798")
CENT = Decimal("0.01")


def read(data: bytes) -> etree._Element:
    message = reader.read(data)
    report = validation.validate_message(message)
    assert report.valid, [f.message for f in report.findings]
    return message.root


def request(kind: str, version: str, **fields) -> etree._Element:
    return read(build_request(kind, version=version, party=PARTY, **fields))


def text(element: etree._Element, path: str) -> str:
    return element.findtext(path, namespaces=NS)


def dec(element: etree._Element, path: str) -> Decimal:
    return Decimal(text(element, path))


def decs(element: etree._Element, path: str) -> list[Decimal]:
    return [Decimal(x.text) for x in element.findall(path, NS)]


def total_of(element: etree._Element, path: str) -> Decimal:
    return sum(decs(element, path), Decimal(0))


def texts(element: etree._Element, path: str) -> list[str]:
    return [x.text for x in element.findall(path, NS)]


# --------------------------------------------------------------------------- protocols from lotes


def protocolo(version: str, guide_type: str, status: int, *, numero_lote: str = "7", n: int = 3,
              numero_protocolo: str = "PEG000000123") -> a.ProtocoloSituacao:
    """A lote built by the factory, read with gateway.message.conta, with deterministic glosas:
    guide 1 none, guide 2 30% of its first item (1705), guide 3 total (1001 on guide and items)."""
    conta = read_conta(read(build_lote(guide_type, n, version=version, party=PARTY, numero_lote=numero_lote)))
    odonto = conta.tipo_guia == "odonto"
    guias = []
    for index, guia in enumerate(conta.guias):
        itens = []
        for posicao, item in enumerate(guia.itens):
            glosas: tuple[a.Glosa, ...] = ()
            if index == 1 and posicao == 0:
                glosas = (a.Glosa("1705", (item.valor_informado * Decimal("0.3")).quantize(CENT)),)
            elif index == 2:
                glosas = (a.Glosa("1001", item.valor_informado),)
            dia = date.fromisoformat(item.data_realizacao) if item.data_realizacao else None
            itens.append(a.ItemAnalisado(
                a.Procedimento(item.codigo_tabela, item.codigo_procedimento, item.descricao),
                item.valor_informado, item.quantidade,
                sequencial=int(item.sequencial_item) if item.sequencial_item else None,
                data_realizacao=dia, glosas=glosas, dente=item.dente, face=item.face))
        inicio = min(i.data_realizacao for i in itens if i.data_realizacao) if any(
            i.data_realizacao for i in itens) else date(2025, 11, 20)
        guias.append(a.GuiaAnalisada(
            guia.lida.numero_guia_prestador, guia.lida.numero_carteira, inicio, tuple(itens),
            numero_guia_operadora=guia.lida.numero_guia_operadora, senha=guia.senha,
            atendimento_rn=guia.atendimento_rn, glosas=(a.Glosa("1001"),) if index == 2 else (),
            odonto=odonto, nome_executante="Dra. Ângela Conceição Lima"))
    return a.ProtocoloSituacao(numero_protocolo, conta.numero_lote, date(2025, 12, 1), status, tuple(guias))


def test_protocolo_fixture_glosas():
    p = protocolo("4.03.00", "sp-sadt", 3)
    assert [g.valor_glosa > 0 for g in p.guias] == [False, True, True]
    assert p.guias[2].valor_liberado == 0
    assert p.valor_liberado == p.valor_processado - p.valor_glosa
    assert p.valor_informado == sum(g.valor_informado for g in p.guias)


# --------------------------------------------------------------------------- 1. situação do protocolo


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("guide_type", ["sp-sadt", "consulta", "odonto"])
@pytest.mark.parametrize("status", [2, 6])
def test_situacao_protocolo_detalhado(version, guide_type, status):
    ctx = ctx_for(request("solicitacaoStatusProtocoloWS", version, numero_protocolo="PEG000000123"))
    dados = protocolo(version, guide_type, status)
    root = a.situacao_protocolo_detalhado(ctx, dados)
    wrapper = "guiasOdonto" if guide_type == "odonto" else "guiasMedicas"
    for body in check(root, version).values():
        detalhe = body.find("ans:situacaoProtocolo/ans:situacaoDoProtocolo/ans:lote/ans:detalheLote", NS)
        assert text(detalhe, "ans:statusProtocolo") == str(status)
        assert text(detalhe, "ans:numeroLote") == "7"
        guias = detalhe.findall(f"ans:guiasTISS/ans:{wrapper}/ans:guias", NS)
        assert [text(g, "ans:numeroGuiaPrestador") for g in guias] == [
            g.numero_guia_prestador for g in dados.guias]
        total = detalhe.find("ans:valorTotalLote", NS)
        for name in ("valorProcessado", "valorGlosa", "valorLiberado"):  # lot = sum of its guides
            assert dec(total, f"ans:{name}") == sum(dec(g, f"ans:vlInformadoGuia/ans:{name}") for g in guias)
        itens = [len(g.findall("ans:procedimentosRealizados/ans:procedimentoRealizado", NS)) for g in guias]
        assert itens == [len(g.itens) for g in dados.guias]
        if status == 2:  # not analysed: informed value, nothing glosado nor released, no motives
            assert dec(total, "ans:valorProcessado") == dados.valor_informado
            assert dec(total, "ans:valorLiberado") == 0
            assert detalhe.find(".//ans:glosaGuia", NS) is None
            assert detalhe.find(".//ans:glosasProcedimento", NS) is None
            continue
        assert dec(total, "ans:valorGlosa") == dados.valor_glosa > 0
        assert dec(total, "ans:valorLiberado") == (
            dec(total, "ans:valorProcessado") - dec(total, "ans:valorGlosa"))
        codigos = [text(g, "ans:glosaGuia/ans:motivoGlosa/ans:codigoGlosa") for g in guias]
        assert codigos == [None, None, "1001"]
        descricao = text(guias[2], "ans:glosaGuia/ans:motivoGlosa/ans:descricaoGlosa")
        assert descricao == "NÚMERO DA CARTEIRA INVÁLIDO"
        for guia in guias:  # the guide's glosa = the sum of its items' glosas
            por_item = total_of(guia, ".//ans:glosasProcedimento/ans:valorGlosaProcedimento")
            assert dec(guia, "ans:vlInformadoGuia/ans:valorGlosa") == por_item
        primeiro = guias[1].find("ans:procedimentosRealizados/ans:procedimentoRealizado", NS)
        assert text(primeiro, "ans:glosasProcedimento/ans:motivoGlosa/ans:codigoGlosa") == "1705"


@pytest.mark.parametrize("version", VERSIONS)
def test_situacao_protocolo_status_by_version(version):
    ctx = ctx_for(request("solicitacaoStatusProtocoloWS", version))
    bloqueado = protocolo(version, "consulta", 10, n=1)
    if version == "4.01.00":  # dm_statusProtocolo 10 Bloqueio judicial came in 4.02.00
        with pytest.raises(ValueError, match="statusProtocolo 10"):
            a.situacao_protocolo_detalhado(ctx, bloqueado)
    else:
        body = check(a.situacao_protocolo_detalhado(ctx, bloqueado), version)["UTF-8"]
        assert text(body, ".//ans:detalheLote/ans:statusProtocolo") == "10"


# --------------------------------------------------------------------------- 2. análise de conta


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("guide_type", ["sp-sadt", "consulta", "resumo-internacao"])
def test_demonstrativo_analise_conta(version, guide_type):
    ctx = ctx_for(request("solicitacaoDemonstrativoRetornoWS", version, demonstrativo="analise"))
    analisado = protocolo(version, guide_type, 3)
    em_analise = protocolo(version, guide_type, 2, numero_lote="8", n=1, numero_protocolo="PEG000000124")
    root = a.demonstrativo_analise_conta(ctx, numero_demonstrativo="DAC-2025-0001", operadora=OPERADORA,
                                         prestador=PRESTADOR, protocolos=[analisado, em_analise])
    for body in check(root, version, tipo="DEMONSTRATIVO_ANALISE_CONTA").values():
        dem = body.find("ans:demonstrativoRetorno/ans:demonstrativoAnaliseConta", NS)
        assert text(dem, "ans:cabecalhoDemonstrativo/ans:numeroCNPJ") == OPERADORA.cnpj
        assert text(dem, "ans:cabecalhoDemonstrativo/ans:dataEmissao") == "2025-12-03"
        contratado = dem.find("ans:dadosPrestador/ans:dadosContratado", NS)
        assert text(contratado, "ans:codigoPrestadorNaOperadora") == "CLÍNICA-0001"
        assert text(dem, "ans:dadosPrestador/ans:CNES") == "2079798"
        protocolos = dem.findall("ans:dadosConta/ans:dadosProtocolo", NS)
        assert [text(p, "ans:situacaoProtocolo") for p in protocolos] == ["3", "2"]
        primeiro, segundo = protocolos
        guias = primeiro.findall("ans:relacaoGuias", NS)
        assert len(guias) == 3 and segundo.find("ans:relacaoGuias", NS) is None
        assert [text(g, "ans:situacaoGuia") for g in guias] == ["3", "3", "3"]
        assert [text(g, "ans:motivoGlosaGuia/ans:codigoGlosa") for g in guias] == [None, None, "1001"]
        for guia in guias:
            detalhes = guia.findall("ans:detalhesGuia", NS)
            for item in detalhes:  # liberado = processado − its glosas
                glosa = total_of(item, "ans:relacaoGlosa/ans:valorGlosa")
                assert dec(item, "ans:valorLiberado") == dec(item, "ans:valorProcessado") - glosa
                assert set(texts(item, "ans:relacaoGlosa/ans:tipoGlosa")) <= {"1705", "1001"}
            for name in ("Informado", "Processado", "Liberado"):  # guide = sum of items
                itens_total = total_of(guia, f"ans:detalhesGuia/ans:valor{name}")
                assert dec(guia, f"ans:valor{name}Guia") == itens_total
            assert dec(guia, "ans:valorGlosaGuia") == total_of(
                guia, "ans:detalhesGuia/ans:relacaoGlosa/ans:valorGlosa")
            assert dec(guia, "ans:valorLiberadoGuia") == dec(guia, "ans:valorProcessadoGuia") - dec(
                guia, "ans:valorGlosaGuia")
        for name in ("Informado", "Processado", "Liberado", "Glosa"):  # protocol = guides, geral = protocols
            assert dec(primeiro, f"ans:valor{name}Protocolo") == total_of(
                primeiro, f"ans:relacaoGuias/ans:valor{name}Guia")
            assert dec(dem, f"ans:valor{name}Geral") == total_of(
                dem, f"ans:dadosConta/ans:dadosProtocolo/ans:valor{name}Protocolo")
        assert dec(primeiro, "ans:valorGlosaProtocolo") == analisado.valor_glosa > 0
        assert dec(segundo, "ans:valorInformadoProtocolo") == em_analise.valor_informado
        assert dec(segundo, "ans:valorLiberadoProtocolo") == 0  # nothing processed yet


@pytest.mark.parametrize("version", VERSIONS)
def test_demonstrativo_analise_protocol_glosa_and_guide_status(version):
    ctx = ctx_for(request("solicitacaoDemonstrativoRetornoWS", version))
    base = protocolo(version, "sp-sadt", 4, n=2)
    guias = (replace(base.guias[0], status=6), base.guias[1])
    dados = replace(base, guias=guias, glosa=a.Glosa("1104", descricao="Valor do protocolo divergente"))
    root = a.demonstrativo_analise_conta(ctx, numero_demonstrativo="1", operadora=OPERADORA,
                                         prestador=a.Prestador("X", "12345678901"), protocolos=[dados])
    body = check(root, version, tipo="DEMONSTRATIVO_ANALISE_CONTA")["ISO-8859-1"]
    protocolo_el = body.find(".//ans:dadosProtocolo", NS)
    assert text(protocolo_el, "ans:GlosaProtocolo/ans:codigoGlosa") == "1104"
    assert [x.text for x in protocolo_el.findall("ans:relacaoGuias/ans:situacaoGuia", NS)] == ["6", "4"]
    assert text(body, ".//ans:dadosPrestador/ans:CNES") == a.CNES_NAO_INFORMADO


# --------------------------------------------------------------------------- 3. pagamento


@pytest.mark.parametrize("version", VERSIONS)
def test_demonstrativo_pagamento(version):
    ctx = ctx_for(request("solicitacaoDemonstrativoRetornoWS", version, demonstrativo="pagamento"))
    p1 = protocolo(version, "sp-sadt", 6)
    p2 = protocolo(version, "consulta", 6, numero_lote="8", numero_protocolo="PEG000000124")
    p2 = replace(p2, guias=(replace(p2.guias[0], recurso=True), *p2.guias[1:]))
    irrf = a.DebitoCredito("01", Decimal("15.00"))
    iss = a.DebitoCredito("02", Decimal("7.25"))
    ajuste = a.DebitoCredito("08", Decimal("20.00"), credito=True, descricao="Ajuste de competência anterior")
    pagamentos = [a.PagamentoPorData(date(2025, 12, 10), (p1,), debitos_creditos=(irrf, iss)),
                  a.PagamentoPorData(date(2025, 12, 20), (p2,), forma="3", conta=None)]
    judicial = a.DebitoCredito("09", Decimal("5.00"))
    root = a.demonstrativo_pagamento(ctx, numero_demonstrativo="DP-2025-12", operadora=OPERADORA,
                                     prestador=PRESTADOR, pagamentos=pagamentos,
                                     debitos_creditos=[ajuste, judicial])
    liberado = p1.valor_liberado + p2.valor_liberado
    for body in check(root, version, tipo="DEMONSTRATIVO_PAGAMENTO").values():
        dem = body.find("ans:demonstrativoRetorno/ans:demonstrativoPagamento", NS)
        datas = dem.findall("ans:pagamentos/ans:pagamentosPorData", NS)
        datas_pagamento = [text(d, "ans:dadosPagamento/ans:dataPagamento") for d in datas]
        assert datas_pagamento == ["2025-12-10", "2025-12-20"]
        assert [text(d, "ans:dadosPagamento/ans:formaPagamento") for d in datas] == ["1", "3"]
        assert text(datas[0], "ans:dadosPagamento/ans:banco") == a.CONTA_SANDBOX.banco
        assert datas[1].find("ans:dadosPagamento/ans:banco", NS) is None
        for data in datas:
            for rel in data.findall("ans:dadosResumo/ans:relacaoProtocolos", NS):
                for name in ("Processado", "Liberado", "Glosa"):  # protocol = sum of its guides
                    guias_total = total_of(rel, f"ans:guiasDoLote/ans:valor{name}Guia")
                    assert dec(rel, f"ans:valor{name}") == guias_total
                assert dec(rel, "ans:valorLiberado") == (
                    dec(rel, "ans:valorProcessado") - dec(rel, "ans:valorGlosa"))
            brutos = data.find("ans:totaisBrutosPorData", NS)
            assert dec(brutos, "ans:totaLiberadoPorData") == total_of(
                data, ".//ans:relacaoProtocolos/ans:valorLiberado")
            liquidos = data.find("ans:totaisLiquidosPorData", NS)
            assert dec(liquidos, "ans:liquidoPorData") == (dec(brutos, "ans:totaLiberadoPorData")
                                                          - dec(liquidos, "ans:totalDebitosPorData")
                                                          + dec(liquidos, "ans:totalCreditosPorData"))
        assert texts(datas[0], ".//ans:debitosCreditos/ans:descricaoDbCr") == ["IRRF", "ISS"]
        assert dec(datas[0], "ans:totaisLiquidosPorData/ans:totalDebitosPorData") == Decimal("22.25")
        assert texts(datas[1], ".//ans:guiasDoLote/ans:tipoPagamento") == ["2", "1", "1"]
        totais = dem.find("ans:totaisDemonstrativo", NS)
        assert dec(totais, "ans:totaisBrutosDemonstrativo/ans:valorLiberadoBruto") == liberado
        glosa = dec(totais, "ans:totaisBrutosDemonstrativo/ans:valorGlosaBruto")
        assert glosa == p1.valor_glosa + p2.valor_glosa
        assert texts(totais, "ans:debitosCreditosDemonstrativo/ans:indicador") == ["2", "1"]
        liquidos = totais.find("ans:totaisLiquidosDemonstrativo", NS)
        assert dec(liquidos, "ans:totalDebitosDemonstrativo") == Decimal("27.25")  # 15 + 7.25 + 5
        assert dec(liquidos, "ans:totalCreditosdemonstrativo") == Decimal("20.00")
        assert dec(liquidos, "ans:valorLiberadoDemonstrativo") == (
            liberado - Decimal("27.25") + Decimal("20.00"))


def test_pagamento_refuses_protocol_not_analysed():
    with pytest.raises(ValueError, match="não analisados"):
        a.PagamentoPorData(date(2025, 12, 10), (protocolo("4.03.00", "consulta", 2, n=1),))


# --------------------------------------------------------------------------- 4. odontologia


@pytest.mark.parametrize("version", VERSIONS)
def test_demonstrativo_odontologia(version):
    ctx = ctx_for(request("solicitacaoDemonstrativoRetornoWS", version, demonstrativo="pagamento"))
    base = protocolo(version, "odonto", 6, n=3)
    primeira = base.guias[0]  # a franquia (coparticipação) on the first item of the unglosada guide
    item = replace(primeira.itens[0], valor_franquia=Decimal("10.00"))
    primeira = replace(primeira, itens=(item, *primeira.itens[1:]), recurso=True)
    dados = replace(base, guias=(primeira, *base.guias[1:]))
    iss = a.DebitoCredito("02", Decimal("3.10"))
    pagamentos = [a.PagamentoPorData(date(2025, 12, 15), (dados,), debitos_creditos=(iss,))]
    root = a.demonstrativo_odontologia(ctx, numero_demonstrativo="DO-2025-12", operadora=OPERADORA,
                                       prestador=PRESTADOR, pagamentos=pagamentos)
    for body in check(root, version, tipo="DEMONSTRATIVO_ODONTOLOGIA").values():
        dem = body.find("ans:demonstrativoRetorno/ans:demonstrativoPagamentoOdonto", NS)
        cab = dem.find("ans:cabecalhoDemonstrativoOdonto", NS)
        assert (text(cab, "ans:periodoProc/ans:datainicio"), text(cab, "ans:periodoProc/ans:datafim")) == (
            "2025-12-01", "2025-12-15")
        assert text(dem, "ans:dadosPrestador/ans:codigoPrestador") == "CLÍNICA-0001"
        assert text(dem, "ans:dadosPrestador/ans:cpfCNPJContratado/ans:cnpjPrestador") == PRESTADOR.documento
        guias = dem.findall(".//ans:protocolos/ans:dadosPagamentoGuia", NS)
        assert [text(g, "ans:recurso") for g in guias] == ["S", "N", "N"]
        for guia in guias:
            for item_el in guia.findall("ans:dadosPagamento", NS):
                assert dec(item_el, "ans:valorLiberado") == (
                    dec(item_el, "ans:valorProcessado") - dec(item_el, "ans:valorGlosaEstorno")
                    - dec(item_el, "ans:valorFranquia"))
            for name, item_name in (("Informado", "Informado"), ("Processado", "Processado"),
                                    ("Glosa", "GlosaEstorno"), ("Franquia", "Franquia"),
                                    ("Liberado", "Liberado")):
                assert dec(guia, f"ans:valorTotal{name}Guia") == total_of(
                    guia, f"ans:dadosPagamento/ans:valor{item_name}")
        assert dec(guias[0], "ans:valorTotalFranquiaGuia") == Decimal("10.00")
        assert texts(guias[2], ".//ans:codigosGlosa") == ["1001"] * len(dados.guias[2].itens)
        totais = dem.find(".//ans:totaisPorProtocolo", NS)
        for name in ("Informado", "Processado", "Glosa", "Franquia", "Liberado"):
            assert dec(totais, f"ans:valorTotal{name}PorProtocolo") == total_of(
                dem, f".//ans:valorTotal{name}Guia")
        por_data = dem.find("ans:dadosPagamentoPorData", NS)
        liberado = dec(por_data, "ans:totaisPorData/ans:valorBrutoLiberadoPorData")
        assert liberado == dados.valor_processado - dados.valor_glosa - Decimal("10.00")
        final = dec(por_data, "ans:totalLiquidoPorData/ans:valorFinalAReceberPorData")
        assert final == liberado - Decimal("3.10")
        assert dec(dem, "ans:valorRecebidoDemonstrativo") == liberado - Decimal("3.10")
        assert dec(dem, "ans:totaisBrutoDemonstrativo/ans:valoFranquiaPorDemonstrativo") == Decimal("10.00")


def test_franquia_only_in_odonto():
    guia = protocolo("4.03.00", "consulta", 3, n=1).guias[0]
    with pytest.raises(ValueError, match="franquia"):
        replace(guia, itens=(replace(guia.itens[0], valor_franquia=Decimal("1")),))


# --------------------------------------------------------------------------- 5. elegibilidade


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("elegivel", [True, False])
def test_resposta_elegibilidade(version, elegivel):
    pedido = request("pedidoElegibilidadeWS", version, numero_carteira="3296650000012345")
    ctx = ctx_for(pedido)
    if elegivel:
        verdict = a.Elegibilidade(True, "Antônia Araújo", validade_carteira=date(2026, 12, 31))
    else:
        motivos = (a.Glosa(a.CARTEIRA_VENCIDA), a.Glosa(a.PAGAMENTO_EM_ABERTO))
        verdict = a.Elegibilidade(False, motivos=motivos)
    root = a.resposta_elegibilidade(ctx, pedido, verdict)
    for body in check(root, version, tipo="SITUACAO_ELEGIBILIDADE").values():
        recibo = body.find("ans:respostaElegibilidade/ans:reciboElegibilidade", NS)
        assert text(recibo, "ans:numeroCarteira") == "3296650000012345"
        assert text(recibo, "ans:registroANS") == REGISTRO
        assert text(recibo, "ans:respostaSolicitacao") == ("S" if elegivel else "N")
        codigos = texts(recibo, "ans:motivosNegativa/ans:motivoNegativa/ans:codigoGlosa")
        assert codigos == ([] if elegivel else ["1017", "1009"])
        # the verdict's validity, else the one the request read on the card
        validade = "2026-12-31" if elegivel else text(pedido, ".//ans:validadeCarteira")
        assert text(recibo, "ans:validadeCarteira") == validade
        nome = "Antônia Araújo" if elegivel else r.NOME_NAO_INFORMADO
        assert text(recibo, "ans:nomeBeneficiario") == nome


def test_elegibilidade_rules():
    with pytest.raises(ValueError, match="ao menos um"):
        a.Elegibilidade(False)
    with pytest.raises(ValueError, match="ao menos um"):
        a.Elegibilidade(True, motivos=(a.Glosa("1001"),))
    pedido = request("pedidoElegibilidadeWS", "4.01.00")
    carencia = a.Elegibilidade(False, motivos=(a.Glosa("3171"),))  # 3171 CARÊNCIA exists from 4.03.00
    with pytest.raises(ValueError, match="3171"):
        a.resposta_elegibilidade(ctx_for(pedido), pedido, carencia)
    pedido = request("pedidoElegibilidadeWS", "4.03.00")
    root = a.resposta_elegibilidade(ctx_for(pedido), pedido, carencia)
    check(root, "4.03.00", tipo="SITUACAO_ELEGIBILIDADE")
    with pytest.raises(ValueError, match="esperado pedidoElegibilidadeWS"):
        outro = request("solicitacaoStatusProtocoloWS", "4.03.00")
        a.resposta_elegibilidade(ctx_for(pedido), outro, carencia)


# --------------------------------------------------------------------------- 6/7. autorização

PROFISSIONAL = """<ans:{tag}><ans:nomeProfissional>Dra. Antônia Araújo Leão</ans:nomeProfissional>
  <ans:conselhoProfissional>06</ans:conselhoProfissional><ans:numeroConselhoProfissional>123456</ans:numeroConselhoProfissional>
  <ans:UF>35</ans:UF><ans:CBOS>225125</ans:CBOS></ans:{tag}>"""
PROC = """<ans:{tag}><ans:procedimento><ans:codigoTabela>22</ans:codigoTabela>
  <ans:codigoProcedimento>{codigo}</ans:codigoProcedimento><ans:descricaoProcedimento>{descricao}</ans:descricaoProcedimento>
  </ans:procedimento><ans:quantidadeSolicitada>{qtd}</ans:quantidadeSolicitada></ans:{tag}>"""
SOLICITACOES = {
    "internacao": """<ans:solicitacaoInternacao><ans:registroANS>329665</ans:registroANS>
  <ans:numeroGuiaPrestador>INT-1</ans:numeroGuiaPrestador><ans:tipoEtapaAutorizacao>1</ans:tipoEtapaAutorizacao>
  <ans:dadosBeneficiario><ans:numeroCarteira>3296650000000011</ans:numeroCarteira><ans:atendimentoRN>S</ans:atendimentoRN>
  </ans:dadosBeneficiario>
  <ans:identificacaoSolicitante><ans:dadosDoContratado><ans:codigoPrestadorNaOperadora>CLÍNICA-0001</ans:codigoPrestadorNaOperadora>
  </ans:dadosDoContratado>""" + PROFISSIONAL.format(tag="dadosProfissionalContratado")
    + """</ans:identificacaoSolicitante>
  <ans:dadosHospitalSolicitado><ans:codigoIndicadonaOperadora>HOSP-1</ans:codigoIndicadonaOperadora>
  <ans:nomeContratadoIndicado>Hospital São José da Conceição</ans:nomeContratadoIndicado>
  <ans:dataSugeridaInternacao>2025-12-10</ans:dataSugeridaInternacao></ans:dadosHospitalSolicitado>
  <ans:dadosInternacao><ans:caraterAtendimento>1</ans:caraterAtendimento><ans:tipoInternacao>1</ans:tipoInternacao>
  <ans:regimeInternacao>1</ans:regimeInternacao><ans:qtDiariasSolicitadas>3</ans:qtDiariasSolicitadas>
  <ans:indicadorOPME>N</ans:indicadorOPME><ans:indicadorQuimio>N</ans:indicadorQuimio>
  <ans:indicacaoClinica>Colecistite aguda, indicação cirúrgica</ans:indicacaoClinica></ans:dadosInternacao>
  <ans:hipotesesDiagnosticas><ans:diagnosticoCID>K802</ans:diagnosticoCID><ans:indicadorAcidente>9</ans:indicadorAcidente>
  </ans:hipotesesDiagnosticas>"""
    + PROC.format(tag="procedimentosSolicitados", codigo="31005497",
                  descricao="Colecistectomia sem colangiografia por videolaparoscopia", qtd=1)
    + PROC.format(tag="procedimentosSolicitados", codigo="10102019", descricao="Visita hospitalar", qtd=3)
    + "<ans:dataSolicitacao>2025-12-01</ans:dataSolicitacao></ans:solicitacaoInternacao>",
    "prorrogacao": """<ans:solicitacaoProrrogacao><ans:registroANS>329665</ans:registroANS>
  <ans:numeroGuiaPrestador>PRO-1</ans:numeroGuiaPrestador><ans:nrGuiaReferenciada>INT-1</ans:nrGuiaReferenciada>
  <ans:dadosBeneficiario><ans:numeroCarteira>3296650000000011</ans:numeroCarteira></ans:dadosBeneficiario>
  <ans:dadosContratadoSolicitante><ans:codigoPrestadorNaOperadora>CLÍNICA-0001</ans:codigoPrestadorNaOperadora>
  </ans:dadosContratadoSolicitante>
  <ans:nomeContratadoSolicitante>Hospital São José</ans:nomeContratadoSolicitante>"""
    + PROFISSIONAL.format(tag="dadosProfissionalSolicitante")
    + """<ans:dadosInternacao><ans:qtDiariasAdicionais>2</ans:qtDiariasAdicionais>
  <ans:indicacaoClinica>Evolução lenta, febre persistente</ans:indicacaoClinica></ans:dadosInternacao>"""
    + PROC.format(tag="procedimentosAdicionais", codigo="10102019", descricao="Visita hospitalar", qtd=2)
    + "<ans:dataSolicitacao>2025-12-02</ans:dataSolicitacao></ans:solicitacaoProrrogacao>",
    "odonto": """<ans:solicitacaoOdontologia><ans:registroANS>329665</ans:registroANS>
  <ans:numeroGuiaPrestador>OD-1</ans:numeroGuiaPrestador><ans:numeroCarteira>3296650000000022</ans:numeroCarteira>
  <ans:atendimentoRN>N</ans:atendimentoRN>
  <ans:planoBeneficiario>Odonto Essencial Família</ans:planoBeneficiario>
  <ans:dadosProfissionaisResponsaveis><ans:nomeProfSolic>Dra. Ângela Conceição Lima</ans:nomeProfSolic>
  <ans:croSolic>12345</ans:croSolic><ans:ufSolic>35</ans:ufSolic><ans:cbosSolic>223208</ans:cbosSolic>
  <ans:codigoProfExec>CLÍNICA-0001</ans:codigoProfExec><ans:croExec>12345</ans:croExec><ans:ufExec>35</ans:ufExec>
  <ans:cnesExec>2079798</ans:cnesExec><ans:cbosExec2>223208</ans:cbosExec2></ans:dadosProfissionaisResponsaveis>
  <ans:procedimentosSolicitados><ans:procSolic><ans:codigoTabela>22</ans:codigoTabela>
  <ans:codigoProcedimento>85100099</ans:codigoProcedimento>
  <ans:descricaoProcedimento>Restauração em resina fotopolimerizável 1 face</ans:descricaoProcedimento>
  </ans:procSolic>
  <ans:denteRegiao><ans:codDente>16</ans:codDente></ans:denteRegiao><ans:denteFace>O</ans:denteFace>
  <ans:qtdProc>1</ans:qtdProc><ans:qtdUS>12.00</ans:qtdUS><ans:valorProc>120.00</ans:valorProc><ans:aut>N</ans:aut>
  </ans:procedimentosSolicitados>
  <ans:procedimentosSolicitados><ans:procSolic><ans:codigoTabela>22</ans:codigoTabela>
  <ans:codigoProcedimento>84000090</ans:codigoProcedimento>
  <ans:descricaoProcedimento>Profilaxia: polimento coronário</ans:descricaoProcedimento></ans:procSolic>
  <ans:denteRegiao><ans:codRegiao>AS</ans:codRegiao></ans:denteRegiao>
  <ans:qtdProc>1</ans:qtdProc><ans:valorProc>70.00</ans:valorProc><ans:valorFranquia>7.00</ans:valorFranquia>
  <ans:aut>N</ans:aut></ans:procedimentosSolicitados>
  <ans:tipoAtendimento>1</ans:tipoAtendimento><ans:valorTotalProc>190.00</ans:valorTotalProc>
  </ans:solicitacaoOdontologia>""",
}
RESPOSTA = {"sp-sadt": "autorizacaoServico", "internacao": "autorizacaoInternacao/ans:autorizacaoDosServicos",
            "prorrogacao": "autorizacaoProrrogacao/ans:autorizacaoDosServicos",
            "odonto": "autorizacaoServicoOdonto"}


def solicitacao(version: str, kind: str) -> etree._Element:
    """A factory solicitacaoProcedimentoWS (SP-SADT), or one with another kind of body, re-hashed."""
    root = request("solicitacaoProcedimentoWS", version, numero_guia_prestador="SADT-1")
    if kind == "sp-sadt":
        return root
    body = root.find("ans:solicitacaoProcedimento", NS)
    body.remove(body[0])
    body.append(etree.fromstring(f'<ans:x xmlns:ans="{A[1:-1]}">{SOLICITACOES[kind]}</ans:x>')[0])
    hashing.hash_element(root).text = hashing.compute(root, "UTF-8")
    return read(etree.tostring(root, encoding="UTF-8", xml_declaration=True))


@pytest.mark.parametrize("kind", ["sp-sadt", "internacao", "prorrogacao", "odonto"])
def test_ler_solicitacao(kind):
    lida = a.ler_solicitacao(solicitacao("4.03.00", kind))
    assert lida.odonto == (kind == "odonto")
    assert lida.numero_guia_prestador == {"sp-sadt": "SADT-1", "internacao": "INT-1", "prorrogacao": "PRO-1",
                                          "odonto": "OD-1"}[kind]
    assert [p.sequencial for p in lida.procedimentos] == list(range(1, len(lida.procedimentos) + 1))
    if kind == "internacao":
        assert (lida.atendimento_rn, lida.diarias_solicitadas, lida.data_sugerida_internacao) == (
            True, 3, date(2025, 12, 10))
        assert [p.quantidade for p in lida.procedimentos] == [1, 3]
    if kind == "odonto":
        first, second = lida.procedimentos
        assert (first.dente, first.face, first.valor, first.qtd_us) == (
            "16", "O", Decimal("120.00"), Decimal("12.00"))
        assert (second.regiao, second.valor_franquia) == ("AS", Decimal("7.00"))


def decisoes(n: int) -> dict[str, a.DecisaoAutorizacao]:
    return {
        "autorizada": a.DecisaoAutorizacao(a.AUTORIZADO, "OP-778899", "SENHA12345",
                                           nome_beneficiario="José Simões",
                                           diarias_autorizadas=2, acomodacao_autorizada="12",
                                           observacao="Autorizado conforme rol da ANS."),
        "negada": a.DecisaoAutorizacao(a.NEGADO, "OP-778900", motivos=(a.Glosa("1426"),),
                                       justificativa="Sem indicação técnica para prorrogação."),
        "em_analise": a.DecisaoAutorizacao(a.EM_ANALISE, "OP-778901"),
        "parcial": a.DecisaoAutorizacao(
            a.AUTORIZADO_PARCIALMENTE, "OP-778902", "SENHA2", validade_senha=date(2026, 1, 31),
            itens=(a.DecisaoItem(n, 0, motivos=(a.Glosa("1426", descricao="Negado pela auditoria"),)),)),
    }


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", ["sp-sadt", "internacao", "prorrogacao", "odonto"])
@pytest.mark.parametrize("caso", ["autorizada", "negada", "em_analise", "parcial"])
def test_autorizacao_procedimento(version, kind, caso):
    pedido = solicitacao(version, kind)
    lida = a.ler_solicitacao(pedido)
    n = len(lida.procedimentos)
    decisao = decisoes(n)[caso]
    if caso == "parcial" and n == 1:  # one procedure: reduce its quantity instead
        decisao = replace(decisao, itens=())
        with pytest.raises(ValueError, match="parcial"):
            a.autorizacao_procedimento(ctx_for(pedido), lida, decisao)
        return
    root = a.autorizacao_procedimento(ctx_for(pedido), lida, decisao)
    tipo = "AUTORIZACAO_ODONTOLOGIA" if kind == "odonto" else "RESPOSTA_SOLICITACAO"
    for body in check(root, version, tipo=tipo).values():
        out = body.find(f"ans:autorizacaoProcedimento/ans:{RESPOSTA[kind]}", NS)
        assert_autorizacao(out, kind, lida, decisao)


def assert_autorizacao(out: etree._Element, kind: str, lida: a.SolicitacaoAutorizacao,
                       decisao: a.DecisaoAutorizacao) -> None:
    dados = out.find("ans:dadosAutorizacao", NS)
    assert text(dados, "ans:numeroGuiaPrestador") == lida.numero_guia_prestador
    assert text(dados, "ans:numeroGuiaOperadora") == decisao.numero_guia_operadora
    assert text(out, "ans:statusSolicitacao") == decisao.status
    if decisao.autorizada:
        assert text(dados, "ans:senha") == decisao.senha
        assert text(dados, "ans:dataAutorizacao") == "2025-12-03"
        validade = "2026-01-31" if decisao.validade_senha else "2026-01-02"  # default: 30 days
        assert text(dados, "ans:dataValidadeSenha") == validade
    else:
        assert dados.find("ans:senha", NS) is None
    carteira = "ans:numeroCarteira" if kind == "odonto" else "ans:dadosBeneficiario/ans:numeroCarteira"
    assert text(out, carteira) == lida.numero_carteira
    guide_codes = [c.text for c in out.findall("ans:motivosNegativa/ans:codigoGlosa", NS)]
    assert guide_codes == [m.codigo for m in decisao.motivos]
    if kind == "odonto":
        itens = out.findall("ans:procedimentosAutorizados", NS)
        if decisao.status == a.EM_ANALISE:
            assert itens == []
            return
        aut = [text(i, "ans:aut") for i in itens]
        expected = {"1": ["S", "S"], "3": ["N", "N"], "7": ["S", "N"]}[decisao.status]
        assert aut == expected
        assert [text(i, "ans:valorProc") for i in itens] == ["120.00", "70.00"]
        assert text(itens[0], "ans:denteRegiao/ans:codDente") == "16"
        return
    servicos = out.findall("ans:servicosAutorizados/ans:servicoAutorizado", NS)
    if decisao.status == a.EM_ANALISE:
        assert servicos == []
        return
    solicitadas = [int(text(s, "ans:quantidadeSolicitada")) for s in servicos]
    autorizadas = [int(text(s, "ans:quantidadeAutorizada")) for s in servicos]
    assert solicitadas == [p.quantidade for p in lida.procedimentos]
    if decisao.status == a.AUTORIZADO:
        assert autorizadas == solicitadas
    elif decisao.status == a.NEGADO:
        assert autorizadas == [0] * len(servicos)
        assert all(text(s, "ans:motivosNegativa/ans:motivoNegativa/ans:codigoGlosa") == "1426"
                   for s in servicos)
    else:
        assert autorizadas == [*solicitadas[:-1], 0]
        assert text(servicos[-1], ".//ans:descricaoGlosa") == "Negado pela auditoria"
    if kind == "internacao" and decisao.autorizada:
        parent = out.getparent()
        diarias = decisao.diarias_autorizadas or lida.diarias_solicitadas  # default: as requested
        assert (text(parent, "ans:dataProvavelAdmissao"), text(parent, "ans:qtdDiariasAutorizadas")) == (
            "2025-12-10", str(diarias))
        assert text(parent, "ans:tipoAcomodacaoAutorizada") == decisao.acomodacao_autorizada


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", ["sp-sadt", "odonto"])
def test_situacao_autorizacao(version, kind):
    """The status request carries only the guide number: the stored solicitação is echoed."""
    lida = a.ler_solicitacao(solicitacao(version, kind))
    status_request = request("solicitacaoStatusAutorizacaoWS", version,
                             numero_guia_prestador=lida.numero_guia_prestador)
    decisao = decisoes(len(lida.procedimentos))["autorizada"]
    root = a.situacao_autorizacao(ctx_for(status_request), lida, decisao)
    for body in check(root, version, tipo="STATUS_AUTORIZACAO").values():
        out = body.find(f"ans:situacaoAutorizacao/ans:{RESPOSTA[kind]}", NS)
        assert_autorizacao(out, kind, lida, decisao)


def test_autorizacao_rules():
    with pytest.raises(ValueError, match="sem senha"):
        a.DecisaoAutorizacao(a.AUTORIZADO)
    with pytest.raises(ValueError, match="sem motivo"):
        a.DecisaoAutorizacao(a.NEGADO)
    with pytest.raises(ValueError, match="statusSolicitacao"):
        a.DecisaoAutorizacao("8")
    pedido = solicitacao("4.03.00", "sp-sadt")
    lida = a.ler_solicitacao(pedido)
    demais = a.DecisaoAutorizacao(a.AUTORIZADO, senha="S", itens=(a.DecisaoItem(1, 99),))
    with pytest.raises(ValueError, match="quantidade autorizada"):
        a.autorizacao_procedimento(ctx_for(pedido), lida, demais)
    alheio = a.DecisaoAutorizacao(a.AUTORIZADO, senha="S", itens=(a.DecisaoItem(42, 0),))
    with pytest.raises(ValueError, match="não solicitados"):
        a.autorizacao_procedimento(ctx_for(pedido), lida, alheio)


# --------------------------------------------------------------------------- 8. recurso de glosa


def recurso_request(version: str, variant: str) -> etree._Element:
    """factory: items of a medical guide; test_responses fixtures: guide motives + items, whole
    protocol, odonto (their lot number "LOTE-9" made numeric where the decision needs it)."""
    if variant == "factory":
        return request("loteRecursoGlosaWS", version, numero_protocolo="123456", numero_lote="9")
    return request_for("tissRecursoGlosa", variant, version)


def situacao(recurso: a.RecursoGlosa | None, status: int) -> a.SituacaoRecurso:
    return a.SituacaoRecurso("REC000000001", "9", date(2025, 11, 28), date(2025, 11, 29), status,
                             recurso=recurso)


def decide(recurso: a.RecursoGlosa) -> a.RecursoGlosa:
    """First pedido accepted in full, second partially (items) or refused, the rest refused."""
    pedidos = []
    for n, pedido in enumerate(recurso.pedidos):
        if n == 0:
            pedidos.append(replace(pedido, acatado=True))
        elif n == 1 and pedido.sequencial_item is not None:
            metade = (pedido.valor_recursado / 2).quantize(CENT)
            pedidos.append(replace(pedido, acatado=True, valor_acatado=metade,
                                   justificativa_operadora="Acatado parcialmente conforme tabela."))
        else:
            pedidos.append(replace(pedido, acatado=False, justificativa_operadora="Glosa mantida."))
    return replace(recurso, pedidos=tuple(pedidos))


@pytest.mark.parametrize("variant", ["factory", "guias", "protocolo", "odonto"])
def test_ler_recurso(variant):
    root = recurso_request("4.03.00", variant)
    recurso = a.ler_recurso(root)
    total = Decimal(root.findtext(".//ans:valorTotalRecursado", namespaces=NS))
    assert recurso.valor_recursado == total  # guide motives take the part items do not claim
    assert recurso.odonto == (variant == "odonto")
    assert recurso.de_protocolo == (variant == "protocolo")
    assert not recurso.decidido
    if variant == "guias":
        assert [(p.numero_guia_prestador, p.sequencial_item, p.codigo_glosa) for p in recurso.pedidos] == [
            ("G-1", None, "1001"), ("G-2", 1, "1206")]
        assert recurso.pedidos[0].valor_recursado == Decimal("200.00")
        assert recurso.codigo_prestador == "CLÍNICA-0001"
    if variant == "odonto":  # GO-1 whole guide; GO-2 by its procedure
        chaves = [(p.numero_guia_prestador, p.sequencial_item) for p in recurso.pedidos]
        assert chaves == [("GO-1", None), ("GO-2", 1)]
        assert (recurso.pedidos[1].dente, recurso.pedidos[1].face) == ("11", "OM")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", ["factory", "guias", "protocolo", "odonto"])
def test_situacao_protocolo_recurso_decidido(version, variant):
    status_request = request("solicitacaoStatusRecursoGlosaWS", version, numero_protocolo="REC000000001")
    recurso = replace(decide(a.ler_recurso(recurso_request(version, variant))), numero_lote="9")
    root = a.situacao_protocolo_recurso(ctx_for(status_request), situacao(recurso, 6))
    tag = "reciboGlosaOdonto" if variant == "odonto" else "reciboGlosa"
    for body in check(root, version, tipo="RESPOSTA_RECURSO_GLOSA").values():
        recibo = body.find(f"ans:situacaoProtocoloRecurso/ans:{tag}", NS)
        assert text(recibo, "ans:numeroLote") == "9"
        assert text(recibo, "ans:numeroProtocolo") == recurso.numero_protocolo
        assert dec(recibo, "ans:valorTotalRecursado") == recurso.valor_recursado
        acatado = dec(recibo, "ans:valorTotalAcatado")
        assert acatado == recurso.valor_acatado
        assert 0 < acatado <= recurso.valor_recursado
        opcao = recibo.find("ans:opcaoRecurso", NS)
        if variant == "protocolo":
            assert text(opcao, "ans:recursoProtocolo/ans:recursoAcatado") == "S"
            assert acatado == recurso.valor_recursado
            continue
        itens = opcao.findall(".//ans:respostaGuiaItens", NS) + opcao.findall(
            ".//ans:recursoProcedimento", NS)
        item_values = total_of(opcao, ".//ans:valorAcatadado") + total_of(opcao, ".//ans:valorAcatado")
        guide_values = sum((p.acatado_valor for p in recurso.pedidos if p.sequencial_item is None),
                           Decimal(0))
        assert acatado == item_values + guide_values  # total = items accepted + guide motives accepted
        assert len(itens) == sum(p.sequencial_item is not None for p in recurso.pedidos)
        flags = [x.text for x in opcao.iter(f"{A}recursoGuiaAcatado", f"{A}recursoAcatadoGuia")]
        assert flags == [("S" if p.acatado else "N") for p in recurso.pedidos if p.sequencial_item is None]
        if variant == "factory":  # two items: the first in full, the second by half
            first, second = recurso.pedidos
            metade = (second.valor_recursado / 2).quantize(CENT)
            assert decs(opcao, ".//ans:valorAcatadado") == [first.valor_recursado, metade]
            assert [x.text for x in opcao.findall(".//ans:codGlosa", NS)] == ["1705", "1705"]


@pytest.mark.parametrize("version", VERSIONS)
def test_situacao_protocolo_recurso_status(version):
    status_request = request("solicitacaoStatusRecursoGlosaWS", version)
    ctx = ctx_for(status_request)
    recurso = a.ler_recurso(recurso_request(version, "guias"))  # lot "LOTE-9": st_texto12
    cases = [(situacao(None, 2), "2"), (situacao(decide(recurso), 2), "2"),
             # analysed, but numeroLote is st_numerico12 in reciboGlosa: only the status can be said
             (replace(situacao(decide(recurso), 6), numero_lote="LOTE-9"), "6")]
    for dados, status in cases:
        root = a.situacao_protocolo_recurso(ctx, dados)
        for body in check(root, version, tipo="RESPOSTA_RECURSO_GLOSA").values():
            out = body.find("ans:situacaoProtocoloRecurso/ans:reciboGlosaStatus", NS)
            assert text(out, "ans:situacaoProtocolo") == status
            assert text(out, "ans:nrProtocoloRecursoGlosa") == "REC000000001"
            assert text(out, "ans:nrProtocoloSituacaoRecursoGlosa") == "REC000000001"
            assert text(out, "ans:dataSituacao") == "2025-12-03"
            assert text(out, "ans:dadosPrestador/ans:codigoPrestadorNaOperadora") == "CLÍNICA-0001"
    undecided = replace(recurso, numero_lote="9")
    with pytest.raises(ValueError, match="sem decisão"):
        a.situacao_protocolo_recurso(ctx, situacao(undecided, 6))


def test_recurso_acatado_must_fit_recursado():
    pedido = a.PedidoRecurso("1705", "x", Decimal("10"), "G-1", sequencial_item=1, acatado=True,
                             valor_acatado=Decimal("11"))
    with pytest.raises(ValueError, match="acatado"):
        _ = pedido.acatado_valor


# --------------------------------------------------------------------------- the checks can fail


def test_check_catches_broken_answers():
    """The helper these tests rely on rejects a wrong element order and a corrupted value."""
    ctx = ctx_for(request("solicitacaoDemonstrativoRetornoWS", "4.03.00"))
    root = a.demonstrativo_analise_conta(ctx, numero_demonstrativo="1", operadora=OPERADORA,
                                         prestador=PRESTADOR,
                                         protocolos=[protocolo("4.03.00", "consulta", 3, n=1)])
    cab = root.find(".//ans:cabecalhoDemonstrativo", NS)
    cab.insert(0, cab[1])  # numeroDemonstrativo before registroANS
    with pytest.raises(AssertionError):
        check(root, "4.03.00", tipo="DEMONSTRATIVO_ANALISE_CONTA")
    cab.insert(0, cab[1])
    check(root, "4.03.00", tipo="DEMONSTRATIVO_ANALISE_CONTA")
    data = r.envelope(root, "UTF-8").replace(b"<ans:valorInformadoGeral>", b"<ans:valorInformadoGeral>1")
    report = validation.validate(data)
    assert not report.valid and not report.hash.accepted


def test_values_must_fit_the_version():
    """4.01.00 item values are st_decimal8-2: a 1,000,000.00 item fits 4.02.00 only."""
    guia = protocolo("4.01.00", "consulta", 3, n=1).guias[0]
    grande = replace(guia, itens=(replace(guia.itens[0], valor_informado=Decimal("1000000.00")),))
    for version, fits in (("4.01.00", False), ("4.02.00", True)):
        ctx = ctx_for(request("solicitacaoStatusProtocoloWS", version))
        dados = a.ProtocoloSituacao("P-1", "1", date(2025, 12, 1), 3, (grande,))
        if fits:
            check(a.situacao_protocolo_detalhado(ctx, dados), version)
        else:
            with pytest.raises(ValueError, match="excede 8"):
                a.situacao_protocolo_detalhado(ctx, dados)


def test_odonto_item_liberado_is_decimal7_2_in_every_version():
    """cto_demonstrativoOdontologia dadosPagamento/valorLiberado stayed st_decimal7-2 in 4.03.00."""
    base = protocolo("4.03.00", "odonto", 6, n=1)
    guia = base.guias[0]
    caro = replace(guia, itens=(replace(guia.itens[0], valor_informado=Decimal("150000.00")),))
    dados = replace(base, guias=(caro,))
    ctx = ctx_for(request("solicitacaoStatusProtocoloWS", "4.03.00"))
    check(a.situacao_protocolo_detalhado(ctx, dados), "4.03.00")  # valorProc is 10-2 there
    pagamento = a.PagamentoPorData(date(2025, 12, 15), (dados,))
    with pytest.raises(ValueError, match="excede 7"):
        a.demonstrativo_odontologia(ctx, numero_demonstrativo="1", operadora=OPERADORA, prestador=PRESTADOR,
                                    pagamentos=[pagamento])


def test_glosa_must_fit_processado():
    item = protocolo("4.03.00", "consulta", 3, n=1).guias[0].itens[0]
    with pytest.raises(ValueError, match="acima do valor processado"):
        replace(item, glosas=(a.Glosa("1705", item.valor_informado + 1),))
