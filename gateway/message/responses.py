"""TISS response messages the gateway answers with, for 4.01.00, 4.02.00 and 4.03.00.

Every builder returns the ``*WS`` root (ANS namespace, prefix ``ans``) with an empty ``hash``;
:func:`envelope` stamps the hash for the encoding it writes and wraps the root in a SOAP 1.1
envelope. Element order follows the XSD sequences (tissWebServicesV4_0X_00.xsd and the types in
tissComplexTypes/tissGuias).

Facts from the official schemas that shape this module:

* ``cabecalho/destino`` is a choice ``identificacaoPrestador`` (ct_prestadorIdentificacao:
  CNPJ | CPF | codigoPrestadorNaOperadora) | ``registroANS``. The request's
  ``origem/identificacaoPrestador`` extends the same type, so the provider is echoed with the
  same element name. ``dadosPrestador`` inside the bodies is ct_contratadoDados, whose names
  differ (cnpjContratado | cpfContratado | codigoPrestadorNaOperadora): converted.
* Response types with a ``mensagemErro`` (ct_motivoGlosa) alternative: every response except
  ``respostaElegibilidadeWS``, identical in the three versions. ct_respostaElegibilidade lost its
  ``mensagemErro`` in 4.00.00 and carries the same content as ``codigoGlosa`` (type
  ct_motivoGlosa): :func:`glosa_elegibilidade` builds that; :func:`mensagem_erro` refuses it.
* "Protocolo não localizado": ``statusProtocolo`` 7 only exists inside ``detalheLote``
  (ct_loteStatus), which requires the lot number, the sending date, the lot values and at least
  one guide, none of which exists for an unknown protocol. So the answer is
  ``situacaoProtocolo/situacaoDoProtocolo/lote/mensagemErro`` (ct_protocoloStatus keeps the
  operator and provider identification) with code 3291 PROTOCOLO NÃO LOCALIZADO in 4.03.00;
  3291 is not in the dm_tipoGlosa enumeration of 4.01.00/4.02.00 (3169-3312 came in 4.03.00),
  where 3162 CÓDIGO DO PROTOCOLO NÃO ENCONTRADO is used instead.
* Version differences that matter here: dm_statusProtocolo 10 (Bloqueio judicial) exists from
  4.02.00; dm_tipoGlosa 3169-3312 from 4.03.00; dm_versao lists the version itself. The response
  structures used here are the same in the three versions (4.02.00 widened some decimals to
  10-2, 4.03.00 added optional elements the gateway does not emit); echoed request content is
  copied from a request of the same version.
"""

import copy
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from xml.sax.saxutils import escape as xml_escape

from lxml import etree

from gateway.message import hashing
from gateway.message.findings import tabela38
from gateway.message.services import ANS_NS, SERVICES, SOAP11_NS, Service
from gateway.message.tables import VERSIONS

NSMAP = {"ans": ANS_NS}
_A = f"{{{ANS_NS}}}"

# dm_tipoTransacao of each response element. Where the enumeration has several for one
# response, the first is the default and callers pass ``tipo_transacao`` to choose.
TIPO_TRANSACAO_RESPOSTA: dict[str, str] = {
    "protocoloRecebimentoWS": "PROTOCOLO_RECEBIMENTO",
    "situacaoProtocoloWS": "SITUACAO_PROTOCOLO",
    "demonstrativoRetornoWS": "DEMONSTRATIVO_PAGAMENTO",  # or DEMONSTRATIVO_ANALISE_CONTA/_ODONTOLOGIA
    "respostaElegibilidadeWS": "SITUACAO_ELEGIBILIDADE",
    "autorizacaoProcedimentoWS": "RESPOSTA_SOLICITACAO",  # or AUTORIZACAO_ODONTOLOGIA
    "situacaoAutorizacaoWS": "STATUS_AUTORIZACAO",
    "reciboCancelaGuiaWS": "CANCELAMENTO_GUIA_RECIBO",
    "protocoloRecebimentoAnexoWS": "PROTOCOLO_RECEBIMENTO_ANEXO",
    "protocoloRecebimentoRecursoWS": "RECEBIMENTO_RECURSO_GLOSA",
    "situacaoProtocoloRecursoWS": "RESPOSTA_RECURSO_GLOSA",
    "reciboComunicacaoWS": "RECIBO_COMUNICACAO",
    "reciboDocumentosWS": "RECEBIMENTO_DOCUMENTO",
}
# solicitacaoDemonstrativoRetorno/tipoDemonstrativo (dm_tipoDemonstrativo) -> tipoTransacao
TIPO_TRANSACAO_DEMONSTRATIVO = {
    "1": "DEMONSTRATIVO_PAGAMENTO",
    "2": "DEMONSTRATIVO_ANALISE_CONTA",
    "3": "DEMONSTRATIVO_ODONTOLOGIA",
}
_TIPOS_TRANSACAO = frozenset(TIPO_TRANSACAO_RESPOSTA.values()) | frozenset(
    TIPO_TRANSACAO_DEMONSTRATIVO.values()) | {"AUTORIZACAO_ODONTOLOGIA"}

# Path from the *WS root to the ct_motivoGlosa error alternative of each response.
_MENSAGEM_ERRO: dict[str, tuple[str, ...]] = {
    "protocoloRecebimentoWS": ("recebimentoLote", "mensagemErro"),
    "situacaoProtocoloWS": ("situacaoProtocolo", "mensagemErro"),
    "demonstrativoRetornoWS": ("demonstrativoRetorno", "mensagemErro"),
    "autorizacaoProcedimentoWS": ("autorizacaoProcedimento", "mensagemErro"),
    "situacaoAutorizacaoWS": ("situacaoAutorizacao", "mensagemErro"),
    "reciboCancelaGuiaWS": ("reciboCancelaGuia", "mensagemErro"),
    "protocoloRecebimentoAnexoWS": ("loteAnexo", "mensagemErro"),
    "protocoloRecebimentoRecursoWS": ("recebimentoRecurso", "mensagemErro"),
    "situacaoProtocoloRecursoWS": ("situacaoProtocoloRecurso", "mensagemErro"),
    "reciboComunicacaoWS": ("reciboComunicacao", "mensagemErro"),
    "reciboDocumentosWS": ("recebimentoDocumento", "mensagemErro"),
}
_GLOSA_ELEGIBILIDADE = ("respostaElegibilidade", "codigoGlosa")

TISS_FAULTS = frozenset({"DestinatarioInvalido", "RemetenteInvalido", "LoginInvalido",
                         "VersaoInvalida", "HashInvalido", "SchemaInvalido",
                         "ErroInesperadoServidor"})

# Store-and-forward services acknowledged by recibo().
RECIBO_SERVICES = frozenset({"tissLoteAnexo", "tissRecursoGlosa", "tissEnvioDocumentos",
                             "tissComunicacaoBeneficiario", "tissCancelaGuia"})

# Placeholder for nomeBeneficiario, required by the receipts of anexos and comunicação but not
# present in the requests; callers that know the name pass it in ``nomes_beneficiarios``.
NOME_NAO_INFORMADO = "NÃO INFORMADO"
# dm_statusSolicitacao 2 "Em análise": an anexo received, not yet decided by the operator.
STATUS_SOLICITACAO_EM_ANALISE = "2"
# dm_statusCancelamento 4 "Em processamento": cancellation received, to be forwarded.
STATUS_CANCELAMENTO_EM_PROCESSAMENTO = "4"

PROTOCOLO_NAO_LOCALIZADO = "3291"  # 4.03.00
CODIGO_PROTOCOLO_NAO_ENCONTRADO = "3162"  # 4.01.00 and 4.02.00 (3291 not in their enumeration)

_PRESTADOR_IDS = ("CNPJ", "CPF", "codigoPrestadorNaOperadora")
CONTRATADO = {"CNPJ": "cnpjContratado", "CPF": "cpfContratado",
               "codigoPrestadorNaOperadora": "codigoPrestadorNaOperadora"}
_REGISTRO_ANS = re.compile(r"[0-9]{6}")
_local = threading.local()  # lxml parsers must not be shared between threads


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ValorTotal:
    """ct_valorTotal (valorProcessado, valorGlosa, valorLiberado)."""

    processado: Decimal
    glosa: Decimal
    liberado: Decimal

    @classmethod
    def recebido(cls, valor_informado: Decimal) -> "ValorTotal":
        """A guide or lot not yet analysed: the informed value taken in, nothing glosado nor
        released yet."""
        return cls(Decimal(valor_informado), Decimal(0), Decimal(0))


@dataclass(frozen=True)
class GuiaRecebida:
    """One guide of a lot, as protocolo/situação list it (ct_guiaDados / ct_guiaDadosOdonto).

    ``valores`` fills vlInformadoGuia; by default ``ValorTotal.recebido(valor_informado)``.
    ``glosas`` (code, description) fill glosaGuia/motivoGlosa: the motives the operator gave.
    ``odonto`` selects ct_guiaDadosOdonto (guiaOdonto lots); a lot is all of one kind.
    """

    numero_guia_prestador: str
    numero_guia_operadora: str | None
    numero_carteira: str
    valor_informado: Decimal
    atendimento_rn: bool = False
    odonto: bool = False
    data_realizacao: date | None = None  # ct_guiaDados only
    valores: ValorTotal | None = None
    glosas: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class ReplyContext:
    version: str  # the request's Padrao
    registro_ans: str  # origem/registroANS of the response: the destination operator
    destino: etree._Element  # the request's cabecalho/origem (or its identificacaoPrestador)
    sequencial: str  # unique sequencialTransacao of this response
    now: datetime  # dataRegistroTransacao / horaRegistroTransacao
    prestador: tuple[str, str] = field(init=False)  # (CNPJ|CPF|codigoPrestadorNaOperadora, value)

    def __post_init__(self) -> None:
        _check_version(self.version)
        if not _REGISTRO_ANS.fullmatch(self.registro_ans or ""):
            raise ValueError(f"registro ANS inválido: {self.registro_ans!r} (6 dígitos)")
        _check_texto("sequencialTransacao", self.sequencial, 12)
        object.__setattr__(self, "prestador", _prestador_of(self.destino))


def reply_context(request_root: etree._Element, *, registro_ans: str, sequencial: str,
                  now: datetime) -> ReplyContext:
    """The context of the answer to a request ``*WS`` root (reads cabecalho/Padrao and origem)."""
    cabecalho = request_root.find(f"{_A}cabecalho")
    if cabecalho is None:
        raise ValueError("requisição sem cabecalho")
    origem = cabecalho.find(f"{_A}origem")
    if origem is None:
        raise ValueError("requisição sem cabecalho/origem")
    version = (cabecalho.findtext(f"{_A}Padrao") or "").strip()
    return ReplyContext(version, registro_ans, _clean_copy(origem), sequencial, now)


def services_with_mensagem_erro(version: str) -> frozenset[str]:
    """Names of the services whose response type has a ``mensagemErro`` alternative.

    The same eleven in 4.01.00, 4.02.00 and 4.03.00: all but tissVerificaElegibilidade
    (its ct_respostaElegibilidade has ``codigoGlosa`` instead; see glosa_elegibilidade).
    """
    _check_version(version)
    return frozenset(s.name for s in SERVICES if s.response in _MENSAGEM_ERRO)


@cache
def codigos_glosa(version: str) -> frozenset[str]:
    """dm_tipoGlosa codes of ``version`` (4.03.00 enumeration; 3169-3312 only from 4.03.00)."""
    _check_version(version)
    codes = {c for c in tabela38() if len(c) == 4 and c.isdigit()}
    if version < "4.03.00":
        codes = {c for c in codes if not 3169 <= int(c) <= 3312}
    return frozenset(codes)


# --------------------------------------------------------------------------- builders


@dataclass(frozen=True)
class GuiaRecusada:
    """A guide of a lote taken in part (partial sending): left out of the receipt's guide list,
    its crítica in ``glosaProtocolo``."""

    numero_guia_prestador: str
    codigo: str  # Table 38 (dm_tipoGlosa)
    texto: str  # the crítica, without the guide number
    valor_informado: Decimal


RECUSADA_PREFIXO = "Guia {numero} recusada: "  # descricaoGlosa of a refused guide in glosaProtocolo
_RECUSADA = re.compile(r"Guia (\S+) recusada: ")


def guia_da_recusa(descricao: str) -> str | None:
    """The numeroGuiaPrestador a glosaProtocolo motive refuses (:data:`RECUSADA_PREFIXO`), if any."""
    found = _RECUSADA.match(descricao)
    return found.group(1) if found else None


def protocolo_recebimento(ctx: ReplyContext, *, numero_lote: str, numero_protocolo: str,
                          data_envio_lote: date, valor_total: Decimal,
                          guias: list[GuiaRecebida],
                          recusadas: Sequence[GuiaRecusada] = ()) -> etree._Element:
    """protocoloRecebimentoWS/recebimentoLote/protocoloRecebimento (ct_protocoloRecebimento)."""
    return protocolo_recebimento_draft(ctx, numero_lote=numero_lote, numero_protocolo=numero_protocolo,
                                       data_envio_lote=data_envio_lote, valor_total=valor_total,
                                       guias=guias, recusadas=recusadas).element()


def protocolo_recebimento_draft(ctx: ReplyContext, *, numero_lote: str, numero_protocolo: str,
                                data_envio_lote: date, valor_total: Decimal,
                                guias: list[GuiaRecebida],
                                recusadas: Sequence[GuiaRecusada] = ()) -> "Draft":
    """:func:`protocolo_recebimento` as a :class:`Draft` (for :func:`envelope`).

    ``guias`` are the guides taken and ``valor_total`` their total; ``recusadas``, the guides of
    the lote refused one by one (partial sending), go in ``glosaProtocolo``: one motivoGlosa each
    (its crítica's code, "Guia <número> recusada: <crítica>") and their value in vlGlosaProtocolo,
    the one place ct_protocoloDetalhe has for what was not taken."""
    draft = Draft()
    root, body = response_root(ctx, "protocoloRecebimentoWS", "recebimentoLote")
    protocolo = el(body, "protocoloRecebimento")
    el(protocolo, "registroANS", ctx.registro_ans)
    _dados_prestador(protocolo, ctx)
    el(protocolo, "numeroLote", sized_text("numeroLote", numero_lote, 12))
    el(protocolo, "dataEnvioLote", tiss_date(data_envio_lote))
    detalhe = el(protocolo, "detalheProtocolo")
    el(detalhe, "numeroProtocolo", sized_text("numeroProtocolo", numero_protocolo, 12))
    el(detalhe, "valorTotalProtocolo", tiss_decimal(valor_total))
    if recusadas:
        glosa = el(detalhe, "glosaProtocolo")
        motivos = el(glosa, "motivosGlosa")
        for recusada in recusadas:
            prefixo = RECUSADA_PREFIXO.format(numero=recusada.numero_guia_prestador)
            motivo_glosa(el(motivos, "motivoGlosa"), ctx, recusada.codigo, prefixo + recusada.texto)
        el(glosa, "vlGlosaProtocolo", tiss_decimal(sum((r.valor_informado for r in recusadas), Decimal(0))))
    dados = el(detalhe, "dadosGuiasProtocolo")
    odonto = _guide_kind(guias)
    draft.add_guias(dados, ("dadosGuiasOdonto",) if odonto else ("dadosGuias",), guias)
    draft.root = finish(root)
    return draft


def situacao_protocolo(ctx: ReplyContext, *, numero_protocolo: str, numero_lote: str, status: int,
                       data_envio_lote: date, valor_total: Decimal | ValorTotal,
                       guias: list[GuiaRecebida]) -> etree._Element:
    """situacaoProtocoloWS for a known protocol: situacaoDoProtocolo/lote/detalheLote.

    ``status`` is dm_statusProtocolo (1..9; 10 Bloqueio judicial from 4.02.00). A Decimal
    ``valor_total`` means a lot not analysed yet (ValorTotal.recebido).
    """
    return situacao_protocolo_draft(ctx, numero_protocolo=numero_protocolo, numero_lote=numero_lote,
                                    status=status, data_envio_lote=data_envio_lote,
                                    valor_total=valor_total, guias=guias).element()


def situacao_protocolo_draft(ctx: ReplyContext, *, numero_protocolo: str, numero_lote: str, status: int,
                             data_envio_lote: date, valor_total: Decimal | ValorTotal,
                             guias: list[GuiaRecebida]) -> "Draft":
    """:func:`situacao_protocolo` as a :class:`Draft` (for :func:`envelope`)."""
    draft = Draft()
    codes = ("1", "2", "3", "4", "5", "6", "7", "8", "9") + (("10",) if ctx.version >= "4.02.00" else ())
    if str(status) not in codes:
        raise ValueError(f"statusProtocolo {status} não existe na versão {ctx.version}")
    root, body = response_root(ctx, "situacaoProtocoloWS", "situacaoProtocolo")
    lote = situacao_do_protocolo(body, ctx)
    detalhe = el(lote, "detalheLote")
    el(detalhe, "statusProtocolo", str(status))
    el(detalhe, "numeroProtocolo", sized_text("numeroProtocolo", numero_protocolo, 12))
    el(detalhe, "numeroLote", sized_text("numeroLote", numero_lote, 12))
    el(detalhe, "dataEnvioLote", tiss_date(data_envio_lote))
    if not isinstance(valor_total, ValorTotal):
        valor_total = ValorTotal.recebido(valor_total)
    add_valor_total(el(detalhe, "valorTotalLote"), valor_total)
    guias_tiss = el(detalhe, "guiasTISS")
    odonto = _guide_kind(guias)
    draft.add_guias(guias_tiss, ("guiasOdonto" if odonto else "guiasMedicas", "guias"), guias)
    draft.root = finish(root)
    return draft


def protocolo_nao_localizado(ctx: ReplyContext, *, numero_protocolo: str) -> etree._Element:
    """situacaoProtocoloWS for an unknown protocol: situacaoDoProtocolo/lote/mensagemErro with
    3291 PROTOCOLO NÃO LOCALIZADO (4.03.00) or 3162 CÓDIGO DO PROTOCOLO NÃO ENCONTRADO
    (4.01.00, 4.02.00); the protocol number goes in descricaoGlosa."""
    root, body = response_root(ctx, "situacaoProtocoloWS", "situacaoProtocolo")
    lote = situacao_do_protocolo(body, ctx)
    if ctx.version >= "4.03.00":
        codigo, texto = PROTOCOLO_NAO_LOCALIZADO, "PROTOCOLO NÃO LOCALIZADO"
    else:
        codigo, texto = CODIGO_PROTOCOLO_NAO_ENCONTRADO, "CÓDIGO DO PROTOCOLO NÃO ENCONTRADO"
    motivo_glosa(el(lote, "mensagemErro"), ctx, codigo, f"{texto}: {numero_protocolo}")
    return finish(root)


def mensagem_erro(ctx: ReplyContext, service: Service, codigo: str, descricao: str | None = None,
                  *, tipo_transacao: str | None = None) -> etree._Element:
    """The response of ``service`` carrying only its mensagemErro (codigoGlosa, descricaoGlosa).

    ``codigo`` must be in the version's dm_tipoGlosa; ``descricao`` defaults to the Table 38
    term and is cut to 500 characters (st_texto500). Raises ValueError for a service whose
    response has no mensagemErro (tissVerificaElegibilidade: use glosa_elegibilidade).
    """
    path = _MENSAGEM_ERRO.get(service.response)
    if path is None:
        raise ValueError(f"a resposta {service.response} ({service.name}) não tem mensagemErro")
    return _erro(ctx, service.response, path, codigo, descricao, tipo_transacao)


def glosa_elegibilidade(ctx: ReplyContext, codigo: str, descricao: str | None = None) -> etree._Element:
    """respostaElegibilidadeWS/respostaElegibilidade/codigoGlosa (ct_motivoGlosa): the error
    alternative of ct_respostaElegibilidade, which has no mensagemErro since 4.00.00."""
    return _erro(ctx, "respostaElegibilidadeWS", _GLOSA_ELEGIBILIDADE, codigo, descricao, None)


def recibo(ctx: ReplyContext, service: Service, request_root: etree._Element, *,
           numero_protocolo: str | None, nomes_beneficiarios: Mapping[str, str] | None = None,
           ) -> etree._Element:
    """Acknowledgement of a store-and-forward request, echoing what the request identifies.

    * tissLoteAnexo -> protocoloRecebimentoAnexo (ct_anexoRecebimento): nrProtocoloRecebimento =
      ``numero_protocolo``; each anexo echoed as its authorization type with statusSolicitacao
      2 (Em análise); situação inicial echoed as is.
    * tissRecursoGlosa -> protocoloRecebimento (ct_recursoGlosaRecebimento):
      nrProtocoloRecursoGlosa = ``numero_protocolo``; the appealed protocol, guides and items.
    * tissEnvioDocumentos -> reciboDocumentos: protocoloDoc = ``numero_protocolo``.
    * tissComunicacaoBeneficiario -> reciboComunicacao, statusComunicacao S (no protocol field).
    * tissCancelaGuia -> reciboCancelaGuia with statusCancelamento 4 (Em processamento); its
      numeroProtocolo fields echo the request's (the cancelled lot's), not the gateway's.

    ``nomes_beneficiarios`` maps numeroCarteira -> name for the nomeBeneficiario the receipts of
    anexos and comunicação require; unknown carteiras get NOME_NAO_INFORMADO.
    """
    if service.name not in RECIBO_SERVICES:
        raise ValueError(f"{service.name} não é respondido com recibo")
    if etree.QName(request_root).localname != service.request:
        raise ValueError(f"esperado {service.request}, recebido {etree.QName(request_root).localname}")
    padrao = (request_root.findtext(f"{_A}cabecalho/{_A}Padrao") or "").strip()
    if padrao != ctx.version:
        raise ValueError(f"requisição na versão {padrao!r}, contexto na versão {ctx.version}")
    nomes = nomes_beneficiarios or {}
    build = _RECIBOS[service.name]
    return build(ctx, request_root, numero_protocolo, nomes)


# --------------------------------------------------------------------------- SOAP


_ENVELOPE_OPEN = f'<soap:Envelope xmlns:soap="{SOAP11_NS}"><soap:Body>'
_ENVELOPE_CLOSE = "</soap:Body></soap:Envelope>"


class Draft:
    """An answer whose guide lists stay text until it is written.

    Guide lists are the bulk of a protocol answer (up to 100 guides of ~11 elements): each is kept
    as escaped text with its leaf values beside it, and an empty placeholder element marks its
    place in ``root``. :func:`envelope` hashes the frame's leaves with the lists' own, serialises
    the small frame and splices the text in: no tree is built for the guides and none is walked.
    :meth:`element` builds the complete tree for callers that want one.
    """

    def __init__(self) -> None:
        self.root: etree._Element = None  # type: ignore[assignment]  # set by the builder
        self._lists: dict[etree._Element, tuple[str, list[str]]] = {}  # placeholder -> (text, leaves)

    def add_guias(self, parent: etree._Element, wrappers: tuple[str, ...], guias: list[GuiaRecebida]) -> None:
        """Append one ``wrappers``-nested ct_guiaDados / ct_guiaDadosOdonto per guide."""
        self._lists[etree.SubElement(parent, _PLACEHOLDER)] = _guias_text(wrappers, guias)

    def element(self) -> etree._Element:
        """The whole answer as a tree (the lists parsed in place of their placeholders)."""
        for placeholder, (text, _leaves) in self._lists.items():
            parent = placeholder.getparent()
            index = parent.index(placeholder)
            lista = etree.fromstring(f'<ans:lista xmlns:ans="{ANS_NS}">{text}</ans:lista>',
                                     _fragment_parser())
            parent[index:index + 1] = list(lista)
        self._lists = {}
        return self.root

    def envelope(self, encoding: str) -> bytes | None:
        """:func:`envelope` by splicing (None where the encoding is not ASCII-compatible)."""
        try:
            if _PLACEHOLDER_TEXT.encode(encoding) != _PLACEHOLDER_BYTES:  # e.g. UTF-16
                return None
        except (LookupError, UnicodeError):
            return None
        root, values = self.root, []
        for child in hashing.hashed_children(root):
            for item in _LEAVES_AND_PLACEHOLDERS(child):
                if isinstance(item, str):
                    values.append(item)
                else:
                    values += self._lists[item][1]
        element = hashing.hash_element(root)
        if element is None:
            raise ValueError("a mensagem não tem elemento hash")
        element.text = hashing.compute(root, encoding, hashing.DECLARED, values)
        frame = etree.tostring(root, encoding=encoding, xml_declaration=False, with_tail=False).split(
            _PLACEHOLDER_BYTES)
        texts = [self._lists[p][0] for p in root.iter(_PLACEHOLDER)]  # document order, as in frame
        if len(frame) != len(texts) + 1:
            raise AssertionError("marcador de lista fora do lugar")
        body = [frame[0]]
        for text, after in zip(texts, frame[1:], strict=True):
            body += (text.encode(encoding, "xmlcharrefreplace"), after)
        head = f'<?xml version="1.0" encoding="{encoding}"?>\n{_ENVELOPE_OPEN}'
        return head.encode(encoding) + b"".join(body) + _ENVELOPE_CLOSE.encode(encoding)


def set_sequencial(answer: etree._Element | Draft, sequencial: str) -> None:
    """Rewrite cabecalho/identificacaoTransacao/sequencialTransacao of an answer built before its
    sequencial was known (before :func:`envelope` stamps the hash)."""
    _check_texto("sequencialTransacao", sequencial, 12)
    root = answer.root if isinstance(answer, Draft) else answer
    root.find(f"{_A}cabecalho/{_A}identificacaoTransacao/{_A}sequencialTransacao").text = sequencial


# The placeholder's name cannot be an ANS element (none starts with "_"); empty, it serialises so.
_PLACEHOLDER = f"{_A}_lista"
_PLACEHOLDER_TEXT = "<ans:_lista/>"
_PLACEHOLDER_BYTES = _PLACEHOLDER_TEXT.encode("ascii")
# Leaf text and placeholders, in document order (the TISS hash rule of gateway.message.hashing).
_LEAVES_AND_PLACEHOLDERS = etree.XPath(
    "descendant-or-self::*[not(*)]/text() | descendant-or-self::ans:_lista", namespaces=NSMAP,
    smart_strings=False)


def envelope(root: etree._Element | Draft, encoding: str = "ISO-8859-1") -> bytes:
    """Stamp the hash of ``root`` for ``encoding`` and serialise it in a SOAP 1.1 envelope.

    The root is serialised on its own and framed (no re-parse, ``root`` stays where it is).
    """
    if isinstance(root, Draft):
        data = root.envelope(encoding)
        if data is not None:
            return data
        root = root.element()
    element = hashing.hash_element(root)
    if element is None:
        raise ValueError("a mensagem não tem elemento hash")
    element.text = hashing.compute(root, encoding)
    body = etree.tostring(root, encoding=encoding, xml_declaration=False, with_tail=False)
    head = f'<?xml version="1.0" encoding="{encoding}"?>\n{_ENVELOPE_OPEN}'
    return head.encode(encoding) + body + _ENVELOPE_CLOSE.encode(encoding)


def fault_envelope(fault: str, text: str, *, client: bool, encoding: str = "UTF-8") -> bytes:
    """SOAP 1.1 Fault with detail/ans:tissFaultWS/ans:tissFault (st_tissFault)."""
    if fault not in TISS_FAULTS:
        raise ValueError(f"tissFault inválido: {fault!r} (valores: {sorted(TISS_FAULTS)})")
    env = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap={"soap": SOAP11_NS, "ans": ANS_NS})
    soap_fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP11_NS}}}Body"),
                                  f"{{{SOAP11_NS}}}Fault")
    etree.SubElement(soap_fault, "faultcode").text = "soap:Client" if client else "soap:Server"
    etree.SubElement(soap_fault, "faultstring").text = text
    detail = etree.SubElement(soap_fault, "detail")
    el(el(detail, "tissFaultWS"), "tissFault", fault)
    return etree.tostring(env, encoding=encoding, xml_declaration=True)


# --------------------------------------------------------------------------- receipts


def _recibo_anexo(ctx: ReplyContext, request: etree._Element, numero_protocolo: str | None,
                  nomes: Mapping[str, str]) -> etree._Element:
    lote = required_child(request, "loteAnexo")
    anexos = [a for a in required_child(lote, "AnexosGuiasTISS") if isinstance(a.tag, str)]
    root, body = response_root(ctx, "protocoloRecebimentoAnexoWS", "loteAnexo")
    recebimento = el(body, "protocoloRecebimentoAnexo")
    el(recebimento, "nrProtocoloRecebimento", sized_text("numero_protocolo", numero_protocolo, 12))
    el(recebimento, "dataEnvioAnexo", _data_envio(request))
    _copy(recebimento, lote, "numeroLote")
    el(recebimento, "registroANS", ctx.registro_ans)
    _dados_prestador(recebimento, ctx)
    el(recebimento, "qtAnexosClinicos", str(len(anexos)))
    clinicos = el(recebimento, "anexosClinicos")
    for anexo in anexos:
        kind = etree.QName(anexo).localname
        if kind == "anexoSituacaoInicial":
            out = el(clinicos, "anexoSituacaoInicial")
            for child in anexo.iterchildren(etree.Element):
                out.append(_clean_copy(child))
            el(out, "nomeBeneficiario", _nome(nomes, anexo.findtext(f"{_A}numeroCarteira")))
        elif kind == "anexoSolicitacaoOPME":
            out = el(clinicos, "anexoOPME")
            _dados_autorizacao(out, anexo)
            _copy(out, anexo, "dadosBeneficiario")
            el(out, "nomebeneficiario", _nome(nomes, _carteira(anexo)))
            el(out, "statusSolicitacao", STATUS_SOLICITACAO_EM_ANALISE)
        elif kind == "anexoSolicitacaoQuimio":
            out = el(clinicos, "anexoQuimio")
            _dados_autorizacao(out, anexo)
            el(out, "numeroCarteira", _carteira(anexo))
            el(out, "statusSolicitacao", STATUS_SOLICITACAO_EM_ANALISE)
            el(out, "nomeBeneficiario", _nome(nomes, _carteira(anexo)))
            _copy(out, anexo, "dadosComplementaresBeneficiario", "medicoSolicitante",
                  "diagnosticoOncologicoQuimioterapia", "drogasSolicitadas", "tratamentosAnteriores",
                  "numeroCiclos", "cicloAtual", "diasCicloAtual", "intervaloCiclos")
        elif kind == "anexoSolicitacaoRadio":
            out = el(clinicos, "anexoRadio")
            _dados_autorizacao(out, anexo)
            el(out, "numeroCarteira", _carteira(anexo))
            el(out, "nomeBeneficiario", _nome(nomes, _carteira(anexo)))
            el(out, "statusSolicitacao", STATUS_SOLICITACAO_EM_ANALISE)
            _copy(out, anexo, "dadosComplementaresBeneficiario", "medicoSolicitante",
                  "diagnosticoOncologicoRadio", "tratamentosAnteriores", "numeroCampos", "doseCampo",
                  "doseTotal", "nrDias", "dtPrevistaInicio")
        else:
            raise ValueError(f"anexo desconhecido: {kind}")
    return finish(root)


def _recibo_recurso(ctx: ReplyContext, request: etree._Element, numero_protocolo: str | None,
                    nomes: Mapping[str, str]) -> etree._Element:
    lote = required_child(request, "loteRecurso")
    recurso = next(lote.iterchildren(etree.Element))
    odonto = etree.QName(recurso).localname == "guiaRecursoGlosaOdonto"
    root, body = response_root(ctx, "protocoloRecebimentoRecursoWS", "recebimentoRecurso")
    out = el(body, "protocoloRecebimento")
    el(out, "nrProtocoloRecursoGlosa", sized_text("numero_protocolo", numero_protocolo, 12))
    el(out, "dataEnvioRecurso", _data_envio(request))
    el(out, "dataRecebimentoRecurso", tiss_date(ctx.now.date()))
    _copy(out, recurso, "numeroLote")
    el(out, "registroANS", ctx.registro_ans)
    _copy(out, recurso, "dadosContratado", rename="dadosPrestador")
    el(out, "nrProtocoloRecursado", required_child(recurso, "numeroProtocolo").text.strip())
    opcao = required_child(recurso, "opcaoRecurso")
    protocolo = opcao.find(f"{_A}recursoProtocolo")
    if protocolo is not None:
        _copy(out, opcao, "recursoProtocolo")
    guias = opcao.findall(f"{_A}recursoGuia")
    if guias:
        el(out, "qtGuiasRecurso", str(len(guias)))
    for guia in guias:
        dst = el(out, "guiasRecurso")
        _copy(dst, guia, "numeroGuiaPrestador" if odonto else "numeroGuiaOrigem", rename="numeroGuiaOrigem")
        _copy(dst, guia, "numeroGuiaOperadora", "senha")
        escolha = el(dst, "opcaoRecursoGuia")
        if odonto:
            _recurso_guia_odonto(escolha, guia)
        else:
            _recurso_guia_medica(escolha, required_child(guia, "opcaoRecursoGuia"))
    _copy(out, recurso, "valorTotalRecursado")
    return finish(root)


def _recurso_guia_medica(escolha: etree._Element, opcao: etree._Element) -> None:
    for completa in opcao.findall(f"{_A}recursoGuiaCompleta"):
        _recurso_guia(escolha, completa.findtext(f"{_A}codGlosaGuia"),
                      completa.findtext(f"{_A}justificativaGuia"))
    for item in opcao.findall(f"{_A}itensGuia"):
        dst = el(escolha, "itensGuia")
        # grauParticipacao / centroConsumo (4.03.00) have no place in the receipt's itensGuia.
        _copy(dst, item, "sequencialItem", "dataInicio", "dataFim", "procRecurso", "codGlosaItem",
              "valorRecursado", "justificativaItem")


def _recurso_guia_odonto(escolha: etree._Element, guia: etree._Element) -> None:
    procedimentos = guia.findall(f"{_A}recursoProcedimento")
    if not procedimentos:  # appeal of the whole guide
        _recurso_guia(escolha, guia.findtext(f"{_A}codGlosaGuia"), guia.findtext(f"{_A}justificativaGuia"))
        return
    for proc in procedimentos:  # the receipt's choice keeps the items when there are any
        dst = el(escolha, "itensGuia")
        _copy(dst, proc, "sequencialItem")
        _copy(dst, proc, "dataRealizacao", rename="dataInicio")
        _copy(dst, proc, "procRecurso", "denteRegiao", "denteFace")
        _copy(dst, proc, "codGlosaProc", rename="codGlosaItem")
        _copy(dst, proc, "valorRecursado")
        _copy(dst, proc, "justificativaProc", rename="justificativaItem")


def _recurso_guia(escolha: etree._Element, codigo: str | None, justificativa: str | None) -> None:
    dst = el(escolha, "recursoGuia")
    el(dst, "codGlosaGuia", codigo)
    # The receipt's justificativaGuia is st_texto150 (the request's is st_texto500).
    el(dst, "justificativaGuia", (justificativa or "")[:150])


def _recibo_documentos(ctx: ReplyContext, request: etree._Element, numero_protocolo: str | None,
                       nomes: Mapping[str, str]) -> etree._Element:
    envio = required_child(request, "envioDOcumento")
    root, body = response_root(ctx, "reciboDocumentosWS", "recebimentoDocumento")
    out = el(body, "reciboDocumentos")
    _copy(out, envio, "numeroLote", "numeroProtocolo", "numeroGuiaPrestador", "numeroGuiaOperadora",
          "numeroDocumento")
    el(out, "protocoloDoc", sized_text("numero_protocolo", numero_protocolo, 20))
    return finish(root)


def _recibo_comunicacao(ctx: ReplyContext, request: etree._Element, numero_protocolo: str | None,
                        nomes: Mapping[str, str]) -> etree._Element:
    comunicacao = required_child(request, "comunicacaoBeneficiario")
    root, body = response_root(ctx, "reciboComunicacaoWS", "reciboComunicacao")
    out = el(body, "reciboComunicacao")
    el(out, "statusComunicacao", "S")
    ret = el(out, "beneficiarioComunicacaoRet")
    _copy(ret, comunicacao, "dadosBeneficiario")
    el(ret, "nomeBeneficiario", _nome(nomes, _carteira(comunicacao)))
    _copy(ret, comunicacao, "tipoEvento", "dadosInternacao")
    return finish(root)


def _recibo_cancela(ctx: ReplyContext, request: etree._Element, numero_protocolo: str | None,
                    nomes: Mapping[str, str]) -> etree._Element:
    cancela = required_child(request, "cancelaGuia")
    root, body = response_root(ctx, "reciboCancelaGuiaWS", "reciboCancelaGuia")
    out = el(body, "reciboCancelaGuia")
    el(out, "registroANS", ctx.registro_ans)
    _copy(out, cancela, "dadosPrestador")
    retorno = el(out, "retornoStatus")
    tipo = required_child(cancela, "tipoCancelamento")
    lote = tipo.find(f"{_A}tipoCancelamentoLote")
    if lote is not None:
        dst = el(retorno, "loteCancelado")
        _copy(dst, lote, "numeroLote")
        _copy(dst, lote, "numeroProtocolo", rename="numeroprotocolo")
        el(dst, "statusCancelamento", STATUS_CANCELAMENTO_EM_PROCESSAMENTO)
    else:
        guias = el(retorno, "guiasCanceladas")
        for guia in tipo.findall(f"{_A}tipoCancelamentoGuia"):
            dst = el(guias, "dadosGuia")
            _copy(dst, guia, "tipoGuia", "numeroGuiaPrestador", "numeroGuiaOperadora", "numeroProtocolo")
            el(dst, "statusCancelamento", STATUS_CANCELAMENTO_EM_PROCESSAMENTO)
    return finish(root)


_RECIBOS = {
    "tissLoteAnexo": _recibo_anexo,
    "tissRecursoGlosa": _recibo_recurso,
    "tissEnvioDocumentos": _recibo_documentos,
    "tissComunicacaoBeneficiario": _recibo_comunicacao,
    "tissCancelaGuia": _recibo_cancela,
}


# --------------------------------------------------------------------------- helpers


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f"versão do padrão não suportada: {version!r} "
                         f"(suportadas: {', '.join(VERSIONS)})")


def _check_texto(name: str, value: str | None, max_length: int) -> None:
    if not value or len(value) > max_length:
        raise ValueError(f"{name} deve ter de 1 a {max_length} caracteres: {value!r}")


def sized_text(name: str, value: str | None, max_length: int) -> str:
    _check_texto(name, value, max_length)
    return value  # type: ignore[return-value]


def _prestador_of(element: etree._Element) -> tuple[str, str]:
    ident = element
    if etree.QName(element).localname != "identificacaoPrestador":
        ident = element.find(f"{_A}identificacaoPrestador")
        if ident is None:
            raise ValueError("origem da requisição não identifica um prestador "
                             "(esperado origem/identificacaoPrestador)")
    for child in ident.iterchildren(etree.Element):
        name = etree.QName(child).localname
        if name in _PRESTADOR_IDS and child.text:
            return name, child.text
    raise ValueError("identificacaoPrestador sem CNPJ, CPF ou codigoPrestadorNaOperadora")


def el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{_A}{name}")
    if text is not None:
        element.text = text
    return element


def response_root(ctx: ReplyContext, response: str, body: str,
              tipo_transacao: str | None = None) -> tuple[etree._Element, etree._Element]:
    tipo = tipo_transacao or TIPO_TRANSACAO_RESPOSTA[response]
    if tipo not in _TIPOS_TRANSACAO:
        raise ValueError(f"tipoTransacao de resposta desconhecido: {tipo!r}")
    root = etree.Element(f"{_A}{response}", nsmap=NSMAP)
    cabecalho = el(root, "cabecalho")
    ident = el(cabecalho, "identificacaoTransacao")
    el(ident, "tipoTransacao", tipo)
    el(ident, "sequencialTransacao", ctx.sequencial)
    el(ident, "dataRegistroTransacao", tiss_date(ctx.now.date()))
    el(ident, "horaRegistroTransacao", ctx.now.strftime("%H:%M:%S"))
    el(el(cabecalho, "origem"), "registroANS", ctx.registro_ans)
    name, value = ctx.prestador
    el(el(el(cabecalho, "destino"), "identificacaoPrestador"), name, value)
    el(cabecalho, "Padrao", ctx.version)
    return root, el(root, body)


def finish(root: etree._Element) -> etree._Element:
    el(root, "hash")
    etree.cleanup_namespaces(root, top_nsmap=NSMAP)
    return root


def _erro(ctx: ReplyContext, response: str, path: tuple[str, ...], codigo: str,
          descricao: str | None, tipo_transacao: str | None) -> etree._Element:
    root, parent = response_root(ctx, response, path[0], tipo_transacao)
    for name in path[1:]:
        parent = el(parent, name)
    motivo_glosa(parent, ctx, codigo, descricao)
    return finish(root)


def motivo_glosa(parent: etree._Element, ctx: ReplyContext, codigo: str, descricao: str | None) -> None:
    if codigo not in codigos_glosa(ctx.version):
        raise ValueError(f"código {codigo!r} não está na tabela 38 (dm_tipoGlosa) da versão {ctx.version}")
    if descricao is None:
        descricao = tabela38().get(codigo)
    el(parent, "codigoGlosa", codigo)
    if descricao:
        el(parent, "descricaoGlosa", descricao[:500])


def _dados_prestador(parent: etree._Element, ctx: ReplyContext) -> None:
    name, value = ctx.prestador
    el(el(parent, "dadosPrestador"), CONTRATADO[name], value)


def situacao_do_protocolo(body: etree._Element, ctx: ReplyContext) -> etree._Element:
    situacao = el(body, "situacaoDoProtocolo")
    el(situacao, "identificacaoOperadora", ctx.registro_ans)
    _dados_prestador(situacao, ctx)
    return el(situacao, "lote")


def _guide_kind(guias: list[GuiaRecebida]) -> bool:
    if not guias:
        raise ValueError("o protocolo precisa de ao menos uma guia")
    kinds = {g.odonto for g in guias}
    if len(kinds) > 1:
        raise ValueError("guias odontológicas e médicas misturadas num lote")
    return kinds.pop()


def _guias_text(wrappers: tuple[str, ...], guias: list[GuiaRecebida]) -> tuple[str, list[str]]:
    """One ``wrappers``-nested ct_guiaDados / ct_guiaDadosOdonto per guide, as escaped text, and
    the leaf values of that text in document order (what the TISS hash reads)."""
    opening = "".join(f"<ans:{name}>" for name in wrappers)
    closing = "".join(f"</ans:{name}>" for name in reversed(wrappers))
    parts: list[str] = []
    leaves: list[str] = []
    for guia in guias:
        parts.append(opening)
        _guia_text(parts, leaves, guia)
        parts.append(closing)
    return "".join(parts), leaves


def _fragment_parser() -> etree.XMLParser:
    """For fragments this module writes itself (see _append_guias); never for received bytes."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return parser


def _guia_text(parts: list[str], leaves: list[str], guia: GuiaRecebida) -> None:
    # Up to 100 guides per answer: written with as few calls as the checks allow.
    numero, operadora, carteira = guia.numero_guia_prestador, guia.numero_guia_operadora, guia.numero_carteira
    _check_texto("numeroGuiaPrestador", numero, 20)
    _check_texto("numeroCarteira", carteira, 20)
    rn = "S" if guia.atendimento_rn else "N"
    text = f"<ans:numeroGuiaPrestador>{_escape(numero)}</ans:numeroGuiaPrestador>"
    if operadora:
        _check_texto("numeroGuiaOperadora", operadora, 20)
        text += f"<ans:numeroGuiaOperadora>{_escape(operadora)}</ans:numeroGuiaOperadora>"
        leaves += (numero, operadora, carteira, rn)
    else:
        leaves += (numero, carteira, rn)
    beneficiario = (f"<ans:numeroCarteira>{_escape(carteira)}</ans:numeroCarteira>"
                    f"<ans:atendimentoRN>{rn}</ans:atendimentoRN>")
    if guia.odonto:
        text += beneficiario
    else:
        text += f"<ans:dadosBeneficiario>{beneficiario}</ans:dadosBeneficiario>"
        if guia.data_realizacao is not None:
            data = tiss_date(guia.data_realizacao)
            text += f"<ans:dataRealizacao>{data}</ans:dataRealizacao>"
            leaves.append(data)
    if guia.valores is None:  # not analysed yet: informed value in, nothing glosado nor released
        processado, glosa, liberado = tiss_decimal(guia.valor_informado), "0.00", "0.00"
    else:
        valor = guia.valores
        processado, glosa, liberado = (tiss_decimal(valor.processado), tiss_decimal(valor.glosa),
                                       tiss_decimal(valor.liberado))
    parts.append(f"{text}<ans:vlInformadoGuia><ans:valorProcessado>{processado}</ans:valorProcessado>"
                 f"<ans:valorGlosa>{glosa}</ans:valorGlosa>"
                 f"<ans:valorLiberado>{liberado}</ans:valorLiberado></ans:vlInformadoGuia>")
    leaves += (processado, glosa, liberado)
    if guia.glosas:
        parts.append("<ans:glosaGuia>")
        for codigo, descricao in guia.glosas:
            parts.append("<ans:motivoGlosa>" + _tag("codigoGlosa", codigo))
            leaves.append(codigo)
            if descricao:
                parts.append(_tag("descricaoGlosa", descricao[:500]))
                leaves.append(descricao[:500])
            parts.append("</ans:motivoGlosa>")
        parts.append("</ans:glosaGuia>")


def _escape(text: str) -> str:
    # By hand: markup is rare in TISS values, and escape() costs three scans. A carriage return is
    # written as a reference so that a parser reads back the value that was hashed (a literal one
    # would be read as a line feed).
    if "&" in text or "<" in text or ">" in text or "\r" in text:
        return xml_escape(text, _CR)
    return text


def _tag(name: str, text: str) -> str:
    return f"<ans:{name}>{_escape(text)}</ans:{name}>"


_CR = {"\r": "&#13;"}


def add_valor_total(out: etree._Element, valor: ValorTotal) -> None:
    el(out, "valorProcessado", tiss_decimal(valor.processado))
    el(out, "valorGlosa", tiss_decimal(valor.glosa))
    el(out, "valorLiberado", tiss_decimal(valor.liberado))


def tiss_decimal(value: Decimal | int | str, total_digits: int = 10) -> str:
    """st_decimal10-2: two decimal places, at most ``total_digits`` digits."""
    if type(value) is Decimal:  # already cents (database Numeric, values read from a message)?
        text = str(value)  # a finite Decimal with exponent -2 prints as [-]d+.dd, nothing else does
        if text[-3:-2] == "." and len(text) - 1 - (text[0] == "-") <= total_digits:
            return text
    try:
        quantized = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"valor decimal inválido: {value!r}") from exc
    if not quantized.is_finite():
        raise ValueError(f"valor decimal inválido: {value!r}")
    text = f"{quantized:.2f}"
    if len(text.lstrip("-").replace(".", "")) > total_digits:
        raise ValueError(f"valor {value} excede {total_digits} dígitos")
    return text


def tiss_date(value: date) -> str:
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat()


def required_child(parent: etree._Element, name: str) -> etree._Element:
    child = parent.find(f"{_A}{name}")
    if child is None:
        raise ValueError(f"{etree.QName(parent).localname} sem {name}")
    return child


def _clean_copy(element: etree._Element) -> etree._Element:
    out = copy.deepcopy(element)
    out.tail = None
    etree.strip_tags(out, etree.Comment, etree.ProcessingInstruction)
    return out


def _copy(dst: etree._Element, src: etree._Element, *names: str, rename: str | None = None) -> None:
    """Append copies of ``src``'s children named ``names`` (in that order), optionally renamed."""
    for name in names:
        for child in src.findall(f"{_A}{name}"):
            out = _clean_copy(child)
            if rename:
                out.tag = f"{_A}{rename}"
            dst.append(out)


def _data_envio(request: etree._Element) -> str:
    """The request's cabecalho dataRegistroTransacao (the date the provider sent it)."""
    text = request.findtext(f"{_A}cabecalho/{_A}identificacaoTransacao/{_A}dataRegistroTransacao")
    if not text:
        raise ValueError("requisição sem dataRegistroTransacao")
    return text.strip()


def _carteira(parent: etree._Element) -> str | None:
    return parent.findtext(f"{_A}dadosBeneficiario/{_A}numeroCarteira")


def _nome(nomes: Mapping[str, str], carteira: str | None) -> str:
    nome = nomes.get(carteira or "") or NOME_NAO_INFORMADO
    return nome[:70]


def _dados_autorizacao(out: etree._Element, anexo: etree._Element) -> None:
    """ct_autorizacaoDados from the anexo's cabeçalho: the anexo number as numeroGuiaPrestador."""
    cabecalho = required_child(anexo, "cabecalhoAnexo")
    dados = el(out, "dadosAutorizacao")
    _copy(dados, cabecalho, "numeroGuiaAnexo", rename="numeroGuiaPrestador")
    _copy(dados, cabecalho, "numeroGuiaOperadora")

