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


def fault_reply(error: Exception) -> Reply:
    if isinstance(error, TissFault):
        data = responses.fault_envelope(error.tiss_fault, error.faultstring, client=error.client)
    elif isinstance(error, Fault) and str(error.faultcode).startswith("Client"):
        data = responses.fault_envelope("SchemaInvalido", str(error.faultstring), client=True)
    else:
        data = responses.fault_envelope("ErroInesperadoServidor",
                                        "Erro inesperado no gateway.", client=False)
    return Reply(data, "UTF-8")
