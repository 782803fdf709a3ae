"""The request pipeline every TISS call goes through.

size limit -> safe parse (both in the SOAP layer) -> service matches the URL -> version known ->
schema valid -> hash valid (the destination operator's policy) -> sender authenticated -> origem is
that sender -> destination operator known -> duplicate? -> store -> answer.

Failures before the sender is identified answer with a tissFaultWS (nothing trustworthy to put in
a response cabeçalho); business failures after it (lote already sent, protocol not found) answer
with the response's own mensagemErro. Every refused message is stored with its bytes for audit.
"""

import dataclasses
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway import prestadores
from gateway.config import Config, Operadora
from gateway.delivery import outbox
from gateway.front import responses
from gateway.front.lote import GuiaLida, read_lote
from gateway.message import hashing
from gateway.message.findings import Finding, describe
from gateway.message.findings import error as critica
from gateway.message.reader import TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, Service
from gateway.message.validation import validate_message
from gateway.soap.protocol import Reply, TissFault
from gateway.soap.service import SERVICE_KEY, VERSION_KEY
from gateway.storage import inbound
from gateway.storage.protocolos import insert_protocolo

if TYPE_CHECKING:
    from adapters.base import Adapter

log = logging.getLogger("tiss_gateway.front")
_NS = {"ans": ANS_NS}
_CAB = "ans:cabecalho/"
_text = {name: etree.XPath(f"string({path})", namespaces=_NS) for name, path in {
    "padrao": _CAB + "ans:Padrao",
    "tipo": _CAB + "ans:identificacaoTransacao/ans:tipoTransacao",
    "sequencial": _CAB + "ans:identificacaoTransacao/ans:sequencialTransacao",
    "destino": _CAB + "ans:destino/ans:registroANS",
    "login": _CAB + "ans:loginSenhaPrestador/ans:loginPrestador",
    "senha": _CAB + "ans:loginSenhaPrestador/ans:senhaPrestador",
    "cnpj": _CAB + "ans:origem/ans:identificacaoPrestador/ans:CNPJ",
    "cpf": _CAB + "ans:origem/ans:identificacaoPrestador/ans:CPF",
    "codigo": _CAB + "ans:origem/ans:identificacaoPrestador/ans:codigoPrestadorNaOperadora",
    "protocolo": "ans:solicitacaoStatusProtocolo/ans:numeroProtocolo",
}.items()}

# Services answered from the gateway's own data in this version (store-and-forward).
RECEIPT_SERVICES = {"tissLoteAnexo": "anexo", "tissRecursoGlosa": "recurso",
                    "tissEnvioDocumentos": "documento", "tissComunicacaoBeneficiario": "comunicacao",
                    "tissCancelaGuia": "cancelamento"}
LOTE_JA_INFORMADO = {"4.03.00": "3268"}  # 4.01/4.02 lack 3268: 1308 GUIA JÁ APRESENTADA is nearest
FAULT_FOR_CODE = {"5014": "HashInvalido", "5028": "VersaoInvalida"}


@dataclass(frozen=True)
class Identity:
    prestador_id: int
    documento: str
    codigos: dict[str, str]  # registro ANS -> código na operadora


class LoginCache:
    """Logins verified recently in this process, so that scrypt runs once a minute per login.

    Only an HMAC of the password under a per-process random key is kept. A provider disabled or
    a password changed takes effect within ``ttl`` seconds; failures never enter the cache and
    always go through the counter and lockout.
    """

    def __init__(self, ttl: float = 60.0):
        self.ttl = ttl
        self._key = secrets.token_bytes(32)
        self._entries: dict[str, tuple[bytes, Identity, float]] = {}

    def _digest(self, senha: str) -> bytes:
        return hmac.new(self._key, senha.lower().encode(), hashlib.sha256).digest()

    def get(self, login: str, senha: str) -> Identity | None:
        entry = self._entries.get(login)
        if entry and entry[2] > time.monotonic() and hmac.compare_digest(entry[0], self._digest(senha)):
            return entry[1]
        return None

    def forget(self, login: str) -> None:
        self._entries.pop(login, None)

    def remember(self, login: str, senha: str, identity: Identity) -> None:
        self._entries[login] = (self._digest(senha), identity, time.monotonic() + self.ttl)


@dataclass
class Call:
    """One request on its way through the pipeline."""

    message: TissMessage
    service: Service
    endereco: str | None
    operadora: Operadora | None = None
    prestador_id: int | None = None
    hash_found: str = ""  # as written in the message; set once the message validated
    _fields: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)

    def field(self, name: str) -> str:
        """A cabeçalho value, read from the tree once per request."""
        value = self._fields.get(name)
        if value is None:
            value = self._fields[name] = _text[name](self.message.root).strip()
        return value


class Pipeline:
    def __init__(self, config: Config, registry: SchemaRegistry, sessions: sessionmaker[Session],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), *,
                 readers: sessionmaker[Session] | None = None,
                 adapters: Mapping[str, "Adapter"] | None = None):
        self.config = config
        self.adapters = adapters or {}  # registro ANS -> the operator's adapter (forwarding)
        self.registry = registry
        self.sessions = sessions  # read-write: one transaction per request
        self.readers = readers or sessions  # read-only checks (SQLite: no write lock taken)
        self.clock = clock
        self.logins = LoginCache()

    # -- entry points (called by the SOAP layer) ------------------------------------------------
    def handle(self, ctx, service: Service, body: etree._Element) -> Reply:
        environ = ctx.transport.req_env
        ctx.udc.in_pipeline = True  # from here on the pipeline stores what it refuses
        tree = ctx.udc.tree
        version = _text["padrao"](body).strip() or None
        message = TissMessage(ctx.udc.raw, tree, body, etree.QName(body).localname, version,
                              tree.docinfo.encoding or "UTF-8", True)
        call = Call(message, service, environ.get("REMOTE_ADDR"))
        try:
            return self._handle(call, environ.get(SERVICE_KEY), environ.get(VERSION_KEY))
        except TissFault as fault:
            self._store_refused(call, fault)
            raise

    def refused_oversize(self, environ: dict, length: int) -> None:
        with self.sessions.begin() as session:
            inbound.add_mensagem(session, dict(
                direcao="entrada", servico=environ.get(SERVICE_KEY), tamanho=length, corpo=b"",
                resultado="recusada", codigo_erro="5002", endereco=environ.get("REMOTE_ADDR")))
        log.warning("mensagem de %s bytes recusada (limite)", length)

    def refused_unread(self, environ: dict, data: bytes, code: str, *, client: bool = True,
                       findings: Sequence[Finding] = ()) -> None:
        """Store a request the SOAP layer refused before the pipeline could read it (malformed
        XML, DOCTYPE, no SOAP 1.1 envelope, unknown body element...), with its críticas."""
        try:
            with self.sessions.begin() as session:
                mensagem_id = inbound.add_mensagem(session, dict(
                    direcao="entrada", servico=environ.get(SERVICE_KEY), tamanho=len(data), corpo=data,
                    resultado="recusada" if client else "erro", codigo_erro=code,
                    endereco=environ.get("REMOTE_ADDR")))
                inbound.add_criticas(session, mensagem_id, findings or [_finding_of_code(code)])
        except Exception:  # never let audit storage turn a client's error into a server error
            log.exception("falha ao gravar mensagem recusada")

    # -- the steps -------------------------------------------------------------------------------
    def _handle(self, call: Call, endpoint_service: str | None, endpoint_version: str | None) -> Reply:
        message, service = call.message, call.service
        if endpoint_service and endpoint_service != service.name:
            raise TissFault("SchemaInvalido", f"{message.kind} não é uma mensagem do serviço "
                            f"{endpoint_service}.", code="5001")
        self._check_version(message.version, endpoint_version)
        call.operadora = self.config.operadora(call.field("destino"))
        policy = call.operadora.hash_policy() if call.operadora else hashing.STRICT
        report = validate_message(message, registry=self.registry, policy=policy)
        if not report.valid:
            raise _fault_for(report.findings)
        call.hash_found = report.hash.found or ""
        call.prestador_id = self._authenticate(call)
        if call.operadora is None:
            raise TissFault("DestinatarioInvalido", f"Registro ANS {call.field('destino')} não é uma "
                            "operadora atendida por este gateway.", code="5027")
        if message.version not in call.operadora.versoes:
            raise TissFault("VersaoInvalida", f"A operadora {call.operadora.nome} não aceita a versão "
                            f"{message.version} (aceitas: {', '.join(call.operadora.versoes)}).",
                            code="5028")
        return self._transact(call)

    def _check_version(self, version: str | None, endpoint_version: str | None) -> None:
        if not version:
            raise TissFault("VersaoInvalida", "cabecalho/Padrao não informado.", code="5028")
        if endpoint_version and version != endpoint_version:
            raise TissFault("VersaoInvalida", f"Mensagem da versão {version} enviada ao endereço da "
                            f"versão {endpoint_version}.", code="5028")
        if self.registry.get(version) is None:
            raise TissFault("VersaoInvalida", f"Versão {version} não disponível no gateway.", code="5028")

    def _authenticate(self, call: Call) -> int:
        login, senha = call.field("login"), call.field("senha")
        if not login or not senha:
            raise TissFault("LoginInvalido", "loginSenhaPrestador não informado.", code="5005")
        identity = self.logins.get(login, senha)
        if identity is None or not self._still_allowed(identity):
            self.logins.forget(login)
            identity = self._check_login(call, login, senha)
        codigo = call.field("codigo")
        same = (identity.documento in (call.field("cnpj"), call.field("cpf"))
                or (codigo and codigo == identity.codigos.get(call.field("destino"))))
        if not same:
            raise TissFault("RemetenteInvalido", "A origem da mensagem não é o prestador "
                            "autenticado.", code="5005")
        return identity.prestador_id

    def _still_allowed(self, identity: "Identity") -> bool:
        """A cached login is honoured only while the provider is active and not locked (one
        indexed read, so a lock or a disable made by any worker applies at once)."""
        with self.readers() as session:
            return inbound.prestador_liberado(session, identity.prestador_id, self.clock())

    def _check_login(self, call: Call, login: str, senha: str) -> "Identity":
        """The slow path: scrypt, failure counter, lockout and audit (gateway.prestadores)."""
        settings = self.config.gateway
        with self.sessions() as session:
            result = prestadores.authenticate(
                session, login, senha, now=self.clock(), attempts=settings.lockout_attempts,
                lock_minutes=settings.lockout_minutes, endereco=call.endereco)
            if not result.ok:
                raise TissFault("LoginInvalido", _LOGIN_TEXT.get(result.reason, "Login inválido."),
                                code="5005")
            prestador = result.prestador
            identity = Identity(prestador.id, prestador.documento,
                                {c.registro_ans: c.codigo_na_operadora for c in prestador.codigos})
        self.logins.remember(login, senha, identity)
        return identity

    # -- storage and answer, one transaction -------------------------------------------------------
    def _transact(self, call: Call) -> Reply:
        found_hash = call.hash_found.lower()
        for _ in range(3):
            try:
                with self.sessions.begin() as session:
                    earlier = inbound.transacao_anterior(session, call.prestador_id, call.field("tipo"),
                                                         call.field("sequencial"))
                    if earlier is not None:
                        return self._repeat(call, earlier, found_hash)
                    return self._store_and_answer(session, call, found_hash)
            except IntegrityError:
                continue  # a concurrent copy of this transaction won; answer as it did
        raise TissFault("ErroInesperadoServidor", "Conflito de gravação persistente.", client=False)

    def _repeat(self, call: Call, earlier: inbound.TransacaoAnterior, found_hash: str) -> Reply:
        if (earlier.hash or "").lower() == found_hash and earlier.resposta is not None:
            log.info("transação repetida, mesma resposta: %s", call.field("sequencial"))
            return Reply(earlier.resposta, call.message.encoding)
        raise TissFault("SchemaInvalido", f"sequencialTransacao {call.field('sequencial')} já usado "
                        "por outra mensagem deste prestador.", code="5001")

    def _store_and_answer(self, session: Session, call: Call, found_hash: str) -> Reply:
        message, now = call.message, self.clock()
        request_id = inbound.add_mensagem(session, self._mensagem(call, "entrada", message.data, "aceita",
                                                                  found_hash))
        # The unique key decides which concurrent copy proceeds (IntegrityError for the others).
        transacao_id = inbound.add_transacao(session, prestador_id=call.prestador_id,
                                             tipo=call.field("tipo"), sequencial=call.field("sequencial"),
                                             hash_=found_hash, requisicao_id=request_id)
        reply_ctx = responses.reply_context(message.root, registro_ans=call.operadora.registro_ans,
                                            sequencial=str(request_id), now=now)
        root = self._answer(session, call, reply_ctx, request_id)
        data = responses.envelope(root, message.encoding)
        response = self._mensagem(call, "saida", data, "resposta", None)
        response["resposta_de_id"] = request_id
        inbound.set_resposta(session, transacao_id, inbound.add_mensagem(session, response))
        return Reply(data, message.encoding)

    def _answer(self, session: Session, call: Call, ctx: responses.ReplyContext,
                request_id: int) -> etree._Element:
        name = call.service.name
        if name == "tissLoteGuias":
            return self._lote(session, call, ctx, request_id)
        if name == "tissSolicitacaoStatusProtocolo":
            return self._status(session, call, ctx)
        if name in RECEIPT_SERVICES:
            protocolo_id, numero = insert_protocolo(session, tipo=RECEIPT_SERVICES[name],
                                                    prestador_id=call.prestador_id,
                                                    registro_ans=call.operadora.registro_ans, now=ctx.now)
            self._schedule(session, call, request_id, protocolo_id, None, ctx.now)
            return responses.recibo(ctx, call.service, call.message.root, numero_protocolo=numero)
        raise TissFault("ErroInesperadoServidor", f"A operadora {call.operadora.nome} ainda não está "
                        f"conectada ao gateway: {name} precisa da resposta da operadora.", client=False)

    def _lote(self, session: Session, call: Call, ctx: responses.ReplyContext,
              request_id: int) -> etree._Element:
        lido = read_lote(call.message.root)
        registro = call.operadora.registro_ans
        if inbound.lote_existe(session, call.prestador_id, registro, lido.numero_lote):
            code = LOTE_JA_INFORMADO.get(call.message.version, "1308")
            text = f"Número de lote {lido.numero_lote} já informado anteriormente."
            inbound.add_criticas(session, request_id, [critica(code, text, "loteGuias/numeroLote")])
            return responses.mensagem_erro(ctx, call.service, code, text)
        adapter = self.adapters.get(registro)
        found = adapter.criticas(call.message) if adapter is not None else []
        if found:  # the operator would refuse it: the provider hears it now, with the same codes
            inbound.add_criticas(session, request_id, found)
            return responses.mensagem_erro(ctx, call.service, found[0].code or "5001", found[0].message[:500])
        protocolo_id, numero = insert_protocolo(session, tipo="lote", prestador_id=call.prestador_id,
                                                registro_ans=registro, now=ctx.now)
        lote_id = inbound.add_lote(session, dict(
            prestador_id=call.prestador_id, registro_ans=registro, numero_lote=lido.numero_lote,
            tipo_guia=lido.tipo_guia, quantidade_guias=len(lido.guias),
            valor_informado=lido.valor_informado, hash=call.hash_found, mensagem_id=request_id,
            protocolo_id=protocolo_id, criado_em=ctx.now,
        ), [dict(numero_guia_prestador=g.numero_guia_prestador, numero_guia_operadora=g.numero_guia_operadora,
                 tipo=lido.tipo_guia, numero_carteira=g.numero_carteira, valor_informado=g.valor_informado)
            for g in lido.guias])
        self._schedule(session, call, request_id, protocolo_id, lote_id, ctx.now)
        return responses.protocolo_recebimento(
            ctx, numero_lote=lido.numero_lote, numero_protocolo=numero,
            data_envio_lote=ctx.now.date(), valor_total=lido.valor_informado,
            guias=[_recebida(g, lido.tipo_guia) for g in lido.guias])

    def _status(self, session: Session, call: Call, ctx: responses.ReplyContext) -> etree._Element:
        numero = call.field("protocolo")
        lote = inbound.lote_do_protocolo(session, numero, call.prestador_id, call.operadora.registro_ans)
        if lote is None:  # unknown, another provider's, or not a lote: the same answer
            return responses.protocolo_nao_localizado(ctx, numero_protocolo=numero)
        return responses.situacao_protocolo(
            ctx, numero_protocolo=lote.numero_protocolo, numero_lote=lote.numero_lote,
            status=lote.status, data_envio_lote=lote.criado_em.date(),
            valor_total=lote.valor_informado, guias=[_recebida(g, lote.tipo_guia) for g in lote.guias])

    def _schedule(self, session: Session, call: Call, request_id: int, protocolo_id: int | None,
                  lote_id: int | None, now: datetime) -> None:
        """Deliver to the operator later, committed with the acceptance (the outbox)."""
        if call.operadora.endpoint and call.operadora.registro_ans in self.adapters:
            outbox.schedule(session, registro_ans=call.operadora.registro_ans, servico=call.service.name,
                            prestador_id=call.prestador_id, mensagem_id=request_id,
                            protocolo_id=protocolo_id, lote_id=lote_id, now=now)

    # -- audit -------------------------------------------------------------------------------------
    def _mensagem(self, call: Call, direcao: str, data: bytes, resultado: str,
                  found_hash: str | None) -> dict:
        """The mensagem row (gateway.storage.models.Mensagem) of a request or its answer."""
        return dict(direcao=direcao, servico=call.service.name, versao=call.message.version,
                    tipo_transacao=call.field("tipo") or None,
                    sequencial_transacao=call.field("sequencial")[:20] or None, hash=found_hash,
                    tamanho=len(data), corpo=data, remetente=_remetente(call)[:20] or None,
                    destinatario=call.field("destino")[:20] or None,
                    prestador_id=call.prestador_id, resultado=resultado, endereco=call.endereco)

    def _store_refused(self, call: Call, fault: TissFault) -> None:
        try:
            with self.sessions.begin() as session:
                row = self._mensagem(call, "entrada", call.message.data, "recusada", None)
                row["codigo_erro"] = fault.code or fault.tiss_fault
                mensagem_id = inbound.add_mensagem(session, row)
                inbound.add_criticas(session, mensagem_id, fault.findings or [
                    critica(fault.code, str(fault.faultstring))])
        except Exception:  # never let audit storage turn a client's error into a server error
            log.exception("falha ao gravar mensagem recusada")
        log.info("recusada: %s %s %s", call.service.name, fault.tiss_fault, fault.faultstring)


_LOGIN_TEXT = {
    "desconhecido": "Login ou senha inválidos.",
    "senha": "Login ou senha inválidos.",
    "bloqueado": "Login bloqueado temporariamente após tentativas inválidas.",
    "inativo": "Prestador inativo.",
}


def _fault_for(findings: list[Finding]) -> TissFault:
    first = findings[0]
    fault = FAULT_FOR_CODE.get(first.code or "", "SchemaInvalido")
    text = "; ".join(f"[{f.code}] {f.message}" + (f" (linha {f.line})" if f.line else "")
                     for f in findings[:5])
    return TissFault(fault, text[:2000], code=first.code, findings=findings)


def _finding_of_code(code: str) -> Finding:
    """A crítica for a refusal known only by its code (Table 38 or tissFault name)."""
    description = describe(code) if code.isdigit() else None
    return critica(code if code.isdigit() else None, description or code)


def _remetente(call: Call) -> str:
    return call.field("cnpj") or call.field("cpf") or call.field("codigo")


def _recebida(guia: GuiaLida | inbound.GuiaGravada, tipo_guia: str) -> responses.GuiaRecebida:
    return responses.GuiaRecebida(numero_guia_prestador=guia.numero_guia_prestador,
                                  numero_guia_operadora=guia.numero_guia_operadora,
                                  numero_carteira=guia.numero_carteira,
                                  valor_informado=guia.valor_informado, odonto=tipo_guia == "odonto")
