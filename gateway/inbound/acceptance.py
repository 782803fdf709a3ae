"""Store and answer, in one write transaction, the services the gateway answers from its own data.

A lote gets its protocoloRecebimento (or the refusal the operator would give it: lote already
sent, the adapter's críticas); the other store-and-forward services their receipt (or the
adapter's críticas); both are scheduled for delivery in the same transaction (the outbox). The
adapter's críticas (``Adapter.avaliar``: a lote's sender, the operator's rules, the services it
takes, and whether the message converts to a version the operator takes) are read for every
store-and-forward service before anything is stored: what the operator would refuse, the version
included, is refused before a protocol is given, never after.

The sender of a lote must be a provider of the operator where its rules say so
(``prestador_cadastrado``): the gateway has its code there (prestador_codigo), else 1206 (1203 for
an origem by code), the operator's "prestador não localizado na operadora".

Partial sending (an operator whose rules have ``envio_parcial``): a crítica about one guide refuses
that guide alone. The lote is stored with all its guides, the refused ones ``situacao`` recusada
with their críticas (on the guide), and gets its protocol; the receipt lists the accepted guides
and their total, and the refused ones in glosaProtocolo; the adapter leaves them out of what it
sends. ``lote.quantidade_guias`` and ``valor_informado`` stay what the provider sent: what was
accepted is read from each guide's ``situacao``. Críticas about the lote, or every guide refused,
refuse the whole lote as before (mensagemErro). A status query's answer is built beforehand
(gateway.inbound.status): the write transaction then holds the database's write lock (SQLite has
one for all workers) only to store the messages, a lote's guide list once per state of its
protocol (gateway.storage.kept_lists).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, cast

from lxml import etree
from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection, Engine

from adapters.base import Adapter, Avaliacao
from gateway.delivery import outbox
from gateway.delivery.checked import Answered, CheckedCall, store_once
from gateway.delivery.sync_relay import operadora_nao_conectada
from gateway.inbound.recursos import criticas_do_recurso
from gateway.inbound.snapshot import Snapshot
from gateway.inbound.status import STATUS, StatusQueries, guia_recebida
from gateway.message import credencial, responses
from gateway.message.faults import Reply
from gateway.message.findings import Finding
from gateway.message.findings import error as critica
from gateway.message.lote import LoteLido, read_lote
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import Service
from gateway.message.tables import GUIA_ACEITA, GUIA_RECUSADA
from gateway.security import vault
from gateway.storage import rows
from gateway.storage.models import PrestadorCodigo
from gateway.storage.prepared import Prepared
from gateway.storage.protocolos import insert_protocolo

# Services answered with a receipt (store-and-forward) and the tipo of their protocol; the
# synchronous ones, cancelamento included, are relayed to the operator (gateway.delivery.relay).
RECEIPT_SERVICES = {"tissLoteAnexo": "anexo", "tissRecursoGlosa": "recurso",
                    "tissEnvioDocumentos": "documento", "tissComunicacaoBeneficiario": "comunicacao"}
LOTE_JA_INFORMADO = {"4.03.00": "3268"}  # 4.01/4.02 lack 3268: 1308 GUIA JÁ APRESENTADA is nearest
_NADA = Avaliacao()  # a message to an operator without an adapter: nothing to say of it
_PC = cast(Table, PrestadorCodigo.__table__)
_CODIGO = Prepared(select(_PC.c.id).where(_PC.c.prestador_id == bindparam("prestador_id"),
                                          _PC.c.registro_ans == bindparam("registro_ans")).limit(1))


@dataclass(frozen=True, slots=True)
class _Read:
    """A store-and-forward request read before its write transaction (reading needs no lock)."""

    lido: LoteLido | None  # a loteGuias, read
    avaliacao: Avaliacao  # what the operator would refuse (its adapter), nothing without one
    # The body without its senhaPrestador (stored so) and what was taken out (sealed for delivery):
    # one scan of the body for both.
    redaction: credencial.Redaction


class _Built(NamedTuple):
    root: etree._Element | responses.Draft
    outcome: str = "accepted"
    code: str | None = None


class Acceptance:
    def __init__(self, registry: SchemaRegistry, engine: Engine, adapters: Mapping[str, Adapter],
                 clock: Callable[[], datetime]):
        self.registry = registry
        # Read-write, on a plain connection: the Session machinery cost more than the inserts.
        self.engine = engine
        self.adapters = adapters  # registro ANS -> the operator's adapter
        self.clock = clock
        self.status = StatusQueries(registry, engine, clock)  # status queries: gateway.inbound.status

    def answer(self, checked: CheckedCall, snapshot: Snapshot) -> Answered:
        """``snapshot``: the request's read-only transaction; closed here before writing."""
        if checked.call.service.name == STATUS.name:
            return self.status.answer(checked, snapshot)
        read = self._read(checked, snapshot)
        snapshot.close()
        return store_once(self.engine.begin, checked,
                          lambda connection: self._store_and_answer(connection, checked, read))

    def _read(self, checked: CheckedCall, snapshot: Snapshot) -> _Read:
        message = checked.call.message
        adapter = self.adapters.get(checked.operadora.registro_ans)
        lido = read_lote(message.root) if checked.call.service.name == "tissLoteGuias" else None
        redaction = credencial.redact(message.data)
        if adapter is None:
            return _Read(lido, _NADA, redaction)
        cadastrado = (lido is None or not adapter.prestador_cadastrado
                      or _tem_codigo(snapshot.connection(), checked))
        avaliacao = adapter.avaliar(message, remetente_cadastrado=cadastrado)
        if checked.call.service.name == "tissRecursoGlosa" and not avaliacao.todas:
            # Checked against the glosas the operator reported (validated when the tracker stored them).
            avaliacao = avaliacao.recusando(*criticas_do_recurso(
                snapshot.connection(), checked.prestador_id, checked.operadora.registro_ans, message.root,
                message.version or ""))
        return _Read(lido, avaliacao, redaction)

    def _store_and_answer(self, connection: Connection, checked: CheckedCall, read: _Read) -> Answered:
        call, now = checked.call, self.clock()
        message = call.message
        request_id = rows.add_mensagem(connection, checked.mensagem("entrada", message.data, "aceita",
                                                                       checked.hash_lower), read.redaction)
        reply_ctx = responses.reply_context(message.root, registro_ans=checked.operadora.registro_ans,
                                            sequencial=str(request_id), now=now)
        built = self._build(connection, checked, reply_ctx, request_id, read)
        data = responses.envelope(built.root, message.encoding)
        response = checked.mensagem("saida", data, "resposta", None)
        response["resposta_de_id"] = request_id
        resposta_id = rows.add_mensagem(connection, response)
        # The Transacao last, naming both (no UPDATE: one statement less). Its unique key decides
        # which concurrent copy is stored (IntegrityError for the others, which then replay); a
        # copy of a lote meets the lote's unique numero_vigente before it.
        rows.add_transacao(connection, prestador_id=checked.prestador_id, tipo=call.cabecalho.tipo,
                           sequencial=call.cabecalho.sequencial, hash_=checked.hash_lower,
                           requisicao_id=request_id, resposta_id=resposta_id)
        return Answered(Reply(data, message.encoding), built.outcome, built.code)

    def _build(self, connection: Connection, checked: CheckedCall, ctx: responses.ReplyContext,
               request_id: int, read: _Read) -> _Built:
        service = checked.call.service
        if read.lido is not None:
            return self._lote(connection, checked, ctx, request_id, read.lido, read)
        if service.name in RECEIPT_SERVICES:
            if read.avaliacao.todas:  # the operator would refuse it: said now
                return _refused(connection, ctx, service, request_id, read.avaliacao.todas)
            protocolo_id, numero = insert_protocolo(connection, tipo=RECEIPT_SERVICES[service.name],
                                                    prestador_id=checked.prestador_id,
                                                    registro_ans=checked.operadora.registro_ans, now=ctx.now)
            self._schedule(connection, checked, request_id, protocolo_id, None, ctx.now, read.redaction)
            return _Built(responses.recibo(ctx, service, checked.call.message.root, numero_protocolo=numero))
        raise operadora_nao_conectada(checked)

    def _lote(self, connection: Connection, checked: CheckedCall, ctx: responses.ReplyContext,
              request_id: int, lido: LoteLido, read: _Read) -> _Built:
        service, avaliacao = checked.call.service, read.avaliacao
        registro = checked.operadora.registro_ans
        anterior = rows.lote_anterior(connection, checked.prestador_id, registro, lido.numero_lote)
        if anterior is not None and anterior.vigente:  # a lote refused in full may be sent again
            code = LOTE_JA_INFORMADO.get(ctx.version, "1308")
            text = f"Número de lote {lido.numero_lote} já informado anteriormente."
            rows.add_criticas(connection, request_id, [critica(code, text, "loteGuias/numeroLote")])
            return _Built(responses.mensagem_erro(ctx, service, code, text), "refused", code)
        if avaliacao.gerais:  # the operator would refuse it: the provider hears it now, with the same codes
            return _refused(connection, ctx, service, request_id, avaliacao.todas)
        recusadas = avaliacao.por_guia  # partial sending: these guides alone are refused
        protocolo_id, numero = insert_protocolo(connection, tipo="lote", prestador_id=checked.prestador_id,
                                                registro_ans=registro, now=ctx.now)
        lote_id = rows.add_lote(connection, dict(
            prestador_id=checked.prestador_id, registro_ans=registro, numero_lote=lido.numero_lote,
            numero_vigente=lido.numero_lote, reenvio_de_id=anterior.lote_id if anterior else None,
            tipo_guia=lido.tipo_guia, quantidade_guias=len(lido.guias),
            valor_informado=lido.valor_informado, hash=checked.hash_found, mensagem_id=request_id,
            protocolo_id=protocolo_id, criado_em=ctx.now,
        ), [dict(numero_guia_prestador=g.numero_guia_prestador, numero_guia_operadora=g.numero_guia_operadora,
                 tipo=lido.tipo_guia, numero_carteira=g.numero_carteira, valor_informado=g.valor_informado,
                 situacao=GUIA_RECUSADA if g.numero_guia_prestador in recusadas else GUIA_ACEITA)
            for g in lido.guias])
        if recusadas:
            _criticas_das_guias(connection, request_id, lote_id, recusadas)
        self._schedule(connection, checked, request_id, protocolo_id, lote_id, ctx.now, read.redaction)
        aceitas = [g for g in lido.guias if g.numero_guia_prestador not in recusadas]
        return _Built(responses.protocolo_recebimento_draft(
            ctx, numero_lote=lido.numero_lote, numero_protocolo=numero, data_envio_lote=ctx.now.date(),
            valor_total=sum((g.valor_informado for g in aceitas), Decimal("0.00")),
            guias=[guia_recebida(g, lido.tipo_guia) for g in aceitas], recusadas=_recusadas(lido, recusadas)))

    def _schedule(self, connection: Connection, checked: CheckedCall, request_id: int,
                  protocolo_id: int | None, lote_id: int | None, now: datetime,
                  redaction: credencial.Redaction) -> None:
        """Deliver to the operator later, committed with the acceptance (the outbox)."""
        operadora = checked.operadora
        if operadora.conectada and operadora.registro_ans in self.adapters:
            outbox.schedule(connection, registro_ans=operadora.registro_ans,
                            servico=checked.call.service.name, prestador_id=checked.prestador_id,
                            mensagem_id=request_id, protocolo_id=protocolo_id, lote_id=lote_id, now=now,
                            request_id=checked.request_id,
                            senha_cifrada=vault.seal_spans(redaction.spans))  # the body is stored masked


def _tem_codigo(connection: Connection, checked: CheckedCall) -> bool:
    """The provider has a code at the destination operator (it is one of its providers)."""
    return _CODIGO.first(connection, {"prestador_id": checked.prestador_id,
                                      "registro_ans": checked.operadora.registro_ans}) is not None


def _criticas_das_guias(connection: Connection, request_id: int, lote_id: int,
                        recusadas: Mapping[str, Sequence[Finding]]) -> None:
    """Each refused guide's críticas, on the request, the lote and the guide."""
    ids = rows.guia_ids(connection, lote_id)
    for numero, found in recusadas.items():
        rows.add_criticas(connection, request_id, found, lote_id=lote_id, guia_id=ids.get(numero))


def _recusadas(lido: LoteLido, recusadas: Mapping[str, Sequence[Finding]]) -> list[responses.GuiaRecusada]:
    """The refused guides as the receipt tells them (glosaProtocolo): each with its first crítica."""
    primeiras = {numero: found[0] for numero, found in recusadas.items()}
    return [responses.GuiaRecusada(g.numero_guia_prestador, primeiras[g.numero_guia_prestador].code or "5001",
                                   primeiras[g.numero_guia_prestador].message, g.valor_informado)
            for g in lido.guias if g.numero_guia_prestador in primeiras]


def _refused(connection: Connection, ctx: responses.ReplyContext, service: Service, request_id: int,
             found: Sequence[Finding]) -> _Built:
    """The service's mensagemErro with the adapter's first crítica (all of them stored): no protocol."""
    rows.add_criticas(connection, request_id, found)
    first = found[0]
    return _Built(responses.mensagem_erro(ctx, service, first.code or "5001", first.message[:500]),
                  "refused", first.code)
