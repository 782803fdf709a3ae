"""Retention (``tiss-gateway prune``): message bodies go after a configurable age, the record stays.

What goes:

* ``mensagem.corpo`` of messages older than ``[retencao] corpo_dias`` becomes empty and
  ``corpo_removido_em`` says when; the row keeps everything else (size, hash, sender, result,
  Table 38 code, request id), and protocols, lotes, guides, críticas and demonstrativo rows are
  untouched.
* ``entrega.corpo`` (the prepared bytes) of deliveries that are finished: delivered or refused and
  no longer polled for status (a part that went as a portal file: once its status is final, since
  the portal's returns are recorded against it until then, gateway.delivery.arquivo).
* ``auditoria`` rows older than ``[retencao] auditoria_dias``, never less than 90 days (ANS
  Componente de Segurança: access logs are kept at least 90 days).

What stays, whatever its age, because the gateway still reads it:

* the request of a delivery not finished (pendente, enviando, or morta, which ``entregas retry``
  sends again): the worker prepares deliveries from it;
* the operator's last situação answer of each delivery (``entrega.situacao_id``): the status
  answers given to providers show the values and glosas read from it;
* demonstrativos (``demonstrativo.mensagem_id``): kept as received;
* the file of a part that went to a portal (``arquivo.mensagem_id``) until its status is final.

A stored answer replayed for a repeated transaction (``transacao.resposta_id``) is as old as the
transaction: a repeat after its answer was pruned gets a tissFault (SchemaInvalido, 5001) asking
for a new sequencialTransacao (gateway.inbound.pipeline), never an empty answer.

Work goes in batches of ``[retencao] lote`` rows, one short transaction each, walking the primary
key: a big table is never locked for long and an interrupted run resumes where it stopped. Space is
reused by the database; PostgreSQL's autovacuum and SQLite's ``VACUUM`` give it back to the disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import AUDITORIA_DIAS_MIN, RetencaoSettings
from gateway.message.tables import FINAL_STATUS
from gateway.storage.auditoria import auditar
from gateway.storage.models import (
    AUDITORIA_TABLE,
    DEMONSTRATIVO_TABLE,
    ENTREGA_TABLE,
    MENSAGEM_TABLE,
    Arquivo,
)

_M, _E, _D, _A = MENSAGEM_TABLE, ENTREGA_TABLE, DEMONSTRATIVO_TABLE, AUDITORIA_TABLE
FINISHED = ("entregue", "recusada")  # deliveries whose request is not read again

# A message that is the request of an unfinished delivery (correlated to the mensagem row).
_PENDING = select(_E.c.id).where(_E.c.mensagem_id == _M.c.id, _E.c.estado.not_in(FINISHED)).exists()
# A part that went as a portal file and still waits for what the portal gives back: the clerk's
# demonstrativo is read against its cabeçalho (correlated to the entrega row).
_AWAITING_PORTAL = (select(Arquivo.id).where(Arquivo.entrega_id == _E.c.id).exists()
                    & or_(_E.c.status.is_(None), _E.c.status.not_in(FINAL_STATUS)))


@dataclass
class PruneReport:
    corpo_antes_de: datetime
    auditoria_antes_de: datetime
    dry_run: bool
    mensagens: int = 0  # bodies emptied (or that would be)
    bytes: int = 0
    mantidas: int = 0  # old bodies kept because the gateway still reads them
    entregas: int = 0  # prepared delivery bodies emptied
    auditoria: int = 0  # access-log rows deleted

    def as_dict(self) -> dict:
        found = asdict(self)
        for key in ("corpo_antes_de", "auditoria_antes_de"):
            found[key] = found[key].isoformat()
        return found


def prune(sessions: sessionmaker[Session], settings: RetencaoSettings, *, corpo_dias: int | None = None,
          dry_run: bool = False, quem: str = "prune",
          now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> PruneReport:
    """Apply the retention rules (see the module docstring); ``corpo_dias`` overrides the setting.
    A real run is written to the audit trail with its counts."""
    moment = now()
    dias = corpo_dias if corpo_dias is not None else settings.corpo_dias
    if dias < 1:
        raise ValueError("a idade mínima dos corpos removidos é 1 dia")
    report = PruneReport(moment - timedelta(days=dias),
                         moment - timedelta(days=max(settings.auditoria_dias, AUDITORIA_DIAS_MIN)), dry_run)
    _mensagens(sessions, report, settings.lote, moment)
    _entregas(sessions, report, settings.lote)
    _auditoria(sessions, report, settings.lote)
    if not dry_run:
        with sessions.begin() as session:
            auditar(session, quem, "prune", json.dumps(report.as_dict(), ensure_ascii=False), now=moment)
    return report


def _mensagens(sessions: sessionmaker[Session], report: PruneReport, batch: int, moment: datetime) -> None:
    old = (_M.c.criada_em < report.corpo_antes_de, _M.c.corpo_removido_em.is_(None),
           func.length(_M.c.corpo) > 0)
    with sessions() as session:
        kept = _still_read(session, report.corpo_antes_de)
        report.mantidas = len(kept) + session.execute(
            select(func.count()).select_from(_M).where(*old, _PENDING)).scalar_one()
    last = 0
    while True:
        with sessions.begin() as session:
            rows = session.execute(select(_M.c.id, func.length(_M.c.corpo)).where(
                _M.c.id > last, *old, ~_PENDING).order_by(_M.c.id).limit(batch)).all()
            if not rows:
                return
            last = rows[-1][0]
            chosen = [(cast(int, id_), cast(int | None, size)) for id_, size in rows if id_ not in kept]
            if chosen and not report.dry_run:
                # The condition again: a delivery scheduled or retried meanwhile keeps its request.
                ids = [i for i, _s in chosen]
                done = _rowcount(session.execute(update(_M).where(_M.c.id.in_(ids), ~_PENDING)
                                                 .values(corpo=b"", corpo_removido_em=moment)))
                if done != len(chosen):
                    chosen = [(i, s) for i, s in chosen if i in _emptied(session, [i for i, _s in chosen])]
            report.mensagens += len(chosen)
            report.bytes += sum(size or 0 for _i, size in chosen)


def _still_read(session: Session, before: datetime) -> set[int]:
    """Old messages the gateway reads again: the last situação answer of each delivery, every
    demonstrativo, and the file of a part still waiting for its portal (downloaded by a person).
    One pass over each table, joined to the old, unpruned messages."""
    found: set[int] = set()
    for column in (_E.c.situacao_id, _D.c.mensagem_id):
        query = (select(column).select_from(column.table.join(_M, _M.c.id == column))
                 .where(_M.c.criada_em < before, _M.c.corpo_removido_em.is_(None)))
        ids: Sequence[int | None] = session.execute(query).scalars().all()
        found.update(i for i in ids if i is not None)
    arquivos = (select(Arquivo.mensagem_id).join(_M, _M.c.id == Arquivo.mensagem_id)
                .join(_E, _E.c.id == Arquivo.entrega_id)
                .where(_M.c.criada_em < before, _M.c.corpo_removido_em.is_(None),
                       or_(_E.c.status.is_(None), _E.c.status.not_in(FINAL_STATUS))))
    found.update(session.execute(arquivos).scalars())
    return found


def _emptied(session: Session, ids: list[int]) -> set[int]:
    query = select(_M.c.id).where(_M.c.id.in_(ids), _M.c.corpo_removido_em.is_not(None))
    return set(session.execute(query).scalars())


def _entregas(sessions: sessionmaker[Session], report: PruneReport, batch: int) -> None:
    """Prepared bytes of finished deliveries (the sent mensagem keeps them until it ages out too)."""
    finished = (_E.c.estado.in_(FINISHED), _E.c.proxima_consulta_em.is_(None), func.length(_E.c.corpo) > 0,
                func.coalesce(_E.c.entregue_em, _E.c.criada_em) < report.corpo_antes_de, ~_AWAITING_PORTAL)
    last = 0
    while True:
        with sessions.begin() as session:
            ids: Sequence[int] = session.execute(select(_E.c.id).where(_E.c.id > last, *finished)
                                                 .order_by(_E.c.id).limit(batch)).scalars().all()
            if not ids:
                return
            last = ids[-1]
            if not report.dry_run:
                session.execute(update(_E).where(_E.c.id.in_(ids), *finished)
                                .values(corpo=b"", senha_cifrada=None))
            report.entregas += len(ids)


def _auditoria(sessions: sessionmaker[Session], report: PruneReport, batch: int) -> None:
    old = _A.c.em < report.auditoria_antes_de
    if report.dry_run:
        with sessions() as session:
            report.auditoria = session.execute(select(func.count()).select_from(_A).where(old)).scalar_one()
        return
    while True:
        with sessions.begin() as session:
            chunk = select(_A.c.id).where(old).order_by(_A.c.id).limit(batch).scalar_subquery()
            deleted = _rowcount(session.execute(delete(_A).where(_A.c.id.in_(chunk))))
        report.auditoria += deleted
        if deleted < batch:
            return


def _rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE: Session.execute declares a Result, and runs DML into a
    CursorResult (which has the rowcount)."""
    return cast(CursorResult[Any], result).rowcount
