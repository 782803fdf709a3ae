"""gunicorn glue: its logs as JSON lines (the access log with the request id and the SOAP outcome),
and the hook that tells the metrics a worker died.

``serve`` sets both through :func:`setup`; a gunicorn.conf.py does the same with
``globals().update(setup(load_config()))`` (at import, in the arbiter, before any fork).
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn import glogging

from gateway.config import Config
from gateway.observability import metrics
from gateway.observability.logs import REQUEST_ID_KEY, JsonFormatter, configure_logging, mask
from gateway.soap.service import SERVICE_KEY, VERSION_KEY

log = logging.getLogger("tiss_gateway.server")


class JsonLogger(glogging.Logger):
    """gunicorn's error and access logs through :class:`~gateway.observability.logs.JsonFormatter`."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter()
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", "-")
        fields = {
            "request_id": environ.get(REQUEST_ID_KEY),
            "remote": environ.get("REMOTE_ADDR"),
            "method": method,
            "path": path,
            "query": mask(environ.get("QUERY_STRING") or "") or None,
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        if environ.get(SERVICE_KEY):
            outcome, code, version = environ.get(metrics.OUTCOME_KEY) or ("error", None, None)
            fields.update(service=environ[SERVICE_KEY], version=version or environ.get(VERSION_KEY),
                          outcome=outcome, code=code)
        try:
            self.access_log.info("%s %s %s", method, path, status, extra=fields)
        except Exception:
            self.exception("falha no log de acesso")


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn ``child_exit``: drop the dead worker's live gauges from the metrics directory."""
    metrics.mark_process_dead(worker.pid)


def setup(config: Config) -> dict[str, Any]:
    """Before gunicorn forks: the root logger ([logs]), the metrics directory ([metricas]); returns
    the gunicorn settings that go with them (``logger_class``, ``child_exit``, ``loglevel``)."""
    json_lines = config.logs.formato == "json"
    configure_logging(json_lines, config.logs.nivel)
    path = metrics.prepare_multiprocess_dir(config.metricas.diretorio)
    log.info("métricas dos workers em %s (/metrics soma todos)", path)
    options: dict[str, Any] = {"child_exit": child_exit, "loglevel": config.logs.nivel.lower()}
    if json_lines:
        options["logger_class"] = JsonLogger
    return options
