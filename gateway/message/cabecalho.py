"""The cabeçalho values every receiver of a TISS request reads (gateway and simulated operator)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from gateway.message.services import ANS_NS

if TYPE_CHECKING:
    from gateway.message.reader import TissMessage

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


class CabecalhoFields:
    """Mixin for a request on its way: ``field(name)`` reads a cabeçalho value (FIELDS) of
    ``self.message`` from the tree once per request."""

    message: TissMessage

    def field(self, name: str) -> str:
        cache: dict[str, str] = self.__dict__.setdefault("_cabecalho", {})
        value = cache.get(name)
        if value is None:
            value = cache[name] = FIELDS[name](self.message.root).strip()
        return value
