"""One synchronous call relayed while the provider waits (the services of
:data:`gateway.delivery.relay.SERVICOS`), from the duplicate check to its storage.

duplicate? -> plan (read only) -> ask the operator (no transaction open) -> store, in one write
transaction: the provider's request, every document sent and every raw answer, the answer given,
the Transacao, the demonstrativos obtained and what the operator confirmed cancelled (the guides'
situação 'cancelada'; a lote left without an accepted guide gets protocol status 9 Cancelado,
origem ``operadora:<registro>``, and its deliveries stop being tracked). A failure is stored
without Transacao (the provider may try again) and raised as
:class:`~gateway.delivery.checked.StoredFault`.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from lxml import etree
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.delivery import relay
from gateway.delivery.checked import Answered, CheckedCall, StoredFault, log, replay, store_once
from gateway.message import responses
from gateway.message.checks import Call
from gateway.message.faults import Reply, TissFault
from gateway.message.findings import Finding
from gateway.message.findings import error as critica
from gateway.message.services import ANS_NS, Service
from gateway.message.tables import GUIA_ACEITA, GUIA_CANCELADA
from gateway.storage import rows
from gateway.storage.models import ENTREGA_TABLE, GUIA_TABLE, LOTE_TABLE, Protocolo
from gateway.storage.protocolos import set_status

_A = f"{{{ANS_NS}}}"
_E, _G, _L = ENTREGA_TABLE, GUIA_TABLE, LOTE_TABLE
CANCELADO = 9  # dm_statusProtocolo 9 Cancelado


class SyncRelay:
    def __init__(self, proxy: relay.Proxy, sessions: sessionmaker[Session], readers: sessionmaker[Session],
                 clock: Callable[[], datetime]):
        self.proxy = proxy
        self.sessions = sessions  # read-write: one transaction per request
        self.readers = readers  # the duplicate check and the plan
        self.clock = clock

    def answer(self, checked: CheckedCall) -> Answered:
        """The operator's answer, or the gateway's own refusal; raises a TissFault for a call the
        operator could not answer (a StoredFault once it is stored)."""
        call, operadora = checked.call, checked.operadora
        if not self.proxy.connected(operadora):
            raise operadora_nao_conectada(checked)
        cabecalho = call.cabecalho
        with self.readers() as session:
            earlier = rows.transacao_anterior(session, checked.prestador_id, cabecalho.tipo,
                                                 cabecalho.sequencial)
            if earlier is not None:
                return replay(checked, earlier)
            plano = self.proxy.plan(session, call.message, call.service, operadora, checked.prestador_id,
                                    cabecalho.sequencial)
        result = self.proxy.exchange(call.message, call.service, operadora, plano,
                                     prestador_id=checked.prestador_id,
                                     agora=relay.moment(call.message, self.clock()))
        if result.fault is not None:
            self._store_failure(checked, result, result.fault)
            raise StoredFault(result.fault)
        # A concurrent copy answered meanwhile: as it was.
        return store_once(self.sessions.begin, checked, lambda session: self._store(session, checked, result))

    def _store(self, session: Session, checked: CheckedCall, result: relay.Resultado) -> Answered:
        call, registro = checked.call, checked.operadora.registro_ans
        request_id = rows.add_mensagem(session, checked.mensagem("entrada", call.message.data, "aceita",
                                                                    checked.hash_lower))
        answers = self._store_trocas(session, checked, request_id, result.trocas)
        data = result.resposta
        outcome, code = "accepted", None
        if data is None:  # answered here: the adapter's críticas, a protocol not at the operator...
            found = result.criticas or _plan_refusal(result)
            rows.add_criticas(session, request_id, found)
            ctx = responses.reply_context(call.message.root, registro_ans=registro,
                                          sequencial=str(request_id), now=self.clock())
            root = _nao_cancelado(ctx, call) if result.nao_cancelado else _erro(ctx, call.service, found[0])
            data = responses.envelope(root, call.message.encoding)
            outcome, code = "refused", found[0].code
        else:
            refusal = next((t.reading for t in result.trocas
                            if t.reading is not None and t.reading.kind == "recusada"), None)
            if refusal is not None:  # the operator's own refusal, relayed
                outcome, code = "refused", refusal.criticas[0].code if refusal.criticas else None
            _cancelar(session, result.cancelados, registro, self.clock())
        response = checked.mensagem("saida", data, "resposta", None)
        response["resposta_de_id"] = request_id
        # The Transacao last, whole (a row written once): its unique key still fails a concurrent copy.
        rows.add_transacao(session, prestador_id=checked.prestador_id, tipo=call.cabecalho.tipo,
                           sequencial=call.cabecalho.sequencial, hash_=checked.hash_lower,
                           requisicao_id=request_id, resposta_id=rows.add_mensagem(session, response))
        rows.add_demonstrativos(session, [dict(
            prestador_id=checked.prestador_id, registro_ans=registro, tipo=d.tipo,
            protocolo_id=d.protocolo_id, numero_protocolo=(d.numero_protocolo or "")[:40] or None,
            mensagem_id=answers[d.troca], obtido_em=self.clock()) for d in result.demonstrativos])
        return Answered(Reply(data, call.message.encoding), outcome, code)

    def _store_failure(self, checked: CheckedCall, result: relay.Resultado, fault: TissFault) -> None:
        """The request and what was exchanged, without Transacao: the provider may try again."""
        call = checked.call
        try:
            with self.sessions.begin() as session:
                row = checked.mensagem("entrada", call.message.data, "recusada" if fault.client else "erro",
                                       checked.hash_lower or None)
                row["codigo_erro"] = fault.tiss_fault
                request_id = rows.add_mensagem(session, row)
                rows.add_criticas(session, request_id, [critica(None, str(fault.faultstring))])
                self._store_trocas(session, checked, request_id, result.trocas)
        except Exception:  # the provider must hear the operator's failure, not the storage's
            log.exception("falha ao gravar a troca com a operadora")
        log.info("%s: %s %s", call.service.name, fault.tiss_fault, fault.faultstring)

    @staticmethod
    def _store_trocas(session: Session, checked: CheckedCall, request_id: int,
                      trocas: Sequence[relay.Troca]) -> list[int | None]:
        """Each document sent to the operator and its raw answer (with the críticas of a refusal);
        returns the answers' ids."""
        registro = checked.operadora.registro_ans
        answers: list[int | None] = []
        for troca in trocas:
            answer_id = None
            if troca.enviado is not None:
                sent = checked.mensagem("saida", troca.enviado, "aceita", None)
                sent.update(destinatario=registro, sequencial_transacao=troca.sequencial,
                            versao=troca.versao, resposta_de_id=request_id, endereco=None)
                sent_id = rows.add_mensagem(session, sent)
                if troca.resposta is not None:
                    answer_id = rows.add_mensagem(session, _answer_row(checked, troca, troca.resposta,
                                                                          registro, sent_id))
                    if troca.reading is not None and troca.reading.criticas:
                        rows.add_criticas(session, answer_id, troca.reading.criticas)
            answers.append(answer_id)
        return answers


def _answer_row(checked: CheckedCall, troca: relay.Troca, resposta: bytes, registro: str,
                sent_id: int) -> dict[str, Any]:
    """The Mensagem row of the operator's raw answer to a document sent."""
    reading = troca.reading
    resultado = {"entregue": "resposta", "recusada": "recusada"}.get(reading.kind if reading else "", "erro")
    row = checked.mensagem("entrada", resposta, resultado, None)
    row.update(remetente=registro, destinatario=None, resposta_de_id=sent_id, endereco=None,
               versao=reading.message.version if reading and reading.message else None,
               sequencial_transacao=troca.sequencial,
               codigo_erro=(reading.motivo[:40] or None) if reading else None)
    return row


def _plan_refusal(result: relay.Resultado) -> list[Finding]:
    """The plan's answer at once (a protocol not at the operator, a cancelamento the operator's
    rule refuses), as a crítica."""
    if result.nao_cancelado is not None:
        return [critica(None, result.nao_cancelado)]
    if result.erro is None:
        raise ValueError("resultado sem resposta, sem críticas e sem erro")
    return [critica(*result.erro)]


def _nao_cancelado(ctx: responses.ReplyContext, call: Call) -> etree._Element:
    """reciboCancelaGuia with statusCancelamento 2 (não cancelado) for everything asked, as the
    operator answers a cancelamento its rule refuses (ct_reciboCancelaGuia has it: no
    mensagemErro needed)."""
    root = responses.recibo(ctx, call.service, call.message.root, numero_protocolo=None)
    for element in root.iter(f"{_A}statusCancelamento"):
        element.text = relay.NAO_CANCELADO
    return root


def _cancelar(session: Session, cancelados: Sequence[relay.Cancelado], registro: str, now: datetime) -> None:
    """What the operator confirmed cancelled: those guides' situação is 'cancelada'; a lote left
    without an accepted guide is 9 Cancelado (its deliveries too: the operator will not change
    it, so tracking stops)."""
    guias: dict[int, set[str] | None] = {}
    for cancelado in cancelados:
        atual = guias.get(cancelado.protocolo_id, set())
        guias[cancelado.protocolo_id] = None if atual is None or not cancelado.guias \
            else atual | set(cancelado.guias)
    for protocolo_id, numeros in guias.items():
        lote_id = session.scalar(select(_L.c.id).where(_L.c.protocolo_id == protocolo_id))
        if lote_id is None:
            continue
        aceitas = (_G.c.lote_id == lote_id) & (_G.c.situacao == GUIA_ACEITA)
        escolhidas = aceitas if numeros is None else aceitas & _G.c.numero_guia_prestador.in_(sorted(numeros))
        session.execute(update(_G).where(escolhidas).values(situacao=GUIA_CANCELADA))
        rows.bump_versao(session, protocolo_id)  # the guides left its situação answer
        if session.scalar(select(func.count()).where(aceitas)) == 0:
            _lote_cancelado(session, protocolo_id, registro, now)


def _lote_cancelado(session: Session, protocolo_id: int, registro: str, now: datetime) -> None:
    protocolo = session.get_one(Protocolo, protocolo_id)
    if protocolo.status != CANCELADO:
        set_status(session, protocolo, CANCELADO, f"operadora:{registro}", now=now)
    session.execute(update(_E).where(_E.c.protocolo_id == protocolo_id).values(
        status=CANCELADO, status_em=now, proxima_consulta_em=None))
    session.execute(update(_E).where(  # not polled any more: their sealed senha is needed no more
        _E.c.protocolo_id == protocolo_id, _E.c.estado.in_(("entregue", "recusada")))
        .values(senha_cifrada=None))


def operadora_nao_conectada(checked: CheckedCall) -> TissFault:
    return TissFault("ErroInesperadoServidor", f"A operadora {checked.operadora.nome} ainda não está "
                     f"conectada ao gateway: {checked.call.service.name} precisa da resposta da operadora.",
                     client=False)


def _erro(ctx: responses.ReplyContext, service: Service, found: Finding) -> etree._Element:
    """The service's refusal answer: mensagemErro (codigoGlosa in the elegibilidade)."""
    codigo = found.code if found.code in responses.codigos_glosa(ctx.version) else relay.CRITICA_PADRAO
    if service.name == "tissVerificaElegibilidade":
        return responses.glosa_elegibilidade(ctx, codigo, found.message[:500])
    return responses.mensagem_erro(ctx, service, codigo, found.message[:500])
