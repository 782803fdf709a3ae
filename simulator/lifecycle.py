"""Where a protocol stands at a simulated moment, and the glosas decided when it arrived.

Pure functions of the profile's data (its ``status`` flow of ``Etapa(nome, status_tiss,
apos_horas)`` and its ``GlosaConfig``), the receipt moment and "now": nothing is scheduled, the
status is computed whenever asked, so advancing the clock moves every protocol at once.

Facts from the manuals behind the rules here:
* PASA: glosas are generated "Em análise"; the demonstrativo de análise de conta can be issued
  from "Liberado para Faturamento" on; the payment date is set at "Faturado" and only then is the
  demonstrativo de pagamento available. So análise = the flow reached an analysed status
  (dm_statusProtocolo 3, 4, 5 or 6); pagamento = the flow reached 6 (Pagamento efetuado).
* A lote glosado in full has nothing to pay: its flow (``Profile.fluxo(glosa_total=True)``) ends
  at 4 Encerrado sem pagamento when the analysis ends, and has no payment date.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

# dm_statusProtocolo
RECEBIDO = 1
EM_ANALISE = 2
LIBERADO_PARA_PAGAMENTO = 3
ENCERRADO_SEM_PAGAMENTO = 4
ANALISADO_AGUARDANDO_LIBERACAO = 5
PAGAMENTO_EFETUADO = 6
NAO_LOCALIZADO = 7
CANCELADO = 9
ANALISADOS = frozenset({LIBERADO_PARA_PAGAMENTO, ENCERRADO_SEM_PAGAMENTO, ANALISADO_AGUARDANDO_LIBERACAO,
                        PAGAMENTO_EFETUADO})
NOMES_TISS = {
    1: "Recebido", 2: "Em análise", 3: "Liberado para pagamento", 4: "Encerrado sem pagamento",
    5: "Analisado e aguardando liberação para pagamento", 6: "Pagamento efetuado", 7: "Não localizado",
    8: "Aguardando informação complementar", 9: "Cancelado", 10: "Bloqueio judicial",
}

# dm_statusSolicitacao (autorizações)
AUTORIZADO = "1"
EM_ANALISE_SOLICITACAO = "2"
NEGADO = "3"

GLOSA_NENHUMA = "nenhuma"
GLOSA_PARCIAL = "parcial"
GLOSA_TOTAL = "total"
CENTAVO = Decimal("0.01")


# Read-only members (properties): the profile's classes are frozen dataclasses.
class EtapaLike(Protocol):  # simulator.profile.Etapa
    @property
    def nome(self) -> str: ...
    @property
    def status_tiss(self) -> int: ...
    @property
    def apos_horas(self) -> float: ...


class GlosaConfigLike(Protocol):  # simulator.profile.GlosaConfig
    @property
    def taxa_parcial(self) -> float: ...
    @property
    def taxa_total(self) -> float: ...
    @property
    def codigos(self) -> tuple[str, ...]: ...
    @property
    def fracao_parcial(self) -> float: ...


# --------------------------------------------------------------------------- protocol status


@dataclass(frozen=True)
class Situacao:
    """A protocol's status at a moment: the operator's own name and the dm_statusProtocolo code."""

    nome: str
    status_tiss: int
    desde: datetime  # when this status began (simulated)


def _ordered(flow: Sequence[EtapaLike]) -> list[EtapaLike]:
    if not flow:
        raise ValueError("o fluxo de status da operadora está vazio")
    return sorted(flow, key=lambda etapa: etapa.apos_horas)


def momento(recebido_em: datetime, etapa: EtapaLike) -> datetime:
    return recebido_em + timedelta(hours=etapa.apos_horas)


def situacao_em(flow: Sequence[EtapaLike], recebido_em: datetime, agora: datetime, *,
                cancelado_em: datetime | None = None) -> Situacao:
    """The status at ``agora`` of a protocol received at ``recebido_em``.

    ``flow`` is the profile's (``Profile.fluxo(glosa_total)``: a lote glosado in full follows the
    flow that ends at 4 Encerrado sem pagamento). Before the flow's first step the protocol is 1
    Recebido; a cancelled protocol is 9 Cancelado from its cancellation on.
    """
    if cancelado_em is not None and agora >= cancelado_em:
        return Situacao(NOMES_TISS[CANCELADO], CANCELADO, cancelado_em)
    current = Situacao(NOMES_TISS[RECEBIDO], RECEBIDO, recebido_em)
    for etapa in _ordered(flow):
        start = momento(recebido_em, etapa)
        if start > agora:
            break
        current = Situacao(etapa.nome, etapa.status_tiss, start)
    return current


def primeiro_momento(flow: Sequence[EtapaLike], recebido_em: datetime,
                     statuses: Collection[int]) -> datetime | None:
    """When the flow first reaches one of ``statuses`` (None if it never does)."""
    for etapa in _ordered(flow):
        if etapa.status_tiss in statuses:
            return momento(recebido_em, etapa)
    return None


def analisado_em(flow: Sequence[EtapaLike], recebido_em: datetime,
                 desde: int | None = None) -> datetime | None:
    """When the demonstrativo de análise becomes available: from status ``desde`` (the profile's
    ``demonstrativo_analise_desde``; default the first analysed status), or from 4 Encerrado sem
    pagamento in the flow of a lote glosado in full."""
    statuses = ANALISADOS if desde is None else {desde, ENCERRADO_SEM_PAGAMENTO}
    return primeiro_momento(flow, recebido_em, statuses)


def data_pagamento(flow: Sequence[EtapaLike], recebido_em: datetime,
                   desde: int = PAGAMENTO_EFETUADO) -> datetime | None:
    """The payment moment: when the flow reaches ``desde`` (6 Pagamento efetuado; the profile's
    ``demonstrativo_pagamento_desde``); None in a flow that pays nothing."""
    return primeiro_momento(flow, recebido_em, {desde})


def analise_disponivel(flow: Sequence[EtapaLike], recebido_em: datetime, agora: datetime, *,
                       desde: int | None = None, cancelado_em: datetime | None = None) -> bool:
    """The demonstrativo de análise de conta exists (analysed, not cancelled)."""
    if cancelado_em is not None and cancelado_em <= agora:
        return False
    when = analisado_em(flow, recebido_em, desde)
    return when is not None and when <= agora


def pagamento_disponivel(flow: Sequence[EtapaLike], recebido_em: datetime, agora: datetime, *,
                         desde: int = PAGAMENTO_EFETUADO, cancelado_em: datetime | None = None) -> bool:
    """The demonstrativo de pagamento exists: only once the payment date has come (PASA manual)."""
    if cancelado_em is not None and cancelado_em <= agora:
        return False
    when = data_pagamento(flow, recebido_em, desde)
    return when is not None and when <= agora


def cancelavel(flow: Sequence[EtapaLike], recebido_em: datetime, agora: datetime) -> bool:
    """A lote (or one of its guides) can be cancelled while the operator has not analysed it
    (status 1 Recebido or 2 Em análise)."""
    when = primeiro_momento(flow, recebido_em, ANALISADOS)
    return when is None or agora < when


# --------------------------------------------------------------------------- glosas


@dataclass(frozen=True)
class GlosaGuia:
    """The glosa of one guide: its kind, the guide-level motive and each item's glosa."""

    tipo: str  # GLOSA_NENHUMA | GLOSA_PARCIAL | GLOSA_TOTAL
    codigo: str | None  # motive of a total glosa (also on every item); None otherwise
    itens: tuple[tuple[Decimal, str | None], ...]  # (valor glosado, código) per item, in order
    valor: Decimal  # glosa of the guide: the sum of its items'


def rng_da_guia(seed: int | str, registro_ans: str, numero_lote: str, numero_guia: str) -> random.Random:
    """The deterministic generator of one guide's glosa: same inputs, same glosa, in any process."""
    return random.Random(f"{seed}:{registro_ans}:{numero_lote}:{numero_guia}")


def decidir_glosa(config: GlosaConfigLike, *, seed: int | str, registro_ans: str, numero_lote: str,
                  numero_guia: str, valores_itens: Sequence[Decimal],
                  codigos_validos: Collection[str] | None = None) -> GlosaGuia:
    """Decide at receipt whether a guide is glosada, how, and with which Table 38 code.

    One draw picks the kind (``taxa_total``, then ``taxa_parcial``, else none). A total glosa
    takes every item whole; a partial one takes ``fracao_parcial`` of one item drawn among those
    with a value. ``codigos_validos`` (dm_tipoGlosa of the message's version) filters the
    profile's codes: a response may only carry codes its version knows. The guide's glosa is
    the sum of its items' (the demonstrativos total the items).
    """
    rng = rng_da_guia(seed, registro_ans, numero_lote, numero_guia)
    draw = rng.random()
    codigos = [c for c in config.codigos if codigos_validos is None or c in codigos_validos]
    pagos = [i for i, v in enumerate(valores_itens) if v > 0]
    if not codigos or not pagos:
        return _sem_glosa(valores_itens)
    if draw < config.taxa_total:
        codigo = rng.choice(codigos)
        itens = tuple((Decimal(v), codigo if v > 0 else None) for v in valores_itens)
        return GlosaGuia(GLOSA_TOTAL, codigo, itens, sum((v for v, _ in itens), Decimal("0.00")))
    if draw < config.taxa_total + config.taxa_parcial:
        escolhido = rng.choice(pagos)
        codigo = rng.choice(codigos)
        item = Decimal(valores_itens[escolhido])
        valor = min(_fracao(item, config.fracao_parcial), item)
        if valor <= 0:
            return _sem_glosa(valores_itens)
        itens = tuple((valor, codigo) if i == escolhido else (Decimal("0.00"), None)
                      for i in range(len(valores_itens)))
        return GlosaGuia(GLOSA_PARCIAL, None, itens, valor)
    return _sem_glosa(valores_itens)


def _fracao(valor: Decimal, fracao: float) -> Decimal:
    return (Decimal(valor) * Decimal(str(fracao))).quantize(CENTAVO, rounding=ROUND_HALF_UP)


def _sem_glosa(valores_itens: Sequence[Decimal]) -> GlosaGuia:
    return GlosaGuia(GLOSA_NENHUMA, None, tuple((Decimal("0.00"), None) for _ in valores_itens),
                     Decimal("0.00"))


# --------------------------------------------------------------------------- autorizações


def status_autorizacao(status: str, status_final: str, decidida_em: datetime | None,
                       agora: datetime) -> str:
    """dm_statusSolicitacao at ``agora``: an 'em análise' request becomes its final status once
    the operator's analysis time has passed."""
    if status == EM_ANALISE_SOLICITACAO and decidida_em is not None and agora >= decidida_em:
        return status_final
    return status
