"""What became of a lote and its guides, as every view shows it (console pages, capa, charts and the
``protocolo show`` / ``lote list`` commands): each guide's situação (tables.SITUACOES_GUIA) with the
crítica that refused it and who refused it, how many guides were accepted and their value, and
the chain of resubmissions of a lote number.

One rule beyond the stored guia.situacao: a lote whose protocol is RECUSADO_PELA_OPERADORA had
nothing accepted. The operator's crítica hangs on the lote, not on each guide, so its guides the
gateway took count as refused with the lote's crítica.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from gateway.message.tables import (
    GUIA_ACEITA,
    GUIA_CANCELADA,
    GUIA_RECUSADA,
    RECUSADO_PELA_OPERADORA,
    SITUACOES_GUIA,
)

ZERO = Decimal("0.00")
# Who refused a guide: the gateway when the lote arrived (the operator's rules, partial sending),
# or the operator.
GATEWAY, OPERADORA = "gateway", "operadora"
RECUSADA_POR = {GATEWAY: "pelo gateway no recebimento (regras da operadora)", OPERADORA: "pela operadora"}


class GuiaLinha(Protocol):
    """A stored guide (gateway.storage.models.Guia, or a row with its columns)."""

    id: int
    numero_guia_prestador: str
    numero_guia_operadora: str | None
    tipo: str
    numero_carteira: str | None
    valor_informado: Decimal | None
    situacao: str


class CriticaLinha(Protocol):
    id: int
    mensagem_id: int | None
    guia_id: int | None
    codigo: str | None
    mensagem: str


@dataclass(frozen=True)
class Critica:
    codigo: str | None
    texto: str
    mensagem_id: int | None  # the message it was found in (the request, or the operator's answer)

    def __str__(self) -> str:
        return f"{self.codigo} {self.texto}" if self.codigo else self.texto


@dataclass(frozen=True)
class GuiaDesfecho:
    id: int
    numero_guia_prestador: str
    numero_guia_operadora: str | None
    tipo: str
    numero_carteira: str | None
    valor_informado: Decimal | None
    situacao: str  # SITUACOES_GUIA
    critica: Critica | None = None  # why it was refused
    recusada_por: str | None = None  # GATEWAY / OPERADORA; None when not refused or unknown

    @property
    def rotulo(self) -> str:
        return SITUACOES_GUIA.get(self.situacao, self.situacao)

    @property
    def aceita(self) -> bool:
        return self.situacao == GUIA_ACEITA


@dataclass(frozen=True)
class Contagem:
    """How many guides a lote has and how many of them (and what value) were accepted."""

    total: int
    aceitas: int
    valor_aceito: Decimal
    recusadas: int = 0
    canceladas: int = 0

    @property
    def em_parte(self) -> bool:
        return 0 < self.aceitas < self.total


@dataclass(frozen=True)
class Desfecho:
    guias: tuple[GuiaDesfecho, ...]
    critica_do_lote: Critica | None  # the lote's own crítica (the operator's refusal of the whole lote)
    contagem: Contagem

    @property
    def recusadas(self) -> list[GuiaDesfecho]:
        return [g for g in self.guias if g.situacao == GUIA_RECUSADA]

    @property
    def motivo(self) -> Critica | None:
        """Why the lote was refused (whole or in part): its own crítica, else the first refused
        guide's."""
        return self.critica_do_lote or next((g.critica for g in self.recusadas if g.critica), None)

    @property
    def recusadas_por(self) -> list[str]:
        """Who refused its guides (GATEWAY, OPERADORA), each once."""
        return sorted({g.recusada_por for g in self.recusadas if g.recusada_por})

    def numero_da_guia(self, guia_id: int) -> str:
        """numeroGuiaPrestador of one of the lote's guides (a crítica names its guide by id)."""
        return next((g.numero_guia_prestador for g in self.guias if g.id == guia_id), "—")

    def da_guia(self, numero_guia_prestador: str) -> GuiaDesfecho | None:
        return next((g for g in self.guias if g.numero_guia_prestador == numero_guia_prestador), None)


def montar(guias: Iterable[GuiaLinha], criticas: Iterable[CriticaLinha], *, status: int | None,
           mensagem_id: int | None) -> Desfecho:
    """The lote's guides as shown; ``criticas``: the lote's (lote-level and per guide), oldest
    first; ``mensagem_id``: the provider's lote message (a crítica found in it is the gateway's)."""
    ordered = sorted(criticas, key=lambda c: c.id)
    por_guia: dict[int, Critica] = {}
    for c in ordered:
        if c.guia_id is not None:
            por_guia.setdefault(c.guia_id, _critica(c))
    do_lote = _critica_do_lote(ordered, mensagem_id)
    recusado = status == RECUSADO_PELA_OPERADORA
    found = []
    for g in guias:
        situacao, critica = g.situacao, por_guia.get(g.id)
        if recusado and situacao == GUIA_ACEITA:  # the operator refused the whole lote
            situacao, critica = GUIA_RECUSADA, critica or do_lote
        por = _quem_recusou(critica, mensagem_id) if situacao == GUIA_RECUSADA else None
        found.append(GuiaDesfecho(g.id, g.numero_guia_prestador, g.numero_guia_operadora, g.tipo,
                                  g.numero_carteira, g.valor_informado, situacao,
                                  critica if situacao == GUIA_RECUSADA else None, por))
    return Desfecho(tuple(found), do_lote, contar(found))


def contar(guias: Sequence[GuiaDesfecho]) -> Contagem:
    aceitas = [g for g in guias if g.aceita]
    return Contagem(len(guias), len(aceitas), sum((g.valor_informado or ZERO for g in aceitas), ZERO),
                    sum(1 for g in guias if g.situacao == GUIA_RECUSADA),
                    sum(1 for g in guias if g.situacao == GUIA_CANCELADA))


def contagem(por_situacao: Mapping[str, tuple[int, Decimal | None]], *, status: int | None) -> Contagem:
    """A lote's counts from ``guia.situacao -> (guides, value)`` (the lists: no guide rows)."""
    total = sum(n for n, _valor in por_situacao.values())
    canceladas = por_situacao.get(GUIA_CANCELADA, (0, None))[0]
    if status == RECUSADO_PELA_OPERADORA:
        return Contagem(total, 0, ZERO, total - canceladas, canceladas)
    aceitas, valor = por_situacao.get(GUIA_ACEITA, (0, None))
    return Contagem(total, aceitas, valor or ZERO, por_situacao.get(GUIA_RECUSADA, (0, None))[0], canceladas)


def _critica(c: CriticaLinha) -> Critica:
    return Critica(c.codigo, c.mensagem, c.mensagem_id)


def _critica_do_lote(criticas: Sequence[CriticaLinha], mensagem_id: int | None) -> Critica | None:
    """The first crítica not about one guide, the operator's (not found in the request) first."""
    gerais = [c for c in criticas if c.guia_id is None]
    first = next((c for c in gerais if c.mensagem_id != mensagem_id), gerais[0] if gerais else None)
    return _critica(first) if first is not None else None


def _quem_recusou(critica: Critica | None, mensagem_id: int | None) -> str | None:
    if critica is None:
        return None
    return GATEWAY if mensagem_id is not None and critica.mensagem_id == mensagem_id else OPERADORA


# --- resubmissions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Elo:
    """One lote of a chain of resubmissions under the same lote number."""

    lote_id: int
    numero_lote: str
    protocolo: str | None
    status: int | None
    criado_em: datetime
    reenvio_de_id: int | None
    recusado_em: datetime | None  # when its protocol became RECUSADO_PELA_OPERADORA


@dataclass(frozen=True)
class Cadeia:
    elos: tuple[Elo, ...]  # oldest first
    atual: int  # the lote shown (lote id)

    @property
    def anterior(self) -> Elo | None:
        """The refused lote this one resends."""
        return self._vizinho(-1)

    @property
    def seguinte(self) -> Elo | None:
        """The lote that resent this one."""
        return self._vizinho(1)

    def _vizinho(self, passo: int) -> Elo | None:
        i = next(i for i, e in enumerate(self.elos) if e.lote_id == self.atual) + passo
        return self.elos[i] if 0 <= i < len(self.elos) else None


def cadeia(atual: int, elos: Iterable[Elo]) -> Cadeia:
    """The chain through lote ``atual`` from the lotes under its number (its link, ``reenvio_de_id``,
    points back at the lote it resends)."""
    by_id = {e.lote_id: e for e in elos}
    if atual not in by_id:
        return Cadeia((), atual)
    chain, seen = [by_id[atual]], {atual}
    while (de := chain[0].reenvio_de_id) in by_id and de not in seen:
        seen.add(de)
        chain.insert(0, by_id[de])
    while (seguinte := _reenvio(by_id.values(), chain[-1].lote_id)) and seguinte.lote_id not in seen:
        seen.add(seguinte.lote_id)
        chain.append(seguinte)
    return Cadeia(tuple(chain), atual)


def _reenvio(elos: Iterable[Elo], lote_id: int) -> Elo | None:
    return min((e for e in elos if e.reenvio_de_id == lote_id), key=lambda e: e.lote_id, default=None)

