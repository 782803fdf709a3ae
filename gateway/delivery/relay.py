"""The synchronous services, relayed to the operator in real time.

Elegibilidade, solicitação de procedimento, status de autorização, cancelamento de guia,
demonstrativos and status de recurso de glosa need the operator's answer: the gateway asks the
operator while the provider waits and gives back what the operator said. The pipeline
(gateway.inbound) runs its usual checks, gateway.delivery.sync_relay the duplicate check, then
this module:

1. **plans** (a read-only session): the provider's numbers that mean nothing to the operator are
   translated: a gateway protocol becomes the operator's protocol(s) of its delivery — several for
   a lote the adapter split (demonstrativo de análise, cancelamento by lote or protocol, status de
   recurso). A protocol not (yet) at the operator is answered at once with the service's
   mensagemErro: 3019 while its delivery is still on the way, the operator's own crítica when the
   operator refused it. Numbers the gateway does not know go as they are (the provider may use
   the operator's own numbers).
   A cancelamento an operator's manual forbids (PASA: no lote once sent to it,
   ``OperadoraRules.cancela_lote_enviado``) is answered at once, as that operator would, with
   statusCancelamento 2 (não cancelado: ct_reciboCancelaGuia has it, no mensagemErro needed),
   when everything it names is a lote or a faturamento guide the gateway delivered (a guide named
   without protocol: the provider's latest lote holding it); a request that also names what the
   gateway did not deliver goes to the operator, whose own rule answers the rest. A lote still at
   the gateway is not cancelled there (3019 above, as any protocol not at the operator yet): an
   entrega has no state for it (``pendente`` would be sent, ``recusada`` reads as the operator's
   refusal in the status service and the console, and the estado values are a checked column)
   and a delivery attempted once may be at the operator already.
2. **exchanges** (no transaction open: on SQLite every transaction is a write lock): the
   operator's adapter says what the operator would refuse (answered at once, as for lotes), then
   re-stamps the request (``Adapter.preparar``: converted to a version the operator takes when it
   does not take the provider's, hash variant, signature) and
   :class:`~gateway.delivery.client.OperatorClient` posts it to the operator's endpoint of that
   version with the operator's timeout; the answer is classified by
   :func:`gateway.delivery.reading.read_answer` (parsed safely, the service's response, schema of
   its version, hash in any known variant).
3. **answers** the provider with the operator's content: its protocol numbers translated back to
   the gateway's, in the protocol elements and in its sentences (gateway.delivery.numeros; and the
   parts of a split lote merged into one protocol: its guides together, the totals summed), the
   operator's signature removed (the gateway does not sign what it answers providers: the
   signature was the operator's over a document the gateway changes), converted back to the
   provider's version by the adapter (``Adapter.resposta_para``: ``Padrao`` re-stamped, refusal
   codes that version lacks recoded, the whole checked against its schema: an answer whose
   structures do not fit is ErroInesperadoServidor naming the element, never an invalid answer),
   the hash re-stamped by the strict declared-encoding rule in the encoding of the provider's
   request. The operator's own cabeçalho (its sequencialTransacao, date and time) is kept.

gateway.delivery.sync_relay then stores, in one write transaction: the provider's request, every
document sent, every raw operator answer and the answer given (Mensagem rows chained by
``resposta_de_id``: request <- sent <- operator's answer, request <- answer given), the Transacao
(a repeat of the same sequencialTransacao gets the same bytes without asking the operator again),
the críticas of an operator refusal and, for demonstrativos, one Demonstrativo row per protocol the
operator's demonstrativo covers (or one without protocol); for a cancelamento, what the operator
confirmed cancelled (statusCancelamento 1, read per lote part and per guide: :class:`Cancelado`).
A demonstrativo is fetched whenever asked under a new sequencialTransacao (the operator may have
revised it) and every copy is kept.

Failures: an operator not configured or without endpoint, unreachable, timing out, answering with
a server error or with something that is not a valid answer is ErroInesperadoServidor (HTTP 500:
not the provider's fault) naming the operator, with the request and the exchange stored and no
Transacao (the provider may retry the same sequencial). So is a call that finds the operator's
bulkhead, or the process's relay share, full (gateway.delivery.bulkhead): answered at once,
without asking the operator, so that a slow operator never holds the threads that accept lotes.
Only the calls to the operator hold a place; the answers given at once above do not.

A refusal by the operator — mensagemErro in its answer, or a tissFault that blames the message
(SchemaInvalido, LoginInvalido...) — is relayed as the operator said it (its protocol numbers as
the gateway's).

The operator sees the provider's own sequencialTransacao (a second call of one request, a lote
cancelled part by part, gets ``-2``, ``-3``... at the end) and the provider's own transaction
moment: a retry after a failure re-sends the same transaction, which the operator's idempotency
answers instead of, say, authorising twice.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from lxml import etree
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.config import Config, Operadora
from gateway.delivery import numeros as numeros_operadora
from gateway.delivery.bulkhead import Bulkhead, Lotado
from gateway.delivery.client import OperatorClients, TransportError, VersaoSemEndereco
from gateway.delivery.reading import Reading, read_answer
from gateway.message import responses
from gateway.message.faults import TissFault
from gateway.message.findings import Finding
from gateway.message.reader import TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, DSIG_NS, SOAP11_NS, Service
from gateway.message.tables import PROGRESS
from gateway.observability import metrics
from gateway.storage import rows
from gateway.storage.models import GUIA_TABLE, LOTE_TABLE, PROTOCOLO_TABLE

if TYPE_CHECKING:
    from adapters.base import Adapter

log = logging.getLogger("tiss_gateway.proxy")

SERVICOS = frozenset({"tissVerificaElegibilidade", "tissSolicitacaoProcedimento",
                      "tissSolicitacaoStatusAutorizacao", "tissCancelaGuia",
                      "tissSolicitacaoDemonstrativoRetorno", "tissSolicitacaoStatusRecursoGlosa"})
# Table 38 codes of the answers given here without asking the operator.
EM_PROCESSAMENTO = "3019"  # the delivery is still on its way: "aguardando liberação"
ACIMA_DO_MAXIMO = "5015"  # more than 30 operator protocols in one demonstrativo de análise
CRITICA_PADRAO = "5002"  # an operator refusal whose code is not in the provider's version
MAX_PROTOCOLOS = 30  # ct_demonstrativoSolicitacao: numeroProtocolo maxOccurs 30
MAX_NUMEROS_EM_TEXTO = 500  # tokens of an answer's sentences looked up as operator protocols (one query)
FATURAMENTO = "2"  # dm_tipoGuia of a cancelamento: a guide of a lote
CANCELADO, NAO_CANCELADO = "1", "2"  # dm_statusCancelamento: cancelado com sucesso, não cancelado
NAO_CANCELA_ENVIADO = "entre em contato com a operadora."  # PASA's manual: "Em caso de necessidade..."

_A = f"{{{ANS_NS}}}"
_NS = {"ans": ANS_NS}
_SIGNATURES = frozenset({f"{_A}Signature", f"{_A}Signatures", f"{{{DSIG_NS}}}Signature"})
# Elements of the answers that carry an operator protocol number / a lote part's numeroLote.
_PROTOCOLO_TAGS = frozenset(f"{_A}{n}" for n in (
    "numeroProtocolo", "numeroprotocolo", "nrProtocoloRecursoGlosa", "nrProtocoloSituacaoRecursoGlosa"))
_LOTE_TAGS = frozenset(f"{_A}{n}" for n in ("numeroLote", "numeroLotePrestador"))
_TISS_FAULT = etree.XPath("string(//ans:tissFault)", namespaces=_NS)
_FAULT_STRING = etree.XPath("string(//faultstring)")
_CENTAVO = Decimal("0.01")
_G, _L, _PR = GUIA_TABLE, LOTE_TABLE, PROTOCOLO_TABLE
_PROTOCOLO_DA_GUIA = (
    select(_PR.c.numero)
    .select_from(_G.join(_L, _L.c.id == _G.c.lote_id).join(_PR, _PR.c.id == _L.c.protocolo_id))
    .where(_G.c.numero_guia_prestador == bindparam("numero"), _L.c.prestador_id == bindparam("prestador_id"),
           _L.c.registro_ans == bindparam("registro_ans"))
    .order_by(_L.c.id.desc()).limit(1))


@dataclass(frozen=True)
class Envio:
    """One document for the operator: the provider's message with its numbers translated."""

    message: TissMessage
    sequencial: str


@dataclass(frozen=True)
class Cancelado:
    """What a statusCancelamento 1 of the operator cancels at the gateway: guides of a gateway
    protocol's lote (``guias`` empty: every guide)."""

    protocolo_id: int
    guias: tuple[str, ...] = ()


@dataclass
class Plano:
    envios: list[Envio] = field(default_factory=list)
    erro: tuple[str, str] | None = None  # answer at once: (Table 38 code, text)
    cancelamento_lote: bool = False  # several answers (one per lote part) make one
    # tissCancelaGuia: answered at once with statusCancelamento 2 (why), without asking the operator
    nao_cancelado: str | None = None
    lote_cancelado: list[Cancelado] = field(default_factory=list)  # per envio: its part of the lote
    guias_canceladas: dict[str, int] = field(default_factory=dict)  # numeroGuiaPrestador -> protocolo_id


@dataclass
class Troca:
    """One exchange with the operator, as stored."""

    sequencial: str
    versao: str | None = None  # of the document sent
    enviado: bytes | None = None
    resposta: bytes | None = None  # the operator's raw HTTP body
    reading: Reading | None = None


@dataclass
class DemonstrativoObtido:
    troca: int  # index of the exchange whose answer it is
    tipo: str  # dm_tipoDemonstrativo
    numero_protocolo: str | None  # the operator's
    protocolo_id: int | None  # the gateway's, when it is one


@dataclass
class Resultado:
    trocas: list[Troca] = field(default_factory=list)
    resposta: bytes | None = None  # the answer for the provider (SOAP envelope)
    erro: tuple[str, str] | None = None  # or a mensagemErro built by the pipeline
    criticas: list[Finding] = field(default_factory=list)  # what the adapter said the operator refuses
    fault: TissFault | None = None  # or a tissFault (stored without Transacao)
    demonstrativos: list[DemonstrativoObtido] = field(default_factory=list)
    nao_cancelado: str | None = None  # or the gateway's own statusCancelamento 2 (why)
    cancelados: list[Cancelado] = field(default_factory=list)  # what the operator confirmed cancelled


class Proxy:
    def __init__(self, config: Config, registry: SchemaRegistry, adapters: Mapping[str, Adapter],
                 readers: Callable[[], Session], clients: OperatorClients | None = None,
                 bulkhead: Bulkhead | None = None):
        self.config = config
        self.registry = registry
        self.adapters = adapters
        self.readers = readers
        self.clients = clients or OperatorClients(config)
        self.bulkhead = bulkhead or Bulkhead.for_config(config)

    # -- 1. plan ---------------------------------------------------------------------------------
    def connected(self, operadora: Operadora) -> bool:
        return operadora.web_service and operadora.registro_ans in self.adapters  # not a file-only one

    def plan(self, session: Session, message: TissMessage, service: Service, operadora: Operadora,
             prestador_id: int, sequencial: str) -> Plano:
        """What to send, with the gateway's protocol numbers turned into the operator's."""
        tradutor = _Tradutor(session, operadora, prestador_id, message.version or "")
        root = copy.deepcopy(message.root)
        root.tail = None
        roots = [root]
        cancelamento = _Cancelamento()
        try:
            if service.name == "tissSolicitacaoDemonstrativoRetorno":
                tradutor.demonstrativo(root)
            elif service.name == "tissSolicitacaoStatusRecursoGlosa":
                tradutor.um_protocolo(root.find(f"{_A}solicitacaoStatusProtocoloRecurso/{_A}numeroProtocolo"))
            elif service.name == "tissCancelaGuia":
                cancelamento = tradutor.cancelamento(root)
                roots = cancelamento.copias or roots
        except _Resposta as resposta:
            return Plano(erro=(resposta.codigo, resposta.texto))
        plano = Plano([Envio(_message(r, message), _sequencial(sequencial, i, len(roots)))
                       for i, r in enumerate(roots)], cancelamento_lote=len(roots) > 1)
        if service.name == "tissCancelaGuia":
            self._plan_cancelamento(plano, cancelamento, operadora)
        return plano

    def _plan_cancelamento(self, plano: Plano, cancelamento: _Cancelamento, operadora: Operadora) -> None:
        """What a confirmation cancels at the gateway; and, for an operator that cancels no lote
        once sent (``OperadoraRules.cancela_lote_enviado``), its refusal given at once when every
        lote or guide asked for is one the gateway delivered to it."""
        lote = cancelamento.lote
        if lote is not None:
            split = len(lote.partes) > 1
            plano.lote_cancelado = [Cancelado(lote.protocolo_id, parte.guias if split else ())
                                    for parte in lote.partes]
        plano.guias_canceladas = {numero: found.protocolo_id for numero, found in cancelamento.guias.items()}
        if self.adapters[operadora.registro_ans].rules.cancela_lote_enviado or not cancelamento.enviado:
            return
        alvo = f"o lote {lote.numero_lote}" if lote is not None else \
            "as guias " + ", ".join(sorted(cancelamento.guias))
        plano.nao_cancelado = (f"A operadora {operadora.nome} não cancela lotes já enviados a ela, e "
                               f"{alvo} já foi entregue: {NAO_CANCELA_ENVIADO}")

    # -- 2. exchange -----------------------------------------------------------------------------
    def exchange(self, message: TissMessage, service: Service, operadora: Operadora, plano: Plano, *,
                 prestador_id: int, agora: datetime) -> Resultado:
        """Send and read (never inside a transaction). Never raises for the operator's doings."""
        if plano.erro is not None:
            return Resultado(erro=plano.erro)
        if plano.nao_cancelado is not None:  # the operator's rule, applied here: it is not asked
            log.info("%s: %s", operadora.nome, plano.nao_cancelado)
            return Resultado(nao_cancelado=plano.nao_cancelado)
        adapter = self.adapters[operadora.registro_ans]
        found = adapter.criticas(message)
        if found:  # the operator would refuse it: the provider hears it now, with its codes
            return Resultado(criticas=found)
        result = Resultado()
        registro = operadora.registro_ans
        try:
            with self.bulkhead.slot(registro), _in_flight(registro):
                self._ask(message, service, operadora, plano, result, prestador_id=prestador_id, agora=agora)
        except Lotado as full:
            result.fault = self._lotado(operadora, full)
            metrics.relay(registro, "lotado" if full.registro_ans else "gateway_lotado")
            return result
        if result.fault is None:
            self._conclude(message, service, operadora, plano, result, prestador_id)
        metrics.relay(registro, _relay_outcome(result))
        return result

    def _lotado(self, operadora: Operadora, full: Lotado) -> TissFault:
        """The refusal of a call that found no room (the operator is not asked)."""
        if full.registro_ans is None:
            log.warning("%s: %d consultas em tempo real em andamento neste processo (o limite): recusada",
                        operadora.nome, full.em_andamento)
            return _servidor(f"Gateway ocupado: {full.em_andamento} consultas em tempo real em andamento; "
                             "tente novamente em instantes.")
        log.warning("%s: %d consultas em andamento (max_relays %d): recusada", operadora.nome,
                    full.em_andamento, self.bulkhead.limit(operadora.registro_ans))
        return _servidor(f"Operadora {operadora.nome} ocupada: {full.em_andamento} consultas em andamento; "
                         "tente novamente em instantes.")

    def _ask(self, message: TissMessage, service: Service, operadora: Operadora, plano: Plano,
             result: Resultado, *, prestador_id: int, agora: datetime) -> None:
        """Each document of the plan to the operator, and its answer read, into ``result``; stops
        at the first failure (``result.fault``)."""
        for envio in plano.envios:
            troca = Troca(envio.sequencial)
            result.trocas.append(troca)
            result.fault = self._ask_one(envio, troca, service, operadora, prestador_id=prestador_id,
                                         agora=agora)
            if result.fault is not None:
                return

    def _ask_one(self, envio: Envio, troca: Troca, service: Service, operadora: Operadora, *,
                 prestador_id: int, agora: datetime) -> TissFault | None:
        """One document prepared, sent and its answer read into ``troca``; the fault that ends the
        relay, if any."""
        adapter = self.adapters[operadora.registro_ans]
        try:
            prepared = adapter.preparar(envio.message, sequenciais=[envio.sequencial], agora=agora)[0]
        except Exception as exc:  # the gateway's configuration or a bug, not the provider's doing
            log.exception("%s: preparação de %s falhou", operadora.nome, service.name)
            return _servidor(f"A mensagem não pôde ser preparada para a operadora {operadora.nome}: {exc}")
        troca.enviado, troca.versao = prepared.corpo, prepared.versao
        try:  # the endpoint of the version the adapter converted it to
            answer = self.clients.client(operadora.registro_ans, prepared.versao).call(
                service.name, prepared.corpo)
        except VersaoSemEndereco as exc:
            log.error("%s: %s", operadora.nome, exc)
            return _servidor(f"A mensagem não pôde ser enviada à operadora {operadora.nome}: {exc}")
        except TransportError as exc:
            log.warning("%s: %s sem resposta: %s", operadora.nome, service.name, exc)
            return _servidor(f"A operadora {operadora.nome} não respondeu ({exc}).")
        troca.resposta = answer.body
        troca.reading = reading = read_answer(answer, service, self.registry)
        if reading.kind == "repetir":
            log.warning("%s: resposta inválida a %s: %s", operadora.nome, service.name, reading.motivo)
            motivo = self._texto(reading.motivo, operadora, prestador_id)
            return _servidor(f"A operadora {operadora.nome} não deu uma resposta válida ({motivo}).")
        if _is_fault(reading) and reading.message is not None:  # it blames the message: relayed as said
            tree = reading.message.tree.getroot()
            text = self._texto(_FAULT_STRING(tree).strip() or reading.motivo, operadora, prestador_id)
            return TissFault(_TISS_FAULT(tree).strip(), f"{text} (operadora {operadora.nome})"[:2000],
                             client=True, findings=reading.criticas)
        return None

    def _conclude(self, message: TissMessage, service: Service, operadora: Operadora, plano: Plano,
                  result: Resultado, prestador_id: int) -> None:
        """What the operator's answers cancel, and the answer for the provider."""
        result.cancelados = _cancelados(plano, result.trocas)
        try:
            result.resposta = self._answer(message, service, operadora, plano, result, prestador_id)
        except _Invalida as exc:
            log.warning("%s: resposta a %s não cabe na versão %s: %s", operadora.nome, service.name,
                        message.version, exc)
            result.fault = _servidor(f"A resposta da operadora {operadora.nome} não pôde ser convertida "
                                     f"para a versão {message.version}: {exc}")

    def _texto(self, texto: str, operadora: Operadora, prestador_id: int) -> str:
        """An operator's text for the provider: its protocol numbers as the gateway's."""
        if not numeros_operadora.candidatos(texto):
            return texto
        with self.readers() as session:
            return numeros_operadora.traduzir_texto(session, texto, prestador_id=prestador_id,
                                                    registro_ans=operadora.registro_ans)

    # -- 3. the answer for the provider ------------------------------------------------------------
    def _answer(self, message: TissMessage, service: Service, operadora: Operadora, plano: Plano,
                result: Resultado, prestador_id: int) -> bytes:
        roots = [_standalone(t.reading.message.root) for t in result.trocas
                 if t.reading is not None and t.reading.message is not None]
        numeros = {(e.text or "").strip() for r in roots for e in r.iter(*_PROTOCOLO_TAGS)} - {""}
        livres: set[str] = set()  # the operator's numbers in its sentences too, in the same query
        for r in roots:
            for element in numeros_operadora.textos_livres(r, _PROTOCOLO_TAGS):
                livres |= numeros_operadora.candidatos(element.text or "")
        numeros |= set(sorted(livres)[:MAX_NUMEROS_EM_TEXTO])
        with self.readers() as session:
            conhecidos = rows.protocolos_da_operadora(session, sorted(numeros), prestador_id=prestador_id,
                                                         registro_ans=operadora.registro_ans)
        for indice, answer in enumerate(roots):
            result.demonstrativos.extend(_demonstrativos(indice, answer, conhecidos))
        root = _combinar_cancelamentos(roots) if plano.cancelamento_lote else roots[0]
        _traduzir(root, conhecidos)
        _fundir_partes(root, {c.numero for c in conhecidos.values()})
        etree.cleanup_namespaces(root, top_nsmap=responses.NSMAP)
        # The operator answered in the version it takes: back to the provider's, validated there.
        adapter = self.adapters[operadora.registro_ans]
        erros = adapter.resposta_para(root, message.version or "", message.encoding)
        if erros:
            raise _Invalida(erros[0].message)
        return responses.envelope(root, message.encoding)


# --------------------------------------------------------------------------- request translation


class _Resposta(Exception):
    """Answer the provider at once with this mensagemErro (the operator is not asked)."""

    def __init__(self, codigo: str, texto: str):
        super().__init__(texto)
        self.codigo, self.texto = codigo, texto


class _Invalida(Exception):
    """The operator's answer does not fit the provider's version once converted."""


class _Tradutor:
    """Gateway protocol numbers in a request -> the operator's."""

    def __init__(self, session: Session, operadora: Operadora, prestador_id: int, versao: str):
        self.session = session
        self.operadora = operadora
        self.prestador_id = prestador_id
        self.versao = versao

    def _protocolo(self, *, numero: str | None = None,
                   numero_lote: str | None = None) -> rows.ProtocoloEncaminhado | None:
        """The gateway protocol, if the number is one, checked to be at the operator."""
        found = rows.protocolo_encaminhado(self.session, prestador_id=self.prestador_id,
                                              registro_ans=self.operadora.registro_ans, numero=numero,
                                              numero_lote=numero_lote)
        if found is None or not found.partes:
            return None  # not the gateway's, or kept by the gateway only: the operator decides
        recusada = found.recusada
        if recusada is not None:
            codigo, texto = rows.critica_de(self.session, recusada.resposta_id or recusada.envio_id) \
                or (None, "recusado")
            texto = numeros_operadora.traduzir_texto(self.session, texto, prestador_id=self.prestador_id,
                                                     registro_ans=self.operadora.registro_ans)
            if codigo not in responses.codigos_glosa(self.versao):
                codigo = CRITICA_PADRAO
            raise _Resposta(codigo, f"O protocolo {found.numero} foi recusado pela operadora "
                                    f"{self.operadora.nome}: {texto}")
        if not found.entregue:
            raise _Resposta(EM_PROCESSAMENTO, f"O protocolo {found.numero} ainda não foi entregue à "
                                              f"operadora {self.operadora.nome}: aguarde e consulte "
                                              "novamente.")
        return found

    def um_protocolo(self, element: etree._Element | None) -> None:
        if element is None:
            return
        found = self._protocolo(numero=(element.text or "").strip())
        if found is not None:
            element.text = found.partes[0].numero_protocolo

    def demonstrativo(self, root: etree._Element) -> None:
        """demonstrativoAnalise/protocolos: every part of a gateway protocol is asked for."""
        protocolos = root.find(f"{_A}solicitacaoDemonstrativoRetorno/{_A}demonstrativoAnalise/{_A}protocolos")
        if protocolos is None:
            return  # pagamento / odontologia: by date or competência, nothing to translate
        for element in list(protocolos.iterchildren(f"{_A}numeroProtocolo")):
            found = self._protocolo(numero=(element.text or "").strip())
            if found is None:
                continue
            element.text = found.partes[0].numero_protocolo
            anterior = element
            for parte in found.partes[1:]:
                extra = etree.Element(f"{_A}numeroProtocolo")
                extra.text = parte.numero_protocolo
                anterior.addnext(extra)
                anterior = extra
        quantos = len(protocolos.findall(f"{_A}numeroProtocolo"))
        if quantos > MAX_PROTOCOLOS:
            raise _Resposta(ACIMA_DO_MAXIMO, f"Os protocolos pedidos são {quantos} lotes na operadora "
                                             f"{self.operadora.nome}; peça no máximo {MAX_PROTOCOLOS} "
                                             "por demonstrativo.")

    def cancelamento(self, root: etree._Element) -> _Cancelamento:
        """Guides: each protocol becomes the operator's protocol of the part holding the guide.
        A lote: one copy of the request per part (none when there is nothing to split). Says
        which gateway lote or guides the request names."""
        found = _Cancelamento()
        tipo = root.find(f"{_A}cancelaGuia/{_A}tipoCancelamento")
        if tipo is None:
            return found
        for guia in tipo.iterchildren(f"{_A}tipoCancelamentoGuia"):
            self._guia_cancelada(guia, found)
        lote = tipo.find(f"{_A}tipoCancelamentoLote")
        if lote is not None:
            self._lote_cancelado(root, lote, found)
        return found

    def _guia_cancelada(self, guia: etree._Element, found: _Cancelamento) -> None:
        numero = (guia.findtext(f"{_A}numeroGuiaPrestador") or "").strip()
        element = guia.find(f"{_A}numeroProtocolo")
        if element is not None:
            protocolo = self._protocolo(numero=(element.text or "").strip())
            if protocolo is not None:
                parte = next((p for p in protocolo.partes if numero in p.guias), protocolo.partes[0])
                element.text = parte.numero_protocolo
        else:  # named by its number alone: the lote of the provider's that holds it, if delivered
            protocolo = self._entregue(_protocolo_da_guia(self.session, numero, self.prestador_id,
                                                          self.operadora.registro_ans))
        faturamento = (guia.findtext(f"{_A}tipoGuia") or "").strip() == FATURAMENTO
        if protocolo is not None and faturamento and any(numero in p.guias for p in protocolo.partes):
            found.guias[numero] = protocolo
        else:
            found.outras += 1

    def _lote_cancelado(self, root: etree._Element, lote: etree._Element, found: _Cancelamento) -> None:
        numero_lote = lote.find(f"{_A}numeroLote")
        protocolo = lote.find(f"{_A}numeroProtocolo")
        encaminhado = None
        if protocolo is not None:
            encaminhado = self._protocolo(numero=(protocolo.text or "").strip())
        if encaminhado is None and protocolo is None and numero_lote is not None:
            encaminhado = self._protocolo(numero_lote=(numero_lote.text or "").strip())
        if encaminhado is None:
            return
        found.lote = encaminhado
        for parte in encaminhado.partes:
            numero_lote.text = parte.numero_lote or numero_lote.text
            if protocolo is not None:
                protocolo.text = parte.numero_protocolo
            found.copias.append(copy.deepcopy(root))

    def _entregue(self, numero: str | None) -> rows.ProtocoloEncaminhado | None:
        """The gateway protocol ``numero`` if every part of it is at the operator (no answer at
        once otherwise: a guide named without protocol goes to the operator as it is)."""
        if numero is None:
            return None
        found = rows.protocolo_encaminhado(self.session, prestador_id=self.prestador_id,
                                           registro_ans=self.operadora.registro_ans, numero=numero)
        return found if found is not None and found.entregue else None


@dataclass
class _Cancelamento:
    """What a cancelaGuia names at the gateway, found while translating it."""

    copias: list[etree._Element] = field(default_factory=list)  # the request per lote part
    lote: rows.ProtocoloEncaminhado | None = None  # tipoCancelamentoLote of a gateway protocol
    guias: dict[str, rows.ProtocoloEncaminhado] = field(default_factory=dict)  # faturamento guides
    outras: int = 0  # guides the gateway did not deliver (unknown, solicitação, recurso...)

    @property
    def enviado(self) -> bool:
        """Everything it names is at the operator, delivered by the gateway."""
        return self.lote is not None or (bool(self.guias) and not self.outras)


def _protocolo_da_guia(session: Session, numero: str, prestador_id: int, registro_ans: str) -> str | None:
    """The gateway protocol of the provider's latest lote to the operator holding guide ``numero``."""
    return session.execute(_PROTOCOLO_DA_GUIA, {"numero": numero, "prestador_id": prestador_id,
                                                "registro_ans": registro_ans}).scalar()


def _message(root: etree._Element, original: TissMessage) -> TissMessage:
    return TissMessage(b"", etree.ElementTree(root), root, original.kind, original.version, original.encoding,
                       False)


def _sequencial(sequencial: str, indice: int, total: int) -> str:
    """The provider's sequencialTransacao; ``-2``, ``-3``... for the further calls of one request
    (st_texto12: a long one keeps its rightmost characters, as lote parts do)."""
    if indice == 0 or total == 1:
        return sequencial
    sufixo = f"-{indice + 1}"
    return sequencial[-(12 - len(sufixo)):] + sufixo


# --------------------------------------------------------------------------- answer translation


def _is_fault(reading: Reading) -> bool:
    message = reading.message
    return message is not None and (message.kind == "tissFaultWS"
                                    or message.root.tag == f"{{{SOAP11_NS}}}Fault")


def _servidor(texto: str) -> TissFault:
    return TissFault("ErroInesperadoServidor", texto[:2000], client=False)


@contextmanager
def _in_flight(registro: str) -> Iterator[None]:
    """The relay counted as waiting for the operator while the block runs (metrics)."""
    metrics.relay_in_flight(registro, 1)
    try:
        yield
    finally:
        metrics.relay_in_flight(registro, -1)


def _relay_outcome(result: Resultado) -> str:
    """What a relay the operator was asked came to (metrics): ``falha`` (the gateway's
    ErroInesperadoServidor), ``recusada`` (the operator's own refusal) or ``respondida``."""
    if result.fault is not None:
        return "recusada" if result.fault.client else "falha"
    refused = any(t.reading is not None and t.reading.kind == "recusada" for t in result.trocas)
    return "recusada" if refused else "respondida"


def _standalone(root: etree._Element) -> etree._Element:
    """A copy of the operator's ``*WS`` root on its own, without the operator's signature."""
    out = copy.deepcopy(root)
    out.tail = None
    for child in [c for c in out.iterchildren(etree.Element) if c.tag in _SIGNATURES]:
        out.remove(child)
    etree.strip_tags(out, etree.Comment, etree.ProcessingInstruction)
    return out


def _traduzir(root: etree._Element, conhecidos: dict[str, rows.ProtocoloDaOperadora]) -> None:
    """The operator's protocol numbers -> the gateway's, in its protocol elements and in its
    sentences (a mensagemErro's descricaoGlosa...); a lote part's numeroLote -> the provider's
    numeroLote."""
    partes = {c.numero_lote_parte: c.numero_lote for c in conhecidos.values()
              if c.numero_lote and c.numero_lote_parte and c.numero_lote_parte != c.numero_lote}
    for element in root.iter(*_PROTOCOLO_TAGS):
        found = conhecidos.get((element.text or "").strip())
        if found is not None:
            element.text = found.numero
    traducoes = {numero: c.numero for numero, c in conhecidos.items()}
    for element in list(numeros_operadora.textos_livres(root, _PROTOCOLO_TAGS)) if traducoes else ():
        element.text = numeros_operadora.substituir(element.text or "", traducoes)
    if partes:
        for element in root.iter(*_LOTE_TAGS):
            numero = partes.get((element.text or "").strip())
            if numero is not None:
                element.text = numero


def _cancelados(plano: Plano, trocas: Sequence[Troca]) -> list[Cancelado]:
    """The gateway lotes and guides the operator's answers confirm cancelled (statusCancelamento
    1): a lote part by its own answer, a guide by its dadosGuia."""
    found = [cancelado for cancelado, troca in zip(plano.lote_cancelado, trocas, strict=False)
             if _status_cancelamento(_conteudo(troca), f"{_A}loteCancelado") == {"": CANCELADO}]
    if plano.guias_canceladas and trocas:
        for numero, status in _status_cancelamento(_conteudo(trocas[0]), f"{_A}dadosGuia").items():
            protocolo_id = plano.guias_canceladas.get(numero)
            if protocolo_id is not None and status == CANCELADO:
                found.append(Cancelado(protocolo_id, (numero,)))
    return found


def _conteudo(troca: Troca) -> etree._Element | None:
    """The operator's answer root of an exchange it answered with content (no refusal)."""
    reading = troca.reading
    return reading.message.root if reading and reading.kind == "entregue" and reading.message else None


def _status_cancelamento(root: etree._Element | None, tag: str) -> dict[str, str]:
    """statusCancelamento of each ``tag`` of a reciboCancelaGuia, by its numeroGuiaPrestador
    (a loteCancelado has none: '')."""
    found: dict[str, str] = {}
    for element in root.iter(tag) if root is not None else ():
        numero = (element.findtext(f"{_A}numeroGuiaPrestador") or "").strip()
        found[numero] = (element.findtext(f"{_A}statusCancelamento") or "").strip()
    return found


def _combinar_cancelamentos(roots: list[etree._Element]) -> etree._Element:
    """The answers of a lote cancelled part by part as one: the first refusal (mensagemErro) if
    any; else one loteCancelado whose status is cancelled (1) only if every part's is."""
    for root in roots:
        if root.find(f".//{_A}mensagemErro") is not None:
            return root
    first = roots[0]
    status = [(r.findtext(f".//{_A}loteCancelado/{_A}statusCancelamento") or "").strip() for r in roots]
    element = first.find(f".//{_A}loteCancelado/{_A}statusCancelamento")
    if element is not None:
        element.text = next((s for s in status if s and s != "1"), status[0])
    return first


# --------------------------------------------------------------------------- demonstrativos

_TIPO_DEMONSTRATIVO = {"demonstrativoAnaliseConta": "2", "demonstrativoPagamento": "1",
                       "demonstrativoPagamentoOdonto": "3"}


def _demonstrativos(indice: int, root: etree._Element,
                    conhecidos: dict[str, rows.ProtocoloDaOperadora]) -> list[DemonstrativoObtido]:
    """One row per protocol a demonstrativo of the operator's answer covers (or one without)."""
    body = root.find(f"{_A}demonstrativoRetorno")
    if body is None:
        return []
    out = []
    for element in body.iterchildren(etree.Element):
        tipo = _TIPO_DEMONSTRATIVO.get(etree.QName(element).localname)
        if tipo is None:
            continue
        numeros = list(dict.fromkeys((e.text or "").strip() for e in element.iter(f"{_A}numeroProtocolo")))
        for numero in numeros or [None]:
            found = conhecidos.get(numero or "")
            out.append(DemonstrativoObtido(indice, tipo, numero, found.protocolo_id if found else None))
    return out


@dataclass(frozen=True)
class _Fusao:
    """How the entries of one protocol in a demonstrativo are merged (the XSD order kept)."""

    guia: str  # the repeated guide element
    depois_das_guias: str  # the element that follows the guides
    somas: tuple[str, ...]  # values (paths) summed
    opcionais: tuple[tuple[str, str], ...] = ()  # optional value summed -> the element it follows
    data: str | None = None  # the earliest date is kept
    situacao: str | None = None  # the least advanced dm_statusProtocolo is kept
    copiados: tuple[tuple[str, str], ...] = ()  # optional element taken from a part -> what it follows


# entry element -> how: demonstrativo de análise (ct_contaMedicaResumo), de pagamento
# (ct_dadosResumoDemonstrativo) and de pagamento odontologia (cto_demonstrativoOdontologia protocolos).
_FUSOES = {
    "dadosProtocolo": _Fusao(
        "relacaoGuias", "valorInformadoProtocolo",
        ("valorInformadoProtocolo", "valorProcessadoProtocolo", "valorLiberadoProtocolo"),
        (("valorGlosaProtocolo", "valorLiberadoProtocolo"),), "dataProtocolo", "situacaoProtocolo",
        (("GlosaProtocolo", "dataProtocolo"),)),
    "relacaoProtocolos": _Fusao(
        "guiasDoLote", "", ("valorInformado", "valorProcessado", "valorLiberado"),
        (("valorGlosa", "valorLiberado"),), "dataProtocolo"),
    "protocolos": _Fusao(
        "dadosPagamentoGuia", "totaisPorProtocolo",
        tuple(f"totaisPorProtocolo/{n}" for n in (
            "valorTotalInformadoPorProtocolo", "valorTotalProcessadoPorProtocolo",
            "valorTotalGlosaPorProtocolo", "valorTotalFranquiaPorProtocolo",
            "valorTotalLiberadoPorProtocolo"))),
}
_GERAIS = (("valorInformadoGeral", "valorInformadoProtocolo"),
           ("valorProcessadoGeral", "valorProcessadoProtocolo"),
           ("valorLiberadoGeral", "valorLiberadoProtocolo"), ("valorGlosaGeral", "valorGlosaProtocolo"))


def _fundir_partes(root: etree._Element, gateway: set[str]) -> None:
    """The parts of a split lote, already translated to one gateway protocol, become one entry
    with the guides of all parts and the summed values (Decimal)."""
    body = root.find(f"{_A}demonstrativoRetorno")
    if body is None or not gateway:
        return
    _juntar_analises(body, gateway)
    for nome, fusao in _FUSOES.items():
        # Keyed by the parent element itself: the key keeps its lxml proxy alive, so the same
        # parent is the same object on every getparent().
        grupos: dict[tuple[etree._Element, str], list[etree._Element]] = {}
        for entrada in body.iter(f"{_A}{nome}"):
            numero = (entrada.findtext(f"{_A}numeroProtocolo") or "").strip()
            if numero in gateway:
                grupos.setdefault((entrada.getparent(), numero), []).append(entrada)
        for entradas in grupos.values():
            if len(entradas) > 1:
                _fundir(entradas[0], entradas[1:], fusao)


def _juntar_analises(body: etree._Element, gateway: set[str]) -> None:
    """Parts of one protocol in different demonstrativoAnaliseConta move to the first one that
    has it (each demonstrativo's general totals follow what moved)."""
    primeira: dict[str, etree._Element] = {}
    for dem in list(body.iterchildren(f"{_A}demonstrativoAnaliseConta")):
        conta = dem.find(f"{_A}dadosConta")
        for entrada in list(conta.iterchildren(f"{_A}dadosProtocolo")) if conta is not None else ():
            numero = (entrada.findtext(f"{_A}numeroProtocolo") or "").strip()
            if numero not in gateway:
                continue
            destino = primeira.setdefault(numero, dem)
            if destino is dem:
                continue
            for geral, valor in _GERAIS:
                _somar(dem, geral, -_valor(entrada, valor))
                _somar(destino, geral, _valor(entrada, valor))
            destino.find(f"{_A}dadosConta").append(entrada)
        if conta is not None and len(conta) == 0:
            body.remove(dem)


def _fundir(alvo: etree._Element, outras: Sequence[etree._Element], fusao: _Fusao) -> None:
    ultima = alvo.findall(f"{_A}{fusao.guia}")
    ancora = ultima[-1] if ultima else None
    for outra in outras:
        for nome, depois in fusao.copiados:
            if alvo.find(f"{_A}{nome}") is None and outra.find(f"{_A}{nome}") is not None:
                alvo.find(f"{_A}{depois}").addnext(copy.deepcopy(outra.find(f"{_A}{nome}")))
        for guia in outra.findall(f"{_A}{fusao.guia}"):
            seguinte = alvo.find(f"{_A}{fusao.depois_das_guias}") if fusao.depois_das_guias else None
            if ancora is not None:
                ancora.addnext(guia)
            elif seguinte is not None:
                seguinte.addprevious(guia)
            else:
                alvo.append(guia)
            ancora = guia
        for caminho in fusao.somas:
            _somar(alvo, caminho, _valor(outra, caminho))
        for nome, depois in fusao.opcionais:
            if outra.find(f"{_A}{nome}") is None:
                continue
            if alvo.find(f"{_A}{nome}") is None:
                novo = etree.Element(f"{_A}{nome}")
                novo.text = "0.00"
                alvo.find(f"{_A}{depois}").addnext(novo)
            _somar(alvo, nome, _valor(outra, nome))
        if fusao.data:
            _menor(alvo, outra, fusao.data)
        if fusao.situacao:
            _menos_avancada(alvo, outra, fusao.situacao)
        outra.getparent().remove(outra)


def _caminho(path: str) -> str:
    return "/".join(f"{_A}{step}" for step in path.split("/"))


def _valor(element: etree._Element, path: str) -> Decimal:
    try:
        return Decimal((element.findtext(_caminho(path)) or "0").strip() or "0")
    except InvalidOperation:
        raise _Invalida(f"valor inválido em {path}") from None


def _somar(element: etree._Element, path: str, valor: Decimal) -> None:
    found = element.find(_caminho(path))
    if found is not None:
        found.text = str((_valor(element, path) + valor).quantize(_CENTAVO))


def _menor(alvo: etree._Element, outra: etree._Element, nome: str) -> None:
    mine, other = alvo.find(f"{_A}{nome}"), outra.findtext(f"{_A}{nome}")
    if mine is not None and other and other.strip() < (mine.text or "").strip():
        mine.text = other.strip()


def _menos_avancada(alvo: etree._Element, outra: etree._Element, nome: str) -> None:
    mine, other = alvo.find(f"{_A}{nome}"), (outra.findtext(f"{_A}{nome}") or "").strip()
    if mine is None or not other.isdigit() or not (mine.text or "").strip().isdigit():
        return
    if PROGRESS.get(int(other), 1) < PROGRESS.get(int(mine.text.strip()), 1):
        mine.text = other


def moment(message: TissMessage, fallback: datetime) -> datetime:
    """The provider's own transaction moment (cabeçalho dataRegistro/horaRegistroTransacao)."""
    ident = message.root.find(f"{_A}cabecalho/{_A}identificacaoTransacao")
    if ident is None:
        return fallback
    data = (ident.findtext(f"{_A}dataRegistroTransacao") or "").strip()
    hora = (ident.findtext(f"{_A}horaRegistroTransacao") or "").strip()
    try:
        return datetime.fromisoformat(f"{data}T{hora[:8]}").replace(tzinfo=UTC)
    except ValueError:
        return fallback
