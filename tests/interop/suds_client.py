"""An ERP written with suds (suds-community), against the gateway's served WSDLs.

The lote goes as a whole envelope built elsewhere (``__inject``: suds sends the bytes it is given,
re-encoded as UTF-8 whatever their declaration says, so they are built in UTF-8); the status
request is built from the WSDL's types as an ERP would, and :class:`TissHash` stamps its TISS hash
over what suds serialised: MD5 of the leaf values in document order, in UTF-8 (what suds sends).
A tissFaultWS surfaces as ``suds.WebFault`` (suds reads the fault only under HTTP 500).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from suds.client import Client
from suds.plugin import MessagePlugin
from suds.sax.element import Element

LOTE_OPERATION = "tissLoteGuias_Operation"
STATUS_OPERATION = "tissSolicitacaoStatusProtocolo_Operation"


class TissHash(MessagePlugin):
    """Stamps ``*WS/hash`` of every typed request; ``fixed``: send this value instead (a bad hash)."""

    def __init__(self) -> None:
        self.fixed: str | None = None

    def marshalled(self, context) -> None:
        body = context.envelope.getChild("Body")
        message = body.getChildren()[0] if body is not None and body.getChildren() else None
        if message is None:
            return
        values = "".join(_leaf_values(c) for c in message.getChildren() if c.name != "hash")
        stamp = message.getChild("hash")
        stamp.setText(self.fixed or hashlib.md5(values.encode("utf-8"), usedforsecurity=False).hexdigest())


def _leaf_values(element: Element) -> str:
    children = element.getChildren()
    if not children:
        return element.getText() or ""
    return "".join(_leaf_values(c) for c in children)


@dataclass(frozen=True)
class Cabecalho:
    sequencial: str
    data: str
    hora: str
    cnpj: str
    registro_ans: str
    padrao: str
    login: str
    senha_md5: str


class SudsErp:
    def __init__(self, lote_wsdl: str, status_wsdl: str, timeout: float = 60):
        self.hash = TissHash()
        self.lote = Client(lote_wsdl, cache=None, timeout=timeout)
        self.status_client = Client(status_wsdl, cache=None, timeout=timeout, plugins=[self.hash])

    def send_lote(self, envelope: bytes) -> str:
        """The lote's protocol number (the envelope is sent as it is)."""
        answer = getattr(self.lote.service, LOTE_OPERATION)(__inject={"msg": envelope})
        return str(answer.recebimentoLote.protocoloRecebimento.detalheProtocolo.numeroProtocolo)

    def status(self, cabecalho: Cabecalho, protocolo: str, fixed_hash: str | None = None):
        """situacaoProtocoloWS of ``protocolo`` (suds objects); raises suds.WebFault on a fault."""
        self.hash.fixed = fixed_hash
        operation = getattr(self.status_client.service, STATUS_OPERATION)
        return operation(cabecalho={
            "identificacaoTransacao": {
                "tipoTransacao": "SOLIC_STATUS_PROTOCOLO", "sequencialTransacao": cabecalho.sequencial,
                "dataRegistroTransacao": cabecalho.data, "horaRegistroTransacao": cabecalho.hora},
            "origem": {"identificacaoPrestador": {"CNPJ": cabecalho.cnpj}},
            "destino": {"registroANS": cabecalho.registro_ans},
            "Padrao": cabecalho.padrao,
            "loginSenhaPrestador": {"loginPrestador": cabecalho.login, "senhaPrestador": cabecalho.senha_md5},
        }, solicitacaoStatusProtocolo={
            "dadosPrestador": {"cnpjContratado": cabecalho.cnpj}, "numeroProtocolo": protocolo,
        }, hash="")


def tiss_fault(error) -> tuple[str, str, str]:
    """(faultcode, faultstring, tissFault) of a suds.WebFault."""
    fault = error.fault
    return str(fault.faultcode), str(fault.faultstring), str(fault.detail.tissFaultWS.tissFault)
