"""situacaoProtocoloWS from the gateway's data, at once, also for a forwarded lote.

The status is the gateway protocol's: the least advanced status of the operator lotes the lote
became, the parts the operator refused left out (gateway.delivery.outcome, kept by the worker).
A lote the operator refused in full (RECUSADO_PELA_OPERADORA, never written in an answer) is
answered with that refusal: mensagemErro with the operator's crítica. The guides are the lote's
guides still ``aceita``, whatever part they went in: guides refused (a refused part, or left out
of the operator's receipt) and cancelled ones are left out, of the list and of the totals, as
the operator's own answer leaves them out. Where the operator already answered the situação of a
part (``Entrega.situacao_id``), each of its guides shows the values the operator reported
(vlInformadoGuia: processado, glosa, liberado), its glosa motives and the operator's guide
number, and the lote totals add up the parts' answers; a guide of a part not answered yet shows
the received value (nothing glosado nor liberado yet). ct_guiaDados has no status of its own: the
guide-level information is the values and glosas the operator reported.

A status answer only reads: it is built in the request's read-only transaction, before the write
transaction that stores it (its sequencialTransacao set then).

The guide list is the bulk of the answer (~51 KB for 100 guides) and changes only with what it is
rendered from (``protocolo.versao``, bumped by every writer of a guide's situação or a part's
situação answer): it is rendered once per (protocol, versao, Padrao) with the lote's values, kept in
the database and in the process's :class:`~gateway.storage.kept_lists.KeptListCache`, and each
answer is its own small frame (header, status, values) with the kept list spliced in. A query of a
protocol whose list is kept reads one row (the protocol with its status and ``versao``, and its
lote) and no guide.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from lxml import etree

from gateway.delivery import numeros, relay
from gateway.delivery.checked import CheckedCall
from gateway.delivery.client import Answer
from gateway.delivery.reading import read_answer
from gateway.message import hashing, responses
from gateway.message.cabecalho import FIELDS
from gateway.message.lote import GuiaLida
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SERVICE_BY_NAME
from gateway.message.situacao import GuiaSituacao, read_situacao
from gateway.message.tables import GUIA_ACEITA, RECUSADO_PELA_OPERADORA
from gateway.storage import kept_lists, rows
from gateway.storage.kept_lists import KeptList, KeptListCache, ListKey
from gateway.storage.prepared import Db

STATUS = SERVICE_BY_NAME["tissSolicitacaoStatusProtocolo"]
_PROTOCOLO = FIELDS["protocolo"]
_GUIAS_TISS = "/".join(f"{{{ANS_NS}}}{name}" for name in (
    "situacaoProtocolo", "situacaoDoProtocolo", "lote", "detalheLote", "guiasTISS"))
# Where the builder writes the guide list (guiasTISS holds nothing else), in its UTF-8 answer.
_LISTA_OPEN, _LISTA_CLOSE = b"<ans:guiasTISS>", b"</ans:guiasTISS>"
# situacao_protocolo_draft wants a guide: a frame takes only its place (replaced by the kept list).
_LUGAR = responses.GuiaRecebida("0", None, "0", Decimal("0.00"))


@dataclass(frozen=True, slots=True)
class Situacao:
    """A lote's situação answer before it is stored: its frame (sequencialTransacao still "0"; the
    list's place marked by ``mark``) and the guide list that goes there."""

    ctx: responses.ReplyContext
    estado: rows.EstadoDoProtocolo
    kept: KeptList
    frame: etree._Element
    mark: etree._Element

    def with_list(self, stored: KeptList) -> "Situacao":
        """This answer with the list stored under its key: the same list, or, when another
        transaction rendered that state first from other reads, that one (answers reference it)."""
        if stored.same_content(self.kept):
            return replace(self, kept=stored)
        return situacao(self.ctx, self.estado, stored)

    def written(self, sequencial: str, encoding: str) -> tuple[bytes, bytes]:
        """(the answer in ``encoding``, the answer as stored: without its list, its place marked)."""
        responses.set_sequencial(self.frame, sequencial)
        self.mark.text = self.kept.folhas  # hashed where the list goes
        return kept_lists.split(responses.envelope(self.frame, encoding), self.kept.lista, encoding)


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    root: etree._Element | None = None  # a refusal, its sequencialTransacao still "0"
    refused: str | None = None  # the Table 38 code when the protocol was not found
    situacao: Situacao | None = None  # else: a lote's situação


def answer_status(db: Db, checked: CheckedCall, now: datetime, registry: SchemaRegistry,
                  cache: KeptListCache) -> StatusAnswer:
    call, operadora = checked.call, checked.operadora
    ctx = responses.reply_context(call.message.root, registro_ans=operadora.registro_ans, sequencial="0",
                                  now=now)
    numero = _PROTOCOLO(call.message.root).strip()
    estado = rows.estado_do_protocolo(db, numero, checked.prestador_id, operadora.registro_ans)
    if estado is None:  # unknown, another provider's, or not a lote: the same answer
        code = (responses.PROTOCOLO_NAO_LOCALIZADO if ctx.version >= "4.03.00"
                else responses.CODIGO_PROTOCOLO_NAO_ENCONTRADO)
        return StatusAnswer(responses.protocolo_nao_localizado(ctx, numero_protocolo=numero), code)
    if estado.status == RECUSADO_PELA_OPERADORA:
        return StatusAnswer(_recusado(db, checked, ctx, estado, rows.partes_do_lote(db, estado.lote_id)))
    key = ListKey(estado.protocolo_id, estado.versao, ctx.version)
    kept = cache.get(key)
    if kept is None:
        kept = kept_lists.find(db, key)
        if kept is not None:
            cache.put(kept)
        else:
            kept = _render(db, ctx, estado, key, registry)
    return StatusAnswer(situacao=situacao(ctx, estado, kept))


def situacao(ctx: responses.ReplyContext, estado: rows.EstadoDoProtocolo, kept: KeptList) -> Situacao:
    """The frame of the answer: the builder's, its guide list replaced by the place of ``kept``."""
    draft = responses.situacao_protocolo_draft(
        ctx, numero_protocolo=estado.numero_protocolo, numero_lote=estado.numero_lote, status=estado.status,
        data_envio_lote=estado.criado_em.date(), valor_total=kept.valor_total, guias=[_LUGAR])
    guias_tiss = draft.root.find(_GUIAS_TISS)
    del guias_tiss[:]
    return Situacao(ctx, estado, kept, draft.root, etree.SubElement(guias_tiss, kept_lists.MARK_TAG))


def _render(db: Db, ctx: responses.ReplyContext, estado: rows.EstadoDoProtocolo, key: ListKey,
            registry: SchemaRegistry) -> KeptList:
    """The guide list of the protocol as this snapshot reads it (not stored yet)."""
    gravadas = rows.guias_do_lote(db, estado.lote_id)
    analise = _situacoes(db, rows.partes_do_lote(db, estado.lote_id), ctx.version, registry)
    aceitas = [g for g in gravadas if g.situacao == GUIA_ACEITA] or gravadas  # all cancelled: all
    guias = [guia_recebida(g, estado.tipo_guia, analise.guias.get(g.numero_guia_prestador)) for g in aceitas]
    valor_total = _valor_total(estado, len(gravadas), aceitas, analise)
    draft = responses.situacao_protocolo_draft(
        ctx, numero_protocolo=estado.numero_protocolo, numero_lote=estado.numero_lote, status=estado.status,
        data_envio_lote=estado.criado_em.date(), valor_total=valor_total, guias=guias)
    data = responses.envelope(draft, "UTF-8")
    lista = data[data.index(_LISTA_OPEN) + len(_LISTA_OPEN):data.rindex(_LISTA_CLOSE)].decode("utf-8")
    return KeptList(key, lista, _folhas(lista), valor_total)


def _valor_total(estado: rows.EstadoDoProtocolo, gravadas: int, aceitas: list[rows.GuiaGravada],
                 analise: "_Analise") -> responses.ValorTotal:
    """valorTotalLote: what the operator reported of the parts it answered plus the guides not
    analysed yet; the lote's value while nothing was, less the guides no longer aceita."""
    if analise.totais:
        nao_analisadas = _soma(g for g in aceitas if g.numero_guia_prestador not in analise.cobertas)
        return responses.ValorTotal(
            sum((t.processado for t in analise.totais), nao_analisadas),
            sum((t.glosa for t in analise.totais), Decimal("0.00")),
            sum((t.liberado for t in analise.totais), Decimal("0.00")))
    valor = (estado.valor_informado if len(aceitas) == gravadas else _soma(aceitas)) or Decimal("0.00")
    return responses.ValorTotal.recebido(valor)


def _folhas(lista: str) -> str:
    """The leaf values of a rendered list, joined in document order (what the TISS hash reads)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    fragment = etree.fromstring(f'<ans:guiasTISS xmlns:ans="{ANS_NS}">{lista}</ans:guiasTISS>'.encode(),
                                parser)
    return "".join(hashing.leaf_values(fragment))


def _recusado(db: Db, checked: CheckedCall, ctx: responses.ReplyContext, lote: rows.EstadoDoProtocolo,
              partes: Sequence[rows.ParteEncaminhada]) -> etree._Element:
    """The mensagemErro of a lote the operator refused in full: the crítica of its first refused
    part, in the provider's version and with the gateway's numbers."""
    operadora = checked.operadora
    recusada = next((p for p in partes if p.estado == "recusada"), None)
    found = rows.critica_de(db, recusada.resposta_id or recusada.envio_id) if recusada is not None else None
    codigo, texto = found or (None, "lote recusado")
    texto = numeros.traduzir_texto(db, texto, prestador_id=checked.prestador_id,
                                   registro_ans=operadora.registro_ans)  # never the operator's numbers
    if codigo not in responses.codigos_glosa(ctx.version):
        codigo = relay.CRITICA_PADRAO
    return responses.mensagem_erro(
        ctx, checked.call.service, codigo, f"O lote {lote.numero_lote} (protocolo {lote.numero_protocolo}) "
        f"foi recusado pela operadora {operadora.nome}: {texto}")


def _soma(guias: Iterable[rows.GuiaGravada]) -> Decimal:
    return sum((g.valor_informado or Decimal(0) for g in guias), Decimal("0.00"))


def guia_recebida(guia: GuiaLida | rows.GuiaGravada, tipo_guia: str,
                  analisada: GuiaSituacao | None = None) -> responses.GuiaRecebida:
    """A guide as protocolo/situação list it: as received, or as the operator analysed it."""
    # Both are required by the schema of every lote the gateway stores: the fallbacks only type it.
    carteira, valor = guia.numero_carteira or "", guia.valor_informado or Decimal("0.00")
    if analisada is None:
        return responses.GuiaRecebida(numero_guia_prestador=guia.numero_guia_prestador,
                                      numero_guia_operadora=guia.numero_guia_operadora,
                                      numero_carteira=carteira, valor_informado=valor,
                                      odonto=tipo_guia == "odonto")
    return responses.GuiaRecebida(
        numero_guia_prestador=guia.numero_guia_prestador,
        numero_guia_operadora=guia.numero_guia_operadora or analisada.numero_guia_operadora,
        numero_carteira=carteira, valor_informado=valor,
        odonto=tipo_guia == "odonto", valores=analisada.valores, glosas=analisada.glosas)


@dataclass
class _Analise:
    guias: dict[str, GuiaSituacao] = field(default_factory=dict)
    totais: list[responses.ValorTotal] = field(default_factory=list)
    cobertas: set[str] = field(default_factory=set)  # guides of the answered parts


def _situacoes(db: Db, partes: Sequence[rows.ParteEncaminhada], version: str,
               registry: SchemaRegistry) -> _Analise:
    """What the operator answered of each part's situação (only answers that are valid
    situacaoProtocoloWS with a detalheLote whose values all count; a broken or refused one is
    as none)."""
    analise = _Analise()
    respostas = rows.corpos(db, [p.situacao_id for p in partes if p.situacao_id is not None])
    for parte in partes:
        corpo = respostas.get(parte.situacao_id) if parte.situacao_id is not None else None
        if corpo is None:
            continue
        reading = read_answer(Answer(200, corpo, ""), STATUS, registry)
        lida = read_situacao(reading.message.root, version) \
            if reading.kind == "entregue" and reading.message is not None else None
        if lida is None or lida.valor_total is None or not lida.valores_completos:
            continue
        guias = {g.numero_guia_prestador: g for g in lida.guias}
        analise.totais.append(lida.valor_total)
        analise.guias.update(guias)
        analise.cobertas.update(parte.guias or guias)
    return analise
