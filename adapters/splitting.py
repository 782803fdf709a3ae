"""A lote split into the parts one operator takes: at most its guide limit (and the Padrão's 100),
one guide type per part where it wants one, and a file no larger than its limit; each part is a
copy of the message with its share of the guides and a numeroLote of its own
(:func:`numero_lote_parte`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from adapters.errors import Refused
from adapters.guias import Guia, guias_do_lote, numero_do_lote
from gateway.message import findings as f
from gateway.message.services import ANS_NS

_A = f"{{{ANS_NS}}}"

ST_TEXTO12 = 12  # numeroLote and sequencialTransacao are st_texto12
ARQUIVO_ACIMA_DO_TAMANHO = "3166"  # Table 38: ARQUIVO ENVIADO EXCEDE O TAMANHO MÁXIMO PERMITIDO
# Room left in a part for what changes after it is measured: cabeçalho values, the hash, the
# signature (its certificates are added on top when the part is signed).
MARGEM_BYTES = 8 * 1024


@dataclass(frozen=True)
class Limits:
    """What one part may hold."""

    operadora: str  # its name, for the crítica
    max_guias: int  # the operator's guide limit, at most the Padrão's
    um_tipo_de_guia: bool
    max_bytes: int | None  # per file; None: no limit
    margem: int = MARGEM_BYTES  # bytes kept for what changes after measuring

    def cabe(self, tamanho: int) -> bool:
        """A file of ``tamanho`` bytes, as measured now, fits once stamped."""
        return self.max_bytes is None or tamanho + self.margem <= self.max_bytes

    def orcamento(self, esqueleto: etree._Element, encoding: str) -> int | None:
        """Bytes left for guides in one file: the limit less the rest of the message."""
        if self.max_bytes is None:
            return None
        return self.max_bytes - tamanho(esqueleto, encoding) - self.margem


@dataclass
class Part:
    """One message of a split: its *WS root and, for a lote, its numeroLote and guides."""

    root: etree._Element
    numero_lote: str | None
    guias: tuple[str, ...]  # numeroGuiaPrestador of its guides, in order


def whole(root: etree._Element, limits: Limits, encoding: str) -> Part:
    """A message that is not a lote goes as it is, if its file fits."""
    orcamento = limits.orcamento(root, encoding)
    if orcamento is not None and orcamento < 0:
        raise Refused(f.error(ARQUIVO_ACIMA_DO_TAMANHO, f"A mensagem excede o tamanho máximo de arquivo da "
                              f"operadora {limits.operadora} ({limits.max_bytes} bytes).",
                              etree.QName(root).localname))
    return Part(root, None, ())


def split_lote(root: etree._Element, limits: Limits, encoding: str) -> list[Part]:
    """The parts of a loteGuiasWS, in order (``root`` itself when it goes whole).

    Guides keep their order, grouped by type (first appearance first), then cut by count and size.
    """
    lote = root.find(f"{_A}loteGuias")
    guias = guias_do_lote(lote)
    container = lote.find(f"{_A}guiasTISS")
    for guia in guias:
        container.remove(guia.elemento)
    grupos = list(_agrupar(guias, root, limits, encoding)) or [[]]
    numero = numero_do_lote(lote)
    partes = []
    for indice, grupo in enumerate(grupos, 1):
        parte = root if len(grupos) == 1 else copy.deepcopy(root)
        destino = parte.find(f"{_A}loteGuias/{_A}guiasTISS")
        for guia in grupo:
            destino.append(guia.elemento)
        numero_parte = numero_lote_parte(numero, indice, len(grupos))
        parte.find(f"{_A}loteGuias/{_A}numeroLote").text = numero_parte
        partes.append(Part(parte, numero_parte, tuple(g.numero for g in grupo)))
    return partes


def numero_lote_parte(numero_lote: str, parte: int, total: int) -> str:
    """numeroLote of part ``parte`` (1-based) of ``total``.

    One part keeps the provider's number. Several get ``<número>-<parte>`` ("1002270-1",
    "1002270-2", ...): distinct, the same for the same input, traceable to the provider's lote,
    and, with the hyphen, never one of the provider's own (numeric) numbers. It must fit
    st_texto12: a number too long keeps its rightmost characters (the sequential part of a lote
    number) before the suffix, e.g. "781500101296" part 2 -> "1500101296-2".
    """
    if total == 1:
        return numero_lote
    sufixo = f"-{parte}"
    return numero_lote[-(ST_TEXTO12 - len(sufixo)):] + sufixo


def tamanho(element: etree._Element, encoding: str) -> int:
    """Bytes of ``element`` serialized in ``encoding``."""
    return len(etree.tostring(element, encoding=encoding, xml_declaration=False, with_tail=False))


def _agrupar(guias: list[Guia], esqueleto: etree._Element, limits: Limits,
             encoding: str) -> Iterator[list[Guia]]:
    grupos: dict[str, list[Guia]] = {}
    for guia in guias:
        grupos.setdefault(guia.tipo if limits.um_tipo_de_guia else "", []).append(guia)
    orcamento = limits.orcamento(esqueleto, encoding)
    for grupo in grupos.values():
        yield from _fatiar(grupo, limits, orcamento, encoding)


def _fatiar(guias: list[Guia], limits: Limits, orcamento: int | None, encoding: str) -> Iterator[list[Guia]]:
    """Greedy, in order: a part takes guides until the next would pass the count or the size."""
    atual: list[Guia] = []
    usado = 0
    for guia in guias:
        medida = tamanho(guia.elemento, encoding) if orcamento is not None else 0
        if orcamento is not None and medida > orcamento:
            raise Refused(f.error(
                ARQUIVO_ACIMA_DO_TAMANHO, f"A guia {guia.numero} sozinha excede o tamanho máximo de "
                f"arquivo da operadora {limits.operadora} ({limits.max_bytes} bytes).", guia.local,
                guia.elemento.sourceline))
        cheia = len(atual) >= limits.max_guias or (orcamento is not None and usado + medida > orcamento)
        if atual and cheia:
            yield atual
            atual, usado = [], 0
        atual.append(guia)
        usado += medida
    if atual:
        yield atual
