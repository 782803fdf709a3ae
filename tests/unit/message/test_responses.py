"""The gateway's TISS responses: schema-valid and correctly hashed in 4.01.00, 4.02.00, 4.03.00."""

import base64
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from gateway.message import hashing, reader, validation
from gateway.message import responses as r
from gateway.message.responses import GuiaRecebida, ValorTotal
from gateway.message.services import ANS_NS, SERVICE_BY_NAME, SERVICE_BY_RESPONSE, SERVICES, SOAP11_NS

VERSIONS = ("4.01.00", "4.02.00", "4.03.00")
ENCODINGS = ("ISO-8859-1", "UTF-8")
NS = {"ans": ANS_NS, "soap": SOAP11_NS}
A = f"{{{ANS_NS}}}"
REGISTRO = "329665"
NOW = datetime(2025, 12, 3, 14, 5, 9)
SCHEMAS = Path(__file__).resolve().parents[4] / "shared" / "tiss-schemas"
# Accented on purpose: every response then carries non-ASCII text (hash per encoding).
PRESTADORES = {
    "codigoPrestadorNaOperadora": (
        "codigoPrestadorNaOperadora", "CLÍNICA-0001", "codigoPrestadorNaOperadora"),
    "CNPJ": ("CNPJ", "12345678000199", "cnpjContratado"),
    "CPF": ("CPF", "12345678901", "cpfContratado"),
}
STORE_AND_FORWARD = ("tissLoteAnexo", "tissRecursoGlosa", "tissEnvioDocumentos",
                     "tissComunicacaoBeneficiario", "tissCancelaGuia")


# --------------------------------------------------------------------------- request fixtures

CABECALHO = """<ans:cabecalho>
  <ans:identificacaoTransacao>
    <ans:tipoTransacao>{tipo}</ans:tipoTransacao>
    <ans:sequencialTransacao>77</ans:sequencialTransacao>
    <ans:dataRegistroTransacao>2025-12-01</ans:dataRegistroTransacao>
    <ans:horaRegistroTransacao>08:30:00</ans:horaRegistroTransacao>
  </ans:identificacaoTransacao>
  <ans:origem><ans:identificacaoPrestador><ans:{id_name}>{id_value}</ans:{id_name}></ans:identificacaoPrestador></ans:origem>
  <ans:destino><ans:registroANS>329665</ans:registroANS></ans:destino>
  <ans:Padrao>{version}</ans:Padrao>
  <ans:loginSenhaPrestador><ans:loginPrestador>clinica</ans:loginPrestador>
    <ans:senhaPrestador>0123456789abcdef0123456789abcdef</ans:senhaPrestador></ans:loginSenhaPrestador>
</ans:cabecalho>"""

CABECALHO_ANEXO = """<ans:cabecalhoAnexo><ans:registroANS>329665</ans:registroANS>
  <ans:numeroGuiaAnexo>{anexo}</ans:numeroGuiaAnexo><ans:numeroGuiaReferenciada>G-REF-1</ans:numeroGuiaReferenciada>
  <ans:numeroGuiaOperadora>OP-{anexo}</ans:numeroGuiaOperadora>
  <ans:dataSolicitacao>2025-11-30</ans:dataSolicitacao></ans:cabecalhoAnexo>
<ans:dadosBeneficiario><ans:numeroCarteira>{carteira}</ans:numeroCarteira><ans:atendimentoRN>N</ans:atendimentoRN></ans:dadosBeneficiario>"""

SOLICITANTE = """<ans:{tag}><ans:nomeProfissional>Dra. Inês Conceição</ans:nomeProfissional>
  <ans:telefoneProfissional>11999990000</ans:telefoneProfissional></ans:{tag}>"""

DIAGNOSTICO = """<ans:dataDiagnostico>2025-10-01</ans:dataDiagnostico>
  <ans:diagnosticoCID>C50</ans:diagnosticoCID>
  <ans:estadiamento>2</ans:estadiamento><ans:finalidade>1</ans:finalidade><ans:ecog>0</ans:ecog>"""

PROCEDIMENTO = """<ans:{tag}><ans:codigoTabela>22</ans:codigoTabela>
  <ans:codigoProcedimento>{codigo}</ans:codigoProcedimento>
  <ans:descricaoProcedimento>{descricao}</ans:descricaoProcedimento></ans:{tag}>"""

SITUACAO_INICIAL = """<ans:anexoSituacaoInicial><ans:registroANS>329665</ans:registroANS>
  <ans:numeroGuiaAnexo>{anexo}</ans:numeroGuiaAnexo><ans:numeroGuiaReferenciada>G-REF-1</ans:numeroGuiaReferenciada>
  <ans:numeroCarteira>{carteira}</ans:numeroCarteira>
  <ans:ct_situacaoInicial><ans:situacaoClinica><ans:dentes><ans:elementoDentario>11</ans:elementoDentario>
    <ans:condicaoClinica>A</ans:condicaoClinica></ans:dentes></ans:situacaoClinica>
    <ans:doencaPeriodontal>false</ans:doencaPeriodontal><ans:alteracaoTecidoMole>true</ans:alteracaoTecidoMole>
    <ans:observacao>Gengiva sensível</ans:observacao></ans:ct_situacaoInicial>
</ans:anexoSituacaoInicial>"""

ANEXOS = {
    "situacaoInicial": SITUACAO_INICIAL.format(anexo="SI-1", carteira="0001")
    + SITUACAO_INICIAL.format(anexo="SI-2", carteira="0002"),
    "OPME": "<ans:anexoSolicitacaoOPME>" + CABECALHO_ANEXO.format(anexo="OPME-1", carteira="0003")
    + SOLICITANTE.format(tag="profissionalSolicitante")
    + """<ans:justificativaTecnica>Prótese necessária após fratura</ans:justificativaTecnica>
    <ans:opmeSolicitadas><ans:opmeSolicitada>"""
    + PROCEDIMENTO.format(tag="identificacaoOPME", codigo="70000001", descricao="PARAFUSO DE TITÂNIO")
    + """<ans:opcaoFabricante>1</ans:opcaoFabricante><ans:quantidadeSolicitada>2</ans:quantidadeSolicitada>
    </ans:opmeSolicitada></ans:opmeSolicitadas></ans:anexoSolicitacaoOPME>""",
    "Quimio": "<ans:anexoSolicitacaoQuimio>" + CABECALHO_ANEXO.format(anexo="QT-1", carteira="0004")
    + """<ans:dadosComplementaresBeneficiario><ans:peso>70.50</ans:peso><ans:altura>170.00</ans:altura>
      <ans:superficieCorporal>1.80</ans:superficieCorporal><ans:idade>54</ans:idade><ans:sexo>3</ans:sexo>
    </ans:dadosComplementaresBeneficiario>"""
    + SOLICITANTE.format(tag="medicoSolicitante")
    + """<ans:diagnosticoOncologicoQuimioterapia><ans:diagQuimio>""" + DIAGNOSTICO + """</ans:diagQuimio>
      <ans:tumor>1</ans:tumor><ans:nodulo>1</ans:nodulo><ans:metastase>1</ans:metastase>
      <ans:tipoQuimioterapia>1</ans:tipoQuimioterapia>
      <ans:planoTerapeutico>Protocolo padrão</ans:planoTerapeutico>
    </ans:diagnosticoOncologicoQuimioterapia>
    <ans:drogasSolicitadas><ans:drogaSolicitada><ans:dataProvavel>2025-12-10</ans:dataProvavel>"""
    + PROCEDIMENTO.format(tag="identificacao", codigo="90000001", descricao="CISPLATINA")
    + """<ans:qtDoses>1.00</ans:qtDoses><ans:unidadeMedida>001</ans:unidadeMedida>
      <ans:viaAdministracao>01</ans:viaAdministracao><ans:frequencia>1</ans:frequencia>
    </ans:drogaSolicitada></ans:drogasSolicitadas>
    <ans:tratamentosAnteriores><ans:cirurgia>Mastectomia</ans:cirurgia></ans:tratamentosAnteriores>
    <ans:numeroCiclos>6</ans:numeroCiclos><ans:cicloAtual>1</ans:cicloAtual><ans:diasCicloAtual>1</ans:diasCicloAtual>
    <ans:intervaloCiclos>21</ans:intervaloCiclos><ans:observacao>Sem observação</ans:observacao>
    </ans:anexoSolicitacaoQuimio>""",
    "Radio": "<ans:anexoSolicitacaoRadio>" + CABECALHO_ANEXO.format(anexo="RT-1", carteira="0005")
    + """<ans:dadosComplementaresBeneficiario><ans:idade>61</ans:idade><ans:sexo>1</ans:sexo>
    </ans:dadosComplementaresBeneficiario>"""
    + SOLICITANTE.format(tag="medicoSolicitante")
    + """<ans:diagnosticoOncologicoRadio><ans:diagRadio>""" + DIAGNOSTICO + """</ans:diagRadio>
      <ans:diagnosticoImagem>1</ans:diagnosticoImagem></ans:diagnosticoOncologicoRadio>
    <ans:numeroCampos>2</ans:numeroCampos><ans:doseCampo>200</ans:doseCampo><ans:doseTotal>4000</ans:doseTotal>
    <ans:nrDias>20</ans:nrDias><ans:dtPrevistaInicio>2025-12-15</ans:dtPrevistaInicio>
    </ans:anexoSolicitacaoRadio>""",
}

JUSTIFICATIVA_LONGA = "Procedimento realizado conforme autorização prévia; cobrança devida. " * 4

RECURSO_CAPA = """<ans:registroANS>329665</ans:registroANS>
  <ans:numeroGuiaRecGlosaPrestador>REC-1</ans:numeroGuiaRecGlosaPrestador>
  <ans:nomeOperadora>Operadora São José</ans:nomeOperadora><ans:objetoRecurso>2</ans:objetoRecurso>
  <ans:dadosContratado><ans:codigoPrestadorNaOperadora>CLÍNICA-0001</ans:codigoPrestadorNaOperadora></ans:dadosContratado>
  <ans:numeroLote>LOTE-9</ans:numeroLote><ans:numeroProtocolo>123456</ans:numeroProtocolo>"""
RECURSO_FIM = """<ans:valorTotalRecursado>350.75</ans:valorTotalRecursado>
  <ans:dataRecurso>2025-11-28</ans:dataRecurso>"""

RECURSOS = {
    "guias": "<ans:guiaRecursoGlosa>" + RECURSO_CAPA + """<ans:opcaoRecurso>
    <ans:recursoGuia><ans:numeroGuiaOrigem>G-1</ans:numeroGuiaOrigem><ans:opcaoRecursoGuia>
      <ans:recursoGuiaCompleta><ans:codGlosaGuia>1001</ans:codGlosaGuia>
        <ans:justificativaGuia>""" + JUSTIFICATIVA_LONGA + """</ans:justificativaGuia>
      </ans:recursoGuiaCompleta>
    </ans:opcaoRecursoGuia></ans:recursoGuia>
    <ans:recursoGuia><ans:numeroGuiaOrigem>G-2</ans:numeroGuiaOrigem><ans:numeroGuiaOperadora>OP-2</ans:numeroGuiaOperadora>
      <ans:senha>S3NHA</ans:senha><ans:opcaoRecursoGuia><ans:itensGuia>
        <ans:sequencialItem>1</ans:sequencialItem><ans:dataInicio>2025-10-02</ans:dataInicio>"""
    + PROCEDIMENTO.format(tag="procRecurso", codigo="10101012", descricao="CONSULTA EM CONSULTÓRIO")
    + """<ans:grauParticipacao>00</ans:grauParticipacao>
        <ans:codGlosaItem>1206</ans:codGlosaItem><ans:valorRecursado>150.75</ans:valorRecursado>
        <ans:justificativaItem>Valor contratado é o cobrado</ans:justificativaItem>
      </ans:itensGuia></ans:opcaoRecursoGuia></ans:recursoGuia>
    </ans:opcaoRecurso>""" + RECURSO_FIM + "</ans:guiaRecursoGlosa>",
    "protocolo": "<ans:guiaRecursoGlosa>" + RECURSO_CAPA + """<ans:opcaoRecurso><ans:recursoProtocolo>
    <ans:codigoGlosaProtocolo>1104</ans:codigoGlosaProtocolo>
    <ans:justificativaProtocolo>Valores conferidos, não há divergência</ans:justificativaProtocolo>
    </ans:recursoProtocolo></ans:opcaoRecurso>""" + RECURSO_FIM + "</ans:guiaRecursoGlosa>",
    "odonto": "<ans:guiaRecursoGlosaOdonto>" + RECURSO_CAPA + """<ans:opcaoRecurso>
    <ans:recursoGuia><ans:numeroGuiaPrestador>GO-1</ans:numeroGuiaPrestador>
      <ans:codGlosaGuia>1001</ans:codGlosaGuia>
      <ans:justificativaGuia>Carteira válida à época</ans:justificativaGuia>
    </ans:recursoGuia>
    <ans:recursoGuia><ans:numeroGuiaPrestador>GO-2</ans:numeroGuiaPrestador>
      <ans:codGlosaGuia>1308</ans:codGlosaGuia>
      <ans:justificativaGuia>Guia não duplicada</ans:justificativaGuia>
      <ans:recursoProcedimento><ans:sequencialItem>1</ans:sequencialItem>
        <ans:dataRealizacao>2025-10-03</ans:dataRealizacao>
        <ans:denteRegiao><ans:codDente>11</ans:codDente></ans:denteRegiao><ans:denteFace>OM</ans:denteFace>
        <ans:quantidade>1</ans:quantidade>"""
    + PROCEDIMENTO.format(tag="procRecurso", codigo="81000065", descricao="RESTAURAÇÃO")
    + """<ans:codGlosaProc>1308</ans:codGlosaProc>
        <ans:justificativaProc>Procedimento único</ans:justificativaProc>
        <ans:valorRecursado>200.00</ans:valorRecursado></ans:recursoProcedimento>
    </ans:recursoGuia></ans:opcaoRecurso>""" + RECURSO_FIM + "</ans:guiaRecursoGlosaOdonto>",
}

CANCELAMENTOS = {
    "lote": """<ans:tipoCancelamentoLote><ans:numeroLote>LOTE-3</ans:numeroLote>
      <ans:numeroProtocolo>PROT-3</ans:numeroProtocolo></ans:tipoCancelamentoLote>""",
    "guias": """<ans:tipoCancelamentoGuia><ans:tipoGuia>2</ans:tipoGuia>
      <ans:numeroGuiaPrestador>G-10</ans:numeroGuiaPrestador></ans:tipoCancelamentoGuia>
    <ans:tipoCancelamentoGuia><ans:tipoGuia>2</ans:tipoGuia><ans:numeroGuiaPrestador>G-11</ans:numeroGuiaPrestador>
      <ans:numeroGuiaOperadora>OP-11</ans:numeroGuiaOperadora><ans:numeroProtocolo>PROT-4</ans:numeroProtocolo>
    </ans:tipoCancelamentoGuia>""",
}

DOCUMENTO = base64.b64encode(b"%PDF-1.4 laudo").decode()

# service -> variant -> (tipoTransacao of the request, body)
REQUESTS: dict[str, dict[str, tuple[str, str]]] = {
    "tissLoteAnexo": {
        name: ("ENVIO_ANEXO", f"""<ans:loteAnexo><ans:numeroLote>LA-{i}</ans:numeroLote>
            <ans:AnexosGuiasTISS>{anexos}</ans:AnexosGuiasTISS></ans:loteAnexo>""")
        for i, (name, anexos) in enumerate(ANEXOS.items())
    },
    "tissRecursoGlosa": {
        name: ("RECURSO_GLOSA", f"<ans:loteRecurso>{body}</ans:loteRecurso>")
        for name, body in RECURSOS.items()
    },
    "tissEnvioDocumentos": {
        "documento": ("ENVIO_DOCUMENTO", f"""<ans:envioDOcumento><ans:numeroLote>LOTE-5</ans:numeroLote>
            <ans:numeroProtocolo>PROT-5</ans:numeroProtocolo><ans:numeroGuiaPrestador>G-50</ans:numeroGuiaPrestador>
            <ans:numeroDocumento>DOC-1</ans:numeroDocumento><ans:naturezaGuia>2</ans:naturezaGuia>
            <ans:formatoDocumento>01</ans:formatoDocumento><ans:documento>{DOCUMENTO}</ans:documento>
            <ans:tipoDocumento>01</ans:tipoDocumento><ans:observacao>Laudo médico</ans:observacao>
            </ans:envioDOcumento>"""),
    },
    "tissComunicacaoBeneficiario": {
        "internacao": ("COMUNICACAO_BENEFICIARIO", """<ans:comunicacaoBeneficiario>
            <ans:dadosBeneficiario><ans:numeroCarteira>0009</ans:numeroCarteira><ans:atendimentoRN>N</ans:atendimentoRN>
            </ans:dadosBeneficiario><ans:dataEvento>2025-12-01</ans:dataEvento><ans:tipoEvento>I</ans:tipoEvento>
            <ans:dadosInternacao><ans:tipoInternacao>1</ans:tipoInternacao></ans:dadosInternacao>
            </ans:comunicacaoBeneficiario>"""),
    },
    "tissCancelaGuia": {
        name: ("CANCELA_GUIA", f"""<ans:cancelaGuia><ans:dadosPrestador>
            <ans:codigoPrestadorNaOperadora>CLÍNICA-0001</ans:codigoPrestadorNaOperadora></ans:dadosPrestador>
            <ans:tipoCancelamento>{body}</ans:tipoCancelamento></ans:cancelaGuia>""")
        for name, body in CANCELAMENTOS.items()
    },
}
RECIBO_CASES = [(s, v) for s, variants in REQUESTS.items() for v in variants]

STATUS_PROTOCOLO = ("SOLIC_STATUS_PROTOCOLO", """<ans:solicitacaoStatusProtocolo><ans:dadosPrestador>
    <ans:codigoPrestadorNaOperadora>CLÍNICA-0001</ans:codigoPrestadorNaOperadora></ans:dadosPrestador>
    <ans:numeroProtocolo>PROT-1</ans:numeroProtocolo></ans:solicitacaoStatusProtocolo>""")


def build_request(element: str, version: str, tipo: str, body: str, *,
                  prestador: str = "codigoPrestadorNaOperadora") -> etree._Element:
    id_name, id_value, _ = PRESTADORES[prestador]
    cabecalho = CABECALHO.format(tipo=tipo, version=version, id_name=id_name, id_value=id_value)
    text = (f'<ans:{element} xmlns:ans="{ANS_NS}">{cabecalho}{body}<ans:hash/></ans:{element}>')
    root = etree.fromstring(text.encode("utf-8"))
    hashing.hash_element(root).text = hashing.compute(root, "UTF-8")
    return root


def request_for(service: str, variant: str, version: str, **kw) -> etree._Element:
    tipo, body = REQUESTS[service][variant]
    return build_request(SERVICE_BY_NAME[service].request, version, tipo, body, **kw)


def status_request(version: str, **kw) -> etree._Element:
    return build_request("solicitacaoStatusProtocoloWS", version, *STATUS_PROTOCOLO, **kw)


def ctx_for(request: etree._Element, sequencial: str = "900000000001") -> r.ReplyContext:
    return r.reply_context(request, registro_ans=REGISTRO, sequencial=sequencial, now=NOW)


def guias(n: int = 2, *, odonto: bool = False) -> list[GuiaRecebida]:
    return [GuiaRecebida(f"G-{i}", f"OP-{i}" if i % 2 else None, f"CART{i:04d}",
                         Decimal("100.5") * i, odonto=odonto,
                         data_realizacao=date(2025, 11, i) if not odonto else None)
            for i in range(1, n + 1)]


def check(root: etree._Element, version: str, *, prestador: str = "codigoPrestadorNaOperadora",
          tipo: str | None = None) -> dict[str, etree._Element]:
    """Envelope in both encodings: schema + hash valid, cabeçalho right. Returns parsed bodies."""
    kind = etree.QName(root).localname
    id_name, id_value, _ = PRESTADORES[prestador]
    parsed = {}
    hashes = set()
    for encoding in ENCODINGS:
        data = r.envelope(root, encoding)
        assert data.startswith(f'<?xml version="1.0" encoding="{encoding}"?>'.encode())
        report = validation.validate(data)
        assert report.valid, [f.message for f in report.findings]
        assert (report.kind, report.version, report.message.in_envelope) == (kind, version, True)
        assert report.hash.variant == hashing.DECLARED
        hashes.add(report.hash.found)
        body = report.message.root
        cab = body.find("ans:cabecalho", NS)
        assert cab.findtext("ans:identificacaoTransacao/ans:tipoTransacao", namespaces=NS) == (
            tipo or r.TIPO_TRANSACAO_RESPOSTA[kind])
        ident = cab.find("ans:identificacaoTransacao", NS)
        assert ident.findtext("ans:sequencialTransacao", namespaces=NS) == "900000000001"
        assert ident.findtext("ans:dataRegistroTransacao", namespaces=NS) == "2025-12-03"
        assert ident.findtext("ans:horaRegistroTransacao", namespaces=NS) == "14:05:09"
        assert cab.findtext("ans:origem/ans:registroANS", namespaces=NS) == REGISTRO
        ident = cab.find("ans:destino/ans:identificacaoPrestador", NS)
        assert [(etree.QName(c).localname, c.text) for c in ident] == [(id_name, id_value)]
        assert cab.findtext("ans:Padrao", namespaces=NS) == version
        parsed[encoding] = body
    if any(ord(ch) > 127 for ch in "".join(hashing.leaf_values(root))):
        assert len(hashes) == 2  # the hash follows the declared encoding
    assert root.getparent() is None  # envelope() framed it without moving it
    return parsed


# --------------------------------------------------------------------------- fixtures are valid


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("service", "variant"), [*RECIBO_CASES, ("status", "")])
def test_request_fixtures_are_valid(service, variant, version):
    request = status_request(version) if service == "status" else request_for(service, variant, version)
    report = validation.validate(etree.tostring(request, encoding="UTF-8", xml_declaration=True))
    assert report.valid, [f.message for f in report.findings]


# --------------------------------------------------------------------------- context


@pytest.mark.parametrize("prestador", PRESTADORES)
def test_reply_context_reads_provider_and_version(prestador):
    request = status_request("4.02.00", prestador=prestador)
    ctx = ctx_for(request)
    id_name, id_value, contratado = PRESTADORES[prestador]
    assert (ctx.version, ctx.prestador) == ("4.02.00", (id_name, id_value))
    root = r.protocolo_nao_localizado(ctx, numero_protocolo="PROT-1")
    parsed = check(root, "4.02.00", prestador=prestador)
    for body in parsed.values():
        dados = body.find(".//ans:situacaoDoProtocolo/ans:dadosPrestador", NS)
        assert [(etree.QName(c).localname, c.text) for c in dados] == [(contratado, id_value)]
    request.find("ans:cabecalho/ans:origem", NS)[0][0].text = "CHANGED"
    assert ctx.prestador == (id_name, id_value)  # the context keeps its own copy


def test_reply_context_rejects_bad_input():
    request = status_request("4.03.00")
    origem = request.find("ans:cabecalho/ans:origem", NS)
    with pytest.raises(ValueError, match="registro ANS"):
        r.reply_context(request, registro_ans="12345", sequencial="1", now=NOW)
    with pytest.raises(ValueError, match="sequencialTransacao"):
        r.reply_context(request, registro_ans=REGISTRO, sequencial="1234567890123", now=NOW)
    request.find("ans:cabecalho/ans:Padrao", NS).text = "3.05.00"
    with pytest.raises(ValueError, match="versão"):
        ctx_for(request)
    request.find("ans:cabecalho/ans:Padrao", NS).text = "4.03.00"
    origem.remove(origem[0])
    etree.SubElement(origem, f"{A}registroANS").text = "111111"
    with pytest.raises(ValueError, match="prestador"):
        ctx_for(request)


def test_tipo_transacao_resposta_matches_enumeration():
    assert set(r.TIPO_TRANSACAO_RESPOSTA) == set(SERVICE_BY_RESPONSE)
    for version in VERSIONS:
        xsd = etree.parse(str(SCHEMAS / version / f"tissSimpleTypesV{version.replace('.', '_')}.xsd"))
        values = set(xsd.xpath("//xs:simpleType[@name='dm_tipoTransacao']//xs:enumeration/@value",
                               namespaces={"xs": "http://www.w3.org/2001/XMLSchema"}))
        assert set(r.TIPO_TRANSACAO_RESPOSTA.values()) <= values
        assert set(r.TIPO_TRANSACAO_DEMONSTRATIVO.values()) <= values


# --------------------------------------------------------------------------- protocolo / situação


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("odonto", [False, True])
def test_protocolo_recebimento(version, odonto):
    ctx = ctx_for(status_request(version))
    lote = guias(3, odonto=odonto)
    root = r.protocolo_recebimento(ctx, numero_lote="LOTE-1", numero_protocolo="GW0000000001",
                                   data_envio_lote=date(2025, 12, 1), valor_total=Decimal("601.5"),
                                   guias=lote)
    for body in check(root, version).values():
        protocolo = body.find("ans:recebimentoLote/ans:protocoloRecebimento", NS)
        assert protocolo.findtext("ans:registroANS", namespaces=NS) == REGISTRO
        assert protocolo.findtext("ans:numeroLote", namespaces=NS) == "LOTE-1"
        assert protocolo.findtext("ans:dataEnvioLote", namespaces=NS) == "2025-12-01"
        detalhe = protocolo.find("ans:detalheProtocolo", NS)
        assert detalhe.findtext("ans:numeroProtocolo", namespaces=NS) == "GW0000000001"
        assert detalhe.findtext("ans:valorTotalProtocolo", namespaces=NS) == "601.50"
        tag = "dadosGuiasOdonto" if odonto else "dadosGuias"
        found = detalhe.findall(f"ans:dadosGuiasProtocolo/ans:{tag}", NS)
        assert [g.findtext("ans:numeroGuiaPrestador", namespaces=NS) for g in found] == ["G-1", "G-2", "G-3"]
        assert [g.findtext(".//ans:numeroCarteira", namespaces=NS) for g in found] == [
            "CART0001", "CART0002", "CART0003"]
        assert [g.findtext("ans:vlInformadoGuia/ans:valorProcessado", namespaces=NS) for g in found] == [
            "100.50", "201.00", "301.50"]


@pytest.mark.parametrize("version", VERSIONS)
def test_protocolo_recebimento_of_a_lote_taken_in_part(version):
    """Partial sending: the refused guides are left out of the list, each with its crítica in
    glosaProtocolo (read back by guia_da_recusa) and their value in vlGlosaProtocolo."""
    ctx = ctx_for(status_request(version))
    recusadas = [r.GuiaRecusada("G-9", "1203", "matrícula 77 não localizada", Decimal("40.00")),
                 r.GuiaRecusada("G-10", "1311", "x" * 600, Decimal("2.5"))]
    root = r.protocolo_recebimento(ctx, numero_lote="L-1", numero_protocolo="P-1",
                                   data_envio_lote=date(2025, 12, 1), valor_total=Decimal("100.50"),
                                   guias=guias(1), recusadas=recusadas)
    for body in check(root, version).values():
        detalhe = body.find("ans:recebimentoLote/ans:protocoloRecebimento/ans:detalheProtocolo", NS)
        assert detalhe.findtext("ans:glosaProtocolo/ans:vlGlosaProtocolo", namespaces=NS) == "42.50"
        motivos = detalhe.findall("ans:glosaProtocolo/ans:motivosGlosa/ans:motivoGlosa", NS)
        assert [m.findtext("ans:codigoGlosa", namespaces=NS) for m in motivos] == ["1203", "1311"]
        textos = [m.findtext("ans:descricaoGlosa", namespaces=NS) for m in motivos]
        assert textos[0] == "Guia G-9 recusada: matrícula 77 não localizada" and len(textos[1]) == 500
        assert [r.guia_da_recusa(t) for t in textos] == ["G-9", "G-10"]
    assert r.guia_da_recusa("Valor apresentado a maior") is None


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("status", range(1, 11))
def test_situacao_protocolo(version, status):
    ctx = ctx_for(status_request(version))
    kwargs = dict(numero_protocolo="PROT-1", numero_lote="LOTE-1", status=status,
                  data_envio_lote=date(2025, 12, 1), guias=guias(2))
    if status == 10 and version == "4.01.00":
        with pytest.raises(ValueError, match="statusProtocolo 10"):
            r.situacao_protocolo(ctx, valor_total=Decimal("301.50"), **kwargs)
        return
    analisado = ValorTotal(Decimal("301.50"), Decimal("1.50"), Decimal("300"))
    valor = analisado if status == 3 else Decimal("301.5")
    root = r.situacao_protocolo(ctx, valor_total=valor, **kwargs)
    for body in check(root, version).values():
        detalhe = body.find("ans:situacaoProtocolo/ans:situacaoDoProtocolo/ans:lote/ans:detalheLote", NS)
        assert detalhe.findtext("ans:statusProtocolo", namespaces=NS) == str(status)
        assert detalhe.findtext("ans:numeroProtocolo", namespaces=NS) == "PROT-1"
        liberado = detalhe.findtext("ans:valorTotalLote/ans:valorLiberado", namespaces=NS)
        assert liberado == ("300.00" if status == 3 else "0.00")
        assert len(detalhe.findall("ans:guiasTISS/ans:guiasMedicas/ans:guias", NS)) == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_situacao_protocolo_odonto(version):
    ctx = ctx_for(status_request(version))
    root = r.situacao_protocolo(ctx, numero_protocolo="PROT-2", numero_lote="LOTE-2", status=2,
                                data_envio_lote=date(2025, 12, 1), valor_total=Decimal("100.50"),
                                guias=guias(1, odonto=True))
    for body in check(root, version).values():
        assert body.find(".//ans:guiasTISS/ans:guiasOdonto/ans:guias/ans:atendimentoRN", NS) is not None


def test_guide_lists_escape_markup_characters():
    """Guide lists are written as text (responses._append_guias): markup in a value must stay text."""
    ctx = ctx_for(status_request("4.03.00"))
    guia = GuiaRecebida("G&1<2>", "OP'3\"", "C&<>", Decimal("10"))
    root = r.protocolo_recebimento(ctx, numero_lote="L-1", numero_protocolo="P-1",
                                   data_envio_lote=date(2025, 12, 1), valor_total=Decimal("10"),
                                   guias=[guia])
    for body in check(root, "4.03.00").values():
        found = body.find(".//ans:dadosGuias", NS)
        assert found.findtext("ans:numeroGuiaPrestador", namespaces=NS) == "G&1<2>"
        assert found.findtext("ans:numeroGuiaOperadora", namespaces=NS) == "OP'3\""
        assert found.findtext("ans:dadosBeneficiario/ans:numeroCarteira", namespaces=NS) == "C&<>"


def _draft_and_tree(version: str, guide_list: list[GuiaRecebida]) -> tuple[r.Draft, etree._Element]:
    ctx = ctx_for(status_request(version))
    args = dict(numero_protocolo="000000000042", numero_lote="L-9", status=2,
                data_envio_lote=date(2025, 12, 1), guias=guide_list,
                valor_total=ValorTotal(Decimal("300.00"), Decimal("10.00"), Decimal("290.00")))
    return r.situacao_protocolo_draft(ctx, **args), r.situacao_protocolo(ctx, **args)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_draft_envelope_is_the_tree_envelope(encoding):
    """A Draft (guide lists spliced in as text, hashed from their own leaves) writes exactly the
    bytes of the same answer built as a tree, also with markup, accents, characters the encoding
    lacks, a carriage return and glosas in the values; and both are schema-valid and hashed."""
    lista = guias(3)
    lista[1] = GuiaRecebida("G&<2>\r", "OP-€", "CÁRT\r\n2", Decimal("7.5"),
                            valores=ValorTotal(Decimal("7.50"), Decimal("2.50"), Decimal("5.00")),
                            glosas=(("1705", "Glosa <parcial> & \"motivo\"\r"), ("1702", None)))
    draft, tree = _draft_and_tree("4.03.00", lista)
    data = r.envelope(draft, encoding)
    assert data == r.envelope(tree, encoding)
    report = validation.validate(data)
    assert report.valid and report.hash.variant == hashing.DECLARED, [f.message for f in report.findings]
    guia = report.message.root.findall(".//ans:guiasTISS/ans:guiasMedicas/ans:guias", NS)[1]
    assert guia.findtext("ans:numeroGuiaPrestador", namespaces=NS) == "G&<2>\r"
    assert guia.findtext("ans:numeroGuiaOperadora", namespaces=NS) == "OP-€"
    assert guia.findtext("ans:glosaGuia/ans:motivoGlosa/ans:descricaoGlosa", namespaces=NS).endswith("\r")


def test_draft_sequencial_set_later_and_other_encodings():
    draft, tree = _draft_and_tree("4.02.00", guias(2))
    r.set_sequencial(draft, "123")
    r.set_sequencial(tree, "123")
    assert r.envelope(draft, "UTF-8") == r.envelope(tree, "UTF-8")
    with pytest.raises(ValueError):
        r.set_sequencial(draft, "1234567890123")  # st_texto12
    utf16 = r.envelope(r.situacao_protocolo_draft(  # not ASCII-compatible: built as a tree
        ctx_for(status_request("4.03.00")), numero_protocolo="P-1", numero_lote="L-1", status=1,
        data_envio_lote=date(2025, 12, 1), valor_total=Decimal("10.00"), guias=guias(2)), "UTF-16")
    assert validation.validate(utf16).findings[0].message.startswith("Mensagem codificada em UTF-16")
    report = validation.validate_message(reader.read(utf16))  # not TISS's, but schema and hash hold
    assert report.valid and report.hash.variant == hashing.DECLARED, [f.message for f in report.findings]


@pytest.mark.parametrize("version", VERSIONS)
def test_protocolo_nao_localizado(version):
    ctx = ctx_for(status_request(version))
    root = r.protocolo_nao_localizado(ctx, numero_protocolo="PROT-404")
    expected = "3291" if version == "4.03.00" else "3162"
    for body in check(root, version).values():
        erro = body.find("ans:situacaoProtocolo/ans:situacaoDoProtocolo/ans:lote/ans:mensagemErro", NS)
        assert erro.findtext("ans:codigoGlosa", namespaces=NS) == expected
        assert erro.findtext("ans:descricaoGlosa", namespaces=NS).endswith("NÃO LOCALIZADO: PROT-404") or (
            "NÃO ENCONTRADO: PROT-404" in erro.findtext("ans:descricaoGlosa", namespaces=NS))
        situacao = body.find("ans:situacaoProtocolo/ans:situacaoDoProtocolo", NS)
        assert situacao.findtext("ans:identificacaoOperadora", namespaces=NS) == REGISTRO


def test_builders_reject_bad_values():
    ctx = ctx_for(status_request("4.03.00"))
    base = dict(numero_lote="L", numero_protocolo="P", data_envio_lote=date(2025, 1, 1))
    with pytest.raises(ValueError, match="ao menos uma guia"):
        r.protocolo_recebimento(ctx, valor_total=Decimal(1), guias=[], **base)
    with pytest.raises(ValueError, match="misturadas"):
        r.protocolo_recebimento(ctx, valor_total=Decimal(1), guias=guias(1) + guias(1, odonto=True), **base)
    with pytest.raises(ValueError, match="dígitos"):
        r.protocolo_recebimento(ctx, valor_total=Decimal("123456789.00"), guias=guias(1), **base)
    with pytest.raises(ValueError, match="numeroProtocolo"):
        r.protocolo_recebimento(ctx, valor_total=Decimal(1), guias=guias(1),
                                **{**base, "numero_protocolo": "1234567890123"})


# --------------------------------------------------------------------------- mensagemErro


EXPECTED_MENSAGEM_ERRO = frozenset(s.name for s in SERVICES) - {"tissVerificaElegibilidade"}


@pytest.mark.parametrize("version", VERSIONS)
def test_services_with_mensagem_erro(version):
    assert r.services_with_mensagem_erro(version) == EXPECTED_MENSAGEM_ERRO


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("service", sorted(EXPECTED_MENSAGEM_ERRO))
def test_mensagem_erro(version, service):
    ctx = ctx_for(status_request(version))
    svc = SERVICE_BY_NAME[service]
    root = r.mensagem_erro(ctx, svc, "5014", "Código hash inválido; mensagem pode estar corrompida")
    for body in check(root, version).values():
        erro = body.find(".//ans:mensagemErro", NS)
        assert erro.getparent().getparent() is body
        assert erro.findtext("ans:codigoGlosa", namespaces=NS) == "5014"
        assert erro.findtext("ans:descricaoGlosa", namespaces=NS).startswith("Código hash inválido")


@pytest.mark.parametrize("version", VERSIONS)
def test_mensagem_erro_default_description_and_tipo(version):
    ctx = ctx_for(status_request(version))
    svc = SERVICE_BY_NAME["tissSolicitacaoDemonstrativoRetorno"]
    root = r.mensagem_erro(ctx, svc, "1206", tipo_transacao=r.TIPO_TRANSACAO_DEMONSTRATIVO["2"])
    for body in check(root, version, tipo="DEMONSTRATIVO_ANALISE_CONTA").values():
        assert body.findtext(".//ans:descricaoGlosa", namespaces=NS) == "CPF / CNPJ INVÁLIDO"


@pytest.mark.parametrize("version", VERSIONS)
def test_mensagem_erro_refuses_elegibilidade(version):
    ctx = ctx_for(status_request(version))
    with pytest.raises(ValueError, match="não tem mensagemErro"):
        r.mensagem_erro(ctx, SERVICE_BY_NAME["tissVerificaElegibilidade"], "5001", "x")


@pytest.mark.parametrize("version", VERSIONS)
def test_glosa_elegibilidade_and_why_not_mensagem_erro(version):
    ctx = ctx_for(status_request(version))
    root = r.glosa_elegibilidade(ctx, "1001", "Número da carteira inválido")
    for body in check(root, version).values():
        glosa = body.find("ans:respostaElegibilidade/ans:codigoGlosa", NS)
        assert glosa.findtext("ans:codigoGlosa", namespaces=NS) == "1001"
    # The schema itself refuses a mensagemErro in respostaElegibilidade.
    root.find("ans:respostaElegibilidade/ans:codigoGlosa", NS).tag = f"{A}mensagemErro"
    report = validation.validate(r.envelope(root, "UTF-8"))
    assert not report.valid
    assert any("mensagemErro" in f.message for f in report.findings)


def test_mensagem_erro_code_must_exist_in_version():
    svc = SERVICE_BY_NAME["tissSolicitacaoStatusProtocolo"]
    for version in ("4.01.00", "4.02.00"):
        with pytest.raises(ValueError, match="3291"):
            r.mensagem_erro(ctx_for(status_request(version)), svc, "3291", "x")
    check(r.mensagem_erro(ctx_for(status_request("4.03.00")), svc, "3291", "Protocolo não localizado"),
          "4.03.00")
    with pytest.raises(ValueError, match="9999"):
        r.mensagem_erro(ctx_for(status_request("4.03.00")), svc, "9999", "x")


def test_mensagem_erro_cuts_long_description():
    ctx = ctx_for(status_request("4.03.00"))
    root = r.mensagem_erro(ctx, SERVICE_BY_NAME["tissLoteGuias"], "5002", "é" * 600)
    assert len(root.findtext(".//ans:descricaoGlosa", namespaces=NS)) == 500
    check(root, "4.03.00")


# --------------------------------------------------------------------------- recibos


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("service", "variant"), RECIBO_CASES)
def test_recibo(version, service, variant):
    request = request_for(service, variant, version)
    ctx = ctx_for(request)
    svc = SERVICE_BY_NAME[service]
    root = r.recibo(ctx, svc, request, numero_protocolo="GW0000000042",
                    nomes_beneficiarios={"0001": "José Antônio"})
    for body in check(root, version).values():
        RECIBO_CHECKS[service](body, request, variant)


def _texts(element, path):
    return [e.text for e in element.findall(path, NS)]


def _check_anexo(body, request, variant):
    out = body.find("ans:loteAnexo/ans:protocoloRecebimentoAnexo", NS)
    assert out.findtext("ans:nrProtocoloRecebimento", namespaces=NS) == "GW0000000042"
    assert out.findtext("ans:dataEnvioAnexo", namespaces=NS) == "2025-12-01"
    lote = request.findtext(".//ans:numeroLote", namespaces=NS)
    assert out.findtext("ans:numeroLote", namespaces=NS) == lote
    assert out.findtext("ans:dadosPrestador/ans:codigoPrestadorNaOperadora", namespaces=NS) == "CLÍNICA-0001"
    clinicos = out.find("ans:anexosClinicos", NS)
    if variant == "situacaoInicial":
        assert out.findtext("ans:qtAnexosClinicos", namespaces=NS) == "2"
        assert _texts(clinicos, "ans:anexoSituacaoInicial/ans:numeroGuiaAnexo") == ["SI-1", "SI-2"]
        assert _texts(clinicos, "ans:anexoSituacaoInicial/ans:nomeBeneficiario") == [
            "José Antônio", r.NOME_NAO_INFORMADO]
    else:
        assert out.findtext("ans:qtAnexosClinicos", namespaces=NS) == "1"
        (anexo,) = clinicos
        assert etree.QName(anexo).localname == f"anexo{variant}"
        assert anexo.findtext("ans:statusSolicitacao", namespaces=NS) == "2"
        numero = request.findtext(".//ans:cabecalhoAnexo/ans:numeroGuiaAnexo", namespaces=NS)
        assert anexo.findtext("ans:dadosAutorizacao/ans:numeroGuiaPrestador", namespaces=NS) == numero
        assert anexo.findtext("ans:dadosAutorizacao/ans:numeroGuiaOperadora", namespaces=NS) == f"OP-{numero}"
        carteira = request.findtext(".//ans:dadosBeneficiario/ans:numeroCarteira", namespaces=NS)
        assert anexo.findtext(".//ans:numeroCarteira", namespaces=NS) == carteira


def _check_recurso(body, request, variant):
    out = body.find("ans:recebimentoRecurso/ans:protocoloRecebimento", NS)
    assert out.findtext("ans:nrProtocoloRecursoGlosa", namespaces=NS) == "GW0000000042"
    assert out.findtext("ans:dataEnvioRecurso", namespaces=NS) == "2025-12-01"
    assert out.findtext("ans:dataRecebimentoRecurso", namespaces=NS) == "2025-12-03"
    assert out.findtext("ans:numeroLote", namespaces=NS) == "LOTE-9"
    assert out.findtext("ans:nrProtocoloRecursado", namespaces=NS) == "123456"
    assert out.findtext("ans:dadosPrestador/ans:codigoPrestadorNaOperadora", namespaces=NS) == "CLÍNICA-0001"
    assert out.findtext("ans:valorTotalRecursado", namespaces=NS) == "350.75"
    guias_out = out.findall("ans:guiasRecurso", NS)
    if variant == "protocolo":
        assert out.findtext("ans:recursoProtocolo/ans:codigoGlosaProtocolo", namespaces=NS) == "1104"
        assert guias_out == []
    elif variant == "guias":
        assert out.findtext("ans:qtGuiasRecurso", namespaces=NS) == "2"
        assert _texts(out, "ans:guiasRecurso/ans:numeroGuiaOrigem") == ["G-1", "G-2"]
        justificativa = guias_out[0].findtext(".//ans:justificativaGuia", namespaces=NS)
        assert justificativa == JUSTIFICATIVA_LONGA[:150]
        item = guias_out[1].find("ans:opcaoRecursoGuia/ans:itensGuia", NS)
        assert item.findtext("ans:valorRecursado", namespaces=NS) == "150.75"
        assert item.find("ans:grauParticipacao", NS) is None
    else:
        assert _texts(out, "ans:guiasRecurso/ans:numeroGuiaOrigem") == ["GO-1", "GO-2"]
        assert guias_out[0].findtext(".//ans:recursoGuia/ans:codGlosaGuia", namespaces=NS) == "1001"
        item = guias_out[1].find("ans:opcaoRecursoGuia/ans:itensGuia", NS)
        assert item.findtext("ans:dataInicio", namespaces=NS) == "2025-10-03"
        assert item.findtext("ans:codGlosaItem", namespaces=NS) == "1308"


def _check_documentos(body, request, variant):
    out = body.find("ans:recebimentoDocumento/ans:reciboDocumentos", NS)
    assert [etree.QName(c).localname for c in out] == [
        "numeroLote", "numeroProtocolo", "numeroGuiaPrestador", "numeroDocumento", "protocoloDoc"]
    assert [c.text for c in out] == ["LOTE-5", "PROT-5", "G-50", "DOC-1", "GW0000000042"]


def _check_comunicacao(body, request, variant):
    out = body.find("ans:reciboComunicacao/ans:reciboComunicacao", NS)
    assert out.findtext("ans:statusComunicacao", namespaces=NS) == "S"
    ret = out.find("ans:beneficiarioComunicacaoRet", NS)
    assert ret.findtext("ans:dadosBeneficiario/ans:numeroCarteira", namespaces=NS) == "0009"
    assert ret.findtext("ans:nomeBeneficiario", namespaces=NS) == r.NOME_NAO_INFORMADO
    assert ret.findtext("ans:tipoEvento", namespaces=NS) == "I"


def _check_cancela(body, request, variant):
    out = body.find("ans:reciboCancelaGuia/ans:reciboCancelaGuia", NS)
    assert out.findtext("ans:registroANS", namespaces=NS) == REGISTRO
    assert out.findtext("ans:dadosPrestador/ans:codigoPrestadorNaOperadora", namespaces=NS) == "CLÍNICA-0001"
    if variant == "lote":
        lote = out.find("ans:retornoStatus/ans:loteCancelado", NS)
        assert [c.text for c in lote] == ["LOTE-3", "PROT-3", "4"]
    else:
        dados = out.findall("ans:retornoStatus/ans:guiasCanceladas/ans:dadosGuia", NS)
        assert [[c.text for c in d] for d in dados] == [
            ["2", "G-10", "4"], ["2", "G-11", "OP-11", "PROT-4", "4"]]


RECIBO_CHECKS = {
    "tissLoteAnexo": _check_anexo,
    "tissRecursoGlosa": _check_recurso,
    "tissEnvioDocumentos": _check_documentos,
    "tissComunicacaoBeneficiario": _check_comunicacao,
    "tissCancelaGuia": _check_cancela,
}


def test_recibo_with_default_namespace_request():
    """Requests written with a default namespace are echoed just as well."""
    request = request_for("tissLoteAnexo", "Quimio", "4.03.00")
    text = etree.tostring(request).decode().replace("ans:", "").replace("xmlns:ans=", "xmlns=")
    request = etree.fromstring(text.encode())
    root = r.recibo(ctx_for(request), SERVICE_BY_NAME["tissLoteAnexo"], request, numero_protocolo="GW1")
    check(root, "4.03.00")


@pytest.mark.parametrize("service", ["tissLoteAnexo", "tissRecursoGlosa", "tissEnvioDocumentos"])
def test_recibo_requires_protocol_where_the_type_has_one(service):
    request = request_for(service, next(iter(REQUESTS[service])), "4.03.00")
    with pytest.raises(ValueError, match="numero_protocolo"):
        r.recibo(ctx_for(request), SERVICE_BY_NAME[service], request, numero_protocolo=None)


@pytest.mark.parametrize("service", ["tissComunicacaoBeneficiario", "tissCancelaGuia"])
def test_recibo_without_protocol_field(service):
    request = request_for(service, next(iter(REQUESTS[service])), "4.01.00")
    check(r.recibo(ctx_for(request), SERVICE_BY_NAME[service], request, numero_protocolo=None), "4.01.00")


def test_recibo_refuses_other_services_and_mismatches():
    request = request_for("tissCancelaGuia", "lote", "4.03.00")
    ctx = ctx_for(request)
    with pytest.raises(ValueError, match="não é respondido com recibo"):
        r.recibo(ctx, SERVICE_BY_NAME["tissLoteGuias"], request, numero_protocolo="1")
    with pytest.raises(ValueError, match="esperado"):
        r.recibo(ctx, SERVICE_BY_NAME["tissEnvioDocumentos"], request, numero_protocolo="1")
    other = request_for("tissCancelaGuia", "lote", "4.02.00")
    with pytest.raises(ValueError, match="versão"):
        r.recibo(ctx, SERVICE_BY_NAME["tissCancelaGuia"], other, numero_protocolo="1")


# --------------------------------------------------------------------------- envelope / fault


def test_envelope_restamps_per_encoding_and_needs_hash():
    ctx = ctx_for(status_request("4.03.00"))
    root = r.mensagem_erro(ctx, SERVICE_BY_NAME["tissLoteGuias"], "5001", "Mensagem fora do padrão")
    assert not root.findtext("ans:hash", namespaces=NS)
    iso = r.envelope(root)
    assert root.findtext("ans:hash", namespaces=NS) == hashing.compute(root, "ISO-8859-1")
    assert "padrão".encode("iso-8859-1") in iso
    utf = r.envelope(root, "UTF-8")
    assert "padrão".encode() in utf
    envelope = etree.fromstring(utf)
    assert envelope.tag == f"{{{SOAP11_NS}}}Envelope"
    assert envelope[0].tag == f"{{{SOAP11_NS}}}Body"
    assert envelope[0][0].tag == f"{A}protocoloRecebimentoWS"
    root.remove(root.find("ans:hash", NS))
    with pytest.raises(ValueError, match="hash"):
        r.envelope(root)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("fault", sorted(r.TISS_FAULTS))
def test_fault_envelope(fault, encoding):
    client = fault != "ErroInesperadoServidor"
    text = "Mensagem inválida: versão não suportada"
    data = r.fault_envelope(fault, text, client=client, encoding=encoding)
    assert data.startswith(b"<?xml")
    assert encoding.encode() in data.splitlines()[0]
    envelope = etree.fromstring(data)
    soap_fault = envelope.find("soap:Body/soap:Fault", NS)
    assert soap_fault.findtext("faultcode") == ("soap:Client" if client else "soap:Server")
    assert soap_fault.findtext("faultstring") == text
    assert soap_fault.findtext("detail/ans:tissFaultWS/ans:tissFault", namespaces=NS) == fault
    report = validation.validate(data)
    assert report.kind == "tissFaultWS"
    assert report.message.in_envelope
    hinted = validation.validate(data, version_hint="4.03.00")
    assert hinted.valid, [f.message for f in hinted.findings]


def test_fault_envelope_rejects_unknown_fault():
    with pytest.raises(ValueError, match="tissFault"):
        r.fault_envelope("Timeout", "x", client=False)
