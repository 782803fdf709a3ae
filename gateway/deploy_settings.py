"""How the gateway runs under gunicorn: the one place ``tiss-gateway serve`` and ``gunicorn.conf.py``
take their settings from.

- Workers: ``2 × cores + 1`` processes, at most :data:`MAX_WORKERS`; ``TISS_GATEWAY_WORKERS``
  overrides. Each runs :data:`WORKER_CLASS`, gunicorn's threaded (gthread) worker with bounded
  read time (gateway.gunicorn_worker): ``TISS_GATEWAY_THREADS`` requests at once per process
  (default :data:`DEFAULT_THREADS`), so a relayed call waiting for an operator holds one thread,
  not the process; at most :data:`WORKER_CONNECTIONS` connections per process, idle ones costing
  only a file descriptor.
- Read time: a request's head must arrive within ``header_s`` and its body within ``body_s`` +
  its length at ``body_rate``, at most ``body_max_s`` (:class:`ReadLimits`), else 408 and the
  connection is closed. A public deployment still puts a reverse proxy in front (docker/nginx.conf):
  it buffers whole requests, so the gateway's threads only ever read from it at local speed.
- Timeouts: a request may last as long as the slowest configured operator takes to answer a
  synchronous service (its WSDL read once per process, then the call), so gunicorn's worker
  ``timeout`` is derived from the largest ``timeout_s`` of the config, and ``graceful_timeout``
  equals it: a restart lets every relayed call finish.
- Recycling: ``max_requests`` with jitter, so workers are replaced one at a time.
- TLS: gunicorn's own certificates (``certfile``/``keyfile``); with ``ca_certs`` client
  certificates are asked for and verified (optional at the TLS level: the gateway enforces them
  per provider, ``certificado_cliente``), or required of every client (``require_client_cert``).
"""

from __future__ import annotations

import math
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import Config

BIND_ENV = "TISS_GATEWAY_BIND"
WORKERS_ENV = "TISS_GATEWAY_WORKERS"
THREADS_ENV = "TISS_GATEWAY_THREADS"
HEADER_TIMEOUT_ENV = "TISS_GATEWAY_HEADER_TIMEOUT"
BODY_TIMEOUT_ENV = "TISS_GATEWAY_BODY_TIMEOUT"
BODY_MIN_RATE_ENV = "TISS_GATEWAY_BODY_MIN_RATE"
BODY_MAX_TIMEOUT_ENV = "TISS_GATEWAY_BODY_MAX_TIMEOUT"
MAX_REQUESTS_ENV = "TISS_GATEWAY_MAX_REQUESTS"
CERTFILE_ENV = "TISS_GATEWAY_CERTFILE"
KEYFILE_ENV = "TISS_GATEWAY_KEYFILE"
CA_CERTS_ENV = "TISS_GATEWAY_CA_CERTS"
REQUIRE_CLIENT_CERT_ENV = "TISS_GATEWAY_REQUIRE_CLIENT_CERT"
FORWARDED_ALLOW_IPS_ENV = "FORWARDED_ALLOW_IPS"  # gunicorn's own variable
# Set by gunicorn.conf.py's arbiter hooks once the database is migrated and seeded: the workers
# (forked from it) need not do it again.
PREPARED_ENV = "TISS_GATEWAY_PREPARED"

DEFAULT_BIND = "127.0.0.1:8080"
MAX_WORKERS = 8  # each worker process holds every compiled schema set (~100 MB)
WORKER_CLASS = "gateway.gunicorn_worker.DeadlineWorker"
# Threads per worker process. Requests are mostly CPU under one GIL; the threads are there for
# the waits (an operator answering a relayed call, the database, a client's body): 8 keep a
# process serving while several of them wait. Each thread may hold two database connections
# (gateway.storage.db.expect_threads): workers x threads x 2 must fit PostgreSQL's max_connections.
DEFAULT_THREADS = 8
WORKER_CONNECTIONS = 1000  # per process: beyond it a worker stops accepting until some close
WSDL_READ_S = 30.0  # an operator's WSDL is read with max(timeout_s, 30 s) (gateway.delivery.client)
MARGIN_S = 30  # storage, re-stamping and the answer around the operator's call
MIN_TIMEOUT_S = 60  # a 15 MiB lote is read, validated and stored well within this
KEEPALIVE_S = 5  # an idle kept-alive connection waits this long in the poller (no thread)
MAX_REQUESTS = 5000  # a worker is replaced after this many requests (0: never) ...
MAX_REQUESTS_JITTER = 500  # ... give or take this many, so that workers do not restart together
SHM = Path("/dev/shm")


def default_workers(cores: int | None = None) -> int:
    cores = cores or os.cpu_count() or 1
    return max(1, min(2 * cores + 1, MAX_WORKERS))


def workers(env: Mapping[str, str] = os.environ) -> int:
    """``TISS_GATEWAY_WORKERS`` if set, else :func:`default_workers`."""
    return _positive(env, WORKERS_ENV) or default_workers()


def threads(env: Mapping[str, str] = os.environ) -> int:
    """``TISS_GATEWAY_THREADS`` if set, else :data:`DEFAULT_THREADS`."""
    return _positive(env, THREADS_ENV) or DEFAULT_THREADS


@dataclass(frozen=True)
class ReadLimits:
    """How long a client may take to send a request (gateway.gunicorn_worker enforces it).

    The head (request line and headers) within ``header_s`` of the connection (or, kept alive, of
    its next request's first byte); the body within ``body_s`` plus its length at ``body_rate``
    bytes/s, never more than ``body_max_s`` (a chunked body, of unknown length, gets
    ``body_max_s``). Defaults: 10 s; 8 s + 64 KiB/s, at most 120 s (a 470 KB lote: 15 s; a 15 MiB
    one needs 128 KiB/s).
    """

    header_s: float = 10.0
    body_s: float = 8.0
    body_rate: int = 64 * 1024
    body_max_s: float = 120.0

    def body_deadline_s(self, length: int | None) -> float:
        if length is None:
            return self.body_max_s
        return min(self.body_s + length / self.body_rate, self.body_max_s)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ReadLimits:
        """``TISS_GATEWAY_HEADER_TIMEOUT``, ``TISS_GATEWAY_BODY_TIMEOUT`` and
        ``TISS_GATEWAY_BODY_MAX_TIMEOUT`` (seconds), ``TISS_GATEWAY_BODY_MIN_RATE`` (KiB/s)."""
        default = cls()
        rate = _seconds(env, BODY_MIN_RATE_ENV)
        limits = cls(_seconds(env, HEADER_TIMEOUT_ENV) or default.header_s,
                     _seconds(env, BODY_TIMEOUT_ENV) or default.body_s,
                     round(rate * 1024) if rate else default.body_rate,
                     _seconds(env, BODY_MAX_TIMEOUT_ENV) or default.body_max_s)
        if limits.body_max_s < limits.body_s:
            raise ValueError(f"{BODY_MAX_TIMEOUT_ENV} ({limits.body_max_s}) < {BODY_TIMEOUT_ENV} "
                             f"({limits.body_s})")
        return limits


def request_timeout(config: Config) -> int:
    """Seconds a worker may spend on one request (gunicorn ``timeout``): the slowest operator's
    WSDL read and two of its calls (a cancelamento of a split lote goes part by part), plus a
    margin; never below :data:`MIN_TIMEOUT_S`."""
    slowest = max((max(o.timeout_s, WSDL_READ_S) + 2 * o.timeout_s for o in config.operadoras.values()),
                  default=0.0)
    return max(MIN_TIMEOUT_S, math.ceil(slowest) + MARGIN_S)


@dataclass(frozen=True)
class Tls:
    """gunicorn's own TLS: the server's certificate and, with ``ca_certs``, client certificates."""

    certfile: str | None = None
    keyfile: str | None = None
    ca_certs: str | None = None  # ask for client certificates and verify them against these ACs
    require_client_cert: bool = False  # refuse the TLS handshake of a client without one

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Tls:
        flag = env.get(REQUIRE_CLIENT_CERT_ENV, "").strip().lower()
        return cls(env.get(CERTFILE_ENV) or None, env.get(KEYFILE_ENV) or None, env.get(CA_CERTS_ENV) or None,
                   flag in ("1", "true", "yes", "on"))

    def options(self) -> dict[str, Any]:
        if not self.certfile:
            if self.keyfile or self.ca_certs or self.require_client_cert:
                raise ValueError("TLS: keyfile, ca-certs e require-client-cert precisam de certfile")
            return {}
        if self.require_client_cert and not self.ca_certs:
            raise ValueError("TLS: require-client-cert precisa de ca-certs (as ACs dos clientes)")
        for path in (self.certfile, self.keyfile, self.ca_certs):
            if path and not Path(path).is_file():
                raise ValueError(f"TLS: arquivo não encontrado: {path}")
        if self.require_client_cert:
            cert_reqs = ssl.CERT_REQUIRED
        else:
            cert_reqs = ssl.CERT_OPTIONAL if self.ca_certs else ssl.CERT_NONE
        options: dict[str, Any] = {"certfile": self.certfile, "cert_reqs": int(cert_reqs)}
        if self.keyfile:
            options["keyfile"] = self.keyfile
        if self.ca_certs:
            options["ca_certs"] = self.ca_certs
        return options


def forwarded_allow_ips(config: Config, env: Mapping[str, str] = os.environ) -> str:
    """Who may set X-Forwarded-Proto: ``FORWARDED_ALLOW_IPS``, else the config's trusted proxies,
    else gunicorn's default (this host)."""
    return env.get(FORWARDED_ALLOW_IPS_ENV) or ",".join(config.gateway.trusted_proxies) or "127.0.0.1,::1"


def gunicorn_options(config: Config, *, bind: str, workers: int, tls: Tls | None = None,
                     env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The gunicorn settings for this config (names as in gunicorn's settings). The worker class
    reads its :class:`ReadLimits` from the same environment: checked here, before any fork."""
    parse_bind(bind)
    timeout = request_timeout(config)
    max_requests = _positive(env, MAX_REQUESTS_ENV, zero=True)
    ReadLimits.from_env(env)
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": WORKER_CLASS,
        "threads": threads(env),
        "worker_connections": WORKER_CONNECTIONS,
        # gthread's heartbeat comes from each worker's main loop, which never waits for a request:
        # this only ends a worker that is stuck as a whole (and bounds a graceful restart).
        "timeout": timeout,
        "graceful_timeout": timeout,
        "keepalive": KEEPALIVE_S,
        "max_requests": MAX_REQUESTS if max_requests is None else max_requests,
        "max_requests_jitter": MAX_REQUESTS_JITTER if max_requests is None else max_requests // 10,
        # The heartbeat file is touched constantly: in memory, not on a (container) disk.
        "worker_tmp_dir": str(SHM) if SHM.is_dir() else None,
        "forwarded_allow_ips": forwarded_allow_ips(config, env),
        "accesslog": "-",
        # gunicorn's control socket defaults to one path per user, shared by every instance.
        "control_socket_disable": True,
        **(tls or Tls()).options(),
    }


def from_environment(config: Config, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """What ``gunicorn.conf.py`` sets: :func:`gunicorn_options` with bind, workers, threads and TLS
    from ``TISS_GATEWAY_BIND``, ``TISS_GATEWAY_WORKERS``, ``TISS_GATEWAY_THREADS`` and
    ``TISS_GATEWAY_CERTFILE``..."""
    return gunicorn_options(config, bind=env.get(BIND_ENV) or DEFAULT_BIND, workers=workers(env),
                            tls=Tls.from_env(env), env=env)


def parse_bind(bind: str) -> tuple[str, int] | None:
    """``(host, port)`` of a gunicorn bind ``HOST:PORT`` or ``[IPv6]:PORT`` (None for ``unix:PATH``
    and ``fd://N``), else a ValueError saying so: gunicorn would take ``nonsense`` as host with port
    8000 and retry it for 5 s, and die with a traceback on port 99999."""
    text = bind.strip()
    if text.startswith(("unix:", "fd://")):
        return None
    text = text.removeprefix("tcp://")
    if text.startswith("["):
        host, _sep, port = text[1:].partition("]:")
    else:
        host, _sep, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535 or (":" in host and not text.startswith("[")):
        raise ValueError(f"bind inválido: {bind!r} (use HOST:PORTA, [IPv6]:PORTA ou unix:CAMINHO; "
                         "porta de 0 a 65535)")
    return host, int(port)


def check_bind_host(bind: str) -> None:
    """A ValueError unless the bind's host names an address (checked before starting: gunicorn
    retries an unknown name for 5 s); not in :func:`gunicorn_options`, which must not do DNS."""
    address = parse_bind(bind)
    if address is None or not address[0]:
        return
    try:
        socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"bind inválido: {bind!r}: host {address[0]!r} desconhecido "
                         f"({getattr(exc, 'strerror', None) or exc})") from None


def _positive(env: Mapping[str, str], name: str, *, zero: bool = False) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or (int(text) == 0 and not zero):
        raise ValueError(f"{name} deve ser um número inteiro {'>= 0' if zero else '> 0'}: {text!r}")
    return int(text)


def _seconds(env: Mapping[str, str], name: str) -> float | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} deve ser um número > 0: {text!r}")
    return value
