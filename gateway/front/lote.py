"""What the gateway keeps of a lote de guias: its number, guide type and each guide's key data."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from gateway.message.services import ANS_NS

_NS = {"ans": ANS_NS}
# guide element -> (tipo de guia, XPath of the guide's total value)
GUIDE_KINDS = {
    "guiaConsulta": ("consulta", "string(ans:dadosAtendimento/ans:procedimento/ans:valorProcedimento)"),
    "guiaSP-SADT": ("sp-sadt", "string(ans:valorTotal/ans:valorTotalGeral)"),
    "guiaOdonto": ("odonto", "string(ans:valorTotalProc)"),
    "guiaHonorarios": ("honorarios", "string(ans:valorTotalHonorarios)"),
    "guiaResumoInternacao": ("resumo-internacao", "string(ans:valorTotal/ans:valorTotalGeral)"),
}
_VALOR = {name: etree.XPath(path, namespaces=_NS) for name, (_, path) in GUIDE_KINDS.items()}
_NUMERO_GUIA = etree.XPath("string(descendant::ans:numeroGuiaPrestador[1])", namespaces=_NS)
_NUMERO_OPERADORA = etree.XPath("string(descendant::ans:numeroGuiaOperadora[1])", namespaces=_NS)
_CARTEIRA = etree.XPath("string(descendant::ans:numeroCarteira[1])", namespaces=_NS)
_NUMERO_LOTE = etree.XPath("string(ans:loteGuias/ans:numeroLote)", namespaces=_NS)
_GUIAS = etree.XPath("ans:loteGuias/ans:guiasTISS/*", namespaces=_NS)


@dataclass(frozen=True)
class GuiaLida:
    numero_guia_prestador: str
    numero_guia_operadora: str | None
    numero_carteira: str
    valor_informado: Decimal


@dataclass(frozen=True)
class LoteLido:
    numero_lote: str
    tipo_guia: str
    guias: list[GuiaLida]

    @property
    def valor_informado(self) -> Decimal:
        return sum((g.valor_informado for g in self.guias), Decimal("0.00"))


def read_lote(root: etree._Element) -> LoteLido:
    """Read a schema-valid loteGuiasWS (one guide type per lote is guaranteed by ctm_guiaLote)."""
    guias = _GUIAS(root)
    kind = etree.QName(guias[0]).localname if guias else ""
    tipo = GUIDE_KINDS.get(kind, (kind, ""))[0]
    return LoteLido(_NUMERO_LOTE(root).strip(), tipo, [_guia(g, kind) for g in guias])


def _guia(element: etree._Element, kind: str) -> GuiaLida:
    valor = _VALOR[kind](element) if kind in _VALOR else ""
    try:
        amount = Decimal(valor.strip() or "0")
    except InvalidOperation:
        amount = Decimal("0")
    return GuiaLida(_NUMERO_GUIA(element).strip(), _NUMERO_OPERADORA(element).strip() or None,
                    _CARTEIRA(element).strip(), amount.quantize(Decimal("0.01")))
