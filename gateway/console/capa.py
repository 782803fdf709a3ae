"""The figures of a lote (capa do lote): what the provider presented and what the operator said.

* Presented (valor informado, guias and itens apresentados, the guides): from the stored lote
  message, parsed once with the safe reader (:func:`apresentado`).
* Analysed (valores processado / glosado / liberado, guias and itens com glosa): per operator
  protocol (a lote the adapter split is several), from the newest demonstrativo de análise de conta
  or de pagamento odontológico stored for it, else from the operator's last situação do protocolo
  answer, and only once the operator's status says the analysis is done (3, 4, 5, 6, 10: before
  that the operator shows the informed value, not an analysis). The lote's figures are the sums
  over its parts when every part has them; otherwise they are unknown (None, shown as "—"): the
  console never makes a number up.

Stored messages never change, so what is read of one is cached per process by message id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TypeVar

from lxml import etree

from gateway.console import stored
from gateway.delivery.client import Answer
from gateway.delivery.reading import read_answer
from gateway.delivery.state import State
from gateway.message.lote import read_lote
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SERVICE_BY_NAME
from gateway.message.situacao import GuiaSituacao, read_situacao
from gateway.message.tables import STATUS_ANALISADOS

_NS = {"ans": ANS_NS}
_A = f"{{{ANS_NS}}}"
_GUIAS = etree.XPath("ans:loteGuias/ans:guiasTISS/*", namespaces=_NS)
_DESPESAS = "count(ans:outrasDespesas/ans:despesa)"
# Items of each guide type (procedures and other expenses), as the schemas 4.01-4.03 place them.
_ITENS = {kind: etree.XPath(path, namespaces=_NS) for kind, path in {
    "guiaConsulta": "count(ans:dadosAtendimento/ans:procedimento)",
    "guiaSP-SADT": f"count(ans:procedimentosExecutados/ans:procedimentoExecutado) + {_DESPESAS}",
    "guiaResumoInternacao": f"count(ans:procedimentosExecutados/ans:procedimentoExecutado) + {_DESPESAS}",
    "guiaHonorarios": "count(ans:procedimentosRealizados/ans:procedimentoRealizado)",
    "guiaOdonto": "count(ans:procedimentosExecutados)",
}.items()}
STATUS_SERVICE = SERVICE_BY_NAME["tissSolicitacaoStatusProtocolo"]
ZERO = Decimal("0.00")


# --- what the provider presented -----------------------------------------------------------------

@dataclass(frozen=True)
class GuiaApresentada:
    numero_guia_prestador: str
    numero_guia_operadora: str | None
    numero_carteira: str
    valor_informado: Decimal
    itens: int


@dataclass(frozen=True)
class Apresentado:
    numero_lote: str
    tipo_guia: str
    guias: tuple[GuiaApresentada, ...]

    @property
    def valor_informado(self) -> Decimal:
        return sum((g.valor_informado for g in self.guias), ZERO)

    @property
    def itens(self) -> int:
        return sum(g.itens for g in self.guias)


def apresentado(corpo: bytes | None) -> Apresentado | None:
    """The guides and items of a stored loteGuiasWS (None: no body, or not a lote)."""
    message = stored.message(corpo, "loteGuiasWS")
    if message is None:
        return None
    lido = read_lote(message.root)
    elements = _GUIAS(message.root)
    guias = tuple(GuiaApresentada(g.numero_guia_prestador, g.numero_guia_operadora, g.numero_carteira,
                                  g.valor_informado, _itens(e))
                  for e, g in zip(elements, lido.guias, strict=True))
    return Apresentado(lido.numero_lote, lido.tipo_guia, guias)


def _itens(guia: etree._Element) -> int:
    count = _ITENS.get(etree.QName(guia).localname)
    return int(count(guia)) if count is not None else 0


# --- what the operator said of one of its protocols ----------------------------------------------

@dataclass(frozen=True)
class Analise:
    """One operator protocol (a part of the lote) as the operator analysed it."""

    numero_protocolo: str
    status: int | None
    processado: Decimal
    glosado: Decimal | None  # optional in the demonstrativo de análise
    liberado: Decimal
    guias_com_glosa: int
    itens_com_glosa: int
    glosa_por_guia: Mapping[str, Decimal] = field(default_factory=dict)  # numeroGuiaPrestador -> glosa
    informado: Decimal | None = None  # the demonstrativos carry it, the situação does not
    fonte: str = ""


def _decimal(element: etree._Element | None, path: str) -> Decimal | None:
    return stored.decimal(element.findtext(path) if element is not None else None)


def _status(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _glosas(guias: Iterable[etree._Element], valor_glosa: str, motivo: str | None,
            itens_glosados: Callable[[etree._Element], int]) -> tuple[dict[str, Decimal], int, int]:
    """The guides of one protocol: numeroGuiaPrestador -> glosa, how many guides have a glosa (a
    value, or a ``motivo`` element) and how many items were glosados."""
    por_guia: dict[str, Decimal] = {}
    com_glosa = itens = 0
    for guia in guias:
        valor = _decimal(guia, valor_glosa) or ZERO
        por_guia[(guia.findtext(f"{_A}numeroGuiaPrestador") or "").strip()] = valor
        com_glosa += valor > 0 or (motivo is not None and guia.find(motivo) is not None)
        itens += itens_glosados(guia)
    return por_guia, com_glosa, itens


def _contar(path: str) -> Callable[[etree._Element], int]:
    """Counts the elements at ``path`` under a guide."""
    return lambda guia: sum(1 for _ in guia.iterfind(path))


def da_situacao(corpo: bytes | None, registry: SchemaRegistry) -> Analise | None:
    """A situacaoProtocoloWS the operator answered, if it is a valid one (schema and hash, as the
    worker trusts answers) and shows an analysed protocol."""
    if not corpo:
        return None
    reading = read_answer(Answer(200, corpo, ""), STATUS_SERVICE, registry)
    if reading.kind != "entregue" or reading.message is None:
        return None
    situacao = read_situacao(reading.message.root)
    if situacao is None or situacao.status not in STATUS_ANALISADOS or situacao.valor_total is None:
        return None
    valores = [(g, _glosa_da_guia(g)) for g in situacao.guias]
    total = situacao.valor_total
    return Analise(situacao.numero_protocolo, situacao.status, total.processado, total.glosa, total.liberado,
                   guias_com_glosa=sum(1 for g, glosa in valores if glosa > 0 or g.glosas),
                   itens_com_glosa=sum(g.itens_glosados for g in situacao.guias),
                   glosa_por_guia={g.numero_guia_prestador: glosa for g, glosa in valores},
                   fonte="situação do protocolo")


def _glosa_da_guia(guia: GuiaSituacao) -> Decimal:
    """vlInformadoGuia/valorGlosa; zero when the operator gave no values for the guide."""
    return (guia.valores.glosa if guia.valores is not None else None) or ZERO


def dos_demonstrativos(corpo: bytes | None) -> dict[str, Analise]:
    """Operator protocol number -> its analysis, from a stored demonstrativoRetornoWS (análise de
    conta: analysed protocols only; pagamento odontológico: every protocol it pays)."""
    message = stored.message(corpo, "demonstrativoRetornoWS")
    if message is None:
        return {}
    found: dict[str, Analise] = {}
    for kind, cabecalho, entradas, analisar, nome in (
            ("demonstrativoAnaliseConta", "cabecalhoDemonstrativo", f"{_A}dadosConta/{_A}dadosProtocolo",
             _analise_conta, "análise de conta"),
            ("demonstrativoPagamentoOdonto", "cabecalhoDemonstrativoOdonto",
             f"{_A}dadosPagamentoPorData/{_A}protocolos", _analise_odonto, "pagamento odontológico")):
        for dem in message.root.iterfind(f".//{_A}{kind}"):
            numero = (dem.findtext(f"{_A}{cabecalho}/{_A}numeroDemonstrativo") or "").strip()
            for entrada in dem.iterfind(entradas):
                analise = analisar(entrada, f"demonstrativo de {nome} {numero}")
                if analise is not None:
                    found[analise.numero_protocolo] = _somar(found.get(analise.numero_protocolo), analise)
    return found


def _analise_conta(entrada: etree._Element, fonte: str) -> Analise | None:
    status = _status(entrada.findtext(f"{_A}situacaoProtocolo"))
    informado, processado, liberado, glosado = (_decimal(entrada, f"{_A}valor{n}Protocolo") for n in (
        "Informado", "Processado", "Liberado", "Glosa"))
    if status not in STATUS_ANALISADOS or processado is None or liberado is None:
        return None
    glosas, com_glosa, itens = _glosas(
        entrada.iterfind(f"{_A}relacaoGuias"), f"{_A}valorGlosaGuia", f"{_A}motivoGlosaGuia",
        _contar(f"{_A}detalhesGuia[{_A}relacaoGlosa]"))  # the items that have a relacaoGlosa
    return Analise(_numero(entrada), status, processado, glosado, liberado, com_glosa, itens, glosas,
                   informado, fonte)


def _analise_odonto(entrada: etree._Element, fonte: str) -> Analise | None:
    totais = entrada.find(f"{_A}totaisPorProtocolo")
    informado, processado, glosado, liberado = (_decimal(totais, f"{_A}valorTotal{n}PorProtocolo") for n in (
        "Informado", "Processado", "Glosa", "Liberado"))
    if processado is None or glosado is None or liberado is None:
        return None
    glosas, com_glosa, itens = _glosas(
        entrada.iterfind(f"{_A}dadosPagamentoGuia"), f"{_A}valorTotalGlosaGuia", None, _itens_odonto_glosados)
    return Analise(_numero(entrada), None, processado, glosado, liberado, com_glosa, itens, glosas,
                   informado, fonte)


def _itens_odonto_glosados(guia: etree._Element) -> int:
    return sum(1 for item in guia.iterfind(f"{_A}dadosPagamento")
               if (_decimal(item, f"{_A}valorGlosaEstorno") or ZERO) > 0
               or item.find(f"{_A}codigosGlosa") is not None)


def _numero(entrada: etree._Element) -> str:
    return (entrada.findtext(f"{_A}numeroProtocolo") or "").strip()


def _somar(a: Analise | None, b: Analise) -> Analise:
    """The same protocol twice in one demonstrativo (e.g. paid on two dates)."""
    if a is None:
        return b
    return Analise(a.numero_protocolo, a.status, a.processado + b.processado,
                   _add(a.glosado, b.glosado),
                   a.liberado + b.liberado, a.guias_com_glosa + b.guias_com_glosa,
                   a.itens_com_glosa + b.itens_com_glosa, {**a.glosa_por_guia, **b.glosa_por_guia},
                   _add(a.informado, b.informado), a.fonte)


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    """A sum only where both are known (an optional value missing from one part is unknown)."""
    return a + b if a is not None and b is not None else None


# --- the capa ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parte:
    """A delivery of the lote: one operator protocol once delivered."""

    numero_protocolo: str | None
    estado: str
    situacao_id: int | None


@dataclass(frozen=True)
class Capa:
    apresentado: Apresentado | None
    valor_informado: Decimal | None
    guias_apresentadas: int | None
    itens_apresentados: int | None
    valor_processado: Decimal | None = None
    valor_glosado: Decimal | None = None
    valor_liberado: Decimal | None = None
    guias_com_glosa: int | None = None
    itens_com_glosa: int | None = None
    glosa_por_guia: Mapping[str, Decimal] = field(default_factory=dict)
    fontes: tuple[str, ...] = ()

    @property
    def analisado(self) -> bool:
        return self.valor_processado is not None

    @property
    def com_glosa(self) -> bool:
        return bool(self.valor_glosado) or bool(self.guias_com_glosa)


def montar(apresentado_: Apresentado | None, partes: Iterable[Parte], demonstrativos: Mapping[str, Analise],
           situacoes: Mapping[int, Analise | None], *, valor_informado: Decimal | None,
           quantidade_guias: int | None) -> Capa:
    """The capa: ``demonstrativos`` by operator protocol, ``situacoes`` by situação message id;
    ``valor_informado`` / ``quantidade_guias``: what the gateway recorded at acceptance, used only
    when the lote's message body is no longer stored (pruned)."""
    base = Capa(apresentado=apresentado_,
                valor_informado=apresentado_.valor_informado if apresentado_ else valor_informado,
                guias_apresentadas=len(apresentado_.guias) if apresentado_ else quantidade_guias,
                itens_apresentados=apresentado_.itens if apresentado_ else None)
    analises = []
    for parte in partes:
        found = demonstrativos.get(parte.numero_protocolo or "") if parte.estado == State.ENTREGUE else None
        if found is None and parte.estado == State.ENTREGUE and parte.situacao_id is not None:
            found = situacoes.get(parte.situacao_id)
        if found is None:
            return base  # a part the operator has not analysed (or not received) yet
        analises.append(found)
    if not analises:
        return base
    glosados = [a.glosado for a in analises if a.glosado is not None]
    return replace(base,
                valor_processado=sum((a.processado for a in analises), ZERO),
                valor_glosado=sum(glosados, ZERO) if len(glosados) == len(analises) else None,
                valor_liberado=sum((a.liberado for a in analises), ZERO),
                guias_com_glosa=sum(a.guias_com_glosa for a in analises),
                itens_com_glosa=sum(a.itens_com_glosa for a in analises),
                glosa_por_guia={k: v for a in analises for k, v in a.glosa_por_guia.items()},
                fontes=tuple(dict.fromkeys(a.fonte for a in analises)))


# --- per-process cache of what was read of a stored message -----------------------------------

T = TypeVar("T")


class MessageCache:
    """Bounded LRU of values computed from a stored message, keyed by (purpose, message id)."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: OrderedDict[tuple[str, int], object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, purpose: str, mensagem_id: int, compute: Callable[[], T]) -> T:
        key = (purpose, mensagem_id)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
