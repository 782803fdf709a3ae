"""One safe parse per message: size limit, no entities/DTD/network, TISS root and version found.

Accepts a ``mensagemTISS`` document or any ``*WS`` element, bare or as the first child of a
SOAP 1.1 ``Body``. Everything later (schema, hash, storage) works on the tree parsed here.
:func:`request_refusal` says, in Portuguese, why a ``Body`` is not what a web service takes (the
file form, a message wrapped twice, a response...); :func:`reply_encoding` is the encoding a
fault answering these bytes is written in; :func:`encoding_refusal` and :func:`body_refusal`
refuse what the parse took but a TISS web service must not (another encoding, bytes that contradict
their declaration, more than one element in the Body).
"""

import codecs
import re
import threading
from dataclasses import dataclass

from lxml import etree

from gateway.message import findings as f
from gateway.message.services import (
    ANS_NS,
    MENSAGEM_TISS,
    MESSAGE_KINDS,
    SERVICE_BY_REQUEST,
    SERVICE_BY_RESPONSE,
    SOAP11_NS,
    SOAP12_NS,
    Service,
)

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
        return _check_kind(child, _BODY_CHILD), True
    if isinstance(top.tag, str) and top.tag.startswith(f"{{{SOAP12_NS}}}"):
        raise MessageError(f.error(
            f.MENSAGEM_FORA_DO_PADRAO, "SOAP 1.2 não é aceito: o TISS usa SOAP 1.1.",
            None, top.sourceline))
    return _check_kind(top, _ROOT), False


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


def _check_kind(element: etree._Element, where: str) -> etree._Element:
    qname = etree.QName(element)
    if qname.namespace == ANS_NS and qname.localname in MESSAGE_KINDS:
        twice = _wrapped_twice(element, where)
        if twice is not None:
            raise MessageError(twice)
        return element
    inner = _inner_message(element)
    if inner is not None:
        raise MessageError(_twice_finding(inner, element, where))
    name = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
    raise MessageError(f.error(
        f.MENSAGEM_FORA_DO_PADRAO,
        f"Elemento {name} não é uma mensagem TISS (esperado mensagemTISS ou *WS no "
        f"namespace {ANS_NS}).", "/" + qname.localname, element.sourceline))


# --- what a web service's Body must hold ------------------------------------------------------

_BODY_CHILD = "o filho direto do soap:Body"
_ROOT = "a raiz do documento (ou o filho direto do soap:Body)"


def request_refusal(element: etree._Element, service: Service | None) -> f.Finding | None:
    """Why ``element``, the first element of a request's ``soap:Body``, is not a ``*WS`` request a
    web service takes; None when it is one (of any service: whether it is the service of the URL
    is checked later, with the message read). ``service``: the URL's, named in the texts."""
    if element.tag in _REQUEST_TAGS:  # the usual case: one set lookup, a look at its few children
        return _wrapped_twice(element, _BODY_CHILD)
    qname = etree.QName(element)
    expected = _expected(service)
    if qname.namespace == ANS_NS and qname.localname == MENSAGEM_TISS:
        return _file_form(element, service)
    inner = _inner_message(element)
    if inner is not None:
        return _twice_finding(inner, element, _BODY_CHILD)
    if qname.namespace == ANS_NS and qname.localname in SERVICE_BY_RESPONSE:
        answered = SERVICE_BY_RESPONSE[qname.localname].name
        return _refusal(element, f"{qname.localname} é a resposta do web service {answered}, não uma "
                        f"requisição: {expected}.")
    if qname.namespace == SOAP11_NS and qname.localname == "Fault":
        return _refusal(element, f"O soap:Body traz um soap:Fault, não uma mensagem TISS: {expected}.")
    return _refusal(element, f"O soap:Body traz o elemento {_written(element)}, que não é uma "
                    f"requisição TISS: {expected}, no namespace {ANS_NS}.")


def unenveloped_refusal(root: etree._Element, service: Service | None) -> f.Finding:
    """Why a document whose root is not a SOAP 1.1 ``Envelope`` is refused by a web service."""
    qname = etree.QName(root)
    expected = _expected(service)
    if qname.namespace == SOAP12_NS:
        text = f"Envelope SOAP 1.2 não é aceito: o TISS usa SOAP 1.1 (namespace {SOAP11_NS})."
    elif qname.namespace == ANS_NS and qname.localname == MENSAGEM_TISS:
        return _file_form(root, service)
    elif qname.namespace == ANS_NS and qname.localname in MESSAGE_KINDS:
        text = (f"Mensagem {qname.localname} sem Envelope SOAP 1.1: {expected} dentro de "
                "soap:Envelope/soap:Body.")
    else:
        text = (f"Envelope SOAP 1.1 ausente: a raiz do documento é {_written(root)}, esperado "
                f"soap:Envelope do namespace {SOAP11_NS}.")
    return _refusal(root, text)


def _file_form(element: etree._Element, service: Service | None) -> f.Finding:
    return _refusal(element, "mensagemTISS é o formato de arquivo do TISS (envio ou upload de arquivo "
                    f"XML), não o de web service: {_expected(service)} (cabecalho, corpo e hash, sem "
                    "epilogo) como filho direto do soap:Body.")


def _expected(service: Service | None) -> str:
    if service is None:
        return "os web services TISS recebem o elemento *WS do serviço (por exemplo loteGuiasWS)"
    return f"o web service {service.name} recebe o elemento {service.request}"


def _refusal(element: etree._Element, text: str) -> f.Finding:
    return f.error(f.MENSAGEM_FORA_DO_PADRAO, text, "/" + etree.QName(element).localname,
                   element.sourceline)


_MESSAGE_TAGS = tuple(f"{{{ANS_NS}}}{kind}" for kind in sorted(MESSAGE_KINDS))
_MESSAGE_TAG_SET = frozenset(_MESSAGE_TAGS)
_REQUEST_TAGS = frozenset(f"{{{ANS_NS}}}{kind}" for kind in SERVICE_BY_REQUEST)


def _is_message(element: etree._Element) -> bool:
    return element.tag in _MESSAGE_TAG_SET


def _inner_message(wrapper: etree._Element) -> etree._Element | None:
    """The TISS message inside a non-TISS element (an operation wrapper, a second envelope)."""
    return next(wrapper.iterdescendants(*_MESSAGE_TAGS), None)  # tags matched in C


def _wrapped_twice(element: etree._Element, where: str) -> f.Finding | None:
    """A TISS message whose own child is a TISS message: what a client that wraps the element it
    is given in the element of the operation sends (node ``soap`` given a whole ``*WS``)."""
    inner = next((child for child in element if child.tag in _MESSAGE_TAG_SET), None)
    return _twice_finding(inner, element, where) if inner is not None else None


def _twice_finding(inner: etree._Element, wrapper: etree._Element, where: str) -> f.Finding:
    name = etree.QName(inner).localname
    if etree.QName(wrapper).localname == "Envelope":
        around = "de outro Envelope SOAP"
    else:
        around = f"do elemento {_written(wrapper)}"
    text = (f"Mensagem encapsulada duas vezes: {name} veio dentro {around} e deve ser {where}, "
            "sem elemento de operação nem outro envelope em volta.")
    if _is_message(wrapper):
        text += (f" Clientes que recebem o elemento inteiro como parâmetro (por exemplo o node soap) "
                 f"o embrulham de novo: passe só os filhos de {name} (cabecalho, corpo e hash).")
    return f.error(f.MENSAGEM_FORA_DO_PADRAO, text, "/" + etree.QName(wrapper).localname,
                   inner.sourceline)


def body_refusal(body: etree._Element, first: etree._Element) -> f.Finding | None:
    """Why a ``soap:Body`` whose first element is ``first`` holds something besides it (another
    element, text); None when ``first`` is all. A document-literal Body holds one element at most
    (WS-I Basic Profile 1.1, R2201 and R2210; R9981 of its errata): a second one would be dropped
    unanswered. Comments and processing instructions are ignored."""
    if (body.text or "").strip():
        return _refusal(first, "O soap:Body traz texto fora da mensagem TISS: deve conter só o "
                        "elemento da requisição.")
    for child in body:
        if (child.tail or "").strip():
            return _refusal(child, "O soap:Body traz texto fora da mensagem TISS: deve conter só o "
                            "elemento da requisição.")
        if child is not first and isinstance(child.tag, str):
            return _refusal(child, f"O soap:Body traz mais de um elemento ({_written(first)} e "
                            f"{_written(child)}): deve conter exatamente uma requisição TISS; envie "
                            "cada mensagem numa chamada.")
    return None


def _written(element: etree._Element) -> str:
    qname = etree.QName(element)
    if qname.namespace in (None, ANS_NS):
        return qname.localname
    return f"{{{qname.namespace}}}{qname.localname}"


# --- encodings: what TISS takes, and the encoding of a fault -----------------------------------

_DECLARATION = re.compile(rb"\s*<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._-]*)[\"']")
_REPLY_ENCODINGS = {"iso8859-1": "ISO-8859-1", "utf-8": "UTF-8"}
# TISS messages are ISO-8859-1 (the standard's) or UTF-8 (what most SOAP stacks write); US-ASCII
# is a subset of both. Anything else (UTF-16, windows-1252...) parses here but reaches the operator
# as bytes it cannot read. Names as codecs.lookup gives them (any alias is taken).
_ALLOWED_ENCODINGS = frozenset({"iso8859-1", "utf-8", "ascii"})
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_TAKEN = "o TISS aceita ISO-8859-1 (a codificação do padrão) ou UTF-8"


def allowed_encoding(name: str) -> bool:
    """Whether ``name`` (an XML declaration's or a Content-Type charset) is an encoding TISS takes."""
    try:
        return codecs.lookup(name).name in _ALLOWED_ENCODINGS
    except LookupError:
        return False


def declared_encoding(data: bytes) -> str | None:
    """The encoding the XML declaration names (after a UTF-8 BOM), None when it names none."""
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    match = _DECLARATION.match(data, start, start + 200)
    return match.group(1).decode("ascii") if match else None


def encoding_refusal(data: bytes) -> f.Finding | None:
    """Why a message's bytes are not in an encoding TISS takes, or contradict the encoding they
    declare; None when they are fine. Run on bytes that parsed (malformed UTF-8 did not)."""
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            return _encoding_finding(f"Mensagem codificada em {name}: {_TAKEN}.")
    if b"\x00" in data[:4]:  # UTF-16/32 without a BOM: '<' is preceded or followed by NULs
        return _encoding_finding(f"Mensagem codificada em UTF-16 ou UTF-32: {_TAKEN}.")
    declared = declared_encoding(data)
    if declared is None:
        return None  # UTF-8, XML's default
    if not allowed_encoding(declared):
        return _encoding_finding(f"Codificação {declared} declarada na mensagem não é aceita: {_TAKEN}.")
    name = codecs.lookup(declared).name
    if name != "utf-8" and data.startswith(codecs.BOM_UTF8):
        return _encoding_finding(f"A mensagem começa com a marca de UTF-8 (BOM) mas declara {declared}: "
                                 "declare UTF-8 ou envie-a sem a marca.")
    if name == "iso8859-1" and _utf8_posing_as_latin1(data):
        return _encoding_finding(
            f"A mensagem declara {declared}, mas seus bytes são UTF-8: os acentos seriam lidos trocados "
            "('Ã£' em vez de 'ã'). Declare encoding=\"UTF-8\" ou envie os bytes em ISO-8859-1.")
    return None


def charset_refusal(charset: str) -> f.Finding | None:
    """Why a request's Content-Type charset is not one TISS takes; None when it is."""
    if allowed_encoding(charset):
        return None
    return _encoding_finding(f"Codificação {charset} informada no Content-Type não é aceita: {_TAKEN}.")


def _utf8_posing_as_latin1(data: bytes) -> bool:
    """ISO-8859-1 text whose non-ASCII bytes all form valid UTF-8 sequences is, in practice, always
    UTF-8 declared as ISO-8859-1 (suds re-encodes what it is given so): in real ISO-8859-1 text an
    accented letter (0xC0-0xFF) is followed by a letter, which no UTF-8 sequence allows, and the
    bytes 0x80-0xBF (symbols like º, ª, §) would each have to follow such a letter."""
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _encoding_finding(text: str) -> f.Finding:
    return f.error(f.MENSAGEM_FORA_DO_PADRAO, text, None, 1)


def reply_encoding(data: bytes, tree: etree._ElementTree | None = None) -> str:
    """The encoding of a fault answering ``data``: the one the request declared when it is
    ISO-8859-1 or UTF-8 (under any of their names), else UTF-8. ``tree``: the request as parsed,
    when it parsed; otherwise the XML declaration is read from the bytes (a malformed document
    still says its encoding)."""
    if tree is not None:
        declared = tree.docinfo.encoding
    else:
        declared = None if data.startswith(codecs.BOM_UTF8) else declared_encoding(data)
    try:
        name = codecs.lookup(declared).name if declared else ""
    except LookupError:
        return "UTF-8"
    return _REPLY_ENCODINGS.get(name, "UTF-8")
