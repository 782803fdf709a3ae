"""TISS faults: the tissFaultWS a message gets when it cannot be answered with its own response.

Every side that speaks TISS (the gateway's inbound path, the relay, the simulated operators)
raises these and writes them the same way. ``TissFault`` is a Spyne ``Fault`` because Spyne's
server carries only ``Fault`` subclasses from a service method to the out-protocol unchanged
(any other exception becomes a generic internal error).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from spyne import Fault

from gateway.message import responses
from gateway.message.findings import Finding
from gateway.message.services import SERVICE_BY_NAME, SERVICE_BY_REQUEST


class TissFault(Fault):
    """A tissFaultWS answer: ``fault`` is an st_tissFault value, ``client`` says whose mistake."""

    def __init__(self, fault: str, text: str, *, client: bool = True, code: str | None = None,
                 findings: Sequence[Finding] = ()):
        super().__init__("Client" if client else "Server", text)
        self.tiss_fault = fault
        self.client = client
        self.code = code  # Table 38 code behind the fault, for logs and storage
        self.findings = tuple(findings)  # every finding behind it (stored as críticas)


# Findings whose Table 38 code has a tissFault value of its own; any other is SchemaInvalido.
FAULT_FOR_CODE = {"5014": "HashInvalido", "5028": "VersaoInvalida"}


def fault_for(findings: Sequence[Finding]) -> TissFault:
    """The tissFault answering a message that failed validation (the first findings in its text)."""
    first = findings[0]
    fault = FAULT_FOR_CODE.get(first.code or "", "SchemaInvalido")
    text = "; ".join(f"[{f.code}] {f.message}" + (f" (linha {f.line})" if f.line else "")
                     for f in findings[:5])
    return TissFault(fault, text[:2000], code=first.code, findings=findings)


def wrong_service(kind: str, endpoint_service: str) -> TissFault:
    """A ``*WS`` request posted to the URL of another service."""
    own = SERVICE_BY_REQUEST.get(kind)
    expected = SERVICE_BY_NAME[endpoint_service].request if endpoint_service in SERVICE_BY_NAME else "?"
    where = f"é a mensagem do web service {own.name}" if own else "não é uma requisição TISS"
    text = (f"{kind} {where} e veio ao endereço de {endpoint_service}, que recebe {expected}"
            + (f": envie-a ao endereço que termina em /{own.name}." if own else "."))
    return TissFault("SchemaInvalido", text, code="5001")


def check_padrao(version: str | None, endpoint_version: str | None) -> None:
    """cabecalho/Padrao present, and the one of the endpoint's URL when it names a version."""
    if not version:
        raise TissFault("VersaoInvalida", "cabecalho/Padrao não informado.", code="5028")
    if endpoint_version and version != endpoint_version:
        raise TissFault("VersaoInvalida", f"Mensagem da versão {version} enviada ao endereço da "
                        f"versão {endpoint_version}.", code="5028")


@dataclass
class Reply:
    """What a service method returns: the finished bytes and their encoding."""

    data: bytes
    encoding: str


def fault_reply(error: Exception, encoding: str = "UTF-8") -> Reply:
    """The tissFaultWS envelope answering ``error``, written in ``encoding`` (the request's, see
    :func:`gateway.message.reader.reply_encoding`: ISO-8859-1 or UTF-8)."""
    if isinstance(error, TissFault):
        fault, text, client = error.tiss_fault, error.faultstring, error.client
    elif isinstance(error, Fault) and str(error.faultcode).startswith("Client"):
        fault, text, client = "SchemaInvalido", str(error.faultstring), True
    else:
        fault, text, client = "ErroInesperadoServidor", "Erro inesperado no gateway.", False
    return Reply(responses.fault_envelope(fault, text, client=client, encoding=encoding), encoding)
