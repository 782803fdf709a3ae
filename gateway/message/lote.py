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
# The four fields of a guide in one evaluation (a lote has up to 100 guides): joined by a private-use
# character; a value that holds it splits into more than four parts and is read field by field.
_SEP = "\ue000"
_CAMPOS = {name: etree.XPath(
    f"concat(descendant::ans:numeroGuiaPrestador[1], '{_SEP}', descendant::ans:numeroGuiaOperadora[1], "
    f"'{_SEP}', descendant::ans:numeroCarteira[1], '{_SEP}', {path[len('string('):-1]})", namespaces=_NS)
    for name, (_, path) in GUIDE_KINDS.items()}
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
    campos: list[str] = _CAMPOS[kind](element).split(_SEP) if kind in _CAMPOS else []
    if len(campos) == 4:
        numero, operadora, carteira, valor = campos
    else:
        numero, operadora, carteira = _NUMERO_GUIA(element), _NUMERO_OPERADORA(element), _CARTEIRA(element)
        valor = _VALOR[kind](element) if kind in _VALOR else ""
    try:
        amount = Decimal(valor.strip() or "0")
    except InvalidOperation:
        amount = Decimal("0")
    return GuiaLida(numero.strip(), operadora.strip() or None, carteira.strip(),
                    amount.quantize(Decimal("0.01")))
