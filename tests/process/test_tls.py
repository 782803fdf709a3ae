"""HTTPS and client certificates per provider, against real ``tiss-gateway serve`` processes.

Certificates are issued at run time by gateway.security.pki (an AC, the server's leaf for
127.0.0.1, e-CNPJ-shaped client leaves) and never committed. Two gateways share one config
shape: one speaks TLS itself (``--certfile/--keyfile/--ca-certs``: client certificates asked for
and verified, required per provider), the other plain HTTP behind a "proxy" on 127.0.0.1 that
forwards the client certificate in ``X-SSL-Client-Cert`` (nginx ``$ssl_client_escaped_cert``).
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from lxml import etree
from sqlalchemy import select
from sqlalchemy.pool import NullPool

from gateway.config import ConfigError, load_config
from gateway.inbound.client_cert import fingerprint, from_header
from gateway.message.identificacao import md5_hex
from gateway.message.services import ANS_NS, SOAP11_NS
from gateway.message.validation import validate
from gateway.security import pki
from gateway.security.senhas import hash_senha
from gateway.storage.db import make_engine
from gateway.storage.models import Auditoria, Mensagem
from tests.factory import Party, build_request, cnpj_check_digits
from tests.gateway_process import GatewayProcess

NS = {"ans": ANS_NS, "soap": SOAP11_NS}
STATUS = "/tiss/v4_03_00/tissSolicitacaoStatusProtocolo"
PASA = "331988"
PINADO = Party(cnpj=cnpj_check_digits("318273640001"), login="pinado", senha="pin-senha", registro_ans=PASA)
COMDOC = Party(cnpj=cnpj_check_digits("427364510001"), login="comdoc", senha="doc-senha", registro_ans=PASA)
LIVRE = Party(cnpj=cnpj_check_digits("536475620001"), login="livre", senha="livre-senha", registro_ans=PASA)
_sequencial = itertools.count(1)


@dataclass(frozen=True)
class Files:
    ca: Path  # the AC that issued the server's and the clients' certificates
    server: tuple[Path, Path]  # (certificate chain, key)
    clients: dict[str, tuple[Path, Path]]  # name -> (certificate chain, key)
    pem: dict[str, bytes]  # name -> the client's certificate (leaf only)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    directory = tmp_path_factory.mktemp("tls-pki")
    authority = pki.new_authority("AC Teste TLS")
    (directory / "ca.pem").write_bytes(authority.cert_pem)
    authority.issue_server("127.0.0.1", "localhost").save(directory, "server")
    leaves = {"pinado": authority.issue("Clínica Pinada", cnpj=PINADO.cnpj),
              "comdoc": authority.issue("Clínica Documento", cnpj=COMDOC.cnpj),
              "intruso": authority.issue("Outra Clínica", cnpj=LIVRE.cnpj),
              # An AC the gateway does not trust; the CNPJ is the documento provider's own.
              "estranho": pki.new_authority("AC Estranha").issue("Clínica Documento", cnpj=COMDOC.cnpj)}
    for name, leaf in leaves.items():
        leaf.save(directory, name)
    return Files(directory / "ca.pem", (directory / "server-cert.pem", directory / "server-key.pem"),
                 {name: (directory / f"{name}-cert.pem", directory / f"{name}-key.pem") for name in leaves},
                 {name: leaf.cert_pem for name, leaf in leaves.items()})


def _config(path: Path, files: Files, *, trusted_proxies: list[str]) -> Path:
    def prestador(party: Party, nome: str, certificado: str | None) -> str:
        line = f'certificado_cliente = "{certificado}"\n' if certificado else ""
        return (f'[[prestadores]]\ndocumento = "{party.cnpj}"\nnome = "{nome}"\nlogin = "{party.login}"\n'
                f'senha_hash = "{hash_senha(md5_hex(party.senha))}"\n{line}\n')

    proxies = ", ".join(f'"{p}"' for p in trusted_proxies)
    path.write_text(
        f"[gateway]\ntrusted_proxies = [{proxies}]\n\n"
        f'[operadoras.{PASA}]\nnome = "PASA"\nadapter = "pasa"\n\n'
        + prestador(PINADO, "Clínica Pinada", fingerprint(files.pem["pinado"]))
        + prestador(COMDOC, "Clínica Documento", "documento")
        + prestador(LIVRE, "Clínica Livre", None), encoding="utf-8")
    load_config(path)  # the test's own config must be valid
    return path


def _gateway(tmp: Path, home: Path, config: Path, extra: tuple[str, ...] = (),
             tls_ca: Path | None = None) -> Iterator[GatewayProcess]:
    server = GatewayProcess(f"sqlite:///{tmp / 'gateway.sqlite'}", home, workers=1, demo=False,
                            extra_args=("--config", str(config), *extra), tls_ca=tls_ca)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def https(files: Files, tiss_home: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """gunicorn with its own certificate, asking for (not requiring) client certificates."""
    tmp = tmp_path_factory.mktemp("tls-https")
    config = _config(tmp / "config.toml", files, trusted_proxies=[])
    yield from _gateway(tmp, tiss_home, config, ("--certfile", str(files.server[0]), "--keyfile",
                                                 str(files.server[1]), "--ca-certs", str(files.ca)), files.ca)


@pytest.fixture(scope="module")
def proxied(files: Files, tiss_home: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Plain HTTP behind a TLS-terminating proxy on 127.0.0.1 (trusted)."""
    tmp = tmp_path_factory.mktemp("tls-proxied")
    config = _config(tmp / "config.toml", files, trusted_proxies=["127.0.0.1/32"])
    yield from _gateway(tmp, tiss_home, config)


def _status(party: Party) -> bytes:
    return build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=str(next(_sequencial)),
                         party=party, numero_protocolo="999999999999")


def _post(gateway: GatewayProcess, party: Party, *, cert: str | None = None, files: Files | None = None,
          header: str | None = None) -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=ISO-8859-1", "SOAPAction": '""'}
    if header is not None:
        headers["X-SSL-Client-Cert"] = header
    options: dict = {}
    if gateway.tls_ca is not None:
        options["verify"] = str(gateway.tls_ca)
        if cert is not None:
            options["cert"] = tuple(str(p) for p in files.clients[cert])
    return requests.post(gateway.url(STATUS), data=_status(party), headers=headers, timeout=60, **options)


def _accepted(response: requests.Response) -> None:
    """The provider got past authentication: the status answer ("não localizado", 3291)."""
    assert response.status_code == 200, response.content[:1500]
    assert validate(response.content).valid
    root = etree.fromstring(response.content)
    assert root.findtext(".//ans:mensagemErro/ans:codigoGlosa", namespaces=NS) == "3291"


def _refused(response: requests.Response) -> None:
    """The TISS answer for a failed login: tissFaultWS LoginInvalido, HTTP 500."""
    assert response.status_code == 500, response.content[:1500]
    root = etree.fromstring(response.content)
    fault = root.xpath("soap:Body/soap:Fault/detail/ans:tissFaultWS/ans:tissFault/text()", namespaces=NS)
    assert fault == ["LoginInvalido"], response.content[:1500]
    assert "Certificado" in root.findtext("soap:Body/soap:Fault/faultstring", namespaces=NS)


def _last(gateway: GatewayProcess):
    engine = make_engine(gateway.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            mensagem = connection.execute(select(Mensagem.resultado, Mensagem.codigo_erro, Mensagem.remetente)
                                          .where(Mensagem.direcao == "entrada")
                                          .order_by(Mensagem.id.desc()).limit(1)).one()
            auditoria = connection.execute(select(Auditoria.quem, Auditoria.acao, Auditoria.detalhe)
                                           .order_by(Auditoria.id.desc()).limit(1)).one()
    finally:
        engine.dispose()
    return mensagem, auditoria


# --- gunicorn's own TLS ---------------------------------------------------------------------------


def test_the_pinned_certificate_is_accepted_and_the_wsdl_says_https(https, files):
    _accepted(_post(https, PINADO, cert="pinado", files=files))
    wsdl = requests.get(https.url(f"{STATUS}?wsdl"), verify=str(files.ca), timeout=30)
    assert wsdl.status_code == 200
    assert f'location="{https.url(STATUS)}"'.encode() in wsdl.content


def test_no_certificate_is_a_failed_login_stored_and_audited(https, files):
    _refused(_post(https, PINADO))
    mensagem, auditoria = _last(https)
    assert tuple(mensagem) == ("recusada", "5005", PINADO.cnpj)
    assert auditoria.quem == "pinado" and auditoria.acao == "certificado_recusado"
    assert "nenhum certificado" in auditoria.detalhe


def test_another_certificate_of_the_same_ac_is_refused(https, files):
    _refused(_post(https, PINADO, cert="intruso", files=files))
    _mensagem, auditoria = _last(https)
    assert fingerprint(files.pem["intruso"]) in auditoria.detalhe


def test_documento_accepts_any_trusted_certificate_with_the_providers_cnpj(https, files):
    _accepted(_post(https, COMDOC, cert="comdoc", files=files))
    _refused(_post(https, COMDOC, cert="pinado", files=files))
    _refused(_post(https, COMDOC))


def test_a_certificate_of_an_unknown_ac_fails_the_handshake(https, files):
    with pytest.raises(requests.exceptions.SSLError):
        _post(https, COMDOC, cert="estranho", files=files)


def test_providers_without_the_requirement_are_unaffected(https, files):
    _accepted(_post(https, LIVRE))
    _accepted(_post(https, LIVRE, cert="pinado", files=files))


def test_the_header_is_ignored_from_an_address_that_is_not_a_trusted_proxy(https, files):
    _refused(_post(https, PINADO, header=quote(files.pem["pinado"].decode())))


def test_the_password_is_still_checked_with_the_right_certificate(https, files):
    wrong = Party(cnpj=PINADO.cnpj, login=PINADO.login, senha="errada", registro_ans=PASA)
    response = _post(https, wrong, cert="pinado", files=files)
    assert response.status_code == 500 and b"LoginInvalido" in response.content
    assert b"Certificado" not in response.content


# --- behind a TLS-terminating proxy -----------------------------------------------------------------


def test_the_proxys_header_carries_the_pinned_certificate(proxied, files):
    _accepted(_post(proxied, PINADO, header=quote(files.pem["pinado"].decode())))
    _accepted(_post(proxied, COMDOC, header=quote(files.pem["comdoc"].decode())))


BROKEN_PEM = "-----BEGIN CERTIFICATE----- bGl4bw== -----END CERTIFICATE-----"


@pytest.mark.parametrize("header", ["", "intruso", BROKEN_PEM, "%ZZ%", "x" * 7000])
def test_the_proxys_header_without_the_right_certificate_is_refused(proxied, files, header):
    value = quote(files.pem[header].decode()) if header in files.pem else header
    _refused(_post(proxied, PINADO, header=value or None))
    mensagem, auditoria = _last(proxied)
    assert mensagem.codigo_erro == "5005" and auditoria.acao == "certificado_recusado"


def test_behind_the_proxy_providers_without_the_requirement_are_unaffected(proxied):
    _accepted(_post(proxied, LIVRE))


# --- the pieces -----------------------------------------------------------------------------------------


def test_forwarded_certificates_are_read_as_nginx_and_other_proxies_send_them(files):
    pem = files.pem["pinado"].decode()
    expected = ssl.PEM_cert_to_DER_cert(pem)
    assert from_header(quote(pem)) == expected  # nginx $ssl_client_escaped_cert
    assert from_header(pem.replace("\n", " ")) == expected  # line breaks as spaces
    assert from_header(pem.replace("\n", "\t")) == expected  # nginx's deprecated $ssl_client_cert
    assert from_header("não é um certificado") is None


@pytest.mark.parametrize("line, problem", [
    ('trusted_proxies = ["10.0.0.300"]', "endereço ou rede IP inválido"),
    ('client_cert_header = "X SSL"', "nome de cabeçalho"),
])
def test_gateway_tls_keys_are_checked(tmp_path, line, problem):
    path = tmp_path / "config.toml"
    path.write_text(f"[gateway]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_config(path)


def test_certificado_cliente_takes_fingerprints_with_or_without_colons(tmp_path, files):
    digest = fingerprint(files.pem["pinado"])
    colons = ":".join(digest[i:i + 2] for i in range(0, 64, 2)).upper()
    path = tmp_path / "config.toml"
    base = f'[[prestadores]]\ndocumento = "{PINADO.cnpj}"\nnome = "P"\nlogin = "p"\n'
    path.write_text(base + f'certificado_cliente = ["sha256:{colons}", "documento"]\n', encoding="utf-8")
    assert load_config(path).prestadores[0].certificado_cliente == (digest, "documento")
    path.write_text(base + 'certificado_cliente = "abc"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="SHA-256"):
        load_config(path)
