"""The request pipeline every TISS call goes through.

size limit -> safe parse (both in the SOAP layer) -> service matches the URL -> version known ->
schema valid -> hash valid (the destination operator's policy) -> sender authenticated -> origem is
that sender -> destination operator known -> duplicate? -> store -> answer.

Lotes and the other store-and-forward services are answered from the gateway's own data (the
worker delivers them later); the synchronous services (``gateway.delivery.relay.SERVICOS``) are
relayed to the operator while the provider waits: duplicate? -> plan -> ask the operator (no
transaction open) -> store -> the operator's answer.

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
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from lxml import etree
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway import prestadores
from gateway.config import Config, Operadora
from gateway.delivery import outbox
from gateway.delivery import relay as proxy
from gateway.delivery.client import Answer
from gateway.delivery.reading import read_answer
from gateway.inbound.client_cert import ClientCertificates
from gateway.message import hashing, reader, responses
from gateway.message.cabecalho import CabecalhoFields
from gateway.message.faults import Reply, TissFault, check_padrao, fault_for
from gateway.message.findings import Finding, describe
from gateway.message.findings import error as critica
from gateway.message.lote import GuiaLida, LoteLido, read_lote
from gateway.message.reader import TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SERVICE_BY_NAME, Service
from gateway.message.validation import validate_message
from gateway.observability.logs import REQUEST_ID_KEY
from gateway.observability.metrics import OUTCOME_KEY
from gateway.soap.service import SERVICE_KEY, VERSION_KEY
from gateway.storage import auditoria, inbound
from gateway.storage.protocolos import insert_protocolo

if TYPE_CHECKING:
    from adapters.base import Adapter

log = logging.getLogger("tiss_gateway.inbound")

# Services answered from the gateway's own data (store-and-forward); the synchronous ones,
# cancelamento included, are relayed to the operator (gateway.delivery.relay.SERVICOS).
RECEIPT_SERVICES = {"tissLoteAnexo": "anexo", "tissRecursoGlosa": "recurso",
                    "tissEnvioDocumentos": "documento", "tissComunicacaoBeneficiario": "comunicacao"}
LOTE_JA_INFORMADO = {"4.03.00": "3268"}  # 4.01/4.02 lack 3268: 1308 GUIA JÁ APRESENTADA is nearest


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
class Call(CabecalhoFields):
    """One request on its way through the pipeline."""

    message: TissMessage
    service: Service
    endereco: str | None
    operadora: Operadora | None = None
    prestador_id: int | None = None
    hash_found: str = ""  # as written in the message; set once the message validated
    lido: "LoteLido | None" = None  # a loteGuias read before its write transaction
    criticas_operadora: list[Finding] | None = None  # the operator's rules, likewise
    reading: Connection | None = None  # the request's read-only transaction (Pipeline._reading)
    environ: Mapping = dataclasses.field(default_factory=dict)  # the WSGI request (client certificate)



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
        self._read_engine: Engine = self.readers.kw["bind"]
        self._write_engine: Engine = sessions.kw["bind"]
        self.clock = clock
        self.logins = LoginCache()
        self.client_certs = ClientCertificates(config.gateway, config.prestadores)
        self.proxy = proxy.Proxy(config, registry, self.adapters, self.readers)

    # -- entry points (called by the SOAP layer) ------------------------------------------------
    def handle(self, ctx, service: Service, body: etree._Element) -> Reply:
        environ = ctx.transport.req_env
        ctx.udc.in_pipeline = True  # from here on the pipeline stores what it refuses
        message = reader.message_of(ctx.udc.raw, ctx.udc.tree, body, True)
        call = Call(message, service, environ.get("REMOTE_ADDR"), environ=environ)
        try:
            reply = self._handle(call, environ.get(SERVICE_KEY), environ.get(VERSION_KEY))
        except TissFault as fault:
            _outcome(call, "fault" if fault.client else "error", fault.code or fault.tiss_fault)
            self._stop_reading(call)
            if not getattr(fault, "stored", False):
                self._store_refused(call, fault)
            raise
        finally:
            self._stop_reading(call)
        environ.setdefault(OUTCOME_KEY, ("accepted", None, message.version))
        return reply

    def refused_oversize(self, environ: dict, length: int) -> None:
        with self.sessions.begin() as session:
            inbound.add_mensagem(session, dict(
                direcao="entrada", servico=environ.get(SERVICE_KEY), tamanho=length, corpo=b"",
                resultado="recusada", codigo_erro="5002", endereco=environ.get("REMOTE_ADDR"),
                request_id=environ.get(REQUEST_ID_KEY)))
        environ[OUTCOME_KEY] = ("fault", "5002", None)
        log.warning("mensagem de %s bytes recusada (limite)", length)

    def refused_unread(self, environ: dict, data: bytes, code: str, *, client: bool = True,
                       findings: Sequence[Finding] = ()) -> None:
        """Store a request the SOAP layer refused before the pipeline could read it (malformed
        XML, DOCTYPE, no SOAP 1.1 envelope, unknown body element...), with its críticas."""
        environ[OUTCOME_KEY] = ("fault" if client else "error", code, None)
        try:
            with self.sessions.begin() as session:
                mensagem_id = inbound.add_mensagem(session, dict(
                    direcao="entrada", servico=environ.get(SERVICE_KEY), tamanho=len(data), corpo=data,
                    resultado="recusada" if client else "erro", codigo_erro=code,
                    endereco=environ.get("REMOTE_ADDR"), request_id=environ.get(REQUEST_ID_KEY)))
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
            raise fault_for(report.findings)
        call.hash_found = report.hash.found or ""
        call.prestador_id = self._authenticate(call)
        if call.operadora is None:
            raise TissFault("DestinatarioInvalido", f"Registro ANS {call.field('destino')} não é uma "
                            "operadora atendida por este gateway.", code="5027")
        if message.version not in call.operadora.versoes:
            raise TissFault("VersaoInvalida", f"A operadora {call.operadora.nome} não aceita a versão "
                            f"{message.version} (aceitas: {', '.join(call.operadora.versoes)}).",
                            code="5028")
        if service.name in proxy.SERVICOS:
            self._stop_reading(call)  # no read snapshot held while the operator answers
            return self._proxy(call)
        return self._transact(call)

    def _check_version(self, version: str | None, endpoint_version: str | None) -> None:
        check_padrao(version, endpoint_version)
        if self.registry.get(version) is None:
            raise TissFault("VersaoInvalida", f"Versão {version} não disponível no gateway.", code="5028")

    def _authenticate(self, call: Call) -> int:
        login, senha = call.field("login"), call.field("senha")
        if not login or not senha:
            raise TissFault("LoginInvalido", "loginSenhaPrestador não informado.", code="5005")
        identity = self.logins.get(login, senha)
        if identity is None or not self._still_allowed(identity, call):
            self.logins.forget(login)
            identity = self._check_login(call, login, senha)
        codigo = call.field("codigo")
        same = (identity.documento in (call.field("cnpj"), call.field("cpf"))
                or (codigo and codigo == identity.codigos.get(call.field("destino"))))
        if not same:
            raise TissFault("RemetenteInvalido", "A origem da mensagem não é o prestador "
                            "autenticado.", code="5005")
        refusal = self.client_certs.refusal(identity.documento, call.environ)
        if refusal is not None:  # every request: the certificate belongs to the connection
            self._refuse_certificate(call, login, refusal)
        return identity.prestador_id

    def _refuse_certificate(self, call: Call, login: str, why: str) -> None:
        """A provider that requires a client certificate came without the right one: a failed login
        (audited like one; the password counter is left alone, the password was right)."""
        try:
            with self.sessions.begin() as session:
                auditoria.auditar(session, login, "certificado_recusado", why, call.endereco, self.clock())
        except Exception:  # the refusal must still reach the client
            log.exception("falha ao gravar a auditoria do certificado recusado")
        log.warning("certificado de cliente recusado: login %s de %s: %s", login, call.endereco, why)
        raise TissFault("LoginInvalido", "Certificado digital do cliente ausente ou não autorizado para "
                        "este prestador.", code="5005")

    def _still_allowed(self, identity: "Identity", call: Call) -> bool:
        """A cached login is honoured only while the provider is active and not locked (one
        indexed read, so a lock or a disable made by any worker applies at once)."""
        return inbound.prestador_liberado(self._reading(call), identity.prestador_id, self.clock())

    def _reading(self, call: Call) -> Connection:
        """One read-only transaction for the request's checks and reads (a status query reads its
        lote in the same one), on a plain connection: no Session machinery on every request.
        Closed before the request writes (:meth:`_stop_reading`) and in any case at its end."""
        if call.reading is None:
            call.reading = self._read_engine.connect()
        return call.reading

    @staticmethod
    def _stop_reading(call: Call) -> None:
        if call.reading is not None:
            reading, call.reading = call.reading, None
            reading.close()

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
        # A status answer only reads: it is built before the write transaction, which then holds
        # the database's write lock (SQLite has one for all workers) only to store the messages.
        ready = self._status_ready(call) if call.service.name == "tissSolicitacaoStatusProtocolo" else None
        if call.service.name == "tissLoteGuias":  # likewise: reading the guides needs no lock
            call.lido = read_lote(call.message.root)
            adapter = self.adapters.get(call.operadora.registro_ans)
            call.criticas_operadora = adapter.criticas(call.message) if adapter is not None else []
        self._stop_reading(call)
        for _ in range(3):
            try:
                # A plain connection: the Session machinery cost more than this transaction's inserts.
                with self._write_engine.begin() as connection:
                    earlier = inbound.transacao_anterior(connection, call.prestador_id, call.field("tipo"),
                                                         call.field("sequencial"))
                    if earlier is not None:
                        return self._repeat(call, earlier, found_hash)
                    return self._store_and_answer(connection, call, found_hash, ready)
            except IntegrityError:
                continue  # a concurrent copy of this transaction won; answer as it did
        raise TissFault("ErroInesperadoServidor", "Conflito de gravação persistente.", client=False)

    def _repeat(self, call: Call, earlier: inbound.TransacaoAnterior, found_hash: str) -> Reply:
        if (earlier.hash or "").lower() == found_hash and earlier.resposta is not None:
            if not earlier.resposta:  # emptied by `prune` (gateway.storage.retention)
                raise TissFault("SchemaInvalido", f"sequencialTransacao {call.field('sequencial')} já "
                                "respondido; a resposta não é mais guardada (retenção): use um novo "
                                "sequencialTransacao.", code="5001")
            log.info("transação repetida, mesma resposta: %s", call.field("sequencial"))
            _outcome(call, "replayed")
            return Reply(earlier.resposta, call.message.encoding)
        raise TissFault("SchemaInvalido", f"sequencialTransacao {call.field('sequencial')} já usado "
                        "por outra mensagem deste prestador.", code="5001")

    def _store_and_answer(self, connection: Connection, call: Call, found_hash: str,
                          ready: "etree._Element | responses.Draft | None" = None) -> Reply:
        message, now = call.message, self.clock()
        request_id = inbound.add_mensagem(connection, self._mensagem(call, "entrada", message.data, "aceita",
                                                                  found_hash))
        # The unique key decides which concurrent copy proceeds (IntegrityError for the others).
        transacao_id = inbound.add_transacao(connection, prestador_id=call.prestador_id,
                                             tipo=call.field("tipo"), sequencial=call.field("sequencial"),
                                             hash_=found_hash, requisicao_id=request_id)
        if ready is None:
            reply_ctx = responses.reply_context(message.root, registro_ans=call.operadora.registro_ans,
                                                sequencial=str(request_id), now=now)
            root = self._answer(connection, call, reply_ctx, request_id)
        else:  # built beforehand: only its sequencialTransacao was still to come
            root = ready
            responses.set_sequencial(root, str(request_id))
        data = responses.envelope(root, message.encoding)
        response = self._mensagem(call, "saida", data, "resposta", None)
        response["resposta_de_id"] = request_id
        inbound.set_resposta(connection, transacao_id, inbound.add_mensagem(connection, response))
        return Reply(data, message.encoding)

    def _answer(self, session: Connection, call: Call, ctx: responses.ReplyContext,
                request_id: int) -> "etree._Element | responses.Draft":
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
        raise _nao_conectada(call)

    def _lote(self, session: Connection, call: Call, ctx: responses.ReplyContext,
              request_id: int) -> "etree._Element | responses.Draft":
        lido = call.lido or read_lote(call.message.root)
        registro = call.operadora.registro_ans
        if inbound.lote_existe(session, call.prestador_id, registro, lido.numero_lote):
            code = LOTE_JA_INFORMADO.get(call.message.version, "1308")
            text = f"Número de lote {lido.numero_lote} já informado anteriormente."
            inbound.add_criticas(session, request_id, [critica(code, text, "loteGuias/numeroLote")])
            _outcome(call, "refused", code)
            return responses.mensagem_erro(ctx, call.service, code, text)
        found = call.criticas_operadora
        if found is None:
            adapter = self.adapters.get(registro)
            found = adapter.criticas(call.message) if adapter is not None else []
        if found:  # the operator would refuse it: the provider hears it now, with the same codes
            inbound.add_criticas(session, request_id, found)
            _outcome(call, "refused", found[0].code)
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
        return responses.protocolo_recebimento_draft(
            ctx, numero_lote=lido.numero_lote, numero_protocolo=numero,
            data_envio_lote=ctx.now.date(), valor_total=lido.valor_informado,
            guias=[_recebida(g, lido.tipo_guia) for g in lido.guias])

    def _status_ready(self, call: Call) -> "etree._Element | responses.Draft":
        """The status answer from the request's read-only transaction (its sequencialTransacao set
        later)."""
        try:
            ctx = responses.reply_context(call.message.root, registro_ans=call.operadora.registro_ans,
                                          sequencial="0", now=self.clock())
            return self._status(self._reading(call), call, ctx)
        finally:
            self._stop_reading(call)

    def _status(self, session: Session | Connection, call: Call,
                ctx: responses.ReplyContext) -> "etree._Element | responses.Draft":
        """situacaoProtocoloWS from the gateway's data, at once, also for a forwarded lote.

        The status is the gateway protocol's: the worker's tracker keeps it at the least advanced
        status of the operator lotes the lote became (gateway.delivery.tracking). The guides are
        all the lote's guides, whatever part they went in. Where the operator already answered
        the situação of a part (``Entrega.situacao_id``), each of its guides shows the values the
        operator reported (vlInformadoGuia: processado, glosa, liberado), its glosa motives and
        the operator's guide number, and the lote totals add up the parts' answers; a guide of a
        part not answered yet shows the received value (nothing glosado nor liberado yet).
        ct_guiaDados has no status of its own: the guide-level information is the values and
        glosas the operator reported. A part the operator refused makes the answer that refusal
        (mensagemErro with the operator's crítica code).
        """
        numero = call.field("protocolo")
        lote = inbound.lote_do_protocolo(session, numero, call.prestador_id, call.operadora.registro_ans)
        if lote is None:  # unknown, another provider's, or not a lote: the same answer
            _outcome(call, "refused", responses.PROTOCOLO_NAO_LOCALIZADO if ctx.version >= "4.03.00"
                     else responses.CODIGO_PROTOCOLO_NAO_ENCONTRADO)
            return responses.protocolo_nao_localizado(ctx, numero_protocolo=numero)
        partes = inbound.partes_do_lote(session, lote.lote_id) if lote.lote_id is not None else []
        recusada = next((p for p in partes if p.estado == "recusada"), None)
        if recusada is not None:
            codigo, texto = inbound.critica_de(session, recusada.resposta_id or recusada.envio_id) \
                or (None, "lote recusado")
            if codigo not in responses.codigos_glosa(ctx.version):
                codigo = proxy.CRITICA_PADRAO
            return responses.mensagem_erro(ctx, call.service, codigo, f"O lote {lote.numero_lote} (protocolo "
                                           f"{lote.numero_protocolo}) foi recusado pela operadora "
                                           f"{call.operadora.nome}: {texto}")
        analise = self._situacoes(session, partes, ctx.version)
        guias = [_recebida(g, lote.tipo_guia, analise.guias.get(g.numero_guia_prestador)) for g in lote.guias]
        valor_total: Decimal | responses.ValorTotal = lote.valor_informado or Decimal("0.00")
        if analise.totais:
            nao_analisadas = sum((g.valor_informado or Decimal(0) for g in lote.guias
                                  if g.numero_guia_prestador not in analise.cobertas), Decimal("0.00"))
            valor_total = responses.ValorTotal(
                sum((t.processado for t in analise.totais), nao_analisadas),
                sum((t.glosa for t in analise.totais), Decimal("0.00")),
                sum((t.liberado for t in analise.totais), Decimal("0.00")))
        return responses.situacao_protocolo_draft(
            ctx, numero_protocolo=lote.numero_protocolo, numero_lote=lote.numero_lote,
            status=lote.status, data_envio_lote=lote.criado_em.date(),
            valor_total=valor_total, guias=guias)

    def _situacoes(self, session: Session | Connection, partes: Sequence[inbound.ParteEncaminhada],
                   version: str) -> "_Analise":
        """What the operator answered of each part's situação (only answers that are valid
        situacaoProtocoloWS with a detalheLote count; a broken or refused one is as none)."""
        analise = _Analise()
        respostas = inbound.corpos(session, [p.situacao_id for p in partes if p.situacao_id is not None])
        for parte in partes:
            corpo = respostas.get(parte.situacao_id) if parte.situacao_id is not None else None
            if corpo is None:
                continue
            reading = read_answer(Answer(200, corpo, ""), _STATUS, self.registry)
            detalhe = reading.message.root.find(_DETALHE) if reading.kind == "entregue" else None
            if detalhe is None:
                continue
            try:
                total = _valor_total(detalhe.find(f"{_A}valorTotalLote"))
                guias = {g.findtext(f"{_A}numeroGuiaPrestador").strip(): _analisada(g, version)
                         for g in detalhe.iterfind(f"{_A}guiasTISS/*/{_A}guias")}
            except (AttributeError, InvalidOperation):
                continue
            analise.totais.append(total)
            analise.guias.update(guias)
            analise.cobertas.update(parte.guias or guias)
        return analise

    # -- the synchronous services: relayed to the operator ----------------------------------------
    def _proxy(self, call: Call) -> Reply:
        """duplicate? -> plan (read only) -> ask the operator (no transaction open) -> store."""
        operadora = call.operadora
        if not self.proxy.connected(operadora):
            raise _nao_conectada(call)
        found_hash = call.hash_found.lower()
        with self.readers() as session:
            earlier = inbound.transacao_anterior(session, call.prestador_id, call.field("tipo"),
                                                 call.field("sequencial"))
            if earlier is not None:
                return self._repeat(call, earlier, found_hash)
            plano = self.proxy.plan(session, call.message, call.service, operadora, call.prestador_id,
                                    call.field("sequencial"))
        result = self.proxy.exchange(call.message, call.service, operadora, plano,
                                     prestador_id=call.prestador_id,
                                     agora=proxy.moment(call.message, self.clock()))
        if result.fault is not None:
            self._store_proxy_failure(call, result)
            result.fault.stored = True  # type: ignore[attr-defined]
            raise result.fault
        for _ in range(3):
            try:
                with self.sessions.begin() as session:
                    earlier = inbound.transacao_anterior(session, call.prestador_id, call.field("tipo"),
                                                         call.field("sequencial"))
                    if earlier is not None:  # a concurrent copy was answered meanwhile: as it was
                        return self._repeat(call, earlier, found_hash)
                    return self._store_proxied(session, call, result, found_hash)
            except IntegrityError:
                continue
        raise TissFault("ErroInesperadoServidor", "Conflito de gravação persistente.", client=False)

    def _store_proxied(self, session: Session, call: Call, result: proxy.Resultado, found_hash: str) -> Reply:
        message = call.message
        request_id = inbound.add_mensagem(session, self._mensagem(call, "entrada", message.data, "aceita",
                                                                  found_hash))
        transacao_id = inbound.add_transacao(session, prestador_id=call.prestador_id,
                                             tipo=call.field("tipo"), sequencial=call.field("sequencial"),
                                             hash_=found_hash, requisicao_id=request_id)
        answers = self._store_trocas(session, call, request_id, result.trocas)
        data = result.resposta
        if data is None:  # answered here: the adapter's críticas, or a protocol not at the operator
            found = result.criticas or [critica(result.erro[0], result.erro[1])]
            inbound.add_criticas(session, request_id, found)
            ctx = responses.reply_context(message.root, registro_ans=call.operadora.registro_ans,
                                          sequencial=str(request_id), now=self.clock())
            data = responses.envelope(_erro(ctx, call.service, found[0]), message.encoding)
            _outcome(call, "refused", found[0].code)
        else:
            refusal = next((t.reading for t in result.trocas
                            if t.reading is not None and t.reading.kind == "recusada"), None)
            if refusal is not None:  # the operator's own refusal, relayed
                _outcome(call, "refused", refusal.criticas[0].code if refusal.criticas else None)
        response = self._mensagem(call, "saida", data, "resposta", None)
        response["resposta_de_id"] = request_id
        inbound.set_resposta(session, transacao_id, inbound.add_mensagem(session, response))
        inbound.add_demonstrativos(session, [dict(
            prestador_id=call.prestador_id, registro_ans=call.operadora.registro_ans, tipo=d.tipo,
            protocolo_id=d.protocolo_id, numero_protocolo=(d.numero_protocolo or "")[:40] or None,
            mensagem_id=answers[d.troca], obtido_em=self.clock()) for d in result.demonstrativos])
        return Reply(data, message.encoding)

    def _store_proxy_failure(self, call: Call, result: proxy.Resultado) -> None:
        """The request and what was exchanged, without Transacao: the provider may try again."""
        fault = result.fault
        try:
            with self.sessions.begin() as session:
                row = self._mensagem(call, "entrada", call.message.data,
                                     "recusada" if fault.client else "erro", call.hash_found.lower() or None)
                row["codigo_erro"] = fault.tiss_fault
                request_id = inbound.add_mensagem(session, row)
                inbound.add_criticas(session, request_id, [critica(None, str(fault.faultstring))])
                self._store_trocas(session, call, request_id, result.trocas)
        except Exception:  # the provider must hear the operator's failure, not the storage's
            log.exception("falha ao gravar a troca com a operadora")
        log.info("%s: %s %s", call.service.name, fault.tiss_fault, fault.faultstring)

    def _store_trocas(self, session: Session, call: Call, request_id: int,
                      trocas: Sequence[proxy.Troca]) -> list[int | None]:
        """Each document sent to the operator and its raw answer (with the críticas of a refusal);
        returns the answers' ids."""
        registro = call.operadora.registro_ans
        answers: list[int | None] = []
        for troca in trocas:
            answer_id = None
            if troca.enviado is not None:
                sent = self._mensagem(call, "saida", troca.enviado, "aceita", None)
                sent.update(destinatario=registro, sequencial_transacao=troca.sequencial,
                            versao=troca.versao, resposta_de_id=request_id, endereco=None)
                sent_id = inbound.add_mensagem(session, sent)
                if troca.resposta is not None:
                    reading = troca.reading
                    resultado = {"entregue": "resposta", "recusada": "recusada"}.get(
                        reading.kind if reading else "", "erro")
                    row = self._mensagem(call, "entrada", troca.resposta, resultado, None)
                    row.update(remetente=registro, destinatario=None, resposta_de_id=sent_id, endereco=None,
                               versao=reading.message.version if reading and reading.message else None,
                               sequencial_transacao=troca.sequencial,
                               codigo_erro=reading.motivo[:40] or None if reading else None)
                    answer_id = inbound.add_mensagem(session, row)
                    if reading is not None and reading.criticas:
                        inbound.add_criticas(session, answer_id, reading.criticas)
            answers.append(answer_id)
        return answers

    def _schedule(self, session: Session | Connection, call: Call, request_id: int, protocolo_id: int | None,
                  lote_id: int | None, now: datetime) -> None:
        """Deliver to the operator later, committed with the acceptance (the outbox)."""
        if call.operadora.endpoint and call.operadora.registro_ans in self.adapters:
            outbox.schedule(session, registro_ans=call.operadora.registro_ans, servico=call.service.name,
                            prestador_id=call.prestador_id, mensagem_id=request_id,
                            protocolo_id=protocolo_id, lote_id=lote_id, now=now,
                            request_id=call.environ.get(REQUEST_ID_KEY))

    # -- audit -------------------------------------------------------------------------------------
    def _mensagem(self, call: Call, direcao: str, data: bytes, resultado: str,
                  found_hash: str | None) -> dict:
        """The mensagem row (gateway.storage.models.Mensagem) of a request or its answer."""
        return dict(direcao=direcao, servico=call.service.name, versao=call.message.version,
                    tipo_transacao=call.field("tipo") or None,
                    sequencial_transacao=call.field("sequencial")[:20] or None, hash=found_hash,
                    tamanho=len(data), corpo=data, remetente=_remetente(call)[:20] or None,
                    destinatario=call.field("destino")[:20] or None,
                    prestador_id=call.prestador_id, resultado=resultado, endereco=call.endereco,
                    request_id=call.environ.get(REQUEST_ID_KEY))

    def _store_refused(self, call: Call, fault: TissFault) -> None:
        try:
            with self.sessions.begin() as session:
                row = self._mensagem(call, "entrada", call.message.data,
                                     "recusada" if fault.client else "erro", None)
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


def _outcome(call: Call, outcome: str, code: str | None = None) -> None:
    """What the call came to, for the metrics and the access log (gateway.observability)."""
    call.environ[OUTCOME_KEY] = (outcome, code, call.message.version)  # type: ignore[index]


def _finding_of_code(code: str) -> Finding:
    """A crítica for a refusal known only by its code (Table 38 or tissFault name)."""
    description = describe(code) if code.isdigit() else None
    return critica(code if code.isdigit() else None, description or code)


def _remetente(call: Call) -> str:
    return call.field("cnpj") or call.field("cpf") or call.field("codigo")


def _recebida(guia: GuiaLida | inbound.GuiaGravada, tipo_guia: str,
              analisada: "_GuiaAnalisada | None" = None) -> responses.GuiaRecebida:
    if analisada is None:
        return responses.GuiaRecebida(numero_guia_prestador=guia.numero_guia_prestador,
                                      numero_guia_operadora=guia.numero_guia_operadora,
                                      numero_carteira=guia.numero_carteira,
                                      valor_informado=guia.valor_informado, odonto=tipo_guia == "odonto")
    return responses.GuiaRecebida(
        numero_guia_prestador=guia.numero_guia_prestador,
        numero_guia_operadora=guia.numero_guia_operadora or analisada.numero_operadora,
        numero_carteira=guia.numero_carteira, valor_informado=guia.valor_informado,
        odonto=tipo_guia == "odonto", valores=analisada.valores, glosas=analisada.glosas)


def _nao_conectada(call: Call) -> TissFault:
    return TissFault("ErroInesperadoServidor", f"A operadora {call.operadora.nome} ainda não está "
                     f"conectada ao gateway: {call.service.name} precisa da resposta da operadora.",
                     client=False)


def _erro(ctx: responses.ReplyContext, service: Service, found: Finding) -> etree._Element:
    """The service's refusal answer: mensagemErro (codigoGlosa in the elegibilidade)."""
    codigo = found.code if found.code in responses.codigos_glosa(ctx.version) else proxy.CRITICA_PADRAO
    if service.name == "tissVerificaElegibilidade":
        return responses.glosa_elegibilidade(ctx, codigo, found.message[:500])
    return responses.mensagem_erro(ctx, service, codigo, found.message[:500])


# -- the operator's situação of a forwarded lote's parts ----------------------------------------------

_A = f"{{{ANS_NS}}}"
_STATUS = SERVICE_BY_NAME["tissSolicitacaoStatusProtocolo"]
_DETALHE = f"{_A}situacaoProtocolo/{_A}situacaoDoProtocolo/{_A}lote/{_A}detalheLote"


@dataclass(frozen=True)
class _GuiaAnalisada:
    valores: responses.ValorTotal
    glosas: tuple[tuple[str, str | None], ...]
    numero_operadora: str | None


@dataclass
class _Analise:
    guias: dict[str, _GuiaAnalisada] = dataclasses.field(default_factory=dict)
    totais: list[responses.ValorTotal] = dataclasses.field(default_factory=list)
    cobertas: set[str] = dataclasses.field(default_factory=set)  # guides of the answered parts


def _valor_total(element: etree._Element) -> responses.ValorTotal:
    """ct_valorTotal (a missing element raises AttributeError, a bad number InvalidOperation)."""
    return responses.ValorTotal(*(Decimal(element.findtext(f"{_A}{name}").strip())
                                  for name in ("valorProcessado", "valorGlosa", "valorLiberado")))


def _analisada(guia: etree._Element, version: str) -> _GuiaAnalisada:
    codigos = responses.codigos_glosa(version)
    glosas = tuple(((m.findtext(f"{_A}codigoGlosa") or "").strip(), m.findtext(f"{_A}descricaoGlosa"))
                   for m in guia.iterfind(f"{_A}glosaGuia/{_A}motivoGlosa"))
    return _GuiaAnalisada(_valor_total(guia.find(f"{_A}vlInformadoGuia")),
                          tuple(g for g in glosas if g[0] in codigos),
                          (guia.findtext(f"{_A}numeroGuiaOperadora") or "").strip() or None)
