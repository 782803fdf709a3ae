"""Running the gateway in production: readiness, Prometheus metrics, structured logs.

``logs``: JSON log lines, the request id, masking of secrets. ``metrics``: the metric definitions,
the multiprocess directory gunicorn needs and the scrape-time queue collector. ``readiness``: what
``/readyz`` checks. ``wsgi``: the middleware that serves ``/readyz`` and ``/metrics``, assigns the
request id and measures every SOAP call. ``gunicorn_hooks``: gunicorn's JSON access log and the
hook that marks dead workers. ``stack_dump``: every thread's stack on SIGUSR1 (worker, simulator).
"""
