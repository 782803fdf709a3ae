"""gunicorn settings for the TISS gateway:

    gunicorn -c gunicorn.conf.py gateway.wsgi:application

Every value comes from gateway.deploy_settings, where ``tiss-gateway serve`` takes its own: the
two always agree. Tune them with the environment rather than by editing this file:

    TISS_GATEWAY_CONFIG          the gateway's TOML config (operators' timeouts set `timeout`)
    TISS_GATEWAY_DATABASE_URL    overrides the config's database_url
    TISS_GATEWAY_BIND            HOST:PORT (default 127.0.0.1:8080)
    TISS_GATEWAY_WORKERS         worker processes (default 2 x cores + 1, at most 8)
    TISS_GATEWAY_THREADS         request threads per worker process (default 8; gthread)
    TISS_GATEWAY_HEADER_TIMEOUT  seconds for a request's head to arrive (default 10), else 408
    TISS_GATEWAY_BODY_TIMEOUT, TISS_GATEWAY_BODY_MIN_RATE, TISS_GATEWAY_BODY_MAX_TIMEOUT
                                 the body: 8 s + its size at 64 KiB/s, at most 120 s, else 408
    TISS_GATEWAY_MAX_REQUESTS    requests before a worker is replaced (default 5000; 0 never)
    TISS_GATEWAY_CERTFILE, TISS_GATEWAY_KEYFILE     TLS by gunicorn itself
    TISS_GATEWAY_CA_CERTS        ACs of the client certificates (asked for, verified)
    TISS_GATEWAY_REQUIRE_CLIENT_CERT=1              refuse clients without one at the handshake
    FORWARDED_ALLOW_IPS          proxies allowed to set X-Forwarded-Proto (default: the config's
                                 trusted_proxies, else 127.0.0.1,::1)

Options given on gunicorn's command line (or in GUNICORN_CMD_ARGS) win over this file.
"""

import os

from gateway import deploy_settings
from gateway.config import load_config
from gateway.observability import gunicorn_hooks

_config = load_config()
# bind, workers, threads and the worker class (gthread reading against deadlines:
# gateway.gunicorn_worker), timeout (above the slowest operator's timeout_s), max_requests, TLS...
# named as gunicorn names them: see gateway.deploy_settings.gunicorn_options, which `serve` uses too.
globals().update(deploy_settings.from_environment(_config))
# JSON logs ([logs]), the metrics directory the workers share ([metricas]) and the child_exit
# hook that drops a dead worker's gauges: what `serve` sets too.
globals().update(gunicorn_hooks.setup(_config))


def on_starting(server) -> None:
    """Migrate the database and seed the config's providers once, before any worker starts."""
    _prepare()


def on_reload(server) -> None:
    """SIGHUP: new workers read the config again; seed its providers first."""
    _prepare()


def _prepare() -> None:
    from gateway import server as gateway_server

    gateway_server.prepare(load_config())
    os.environ[deploy_settings.PREPARED_ENV] = "1"  # inherited by the workers: gateway.wsgi skips it
