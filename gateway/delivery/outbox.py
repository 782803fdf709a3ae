"""The outbox: deliveries scheduled with the message they carry, claimed by workers with a lease.

Claiming: PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of workers on any number of hosts
take disjoint batches; SQLite has one writer at a time (every transaction is BEGIN IMMEDIATE),
which serialises claims by itself. A claim is a lease (``reservada_ate``): a worker killed
mid-delivery leaves a lease that expires, and another worker takes the delivery again and sends
the same prepared bytes (same sequencialTransacao: the operator answers the repeat, it does not
take a second lote).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from gateway.config import EntregaSettings
from gateway.storage.models import Entrega, utcnow
from gateway.storage.prepared import Prepared


def schedule(session: Session, *, registro_ans: str, servico: str, prestador_id: int, mensagem_id: int,
             protocolo_id: int | None = None, lote_id: int | None = None,
             now: datetime | None = None, request_id: str | None = None) -> int:
    """Schedule the delivery of an accepted message (call inside the accepting transaction);
    ``request_id``: the accepting request's, logged and sent along with the delivery."""
    return _SCHEDULE.scalar(session, dict(
        registro_ans=registro_ans, servico=servico, prestador_id=prestador_id, mensagem_id=mensagem_id,
        protocolo_id=protocolo_id, lote_id=lote_id, estado="pendente", proxima_em=now or utcnow(),
        request_id=request_id,
    ))


# Built once and run on the driver's cursor (gateway.storage.prepared): every accepted lote runs it.
_SCHEDULE = Prepared(Entrega.__table__.insert().returning(Entrega.__table__.c.id),  # type: ignore[attr-defined]
                     ("registro_ans", "servico", "prestador_id", "mensagem_id", "protocolo_id", "lote_id",
                      "estado", "proxima_em", "request_id"))


def claim(session: Session, worker: str, *, limit: int, lease: float, now: datetime,
          skip: Iterable[str] = ()) -> list[int]:
    """Take up to ``limit`` due deliveries (pending, or whose lease expired) for ``worker``."""
    due = or_(and_(Entrega.estado == "pendente", Entrega.proxima_em <= now),
              and_(Entrega.estado == "enviando", Entrega.reservada_ate < now))
    query = select(Entrega.id).where(due).order_by(Entrega.proxima_em, Entrega.id).limit(limit)
    skip = list(skip)
    if skip:
        query = query.where(Entrega.registro_ans.not_in(skip))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if ids:
        session.execute(update(Entrega).where(Entrega.id.in_(ids)).values(
            estado="enviando", reservada_ate=now + timedelta(seconds=lease), reservada_por=worker[:100]))
    return ids


def retry_delay(settings: EntregaSettings, tentativas: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter over the upper half: spreads retries of many workers."""
    ceiling = min(settings.espera_max_s, settings.espera_inicial_s * 2 ** max(tentativas - 1, 0))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def failed(session: Session, entrega: Entrega, erro: str, settings: EntregaSettings, now: datetime) -> None:
    """A failed attempt: retry later, or dead-letter after the configured attempts."""
    entrega.tentativas += 1
    entrega.ultimo_erro = erro[:4000]
    entrega.reservada_ate = entrega.reservada_por = None
    if entrega.tentativas >= settings.tentativas:
        entrega.estado = "morta"
    else:
        entrega.estado = "pendente"
        entrega.proxima_em = now + timedelta(seconds=retry_delay(settings, entrega.tentativas))


def postpone(session: Session, entrega: Entrega, now: datetime, seconds: float, motivo: str) -> None:
    """Give a claimed delivery back without counting an attempt (e.g. the operator's circuit is open)."""
    entrega.estado = "pendente"
    entrega.reservada_ate = entrega.reservada_por = None
    entrega.proxima_em = now + timedelta(seconds=seconds)
    entrega.ultimo_erro = motivo


def retry_dead(session: Session, ids: Iterable[int] | None = None, *, now: datetime | None = None) -> int:
    """Put dead-lettered deliveries (all, or ``ids``) back in the queue with fresh attempts."""
    query = update(Entrega).where(Entrega.estado == "morta")
    if ids is not None:
        query = query.where(Entrega.id.in_(list(ids)))
    result = session.execute(query.values(estado="pendente", tentativas=0, proxima_em=now or utcnow(),
                                          reservada_ate=None, reservada_por=None))
    return result.rowcount or 0


def next_status_query(settings: EntregaSettings, consultas: int) -> float:
    """Seconds until the next status query: backs off as the protocol ages."""
    return min(settings.consulta_max_s, settings.consulta_inicial_s * 2 ** consultas)
