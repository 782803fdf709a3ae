"""The state of an entrega (``Entrega.estado``) and its transitions: the only code that writes it.

    pendente --claimed--> enviando --delivered--> entregue (its protocol is tracked from then on)
                                   --refused----> recusada (by the operator, or by its adapter)
                                   --failed-----> pendente after a backoff; morta (dead) after the last try
                                   --postponed--> pendente, no attempt counted
                                   --released---> pendente, no attempt counted (its worker stops)
                                   --uncertain--> morta: an earlier send's outcome is unknown and
                                                  the operator does not deduplicate (``incerto``)
    morta --retried--> pendente (a person's decision)

Row transitions change one loaded ``Entrega`` inside the caller's transaction; the outbox's bulk
statements (schedule, claim, retry) take their column values from :func:`queued`,
:func:`claimed` and :func:`retried`. Reading the state is free for everyone (a ``State`` equals
the stored string, in SQL and in Python). No database import here: the command line reads
``State`` while it starts.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.config import EntregaSettings
    from gateway.storage.models import Entrega

MAX_ERRO = 4000  # ultimo_erro kept (the operator's text can be long)
MAX_WORKER = 100  # reservada_por's width


class State(StrEnum):
    """Where a delivery is; the values are stored (the ``estado`` check constraint): never change
    them."""

    PENDENTE = "pendente"  # in the queue, due at proxima_em
    ENVIANDO = "enviando"  # claimed by a worker until reservada_ate (its lease)
    ENTREGUE = "entregue"  # the operator took it (its protocol is tracked from then on)
    RECUSADA = "recusada"  # refused by the operator or by its adapter: sent again only as a new message
    MORTA = "morta"  # failed every attempt (dead letter): back in the queue only by a person


NOT_SENT: tuple[State, ...] = (State.PENDENTE, State.ENVIANDO)  # not at the operator yet
STOPPED: tuple[State, ...] = (State.RECUSADA, State.MORTA)  # stuck until a person acts


# --- bulk transitions: column values for the outbox's statements ---------------------------------

def queued(at: datetime) -> dict[str, Any]:
    """A new delivery (scheduled, or a part its adapter split off): pending, due ``at``."""
    return {"estado": State.PENDENTE, "proxima_em": at}


def claimed(worker: str, until: datetime) -> dict[str, Any]:
    """Claimed by ``worker``: sending under a lease that ends at ``until``."""
    return {"estado": State.ENVIANDO, "reservada_ate": until, "reservada_por": worker[:MAX_WORKER]}


def retried(now: datetime) -> dict[str, Any]:
    """A dead letter a person sends again: pending now, with every attempt back."""
    return {"estado": State.PENDENTE, "tentativas": 0, "proxima_em": now,
            "reservada_ate": None, "reservada_por": None, "incerto": None}


def released(incerto: str | None = None) -> dict[str, Any]:
    """Given back by a worker that stops: pending, due as it was, no attempt counted. ``incerto``:
    it was being posted (the operator may have it), else it was never sent."""
    values: dict[str, Any] = {"estado": State.PENDENTE, "reservada_ate": None, "reservada_por": None}
    if incerto is not None:
        values["incerto"] = incerto[:MAX_ERRO]
    return values


# --- row transitions: one loaded Entrega -----------------------------------------------------------

def held_by(entrega: Entrega, worker: str) -> bool:
    """Does ``worker`` hold the delivery's lease (another worker takes it over once it expires)?"""
    return entrega.reservada_por == worker[:MAX_WORKER]


def delivered(entrega: Entrega, now: datetime, numero_protocolo: str | None) -> None:
    """The operator took it and gave ``numero_protocolo``."""
    _attempted(entrega)
    entrega.estado, entrega.entregue_em = State.ENTREGUE, now
    entrega.numero_protocolo = numero_protocolo


def refused(entrega: Entrega, motivo: str, *, attempted: bool = True) -> None:
    """Refused by the operator (``attempted``) or by its adapter before any attempt: sending the
    same bytes again would be refused again."""
    if attempted:
        _attempted(entrega)
    else:
        _release(entrega)
    entrega.estado, entrega.ultimo_erro = State.RECUSADA, motivo[:MAX_ERRO]


def failed(entrega: Entrega, erro: str, settings: EntregaSettings, now: datetime,
           rng: random.Random | None = None) -> None:
    """An attempt that failed (connection, HTTP 5xx, a broken answer): retried after a backoff,
    dead after the configured attempts."""
    _attempted(entrega)
    entrega.ultimo_erro = erro[:MAX_ERRO]
    if entrega.tentativas >= settings.tentativas:
        dead(entrega)
    else:
        entrega.estado = State.PENDENTE
        entrega.proxima_em = now + timedelta(seconds=retry_delay(settings, entrega.tentativas, rng))


def dead(entrega: Entrega) -> None:
    """No attempt left: a dead letter until a person retries it."""
    _release(entrega)
    entrega.estado = State.MORTA


def uncertain(entrega: Entrega, motivo: str) -> None:
    """Not sent again: an earlier send may have reached an operator that would take it twice.
    A person asks the operator, then retries it (or not)."""
    _release(entrega)
    entrega.estado, entrega.ultimo_erro = State.MORTA, motivo[:MAX_ERRO]


def postponed(entrega: Entrega, now: datetime, seconds: float, motivo: str) -> None:
    """Given back without counting an attempt (the operator's circuit is open, or what it refers
    to is not at the operator yet): pending again in ``seconds``."""
    _release(entrega)
    entrega.estado = State.PENDENTE
    entrega.proxima_em = now + timedelta(seconds=seconds)
    entrega.ultimo_erro = motivo


def retry_delay(settings: EntregaSettings, tentativas: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter over the upper half: spreads retries of many workers."""
    ceiling = min(settings.espera_max_s, settings.espera_inicial_s * 2 ** max(tentativas - 1, 0))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def _attempted(entrega: Entrega) -> None:
    _release(entrega)
    entrega.tentativas += 1


def _release(entrega: Entrega) -> None:
    entrega.reservada_ate = entrega.reservada_por = None
