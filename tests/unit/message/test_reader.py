"""Hostile and broken input: every case is a finding with a Table 38 code, never an exception."""

import pytest
from lxml import etree

from gateway.message import reader
from gateway.message.reader import MessageError
from gateway.message.services import SERVICE_BY_NAME
from gateway.message.validation import validate

ANS = "http://www.ans.gov.br/padroes/tiss/schemas"

XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<ans:loteGuiasWS xmlns:ans="' + ANS.encode() + b'"><ans:a>&x;</ans:a></ans:loteGuiasWS>')
BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b']><ans:loteGuiasWS xmlns:ans="' + ANS.encode() + b'">&lol9;</ans:loteGuiasWS>')
PARAMETER_ENTITY = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd">'
                    b"%p;]><r/>")
HOSTILE = {
    "xxe": (XXE, "5002"),
    "billion-laughs": (BILLION_LAUGHS, "5002"),
    "external-parameter-entity": (PARAMETER_ENTITY, "5002"),
    "doctype": (b'<!DOCTYPE a><ans:loteGuiasWS xmlns:ans="' + ANS.encode() + b'"/>', "5002"),
    "garbage": (bytes(range(256)) * 4, "5002"),
    "empty": (b"", "5002"),
    "blank": (b"  \n ", "5002"),
    "truncated": (b'<?xml version="1.0"?><ans:loteGuiasWS xmlns:ans="' + ANS.encode() + b'"><ans:cab',
                  "5002"),
    "unknown-encoding": (b'<?xml version="1.0" encoding="x-nonsense"?><a/>', "5002"),
    "wrong-namespace": (b'<loteGuiasWS xmlns="http://example.com/tiss"><cabecalho/></loteGuiasWS>', "5001"),
    "not-tiss": (b"<html><body>oi</body></html>", "5001"),
    "soap12": (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>',
               "5001"),
    "empty-body": (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>',
                   "5001"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_a_finding(name: str) -> None:
    data, code = HOSTILE[name]
    report = validate(data)
    assert not report.valid
    assert [f.code for f in report.findings] == [code]
    assert report.findings[0].message
    assert "root:" not in report.findings[0].message  # /etc/passwd content never read


def test_oversize_is_refused_before_parsing() -> None:
    data = b"<a>" + b"x" * 2000 + b"</a>"
    with pytest.raises(MessageError) as caught:
        reader.read(data, max_bytes=1000)
    assert caught.value.finding.code == "5002"
    assert "1000" in caught.value.finding.message


def test_truncated_reports_a_line() -> None:
    data = b'<?xml version="1.0"?>\n<a>\n<b>\n'
    report = validate(data)
    assert report.findings[0].line is not None


def test_missing_version_is_5028() -> None:
    data = (b'<ans:loteGuiasWS xmlns:ans="' + ANS.encode() + b'"><ans:cabecalho><ans:Padrao>9.99.99'
            b"</ans:Padrao></ans:cabecalho></ans:loteGuiasWS>")
    report = validate(data)
    assert [f.code for f in report.findings] == ["5028"]
    assert report.version == "9.99.99"
    assert report.kind == "loteGuiasWS"


# --- what a web service's Body must hold (gateway.soap asks before dispatching) -------------------

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
LOTE = SERVICE_BY_NAME["tissLoteGuias"]


def element(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


@pytest.mark.parametrize(("xml", "expected"), [
    (f'<ans:mensagemTISS xmlns:ans="{ANS}"/>',
     "mensagemTISS é o formato de arquivo do TISS (envio ou upload de arquivo XML), não o de web "
     "service: o web service tissLoteGuias recebe o elemento loteGuiasWS (cabecalho, corpo e hash, "
     "sem epilogo) como filho direto do soap:Body."),
    (f'<s:Envelope xmlns:s="{SOAP}"><s:Body><ans:loteGuiasWS xmlns:ans="{ANS}"/></s:Body></s:Envelope>',
     "Mensagem encapsulada duas vezes: loteGuiasWS veio dentro de outro Envelope SOAP e deve ser o "
     "filho direto do soap:Body, sem elemento de operação nem outro envelope em volta."),
    (f'<op:tissLoteGuias_Operation xmlns:op="urn:x"><ans:loteGuiasWS xmlns:ans="{ANS}"/>'
     "</op:tissLoteGuias_Operation>",
     "Mensagem encapsulada duas vezes: loteGuiasWS veio dentro do elemento {urn:x}tissLoteGuias_Operation"),
    (f'<ans:loteGuiasWS xmlns:ans="{ANS}"><ans:loteGuiasWS><ans:cabecalho/></ans:loteGuiasWS>'
     "</ans:loteGuiasWS>",
     "passe só os filhos de loteGuiasWS (cabecalho, corpo e hash)."),
    (f'<ans:protocoloRecebimentoWS xmlns:ans="{ANS}"/>',
     "protocoloRecebimentoWS é a resposta do web service tissLoteGuias, não uma requisição"),
    (f'<s:Fault xmlns:s="{SOAP}"/>', "O soap:Body traz um soap:Fault"),
    ('<pedido xmlns="urn:outro"/>',
     "O soap:Body traz o elemento {urn:outro}pedido, que não é uma requisição TISS: o web service "
     f"tissLoteGuias recebe o elemento loteGuiasWS, no namespace {ANS}."),
], ids=["mensagemTISS", "envelope-twice", "operation-wrapper", "ws-in-ws", "response", "fault", "foreign"])
def test_body_refusals_say_what_was_wrong(xml: str, expected: str) -> None:
    finding = reader.request_refusal(element(xml), LOTE)
    assert finding is not None and finding.code == "5001"
    assert expected in finding.message


def test_any_request_element_is_for_the_body_to_take() -> None:
    """Another service's request is refused later (gateway.message.faults.wrong_service)."""
    for kind in ("loteGuiasWS", "solicitacaoStatusProtocoloWS"):
        assert reader.request_refusal(element(f'<ans:{kind} xmlns:ans="{ANS}"><ans:cabecalho/></ans:{kind}>'),
                                      LOTE) is None


@pytest.mark.parametrize(("xml", "expected"), [
    (f'<ans:mensagemTISS xmlns:ans="{ANS}"/>', "mensagemTISS é o formato de arquivo"),
    (f'<ans:loteGuiasWS xmlns:ans="{ANS}"/>',
     "Mensagem loteGuiasWS sem Envelope SOAP 1.1: o web service tissLoteGuias recebe o elemento "
     "loteGuiasWS dentro de soap:Envelope/soap:Body."),
    ('<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"/>', "Envelope SOAP 1.2 não é aceito"),
    ("<html/>", "Envelope SOAP 1.1 ausente: a raiz do documento é html"),
])
def test_documents_without_a_soap_11_envelope(xml: str, expected: str) -> None:
    finding = reader.unenveloped_refusal(element(xml), LOTE)
    assert finding.code == "5001" and expected in finding.message


def test_without_a_service_the_texts_name_the_rule() -> None:
    finding = reader.request_refusal(element(f'<ans:mensagemTISS xmlns:ans="{ANS}"/>'), None)
    assert finding is not None
    assert "os web services TISS recebem o elemento *WS do serviço (por exemplo loteGuiasWS)" \
        in finding.message


def test_a_file_wrapped_twice_is_named_when_read() -> None:
    data = (f'<s:Envelope xmlns:s="{SOAP}"><s:Body><op:x xmlns:op="urn:x">'
            f'<ans:loteGuiasWS xmlns:ans="{ANS}"/></op:x></s:Body></s:Envelope>').encode()
    with pytest.raises(MessageError, match="encapsulada duas vezes: loteGuiasWS veio dentro do elemento"):
        reader.read(data)


# --- the encoding of a fault ------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "expected"), [
    (b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>', "ISO-8859-1"),
    (b"<?xml version='1.0' encoding='iso-8859-1'?><a/>", "ISO-8859-1"),
    (b'<?xml version="1.0" encoding="latin1"?><a/>', "ISO-8859-1"),
    (b'<?xml version="1.0" encoding="utf8"?><a/>', "UTF-8"),
    (b'<?xml version="1.0" encoding="UTF-8"?><a/>', "UTF-8"),
    (b'<?xml version="1.0" encoding="windows-1252"?><a/>', "UTF-8"),
    (b'<?xml version="1.0" encoding="US-ASCII"?><a/>', "UTF-8"),
    (b'<?xml version="1.0"?><a/>', "UTF-8"),
    (b"<a/>", "UTF-8"),
])
def test_reply_encoding_of_a_parsed_request(data: bytes, expected: str) -> None:
    assert reader.reply_encoding(data, reader.parse(data)) == expected
    assert reader.reply_encoding(data) == expected  # read from the declaration alone


@pytest.mark.parametrize(("data", "expected"), [
    (b'<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</b>', "ISO-8859-1"),  # malformed
    (b'  \n<?xml version="1.0" encoding="ISO-8859-1"?>', "ISO-8859-1"),
    (b'<?xml version="1.0" encoding="x-nonsense"?><a/>', "UTF-8"),
    (b'\xef\xbb\xbf<?xml version="1.0" encoding="ISO-8859-1"?><a/>', "UTF-8"),  # a UTF-8 BOM wins
    (b"ol\xe1, isto n\xe3o \xe9 XML", "UTF-8"),
    (b"", "UTF-8"),
    (b"<a/>" + b" " * 300 + b'<?xml version="1.0" encoding="ISO-8859-1"?>', "UTF-8"),
])
def test_reply_encoding_of_unreadable_bytes(data: bytes, expected: str) -> None:
    assert reader.reply_encoding(data) == expected


# --- encodings TISS takes (issue 16) -----------------------------------------------------------------

def declaring(encoding: str, text: str = "Ação") -> str:
    return f'<?xml version="1.0" encoding="{encoding}"?><a>{text}</a>'


@pytest.mark.parametrize(("data", "expected"), [
    (declaring("UTF-16").encode("utf-16"), "Mensagem codificada em UTF-16"),
    (declaring("UTF-16LE").encode("utf-16-le"), "UTF-16 ou UTF-32"),
    ("<a>Ação</a>".encode("utf-16-be"), "UTF-16 ou UTF-32"),
    (declaring("UTF-32").encode("utf-32"), "Mensagem codificada em UTF-32"),
    (declaring("windows-1252").encode("cp1252"), "Codificação windows-1252 declarada na mensagem"),
    (declaring("x-nonsense", "a").encode(), "Codificação x-nonsense declarada"),
    (b"\xef\xbb\xbf" + declaring("ISO-8859-1").encode(), "marca de UTF-8 (BOM) mas declara ISO-8859-1"),
    (declaring("ISO-8859-1").encode("utf-8"), "declara ISO-8859-1, mas seus bytes são UTF-8"),
    (declaring("latin1", "nº 3, 2ª via").encode("utf-8"), "declara latin1, mas seus bytes são UTF-8"),
], ids=["utf-16", "utf-16le-no-bom", "utf-16be-undeclared", "utf-32", "windows-1252", "unknown",
        "bom-contradicts", "utf-8-declared-latin1", "utf-8-declared-latin1-alias"])
def test_encodings_tiss_does_not_take_are_refused(data: bytes, expected: str) -> None:
    finding = reader.encoding_refusal(data)
    assert finding is not None and finding.code == "5001", data
    assert expected in finding.message


@pytest.mark.parametrize("data", [
    declaring("ISO-8859-1", "Ação, coração, nº 3, 2ª via, § 1º, Âmbito, àÀ ÿ").encode("latin-1"),
    # one pair of bytes that is a UTF-8 sequence (Ã§ = ç), the others not: ISO-8859-1
    declaring("ISO-8859-1", "A\xc3\xa7ao").encode("latin-1") + "ção".encode("latin-1"),
    declaring("iso-8859-1", "sem acentos").encode("ascii"),
    declaring("UTF-8").encode("utf-8"),
    b"\xef\xbb\xbf" + declaring("UTF-8").encode("utf-8"),
    declaring("US-ASCII", "x").encode("ascii"),
    "<a>Ação</a>".encode(),
], ids=["latin1-accents", "latin1-mixed", "latin1-ascii", "utf-8", "utf-8-bom", "us-ascii", "undeclared"])
def test_encodings_tiss_takes_pass(data: bytes) -> None:
    assert reader.encoding_refusal(data) is None


def test_every_latin1_letter_followed_by_ascii_is_latin1() -> None:
    """No genuine ISO-8859-1 text is taken for UTF-8: each accented letter (0xC0-0xFF) followed by
    a letter or a space, and each symbol 0xA0-0xBF after a digit, is invalid UTF-8."""
    for code in range(0xA0, 0x100):
        for after in ("a", " ", "<"):
            data = declaring("ISO-8859-1", f"1{chr(code)}{after}x").encode("latin-1")
            assert reader.encoding_refusal(data) is None, hex(code)


def test_declared_utf_8_with_latin1_bytes_does_not_parse() -> None:
    with pytest.raises(MessageError) as caught:
        reader.parse(declaring("UTF-8").encode("latin-1"))
    assert caught.value.finding.code == "5002"


@pytest.mark.parametrize(("charset", "refused"), [
    ("utf-8", False), ("UTF8", False), ("ISO-8859-1", False), ("latin1", False), ("us-ascii", False),
    ("utf-16", True), ("windows-1252", True), ("x-nonsense", True)])
def test_content_type_charsets(charset: str, refused: bool) -> None:
    finding = reader.charset_refusal(charset)
    assert (finding is not None) == refused
    if finding is not None:
        assert finding.code == "5001"
        assert f"Codificação {charset} informada no Content-Type" in finding.message


# --- one element in the Body -------------------------------------------------------------------------

def body_of(inner: str) -> tuple[etree._Element, etree._Element]:
    envelope = element(f'<s:Envelope xmlns:s="{SOAP}" xmlns:ans="{ANS}"><s:Body>{inner}</s:Body>'
                       "</s:Envelope>")
    body = envelope[0]
    return body, next(c for c in body if isinstance(c.tag, str))


@pytest.mark.parametrize(("inner", "expected"), [
    ("<ans:loteGuiasWS/><ans:loteGuiasWS/>",
     "O soap:Body traz mais de um elemento (loteGuiasWS e loteGuiasWS): deve conter exatamente uma"),
    ("<ans:loteGuiasWS/><x:outro xmlns:x='urn:x'/>", "mais de um elemento (loteGuiasWS e {urn:x}outro)"),
    ("lixo<ans:loteGuiasWS/>", "O soap:Body traz texto fora da mensagem TISS"),
    ("<ans:loteGuiasWS/>lixo", "O soap:Body traz texto fora da mensagem TISS"),
])
def test_a_body_holds_one_element(inner: str, expected: str) -> None:
    finding = reader.body_refusal(*body_of(inner))
    assert finding is not None and finding.code == "5001"
    assert expected in finding.message


@pytest.mark.parametrize("inner", ["<ans:loteGuiasWS/>",
                                   "\n  <!-- c --><?pi x?><ans:loteGuiasWS/>\n<!-- d -->\n"])
def test_comments_and_blanks_around_the_element_are_fine(inner: str) -> None:
    assert reader.body_refusal(*body_of(inner)) is None
