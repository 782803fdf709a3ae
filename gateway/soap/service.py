"""The 12 TISS operations as one Spyne service; each hands its body element to the pipeline.

Spyne dispatches on the body's root element (SOAPAction is empty in TISS): every method is
bare-bodied with ``_in_message_name`` = the request element, so Spyne's method map is exactly
the ANS request elements.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lxml import etree
from spyne import AnyXml, Application, MethodContext, ServiceBase, rpc

from gateway.message import reader
from gateway.message.checks import Call, Endpoint, read_cabecalho
from gateway.message.faults import Reply
from gateway.message.findings import Finding
from gateway.message.services import ANS_NS, SERVICES, Service
from gateway.soap.protocol import PIPELINE_KEY, SERVICE_KEY, VERSION_KEY, TissSoapIn, TissSoapOut

Environ = dict[str, Any]  # a WSGI request environment (values of many kinds)


class Receiver(Protocol):
    """What answers the TISS requests behind :class:`gateway.soap.app.TissWsgi`: the gateway's
    pipeline, or a simulated operator. Every request it is given or refused is stored by it."""

    def handle(self, ctx: MethodContext, service: Service, body: etree._Element) -> Reply: ...

    def refused_oversize(self, environ: Environ, length: int) -> None: ...

    def refused_unread(self, environ: Environ, data: bytes, code: str, *, client: bool = True,
                       findings: Sequence[Finding] = ()) -> None: ...


@dataclass(frozen=True, slots=True)
class Received:
    """A request handed to a :class:`Receiver`: the call, the URL it came to, its WSGI environ."""

    call: Call
    endpoint: Endpoint
    environ: Environ


def receive(ctx: MethodContext, service: Service, body: etree._Element) -> Received:
    """The request of a Spyne context, from the tree the in-protocol parsed (parse once). From here
    on the receiver stores what it refuses (gateway.soap.app stores what Spyne refused before)."""
    environ: Environ = ctx.transport.req_env
    ctx.udc.in_pipeline = True
    message = reader.message_of(ctx.udc.raw, ctx.udc.tree, body, True)
    call = Call(message, service, environ.get("REMOTE_ADDR"), read_cabecalho(message.root))
    return Received(call, Endpoint(environ.get(SERVICE_KEY), environ.get(VERSION_KEY)), environ)


def _operation(service: Service):
    def operation(ctx, body):
        environ = ctx.transport.req_env
        return environ[PIPELINE_KEY].handle(ctx, service, body)

    # Spyne keys methods by function name: name it before decorating.
    operation.__name__ = operation.__qualname__ = service.operation
    return rpc(AnyXml, _body_style="bare", _in_message_name=service.request, _returns=AnyXml,
               _out_message_name=service.response)(operation)


TissService = type("TissService", (ServiceBase,), {s.operation: _operation(s) for s in SERVICES})


def spyne_application(max_bytes: int, fault_http_status: int) -> Application:
    return Application([TissService], tns=ANS_NS, name="tissGateway",
                       in_protocol=TissSoapIn(max_bytes), out_protocol=TissSoapOut(fault_http_status))
