"""The gateway's Prometheus metrics, in one place.

Counted where they happen (cheap: a labelled counter is a dict lookup and a float add):

* ``tiss_gateway_requests_total{service, version, outcome}``: SOAP calls; outcome ``accepted``
  (answered with the service's normal answer), ``replayed`` (same transaction again, stored
  answer), ``refused`` (the answer's own mensagemErro: lote já informado, an operator's crítica),
  ``fault`` (tissFaultWS the client caused: schema, hash, login...), ``error`` (the gateway's or
  the operator's failure: ErroInesperadoServidor).
* ``tiss_gateway_validation_failures_total{service, code}``: refused and faulted calls by Table 38
  code (or the tissFault name when there is no code).
* ``tiss_gateway_request_duration_seconds{service}``: SOAP call latency, 1 ms .. 10 s buckets.
* ``tiss_gateway_deliveries_total{operadora, outcome}`` (worker): ``entregue``, ``recusada``,
  ``falha`` (retried later), ``morta`` (dead-lettered), ``adiada`` (circuit open);
  ``tiss_gateway_delivery_duration_seconds{operadora}``: the operator's answer time.
* ``tiss_gateway_guias_total{operadora, situacao}`` (worker): guides of delivered lotes as the
  operator's answer left them, counted when the answer is recorded (gateway.delivery.outcome):
  ``aceita`` (in its receipt), ``recusada`` (the part refused, or left out of the receipt).
* ``tiss_gateway_status_polls_total{operadora, outcome}`` and
  ``tiss_gateway_status_poll_lag_seconds{operadora}`` (worker): status polls and how late each ran
  after its ``proxima_consulta_em``.
* ``tiss_gateway_circuit_open{operadora}`` (worker): 1 while a worker's circuit for the operator is
  open (the largest over live worker processes).
* ``tiss_gateway_relays_total{operadora, outcome}``: real-time calls relayed to an operator
  (gateway.delivery.relay): ``respondida``, ``recusada`` (its own refusal, relayed), ``falha``
  (down, timeout, invalid answer: ErroInesperadoServidor), ``lotado`` (its bulkhead was full) and
  ``gateway_lotado`` (the process's relay share was full), both answered at once without asking
  it; ``tiss_gateway_relays_in_flight{operadora}``: relays waiting for it now (summed over live
  processes).

Read from the database at scrape time (:class:`QueueCollector`, two indexed queries):
``tiss_gateway_delivery_queue{operadora, estado}`` (pendente, enviando, morta),
``tiss_gateway_delivery_queue_oldest_seconds{operadora}`` (age of the oldest undelivered),
``tiss_gateway_status_poll_overdue_seconds{operadora}`` (the most overdue status poll: grows when
no worker polls) and ``tiss_gateway_database_up``.

Multiprocess mode: gunicorn runs several worker processes; each writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them (:func:`exposition`). ``serve`` prepares
that directory before forking (:func:`prepare_multiprocess_dir`) and marks dead workers
(``gateway.observability.gunicorn_hooks.child_exit``). Every metric here has labels, so its values
are created after the directory is set, whatever imported this module first.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.storage.models import ENTREGA_TABLE

log = logging.getLogger("tiss_gateway.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# WSGI environ key where the pipeline leaves (outcome, Table 38 code or tissFault, Padrao version).
OUTCOME_KEY = "tiss.outcome"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0)
TISS_FAULTS = frozenset({"SchemaInvalido", "VersaoInvalida", "HashInvalido", "LoginInvalido",
                         "RemetenteInvalido", "DestinatarioInvalido", "ErroInesperadoServidor"})
_CODE = re.compile(r"[0-9]{4}")
_VERSION = re.compile(r"[0-9]\.[0-9]{2}\.[0-9]{2}")
_REGISTRO = re.compile(r"[0-9]{6}")

REQUESTS = Counter("tiss_gateway_requests", "Chamadas SOAP por serviço, versão e resultado",
                   ["service", "version", "outcome"])
VALIDATION_FAILURES = Counter("tiss_gateway_validation_failures",
                              "Mensagens recusadas por código da Tabela 38 (ou nome do tissFault)",
                              ["service", "code"])
REQUEST_DURATION = Histogram("tiss_gateway_request_duration_seconds", "Duração das chamadas SOAP",
                             ["service"], buckets=LATENCY_BUCKETS)
DELIVERIES = Counter("tiss_gateway_deliveries", "Tentativas de entrega às operadoras por resultado",
                     ["operadora", "outcome"])
GUIAS = Counter("tiss_gateway_guias", "Guias dos lotes entregues, aceitas ou recusadas pela operadora",
                ["operadora", "situacao"])
DELIVERY_DURATION = Histogram("tiss_gateway_delivery_duration_seconds",
                              "Tempo de resposta da operadora a uma entrega", ["operadora"],
                              buckets=LATENCY_BUCKETS)
STATUS_POLLS = Counter("tiss_gateway_status_polls", "Consultas de situação de protocolo às operadoras",
                       ["operadora", "outcome"])
POLL_LAG = Histogram("tiss_gateway_status_poll_lag_seconds",
                     "Atraso de cada consulta de situação em relação a proxima_consulta_em",
                     ["operadora"], buckets=LAG_BUCKETS)
WORKER_CYCLE_FAILURES = Counter("tiss_gateway_worker_cycle_failures",
                                "Ciclos do worker que falharam por inteiro: enquanto sobem, nada é "
                                "entregue nem consultado", ["causa"])  # banco, outro
CIRCUIT_OPEN = Gauge("tiss_gateway_circuit_open", "1 enquanto o circuito de um worker para a operadora "
                     "está aberto", ["operadora"], multiprocess_mode="livemax")
RELAYS = Counter("tiss_gateway_relays", "Chamadas em tempo real repassadas às operadoras por resultado",
                 ["operadora", "outcome"])
RELAYS_IN_FLIGHT = Gauge("tiss_gateway_relays_in_flight", "Chamadas em tempo real esperando a operadora",
                         ["operadora"], multiprocess_mode="livesum")


# -- recording ----------------------------------------------------------------------------------

def code_label(code: str | None) -> str:
    """A bounded label value: a Table 38 code, a tissFault name, or ``outro``."""
    if code and (_CODE.fullmatch(code) or code in TISS_FAULTS):
        return code
    return "outro"


def observe_request(service: str, version: str | None, outcome: str, code: str | None,
                    seconds: float) -> None:
    version = version if version and _VERSION.fullmatch(version) else "unknown"
    REQUESTS.labels(service, version, outcome).inc()
    REQUEST_DURATION.labels(service).observe(seconds)
    if outcome in ("refused", "fault"):
        VALIDATION_FAILURES.labels(service, code_label(code)).inc()


def delivery(operadora: str, outcome: str, seconds: float | None = None) -> None:
    DELIVERIES.labels(operadora, outcome).inc()
    if seconds is not None:
        DELIVERY_DURATION.labels(operadora).observe(seconds)


def guias(operadora: str, situacao: str, count: int) -> None:
    """``count`` guides the operator's answer left ``situacao`` (aceita, recusada)."""
    if count:
        GUIAS.labels(operadora, situacao).inc(count)


def status_poll(operadora: str, outcome: str) -> None:
    STATUS_POLLS.labels(operadora, outcome).inc()


def poll_lag(operadora: str, seconds: float) -> None:
    POLL_LAG.labels(operadora).observe(max(0.0, seconds))


def worker_cycle_failed(database: bool) -> None:
    """``database``: the database failed (an error from it, or unreachable); else a defect."""
    WORKER_CYCLE_FAILURES.labels("banco" if database else "outro").inc()


def relay(operadora: str, outcome: str) -> None:
    RELAYS.labels(operadora, outcome).inc()


def relay_in_flight(operadora: str, change: int) -> None:
    """``change`` (+1 / -1): a relay to the operator started / ended."""
    RELAYS_IN_FLIGHT.labels(operadora).inc(change)


def circuit(operadora: str, is_open: bool) -> None:
    if _REGISTRO.fullmatch(operadora):
        CIRCUIT_OPEN.labels(operadora).set(1 if is_open else 0)


# -- multiprocess directory ------------------------------------------------------------------------

_prepared: Path | None = None
_owned = 0  # pid of the process that made the temporary directory (only it removes it)


def prepare_multiprocess_dir(configured: Path | None = None) -> Path:
    """Make (or empty) the directory the gunicorn workers write their values to and point
    ``PROMETHEUS_MULTIPROC_DIR`` at it; call before forking. ``configured`` (``[metricas]
    diretorio``), else an inherited ``PROMETHEUS_MULTIPROC_DIR``, else a new temporary directory.
    Only ``*.db`` files are removed from a given directory. Idempotent within a process."""
    global _prepared, _owned
    if _prepared is not None:
        return _prepared
    inherited = os.environ.get(MULTIPROC_ENV)
    if configured is not None or inherited:
        path = Path(configured or inherited or "")
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="tiss-gateway-metrics-"))
        _owned = os.getpid()
    os.environ[MULTIPROC_ENV] = str(path)
    # prometheus_client picks the value class when first imported; this module may have been
    # imported before the variable was set (children of labelled metrics are made later).
    values.ValueClass = values.get_value_class()
    _prepared = path
    return path


def remove_multiprocess_dir() -> None:
    """Remove the temporary directory :func:`prepare_multiprocess_dir` made (at ``serve`` exit).
    A no-op in gunicorn's workers: forked from ``serve``, they unwind its ``finally`` when they
    exit, and the directory must outlive them."""
    global _prepared, _owned
    if _prepared is not None and _owned == os.getpid():
        shutil.rmtree(_prepared, ignore_errors=True)
        _prepared, _owned = None, 0


def multiprocess_dir() -> Path | None:
    found = os.environ.get(MULTIPROC_ENV)
    return Path(found) if found else None


def mark_process_dead(pid: int) -> None:
    """A process that wrote to the multiprocess directory is gone: drop its live gauges."""
    path = multiprocess_dir()
    if path is not None and path.is_dir():
        multiprocess.mark_process_dead(pid, str(path))


def base_registry() -> CollectorRegistry:
    """What this process exposes: the sum over the multiprocess directory, or its own values."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(path))
    return registry


def exposition(*registries: CollectorRegistry) -> tuple[bytes, str]:
    """The text format body and its content type."""
    return b"".join(generate_latest(r) for r in registries), CONTENT_TYPE_LATEST


# -- read at scrape time --------------------------------------------------------------------------

_E = ENTREGA_TABLE
QUEUE_ESTADOS = ("pendente", "enviando", "morta")
_QUEUE = (select(_E.c.registro_ans, _E.c.estado, func.count(), func.min(_E.c.criada_em))
          .where(_E.c.estado.in_(QUEUE_ESTADOS)).group_by(_E.c.registro_ans, _E.c.estado))
_OVERDUE = (select(_E.c.registro_ans, func.min(_E.c.proxima_consulta_em))
            .where(_E.c.proxima_consulta_em <= bindparam("now"), _E.c.estado == "entregue")
            .group_by(_E.c.registro_ans))


class QueueCollector:
    """Delivery queue depth and age, and status-poll lag, per operator, from the ``entrega`` table.

    Two grouped queries on indexed columns per scrape ((estado, proxima_em) and
    proxima_consulta_em). Every configured operator gets a value, 0 when nothing waits, so a queue
    that drains shows 0 rather than vanishing.
    """

    def __init__(self, readers: Callable[[], Session], operadoras: Iterable[str],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.readers = readers
        self.operadoras = tuple(operadoras)
        self.clock = clock

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily("tiss_gateway_delivery_queue", "Entregas por operadora e estado "
                                  "(pendente, enviando, morta)", labels=["operadora", "estado"])
        oldest = GaugeMetricFamily("tiss_gateway_delivery_queue_oldest_seconds", "Idade da entrega mais "
                                   "antiga ainda não entregue (pendente ou enviando)", labels=["operadora"])
        overdue = GaugeMetricFamily("tiss_gateway_status_poll_overdue_seconds", "Atraso da consulta de "
                                    "situação mais atrasada", labels=["operadora"])
        up = GaugeMetricFamily("tiss_gateway_database_up", "1 se a última leitura do banco funcionou")
        now = self.clock()
        try:
            with self.readers() as session:
                connection = session.connection()
                queue = connection.execute(_QUEUE).all()
                late = connection.execute(_OVERDUE, {"now": now}).all()
        except SQLAlchemyError as exc:
            log.warning("métricas: banco indisponível: %s", short_error(exc))
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        counts: dict[tuple[str, str], int] = {}
        first: dict[str, datetime] = {}
        for row in queue:  # (registro_ans, estado, count, oldest criada_em)
            registro, estado, criada = str(row[0]), str(row[1]), cast(datetime | None, row[3])
            counts[(registro, estado)] = int(row[2])
            if estado != "morta" and criada is not None:
                first[registro] = min(first.get(registro, criada), criada)
        waiting = {str(row[0]): cast(datetime, row[1]) for row in late if row[1] is not None}
        for registro in sorted(set(self.operadoras) | {r for r, _e in counts} | set(waiting)):
            for estado in QUEUE_ESTADOS:
                depth.add_metric([registro, estado], counts.get((registro, estado), 0))
            oldest.add_metric([registro], _age(now, first.get(registro)))
            overdue.add_metric([registro], _age(now, waiting.get(registro)))
        return [depth, oldest, overdue, up]


def short_error(exc: Exception) -> str:
    """The first line of a database error (the driver's message when there is one)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _age(now: datetime, since: datetime | None) -> float:
    if since is None:
        return 0.0
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return max(0.0, (now - since).total_seconds())
