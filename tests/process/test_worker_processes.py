"""Several worker processes on one database (SQLite and PostgreSQL): they share the queue, each
claiming its own batches (the claim reads the rows and prepares them in one transaction), and
every lote reaches its operator once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from gateway.storage.models import Entrega
from tests.forwarding_stack import Stack, wait_until
from tests.gateway_process import WorkerProcess

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")


def _hold(stack: Stack, until: datetime) -> None:
    """Pending deliveries due at ``until``."""
    with stack.db.begin() as connection:
        connection.execute(update(Entrega).where(Entrega.estado == "pendente").values(proxima_em=until))


def test_two_worker_processes_share_the_queue_and_each_lote_reaches_its_operator_once(stack: Stack) -> None:
    keys = [("pasa", "capitalprev")[i % 2] for i in range(60)]
    sent = [stack.send_lote(key, 2) for key in keys]
    _hold(stack, datetime.now(UTC) + timedelta(days=1))  # until both are up: they race for every batch
    workers: list[WorkerProcess] = [stack.worker(threads=4), stack.worker(threads=4)]
    try:
        for worker in workers:
            wait_until(lambda w=worker: "iniciado" in w.log() or None, what="worker iniciado")
        time.sleep(1)  # the first idle claims: each worker now asks before it claims
        _hold(stack, datetime.now(UTC))
        for numero, protocolo in sent:
            wait_until(lambda p=protocolo: stack.delivered(p), timeout=120, what=f"lote {numero}")
        for (numero, _protocolo), key in zip(sent, keys, strict=True):
            assert stack.operator_lotes(key, numero) == {numero: 1}
        assert all(" entregue: protocolo da operadora" in w.log() for w in workers)  # both took part
    finally:
        for worker in workers:
            worker.close()
            stack.workers.remove(worker)
