"""Hostile and broken input: every case is a finding with a Table 38 code, never an exception."""

import pytest

from gateway.message import reader
from gateway.message.reader import MessageError
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
