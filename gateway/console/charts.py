"""Chart geometry for the inline SVG of the charts page (no JavaScript): lotes per day and the glosa
rate per operator. The templates draw what these functions compute, with presentation attributes
only (the CSP forbids inline styles)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

LARGURA, ALTURA = 760, 240
MARGEM_ESQ, MARGEM_DIR, MARGEM_SUP, MARGEM_INF = 44, 12, 12, 40


@dataclass(frozen=True)
class Barra:
    x: float
    y: float
    largura: float
    altura: float
    rotulo: str
    valor: str
    dica: str


@dataclass(frozen=True)
class Marca:
    pos: float
    texto: str


@dataclass(frozen=True)
class Grafico:
    largura: int
    altura: int
    barras: tuple[Barra, ...]
    marcas: tuple[Marca, ...]  # value axis
    base: float  # y (vertical chart) or x (horizontal chart) of the zero line
    vazio: bool


def _teto(maximo: float) -> float:
    """A round axis maximum at or above ``maximo``."""
    if maximo <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(maximo))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= maximo)


def dias(inicio: date, fim: date) -> list[date]:
    return [inicio + timedelta(days=i) for i in range((fim - inicio).days + 1)]


def volume_por_dia(contagens: dict[date, int], inicio: date, fim: date) -> Grafico:
    """Vertical bars, one per Brasília day from ``inicio`` to ``fim`` (days without lotes too)."""
    todos = dias(inicio, fim)
    teto = max(_teto(max(contagens.values(), default=0)), 2)  # whole lotes on the axis
    area_w = LARGURA - MARGEM_ESQ - MARGEM_DIR
    area_h = ALTURA - MARGEM_SUP - MARGEM_INF
    passo = area_w / max(len(todos), 1)
    base = MARGEM_SUP + area_h
    rotular = max(1, math.ceil(len(todos) / 15))  # at most ~15 day labels
    barras = []
    for i, dia in enumerate(todos):
        n = contagens.get(dia, 0)
        h = area_h * n / teto
        barras.append(Barra(MARGEM_ESQ + i * passo + passo * 0.15, base - h, passo * 0.7, h,
                            dia.strftime("%d/%m") if i % rotular == 0 else "", str(n),
                            f"{dia.strftime('%d/%m/%Y')}: {n} lote(s)"))
    marcas = tuple(Marca(base - area_h * f, _inteiro(teto * f)) for f in (0, 0.5, 1)
                   if float(teto * f).is_integer())
    return Grafico(LARGURA, ALTURA, tuple(barras), marcas, base, not any(contagens.values()))


def _inteiro(valor: float) -> str:
    return str(int(valor)) if float(valor).is_integer() else f"{valor:.1f}".replace(".", ",")


@dataclass(frozen=True)
class TaxaGlosa:
    operadora: str
    lotes: int
    aceito: Decimal  # the informed value of the accepted guides: what the operator analysed
    glosado: Decimal

    @property
    def taxa(self) -> Decimal | None:
        return self.glosado / self.aceito if self.aceito else None


def glosa_por_operadora(taxas: list[TaxaGlosa]) -> Grafico:
    """Horizontal bars: the share of the accepted guides' value the operator glosou (analysed
    lotes; guides refused never count)."""
    linha = 30
    altura = MARGEM_SUP + linha * max(len(taxas), 1) + 30
    esquerda, area_w = 220, LARGURA - 220 - 60
    teto = _teto(max((float(t.taxa) for t in taxas if t.taxa is not None), default=0) * 100) / 100
    barras = []
    for i, t in enumerate(taxas):
        taxa = float(t.taxa) if t.taxa is not None else 0.0
        w = area_w * taxa / teto
        valor = f"{taxa * 100:.1f}%".replace(".", ",") if t.taxa is not None else "—"
        barras.append(Barra(esquerda, MARGEM_SUP + i * linha + 5, w, linha - 10, t.operadora, valor,
                            f"{t.operadora}: {valor} glosado de {t.lotes} lote(s) analisado(s)"))
    marcas = tuple(Marca(esquerda + area_w * f, f"{teto * f * 100:.0f}%") for f in (0, 0.5, 1))
    return Grafico(LARGURA, altura, tuple(barras), marcas, float(esquerda), not taxas)
