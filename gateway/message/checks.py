"""The checks every receiver of a TISS request makes of the message itself, the same way on both
sides (the gateway's inbound pipeline and the simulated operators).

service matches the URL -> cabecalho/Padrao present and the URL's version -> its schemas installed
-> a version this side takes -> schema of that version -> hash by this side's policy. What a side
checks of the sender (login, certificate, origem, destino, duplicates) is that side's own.
"""

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from gateway.message.cabecalho import FIELDS
from gateway.message.faults import TissFault, check_padrao, fault_for, wrong_service
from gateway.message.hashing import HashPolicy
from gateway.message.reader import TissMessage
from gateway.message.schema_registry import SchemaRegistry, missing_version_text
from gateway.message.services import Service
from gateway.message.validation import validate_message


@dataclass(frozen=True, slots=True)
class Cabecalho:
    """The cabeçalho values a receiver reads, read once per request (stripped, "" when absent)."""

    tipo: str  # identificacaoTransacao/tipoTransacao
    sequencial: str  # identificacaoTransacao/sequencialTransacao
    destino: str  # destino/registroANS
    login: str  # loginSenhaPrestador
    senha: str
    cnpj: str  # origem/identificacaoPrestador
    cpf: str
    codigo: str  # codigoPrestadorNaOperadora

    @property
    def remetente(self) -> str:
        """The provider the origem names, as written."""
        return self.cnpj or self.cpf or self.codigo


def read_cabecalho(root: etree._Element) -> Cabecalho:
    """The cabeçalho of a request ``*WS`` root (the values of a message without one are "")."""
    return Cabecalho(*(FIELDS[name](root).strip() for name in (
        "tipo", "sequencial", "destino", "login", "senha", "cnpj", "cpf", "codigo")))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What the URL the request came to names (None: the URL leaves it to the message)."""

    service: str | None
    version: str | None


@dataclass(frozen=True, slots=True)
class Call:
    """One TISS request as received, on its way through a receiver."""

    message: TissMessage
    service: Service
    endereco: str | None  # the client's address
    cabecalho: Cabecalho


@dataclass(frozen=True, slots=True)
class CheckedMessage:
    """A message that passed :func:`check_message`."""

    version: str  # cabecalho/Padrao
    hash_found: str  # as written in the message ("" when it has none)


# The text of the VersaoInvalida (5028) refusing a version this side does not take, None if it does.
VersionRefusal = Callable[[str], str | None]


def check_message(call: Call, endpoint: Endpoint, *, registry: SchemaRegistry, policy: HashPolicy,
                  refuse_version: VersionRefusal | None = None) -> CheckedMessage:
    """The message-level checks; a failure raises the TissFault to answer with."""
    message = call.message
    if endpoint.service and endpoint.service != call.service.name:
        raise wrong_service(message.kind, endpoint.service)
    check_padrao(message.version, endpoint.version)
    version = message.version or ""  # check_padrao refused a message without one
    if registry.get(version) is None:  # before the side's own refusal: say how to install it
        raise TissFault("VersaoInvalida", missing_version_text(version, registry.versions()), code="5028")
    refusal = refuse_version(version) if refuse_version is not None else None
    if refusal is not None:
        raise TissFault("VersaoInvalida", refusal, code="5028")
    report = validate_message(message, registry=registry, policy=policy)
    if not report.valid:
        raise fault_for(report.findings)
    return CheckedMessage(version, (report.hash.found or "") if report.hash else "")
