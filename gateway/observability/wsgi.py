"""The WSGI middleware around the gateway: request id, ``/readyz``, ``/metrics``, SOAP call metrics.

Every request gets a request id: the client's ``X-Request-Id`` when it is sane (at most 32 of
``[A-Za-z0-9_-]``), else a new one; it is answered in ``X-Request-Id``, put in the environ
(``tiss.request_id``: the pipeline stores it on the mensagem and entrega rows, the access log
prints it) and in the logging context for the duration of the call. A SOAP call (the router set
``tiss.service``) is counted and timed with the outcome the pipeline left in ``tiss.outcome``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session

from gateway.config import Config
from gateway.message.schema_registry import SchemaRegistry
from gateway.observability import metrics
from gateway.observability.logs import (
    REQUEST_ID_HEADER,
    REQUEST_ID_KEY,
    new_request_id,
    request_id_var,
    sane_request_id,
)
from gateway.observability.readiness import Readiness
from gateway.soap.service import SERVICE_KEY, VERSION_KEY

StartResponse = Callable[..., object]
WsgiApp = Callable[[dict, StartResponse], Iterable[bytes]]
log = logging.getLogger("tiss_gateway.wsgi")


class ObservedApp:
    def __init__(self, app: WsgiApp, readiness: Readiness, registries: tuple[CollectorRegistry, ...]):
        self.app = app
        self.readiness = readiness
        self.registries = registries

    def __getattr__(self, name: str):  # the wrapped app's attributes (pipeline, registry...)
        return getattr(self.app, name)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        request_id = sane_request_id(environ.get("HTTP_X_REQUEST_ID")) or new_request_id()
        environ[REQUEST_ID_KEY] = request_id

        def start(status: str, headers: list, exc_info=None):
            headers = [*headers, (REQUEST_ID_HEADER, request_id)]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        path = environ.get("PATH_INFO")
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            if path == "/readyz":
                return self._readyz(start)
            if path == "/metrics":
                return self._metrics(start)
            return self.app(environ, start)
        finally:
            request_id_var.reset(token)
            service = environ.get(SERVICE_KEY)
            if service is not None:
                outcome, code, version = environ.get(metrics.OUTCOME_KEY) or ("error", None, None)
                metrics.observe_request(service, version or environ.get(VERSION_KEY), outcome, code,
                                        time.perf_counter() - started)

    def _readyz(self, start: StartResponse) -> list[bytes]:
        verdict = self.readiness.verdict()
        body = json.dumps({"status": "ok" if verdict.ready else "indisponivel", "reason": verdict.reason,
                           "checks": verdict.checks}, ensure_ascii=False).encode("utf-8")
        status = "200 OK" if verdict.ready else "503 Service Unavailable"
        if not verdict.ready:
            log.warning("readyz: %s", verdict.reason)
        return _reply(start, status, body, "application/json")

    def _metrics(self, start: StartResponse) -> list[bytes]:
        try:
            body, content_type = metrics.exposition(*self.registries)
        except Exception:  # a scrape must not take a worker down; say so and let it retry
            log.exception("falha ao gerar /metrics")
            return _reply(start, "503 Service Unavailable", b"metricas indisponiveis", "text/plain")
        return _reply(start, "200 OK", body, content_type)


def _reply(start: StartResponse, status: str, body: bytes, content_type: str) -> list[bytes]:
    start(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                   ("Cache-Control", "no-store")])
    return [body]


def observe(app: WsgiApp, config: Config, readers: Callable[[], Session],
            registry: SchemaRegistry) -> ObservedApp:
    """``app`` with ``/readyz``, ``/metrics`` (the process's or the multiprocess sum, plus the
    delivery queue read from the database) and the request id; build it in each worker."""
    queue = CollectorRegistry()
    queue.register(metrics.QueueCollector(readers, config.operadoras))
    readiness = Readiness(readers, registry, min_free_bytes=config.gateway.min_free_disk_mb * 1024 * 1024)
    return ObservedApp(app, readiness, (metrics.base_registry(), queue))
