"""Hash vectors: the declared-encoding rule and the variants seen in the wild."""

import hashlib

import pytest
from lxml import etree

from gateway.message import hashing, reader

ANS = "http://www.ans.gov.br/padroes/tiss/schemas"


def ws(values: dict[str, str], hash_value: str, encoding: str = "ISO-8859-1",
       comment: str = "") -> bytes:
    """A minimal *WS-shaped document (not schema-valid; the hash does not care)."""
    leaves = "".join(f"<ans:{k}>{v}</ans:{k}>" for k, v in values.items())
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n'
            f'<ans:loteGuiasWS xmlns:ans="{ANS}">\n  <!-- {comment} -->\n'
            f"  <ans:cabecalho>\n    {leaves}\n  </ans:cabecalho>\n"
            f"  <ans:hash>{hash_value}</ans:hash>\n</ans:loteGuiasWS>\n")
    return text.encode(encoding)


def md5(text: str, encoding: str) -> str:
    return hashlib.md5(text.encode(encoding)).hexdigest()


VALUES = {"nome": "João da Conceição", "numero": "00123", "obs": "ação é ótima"}
JOINED = "João da Conceição00123ação é ótima"


def check(data: bytes, policy=hashing.STRICT) -> hashing.HashCheck:
    message = reader.read(data)
    return hashing.check(message.root, message.encoding, policy)


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-8"])
def test_declared_encoding_rule(encoding: str) -> None:
    expected = md5(JOINED, encoding)
    result = check(ws(VALUES, expected, encoding))
    assert result.computed == expected
    assert result.variant == "declared" and result.accepted


def test_latin1_and_utf8_hashes_differ_with_accents() -> None:
    assert check(ws(VALUES, "x", "ISO-8859-1")).computed != check(ws(VALUES, "x", "UTF-8")).computed


def test_upper_case_hash_is_accepted() -> None:
    result = check(ws(VALUES, md5(JOINED, "iso-8859-1").upper()))
    assert result.accepted and result.variant == "declared"


def test_comments_and_indentation_do_not_count() -> None:
    values = {"nome": "Jo<!-- nota -->ão", "numero": "1"}
    expected = md5("João1", "iso-8859-1")
    assert check(ws(values, expected, comment="comentário")).accepted


def test_cdata_counts_as_text() -> None:
    assert check(ws({"a": "<![CDATA[x&y]]>", "b": "&amp;z"}, md5("x&y&z", "utf-8"), "UTF-8")).accepted


def test_whitespace_inside_values_is_kept() -> None:
    expected = md5("  a  b ", "iso-8859-1")
    assert check(ws({"a": "  a ", "b": " b "}, expected)).accepted


@pytest.mark.parametrize(("variant", "text", "encoding", "declared"), [
    ("utf-8", JOINED, "utf-8", "ISO-8859-1"),
    ("iso-8859-1", JOINED, "iso-8859-1", "UTF-8"),
    ("trimmed", "João da Conceição00123ação é ótima", "iso-8859-1", "ISO-8859-1"),
])
def test_variants_are_recognised_but_refused_when_strict(variant, text, encoding, declared) -> None:
    values = dict(VALUES)
    if variant == "trimmed":
        values = {k: f"  {v}\n" for k, v in VALUES.items()}
    found = md5(text, encoding)
    strict = check(ws(values, found, declared))
    assert strict.variant == variant
    assert not strict.accepted
    lenient = check(ws(values, found, declared), hashing.HashPolicy.of([variant]))
    assert lenient.accepted


def test_wrong_and_missing_hash() -> None:
    result = check(ws(VALUES, "0" * 32))
    assert result.variant is None and not result.accepted
    no_hash = ws(VALUES, "x").replace(b"<ans:hash>x</ans:hash>", b"")
    assert check(no_hash).found is None


def test_signature_is_left_out() -> None:
    data = ws(VALUES, md5(JOINED, "iso-8859-1")).replace(
        b"</ans:loteGuiasWS>",
        b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:V>abc</ds:V></ds:Signature>'
        b"</ans:loteGuiasWS>")
    assert check(data).accepted


def test_mensagem_tiss_epilogo_hash() -> None:
    doc = (f'<?xml version="1.0" encoding="ISO-8859-1"?><ans:mensagemTISS xmlns:ans="{ANS}">'
           "<ans:cabecalho><ans:a>Antônia</ans:a></ans:cabecalho>"
           f"<ans:epilogo><ans:hash>{md5('Antônia', 'latin-1')}</ans:hash></ans:epilogo>"
           "</ans:mensagemTISS>").encode("latin-1")
    assert check(doc).accepted


@pytest.mark.parametrize("variant", sorted(hashing.VARIANTS))
@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-8"])
def test_rewrite_produces_a_hash_that_checks(variant: str, encoding: str) -> None:
    message = reader.read(ws(VALUES, "stale", "ISO-8859-1"))
    data = hashing.rewrite(message.tree, message.root, variant, encoding)
    assert data.startswith(f"<?xml version='1.0' encoding='{encoding}'?>".encode())
    again = check(data, hashing.LENIENT)
    assert again.accepted
    expected_variant = hashing.compute(reader.read(data).root, encoding, variant)
    assert again.found == expected_variant


def test_rewrite_without_hash_element_fails() -> None:
    tree = etree.ElementTree(etree.fromstring(f'<a xmlns="{ANS}"><b>1</b></a>'))
    with pytest.raises(ValueError):
        hashing.rewrite(tree, tree.getroot())


def test_fast_path_agrees_with_exact_rule_on_compact_and_indented_documents() -> None:
    from tests.factory import build_lote

    compact = build_lote("sp-sadt", 3)
    message = reader.read(compact)
    exact = hashing.compute(message.root, message.encoding)
    fast = hashing.check(message.root, message.encoding, data=compact)
    assert fast.accepted and fast.computed == exact
    indented_tree = reader.read(compact).tree
    etree.indent(indented_tree)
    indented = etree.tostring(indented_tree, encoding="ISO-8859-1", xml_declaration=True)
    again = reader.read(indented)
    assert hashing.check(again.root, again.encoding, data=indented).accepted


def test_compact_document_with_a_character_the_encoding_lacks() -> None:
    """&#8364; in a compact ISO-8859-1 message: the fast path cannot write it, the exact rule can
    (as a character reference); checking must not raise."""
    leaves = "<ans:nome>Pre&#8364;o</ans:nome><ans:numero>1</ans:numero>"
    expected = hashlib.md5("Pre&#8364;o1".encode("iso-8859-1")).hexdigest()
    data = (f'<?xml version="1.0" encoding="ISO-8859-1"?><ans:loteGuiasWS xmlns:ans="{ANS}">'
            f"<ans:cabecalho>{leaves}</ans:cabecalho><ans:hash>{expected}</ans:hash></ans:loteGuiasWS>").encode()
    message = reader.read(data)
    check = hashing.check(message.root, message.encoding, data=data)
    assert check.accepted and check.computed == expected


def test_hash_over_all_text_including_indentation_is_refused() -> None:
    data = ws(VALUES, "placeholder")
    message = reader.read(data)
    all_text = "".join(t for c in message.root if isinstance(c.tag, str) and not c.tag.endswith("hash")
                       for t in c.itertext())
    assert all_text != JOINED  # indentation is in there
    forged = data.replace(b"placeholder", md5(all_text, "iso-8859-1").encode())
    message = reader.read(forged)
    assert not hashing.check(message.root, message.encoding, data=forged).accepted
