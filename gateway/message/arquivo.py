"""The upload-file form of TISS messages (``mensagemTISS``), as operators' portals take and give them.

A ``*WS`` document and its ``mensagemTISS`` file carry the same cabeçalho and the same body type;
only the wrapping differs: the body goes under ``prestadorParaOperadora`` (from the provider) or
``operadoraParaPrestador`` (from the operator), sometimes under another name, and the hash moves
to ``epilogo/hash``. A portal authenticates its own user, so a file carries no
``loginSenhaPrestador`` (optional in the schema): no credential sits in a file at rest.

File names follow the rule seen on every real upload: ``sequencialTransacao`` left-padded with
zeros to 20 digits, ``_``, the hash (upper case), ``.xml``.
"""

import copy
import re
from dataclasses import dataclass

from lxml import etree

from gateway.message import hashing
from gateway.message.services import ANS_NS, MENSAGEM_TISS

_A = f"{{{ANS_NS}}}"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
PRESTADOR = "prestadorParaOperadora"
OPERADORA = "operadoraParaPrestador"


@dataclass(frozen=True)
class Forma:
    """Where one ``*WS`` body goes in a ``mensagemTISS``."""

    ws: str  # the *WS root element
    corpo_ws: str  # its body element
    lado: str  # PRESTADOR or OPERADORA
    corpo_arquivo: str  # the body element's name in the file


FORMAS = (
    Forma("loteGuiasWS", "loteGuias", PRESTADOR, "loteGuias"),
    Forma("protocoloRecebimentoWS", "recebimentoLote", OPERADORA, "recebimentoLote"),
    Forma("situacaoProtocoloWS", "situacaoProtocolo", OPERADORA, "situacaoProtocolo"),
    Forma("demonstrativoRetornoWS", "demonstrativoRetorno", OPERADORA, "demonstrativosRetorno"),
)
FORMA_DO_WS = {f.ws: f for f in FORMAS}
FORMA_DO_ARQUIVO = {(f.lado, f.corpo_arquivo): f for f in FORMAS}
_NOME = re.compile(r"([0-9]{20})_([0-9A-Fa-f]{32})\.xml")


class FormaDesconhecida(ValueError):
    """A document with no file form the gateway knows (said in Portuguese, for the user)."""


def nome_arquivo(sequencial: str, hash_: str) -> str:
    """The file's name by the TISS rule: 18636 and its hash -> ``00000000000000018636_<HASH>.xml``."""
    if not sequencial.isdigit() or len(sequencial) > 20:
        raise ValueError(f"sequencialTransacao {sequencial!r} não cabe no nome do arquivo (20 dígitos)")
    if not re.fullmatch(r"[0-9A-Fa-f]{32}", hash_):
        raise ValueError(f"hash {hash_!r} não é um MD5")
    return f"{sequencial.zfill(20)}_{hash_.upper()}.xml"


def ler_nome(nome: str) -> tuple[str, str] | None:
    """(sequencial without its padding, hash in lower case) of a name by the rule; None otherwise."""
    found = _NOME.fullmatch(nome)
    if found is None:
        return None
    return found[1].lstrip("0") or "0", found[2].lower()


def para_arquivo(ws: etree._Element) -> etree._Element:
    """The ``mensagemTISS`` of a ``*WS`` root (a new tree; without loginSenhaPrestador, signature
    and hash value: the caller hashes it, and signs it where the operator wants it)."""
    forma = FORMA_DO_WS.get(etree.QName(ws).localname)
    cabecalho, corpo = ws.find(f"{_A}cabecalho"), ws.find(f"{_A}{forma.corpo_ws}") if forma else None
    if forma is None or cabecalho is None or corpo is None:
        raise FormaDesconhecida(f"{etree.QName(ws).localname} não tem forma de arquivo no gateway")
    root = etree.Element(f"{_A}{MENSAGEM_TISS}",
                         nsmap={k: v for k, v in ws.nsmap.items() if v != DSIG_NS} or {"ans": ANS_NS})
    cabecalho = copy.deepcopy(cabecalho)
    for login in cabecalho.findall(f"{_A}loginSenhaPrestador"):
        cabecalho.remove(login)
    cabecalho.tail = None
    root.append(cabecalho)
    lado = etree.SubElement(root, f"{_A}{forma.lado}")
    body = copy.deepcopy(corpo)
    body.tag, body.tail = f"{_A}{forma.corpo_arquivo}", None
    lado.append(body)
    etree.SubElement(etree.SubElement(root, f"{_A}epilogo"), f"{_A}hash")
    return root


def para_ws(mensagem: etree._Element) -> etree._Element:
    """The ``*WS`` of a ``mensagemTISS`` root (a new tree, hash element empty); FormaDesconhecida
    for a transaction the gateway has no web-service form of."""
    cabecalho = mensagem.find(f"{_A}cabecalho")
    lado = next((c for c in mensagem.iterchildren(etree.Element)
                 if etree.QName(c).localname in (PRESTADOR, OPERADORA)), None)
    corpo = next(lado.iterchildren(etree.Element), None) if lado is not None else None
    forma = FORMA_DO_ARQUIVO.get((etree.QName(lado).localname, etree.QName(corpo).localname)) \
        if lado is not None and corpo is not None else None
    if forma is None or cabecalho is None or corpo is None:
        nome = etree.QName(corpo).localname if corpo is not None else "?"
        raise FormaDesconhecida(f"o arquivo traz {nome}, transação que o gateway não lê em arquivo")
    ws = etree.Element(f"{_A}{forma.ws}", nsmap={k: v for k, v in mensagem.nsmap.items() if v != DSIG_NS}
                       or {"ans": ANS_NS})
    ws.append(copy.deepcopy(cabecalho))
    body = copy.deepcopy(corpo)
    body.tag, body.tail = f"{_A}{forma.corpo_ws}", None
    ws.append(body)
    etree.SubElement(ws, f"{_A}hash")
    return ws


def transacao(mensagem: etree._Element) -> str | None:
    """The body element's name of a ``mensagemTISS`` (e.g. ``demonstrativosRetorno``)."""
    for lado in mensagem.iterchildren(f"{_A}{PRESTADOR}", f"{_A}{OPERADORA}"):
        corpo = next(lado.iterchildren(etree.Element), None)
        return etree.QName(corpo).localname if corpo is not None else None
    return None


def escrever(root: etree._Element, variante: str, encoding: str) -> bytes:
    """``root`` hashed in ``variante`` and written in ``encoding`` with its declaration."""
    return hashing.rewrite(etree.ElementTree(root), root, variante, encoding)
