"""Leases the workers hold, and deliveries whose send has an unknown outcome.

A claim leases a delivery for ``[entregas] reserva_s`` (30 s). While a worker holds it (preparing,
posting, recording), its process's :class:`Heartbeat` renews the lease every third of that, so a
slow operator never lets another worker take a delivery over from a live one, and a dead worker's
deliveries are taken over ``reserva_s`` after its last renewal, not after a whole worst-case post.

A send whose outcome is unknown: the worker posted (or may have) and no answer was recorded: it
died, was stopped past ``parada_s`` mid-post, or its lease was taken over. Such a delivery carries
``incerto`` (why). TISS gives no way to ask an operator whether it has a lote without the
protocol number its answer would have given (``solicitacaoStatusProtocolo`` takes only that), so:

- an operator that deduplicates ``sequencialTransacao`` (the TISS rule: the default) gets the same
  bytes again and answers the repeat with its first answer;
- an operator listed in ``[entregas] sem_deduplicacao`` gets nothing more: the delivery is held as a
  dead letter (:func:`hold_back`) naming the lote and sequencial, until a person asks the operator
  and retries it (``entregas retry``) or not;
- an operator that refuses the resend because it already has the lote (3268 "lote já informado",
  1308 before 4.03.00) tells the gateway the first send arrived: not a refusal of the lote (that
  would free its number for the provider to send it again), a dead letter asking for the
  operator's protocol (:func:`already_there`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from gateway.config import EntregaSettings
from gateway.delivery import outbox
from gateway.delivery.reading import Reading
from gateway.storage.models import Entrega

log = logging.getLogger("tiss_gateway.delivery")
LOTE_JA_INFORMADO = ("3268", "1308")  # 1308 "guia já apresentada": the nearest before 4.03.00
Held = Callable[[], Iterable[tuple[str, frozenset[int]]]]  # (worker name, ids it holds now)


def hold_back(entrega: Entrega, settings: EntregaSettings) -> str | None:
    """Why ``entrega`` must not be sent again without a person, or None."""
    if not entrega.incerto or entrega.registro_ans not in settings.sem_deduplicacao:
        return None
    return (f"desfecho incerto, não reenviada: a operadora {entrega.registro_ans} não elimina "
            f"repetições; pergunte a ela se recebeu o lote {entrega.numero_lote or '-'} "
            f"(sequencialTransacao {entrega.sequencial}) e só reenvie (tiss-gateway entregas retry "
            f"{entrega.id}) se não recebeu. Causa: {entrega.incerto}")


def already_there(entrega: Entrega, reading: Reading) -> str | None:
    """The operator refused a resend of an uncertain delivery because it has the lote: why it is
    held for a person (the operator's protocol is in its first answer, which the gateway lacks)."""
    if not entrega.incerto or reading.kind != "recusada":
        return None
    codes = {c.code for c in reading.criticas}
    if not codes & set(LOTE_JA_INFORMADO):
        return None
    return (f"desfecho incerto: a operadora já tem o lote {entrega.numero_lote or '-'} e recusou a "
            f"repetição ({reading.motivo}); peça a ela o protocolo desse lote: não é uma recusa do "
            f"lote. Causa: {entrega.incerto}")


class Heartbeat:
    """Renews the leases of one process's workers, on a daemon thread, until ``stop``."""

    def __init__(self, sessions: sessionmaker[Session], held: Held, settings: EntregaSettings, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.sessions = sessions
        self.held = held
        self.lease = settings.reserva_s
        self.clock = clock
        self.thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._stop = threading.Event()

    def start(self) -> Heartbeat:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def beat(self) -> int:
        """Renew every lease held now; returns how many were renewed."""
        held = [(name, ids) for name, ids in self.held() if ids]
        if not held:
            return 0
        renewed, now = 0, self.clock()
        with self.sessions.begin() as session:
            for name, ids in held:
                renewed += outbox.renew(session, ids, name, lease=self.lease, now=now)
        return renewed

    def _run(self) -> None:
        period, failures = self.lease / 3, 0
        while not self._stop.wait(period if not failures else min(period, 1.0)):
            started = time.monotonic()
            try:
                self.beat()
            except Exception as exc:  # the database: the next beat tries again, sooner
                failures += 1
                log.warning("renovação das reservas falhou (%s seguida(s)): %s", failures, exc)
                continue
            if failures:
                log.info("renovação das reservas voltou a funcionar")
                failures = 0
            if time.monotonic() - started > period:
                log.warning("renovação das reservas levou %.1f s (reserva_s %.0f)",
                            time.monotonic() - started, self.lease)
