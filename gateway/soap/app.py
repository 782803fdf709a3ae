"""The gateway's WSGI application: routes TISS URLs, serves WSDLs and XSDs, runs Spyne for POSTs.

URLs: ``POST /tiss/v4_03_00/tissLoteGuias`` (version fixed by the path) or ``/tiss/tissLoteGuias``
(version taken from ``Padrao``); ``GET`` of either with ``?wsdl``; the XSDs a WSDL imports at
``/tiss/v4_03_00/schemas/<file>.xsd``; ``/healthz``; the web console under ``/console``. A POST to
the URL of a version whose schemas are not installed gets the VersaoInvalida that says how to import
them (gateway.message.checks); a GET there, a 404 with the same text.

A POST must say it is SOAP 1.1: ``Content-Type: text/xml`` (SOAP 1.1, section 6.1.1; every stack
in INTEROP-NOTES sends it). Any other type, or none, gets HTTP 415 (WS-I Basic Profile 1.1, R1115)
with a tissFaultWS saying what to send; a charset TISS does not take gets the usual tissFaultWS.

The services in ``direct`` (status polls: the most frequent request, ~0.3 ms of Spyne's machinery
on a ~1 ms answer) go to the receiver without Spyne when their request is a plain one (parsed, an
encoding TISS takes, one Envelope whose Body holds just the service's request element): the same
parse, the same call of the receiver, the same answer bytes, HTTP status and headers. Anything
else, refusals included, goes through Spyne with the same bytes, so every refusal is Spyne's own.
"""

import io
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from types import SimpleNamespace

from spyne import Fault
from spyne.server.wsgi import WsgiApplication

from gateway.message import reader, responses
from gateway.message.faults import TissFault, fault_reply
from gateway.message.findings import MENSAGEM_FORA_DO_PADRAO, Finding, error
from gateway.message.reader import MessageError
from gateway.message.schema_registry import SchemaRegistry, missing_version_text
from gateway.message.services import ANS_NS, SERVICE_BY_NAME, SOAP11_NS, Service
from gateway.soap import wsdl
from gateway.soap.protocol import HTTP_REASONS
from gateway.soap.service import PIPELINE_KEY, SERVICE_KEY, VERSION_KEY, Receiver, spyne_application

StartResponse = Callable[..., object]
log = logging.getLogger("tiss_gateway.soap")
DIRECT = frozenset({"tissSolicitacaoStatusProtocolo"})  # answered without Spyne when plain
_ENVELOPE, _BODY = f"{{{SOAP11_NS}}}Envelope", f"{{{SOAP11_NS}}}Body"


class TissWsgi:
    def __init__(self, pipeline: Receiver, registry: SchemaRegistry, *, max_bytes: int,
                 fault_http_status: int = 500, public_base_url: str | None = None,
                 console: Callable[[dict, StartResponse], Iterable[bytes]] | None = None,
                 direct: frozenset[str] = DIRECT):
        self.pipeline = pipeline
        self.direct = direct  # services answered without Spyne when their request is plain
        self.console = console  # the web console's WSGI app, served under /console
        self.registry = registry
        self.max_bytes = max_bytes
        self.fault_http_status = fault_http_status
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        # block_length: Spyne reads the body in blocks of this size; one read of the whole body
        # (bounded by max_bytes above) instead of 8 KiB blocks, each a trip through gunicorn's
        # body reader (58 of them for a 470 KB lote), then a join that copies it again.
        self.spyne = WsgiApplication(spyne_application(max_bytes, fault_http_status),
                                     chunked=True, max_content_length=max_bytes, block_length=max_bytes)
        self.spyne.event_manager.add_listener("wsgi_exception", self._store_unread)
        self._faults = self.spyne.app.out_protocol  # HTTP status of a fault, as Spyne gives it

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz":
            return _plain(start_response, "200 OK", "ok")
        if self.console is not None and (path == "/console" or path.startswith("/console/")):
            return self.console(environ, start_response)
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "tiss" or len(parts) > 4:
            return _plain(start_response, "404 Not Found", "não encontrado")
        version = wsdl.version_from_path(parts[1]) if len(parts) > 1 else None
        rest = parts[2:] if version else parts[1:]
        if version and version not in self.registry.sets() and method != "POST":
            return _plain(start_response, "404 Not Found",
                          missing_version_text(version, self.registry.versions()))
        if version and len(rest) == 2 and rest[0] == "schemas" and method == "GET":
            return self._schema(start_response, version, rest[1])
        if len(rest) != 1 or rest[0] not in SERVICE_BY_NAME:
            return _plain(start_response, "404 Not Found", "serviço TISS desconhecido")
        service = rest[0]
        if method == "POST":  # also for a version not installed: VersaoInvalida says how to install it
            return self._soap(environ, start_response, service, version)
        if method == "GET" and environ.get("QUERY_STRING", "").lower() in ("wsdl", "wsdl="):
            return self._wsdl(environ, start_response, service, version)
        return _plain(start_response, "405 Method Not Allowed", "use POST (SOAP 1.1) ou GET ?wsdl")

    def _soap(self, environ: dict, start_response: StartResponse, service: str,
              version: str | None) -> Iterable[bytes]:
        environ[PIPELINE_KEY] = self.pipeline
        environ[SERVICE_KEY] = service
        environ[VERSION_KEY] = version
        length = environ.get("CONTENT_LENGTH") or "0"
        size, data = f"{length} bytes", b""
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # No Content-Length: Spyne would silently cut the body at max_bytes. Read one byte more.
            data = environ["wsgi.input"].read(self.max_bytes + 1)
            length = str(len(data))
            size = f"mais de {self.max_bytes} bytes" if len(data) > self.max_bytes else f"{length} bytes"
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(data), length
        if length.isdigit() and int(length) > self.max_bytes:
            self.pipeline.refused_oversize(environ, int(length))
            encoding = reader.reply_encoding(data or _head(environ))  # the XML declaration's
            body = responses.fault_envelope(
                "SchemaInvalido", f"Mensagem de {size} excede o limite de {self.max_bytes} "
                "bytes (5002).", client=True, encoding=encoding)
            return _reply(start_response, "413 Request Entity Too Large", body, encoding)
        refused = self._content_type_refusal(environ, start_response, data)
        if refused is not None:
            return refused
        try:
            if service in self.direct and length.isdigit():
                answered = self._direct(environ, start_response, SERVICE_BY_NAME[service], int(length))
                if answered is not None:
                    return answered
            return self.spyne(environ, start_response)
        except Exception:  # a bug must still answer in TISS terms, never with an HTML page
            log.exception("erro inesperado em %s", service)
            body = responses.fault_envelope("ErroInesperadoServidor", "Erro inesperado no gateway.",
                                            client=False)
            return _reply(start_response, "500 Internal Server Error", body, "UTF-8")

    def _direct(self, environ: dict, start_response: StartResponse, service: Service,
                length: int) -> list[bytes] | None:
        """A plain request of ``service`` answered as Spyne answers it, without Spyne (see the
        module docstring); None, the body put back, where Spyne must answer (a refusal)."""
        raw = environ["wsgi.input"].read(length)  # one read of the whole body, as Spyne's (block_length)
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            tree = reader.parse(raw, self.max_bytes)
        except MessageError:
            return None
        envelope = tree.getroot()
        body = envelope.find(_BODY) if envelope.tag == _ENVELOPE else None
        if (body is None or len(body) != 1 or body[0].tag != f"{{{ANS_NS}}}{service.request}"
                or (body.text or "").strip() or (body[0].tail or "").strip()
                or reader.request_refusal(body[0], service) is not None
                or reader.encoding_refusal(raw) is not None):
            return None
        # What a Receiver reads of Spyne's context (gateway.soap.service.receive).
        ctx = SimpleNamespace(transport=SimpleNamespace(req_env=environ),
                              udc=SimpleNamespace(raw=raw, tree=tree, reply=None, finding=None))
        status = "200 OK"
        try:
            reply = self.pipeline.handle(ctx, service, body[0])  # type: ignore[arg-type]
        except TissFault as fault:  # as Spyne: the fault in the request's encoding, its HTTP status
            if not fault.client:
                log.error("%s: %s", service.name, fault.faultstring)
            reply = fault_reply(fault, reader.reply_encoding(raw, tree))
            status = self._faults.fault_to_http_response_code(fault)
        except Exception as exc:  # a bug, as Spyne answers one: ErroInesperadoServidor
            log.exception("erro inesperado em %s", service.name)
            reply = fault_reply(exc, reader.reply_encoding(raw, tree))
            status = "500 Internal Server Error"
        return _reply(start_response, status, reply.data, reply.encoding)

    def _content_type_refusal(self, environ: dict, start_response: StartResponse,
                              data: bytes) -> list[bytes] | None:
        """The answer to a POST that is not a SOAP 1.1 request by its Content-Type (415), or whose
        charset TISS does not take (a tissFaultWS); None when the Content-Type is fine."""
        media_type, charset = _content_type(environ.get("CONTENT_TYPE"))
        status = f"{self.fault_http_status} {HTTP_REASONS.get(self.fault_http_status, 'Bad Request')}"
        finding = _media_type_finding(media_type)
        if finding is not None:
            status = "415 Unsupported Media Type"
        elif charset is not None:
            finding = reader.charset_refusal(charset)
        if finding is None:
            return None
        data = data or _body(environ)
        self.pipeline.refused_unread(environ, data, finding.code or "5001", findings=[finding])
        encoding = reader.reply_encoding(data)
        body = responses.fault_envelope("SchemaInvalido", finding.message, client=True, encoding=encoding)
        return _reply(start_response, status, body, encoding)

    def _store_unread(self, ctx) -> None:
        """Spyne answered with a fault: store the request if the pipeline never saw it."""
        udc = getattr(ctx, "udc", None)
        if udc is None or getattr(udc, "in_pipeline", False):
            return
        error = ctx.in_error or ctx.out_error
        found: Sequence[Finding] = ()
        if isinstance(error, TissFault):
            code, client, found = error.code or error.tiss_fault, error.client, error.findings
        else:
            client = isinstance(error, Fault) and str(error.faultcode).startswith("Client")
            code = "5001" if client else "ErroInesperadoServidor"
        self.pipeline.refused_unread(ctx.transport.req_env, udc.raw, code, client=client, findings=found)

    def _wsdl(self, environ: dict, start_response: StartResponse, service: str,
              version: str | None) -> Iterable[bytes]:
        version = version or max(self.registry.versions())
        base = self.base_url(environ)
        prefix = f"{base}/tiss/{wsdl.version_path(version)}"
        body = wsdl.render_wsdl(service, version, address=f"{prefix}/{service}",
                                schema_base=f"{prefix}/schemas/")
        return _reply(start_response, "200 OK", body, "UTF-8")

    def _schema(self, start_response: StartResponse, version: str, name: str) -> Iterable[bytes]:
        body = wsdl.schema_file(version, name, self.registry, strip_doctype=True)
        if body is None:
            return _plain(start_response, "404 Not Found", "schema não encontrado")
        return _reply(start_response, "200 OK", body, "ISO-8859-1")

    def base_url(self, environ: dict) -> str:
        """``public_base_url``, else the request's own: the scheme gunicorn set (``https`` only when
        a peer in ``forwarded_allow_ips``, i.e. ``trusted_proxies``, said so in X-Forwarded-Proto;
        X-Forwarded-* headers are never read here) and the Host header when it is a host name or
        address with an optional port (otherwise the address the server listens on)."""
        if self.public_base_url:
            return self.public_base_url
        scheme = environ.get("wsgi.url_scheme")
        if scheme not in ("http", "https"):
            scheme = "http"
        host = environ.get("HTTP_HOST") or ""
        if not _HOST.fullmatch(host):
            host = f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
            if not _HOST.fullmatch(host):
                host = "localhost"
        return f"{scheme}://{host}"


# A DNS name (labels of letters, digits and inner hyphens) or an IPv4 / bracketed IPv6 address,
# with an optional port: what a WSDL's soap:address may be built from.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")


def _content_type(value: str | None) -> tuple[str, str | None]:
    """The media type (lower case, "" when absent) and charset parameter of a Content-Type."""
    media_type, _, rest = (value or "").partition(";")
    charset = None
    for parameter in rest.split(";"):
        name, _, parameter_value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = parameter_value.strip().strip('"').strip("'") or None
    return media_type.strip().lower(), charset


def _media_type_finding(media_type: str) -> Finding | None:
    if media_type == "text/xml":
        return None
    if not media_type:
        text = "Requisição sem Content-Type: uma chamada SOAP 1.1 é enviada como text/xml."
    elif media_type == "application/soap+xml":
        text = ("Content-Type application/soap+xml é o do SOAP 1.2: o TISS usa SOAP 1.1, enviado como "
                "text/xml (namespace do Envelope http://schemas.xmlsoap.org/soap/envelope/).")
    else:
        text = (f"Content-Type {media_type} não é aceito: uma chamada SOAP 1.1 é enviada como text/xml "
                "(por exemplo 'text/xml; charset=ISO-8859-1').")
    return error(MENSAGEM_FORA_DO_PADRAO, text)


def _body(environ: dict) -> bytes:
    """The body of a request refused before Spyne read it (its size already checked)."""
    length = environ.get("CONTENT_LENGTH") or "0"
    try:
        return environ["wsgi.input"].read(int(length)) if length.isdigit() else b""
    except (OSError, ValueError):  # the client went away
        return b""


def _head(environ: dict) -> bytes:
    """The first bytes of a body left unread (enough for its XML declaration)."""
    try:
        return environ["wsgi.input"].read(200)
    except (OSError, ValueError):  # the client went away
        return b""


def _reply(start_response: StartResponse, status: str, body: bytes, charset: str) -> list[bytes]:
    start_response(status, [("Content-Type", f"text/xml; charset={charset}"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))])
    return [body]
