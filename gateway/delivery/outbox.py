"""The outbox: deliveries scheduled with the message they carry, claimed by workers with a lease.

Claiming: PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of workers on any number of hosts
take disjoint batches; SQLite has one writer at a time (every transaction is BEGIN IMMEDIATE),
which serialises claims by itself. A claim is a lease (``reservada_ate``): a worker killed
mid-delivery leaves a lease that expires, and another worker takes the delivery again and sends
the same prepared bytes (same sequencialTransacao: the operator answers the repeat, it does not
take a second lote). The states these statements move deliveries between are
:mod:`gateway.delivery.state`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from gateway.config import EntregaSettings
from gateway.delivery import state
from gateway.delivery.state import State
from gateway.storage.models import Entrega, utcnow
from gateway.storage.prepared import Prepared


def schedule(session: Session, *, registro_ans: str, servico: str, prestador_id: int, mensagem_id: int,
             protocolo_id: int | None = None, lote_id: int | None = None,
             now: datetime | None = None, request_id: str | None = None) -> int:
    """Schedule the delivery of an accepted message (call inside the accepting transaction);
    ``request_id``: the accepting request's, logged and sent along with the delivery."""
    return _SCHEDULE.scalar(session, dict(
        registro_ans=registro_ans, servico=servico, prestador_id=prestador_id, mensagem_id=mensagem_id,
        protocolo_id=protocolo_id, lote_id=lote_id, request_id=request_id, **state.queued(now or utcnow()),
    ))


# Built once and run on the driver's cursor (gateway.storage.prepared): every accepted lote runs it.
_SCHEDULE = Prepared(Entrega.__table__.insert().returning(Entrega.__table__.c.id),  # type: ignore[attr-defined]
                     ("registro_ans", "servico", "prestador_id", "mensagem_id", "protocolo_id", "lote_id",
                      "estado", "proxima_em", "request_id"))


def claim(session: Session, worker: str, *, limit: int, lease: float, now: datetime,
          skip: Iterable[str] = ()) -> list[int]:
    """Take up to ``limit`` due deliveries (pending, or whose lease expired) for ``worker``."""
    query = select(Entrega.id).where(_due(now)).order_by(Entrega.proxima_em, Entrega.id).limit(limit)
    skip = list(skip)
    if skip:
        query = query.where(Entrega.registro_ans.not_in(skip))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if ids:
        session.execute(update(Entrega).where(Entrega.id.in_(ids)).values(
            **state.claimed(worker, now + timedelta(seconds=lease))))
    return ids


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending and due, or sending under an expired lease (the worker holding it died)."""
    return or_(and_(Entrega.estado == State.PENDENTE, Entrega.proxima_em <= now),
               and_(Entrega.estado == State.ENVIANDO, Entrega.reservada_ate < now))


def retry_dead(session: Session, ids: Iterable[int] | None = None, *, now: datetime | None = None) -> int:
    """Put dead-lettered deliveries (all, or ``ids``) back in the queue with fresh attempts."""
    query = update(Entrega).where(Entrega.estado == State.MORTA)
    if ids is not None:
        query = query.where(Entrega.id.in_(list(ids)))
    result = session.execute(query.values(**state.retried(now or utcnow())))
    return result.rowcount or 0


def next_status_query(settings: EntregaSettings, consultas: int) -> float:
    """Seconds until the next status query: backs off as the protocol ages."""
    return min(settings.consulta_max_s, settings.consulta_inicial_s * 2 ** consultas)
