"""Spyne protocols for TISS: the body element goes to the service as parsed, replies as built.

Spyne's stock Soap11 would decode the body with the HTTP charset, re-encode it, and deserialise
it into Python objects. TISS needs the opposite: the exact bytes (for the hash and for audit) and
the one lxml tree (parse once). So the in-protocol parses with the gateway's safe reader and
hands ``ctx.in_body_doc`` to the service untouched; the out-protocol writes the bytes the
service prepared (or a tissFaultWS envelope for an error, in the encoding the request declared:
ISO-8859-1 or UTF-8, else UTF-8).

A Body that is not one ``*WS`` request is refused before Spyne dispatches on it, with a text that
says what came instead (the mensagemTISS file form, a message wrapped twice, a response, a second
element...): Spyne's own answer would be "Requested resource ... not found" (and Spyne reads only
the first element). So are bytes in an encoding TISS does not take, or that contradict their
XML declaration (gateway.message.reader.encoding_refusal).
"""

from types import SimpleNamespace

from spyne import Fault
from spyne.protocol.soap import Soap11

from gateway.message import reader
from gateway.message.faults import TissFault, fault_reply
from gateway.message.findings import Finding
from gateway.message.reader import MessageError
from gateway.message.services import SERVICE_BY_NAME

PIPELINE_KEY = "tiss.pipeline"  # WSGI environ keys gateway.soap.app sets for each request
SERVICE_KEY = "tiss.service"
VERSION_KEY = "tiss.version"


class TissSoapIn(Soap11):
    def __init__(self, max_bytes: int = reader.DEFAULT_MAX_BYTES):
        super().__init__()
        self.max_bytes = max_bytes

    def create_in_document(self, ctx, charset=None):
        raw = b"".join(ctx.in_string)
        ctx.udc = SimpleNamespace(raw=raw, tree=None, reply=None, finding=None)
        try:
            tree = reader.parse(raw, self.max_bytes)
        except MessageError as exc:
            ctx.udc.finding = exc.finding
            raise _refused(exc.finding) from None
        ctx.udc.tree = tree
        refusal = reader.encoding_refusal(raw)  # parsed, but not in bytes an operator can read
        if refusal is not None:
            raise _refused(refusal)
        ctx.in_document = (tree.getroot(), {})

    def decompose_incoming_envelope(self, ctx, message=Soap11.REQUEST):
        envelope = ctx.in_document[0]
        service = SERVICE_BY_NAME.get(ctx.transport.req_env.get(SERVICE_KEY, ""))
        if envelope.tag != f"{{{self.ns_soap_env}}}Envelope":
            raise _refused(reader.unenveloped_refusal(envelope, service))
        # Spyne takes Body[0] as the message: an empty Body, a Header without Body, or a comment /
        # processing instruction before the TISS element would crash it (a 500).
        body = envelope.find(f"{{{self.ns_soap_env}}}Body")
        first = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        if first is None:
            raise TissFault("SchemaInvalido", "Envelope SOAP sem mensagem TISS no Body.", code="5001")
        refusal = reader.request_refusal(first, service) or reader.body_refusal(body, first)
        if refusal is not None:  # Spyne would say "Requested resource ... not found", in English
            raise _refused(refusal)
        while body[0] is not first:  # outside the *WS element: neither hashed nor stored apart
            body.remove(body[0])
        # What Soap11 would do, without looking Header and Body up again with two XPaths.
        header = envelope.find(f"{{{self.ns_soap_env}}}Header")
        ctx.in_document = envelope
        ctx.in_header_doc = header.getchildren() if header is not None else None
        ctx.in_body_doc = first
        ctx.method_request_string = first.tag
        self.validate_body(ctx, message)

    def deserialize(self, ctx, message):
        self.event_manager.fire_event("before_deserialize", ctx)
        ctx.in_object = ctx.in_body_doc
        self.event_manager.fire_event("after_deserialize", ctx)


def _refused(finding: Finding) -> TissFault:
    return TissFault("SchemaInvalido", finding.message, code=finding.code, findings=[finding])


class TissSoapOut(Soap11):
    def __init__(self, fault_http_status: int = 500):
        super().__init__()
        self.fault_http_status = fault_http_status

    def serialize(self, ctx, message):
        ctx.out_document = None
        if ctx.udc is None:  # failed before the request was read
            ctx.udc = SimpleNamespace(raw=b"", tree=None, reply=None, finding=None)
        if ctx.out_error is not None:  # in the request's encoding when it declared one we write
            ctx.udc.reply = fault_reply(ctx.out_error, reader.reply_encoding(ctx.udc.raw, ctx.udc.tree))
        else:
            ctx.udc.reply = ctx.out_object[0] if isinstance(ctx.out_object, list | tuple) \
                else ctx.out_object
        ctx.transport.resp_headers["Content-Type"] = \
            f'text/xml; charset={ctx.udc.reply.encoding}'

    def create_out_string(self, ctx, charset=None):
        ctx.out_string = [ctx.udc.reply.data]

    def fault_to_http_response_code(self, fault):
        if isinstance(fault, TissFault) and fault.client:
            return f"{self.fault_http_status} {HTTP_REASONS.get(self.fault_http_status, 'Bad Request')}"
        if isinstance(fault, Fault) and str(fault.faultcode).startswith("Client"):
            return f"{self.fault_http_status} {HTTP_REASONS.get(self.fault_http_status, 'Bad Request')}"
        return "500 Internal Server Error"


HTTP_REASONS = {400: "Bad Request", 500: "Internal Server Error", 200: "OK"}
