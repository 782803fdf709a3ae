"""One safe parse per message: size limit, no entities/DTD/network, TISS root and version found.

Accepts a ``mensagemTISS`` document or any ``*WS`` element, bare or as the first child of a
SOAP 1.1 ``Body``. Everything later (schema, hash, storage) works on the tree parsed here.
"""

import threading
from dataclasses import dataclass

from lxml import etree

from gateway.message import findings as f
from gateway.message.services import ANS_NS, MESSAGE_KINDS, SOAP11_NS, SOAP12_NS

DEFAULT_MAX_BYTES = 15 * 1024 * 1024  # largest limit in the operators' manuals (PASA)

_ENVELOPE = f"{{{SOAP11_NS}}}Envelope"
_BODY = f"{{{SOAP11_NS}}}Body"
_FAULT = f"{{{SOAP11_NS}}}Fault"
_PADRAO = etree.XPath("string(ans:cabecalho/ans:Padrao)", namespaces={"ans": ANS_NS})
_FAULT_DETAIL = etree.XPath("detail/ans:tissFaultWS", namespaces={"ans": ANS_NS})


class MessageError(Exception):
    """The bytes are not a readable TISS message; carries the finding to answer with."""

    def __init__(self, finding: f.Finding):
        super().__init__(finding.message)
        self.finding = finding


@dataclass(frozen=True, slots=True)
class TissMessage:
    data: bytes  # exactly as received
    tree: etree._ElementTree
    root: etree._Element  # mensagemTISS or the *WS element (inside the envelope if there is one)
    kind: str  # local name of root
    version: str | None  # cabecalho/Padrao
    encoding: str  # declared XML encoding (UTF-8 when not declared)
    in_envelope: bool


_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers must not be shared between threads; one per thread, built once.
    parser = getattr(_local, "parser", None)
    if parser is None:
        # huge_tree lifts libxml2's 10 MB text-node cap: a document sent in base64 (envioDocumentos,
        # anexos) legitimately reaches the 15 MiB limit. The size check before parsing bounds the rest.
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=True, collect_ids=False,
        )
        _local.parser = parser
    return parser


def parse(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._ElementTree:
    """Parse untrusted bytes safely or raise MessageError (5002)."""
    if len(data) > max_bytes:
        raise MessageError(f.error(
            f.XML_NAO_VALIDADO,
            f"Mensagem com {len(data)} bytes excede o limite de {max_bytes} bytes."))
    if not data.strip():
        raise MessageError(f.error(f.XML_NAO_VALIDADO, "Mensagem vazia."))
    try:
        tree = etree.ElementTree(etree.fromstring(data, _parser()))
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise MessageError(f.error(
            f.XML_NAO_VALIDADO, f"XML malformado: {exc.msg}", line=line)) from None
    except (ValueError, LookupError) as exc:  # e.g. unknown encoding declared
        raise MessageError(f.error(f.XML_NAO_VALIDADO, f"XML ilegível: {exc}")) from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise MessageError(f.error(
            f.XML_NAO_VALIDADO, "DOCTYPE não é permitido em mensagens TISS.", line=1))
    return tree


def find_tiss_root(tree: etree._ElementTree) -> tuple[etree._Element, bool]:
    """The TISS element and whether it came inside a SOAP envelope."""
    top = tree.getroot()
    if top.tag == _ENVELOPE:
        body = top.find(_BODY)
        child = _first_element(body) if body is not None else None
        if child is not None and child.tag == _FAULT:
            detail = _FAULT_DETAIL(child)
            child = detail[0] if detail else None
        if child is None:
            raise MessageError(f.error(
                f.MENSAGEM_FORA_DO_PADRAO, "Envelope SOAP sem mensagem TISS no Body.",
                "/Envelope/Body", top.sourceline))
        return _check_kind(child), True
    if isinstance(top.tag, str) and top.tag.startswith(f"{{{SOAP12_NS}}}"):
        raise MessageError(f.error(
            f.MENSAGEM_FORA_DO_PADRAO, "SOAP 1.2 não é aceito: o TISS usa SOAP 1.1.",
            None, top.sourceline))
    return _check_kind(top), False


def read(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES,
         version_hint: str | None = None) -> TissMessage:
    """Parse and identify a TISS message. ``version_hint`` serves messages without cabeçalho."""
    tree = parse(data, max_bytes)
    root, in_envelope = find_tiss_root(tree)
    return message_of(data, tree, root, in_envelope, version_hint)


def message_of(data: bytes, tree: etree._ElementTree, root: etree._Element, in_envelope: bool,
               version_hint: str | None = None) -> TissMessage:
    """The TissMessage of a root already found in a parsed tree (the SOAP layer parses once)."""
    version = _PADRAO(root).strip() or version_hint
    encoding = tree.docinfo.encoding or "UTF-8"
    return TissMessage(data, tree, root, etree.QName(root).localname, version or None,
                       encoding, in_envelope)


def _first_element(parent: etree._Element) -> etree._Element | None:
    for child in parent:
        if isinstance(child.tag, str):
            return child
    return None


def _check_kind(element: etree._Element) -> etree._Element:
    qname = etree.QName(element)
    if qname.namespace == ANS_NS and qname.localname in MESSAGE_KINDS:
        return element
    where = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
    raise MessageError(f.error(
        f.MENSAGEM_FORA_DO_PADRAO,
        f"Elemento {where} não é uma mensagem TISS (esperado mensagemTISS ou *WS no "
        f"namespace {ANS_NS}).", "/" + qname.localname, element.sourceline))
