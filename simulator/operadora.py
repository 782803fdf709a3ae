"""OperadoraSimulada: the pipeline object ``TissWsgi`` calls for one simulated operator.

service matches the URL -> version accepted by the profile (5028) -> schema and hash with the
profile's accepted variants (these as the gateway checks them: gateway.message.checks) ->
signature when the profile requires it (5018-5022) -> login (loginSenhaPrestador: MD5 hex of the
password) -> origem is that provider (1206/1203) -> destino is this operator (5027) -> replay?
(same provider, tipoTransacao, sequencial and hash: the stored answer) -> the service
(``simulator.servicos``) -> hash in the profile's variant -> signature when the profile signs its
answers.

Like the gateway: failures up to the destination check answer with a tissFaultWS; business
failures (críticas, protocol not found, demonstrativo not available) with the response's own
mensagemErro. Every message in and out is stored with its bytes, refused ones included.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lxml import etree
from spyne import MethodContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.message import hashing, responses
from gateway.message.checks import Call, check_message
from gateway.message.faults import Reply, TissFault, fault_reply
from gateway.message.findings import Finding
from gateway.message.reader import TissMessage, reply_encoding
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import SOAP11_NS, Service
from gateway.soap.service import SERVICE_KEY, Environ, receive
from simulator import servicos
from simulator.clock import SimClock, horario_local
from simulator.models import SimMensagem, SimTransacao
from simulator.profile import PrestadorSimulado, Profile

if TYPE_CHECKING:
    from gateway.security.pki import Leaf
    from gateway.security.xmldsig import Signer

log = logging.getLogger("tiss_simulator.operadora")


@dataclass(frozen=True, slots=True)
class CheckedCall:
    """A call that passed the operator's checks (the gateway's: gateway.delivery.checked.CheckedCall)."""

    call: Call
    prestador: PrestadorSimulado  # the authenticated provider, the one the origem names
    hash_found: str  # lower case

    @property
    def documento(self) -> str:
        """The provider's CNPJ/CPF (the key of its transactions and data)."""
        return self.prestador.documento


@dataclass
class Deduplicacao:
    """What the operator recognises as sent before (switched by the admin API). ``sequencial``:
    the same transaction again gets its first answer (the TISS rule); ``lote``: a numeroLote it
    has is refused (3268). Both off: an operator that takes a repeat as a new lote, with a new
    protocol, as some do."""

    sequencial: bool = True
    lote: bool = True


class OperadoraSimulada:
    """A simulated health-plan operator answering the 12 TISS services from its ``profile``.

    ``credentials``: the operator's ``gateway.security.pki.Leaf`` (key and chain, the chain's last
    certificate being the sandbox CA that also issues the providers' certificates). Needed when
    the profile signs its answers or requires signed requests.
    """

    def __init__(self, profile: Profile, registry: SchemaRegistry, sessions: sessionmaker[Session],
                 clock: SimClock, *, seed: int = 0, credentials: Leaf | None = None):
        self.profile = profile
        self.registry = registry
        self.sessions = sessions
        self.clock = clock
        self.seed = seed
        self.credentials = credentials
        self.hash_policy = profile.hash_policy()
        self.deduplicacao = Deduplicacao()

    # -- entry points (called by the SOAP layer) ------------------------------------------------
    def handle(self, ctx: MethodContext, service: Service, body: etree._Element) -> Reply:
        received = receive(ctx, service, body)
        call = received.call
        prestador: PrestadorSimulado | None = None  # once logged in: its refusals are stored with it
        try:
            message = check_message(call, received.endpoint, registry=self.registry, policy=self.hash_policy,
                                    refuse_version=self._refuse_version)
            signer = self._check_signature(call.message) if self.profile.assinatura_exigida else None
            prestador = self._sender(call, signer)
            self._check_destino(call)
            return self._transact(CheckedCall(call, prestador, message.hash_found.lower()))
        except TissFault as fault:
            self._store_refused(call, prestador, fault)
            raise
        except Exception:  # a bug: answer in TISS terms, and keep the request that caused it
            log.exception("%s: erro inesperado em %s", self.profile.key, service.name)
            bug = TissFault("ErroInesperadoServidor", "Erro inesperado na operadora simulada.",
                            client=False)
            self._store_refused(call, prestador, bug, resultado="erro")
            raise bug from None

    def refused_oversize(self, environ: Environ, length: int) -> None:
        self._store_unread(environ, b"", "5002", client=True, tamanho=length)

    def refused_unread(self, environ: Environ, data: bytes, code: str, *, client: bool = True,
                       findings: Sequence[Finding] = ()) -> None:
        """A request the SOAP layer refused before this object could read it (malformed XML, no
        SOAP 1.1 envelope...): stored with its code (the findings' text is in the fault answer)."""
        self._store_unread(environ, data, code, client=client)

    # -- the checks: the message's as the gateway makes them (gateway.message.checks), then ours ----
    def _refuse_version(self, version: str) -> str | None:
        if version in self.profile.versoes:  # installed: check_message refused it before otherwise
            return None
        return f"A operadora {self.profile.nome} não aceita a versão {version} " \
               f"(aceitas: {', '.join(self.profile.versoes)})."

    def _sender(self, call: Call, signer: Signer | None) -> PrestadorSimulado:
        prestador = self._login(call)
        self._check_origem(call, prestador)
        if signer is not None and signer.documento != prestador.documento:
            # The chain is trusted, but the certificate is someone else's: not the sender's signature.
            dono = signer.documento or "sem CPF/CNPJ"
            raise TissFault("RemetenteInvalido", f"[5018] O certificado da assinatura ({dono}) não é do "
                            f"prestador {prestador.documento}.", code="5018")
        return prestador

    def _check_destino(self, call: Call) -> None:
        destino = call.cabecalho.destino
        if destino != self.profile.registro_ans:
            raise TissFault("DestinatarioInvalido", f"Registro ANS {destino or '(não informado)'} não é "
                            f"o desta operadora ({self.profile.registro_ans}).", code="5027")

    def _check_signature(self, message: TissMessage) -> Signer:
        from gateway.security import xmldsig  # loaded only by operators that check signatures

        if self.credentials is None:
            raise TissFault("ErroInesperadoServidor", "Operadora sem certificados para verificar "
                            "assinaturas.", client=False)
        try:
            # Validity is judged at the real time: the certificates were issued at the real time,
            # and a simulated clock started in the past would find them not yet valid.
            return xmldsig.verify(message.root, self.credentials.chain_pem[1:])
        except xmldsig.SignatureError as exc:
            # st_tissFault has no signature value: a certificate that does not identify the sender
            # (5018-5021) is a RemetenteInvalido, a signature that does not match (5022) a message
            # that is not what was signed.
            fault = "SchemaInvalido" if exc.codigo == xmldsig.ASSINATURA_NAO_CONFERE else "RemetenteInvalido"
            raise TissFault(fault, f"[{exc.codigo}] {exc.mensagem}", code=exc.codigo) from None

    def _login(self, call: Call) -> PrestadorSimulado:
        login, senha = call.cabecalho.login, call.cabecalho.senha
        if not login or not senha:
            raise TissFault("LoginInvalido", "loginSenhaPrestador não informado.", code="5005")
        prestador = self.profile.prestador_por_login(login)
        if prestador is None or not prestador.confere(login, senha):
            raise TissFault("LoginInvalido", "Login ou senha inválidos.", code="5005")
        return prestador

    @staticmethod
    def _check_origem(call: Call, prestador: PrestadorSimulado) -> None:
        documento = call.cabecalho.cnpj or call.cabecalho.cpf
        codigo = call.cabecalho.codigo
        if documento:
            if documento != prestador.documento:
                raise TissFault("RemetenteInvalido", f"CPF / CNPJ {documento} da origem não é o do "
                                "prestador autenticado.", code="1206")
        elif codigo:
            if codigo != prestador.codigo_na_operadora:
                raise TissFault("RemetenteInvalido", f"Código do prestador {codigo} não é o do "
                                "prestador autenticado.", code="1203")
        else:
            raise TissFault("RemetenteInvalido", "A origem da mensagem não identifica um prestador.",
                            code="5005")

    # -- storage and answer, one transaction -------------------------------------------------------
    def _transact(self, checked: CheckedCall) -> Reply:
        for _ in range(3):
            with self.sessions() as session:
                earlier = self._earlier(session, checked) if self.deduplicacao.sequencial else None
                if earlier is not None:
                    return self._repeat(checked, earlier)
            try:
                with self.sessions.begin() as session:
                    return self._store_and_answer(session, checked)
            except IntegrityError:
                continue  # a concurrent copy of this transaction (or a counter's first row) won
        raise TissFault("ErroInesperadoServidor", "Conflito de gravação persistente.", client=False)

    def _earlier(self, session: Session, checked: CheckedCall) -> SimTransacao | None:
        cabecalho = checked.call.cabecalho
        return session.scalars(select(SimTransacao).where(
            SimTransacao.registro_ans == self.profile.registro_ans,
            SimTransacao.prestador == checked.documento,
            SimTransacao.tipo_transacao == cabecalho.tipo,
            SimTransacao.sequencial_transacao == cabecalho.sequencial)).one_or_none()

    def _repeat(self, checked: CheckedCall, earlier: SimTransacao) -> Reply:
        if earlier.hash == checked.hash_found and earlier.resposta is not None:
            log.info("%s: transação repetida, mesma resposta: %s", self.profile.key,
                     earlier.sequencial_transacao)
            return Reply(earlier.resposta.corpo, checked.call.message.encoding)
        cabecalho = checked.call.cabecalho
        raise TissFault("SchemaInvalido", f"O sequencialTransacao {cabecalho.sequencial} "
                        f"({cabecalho.tipo}) já foi usado por este prestador em outra mensagem, de conteúdo "
                        "diferente: cada mensagem nova precisa de um sequencialTransacao novo.", code="5001")

    def _store_and_answer(self, session: Session, checked: CheckedCall) -> Reply:
        call, agora = checked.call, self.clock.now()
        request = self._mensagem(call, checked.prestador, "entrada", call.message.data, "aceita", agora)
        request.hash = checked.hash_found or None
        session.add(request)
        session.flush()
        transacao = SimTransacao(registro_ans=self.profile.registro_ans, prestador=checked.documento,
                                 tipo_transacao=call.cabecalho.tipo,
                                 sequencial_transacao=call.cabecalho.sequencial, hash=checked.hash_found,
                                 requisicao_id=request.id)
        if self.deduplicacao.sequencial:  # off: nothing remembers it, a repeat is a new transaction
            session.add(transacao)
            session.flush()  # the unique key decides which concurrent copy proceeds
        reply_ctx = responses.reply_context(call.message.root, registro_ans=self.profile.registro_ans,
                                            sequencial=str(request.id), now=horario_local(agora))
        atendimento = servicos.Atendimento(session, self.profile, call.message, call.service, reply_ctx,
                                           checked.prestador, agora, self.seed, request.id,
                                           deduplica_lote=self.deduplicacao.lote)
        root = servicos.responder(atendimento)
        data = self.envelope(root, call.message.encoding)
        response = self._mensagem(call, checked.prestador, "saida", data, "resposta", agora)
        response.resposta_de_id = request.id
        session.add(response)
        session.flush()
        transacao.resposta_id = response.id
        return Reply(data, call.message.encoding)

    def envelope(self, root: etree._Element, encoding: str) -> bytes:
        """Hash ``root`` in the profile's variant, sign it when the profile signs, wrap it in SOAP.

        ``responses.envelope`` always hashes by the declared-encoding rule; an operator that
        hashes UTF-8 whatever it declares (one profile does) needs the variant, hence this.
        The signature comes after the hash (the hash leaves the signature out).
        """
        element = hashing.hash_element(root)
        if element is None:
            raise ValueError("a resposta não tem elemento hash")
        element.text = hashing.compute(root, encoding, self.profile.hash_variante)
        if self.profile.assina_respostas and self.credentials is not None:
            from gateway.security import xmldsig

            root = xmldsig.sign(root, self.credentials.key_pem, self.credentials.chain_pem)
        body = etree.tostring(root, encoding=encoding, xml_declaration=False, with_tail=False)
        head = f'<?xml version="1.0" encoding="{encoding}"?>\n{_ENVELOPE_OPEN}'
        return head.encode(encoding) + body + _ENVELOPE_CLOSE.encode(encoding)

    # -- audit -------------------------------------------------------------------------------------
    def _mensagem(self, call: Call, prestador: PrestadorSimulado | None, direcao: str, data: bytes,
                  resultado: str, agora: datetime) -> SimMensagem:
        """``prestador``: the authenticated provider, once known (else the origem, as written)."""
        cabecalho = call.cabecalho
        remetente = (prestador.documento if prestador is not None else "") or cabecalho.remetente
        return SimMensagem(
            registro_ans=self.profile.registro_ans, direcao=direcao, servico=call.service.name,
            versao=(call.message.version or "")[:8] or None, tipo_transacao=cabecalho.tipo[:60] or None,
            sequencial_transacao=cabecalho.sequencial[:20] or None, tamanho=len(data), corpo=data,
            prestador=remetente[:20] or None, resultado=resultado, endereco=call.endereco, em=agora)

    def _store_refused(self, call: Call, prestador: PrestadorSimulado | None, fault: TissFault,
                       resultado: str = "recusada") -> None:
        agora = self.clock.now()
        try:
            with self.sessions.begin() as session:
                request = self._mensagem(call, prestador, "entrada", call.message.data, resultado, agora)
                request.codigo_erro = fault.code or fault.tiss_fault
                session.add(request)
                session.flush()
                # stored as sent: in the request's declared encoding
                answer = fault_reply(fault, reply_encoding(call.message.data, call.message.tree)).data
                response = self._mensagem(call, prestador, "saida", answer, "resposta", agora)
                response.resposta_de_id = request.id
                response.codigo_erro = fault.tiss_fault
                session.add(response)
        except Exception:  # never let audit storage turn a client's error into a server error
            log.exception("falha ao gravar mensagem recusada")
        log.info("%s recusou %s: %s %s", self.profile.key, call.service.name, fault.tiss_fault,
                 fault.faultstring)

    def _store_unread(self, environ: Environ, data: bytes, code: str, *, client: bool,
                      tamanho: int | None = None) -> None:
        try:
            with self.sessions.begin() as session:
                session.add(SimMensagem(
                    registro_ans=self.profile.registro_ans, direcao="entrada",
                    servico=environ.get(SERVICE_KEY), tamanho=len(data) if tamanho is None else tamanho,
                    corpo=data, resultado="recusada" if client else "erro", codigo_erro=code,
                    endereco=environ.get("REMOTE_ADDR"), em=self.clock.now()))
        except Exception:
            log.exception("falha ao gravar mensagem recusada")


_ENVELOPE_OPEN = f'<soap:Envelope xmlns:soap="{SOAP11_NS}"><soap:Body>'
_ENVELOPE_CLOSE = "</soap:Body></soap:Envelope>"
