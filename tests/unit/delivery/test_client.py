"""The operator client (gateway.delivery.client): one endpoint per operator and version, the version
read from the prepared bytes, a WSDL that points at another version's address refused, and the
posting itself against a local operator (HTTP and HTTPS)."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.config import Config, Operadora
from gateway.delivery.client import (
    OperatorClient,
    OperatorClients,
    TransportError,
    VersaoSemEndereco,
    padrao,
    soap_envelope,
)
from gateway.security import pki
from tests.factory import Party, build_lote

PASA = "331988"


def test_padrao_is_read_from_the_prepared_bytes() -> None:
    for version in ("4.02.00", "4.03.00"):
        assert padrao(build_lote("consulta", 2, version=version, party=Party())) == version
    assert padrao(b"<soap:Fault><faultstring>x</faultstring></soap:Fault>") is None
    late = b"<ans:x>" + b" " * 40_000 + b"<ans:Padrao>4.02.00</ans:Padrao></ans:x>"  # not in the head
    assert padrao(late) == "4.02.00"


def _clients() -> OperatorClients:
    pasa = Operadora(PASA, "PASA", "pasa", enderecos={"4.02.00": "http://ws/tiss/v4_02_00/",
                                                      "4.03.00": "http://ws/tiss/v4_03_00"}, timeout_s=3)
    return OperatorClients(Config(operadoras={PASA: pasa}))


def test_one_client_per_operator_and_version_at_that_versions_address() -> None:
    clients = _clients()
    v402, v403 = clients.client(PASA, "4.02.00"), clients.client(PASA, "4.03.00")
    assert (v402.endpoint, v402.versao) == ("http://ws/tiss/v4_02_00", "4.02.00")
    assert (v403.endpoint, v403.versao, v403.timeout) == ("http://ws/tiss/v4_03_00", "4.03.00", 3)
    assert clients.client(PASA, "4.02.00") is v402  # its WSDLs are read once per process
    with pytest.raises(VersaoSemEndereco, match=r"não tem endereço para a versão 4\.01\.00"):
        clients.client(PASA, "4.01.00")
    clients.close()


@pytest.mark.parametrize(("address", "ok"), [
    ("http://ws/tiss/v4_02_00/tissLoteGuias", True),
    ("http://ws/tiss/v4_03_00/tissLoteGuias", False),  # every 4.02.00 message would be refused there
    ("http://ws/services/LoteGuias", True),  # no version in the path: the operator's own scheme
])
def test_a_wsdl_pointing_at_another_versions_address_is_refused(address: str, ok: bool) -> None:
    client = OperatorClient("http://ws/tiss/v4_02_00", timeout=1, versao="4.02.00")
    if ok:
        client._check_version("tissLoteGuias", address)
    else:
        with pytest.raises(TransportError, match=r"da versão 4\.03\.00: corrija o endereço da versão 4\.02"):
            client._check_version("tissLoteGuias", address)
    client.close()


# --- posting: a local operator over HTTP and HTTPS -----------------------------------------------

_WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:t" targetNamespace="urn:t" name="{service}">
  <message name="m"><part name="p" type="xsd:string"/></message>
  <portType name="pt"><operation name="op"><input message="tns:m"/><output message="tns:m"/></operation>
  </portType>
  <binding name="b" type="tns:pt">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="op"><soap:operation soapAction=""/><input><soap:body use="literal"/></input>
    <output><soap:body use="literal"/></output></operation></binding>
  <service name="{service}"><port name="p" binding="tns:b"><soap:address location="{address}"/></port>
  </service>
</definitions>"""
ANSWER = b"<ok/>"


class _Operator(BaseHTTPRequestHandler):
    """GET <service>?wsdl: its WSDL (``closed``'s address is a port nobody listens on); POST: ANSWER
    (``redirect`` answers with a 307)."""

    protocol_version = "HTTP/1.1"  # keeps connections alive
    server: _Server

    def do_GET(self) -> None:
        service = self.path.split("?")[0].rsplit("/", 1)[1]
        base = self.server.closed if service == "closed" else self.server.base
        self._reply(200, _WSDL.format(service=service, address=f"{base}/{service}").encode(), "text/xml")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((self.path, body, self.client_address[1]))
        if self.path.endswith("/redirect"):
            self.send_response(307)
            self.send_header("Location", f"{self.server.base}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._reply(200, ANSWER, "text/xml; charset=UTF-8")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    base = ""
    closed = ""
    posts: list[tuple[str, bytes, int]]


@contextmanager
def _operator(tls: pki.Leaf | None = None) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Operator)
    server.posts = []
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as directory:
            tls.save(directory, "server")
            context.load_cert_chain(Path(directory) / "server-cert.pem", Path(directory) / "server-key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    server.base = f"{scheme}://127.0.0.1:{server.server_address[1]}/tiss/v4_03_00"
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        server.closed = f"http://127.0.0.1:{unused.getsockname()[1]}/tiss/v4_03_00"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_exact_bytes_go_in_an_envelope_over_one_kept_connection() -> None:
    document = build_lote("consulta", 2, party=Party())
    with _operator() as server:
        client = OperatorClient(server.base, timeout=5, versao="4.03.00")
        answers = [client.call("tissLoteGuias", document) for _ in range(3)]
        client.close()
    assert [(a.status, a.body, a.content_type) for a in answers] == [
        (200, ANSWER, "text/xml; charset=UTF-8")] * 3
    assert [(path, body) for path, body, _port in server.posts] == [
        ("/tiss/v4_03_00/tissLoteGuias", soap_envelope(document))] * 3
    assert len({port for _path, _body, port in server.posts}) == 1


def test_the_environment_is_read_once_per_address_not_on_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests reads the proxies, the CA bundle and .netrc from the environment on every call
    (0.4 ms of a post's CPU): the client takes them once, when it first posts to an address."""
    reads: list[str] = []
    merge = requests.Session.merge_environment_settings

    def counted(self: requests.Session, url: str | None, *args: Any) -> dict[str, Any]:
        reads.append(url or "")
        return merge(self, url, *args)

    monkeypatch.setattr(requests.Session, "merge_environment_settings", counted)
    with _operator() as server:
        client = OperatorClient(server.base, timeout=5)
        client.call("tissLoteGuias", b"<a/>")
        first = len(reads)
        for _ in range(3):
            client.call("tissLoteGuias", b"<a/>")
        client.close()
    assert first >= 1 and len(reads) == first


def test_a_redirect_is_the_answer_the_lote_is_not_posted_again() -> None:
    """An operator's 307 is an answer to judge (and retry): the lote goes only where its WSDL says."""
    with _operator() as server:
        client = OperatorClient(server.base, timeout=5)
        answer = client.call("redirect", b"<a/>")
        client.close()
    assert answer.status == 307
    assert [path for path, _body, _port in server.posts] == ["/tiss/v4_03_00/redirect"]


def test_https_is_verified_with_the_ca_bundle_of_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    authority = pki.new_authority("AC Operadora Teste")
    (tmp_path / "ca.pem").write_bytes(authority.cert_pem)
    with _operator(tls=authority.issue_server("127.0.0.1")) as server:
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        with pytest.raises(TransportError, match=r"(?i)certificate"):  # not in certifi's bundle
            OperatorClient(server.base, timeout=5).call("tissLoteGuias", b"<a/>")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
        client = OperatorClient(server.base, timeout=5)
        assert client.call("tissLoteGuias", b"<a/>").body == ANSWER
        client.close()


def test_an_operator_that_refuses_the_connection_is_a_transport_error() -> None:
    with _operator() as server:
        client = OperatorClient(server.base, timeout=5)
        with pytest.raises(TransportError, match=r"(?i)refused"):
            client.call("closed", b"<a/>")
        client.close()
