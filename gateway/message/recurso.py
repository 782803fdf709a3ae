"""A recurso de glosa checked against the glosas it appeals: the same críticas on both sides.

A recurso asks the operator to pay back what it glosou: each appealed guide must be one of the
protocol's and have a glosa, each appealed item must be one of the guide's, and no more may be
asked than was glosado. :func:`criticas` says what breaks that, with Table 38 codes present in
dm_tipoGlosa of 4.01.00, 4.02.00 and 4.03.00 (so every version's answer can carry them):

* 1307 NÚMERO DA GUIA INVÁLIDO: the appealed guide is not one of the protocol's.
* 1801 PROCEDIMENTO INVÁLIDO: the appealed item (sequencialItem and procedure) is not one of the
  guide's. 3218 (código do procedimento não identificado para a glosa) says it better, but
  exists only from 4.03.00.
* 2908 SOLICITAÇÃO DE REANÁLISE EFETUADA DE FORMA INCORRETA: the guide (or item, or protocol)
  has no glosa to appeal; the code the simulated operators already give a recurso of a protocol
  not analysed yet.
* 1705 VALOR APRESENTADO A MAIOR: valorRecursado above the item's glosa, or valorTotalRecursado
  above the appealed guides' (the protocol's) glosas.

The simulated operators check against their own analysis (simulator.recebimentos), the gateway
against the analysis the operator reported in its situação answers (gateway.inbound.recursos):
both read the recurso with :func:`ler_recurso` and the operator's answer with
:func:`glosas_da_situacao`. Guides whose analysis the caller does not know (``pendentes``) are
not checked: only the operator can say then.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from gateway.message.findings import Finding, error
from gateway.message.services import ANS_NS
from gateway.message.situacao import GuiaSituacao, read_situacao
from gateway.message.tables import STATUS_ANALISADOS

GUIA_INVALIDA = "1307"  # NÚMERO DA GUIA INVÁLIDO
PROCEDIMENTO_INVALIDO = "1801"  # PROCEDIMENTO INVÁLIDO
REANALISE_INCORRETA = "2908"  # SOLICITAÇÃO DE REANÁLISE EFETUADA DE FORMA INCORRETA
VALOR_A_MAIOR = "1705"  # VALOR APRESENTADO A MAIOR

_A = f"{{{ANS_NS}}}"
_ZERO = Decimal("0.00")
# The guides of a situacaoProtocoloWS, in the order read_situacao reads them.
_SITUACAO_GUIAS = "/".join(f"{_A}{name}" for name in (
    "situacaoProtocolo", "situacaoDoProtocolo", "lote", "detalheLote", "guiasTISS")) + f"/*/{_A}guias"
_ITENS = f"{_A}procedimentosRealizados/{_A}procedimentoRealizado"


# --------------------------------------------------------------------------- what is appealed


@dataclass(frozen=True)
class ItemRecursado:
    """One item of a recurso (itensGuia / odonto recursoProcedimento)."""

    sequencial: int | None
    codigo_tabela: str
    codigo_procedimento: str
    valor: Decimal  # valorRecursado


@dataclass(frozen=True)
class GuiaRecursada:
    """One recursoGuia: guide-level motives (no value of their own in the schema) or items."""

    numero_guia_prestador: str
    itens: tuple[ItemRecursado, ...]  # empty: the whole guide (its motives)


@dataclass(frozen=True)
class Recurso:
    numero_protocolo: str  # the appealed protocol
    guias: tuple[GuiaRecursada, ...]  # empty: recurso of the whole protocol (recursoProtocolo)
    valor_total: Decimal  # valorTotalRecursado


def ler_recurso(root: etree._Element) -> Recurso:
    """The appealed guides and items of a (schema-valid) loteRecursoGlosaWS ``root``."""
    recurso = next(root.find(f"{_A}loteRecurso").iterchildren(etree.Element))
    odonto = etree.QName(recurso).localname == "guiaRecursoGlosaOdonto"
    opcao = recurso.find(f"{_A}opcaoRecurso")
    guias = tuple((_guia_odonto if odonto else _guia_medica)(g) for g in opcao.iterfind(f"{_A}recursoGuia"))
    total = _decimal(_texto(recurso, "valorTotalRecursado"))
    return Recurso(_texto(recurso, "numeroProtocolo"), guias, total)


def _guia_medica(guia: etree._Element) -> GuiaRecursada:
    itens = guia.iterfind(f"{_A}opcaoRecursoGuia/{_A}itensGuia")
    return GuiaRecursada(_texto(guia, "numeroGuiaOrigem"), tuple(_item(i) for i in itens))


def _guia_odonto(guia: etree._Element) -> GuiaRecursada:
    itens = guia.iterfind(f"{_A}recursoProcedimento")
    return GuiaRecursada(_texto(guia, "numeroGuiaPrestador"), tuple(_item(i) for i in itens))


def _item(item: etree._Element) -> ItemRecursado:
    sequencial = _texto(item, "sequencialItem")
    valor = _decimal(_texto(item, "valorRecursado"))
    return ItemRecursado(int(sequencial) if sequencial.isdigit() else None,
                         _texto(item, "procRecurso/codigoTabela"),
                         _texto(item, "procRecurso/codigoProcedimento"), valor)


# --------------------------------------------------------------------------- what was glosado


@dataclass(frozen=True)
class ItemGlosado:
    """An item of an analysed guide; ``sequencial`` is its sequencialItem, or its position in the
    guide where the guide gives none (as the operators' answers number it)."""

    sequencial: int
    codigo_tabela: str
    codigo_procedimento: str
    valor_glosa: Decimal


@dataclass(frozen=True)
class GuiaGlosada:
    numero_guia_prestador: str
    valor_glosa: Decimal
    itens: tuple[ItemGlosado, ...]

    @property
    def sem_glosa(self) -> bool:
        return self.valor_glosa <= 0 and not any(i.valor_glosa > 0 for i in self.itens)


def glosas_da_situacao(root: etree._Element) -> dict[str, GuiaGlosada] | None:
    """The guides of an operator's situacaoProtocoloWS ``root`` with their glosas, when the
    operator analysed the protocol (STATUS_ANALISADOS); None otherwise (not analysed yet, a
    mensagemErro, a value that is not a number)."""
    lida = read_situacao(root)
    if lida is None or lida.status not in STATUS_ANALISADOS:
        return None
    guias: dict[str, GuiaGlosada] = {}
    for situacao, element in zip(lida.guias, root.iterfind(_SITUACAO_GUIAS), strict=True):
        glosada = _glosada(situacao, element)
        if glosada is None:
            return None
        guias[glosada.numero_guia_prestador] = glosada
    return guias


def _glosada(situacao: GuiaSituacao, guia: etree._Element) -> GuiaGlosada | None:
    itens = []
    for posicao, item in enumerate(guia.iterfind(_ITENS), 1):
        sequencial = _texto(item, "sequencialItem")
        valor = _numero(item.findtext(f"{_A}glosasProcedimento/{_A}valorGlosaProcedimento") or "0")
        if valor is None:
            return None
        itens.append(ItemGlosado(int(sequencial) if sequencial.isdigit() else posicao,
                                 _texto(item, "procedimento/codigoTabela"),
                                 _texto(item, "procedimento/codigoProcedimento"), valor))
    valores = situacao.valores  # vlInformadoGuia is optional: then the items' glosas add up
    total = valores.glosa if valores is not None else sum((i.valor_glosa for i in itens), _ZERO)
    return GuiaGlosada(situacao.numero_guia_prestador, total, tuple(itens))


# --------------------------------------------------------------------------- the checks


def criticas(recurso: Recurso, glosadas: Mapping[str, GuiaGlosada],
             pendentes: Collection[str] = ()) -> list[Finding]:
    """What is wrong with ``recurso`` given the analysed guides of its protocol (``glosadas``, by
    numeroGuiaPrestador); ``pendentes``: guides of the protocol whose analysis is not known (not
    checked). Empty: nothing the glosas contradict."""
    if not recurso.guias:
        return list(_protocolo(recurso, glosadas, pendentes))
    found = [c for indice, guia in enumerate(recurso.guias, 1)
             for c in _guia(guia, glosadas, pendentes, indice)]
    conhecidas = [glosadas[g.numero_guia_prestador] for g in recurso.guias
                  if g.numero_guia_prestador in glosadas]
    if not found and len(conhecidas) == len(recurso.guias):
        found += _total(recurso, conhecidas, "das guias recursadas")
    return found


def _protocolo(recurso: Recurso, glosadas: Mapping[str, GuiaGlosada],
               pendentes: Collection[str]) -> Iterator[Finding]:
    """A recurso of the whole protocol, checked once the whole protocol's analysis is known."""
    if pendentes or not glosadas:
        return
    if all(g.sem_glosa for g in glosadas.values()):
        yield error(REANALISE_INCORRETA, f"Protocolo {recurso.numero_protocolo} sem glosa: não há o que "
                                         "recorrer.", "opcaoRecurso/recursoProtocolo")
        return
    yield from _total(recurso, list(glosadas.values()), f"do protocolo {recurso.numero_protocolo}")


def _guia(guia: GuiaRecursada, glosadas: Mapping[str, GuiaGlosada], pendentes: Collection[str],
          indice: int) -> Iterator[Finding]:
    numero, onde = guia.numero_guia_prestador, f"opcaoRecurso/recursoGuia[{indice}]"
    glosada = glosadas.get(numero)
    if glosada is None:
        if numero not in pendentes:
            yield error(GUIA_INVALIDA, f"Guia {numero} não consta do protocolo recursado.", onde)
        return
    if glosada.sem_glosa:
        yield error(REANALISE_INCORRETA, f"Guia {numero} sem glosa: não há o que recorrer.", onde)
        return
    for posicao, item in enumerate(guia.itens, 1):
        yield from _item_criticas(item, glosada, f"{onde}/item[{posicao}]")


def _item_criticas(item: ItemRecursado, guia: GuiaGlosada, onde: str) -> Iterator[Finding]:
    nome = f"Item {item.sequencial} ({item.codigo_tabela} {item.codigo_procedimento}) da guia " \
           f"{guia.numero_guia_prestador}"
    chave = (item.sequencial, item.codigo_tabela, item.codigo_procedimento)
    glosado = next((i for i in guia.itens if (i.sequencial, i.codigo_tabela, i.codigo_procedimento) == chave),
                   None)
    if glosado is None:
        yield error(PROCEDIMENTO_INVALIDO, f"{nome}: o item não consta da guia.", onde)
    elif glosado.valor_glosa <= 0:
        yield error(REANALISE_INCORRETA, f"{nome}: o item não foi glosado, não há o que recorrer.", onde)
    elif item.valor > glosado.valor_glosa:
        yield error(VALOR_A_MAIOR, f"{nome}: valor recursado {item.valor:.2f} acima do valor glosado "
                                   f"{glosado.valor_glosa:.2f}.", f"{onde}/valorRecursado")


def _total(recurso: Recurso, guias: list[GuiaGlosada], de: str) -> Iterator[Finding]:
    glosado = sum((g.valor_glosa for g in guias), _ZERO)
    if recurso.valor_total > glosado:
        yield error(VALOR_A_MAIOR, f"Valor total recursado {recurso.valor_total:.2f} acima do valor glosado "
                                   f"{de} ({glosado:.2f}).", "valorTotalRecursado")


def descricao(found: list[Finding], limite: int = 500) -> str:
    """The críticas in one mensagemErro descricaoGlosa (st_texto500)."""
    texto = " ".join(f.message for f in found)
    return texto if len(texto) <= limite else texto[:limite - 3] + "..."


# --------------------------------------------------------------------------- helpers


def _texto(element: etree._Element, path: str) -> str:
    """The stripped text at ``path`` (names separated by /, in the ANS namespace)."""
    return (element.findtext("/".join(f"{_A}{name}" for name in path.split("/"))) or "").strip()


def _numero(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _decimal(text: str) -> Decimal:
    """A schema-valid st_decimal10-2 (0 where it is not one: never raises on a value)."""
    return _numero(text) or _ZERO
