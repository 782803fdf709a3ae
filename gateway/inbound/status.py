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

A poll of a state already answered builds no tree at all: :class:`Template` keeps that answer's
bytes (per state, list, header values and encoding) with what changes from poll to poll left out
(sequencialTransacao, dataRegistroTransacao, horaRegistroTransacao and the hash over them), checked
once against the builder's bytes. A poll is stored by :class:`StatusQueries` in its own write
transaction (the request through the same row function as every message, the answer's frame, its
list's link and the Transacao); a replay is found in the read snapshot and answered without one. A
poll is no accepted lote: on PostgreSQL its COMMIT does not wait for the WAL flush
(:func:`gateway.storage.db.no_flush_wait`).
"""

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from lxml import etree
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from gateway.delivery import numeros, relay
from gateway.delivery.checked import Answered, CheckedCall, replay
from gateway.delivery.client import Answer
from gateway.delivery.reading import read_answer
from gateway.inbound.snapshot import Snapshot
from gateway.message import hashing, responses
from gateway.message.cabecalho import FIELDS
from gateway.message.faults import Reply, TissFault
from gateway.message.lote import GuiaLida
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SERVICE_BY_NAME
from gateway.message.situacao import GuiaSituacao, read_situacao
from gateway.message.tables import GUIA_ACEITA, RECUSADO_PELA_OPERADORA
from gateway.storage import db as storage_db
from gateway.storage import kept_lists, rows
from gateway.storage.kept_lists import KeptList, KeptListCache, ListKey, SizedLRU
from gateway.storage.prepared import Db

log = logging.getLogger("tiss_gateway.inbound")

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


# Stand-ins for what changes from poll to poll while a Template is cut (ASCII, no ANS value has them).
_SEQ, _DATA, _HORA, _HASH = "QZXSEQXZQ", "QZXDATAXZQ", "QZXHORAXZQ", "QZXHASHXZQ"
_IDENT = "/".join(f"{{{ANS_NS}}}{name}" for name in ("cabecalho", "identificacaoTransacao"))


@dataclass(frozen=True, slots=True)
class Template:
    """A lote's situação answer, once per (state, list, header values, encoding), as bytes with
    the poll's own values left out: sequencialTransacao, dataRegistroTransacao,
    horaRegistroTransacao (plain digits in every encoding TISS takes) and the hash, whose leaf text
    is kept around the same three places. :meth:`written` gives what :meth:`Situacao.written`
    gives for those values, byte for byte (:func:`template_of` checks it before one is used)."""

    kept: KeptList
    answer: tuple[bytes, ...]  # 5 pieces around sequencial, data, hora, hash
    stored: tuple[bytes, ...]  # the same for the frame stored (the list's place marked)
    folhas: tuple[bytes, ...]  # 4 pieces of hashed leaf text around sequencial, data, hora

    def written(self, sequencial: str, now: datetime) -> tuple[bytes, bytes]:
        """(the answer, the answer as stored) with these values."""
        values = (sequencial.encode("ascii"), responses.tiss_date(now.date()).encode("ascii"),
                  now.strftime("%H:%M:%S").encode("ascii"))
        f = self.folhas
        digest = hashlib.md5(b"".join((f[0], values[0], f[1], values[1], f[2], values[2], f[3])),
                             usedforsecurity=False).hexdigest().encode("ascii")
        return _fill(self.answer, (*values, digest)), _fill(self.stored, (*values, digest))

    @property
    def size(self) -> int:
        return sum(map(len, self.answer)) + sum(map(len, self.stored)) + sum(map(len, self.folhas))


def _fill(pieces: tuple[bytes, ...], values: tuple[bytes, ...]) -> bytes:
    return b"".join((pieces[0], values[0], pieces[1], values[1], pieces[2], values[2], pieces[3], values[3],
                     pieces[4]))


TemplateKey = tuple[object, ...]


def template_key(ctx: responses.ReplyContext, estado: rows.EstadoDoProtocolo, kept: KeptList,
                 encoding: str) -> TemplateKey:
    """Everything a situação answer is written from but the poll's own values (sequencial, now)."""
    return (kept.key, kept.id, ctx.registro_ans, ctx.prestador, estado.status, estado.numero_protocolo,
            estado.numero_lote, estado.criado_em.date(), encoding)


def template_of(ctx: responses.ReplyContext, estado: rows.EstadoDoProtocolo, kept: KeptList,
                encoding: str) -> Template | None:
    """The template of this answer, checked against the builder's bytes; None where it cannot be
    cut (a stand-in found twice) or differs (logged: the answer is then built every time)."""
    cut = situacao(ctx, estado, kept)
    ident = cut.frame.find(_IDENT)
    hash_element = hashing.hash_element(cut.frame)
    if ident is None or hash_element is None:
        return None
    for name, stand_in in (("sequencialTransacao", _SEQ), ("dataRegistroTransacao", _DATA),
                           ("horaRegistroTransacao", _HORA)):
        ident.find(f"{{{ANS_NS}}}{name}").text = stand_in  # type: ignore[union-attr]
    cut.mark.text = kept.folhas
    folhas = "".join(hashing.leaf_values(cut.frame)).encode(encoding, "xmlcharrefreplace")
    data, stored = kept_lists.split(responses.envelope(cut.frame, encoding), kept.lista, encoding)
    hashed = f">{hash_element.text}<".encode("ascii")
    data, stored = (x.replace(hashed, f">{_HASH}<".encode("ascii")) for x in (data, stored))
    stand_ins = [x.encode("ascii") for x in (_SEQ, _DATA, _HORA, _HASH)]
    answer_pieces, stored_pieces = _cut(data, stand_ins), _cut(stored, stand_ins)
    folhas_pieces = _cut(folhas, stand_ins[:3])
    if answer_pieces is None or stored_pieces is None or folhas_pieces is None:
        return None
    template = Template(kept, answer_pieces, stored_pieces, folhas_pieces)
    if template.written("1", ctx.now) != situacao(ctx, estado, kept).written("1", encoding):
        log.warning("modelo da resposta de situação difere do construtor: protocolo %s, versão %s",
                    estado.numero_protocolo, ctx.version)
        return None
    return template


def _cut(data: bytes, stand_ins: list[bytes]) -> tuple[bytes, ...] | None:
    """``data`` cut at each stand-in, in order, each found exactly once."""
    pieces, rest = [], data
    for stand_in in stand_ins:
        if data.count(stand_in) != 1:
            return None
        head, _sep, rest = rest.partition(stand_in)
        pieces.append(head)
    return (*pieces, rest) if len(pieces) == len(stand_ins) else None


class TemplateCache(SizedLRU[TemplateKey, Template]):
    """The templates this process used last. A key names a state (a new state is a new key): an
    entry never needs invalidating."""


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    root: etree._Element | None = None  # a refusal, its sequencialTransacao still "0"
    refused: str | None = None  # the Table 38 code when the protocol was not found
    situacao: Situacao | None = None  # else: a lote's situação, to be written
    template: Template | None = None  # or: a lote's situação as answered before
    now: datetime | None = None  # dataRegistroTransacao and horaRegistroTransacao of a template's answer


def answer_status(db: Db, checked: CheckedCall, now: datetime, registry: SchemaRegistry,
                  cache: KeptListCache, templates: TemplateCache | None = None) -> StatusAnswer:
    """The answer to a status query, not stored yet. ``templates``: answers already written of a
    state (the list stored) are taken from there, or cut once for the next queries."""
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
            cache.keep(kept)
        else:
            kept = _render(db, ctx, estado, key, registry)
    if templates is not None and kept.id is not None:  # stored: answers reference it by id
        encoding = call.message.encoding
        tkey = template_key(ctx, estado, kept, encoding)
        template = templates.get(tkey)
        if template is None:
            template = template_of(ctx, estado, kept, encoding)
            if template is not None:
                templates.put(tkey, template)
        if template is not None:
            return StatusAnswer(template=template, now=now)
    return StatusAnswer(situacao=situacao(ctx, estado, kept))


class StatusQueries:
    """Status queries answered and stored: read and built in the request's snapshot, stored in a
    write transaction of their own; the guide list a lote's answer was stored with is kept for the
    next queries once committed."""

    def __init__(self, registry: SchemaRegistry, engine: Engine, clock: Callable[[], datetime]):
        self.registry = registry
        self.engine = engine  # read-write
        self.clock = clock
        self.kept = KeptListCache()  # the guide lists of situação answers this process used last
        self.templates = TemplateCache()  # and the answers written from them

    def answer(self, checked: CheckedCall, snapshot: Snapshot) -> Answered:
        """``snapshot``: the request's read-only transaction; closed here before writing."""
        cabecalho = checked.call.cabecalho
        try:
            earlier = rows.transacao_anterior(snapshot.connection(), checked.prestador_id, cabecalho.tipo,
                                              cabecalho.sequencial)
            if earlier is not None:  # the same query again: its answer as sent, nothing written
                return replay(checked, earlier)
            ready = answer_status(snapshot.connection(), checked, self.clock(), self.registry, self.kept,
                                  self.templates)
        finally:
            snapshot.close()
        return self._store(checked, ready)

    def _store(self, checked: CheckedCall, ready: StatusAnswer) -> Answered:
        """:func:`store_status` in a write transaction. The duplicate was looked for in the snapshot
        (no read under SQLite's one write lock, where every statement may wait for the GIL): a
        concurrent copy committed since is met by the Transacao's unique key (IntegrityError),
        and then answered as it was; another conflict (two first polls storing one state's list)
        is retried, as :func:`gateway.delivery.checked.store_once` does."""
        cabecalho = checked.call.cabecalho
        for _ in range(3):
            kept: list[KeptList] = []
            try:
                with self._begin() as connection:
                    answered = store_status(connection, checked, ready, kept)
            except IntegrityError:
                with self.engine.connect() as connection:
                    earlier = rows.transacao_anterior(connection, checked.prestador_id, cabecalho.tipo,
                                                      cabecalho.sequencial)
                if earlier is not None:
                    return replay(checked, earlier)
                continue
            if kept:
                self.kept.keep(kept[-1])  # committed: answers may reference it
            return answered
        raise TissFault("ErroInesperadoServidor", "Conflito de gravação persistente.", client=False)

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            storage_db.no_flush_wait(connection)  # a poll is no accepted lote (module docstring)
            yield connection


def store_status(connection: Connection, checked: CheckedCall, ready: StatusAnswer,
                 kept: list[KeptList]) -> Answered:
    """A status query, its answer (its sequencialTransacao: the query's id), then the Transacao
    naming both: its unique key decides which of two concurrent copies is stored (IntegrityError
    for the others). A lote's situação answer is stored without its guide list, kept once per
    protocol state (gateway.storage.kept_lists); ``kept`` gets that list."""
    call = checked.call
    encoding = call.message.encoding
    request_id = rows.add_mensagem(connection, checked.mensagem("entrada", call.message.data, "aceita",
                                                                checked.hash_lower))
    situacao = ready.situacao
    lista: KeptList | None = None
    if ready.template is not None and ready.now is not None:
        lista = ready.template.kept  # stored already (a template is cut only then)
        data, stored = ready.template.written(str(request_id), ready.now)
    elif situacao is not None:
        situacao = situacao.with_list(kept_lists.keep(connection, situacao.kept))
        lista = situacao.kept
        data, stored = situacao.written(str(request_id), encoding)
    else:  # not found, or refused by the operator: small, stored whole
        root = ready.root
        if root is None:
            raise ValueError("resposta de situação sem conteúdo")
        responses.set_sequencial(root, str(request_id))
        data = stored = responses.envelope(root, encoding)
    response = checked.mensagem("saida", stored, "resposta", None)
    response.update(tamanho=len(data), resposta_de_id=request_id)  # the size sent, as for any message
    resposta_id = rows.add_mensagem(connection, response)
    if lista is not None:
        kept_lists.link(connection, resposta_id, lista, encoding)
    rows.add_transacao(connection, prestador_id=checked.prestador_id, tipo=call.cabecalho.tipo,
                       sequencial=call.cabecalho.sequencial, hash_=checked.hash_lower,
                       requisicao_id=request_id, resposta_id=resposta_id)
    kept[:] = [lista] if lista is not None else []
    return Answered(Reply(data, encoding), "refused" if ready.refused else "accepted", ready.refused)


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
