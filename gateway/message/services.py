"""The 12 TISS web services (ANS Componente de Comunicação) and their message elements."""

from dataclasses import dataclass

ANS_NS = "http://www.ans.gov.br/padroes/tiss/schemas"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"

MENSAGEM_TISS = "mensagemTISS"


@dataclass(frozen=True)
class Service:
    name: str  # WSDL / service name, e.g. tissLoteGuias
    operation: str
    request: str  # request element (local name, ANS namespace)
    response: str
    request_part: str  # WSDL message part names, kept name for name
    response_part: str


SERVICES: tuple[Service, ...] = (
    Service("tissLoteGuias", "tissLoteGuias_Operation", "loteGuiasWS",
            "protocoloRecebimentoWS", "loteGuias", "protocoloRecebimento"),
    Service("tissSolicitacaoStatusProtocolo", "tissSolicitacaoStatusProtocolo_Operation",
            "solicitacaoStatusProtocoloWS", "situacaoProtocoloWS",
            "solicitacaoStatusProtocolo", "situacaoProtocolo"),
    Service("tissSolicitacaoDemonstrativoRetorno", "tissSolicitacaoDemonstrativoRetorno_Operation",
            "solicitacaoDemonstrativoRetornoWS", "demonstrativoRetornoWS",
            "solicitacaoDemonstrativoRetorno", "demonstrativoRetorno"),
    Service("tissVerificaElegibilidade", "tissVerificaElegibilidade_Operation",
            "pedidoElegibilidadeWS", "respostaElegibilidadeWS",
            "pedidoElegibilidade", "respostaElegibilidade"),
    Service("tissSolicitacaoProcedimento", "tissSolicitacaoProcedimento_Operation",
            "solicitacaoProcedimentoWS", "autorizacaoProcedimentoWS",
            "solicitacaoProcedimento", "autorizacaoProcedimento"),
    Service("tissSolicitacaoStatusAutorizacao", "tissSolicitacaoStatusAutorizacao_Operation",
            "solicitacaoStatusAutorizacaoWS", "situacaoAutorizacaoWS",
            "solicitacaoStatusAutorizacao", "situacaoAutorizacao"),
    Service("tissCancelaGuia", "tissCancelaGuia_Operation", "cancelaGuiaWS",
            "reciboCancelaGuiaWS", "cancelaGuia", "reciboCancelaGuia"),
    Service("tissLoteAnexo", "tissLoteAnexo_Operation", "loteAnexoWS",
            "protocoloRecebimentoAnexoWS", "loteAnexo", "protocoloRecebimentoAnexo"),
    Service("tissRecursoGlosa", "tissRecursoGlosa_Operation", "loteRecursoGlosaWS",
            "protocoloRecebimentoRecursoWS", "recursoGlosa", "reciboRecursoGlosa"),
    Service("tissSolicitacaoStatusRecursoGlosa", "tissSolicitacaoStatusProtocoloRecurso_Operation",
            "solicitacaoStatusRecursoGlosaWS", "situacaoProtocoloRecursoWS",
            "solicitacaoStatusProtocoloRecurso", "situacaoProtocoloRecurso"),
    Service("tissComunicacaoBeneficiario", "tissComunicacaoBeneficiario_Operation",
            "comunicacaoBeneficiarioWS", "reciboComunicacaoWS",
            "comunicacaoBeneficiario", "reciboComunicacao"),
    Service("tissEnvioDocumentos", "tissEnvioDocumentos_Operation", "envioDocumentoWS",
            "reciboDocumentosWS", "envioDocumentos", "reciboDocumentos"),
)

SERVICE_BY_NAME = {s.name: s for s in SERVICES}
SERVICE_BY_REQUEST = {s.request: s for s in SERVICES}
SERVICE_BY_RESPONSE = {s.response: s for s in SERVICES}
WS_ELEMENTS = frozenset(SERVICE_BY_REQUEST) | frozenset(SERVICE_BY_RESPONSE) | {"tissFaultWS"}
MESSAGE_KINDS = WS_ELEMENTS | {MENSAGEM_TISS}
