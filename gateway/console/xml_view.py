"""A stored message shown on a page: parsed with the safe parser (entities, DTDs and network off),
card numbers and password digests masked, indented; the template escapes the text.

The download (``/console/mensagens/<id>/xml``) gives the exact stored bytes instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.console.formatos import carteira
from gateway.message import reader
from gateway.message.reader import MessageError

MAX_SHOWN_BYTES = 2 * 1024 * 1024  # larger messages are downloaded, not shown
# Elements whose text never appears on a page: card numbers keep their last digits, a password's
# MD5 (what loginSenhaPrestador carries, replayable) none.
_CARTEIRAS = frozenset({"numeroCarteira", "carteiraBeneficiario"})
_SENHAS = frozenset({"senhaPrestador"})


@dataclass(frozen=True)
class XmlView:
    texto: str | None  # the indented, masked document (None: not shown, see motivo)
    motivo: str | None = None


def mostrar(corpo: bytes | None) -> XmlView:
    if not corpo:
        return XmlView(None, "corpo da mensagem não está mais armazenado")
    if len(corpo) > MAX_SHOWN_BYTES:
        return XmlView(None, f"mensagem de {len(corpo)} bytes: grande demais para exibir, use o download")
    try:
        tree = reader.parse(corpo, max_bytes=MAX_SHOWN_BYTES)
    except MessageError as exc:
        return XmlView(None, f"não é um XML legível ({exc.finding.message}); use o download")
    mascarar(tree.getroot())
    etree.indent(tree, space="  ")
    return XmlView(etree.tostring(tree, encoding="unicode"))


def mascarar(root: etree._Element) -> None:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element).localname
        if name in _CARTEIRAS and element.text:
            element.text = carteira(element.text.strip())
        elif name in _SENHAS and element.text:
            element.text = "********"
