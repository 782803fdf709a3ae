"""The gateway's pipeline and worker with simulated operators, all in one process: each call the
gateway makes to an operator goes to that operator's ``TissWsgi`` as a WSGI call (no sockets).

For unit tests of what crosses the gateway and an operator (relayed cancelamentos, the glosas a
recurso is checked against) on the gateway's database of the test (SQLite or PostgreSQL).
The simulated operators keep their own SQLite file; their clock is frozen and moved by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import DEMO_OPERADORAS
from gateway.delivery.client import Answer, soap_envelope
from gateway.delivery.worker import Worker
from gateway.inbound.pipeline import Pipeline
from gateway.message import reader
from gateway.message.schema_registry import SchemaRegistry
from gateway.server import build_config, load_adapters, prepare
from gateway.soap.app import TissWsgi
from gateway.soap.wsdl import version_path
from gateway.storage import db
from gateway.storage.models import Entrega, Protocolo
from simulator.clock import SimClock
from simulator.models import create_schema
from simulator.operadora import OperadoraSimulada
from simulator.profile import load_profile
from tests import wsgi_call
from tests.factory import Party, build_lote

T0 = datetime(2026, 1, 19, 13, 0, tzinfo=UTC)
OPERADORAS = {key: (registro, codigo) for registro, _nome, key, codigo in DEMO_OPERADORAS}
_PROTOCOLO = re.compile(rb"<ans:numeroProtocolo>(\w+)</ans:numeroProtocolo>")


def party(key: str) -> Party:
    registro, codigo = OPERADORAS[key]
    return Party(registro_ans=registro, codigo_na_operadora=codigo)


class Relogio:
    """The gateway's clock, moved by hand."""

    def __init__(self, agora: datetime):
        self.agora = agora

    def __call__(self) -> datetime:
        return self.agora


@dataclass
class Operadoras:
    """OperatorClients for the gateway: every call goes to the simulated operator in process
    (kept in ``calls``: registro ANS, service)."""

    apps: dict[str, TissWsgi]
    calls: list[tuple[str, str]] = field(default_factory=list)

    def client(self, registro_ans: str, versao: str) -> _Cliente:
        return _Cliente(self, registro_ans, versao)

    def chamadas(self, servico: str) -> list[str]:
        return [registro for registro, nome in self.calls if nome == servico]


@dataclass
class _Cliente:
    operadoras: Operadoras
    registro_ans: str
    versao: str

    def call(self, service: str, document: bytes) -> Answer:
        self.operadoras.calls.append((self.registro_ans, service))
        posted = wsgi_call.post(self.operadoras.apps[self.registro_ans],
                                f"/tiss/{version_path(self.versao)}/{service}", soap_envelope(document))
        return Answer(int(posted.status.split()[0]), posted.body, "text/xml")


class InProcess:
    def __init__(self, database_url: str, registry: SchemaRegistry, home: Path, keys: tuple[str, ...]):
        config = build_config(None, database_url, True, simulator="127.0.0.1:9000")
        self.engine = db.make_engine(prepare(config))
        self.sessions: sessionmaker[Session] = db.session_factory(self.engine)
        self.clock = Relogio(datetime.now(UTC).replace(microsecond=0))
        self.sim_clock = SimClock(time_scale=0, start=T0)
        self.sim_engine = db.make_engine(f"sqlite:///{home / 'simulador.sqlite'}")
        create_schema(self.sim_engine)
        self.sim_sessions = db.session_factory(self.sim_engine)
        self.operadoras = Operadoras({OPERADORAS[key][0]: self._simulador(key, registry) for key in keys})
        adapters = load_adapters(config, registry)
        self.pipeline = Pipeline(config, registry, self.sessions, self.clock,
                                 readers=db.reader_factory(self.engine), adapters=adapters)
        self.pipeline.relay.proxy.clients = self.operadoras  # type: ignore[assignment]
        self.app = TissWsgi(self.pipeline, registry, max_bytes=config.gateway.max_message_bytes)
        self.worker = Worker(config, registry, self.sessions, adapters, clock=self.clock,
                             clients=self.operadoras)  # type: ignore[arg-type]

    def _simulador(self, key: str, registry: SchemaRegistry) -> TissWsgi:
        profile = load_profile(key)
        operadora = OperadoraSimulada(profile, registry, self.sim_sessions, self.sim_clock, seed=3)
        return TissWsgi(operadora, registry, max_bytes=profile.max_bytes)

    def post(self, service: str, data: bytes) -> etree._Element:
        """The ``*WS`` root of the gateway's answer (HTTP 200 expected)."""
        posted = wsgi_call.post(self.app, f"/tiss/v4_03_00/{service}", data)
        assert posted.status.startswith("200"), posted.body[:2000]
        return reader.read(posted.body, len(posted.body) + 1).root

    def send_lote(self, key: str, n: int, numero: str, guide: str = "consulta") -> str:
        """The gateway protocol of an accepted lote (not delivered yet)."""
        body = build_lote(guide, n, envelope=True, numero_lote=numero, sequencial=numero, party=party(key),
                          seed=3, when=self.sim_clock.local_now().replace(tzinfo=None))
        posted = wsgi_call.post(self.app, "/tiss/v4_03_00/tissLoteGuias", body)
        found = _PROTOCOLO.search(posted.body)
        assert found, posted.body[:2000]
        return found.group(1).decode()

    def deliver(self) -> None:
        """Run the worker until nothing is due."""
        while self.worker.run_once():
            pass

    def poll(self) -> None:
        """Ask the operators the situação of every open protocol now."""
        self.clock.agora += timedelta(days=1)
        self.worker.tracker.run_once()

    def advance(self, hours: float) -> None:
        self.sim_clock.advance(timedelta(hours=hours))

    def entregas(self, protocolo: str) -> list[Entrega]:
        with self.sessions() as session:
            return list(session.scalars(select(Entrega).join(Protocolo, Entrega.protocolo_id == Protocolo.id)
                                        .where(Protocolo.numero == protocolo).order_by(Entrega.parte)))

    def close(self) -> None:
        self.engine.dispose()
        self.sim_engine.dispose()
