"""The cabeçalho values every receiver of a TISS request reads (gateway and simulated operator)."""

from lxml import etree

from gateway.message.services import ANS_NS

_CAB = "ans:cabecalho/"
_ORIGEM = _CAB + "ans:origem/ans:identificacaoPrestador/ans:"
FIELDS = {name: etree.XPath(f"string({path})", namespaces={"ans": ANS_NS}) for name, path in {
    "tipo": _CAB + "ans:identificacaoTransacao/ans:tipoTransacao",
    "sequencial": _CAB + "ans:identificacaoTransacao/ans:sequencialTransacao",
    "destino": _CAB + "ans:destino/ans:registroANS",
    "login": _CAB + "ans:loginSenhaPrestador/ans:loginPrestador",
    "senha": _CAB + "ans:loginSenhaPrestador/ans:senhaPrestador",
    "cnpj": _ORIGEM + "CNPJ",
    "cpf": _ORIGEM + "CPF",
    "codigo": _ORIGEM + "codigoPrestadorNaOperadora",
    "protocolo": "ans:solicitacaoStatusProtocolo/ans:numeroProtocolo",
}.items()}

