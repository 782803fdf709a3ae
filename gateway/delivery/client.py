"""Calls to an operator's TISS web services with zeep.

zeep reads each service's WSDL once per process (cached: the documents in memory, the parsed
client per service) to find the operator's ``soap:address``; the message itself is posted as the
exact bytes the adapter prepared (hash and signature cover them: zeep must not re-serialise).
One ``requests`` session per operator keeps connections alive between calls.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
import zeep
from zeep.cache import InMemoryCache
from zeep.transports import Transport

from gateway.message.services import SOAP11_NS
from gateway.observability.logs import REQUEST_ID_HEADER, current_request_id

if TYPE_CHECKING:
    from gateway.config import Config

log = logging.getLogger("tiss_gateway.client")
_DECLARATION = re.compile(rb"<\?xml[^>]*\?>\s*")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


class TransportError(Exception):
    """The operator could not be reached or did not answer (connection, timeout, WSDL)."""


@dataclass(frozen=True)
class Answer:
    status: int  # HTTP status
    body: bytes
    content_type: str


def soap_envelope(document: bytes) -> bytes:
    """Wrap a ``*WS`` document in a SOAP 1.1 envelope without touching its bytes.

    The wrapper is ASCII, valid in any encoding TISS uses; the document's XML declaration moves
    to the front so the declared encoding still applies.
    """
    match = _DECLARATION.match(document)
    declaration, rest = (match.group(0).rstrip(), document[match.end():]) if match else (b"", document)
    head = f'<soapenv:Envelope xmlns:soapenv="{SOAP11_NS}"><soapenv:Body>'.encode("ascii")
    tail = b"</soapenv:Body></soapenv:Envelope>"
    return (declaration + b"\n" if declaration else b"") + head + rest.strip() + tail


def declared_encoding(document: bytes) -> str:
    match = _DECLARATION.match(document)
    found = _ENCODING.search(match.group(0)) if match else None
    return found.group(1).decode("ascii") if found else "UTF-8"


class OperatorClient:
    """One operator's web services: ``endpoint`` is the base, e.g. ``http://host/tiss/v4_03_00``."""

    def __init__(self, endpoint: str, *, timeout: float, wsdl_timeout: float | None = None):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.transport = Transport(session=self.session, cache=InMemoryCache(timeout=3600),
                                   timeout=wsdl_timeout or max(timeout, 30.0), operation_timeout=timeout)
        self._addresses: dict[str, str] = {}
        self._lock = threading.Lock()

    def address(self, service: str) -> str:
        """The service's soap:address, read from its WSDL (once per process)."""
        with self._lock:
            found = self._addresses.get(service)
        if found:
            return found
        try:
            client = zeep.Client(f"{self.endpoint}/{service}?wsdl", transport=self.transport)
            binding = next(iter(client.wsdl.services.values())).ports
            address = next(iter(binding.values())).binding_options["address"]
        except (requests.RequestException, zeep.exceptions.Error, StopIteration, KeyError) as exc:
            raise TransportError(f"WSDL de {service} indisponível: {exc}") from exc
        with self._lock:
            self._addresses[service] = address
        return address

    def call(self, service: str, document: bytes) -> Answer:
        """POST the document in a SOAP envelope; any HTTP answer is returned, transport failures raise.
        The request id of the logging context (the provider's request) goes along in X-Request-Id."""
        headers = {"Content-Type": f"text/xml; charset={declared_encoding(document)}", "SOAPAction": '""'}
        request_id = current_request_id()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        address, body = self.address(service), soap_envelope(document)
        if log.isEnabledFor(logging.DEBUG):  # the logs' formatter masks passwords and card numbers
            log.debug("POST %s:\n%s", address, _text(body, headers["Content-Type"]))
        try:
            response = self.transport.post(address, body, headers)
        except requests.RequestException as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if log.isEnabledFor(logging.DEBUG):
            log.debug("resposta %s de %s:\n%s", response.status_code, address,
                      _text(response.content, response.headers.get("Content-Type", "")))
        return Answer(response.status_code, response.content, response.headers.get("Content-Type", ""))

    def close(self) -> None:
        self.session.close()


def _text(body: bytes, content_type: str, limit: int = 65536) -> str:
    """A message for a DEBUG line, decoded by its charset (zeep's own DEBUG logging assumes UTF-8
    and fails on ISO-8859-1: gateway.observability.logs keeps it quiet)."""
    charset = content_type.rpartition("charset=")[2].strip(" \"'") or "utf-8"
    try:
        return body[:limit].decode(charset, "replace")
    except LookupError:
        return body[:limit].decode("utf-8", "replace")


class OperatorClients:
    """One client per operator, shared by the threads of a process (WSDLs read once, connections
    pooled by the requests session)."""

    def __init__(self, config: Config):
        self.config = config
        self._clients: dict[str, OperatorClient] = {}
        self._lock = threading.Lock()

    def client(self, registro_ans: str) -> OperatorClient:
        with self._lock:
            found = self._clients.get(registro_ans)
            if found is None:
                operadora = self.config.operadoras[registro_ans]
                found = self._clients[registro_ans] = OperatorClient(operadora.endpoint or "",
                                                                     timeout=operadora.timeout_s)
            return found

    def warm_up(self, service: str = "tissLoteGuias") -> None:
        """Read each operator's WSDL now, so the first delivery does not pay zeep's parse."""
        for operadora in self.config.operadoras.values():
            if operadora.endpoint:
                # An operator down now: its first delivery finds out and retries.
                with contextlib.suppress(TransportError):
                    self.client(operadora.registro_ans).address(service)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
