"""What an operator's answer means for a delivery: delivered, refused by the operator, or retry.

An answer is trusted only when it parses safely, is the response the service defines, validates
against the schema of its version and its hash checks (any known variant: operators differ, see
gateway.message.hashing). Anything else — connection errors, HTTP 5xx, server faults, a broken
or unhashable answer — is the operator's trouble and is retried with the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lxml import etree

from gateway.delivery.client import Answer
from gateway.message import hashing, reader
from gateway.message.findings import Finding, error
from gateway.message.reader import MessageError, TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SOAP11_NS, Service
from gateway.message.validation import validate_message

_NS = {"ans": ANS_NS, "soap": SOAP11_NS}
_FAULT = etree.XPath("string(//ans:tissFault)", namespaces=_NS)
_FAULT_STRING = etree.XPath("string(//faultstring)")
_NUMERO_PROTOCOLO = etree.XPath("string((.//ans:numeroProtocolo)[1])", namespaces=_NS)
# Receipts whose operator protocol has another name (a recurso's receipt echoes the appealed lote's
# protocol as nrProtocoloRecursado: not its own).
_PROTOCOLO_DO_RECIBO = {kind: etree.XPath(f"string((.//ans:{name})[1])", namespaces=_NS) for kind, name in {
    "protocoloRecebimentoRecursoWS": "nrProtocoloRecursoGlosa",
    "protocoloRecebimentoAnexoWS": "nrProtocoloRecebimento",
    "reciboDocumentosWS": "protocoloDoc",
}.items()}
_MENSAGEM_ERRO = etree.XPath(".//ans:mensagemErro", namespaces=_NS)
# tissFaultWS values that mean "this message will never be accepted as it is" (someone must act).
CLIENT_FAULTS = frozenset({"DestinatarioInvalido", "RemetenteInvalido", "LoginInvalido",
                           "VersaoInvalida", "HashInvalido", "SchemaInvalido"})

Kind = Literal["entregue", "recusada", "repetir"]


@dataclass
class Reading:
    kind: Kind
    motivo: str = ""
    message: TissMessage | None = None
    numero_protocolo: str | None = None
    criticas: list[Finding] = field(default_factory=list)


def read_answer(answer: Answer, service: Service, registry: SchemaRegistry,
                max_bytes: int = reader.DEFAULT_MAX_BYTES) -> Reading:
    try:
        message = reader.read(answer.body, max_bytes)
    except MessageError as exc:
        return Reading("repetir", f"HTTP {answer.status}: resposta ilegível ({exc.finding.message})")
    if message.kind == "tissFaultWS" or message.root.tag == f"{{{SOAP11_NS}}}Fault":
        return _fault(answer, message)
    if answer.status >= 500:
        return Reading("repetir", f"HTTP {answer.status}")
    if message.kind != service.response:
        return Reading("repetir", f"resposta {message.kind} não é {service.response}")
    report = validate_message(message, registry=registry, policy=hashing.LENIENT)
    if not report.valid:
        first = report.findings[0]
        return Reading("repetir", f"resposta inválida da operadora: [{first.code}] {first.message}", message)
    return _content(message)


def _fault(answer: Answer, message: TissMessage) -> Reading:
    tree = message.tree.getroot()
    fault = _FAULT(tree).strip()
    text = f"tissFault {fault or '?'}: {_FAULT_STRING(tree).strip()}"[:2000]
    if fault in CLIENT_FAULTS:
        return Reading("recusada", text, message, criticas=[error(None, text)])
    return Reading("repetir", f"HTTP {answer.status} {text}", message)


def _content(message: TissMessage) -> Reading:
    erros = _MENSAGEM_ERRO(message.root)
    if erros:
        criticas = [error(e.findtext(f"{{{ANS_NS}}}codigoGlosa"), e.findtext(f"{{{ANS_NS}}}descricaoGlosa")
                          or "recusada pela operadora") for e in erros]
        motivo = "; ".join(f"[{c.code}] {c.message}" for c in criticas)[:2000]
        return Reading("recusada", motivo, message, criticas=criticas)
    numero = _PROTOCOLO_DO_RECIBO.get(message.kind, _NUMERO_PROTOCOLO)(message.root).strip() or None
    return Reading("entregue", "", message, numero_protocolo=numero)
