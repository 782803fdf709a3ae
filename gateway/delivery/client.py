"""Calls to an operator's TISS web services with zeep.

Operators publish one WSDL per service *and* version: a message goes to the endpoint of its own
``Padrao`` (:meth:`OperatorClients.client` takes both; :func:`padrao` reads it from prepared bytes).
zeep reads each service's WSDL once per process and version (cached: the documents in memory, the
parsed client per service) to find the operator's ``soap:address``; a WSDL whose address names
another version's path (``/v4_02_00/`` for the 4.03.00 WSDL) is refused, so that a message is
never posted where the operator would refuse its version. The message itself is posted as the
exact bytes the adapter prepared (hash and signature cover them: zeep must not re-serialise),
with urllib3: a pool per address keeps connections alive, with the proxy, CA bundle and client
certificate ``requests`` would use there, read from the environment once (``requests`` reads it
on every call: 0.4 of its 1.3 ms of CPU per post). No redirect is followed: a lote is never
re-posted anywhere its operator's WSDL does not name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
import urllib3
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
_PADRAO = re.compile(rb"<(?:[\w.-]+:)?Padrao>\s*([0-9]\.[0-9]{2}\.[0-9]{2})\s*</")
_PADRAO_NO_INICIO = 16384  # the cabeçalho opens every *WS document: Padrao is within its first bytes
_VERSAO_NO_CAMINHO = re.compile(r"/v(\d)_(\d\d)_(\d\d)(?=/|$)")
_POOL_MAXSIZE = 32  # connections kept per host (requests keeps 10): the worker's and relays' threads


class TransportError(Exception):
    """The operator could not be reached or did not answer (connection, timeout, WSDL).
    ``maybe_sent``: the connection was made, so the operator may have the message (a read
    timeout, a connection dropped mid-answer): its outcome is unknown (gateway.delivery.leases)."""

    def __init__(self, message: str, *, maybe_sent: bool = False):
        super().__init__(message)
        self.maybe_sent = maybe_sent


class VersaoSemEndereco(LookupError):
    """The configuration gives the operator no endpoint for this version (changed since the
    message was prepared in it): nothing can be sent until someone acts."""


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


def padrao(document: bytes) -> str | None:
    """The ``cabecalho/Padrao`` of a prepared ``*WS`` document, read from its bytes (the worker
    keeps bytes only; every encoding TISS uses is ASCII-compatible)."""
    found = _PADRAO.search(document, 0, _PADRAO_NO_INICIO) or _PADRAO.search(document)
    return found.group(1).decode("ascii") if found else None


class OperatorClient:
    """One operator's web services in one version: ``endpoint`` is the base, e.g.
    ``http://host/tiss/v4_03_00``; ``versao`` the Padrao it takes there (None: not checked)."""

    def __init__(self, endpoint: str, *, timeout: float, wsdl_timeout: float | None = None,
                 versao: str | None = None):
        self.endpoint = endpoint.rstrip("/")
        self.versao = versao
        self.timeout = timeout
        self.session = requests.Session()
        self.transport = Transport(session=self.session, cache=InMemoryCache(timeout=3600),
                                   timeout=wsdl_timeout or max(timeout, 30.0), operation_timeout=timeout)
        self._headers = dict(self.session.headers)  # zeep's User-Agent, Accept-Encoding...
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._addresses: dict[str, str] = {}
        self._pools: dict[str, urllib3.PoolManager] = {}  # soap:address -> its connections
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
        self._check_version(service, address)
        with self._lock:
            self._addresses[service] = address
        return address

    def _pool(self, address: str) -> urllib3.PoolManager:
        found = self._pools.get(address)
        if found is None:
            with self._lock:
                found = self._pools.setdefault(address, _pool(self.session, address))
        return found

    def _check_version(self, service: str, address: str) -> None:
        """A soap:address that names another version's path would get every message refused
        ("enviada ao endereço da versão ..."): the configuration points at the wrong WSDL."""
        found = _VERSAO_NO_CAMINHO.search(address)
        if self.versao is None or found is None or ".".join(found.groups()) == self.versao:
            return
        raise TransportError(f"o WSDL de {service} em {self.endpoint} (versão {self.versao}) dá o endereço "
                             f"{address}, da versão {'.'.join(found.groups())}: corrija o endereço da "
                             f"versão {self.versao} da operadora (enderecos)")

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
            pool = self._pool(address)
            response = pool.request("POST", address, body=body, headers=self._headers | headers,
                                    timeout=self._timeout, retries=False, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}", maybe_sent=_maybe_sent(exc)) from exc
        content_type = response.headers.get("Content-Type", "")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("resposta %s de %s:\n%s", response.status, address, _text(response.data, content_type))
        return Answer(response.status, response.data, content_type)

    def close(self) -> None:
        self.session.close()
        with self._lock:
            for pool in self._pools.values():
                pool.clear()


def _maybe_sent(exc: urllib3.exceptions.HTTPError) -> bool:
    """Past connecting: the request may have reached the operator. Failing to connect (refused,
    connect timeout, DNS, TLS handshake, proxy) sends nothing."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # type: ignore[assignment]
    return not isinstance(exc, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                                urllib3.exceptions.NameResolutionError, urllib3.exceptions.SSLError,
                                urllib3.exceptions.ProxyError))


def _pool(session: requests.Session, address: str) -> urllib3.PoolManager:
    """Connections to ``address`` as ``session`` would make them: its proxy (HTTP(S)_PROXY,
    NO_PROXY), CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, else certifi's) and client certificate."""
    settings = session.merge_environment_settings(address, {}, None, None, None)
    options: dict[str, Any] = {"maxsize": _POOL_MAXSIZE}
    verify, cert = settings["verify"], settings["cert"]
    if verify is False:
        options["cert_reqs"] = "CERT_NONE"
    else:
        bundle = requests.utils.DEFAULT_CA_BUNDLE_PATH if verify is True else verify
        options["cert_reqs"] = "CERT_REQUIRED"
        options["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
    if cert:
        options["cert_file"], options["key_file"] = (cert, None) if isinstance(cert, str) else cert
    proxy = requests.utils.select_proxy(address, settings["proxies"])
    return urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)


def _text(body: bytes, content_type: str, limit: int = 65536) -> str:
    """A message for a DEBUG line, decoded by its charset (zeep's own DEBUG logging assumes UTF-8
    and fails on ISO-8859-1: gateway.observability.logs keeps it quiet)."""
    charset = content_type.rpartition("charset=")[2].strip(" \"'") or "utf-8"
    try:
        return body[:limit].decode(charset, "replace")
    except LookupError:
        return body[:limit].decode("utf-8", "replace")


class OperatorClients:
    """One client per operator and version, shared by the threads of a process (WSDLs read once,
    connections kept in a pool per address)."""

    def __init__(self, config: Config):
        self.config = config
        self._clients: dict[tuple[str, str], OperatorClient] = {}
        self._lock = threading.Lock()

    def client(self, registro_ans: str, versao: str) -> OperatorClient:
        """The operator's endpoint for messages in ``versao``; VersaoSemEndereco when it has none."""
        key = (registro_ans, versao)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                operadora = self.config.operadoras[registro_ans]
                endereco = operadora.endereco(versao)
                if endereco is None:
                    raise VersaoSemEndereco(
                        f"a operadora {operadora.nome} não tem endereço para a versão {versao} (tem: "
                        f"{', '.join(operadora.enderecos) or 'nenhum'}): a mensagem foi preparada nessa "
                        "versão e a configuração mudou depois")
                found = self._clients[key] = OperatorClient(endereco, timeout=operadora.timeout_s,
                                                            versao=versao)
            return found

    def warm_up(self, service: str = "tissLoteGuias") -> None:
        """Read each operator's WSDL of every version now, so the first delivery does not pay zeep's
        parse."""
        for operadora in self.config.operadoras.values():
            for versao in operadora.enderecos:
                # An operator down now: its first delivery finds out and retries.
                with contextlib.suppress(TransportError):
                    self.client(operadora.registro_ans, versao).address(service)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
