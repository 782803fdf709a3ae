"""The one reader of an operator's situação do protocolo answer (situacaoProtocoloWS).

The pipeline (a forwarded lote's status answer), the tracker (the operator's statusProtocolo) and
the console (the capa's analysed values) all read the same answer through :func:`read_situacao`.
It reads what is there and never raises: a value that is missing or not a number is None, and
each caller decides what an incomplete answer means for it. Callers pass answers already
validated (``gateway.delivery.reading.read_answer``), so for them "missing" is what the schema
leaves optional (vlInformadoGuia).
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from gateway.message.responses import ValorTotal, codigos_glosa
from gateway.message.services import ANS_NS
from gateway.message.tables import VERSIONS

_A = f"{{{ANS_NS}}}"
# ct_situacaoProtocolo > ct_protocoloStatus > lote (choice: detalheLote | mensagemErro).
_DETALHE = f"{_A}situacaoProtocolo/{_A}situacaoDoProtocolo/{_A}lote/{_A}detalheLote"
_GUIAS = f"{_A}guiasTISS/*/{_A}guias"  # guiasMedicas/guias (ct_guiaDados) or the odonto kind
_MOTIVOS = f"{_A}glosaGuia/{_A}motivoGlosa"
_ITENS_GLOSADOS = f"{_A}procedimentosRealizados/{_A}procedimentoRealizado/{_A}glosasProcedimento"
_VALORES = ("valorProcessado", "valorGlosa", "valorLiberado")

Glosa = tuple[str, str | None]  # motivoGlosa: (codigoGlosa, descricaoGlosa)


@dataclass(frozen=True, slots=True)
class GuiaSituacao:
    """One guide of the answer (ct_guiaDados / ct_guiaDadosOdonto) as the operator analysed it."""

    numero_guia_prestador: str
    numero_guia_operadora: str | None
    valores: ValorTotal | None  # vlInformadoGuia (optional in the schema), None also if not numbers
    glosas: tuple[Glosa, ...]  # glosaGuia/motivoGlosa (the version's Table 38 codes, if one was given)
    itens_glosados: int  # procedimentoRealizado with glosasProcedimento


@dataclass(frozen=True, slots=True)
class SituacaoLida:
    """detalheLote of a situacaoProtocoloWS."""

    status: int | None  # statusProtocolo (dm_statusProtocolo)
    numero_protocolo: str  # the operator's
    valor_total: ValorTotal | None  # valorTotalLote, None when a value is missing or not a number
    guias: tuple[GuiaSituacao, ...]  # in document order (a repeated number stays repeated)

    @property
    def valores_completos(self) -> bool:
        """The lote total and every guide's values are there (the answer can be added up)."""
        return self.valor_total is not None and all(g.valores is not None for g in self.guias)


def read_situacao(root: etree._Element, version: str | None = None) -> SituacaoLida | None:
    """The detalheLote of a situacaoProtocoloWS ``root``; None when the answer has none (the
    operator answered a mensagemErro, or it is a situação of anexos).

    ``version``: the Padrao whose Table 38 (dm_tipoGlosa) the glosas are kept from (the answer
    they go into); None keeps every glosa as the operator wrote it.
    """
    detalhe = root.find(_DETALHE)
    if detalhe is None:
        return None
    codigos = codigos_glosa(version) if version in VERSIONS else None
    return SituacaoLida(
        status=_status(detalhe.findtext(f"{_A}statusProtocolo")),
        numero_protocolo=_text(detalhe, "numeroProtocolo") or "",
        valor_total=_valor_total(detalhe.find(f"{_A}valorTotalLote")),
        guias=tuple(_guia(g, codigos) for g in detalhe.iterfind(_GUIAS)))


def _guia(guia: etree._Element, codigos: frozenset[str] | None) -> GuiaSituacao:
    glosas = (((m.findtext(f"{_A}codigoGlosa") or "").strip(), m.findtext(f"{_A}descricaoGlosa"))
              for m in guia.iterfind(_MOTIVOS))
    return GuiaSituacao(
        numero_guia_prestador=_text(guia, "numeroGuiaPrestador") or "",
        numero_guia_operadora=_text(guia, "numeroGuiaOperadora"),
        valores=_valor_total(guia.find(f"{_A}vlInformadoGuia")),
        glosas=tuple(g for g in glosas if codigos is None or g[0] in codigos),
        itens_glosados=sum(1 for _ in guia.iterfind(_ITENS_GLOSADOS)))


def _valor_total(element: etree._Element | None) -> ValorTotal | None:
    """ct_valorTotal; None when absent or when any of its three values is not a finite number."""
    if element is None:
        return None
    processado, glosa, liberado = (_decimal(element.findtext(f"{_A}{name}")) for name in _VALORES)
    if processado is None or glosa is None or liberado is None:
        return None
    return ValorTotal(processado, glosa, liberado)


def _decimal(text: str | None) -> Decimal | None:
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _status(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _text(element: etree._Element, name: str) -> str | None:
    return (element.findtext(f"{_A}{name}") or "").strip() or None
