"""The 12 TISS operations as one Spyne service; each hands its body element to the pipeline.

Spyne dispatches on the body's root element (SOAPAction is empty in TISS): every method is
bare-bodied with ``_in_message_name`` = the request element, so Spyne's method map is exactly
the ANS request elements.
"""

from spyne import AnyXml, Application, ServiceBase, rpc

from gateway.message.services import ANS_NS, SERVICES, Service
from gateway.soap.protocol import TissSoapIn, TissSoapOut

PIPELINE_KEY = "tiss.pipeline"
SERVICE_KEY = "tiss.service"
VERSION_KEY = "tiss.version"


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
