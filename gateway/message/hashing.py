"""The TISS epílogo hash.

Rule (checked against real files, see TISS-NOTES): MD5 hex of the text of every leaf element, in
document order, comments excluded, encoded in the document's *declared* XML encoding; the hash
element itself (and any signature) left out. Producers in the wild deviate: some always hash
UTF-8, some always ISO-8859-1, some trim values. Those are recognised as named variants so that a
per-operator policy can decide which to accept or emit.
"""

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lxml import etree

from gateway.message.services import ANS_NS

DECLARED = "declared"


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    encoding: str | None  # None: the document's declared encoding
    trim: bool = False


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(DECLARED, None),
        Variant("utf-8", "utf-8"),
        Variant("iso-8859-1", "iso-8859-1"),
        Variant("trimmed", None, trim=True),
        Variant("trimmed-utf-8", "utf-8", trim=True),
        Variant("trimmed-iso-8859-1", "iso-8859-1", trim=True),
    )
}


@dataclass(frozen=True, slots=True)
class HashPolicy:
    """Which variants a receiver accepts. Strict (declared encoding only) unless configured."""

    accepted: frozenset[str] = frozenset({DECLARED})

    @classmethod
    def of(cls, names: Iterable[str]) -> "HashPolicy":
        names = frozenset(names)
        unknown = names - VARIANTS.keys()
        if unknown:
            raise ValueError(f"variantes de hash desconhecidas: {sorted(unknown)}")
        return cls(names | {DECLARED})


STRICT = HashPolicy()
LENIENT = HashPolicy(frozenset(VARIANTS))


@dataclass(frozen=True, slots=True)
class HashCheck:
    found: str | None  # as written in the message
    computed: str  # declared-encoding rule
    variant: str | None  # the variant that reproduces `found`, None if none does
    accepted: bool  # variant is allowed by the policy

    def to_dict(self) -> dict[str, str | None]:
        return {"found": self.found, "computed": self.computed, "variant": self.variant}


_LEAF_TEXT = etree.XPath("descendant-or-self::*[not(*)]/text()", smart_strings=False)
# respostaElegibilidadeWS, protocoloRecebimentoAnexoWS and reciboDocumentosWS name theirs
# ``Signatures`` (plural) in every version's schema.
_SKIPPED = frozenset({f"{{{ANS_NS}}}hash", f"{{{ANS_NS}}}epilogo", f"{{{ANS_NS}}}Signature",
                      f"{{{ANS_NS}}}Signatures", "{http://www.w3.org/2000/09/xmldsig#}Signature"})


def hash_element(root: etree._Element) -> etree._Element | None:
    """The element that carries the hash: ``*WS/hash`` or ``mensagemTISS/epilogo/hash``."""
    for child in root.iterchildren(etree.Element):
        if child.tag == f"{{{ANS_NS}}}hash":
            return child
        if child.tag == f"{{{ANS_NS}}}epilogo":
            return child.find(f"{{{ANS_NS}}}hash")
    return None


def hashed_children(root: etree._Element) -> Iterator[etree._Element]:
    """The children of a message root whose leaves the hash covers (all but hash, epílogo and
    signature)."""
    for child in root.iterchildren(etree.Element):
        if child.tag not in _SKIPPED:
            yield child


def leaf_values(root: etree._Element) -> Iterator[str]:
    """Leaf element text in document order, skipping the hash, epílogo and signature."""
    for child in hashed_children(root):
        yield from _LEAF_TEXT(child)


def compute(root: etree._Element, declared_encoding: str, variant: str = DECLARED,
            values: list[str] | None = None) -> str:
    spec = VARIANTS[variant]
    if values is None:
        values = list(leaf_values(root))
    text = "".join(v.strip() for v in values) if spec.trim else "".join(values)
    encoding = spec.encoding or declared_encoding
    digest = hashlib.md5(text.encode(encoding, "xmlcharrefreplace"), usedforsecurity=False)
    return digest.hexdigest()


_BLANK_BETWEEN_TAGS = re.compile(rb">[ \t\r\n]+<")


def _compact_digest(root: etree._Element, declared_encoding: str, data: bytes) -> str | None:
    """The declared-rule hash in one C-level pass, when the bytes allow it.

    In a document with no whitespace between tags, the text of the hashed children is exactly the
    leaf values (TISS content models hold no mixed content), so libxml2's text serialisation in
    the declared encoding is the rule. Indented documents take the exact per-leaf path.
    """
    start = data.find(etree.QName(root).localname.encode("ascii"))
    if start < 0 or _BLANK_BETWEEN_TAGS.search(data, start):
        return None
    digest = hashlib.md5(usedforsecurity=False)
    try:
        for child in hashed_children(root):
            digest.update(etree.tostring(child, method="text", encoding=declared_encoding,
                                         with_tail=False))
    except (UnicodeError, LookupError):  # a character reference the encoding lacks (&#8364; in
        return None  # ISO-8859-1): the exact path writes it as the rule says (xmlcharrefreplace)
    return digest.hexdigest()


def check(root: etree._Element, declared_encoding: str, policy: HashPolicy = STRICT,
          data: bytes | None = None) -> HashCheck:
    """Compute the hash and find which variant, if any, reproduces the one written.

    ``data``, the bytes ``root`` was parsed from, enables the fast path for compact documents.
    """
    element = hash_element(root)
    found = (element.text or "").strip() if element is not None else None
    if found and data is not None:
        fast = _compact_digest(root, declared_encoding, data)
        if fast is not None and fast == found.lower():
            return HashCheck(found, fast, DECLARED, True)
    values = list(leaf_values(root))
    computed = compute(root, declared_encoding, DECLARED, values)
    if found is None:
        return HashCheck(None, computed, None, False)
    wanted = found.lower()
    if computed == wanted:
        return HashCheck(found, computed, DECLARED, True)
    for name in VARIANTS:
        if name != DECLARED and compute(root, declared_encoding, name, values) == wanted:
            return HashCheck(found, computed, name, name in policy.accepted)
    return HashCheck(found, computed, None, False)


def rewrite(tree: etree._ElementTree, root: etree._Element, variant: str = DECLARED,
            encoding: str | None = None) -> bytes:
    """Set the hash of ``root`` for ``variant`` and serialise ``tree`` in ``encoding``.

    ``encoding`` defaults to the document's declared one; the hash is computed for the encoding
    the document will declare once written.
    """
    element = hash_element(root)
    if element is None:
        raise ValueError("a mensagem não tem elemento hash")
    target = encoding or tree.docinfo.encoding or "UTF-8"
    element.text = compute(root, target, variant)
    return etree.tostring(tree, encoding=target, xml_declaration=True)
