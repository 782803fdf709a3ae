"""gateway.message.situacao: the one reader of an operator's situacaoProtocoloWS."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from lxml import etree

from gateway.message import responses
from gateway.message.responses import GuiaRecebida, ValorTotal
from gateway.message.situacao import GuiaSituacao, SituacaoLida, read_situacao

ANS = "http://www.ans.gov.br/padroes/tiss/schemas"


def situacao(detalhe: str) -> etree._Element:
    return etree.fromstring(
        f'<ans:situacaoProtocoloWS xmlns:ans="{ANS}"><ans:situacaoProtocolo><ans:situacaoDoProtocolo>'
        "<ans:identificacaoOperadora>329665</ans:identificacaoOperadora>"
        f"<ans:lote>{detalhe}</ans:lote></ans:situacaoDoProtocolo></ans:situacaoProtocolo>"
        "</ans:situacaoProtocoloWS>")


def valores(tag: str, processado: str, glosa: str, liberado: str) -> str:
    return (f"<ans:{tag}><ans:valorProcessado>{processado}</ans:valorProcessado><ans:valorGlosa>{glosa}"
            f"</ans:valorGlosa><ans:valorLiberado>{liberado}</ans:valorLiberado></ans:{tag}>")


GUIA_GLOSADA = (
    "<ans:guiasMedicas><ans:guias><ans:numeroGuiaPrestador> G-1 </ans:numeroGuiaPrestador>"
    "<ans:numeroGuiaOperadora>OP-1</ans:numeroGuiaOperadora>"
    + valores("vlInformadoGuia", "100.00", "30.00", "70.00")
    + "<ans:glosaGuia>"
    "<ans:motivoGlosa><ans:codigoGlosa>1001</ans:codigoGlosa><ans:descricaoGlosa>Carteira inválida"
    "</ans:descricaoGlosa></ans:motivoGlosa>"
    "<ans:motivoGlosa><ans:codigoGlosa>3169</ans:codigoGlosa></ans:motivoGlosa>"
    "<ans:motivoGlosa><ans:codigoGlosa>ABC</ans:codigoGlosa></ans:motivoGlosa></ans:glosaGuia>"
    "<ans:procedimentosRealizados>"
    "<ans:procedimentoRealizado><ans:glosasProcedimento/></ans:procedimentoRealizado>"
    "<ans:procedimentoRealizado/>"
    "<ans:procedimentoRealizado><ans:glosasProcedimento/></ans:procedimentoRealizado>"
    "</ans:procedimentosRealizados></ans:guias></ans:guiasMedicas>")
GUIA_SEM_VALORES = ("<ans:guiasMedicas><ans:guias><ans:numeroGuiaPrestador>G-2</ans:numeroGuiaPrestador>"
                    "</ans:guias></ans:guiasMedicas>")


def detalhe(guias: str, total: str = valores("valorTotalLote", "150.00", "30.00", "120.00"),
            status: str = "3") -> str:
    return (f"<ans:detalheLote><ans:statusProtocolo>{status}</ans:statusProtocolo>"
            "<ans:numeroProtocolo>OP-PROT-7</ans:numeroProtocolo><ans:numeroLote>L-1</ans:numeroLote>"
            f"<ans:dataEnvioLote>2025-12-01</ans:dataEnvioLote>{total}<ans:guiasTISS>{guias}</ans:guiasTISS>"
            "</ans:detalheLote>")


def test_reads_status_totals_and_guides():
    lida = read_situacao(situacao(detalhe(GUIA_GLOSADA + GUIA_SEM_VALORES)), "4.03.00")
    assert lida == SituacaoLida(
        status=3, numero_protocolo="OP-PROT-7",
        valor_total=ValorTotal(Decimal("150.00"), Decimal("30.00"), Decimal("120.00")),
        guias=(GuiaSituacao("G-1", "OP-1", ValorTotal(Decimal("100.00"), Decimal("30.00"), Decimal("70.00")),
                            (("1001", "Carteira inválida"), ("3169", None)), 2),
               GuiaSituacao("G-2", None, None, (), 0)))
    assert not lida.valores_completos  # G-2 has no vlInformadoGuia


@pytest.mark.parametrize(("version", "codes"), [
    ("4.02.00", ["1001"]),  # 3169 entered Table 38 in 4.03.00
    ("4.03.00", ["1001", "3169"]),
    (None, ["1001", "3169", "ABC"]),  # no version: every glosa as the operator wrote it
])
def test_glosas_keep_the_codes_of_the_version(version, codes):
    lida = read_situacao(situacao(detalhe(GUIA_GLOSADA)), version)
    assert [code for code, _ in lida.guias[0].glosas] == codes
    assert lida.valores_completos


def test_odonto_guides_and_repeated_numbers_in_order():
    odonto = ("<ans:guiasOdonto><ans:guias><ans:numeroGuiaPrestador>G-9</ans:numeroGuiaPrestador>"
              + valores("vlInformadoGuia", "1", "0", "1") + "</ans:guias></ans:guiasOdonto>")
    lida = read_situacao(situacao(detalhe(odonto + odonto)), "4.03.00")
    assert [g.numero_guia_prestador for g in lida.guias] == ["G-9", "G-9"]


@pytest.mark.parametrize("total", [
    "",  # no valorTotalLote
    valores("valorTotalLote", "150.00", "x", "120.00"),
    valores("valorTotalLote", "150.00", "NaN", "120.00"),
    "<ans:valorTotalLote><ans:valorProcessado>1</ans:valorProcessado></ans:valorTotalLote>",
])
def test_a_total_missing_or_not_a_number_is_none(total):
    lida = read_situacao(situacao(detalhe(GUIA_GLOSADA, total)), "4.03.00")
    assert lida.valor_total is None
    assert not lida.valores_completos
    assert lida.status == 3  # the rest is still read (the tracker needs only the status)


@pytest.mark.parametrize(("text", "status"), [(" 6 ", 6), ("", None), ("x", None)])
def test_status(text, status):
    assert read_situacao(situacao(detalhe("", status=text))).status == status


def test_no_detalhe_lote_is_none():
    erro = "<ans:mensagemErro><ans:codigoGlosa>1308</ans:codigoGlosa></ans:mensagemErro>"
    assert read_situacao(situacao(erro), "4.03.00") is None
    assert read_situacao(etree.fromstring(f'<ans:situacaoProtocoloWS xmlns:ans="{ANS}"/>')) is None


@pytest.mark.parametrize("version", ["4.01.00", "4.02.00", "4.03.00"])
def test_reads_what_the_gateway_writes(version):
    request = etree.fromstring(
        f'<ans:solicitacaoStatusProtocoloWS xmlns:ans="{ANS}"><ans:cabecalho><ans:origem>'
        "<ans:identificacaoPrestador><ans:CNPJ>12345678000199</ans:CNPJ></ans:identificacaoPrestador>"
        f"</ans:origem><ans:Padrao>{version}</ans:Padrao></ans:cabecalho></ans:solicitacaoStatusProtocoloWS>")
    ctx = responses.reply_context(request, registro_ans="329665", sequencial="1", now=datetime(2025, 12, 3))
    analisada = ValorTotal(Decimal("10.00"), Decimal("2.00"), Decimal("8.00"))
    guias = [GuiaRecebida("G-1", "OP-1", "C-1", Decimal("10"), valores=analisada, glosas=(("1001", "x"),)),
             GuiaRecebida("G-2", None, "C-2", Decimal("5"))]
    root = responses.situacao_protocolo(
        ctx, numero_protocolo="P-1", numero_lote="L-1", status=5, data_envio_lote=date(2025, 12, 1),
        valor_total=ValorTotal(Decimal("15.00"), Decimal("2.00"), Decimal("13.00")), guias=guias)
    lida = read_situacao(root, version)
    assert (lida.status, lida.numero_protocolo) == (5, "P-1")
    assert lida.valor_total == ValorTotal(Decimal("15.00"), Decimal("2.00"), Decimal("13.00"))
    assert [(g.numero_guia_prestador, g.numero_guia_operadora, g.valores, g.glosas) for g in lida.guias] == [
        ("G-1", "OP-1", analisada, (("1001", "x"),)),
        ("G-2", None, ValorTotal(Decimal("5.00"), Decimal("0.00"), Decimal("0.00")), ())]
