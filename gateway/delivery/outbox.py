"""The outbox: deliveries scheduled with the message they carry, claimed by workers with a lease.

Claiming: PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of workers on any number of hosts
take disjoint batches; SQLite has one writer at a time (every transaction is BEGIN IMMEDIATE),
which serialises claims by itself. A claim is a lease (``reservada_ate``), short and renewed
by its worker's heartbeat (:func:`renew`); a stopping worker gives back what it holds
(:func:`release`). A worker killed mid-delivery leaves a lease that expires, and another worker
takes the delivery again, marked ``incerto`` (its send may have reached the operator): it sends
the same prepared bytes (same sequencialTransacao: an operator that deduplicates answers the
repeat), or holds it for a person when the operator does not (gateway.delivery.leases). The
states these statements move deliveries between are
:mod:`gateway.delivery.state`'s. The worker claims the rows themselves (:func:`claim_rows`: it
prepares and sends them without reading them again) and, idle, asks :func:`due` (a read) first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Integer, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gateway.config import EntregaSettings
from gateway.delivery import state
from gateway.delivery.state import State
from gateway.storage.models import ENTREGA_TABLE, Entrega, utcnow
from gateway.storage.prepared import Db, Prepared


def schedule(session: Db, *, registro_ans: str, servico: str, prestador_id: int, mensagem_id: int,
             protocolo_id: int | None = None, lote_id: int | None = None,
             now: datetime | None = None, request_id: str | None = None,
             senha_cifrada: bytes | None = None) -> int:
    """Schedule the delivery of an accepted message (call inside the accepting transaction: a
    Session or, on the request path, a plain Connection); ``request_id``: the accepting
    request's, logged and sent along with the delivery;
    ``senha_cifrada``: the message's senhaPrestador, sealed (gateway.security.vault.seal_senha)."""
    return _SCHEDULE.scalar(session, dict(
        registro_ans=registro_ans, servico=servico, prestador_id=prestador_id, mensagem_id=mensagem_id,
        protocolo_id=protocolo_id, lote_id=lote_id, request_id=request_id, senha_cifrada=senha_cifrada,
        **state.queued(now or utcnow()),
    ))


# Built once and run on the driver's cursor (gateway.storage.prepared): every accepted lote runs it.
_SCHEDULE = Prepared(Entrega.__table__.insert().returning(Entrega.__table__.c.id),  # type: ignore[attr-defined]
                     ("registro_ans", "servico", "prestador_id", "mensagem_id", "protocolo_id", "lote_id",
                      "estado", "proxima_em", "request_id", "senha_cifrada"))


def claim(session: Session, worker: str, *, limit: int, lease: float, now: datetime,
          skip: Iterable[str] = ()) -> list[int]:
    """Take up to ``limit`` due deliveries (pending, or whose lease expired) for ``worker``."""
    rows = claim_rows(session, worker, limit=limit, lease=lease, now=now, skip=skip)
    return [entrega.id for entrega in rows]


def claim_rows(session: Session, worker: str, *, limit: int, lease: float, now: datetime,
               skip: Iterable[str] = ()) -> list[Entrega]:
    """:func:`claim`, the rows loaded (prepared bytes too): the worker sends them without reading
    them again. One SELECT (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and one UPDATE per batch."""
    skip = list(skip)
    query = _CLAIM_SKIPPING if skip else _CLAIM
    params = {"now": now, "limit": limit, **({"skip": skip} if skip else {})}
    entregas = list(session.scalars(query, params))
    for entrega in entregas:  # before the UPDATE overwrites estado and reservada_por
        if entrega.estado == State.ENVIANDO and entrega.corpo is not None:
            entrega.incerto = taken_over(entrega)  # flushed with the claim's transaction
    if entregas:
        values = state.claimed(worker, now + timedelta(seconds=lease))
        session.execute(update(ENTREGA_TABLE).where(ENTREGA_TABLE.c.id.in_([e.id for e in entregas]))
                        .values(**values))
        for entrega in entregas:  # the loaded rows as the UPDATE left them, nothing to flush
            for key, value in values.items():
                set_committed_value(entrega, key, value)
    return entregas


def hold(session: Session, ids: Iterable[int], worker: str, *, lease: float, now: datetime) -> int:
    """Lease ``ids`` to ``worker`` without sending them (those still due): a delivery whose
    preparation failed leaves the queue until its lease ends, as if its worker had died."""
    query = (update(ENTREGA_TABLE).where(ENTREGA_TABLE.c.id.in_(list(ids)), _IS_DUE)
             .values(**state.claimed(worker, now + timedelta(seconds=lease))))
    result = session.execute(query, {"now": now})
    return result.rowcount or 0  # type: ignore[attr-defined]


def taken_over(entrega: Entrega) -> str:
    """Why a prepared delivery whose lease expired may be at the operator already: its worker
    died, hung or lost the database after claiming it, maybe mid-post."""
    return (f"a reserva de {entrega.reservada_por} expirou sem resposta registrada: "
            "o envio pode ter chegado à operadora")


def renew(session: Session, ids: Iterable[int], worker: str, *, lease: float, now: datetime) -> int:
    """The heartbeat: ``worker`` keeps the leases of ``ids`` it still holds for ``lease`` more
    seconds (a lease another worker took over meanwhile stays the other's)."""
    query = (update(ENTREGA_TABLE).where(ENTREGA_TABLE.c.id.in_(list(ids)), _HELD)
             .values(reservada_ate=now + timedelta(seconds=lease)))
    result = session.execute(query, {"worker": worker[:state.MAX_WORKER]})
    return result.rowcount or 0  # type: ignore[attr-defined]


def release(session: Session, ids: Iterable[int], worker: str, *, incerto: str | None = None) -> int:
    """A stopping worker gives back ``ids`` it still holds: pending again at once, no attempt
    counted; ``incerto`` for one it was posting when it had to go."""
    query = (update(ENTREGA_TABLE).where(ENTREGA_TABLE.c.id.in_(list(ids)), _HELD)
             .values(**state.released(incerto)))
    result = session.execute(query, {"worker": worker[:state.MAX_WORKER]})
    return result.rowcount or 0  # type: ignore[attr-defined]


def due(session: Session, *, now: datetime, skip: Iterable[str] = ()) -> bool:
    """Is any delivery due? A read, no lock: an idle worker asks this before it claims."""
    skip = list(skip)
    query = _DUE_SKIPPING if skip else _DUE
    return session.execute(query, {"now": now, **({"skip": skip} if skip else {})}).first() is not None


# Pending and due, or sending under an expired lease (the worker holding it died). Built once: a
# worker runs them every cycle.
_IS_DUE = or_(and_(Entrega.estado == State.PENDENTE, Entrega.proxima_em <= bindparam("now")),
              and_(Entrega.estado == State.ENVIANDO, Entrega.reservada_ate < bindparam("now")))
_HELD = and_(ENTREGA_TABLE.c.estado == State.ENVIANDO, ENTREGA_TABLE.c.reservada_por == bindparam("worker"))
_NOT_SKIPPED = Entrega.registro_ans.not_in(bindparam("skip", expanding=True))
_CLAIM = (select(Entrega).where(_IS_DUE).order_by(Entrega.proxima_em, Entrega.id)
          .limit(bindparam("limit", type_=Integer)).with_for_update(skip_locked=True))  # SQLite: no-op
_CLAIM_SKIPPING = _CLAIM.where(_NOT_SKIPPED)
_DUE = select(Entrega.id).where(_IS_DUE).limit(1)
_DUE_SKIPPING = _DUE.where(_NOT_SKIPPED)


def retry_dead(session: Session, ids: Iterable[int] | None = None, *, now: datetime | None = None) -> int:
    """Put dead-lettered deliveries (all, or ``ids``) back in the queue with fresh attempts."""
    query = update(Entrega).where(Entrega.estado == State.MORTA)
    if ids is not None:
        query = query.where(Entrega.id.in_(list(ids)))
    result = session.execute(query.values(**state.retried(now or utcnow())))
    return result.rowcount or 0  # type: ignore[attr-defined]


def next_status_query(settings: EntregaSettings, consultas: int) -> float:
    """Seconds until the next status query: backs off as the protocol ages."""
    return min(settings.consulta_max_s, settings.consulta_inicial_s * 2 ** consultas)
