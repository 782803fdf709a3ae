"""Helpers of the adapters' unit tests: an adapter of each demo operator, messages for it, and
checks of the parts it sends."""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from adapters import Adapter, Destino, Envio, load_adapter
from gateway.config import DEMO_OPERADORAS
from gateway.message import hashing, reader
from gateway.message.findings import Finding
from gateway.message.lote import read_lote
from gateway.message.reader import TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS
from gateway.message.validation import validate_message
from tests.factory import Party

NS = {"ans": ANS_NS}
AGORA = datetime(2026, 1, 20, 9, 30, 5)
REGISTROS = {adapter: registro for registro, _nome, adapter, _codigo in DEMO_OPERADORAS}
VERSOES = ("4.02.00", "4.03.00")
UNIMED_CNPJ = "33187200000154"


def adapter(registry: SchemaRegistry, name: str, versoes: tuple[str, ...] = VERSOES, **destino) -> Adapter:
    return load_adapter(name, Destino(REGISTROS[name], versoes, **destino), registry)


def read(data: bytes) -> TissMessage:
    return reader.read(data)


def sequenciais(n: int) -> list[str]:
    return [f"9{i:04d}" for i in range(1, n + 1)]


def preparar(a: Adapter, message: TissMessage) -> list[Envio]:
    return a.preparar(message, sequenciais=sequenciais, agora=AGORA)


def party(name: str, **kw) -> Party:
    return Party(registro_ans=REGISTROS[name], **kw)


def numeros(message: TissMessage) -> list[str]:
    return [g.numero_guia_prestador for g in read_lote(message.root).guias]


def codes(findings: list[Finding]) -> list[str | None]:
    return [x.code for x in findings]


def check_part(envio: Envio, registry: SchemaRegistry, variante: str) -> TissMessage:
    """The part parses, validates in its version, and carries the hash in ``variante``."""
    part = read(envio.corpo)
    assert part.kind == "loteGuiasWS" and not part.in_envelope
    assert part.version == envio.versao
    policy = hashing.HashPolicy.of([variante])
    report = validate_message(part, registry=registry, policy=policy)
    assert report.valid, report.findings[:3]
    assert report.hash is not None and report.hash.variant == variante and report.hash.accepted
    return part


def modified(data: bytes, change) -> bytes:
    """``data`` after ``change(root)``, hash stamped again (declared rule)."""
    tree = etree.ElementTree(etree.fromstring(data))
    change(tree.getroot())
    return hashing.rewrite(tree, tree.getroot())


def guias(root: etree._Element) -> list[etree._Element]:
    return root.xpath("ans:loteGuias/ans:guiasTISS/*", namespaces=NS)
