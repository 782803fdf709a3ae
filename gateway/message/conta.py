"""A lote de guias read down to the items, as an operator bills it (the conta): each guide's items
(procedures and other expenses) with their values, which glosas and demonstrativos are made of.

The guide-level data comes from :func:`gateway.message.lote.read_lote`; the item paths follow the
guide types of the 4.01-4.03 schemas (the same in the three versions).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from gateway.message.lote import GuiaLida, read_lote
from gateway.message.services import ANS_NS

_NS = {"ans": ANS_NS}
_A = f"{{{ANS_NS}}}"


def _xp(path: str) -> etree.XPath:
    return etree.XPath(f"string({path})", namespaces=_NS)


@dataclass(frozen=True)
class _ItemPath:
    """Where the fields of one kind of item sit, relative to the item element."""

    items: etree.XPath
    tabela: etree.XPath
    codigo: etree.XPath
    descricao: etree.XPath
    quantidade: etree.XPath
    valor: etree.XPath
    data: etree.XPath
    sequencial: etree.XPath
    dente: etree.XPath | None = None
    regiao: etree.XPath | None = None
    face: etree.XPath | None = None


def _item_path(items: str, proc: str, quantidade: str, valor: str, data: str, *,
               sequencial: str = "ans:sequencialItem", odonto: bool = False) -> _ItemPath:
    prefix = f"{proc}/" if proc else ""
    return _ItemPath(
        etree.XPath(items, namespaces=_NS), _xp(f"{prefix}ans:codigoTabela"),
        _xp(f"{prefix}ans:codigoProcedimento"), _xp(f"{prefix}ans:descricaoProcedimento"),
        _xp(quantidade), _xp(valor), _xp(data), _xp(sequencial),
        _xp("ans:denteRegiao/ans:codDente") if odonto else None,
        _xp("ans:denteRegiao/ans:codRegiao") if odonto else None, _xp("ans:denteFace") if odonto else None)


def _procedimentos(items: str) -> _ItemPath:
    """Executed procedures (SP-SADT, honorários, resumo de internação): the same fields under ``items``."""
    return _item_path(items, proc="ans:procedimento", quantidade="ans:quantidadeExecutada",
                      valor="ans:valorTotal", data="ans:dataExecucao")


_DESPESAS = _item_path("ans:outrasDespesas/ans:despesa", "ans:servicosExecutados",
                       "ans:servicosExecutados/ans:quantidadeExecutada",
                       "ans:servicosExecutados/ans:valorTotal", "ans:servicosExecutados/ans:dataExecucao")
ITEM_PATHS: dict[str, tuple[_ItemPath, ...]] = {
    "guiaConsulta": (_item_path("ans:dadosAtendimento/ans:procedimento", "", "'1'",
                                "ans:valorProcedimento", "../ans:dataAtendimento", sequencial="''"),),
    "guiaSP-SADT": (_procedimentos("ans:procedimentosExecutados/ans:procedimentoExecutado"),
                    _DESPESAS),
    "guiaHonorarios": (_procedimentos("ans:procedimentosRealizados/ans:procedimentoRealizado"),),
    "guiaResumoInternacao": (
        _procedimentos("ans:procedimentosExecutados/ans:procedimentoExecutado"), _DESPESAS),
    "guiaOdonto": (_item_path("ans:procedimentosExecutados", "ans:procSolic", "ans:qtdProc", "ans:valorProc",
                              "ans:dataRealizacao", odonto=True),),
}
_SENHA = {
    "guiaSP-SADT": _xp("ans:dadosAutorizacao/ans:senha"),
    "guiaResumoInternacao": _xp("ans:dadosAutorizacao/ans:senha"),
    "guiaHonorarios": _xp("ans:senha"),
    "guiaOdonto": _xp("ans:senhaAutorizacao"),
}
_RN = _xp("descendant::ans:atendimentoRN[1]")
_GUIAS = etree.XPath("ans:loteGuias/ans:guiasTISS/*", namespaces=_NS)


@dataclass(frozen=True)
class ItemLido:
    sequencial_item: str | None
    data_realizacao: str | None
    codigo_tabela: str
    codigo_procedimento: str
    descricao: str | None
    quantidade: Decimal
    valor_informado: Decimal
    dente: str | None = None
    regiao: str | None = None
    face: str | None = None


@dataclass(frozen=True)
class GuiaConta:
    """A guide as the operator bills it: key data (``GuiaLida``) plus items."""

    lida: GuiaLida
    senha: str | None
    atendimento_rn: bool
    itens: tuple[ItemLido, ...]

    @property
    def data_realizacao(self) -> str | None:
        return next((i.data_realizacao for i in self.itens if i.data_realizacao), None)


@dataclass(frozen=True)
class LoteConta:
    numero_lote: str
    tipo_guia: str  # gateway.message.lote.GUIDE_KINDS name: consulta, sp-sadt, odonto...
    guias: tuple[GuiaConta, ...]

    @property
    def valor_informado(self) -> Decimal:
        return sum((g.lida.valor_informado for g in self.guias), Decimal("0.00"))


def read_conta(root: etree._Element) -> LoteConta:
    """Read a schema-valid loteGuiasWS with every guide's items."""
    lido = read_lote(root)
    elements = _GUIAS(root)
    guias = tuple(_guia(element, guia) for element, guia in zip(elements, lido.guias, strict=True))
    return LoteConta(lido.numero_lote, lido.tipo_guia, guias)


def _guia(element: etree._Element, lida: GuiaLida) -> GuiaConta:
    kind = etree.QName(element).localname
    itens = tuple(_item(item, path) for path in ITEM_PATHS.get(kind, ()) for item in path.items(element))
    senha = _SENHA[kind](element).strip() if kind in _SENHA else ""
    return GuiaConta(lida, senha or None, _RN(element).strip() == "S", itens)


def _item(element: etree._Element, path: _ItemPath) -> ItemLido:
    return ItemLido(
        sequencial_item=path.sequencial(element).strip() or None,
        data_realizacao=path.data(element).strip() or None,
        codigo_tabela=path.tabela(element).strip(),
        codigo_procedimento=path.codigo(element).strip(),
        descricao=path.descricao(element).strip() or None,
        quantidade=_decimal(path.quantidade(element), "1"),
        valor_informado=_decimal(path.valor(element), "0").quantize(Decimal("0.01")),
        dente=_optional(path.dente, element),
        regiao=_optional(path.regiao, element),
        face=_optional(path.face, element),
    )


def _optional(path: etree.XPath | None, element: etree._Element) -> str | None:
    return (path(element).strip() or None) if path is not None else None


def _decimal(text: str, default: str) -> Decimal:
    try:
        return Decimal(text.strip() or default)
    except InvalidOperation:
        return Decimal(default)
