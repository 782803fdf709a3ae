"""A lote's guides as the operators' rules and the lote split see them (the adapters and the
simulated operators read them the same way)."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.message.lote import GUIDE_KINDS
from gateway.message.services import ANS_NS

_A = f"{{{ANS_NS}}}"
_NS = {"ans": ANS_NS}

MAX_GUIAS_PADRAO = 100  # ctm_guiaLote: every guide element has maxOccurs="100" (4.01.00-4.03.00)
TIPOS_GUIA: tuple[str, ...] = tuple(tipo for tipo, _valor in GUIDE_KINDS.values())
_NOMES_TIPO = {"consulta": "consulta", "sp-sadt": "SP/SADT", "odonto": "tratamento odontológico",
               "honorarios": "honorários", "resumo-internacao": "resumo de internação"}

_LOTE_GUIAS = etree.XPath("ans:loteGuias | ans:prestadorParaOperadora/ans:loteGuias", namespaces=_NS)
_NUMERO_GUIA = etree.XPath(
    "string((ans:cabecalhoGuia | ans:cabecalhoConsulta)/ans:numeroGuiaPrestador | ans:numeroGuiaPrestador)",
    namespaces=_NS)


@dataclass(frozen=True)
class Guia:
    """One guide of a lote."""

    elemento: etree._Element
    tipo: str  # consulta | sp-sadt | odonto | honorarios | resumo-internacao
    numero: str  # numeroGuiaPrestador
    posicao: int  # 1-based, in guiasTISS

    @property
    def local(self) -> str:
        """Its path in the message, for a crítica's location."""
        return f"loteGuias/guiasTISS/{etree.QName(self.elemento).localname}[{self.posicao}]"


def lote_guias(root: etree._Element) -> etree._Element | None:
    """The loteGuias of a loteGuiasWS or of a mensagemTISS, if it has one."""
    found = _LOTE_GUIAS(root)
    return found[0] if found else None


def guias_do_lote(lote: etree._Element | None) -> list[Guia]:
    """The guides of a loteGuias, in document order."""
    container = lote.find(f"{_A}guiasTISS") if lote is not None else None
    if container is None:
        return []
    guias = []
    for posicao, elemento in enumerate(container.iterchildren(etree.Element), 1):
        name = etree.QName(elemento).localname
        tipo = GUIDE_KINDS[name][0] if name in GUIDE_KINDS else name
        guias.append(Guia(elemento, tipo, _NUMERO_GUIA(elemento).strip(), posicao))
    return guias


def numero_do_lote(lote: etree._Element) -> str:
    """Its numeroLote (the provider's), stripped."""
    return (lote.findtext(f"{_A}numeroLote") or "").strip()


def ans_path(path: str) -> str:
    """``"a/b"`` as the ElementPath ``"{ans}a/{ans}b"``."""
    return "/".join(f"{_A}{step}" for step in path.split("/"))


def nome_tipo(tipo: str) -> str:
    """A guide type as a crítica names it ("sp-sadt" -> "SP/SADT")."""
    return _NOMES_TIPO.get(tipo, tipo)
