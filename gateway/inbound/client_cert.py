"""Client certificates: the one a request came with, and whether its provider accepts it.

A provider whose config has ``certificado_cliente`` must present one of the certificates listed
there (SHA-256 fingerprints) or, with ``"documento"``, any certificate that carries its CNPJ/CPF.
Where the certificate comes from:

- the TLS connection gunicorn accepted (``--certfile`` with ``--ca-certs``: the chain was verified
  in the handshake), read from the socket gunicorn puts in the WSGI environ;
- for a request from a trusted proxy (``[gateway] trusted_proxies``) that terminated TLS, the
  header it forwards (``client_cert_header``; nginx: ``$ssl_client_escaped_cert``, the URL-encoded
  PEM). From any other address that header is ignored: a client cannot claim a certificate.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.client_address import PEER_KEY, is_trusted, networks
from gateway.config import CERTIFICADO_DOCUMENTO, GatewaySettings, PrestadorConfig
from gateway.security.pki import documento_do_certificado

log = logging.getLogger("tiss_gateway.security")

SOCKET_KEY = "gunicorn.socket"
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)
_MAX_HEADER = 16 * 1024  # a certificate, not a chain of them
_DER = Encoding.DER


class ClientCertificates:
    def __init__(self, settings: GatewaySettings, prestadores: Sequence[PrestadorConfig]):
        self.required: dict[str, frozenset[str]] = {
            p.documento: frozenset(p.certificado_cliente) for p in prestadores if p.certificado_cliente}
        self.proxies = networks(settings.trusted_proxies)
        self.header = "HTTP_" + settings.client_cert_header.upper().replace("-", "_")

    def refusal(self, documento: str, environ: Mapping) -> str | None:
        """None when the provider needs no certificate or came with one it accepts; else why not
        (for the audit trail, not for the client)."""
        accepted = self.required.get(documento)
        if not accepted:
            return None
        der = self.presented(environ)
        if der is None:
            return "nenhum certificado de cliente apresentado"
        fingerprint = hashlib.sha256(der).hexdigest()
        if fingerprint in accepted:
            return None
        if CERTIFICADO_DOCUMENTO in accepted and _documento(der) == documento:
            return None
        return f"certificado de cliente não aceito para este prestador (SHA-256 {fingerprint})"

    def presented(self, environ: Mapping) -> bytes | None:
        """The DER of the request's client certificate, or None."""
        # The peer itself (gateway.client_address puts the client's address in REMOTE_ADDR).
        if self._from_proxy(environ.get(PEER_KEY, environ.get("REMOTE_ADDR"))):
            return from_header(environ.get(self.header))
        getpeercert = getattr(environ.get(SOCKET_KEY), "getpeercert", None)  # an ssl.SSLSocket
        if getpeercert is None:
            return None
        try:
            return getpeercert(binary_form=True)
        except (ValueError, OSError):  # the connection is gone or the handshake did not finish
            return None

    def _from_proxy(self, address: str | None) -> bool:
        return is_trusted(address, self.proxies)


def from_header(value: str | None) -> bytes | None:
    """The DER of a forwarded certificate: URL-encoded PEM (nginx), or PEM whose line breaks a
    proxy turned into spaces or tabs. Anything else is as no certificate."""
    if not value or len(value) > _MAX_HEADER:
        return None
    match = _PEM.search(unquote(value))
    if match is None:
        return None
    body = "".join(match.group(1).split())
    pem = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode("ascii", "replace")
    try:
        return x509.load_pem_x509_certificate(pem).public_bytes(_DER)
    except ValueError:
        log.info("cabeçalho de certificado de cliente ilegível")
        return None


def _documento(der: bytes) -> str | None:
    try:
        return documento_do_certificado(x509.load_der_x509_certificate(der))
    except ValueError:
        return None


def fingerprint(pem_or_der: bytes) -> str:
    """The SHA-256 fingerprint ``certificado_cliente`` takes, of a PEM or DER certificate."""
    if pem_or_der.lstrip().startswith(b"-----"):
        pem_or_der = x509.load_pem_x509_certificate(pem_or_der).public_bytes(_DER)
    return hashlib.sha256(pem_or_der).hexdigest()
