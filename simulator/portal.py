"""The operator's web portal, as far as files go: a provider's clerk uploads a lote as a
``mensagemTISS`` file (Capital Prev's "Enviar XML", PASA's "Importação de arquivo XML", CASSEMS's
Faturamento Digital, IPASGO's Faturas Eletrônicas Web) and downloads the demonstrativo XML.

The portal takes the file through the operator's own web service, in process: the same checks,
storage, críticas and protocol as a lote posted to ``tissLoteGuias``. Its login is the portal's
(HTTP Basic: the provider's login and password), so files carry no loginSenhaPrestador.

  POST /portal/upload            body: the file (text/xml), ``X-Arquivo-Nome``: its name. 200 with
                                 the operator's receipt as a mensagemTISS (recebimentoLote: the
                                 protocol, or mensagemErro with the crítica); 422 with the reason
                                 for a file the portal does not import (name, hash, structure)
  GET  /portal/demonstrativo?protocolo=N   the demonstrativo de análise de conta as a mensagemTISS
  GET  /portal/situacao?protocolo=N        the protocol's situação as a mensagemTISS (acompanhamento)
"""

from __future__ import annotations

import base64
import binascii
import io
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from urllib.parse import parse_qs

from lxml import etree

from gateway.message import arquivo, hashing, reader
from gateway.message.reader import MessageError
from gateway.message.services import ANS_NS, MENSAGEM_TISS
from simulator.clock import SimClock, horario_local
from simulator.profile import PrestadorSimulado, Profile

StartResponse = Callable[..., object]
_A = f"{{{ANS_NS}}}"
_SOAP_OPEN = b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
_SOAP_CLOSE = b"</soap:Body></soap:Envelope>"


class Recusado(Exception):
    """A file the portal does not import (its "Arquivo inválido" page)."""


class PortalApp:
    """``/portal/...`` of one simulated operator; everything else goes to its web service ``app``."""

    def __init__(self, app: Callable, profile: Profile, clock: SimClock):
        self.app = app
        self.profile = profile
        self.clock = clock
        self._sequencial = 0

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if not path.startswith("/portal/"):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        prestador = self._login(environ)
        if prestador is None:
            return _reply(start_response, "401 Unauthorized", "Login ou senha inválidos.".encode(),
                          "text/plain; charset=utf-8", [("WWW-Authenticate", 'Basic realm="portal"')])
        try:
            if (method, path) == ("POST", "/portal/upload"):
                body = self.upload(environ, prestador)
            elif method == "GET" and path in ("/portal/demonstrativo", "/portal/situacao"):
                numero = parse_qs(environ.get("QUERY_STRING", "")).get("protocolo", [""])[0]
                pedir = self.demonstrativo if path.endswith("demonstrativo") else self.situacao
                body = pedir(prestador, numero)
            else:
                return _reply(start_response, "404 Not Found", b"", "text/plain")
        except Recusado as exc:
            return _reply(start_response, "422 Unprocessable Entity", str(exc).encode("utf-8"),
                          "text/plain; charset=utf-8")
        return _reply(start_response, "200 OK", body, f"text/xml; charset={reader.declared_encoding(body)}")

    def _login(self, environ: dict) -> PrestadorSimulado | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Basic "):
            return None
        try:
            login, _, senha = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        found = self.profile.prestador_por_login(login)
        return found if found is not None and found.senha == senha else None

    # -- upload ------------------------------------------------------------------------------------
    def upload(self, environ: dict, prestador: PrestadorSimulado) -> bytes:
        data = _body(environ, self.profile.max_bytes)
        try:
            message = reader.read(data, self.profile.max_bytes)
        except MessageError as exc:
            raise Recusado(f"Arquivo inválido: {exc.finding.message}") from None
        if message.kind != MENSAGEM_TISS or arquivo.transacao(message.root) != "loteGuias":
            raise Recusado("Arquivo inválido: o portal importa um lote de guias em mensagemTISS.")
        checked = hashing.check(message.root, message.encoding, self.profile.hash_policy(), data)
        if not checked.accepted:
            raise Recusado(f"Arquivo inválido: [5014] hash {checked.found} não confere.")
        nome = environ.get("HTTP_X_ARQUIVO_NOME", "")
        lido = arquivo.ler_nome(nome)
        sequencial = (message.root.findtext(f".//{_A}sequencialTransacao") or "").strip()
        if lido is None or lido != (sequencial.lstrip("0") or "0", (checked.found or "").lower()):
            raise Recusado(f"Arquivo inválido: o nome {nome!r} não é <sequencialTransacao em 20 dígitos>_"
                           "<hash>.xml deste arquivo.")
        ws = arquivo.para_ws(message.root)
        _com_login(ws, prestador)
        request = hashing.rewrite(etree.ElementTree(ws), ws, checked.variant or hashing.DECLARED,
                                  message.encoding)
        return self._como_arquivo(self._soap("tissLoteGuias", request))

    # -- what comes back ---------------------------------------------------------------------------
    def demonstrativo(self, prestador: PrestadorSimulado, numero: str) -> bytes:
        """The demonstrativo de análise de conta of protocol ``numero`` (where the operator emits it)."""
        root, agora = self._pedido("solicitacaoDemonstrativoRetornoWS", "SOLIC_DEMONSTRATIVO_RETORNO",
                                   prestador)
        analise = _e(_e(root, "solicitacaoDemonstrativoRetorno"), "demonstrativoAnalise")
        _prestador(_e(analise, "dadosPrestador"), prestador, contratado=True)
        _e(analise, "dataSolicitacao", agora.strftime("%Y-%m-%d"))
        _e(_e(analise, "protocolos"), "numeroProtocolo", _numero(numero))
        return self._pedir("tissSolicitacaoDemonstrativoRetorno", root)

    def situacao(self, prestador: PrestadorSimulado, numero: str) -> bytes:
        """The situação of protocol ``numero`` (the portal's acompanhamento de lotes, as XML)."""
        root, _agora = self._pedido("solicitacaoStatusProtocoloWS", "SOLIC_STATUS_PROTOCOLO", prestador)
        corpo = _e(root, "solicitacaoStatusProtocolo")
        _prestador(_e(corpo, "dadosPrestador"), prestador, contratado=True)
        _e(corpo, "numeroProtocolo", _numero(numero))
        return self._pedir("tissSolicitacaoStatusProtocolo", root)

    def _pedido(self, kind: str, tipo: str, prestador: PrestadorSimulado) -> tuple[etree._Element, datetime]:
        """A request as the portal's own screen makes it for its logged-in provider: its cabeçalho."""
        agora = horario_local(self.clock.now())
        self._sequencial += 1
        root = etree.Element(f"{_A}{kind}", nsmap={"ans": ANS_NS})
        cab = _e(root, "cabecalho")
        ident = _e(cab, "identificacaoTransacao")
        _e(ident, "tipoTransacao", tipo)
        _e(ident, "sequencialTransacao", str(int(time.time() * 1000) % 10**9 * 100 + self._sequencial % 100))
        _e(ident, "dataRegistroTransacao", agora.strftime("%Y-%m-%d"))
        _e(ident, "horaRegistroTransacao", agora.strftime("%H:%M:%S"))
        _prestador(_e(_e(cab, "origem"), "identificacaoPrestador"), prestador)
        _e(_e(cab, "destino"), "registroANS", self.profile.registro_ans)
        _e(cab, "Padrao", max(self.profile.versoes))
        login = _e(cab, "loginSenhaPrestador")
        _e(login, "loginPrestador", prestador.login)
        _e(login, "senhaPrestador", prestador.senha_md5)
        return root, agora

    def _pedir(self, servico: str, root: etree._Element) -> bytes:
        _e(root, "hash")
        request = hashing.rewrite(etree.ElementTree(root), root, hashing.DECLARED, "UTF-8")
        return self._como_arquivo(self._soap(servico, request))

    # -- the operator's web service, in process --------------------------------------------------
    def _soap(self, servico: str, documento: bytes) -> bytes:
        encoding = reader.declared_encoding(documento) or "UTF-8"
        corpo = documento.split(b"?>", 1)[1] if documento.startswith(b"<?xml") else documento
        declaracao = f'<?xml version="1.0" encoding="{encoding}"?>'.encode(encoding)
        body = declaracao + _SOAP_OPEN + corpo + _SOAP_CLOSE
        status: list[str] = []
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": f"/tiss/{servico}", "QUERY_STRING": "",
                   "CONTENT_TYPE": f"text/xml; charset={encoding}", "CONTENT_LENGTH": str(len(body)),
                   "SERVER_NAME": "portal", "SERVER_PORT": "0", "SERVER_PROTOCOL": "HTTP/1.1",
                   "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
                   "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": True,
                   "wsgi.multiprocess": False, "wsgi.run_once": False}
        chunks = self.app(environ, lambda s, _h, _e=None: status.append(s))
        try:
            return b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()

    def _como_arquivo(self, resposta: bytes) -> bytes:
        """The web service's answer as the file the portal gives (its críticas for a fault)."""
        try:
            message = reader.read(resposta)
        except MessageError as exc:
            raise Recusado(f"Erro no portal: {exc.finding.message}") from None
        if message.kind == "tissFaultWS" or message.root.tag.endswith("Fault"):
            texto = " ".join(t.strip() for t in message.root.itertext() if t.strip())
            raise Recusado(f"Arquivo inválido: {texto}")
        root = arquivo.para_arquivo(message.root)
        return arquivo.escrever(root, self.profile.hash_variante, message.encoding)


def _numero(numero: str) -> str:
    if not numero.isalnum() or len(numero) > 12:
        raise Recusado("Informe o número do protocolo.")
    return numero


def _com_login(ws: etree._Element, prestador: PrestadorSimulado) -> None:
    """The portal's session stands for the web service's loginSenhaPrestador."""
    padrao = ws.find(f"{_A}cabecalho/{_A}Padrao")
    if padrao is None:
        raise Recusado("Arquivo inválido: cabecalho sem Padrao.")
    login = etree.Element(f"{_A}loginSenhaPrestador")
    _e(login, "loginPrestador", prestador.login)
    _e(login, "senhaPrestador", prestador.senha_md5)
    padrao.addnext(login)


def _prestador(parent: etree._Element, prestador: PrestadorSimulado, *, contratado: bool = False) -> None:
    if len(prestador.documento) == 14:
        _e(parent, "cnpjContratado" if contratado else "CNPJ", prestador.documento)
    else:
        _e(parent, "cpfContratado" if contratado else "CPF", prestador.documento)


def _e(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{_A}{name}")
    child.text = text
    return child


def _body(environ: dict, limit: int) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 or length > limit:
        raise Recusado(f"Arquivo vazio ou acima de {limit} bytes.")
    return environ["wsgi.input"].read(length)


def _reply(start_response: StartResponse, status: str, body: bytes, content_type: str,
           headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                            *(headers or [])])
    return [body]
