"""The request pipeline every TISS call goes through.

size limit -> safe parse (both in the SOAP layer) -> the checks (gateway.inbound.checks: the
message, the sender, the destination) -> duplicate? -> store -> answer.

Lotes and the other store-and-forward services are answered from the gateway's own data
(gateway.inbound.acceptance; the worker delivers them later, a status query is answered by
gateway.inbound.status); the synchronous services (``gateway.delivery.relay.SERVICOS``) are
relayed to the operator while the provider waits (gateway.delivery.sync_relay): duplicate? ->
plan -> ask the operator (no transaction open) -> store -> the operator's answer.

Failures before the sender is identified answer with a tissFaultWS (nothing trustworthy to put in
a response cabeçalho); business failures after it (lote already sent, protocol not found) answer
with the response's own mensagemErro. Every refused message is stored with its bytes for audit,
within bounds before login (gateway.inbound.refusals).
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree
from spyne import MethodContext
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import Config
from gateway.delivery import relay
from gateway.delivery.checked import Answered, CheckedCall, StoredFault
from gateway.delivery.sync_relay import SyncRelay
from gateway.inbound.acceptance import Acceptance
from gateway.inbound.checks import Checks
from gateway.inbound.refusals import Refusals
from gateway.inbound.snapshot import Snapshot
from gateway.message.checks import Call
from gateway.message.faults import Reply, TissFault
from gateway.message.findings import Finding
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import Service
from gateway.observability.logs import REQUEST_ID_KEY
from gateway.observability.metrics import OUTCOME_KEY
from gateway.soap.service import Environ, receive

if TYPE_CHECKING:
    from adapters.base import Adapter


class Pipeline:
    def __init__(self, config: Config, registry: SchemaRegistry, sessions: sessionmaker[Session],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), *,
                 readers: sessionmaker[Session] | None = None,
                 adapters: Mapping[str, "Adapter"] | None = None):
        self.config = config
        self.adapters = adapters or {}  # registro ANS -> the operator's adapter (forwarding)
        self.registry = registry
        self.sessions = sessions  # read-write: one transaction per request
        self.readers = readers or sessions  # read-only checks (SQLite: no write lock taken)
        self._read_engine: Engine = self.readers.kw["bind"]
        self.clock = clock
        self.checks = Checks(config, registry, sessions, clock)
        self.acceptance = Acceptance(registry, sessions.kw["bind"], self.adapters, clock)
        self.relay = SyncRelay(relay.Proxy(config, registry, self.adapters, self.readers), sessions,
                               self.readers, clock)
        settings = config.gateway
        self.refusals = Refusals(sessions, body_bytes=settings.refused_body_bytes,
                                 per_minute=settings.refusals_per_minute)

    # -- entry points (called by the SOAP layer) ------------------------------------------------
    def handle(self, ctx: MethodContext, service: Service, body: etree._Element) -> Reply:
        received = receive(ctx, service, body)
        call, environ = received.call, received.environ
        request_id = environ.get(REQUEST_ID_KEY)
        snapshot = Snapshot(self._read_engine)
        prestador_id: int | None = None  # once the sender is known: its refusals are stored with it
        try:
            checked_message = self.checks.message(call, received.endpoint)
            prestador_id = self.checks.sender(call, snapshot.connection, environ)
            answered = self._answer(self.checks.destination(call, checked_message, prestador_id, request_id),
                                    snapshot)
        except StoredFault as stored:
            _outcome(environ, call, *_fault_outcome(stored.fault))
            raise stored.fault from None
        except TissFault as fault:
            _outcome(environ, call, *_fault_outcome(fault))
            snapshot.close()
            self.refusals.store(call, fault, prestador_id=prestador_id, request_id=request_id)
            raise
        finally:
            snapshot.close()
        if answered.outcome == "accepted":
            environ.setdefault(OUTCOME_KEY, ("accepted", None, call.message.version))
        else:
            _outcome(environ, call, answered.outcome, answered.code)
        return answered.reply

    def refused_oversize(self, environ: Environ, length: int) -> None:
        self.refusals.oversize(environ, length)
        environ[OUTCOME_KEY] = ("fault", "5002", None)

    def refused_unread(self, environ: Environ, data: bytes, code: str, *, client: bool = True,
                       findings: Sequence[Finding] = ()) -> None:
        """Store a request the SOAP layer refused before the pipeline could read it (malformed
        XML, DOCTYPE, no SOAP 1.1 envelope, unknown body element...), with its críticas."""
        environ[OUTCOME_KEY] = ("fault" if client else "error", code, None)
        self.refusals.unread(environ, data, code, client=client, findings=findings)

    # -- the answer ------------------------------------------------------------------------------
    def _answer(self, checked: CheckedCall, snapshot: Snapshot) -> Answered:
        if checked.call.service.name in relay.SERVICOS:
            snapshot.close()  # no read snapshot held while the operator answers
            return self.relay.answer(checked)
        return self.acceptance.answer(checked, snapshot)


def _fault_outcome(fault: TissFault) -> tuple[str, str]:
    return "fault" if fault.client else "error", fault.code or fault.tiss_fault


def _outcome(environ: Environ, call: Call, outcome: str, code: str | None = None) -> None:
    """What the call came to, for the metrics and the access log (gateway.observability)."""
    environ[OUTCOME_KEY] = (outcome, code, call.message.version)
