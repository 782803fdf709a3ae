"""gateway.soap.app in process: what a WSDL's soap:address is built from, the Content-Type a POST
must have, and what a Body may hold (a receiver that records what it is given stands for the
pipeline). Over HTTP with a real gateway: tests/process/test_hostile.py."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from wsgiref.util import setup_testing_defaults

import pytest
from lxml import etree

from gateway.message.faults import Reply
from gateway.message.findings import Finding
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SOAP11_NS
from gateway.soap.app import TissWsgi
from tests.factory import build_lote

NS = {"ans": ANS_NS, "soap": SOAP11_NS, "wsdlsoap": "http://schemas.xmlsoap.org/wsdl/soap/"}


@dataclass
class Recorder:
    """A Receiver that answers nothing itself and records the refusals it is asked to store."""

    refused: list[tuple[str, bytes, tuple[Finding, ...]]] = field(default_factory=list)
    handled: int = 0

    def handle(self, ctx, service, body) -> Reply:
        self.handled += 1
        return Reply(b"<ok/>", "UTF-8")

    def refused_oversize(self, environ: dict, length: int) -> None:
        self.refused.append(("oversize", b"", ()))

    def refused_unread(self, environ: dict, data: bytes, code: str, *, client: bool = True,
                       findings: Sequence[Finding] = ()) -> None:
        self.refused.append((code, data, tuple(findings)))


@pytest.fixture
def app(registry: SchemaRegistry) -> tuple[TissWsgi, Recorder]:
    recorder = Recorder()
    return TissWsgi(recorder, registry, max_bytes=1024 * 1024), recorder


def call(app: TissWsgi, method: str, path: str, data: bytes = b"", **environ) -> tuple[str, bytes]:
    env: dict = {}
    setup_testing_defaults(env)
    env.update({"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(data)),
                "wsgi.input": io.BytesIO(data), "REMOTE_ADDR": "10.1.2.3"})
    path, _, query = path.partition("?")
    env["PATH_INFO"], env["QUERY_STRING"] = path, query
    env.update(environ)
    seen: dict[str, str] = {}
    body = b"".join(app(env, lambda status, headers, exc_info=None: seen.setdefault("status", status)))
    return seen["status"], body


def address(app: TissWsgi, **environ) -> str:
    status, body = call(app, "GET", "/tiss/v4_03_00/tissLoteGuias?wsdl", **environ)
    assert status.startswith("200")
    (location,) = etree.fromstring(body).xpath("//wsdlsoap:address/@location", namespaces=NS)
    return location


# --- soap:address (issue 16, finding 7) -------------------------------------------------------------

def test_forwarded_headers_never_set_the_address(app) -> None:
    wsgi, _ = app
    location = address(wsgi, HTTP_HOST="evil.example", HTTP_X_FORWARDED_PROTO="javascript",
                       HTTP_X_FORWARDED_HOST="other.example")
    assert location == "http://evil.example/tiss/v4_03_00/tissLoteGuias"


def test_the_scheme_is_the_one_gunicorn_set(app) -> None:
    """gunicorn sets wsgi.url_scheme to https only for a peer in forwarded_allow_ips (the config's
    trusted_proxies) that said X-Forwarded-Proto: https, or for its own TLS."""
    wsgi, _ = app
    assert address(wsgi, HTTP_HOST="gw.example:8443", **{"wsgi.url_scheme": "https"}) \
        == "https://gw.example:8443/tiss/v4_03_00/tissLoteGuias"
    assert address(wsgi, HTTP_HOST="gw.example", **{"wsgi.url_scheme": "javascript"}).startswith("http://gw")


@pytest.mark.parametrize("host", ['evil.example"><x', "javascript:alert(1)", "a b", "evil.example/x",
                                  "user@evil.example", "-bad.example", "x" * 64 + ".example", "gw:99999x"])
def test_a_host_header_that_is_not_a_host_is_not_used(app, host: str) -> None:
    wsgi, _ = app
    assert address(wsgi, HTTP_HOST=host, SERVER_NAME="10.0.0.5", SERVER_PORT="8080") \
        == "http://10.0.0.5:8080/tiss/v4_03_00/tissLoteGuias"


@pytest.mark.parametrize("host", ["gw.example", "gw.example:8080", "127.0.0.1:8080", "[::1]:8080",
                                  "tiss-gw.hospital.example.", "localhost"])
def test_host_names_and_addresses_are_used(app, host: str) -> None:
    wsgi, _ = app
    assert address(wsgi, HTTP_HOST=host) == f"http://{host}/tiss/v4_03_00/tissLoteGuias"


def test_public_base_url_wins(registry) -> None:
    wsgi = TissWsgi(Recorder(), registry, max_bytes=1024, public_base_url="https://tiss.example/gw/")
    assert address(wsgi, HTTP_HOST="evil.example", **{"wsgi.url_scheme": "http"}) \
        == "https://tiss.example/gw/tiss/v4_03_00/tissLoteGuias"


# --- Content-Type (issue 16, finding 5) -------------------------------------------------------------

LOTE = build_lote("sp-sadt", 1, envelope=True)


def fault_of(body: bytes) -> tuple[str, str]:
    root = etree.fromstring(body)
    return (root.findtext(".//ans:tissFault", namespaces=NS),
            root.findtext("soap:Body/soap:Fault/faultstring", namespaces=NS))


@pytest.mark.parametrize(("content_type", "expected"), [
    (None, "Requisição sem Content-Type"),
    ("application/json", "Content-Type application/json não é aceito"),
    ("application/xml", "Content-Type application/xml não é aceito"),
    ("application/soap+xml; charset=utf-8", "application/soap+xml é o do SOAP 1.2"),
    ("multipart/related; type=text/xml", "multipart/related não é aceito"),
])
def test_what_is_not_text_xml_is_415_with_a_tiss_fault(app, content_type: str | None, expected: str) -> None:
    wsgi, recorder = app
    environ = {"CONTENT_TYPE": content_type} if content_type is not None else {}
    status, body = call(wsgi, "POST", "/tiss/v4_03_00/tissLoteGuias", LOTE, **environ)
    assert status == "415 Unsupported Media Type"
    found, text = fault_of(body)
    assert found == "SchemaInvalido" and expected in text
    assert recorder.handled == 0
    ((code, stored, findings),) = recorder.refused
    assert code == "5001" and stored == LOTE and findings[0].message == text


@pytest.mark.parametrize("content_type", ["text/xml", "text/xml; charset=utf-8",
                                          'TEXT/XML; Charset="ISO-8859-1"', "text/xml;charset=latin1",
                                          "text/xml; charset=us-ascii"])
def test_text_xml_is_taken(app, content_type: str) -> None:
    wsgi, recorder = app
    status, _body = call(wsgi, "POST", "/tiss/v4_03_00/tissLoteGuias", LOTE, CONTENT_TYPE=content_type)
    assert status.startswith("200") and recorder.handled == 1 and not recorder.refused


@pytest.mark.parametrize("charset", ["utf-16", "windows-1252"])
def test_a_charset_tiss_does_not_take_is_a_fault(app, charset: str) -> None:
    wsgi, recorder = app
    status, body = call(wsgi, "POST", "/tiss/v4_03_00/tissLoteGuias", LOTE,
                        CONTENT_TYPE=f"text/xml; charset={charset}")
    assert status == "500 Internal Server Error"
    found, text = fault_of(body)
    assert found == "SchemaInvalido" and f"Codificação {charset} informada no Content-Type" in text
    assert recorder.handled == 0 and recorder.refused[0][0] == "5001"


# --- the bytes and the Body ---------------------------------------------------------------------------

def test_two_requests_in_one_body_are_refused(app) -> None:
    wsgi, recorder = app
    bare = build_lote("sp-sadt", 1, encoding="UTF-8").split(b"?>", 1)[1]
    data = (f'<s:Envelope xmlns:s="{SOAP11_NS}"><s:Body>'.encode() + bare + bare + b"</s:Body></s:Envelope>")
    status, body = call(wsgi, "POST", "/tiss/v4_03_00/tissLoteGuias", data, CONTENT_TYPE="text/xml")
    assert status.startswith("500")
    assert "mais de um elemento (loteGuiasWS e loteGuiasWS)" in fault_of(body)[1]
    assert recorder.handled == 0 and recorder.refused[0][0] == "5001"


@pytest.mark.parametrize(("data", "expected"), [
    (LOTE.decode("latin-1").replace('encoding="ISO-8859-1"', 'encoding="UTF-16"').encode("utf-16"),
     "Mensagem codificada em UTF-16"),
    (LOTE.decode("latin-1").encode("utf-8"), "declara ISO-8859-1, mas seus bytes são UTF-8"),
], ids=["utf-16", "utf-8-declared-latin1"])
def test_bytes_tiss_does_not_take_are_refused(app, data: bytes, expected: str) -> None:
    wsgi, recorder = app
    status, body = call(wsgi, "POST", "/tiss/v4_03_00/tissLoteGuias", data, CONTENT_TYPE="text/xml")
    assert status.startswith("500")
    assert expected in fault_of(body)[1]
    assert recorder.handled == 0 and recorder.refused[0][0] == "5001"
