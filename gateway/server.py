"""Assemble the gateway's WSGI application and run it under gunicorn."""

import gc
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gunicorn.app.base import BaseApplication
from sqlalchemy import Engine

from adapters import load_adapter
from adapters.base import Adapter, Destino
from gateway import deploy_settings, prestadores
from gateway.client_address import ClientAddress
from gateway.config import DEMO_SIMULADOR, Config, demo_config, load_config
from gateway.inbound.pipeline import Pipeline
from gateway.message.schema_registry import SchemaRegistry
from gateway.observability import gunicorn_hooks
from gateway.observability.wsgi import ObservedApp, observe
from gateway.soap.app import TissWsgi
from gateway.storage import checkpoint, db, migrate

if TYPE_CHECKING:
    from gateway.console.app import ConsoleApp

log = logging.getLogger("tiss_gateway")


def build_config(config_file: Path | None, database_url: str | None, demo: bool, *,
                 simulator: str | None = DEMO_SIMULADOR) -> Config:
    config = demo_config(simulator) if demo else load_config(config_file)
    if database_url:
        config = replace(config, gateway=replace(config.gateway, database_url=database_url))
    return config


def prepare(config: Config) -> str:
    """Migrate the database and seed the providers of the config; returns the database URL."""
    url = db.database_url(config)
    migrate.upgrade(url)
    engine = db.make_engine(url)
    try:
        with db.session_factory(engine).begin() as session:
            prestadores.seed_from_config(session, config)
    finally:
        engine.dispose()
    return url


def load_adapters(config: Config, registry: SchemaRegistry) -> dict[str, Adapter]:
    """The adapter of every configured operator (keyed by registro ANS)."""
    return {o.registro_ans: load_adapter(o.adapter, Destino.de_operadora(
        o, cnpj=o.cnpj, codigos_proprios=o.codigos_proprios), registry) for o in config.operadoras.values()}


def create_app(config: Config, url: str) -> ObservedApp:
    """The WSGI application; build it in each worker (engines must not cross a fork)."""
    registry = SchemaRegistry()
    for version in registry.versions():  # compile now: the first request must not pay for it
        for kind in ("mensagemTISS", "loteGuiasWS"):
            registry.schema(version, kind)
    engine = db.make_engine(url)
    checkpoint.start_for(url)  # SQLite: WAL checkpoints in a thread, not inside a request's COMMIT
    pipeline = Pipeline(config, registry, db.session_factory(engine), readers=db.reader_factory(engine),
                        adapters=load_adapters(config, registry))
    settings = config.gateway
    app = TissWsgi(pipeline, registry, max_bytes=settings.max_message_bytes,
                   fault_http_status=settings.fault_http_status,
                   public_base_url=settings.public_base_url,
                   console=_console(config, engine, registry))
    # The client behind trusted proxies (lockouts, refusal budget, audit, logs), then /readyz,
    # /metrics and request ids.
    return observe(ClientAddress(app, settings.trusted_proxies), config, pipeline.readers, registry)


def _console(config: Config, engine: Engine, registry: SchemaRegistry) -> "ConsoleApp | None":
    """The web console's app (/console), unless disabled; its templates compile on first use."""
    if not config.console.habilitado:
        return None
    from gateway.console.app import ConsoleApp

    return ConsoleApp(config, db.session_factory(engine), db.reader_factory(engine), registry)


class GatewayServer(BaseApplication):
    def __init__(self, config: Config, url: str, options: dict):
        self.config_ = config
        self.url = url
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> ObservedApp:
        return load_app(self.config_, self.url)


def load_app(config: Config, url: str) -> ObservedApp:
    """:func:`create_app` as a worker process loads it (here and in ``gateway.wsgi``)."""
    # Spyne logs a full traceback for every client fault; the pipeline logs refusals itself.
    logging.getLogger("spyne.application.client").setLevel(logging.CRITICAL)
    app = create_app(config, url)
    # Everything loaded so far (schemas, Spyne, SQLAlchemy, adapters) lives as long as the
    # worker: keep it out of the cyclic GC's full collections, which otherwise show up as
    # 50-70 ms pauses on requests.
    gc.collect()
    gc.freeze()
    return app


def serve(config: Config, *, bind: str, workers: int, url: str | None = None,
          tls: deploy_settings.Tls | None = None) -> None:
    """Run gunicorn with :func:`gateway.deploy_settings.gunicorn_options` (what gunicorn.conf.py
    sets too); ``url``: a database :func:`prepare` already migrated and seeded."""
    options = deploy_settings.gunicorn_options(config, bind=bind, workers=workers, tls=tls)
    # JSON logs, the metrics directory the workers share, dead workers' gauges dropped (the
    # caller removes a temporary metrics directory: gateway.observability.metrics).
    options.update(gunicorn_hooks.setup(config))
    url = url or prepare(config)
    GatewayServer(config, url, options).run()
