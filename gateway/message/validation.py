"""Validate one TISS message: one parse, the schema of its own version, the hash, the guide limit."""

import threading
from dataclasses import dataclass, field

from lxml import etree

from gateway.message import findings as f
from gateway.message import hashing, reader
from gateway.message.findings import Finding
from gateway.message.hashing import HashCheck, HashPolicy
from gateway.message.reader import MessageError, TissMessage
from gateway.message.schema_registry import SchemaRegistry, default_registry, missing_version_text
from gateway.message.services import ANS_NS

MAX_GUIAS_POR_LOTE = 100
_NS = {"ans": ANS_NS}
_GUIAS = {
    "loteGuiasWS": etree.XPath("count(ans:loteGuias/ans:guiasTISS/*)", namespaces=_NS),
    "mensagemTISS": etree.XPath(
        "count(ans:prestadorParaOperadora/ans:loteGuias/ans:guiasTISS/*)", namespaces=_NS),
}
# lxml schema objects keep their error log on the instance: validate one message at a time each.
_schema_locks: dict[int, threading.Lock] = {}
# TISS 2.x and 3.x name the version element versaoPadrao (4.x: Padrao).
_legacy_version = etree.XPath("normalize-space(ans:cabecalho/ans:versaoPadrao)", namespaces=_NS,
                              smart_strings=False)


@dataclass
class Report:
    valid: bool
    version: str | None = None
    kind: str | None = None
    findings: list[Finding] = field(default_factory=list)
    hash: HashCheck | None = None
    message: TissMessage | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "version": self.version,
            "kind": self.kind,
            "findings": [finding.to_dict() for finding in self.findings],
            "hash": self.hash.to_dict() if self.hash else None,
        }


def validate(data: bytes, *, registry: SchemaRegistry | None = None,
             policy: HashPolicy = hashing.STRICT, max_bytes: int = reader.DEFAULT_MAX_BYTES,
             version_hint: str | None = None) -> Report:
    try:
        message = reader.read(data, max_bytes, version_hint)
    except MessageError as exc:
        return Report(False, findings=[exc.finding])
    return validate_message(message, registry=registry, policy=policy)


def validate_message(message: TissMessage, *, registry: SchemaRegistry | None = None,
                     policy: HashPolicy = hashing.STRICT) -> Report:
    registry = registry or default_registry()
    report = Report(False, message.version, message.kind, message=message)
    schema_set = registry.get(message.version) if message.version else None
    if schema_set is None:
        # No schema to validate with; the hash is still checked and reported (a TISS 2.x/3.x file's
        # too), as a finding only where the message has one.
        report.version = message.version or _legacy_version(message.root) or None
        report.findings.append(_version_finding(message, report.version, registry))
        _check_hash(report, message, policy, missing_is_finding=False)
        return report
    report.findings.extend(schema_findings(schema_set.schema(message.kind), message))
    report.findings.extend(_guide_limit(message))
    _check_hash(report, message, policy)
    report.valid = not any(x.severity is f.Severity.ERROR for x in report.findings)
    return report


def _check_hash(report: Report, message: TissMessage, policy: HashPolicy, *,
                missing_is_finding: bool = True) -> None:
    if message.kind == "tissFaultWS":
        return
    report.hash = hashing.check(message.root, message.encoding, policy, message.data)
    if not report.hash.accepted and (missing_is_finding or report.hash.found is not None):
        report.findings.append(_hash_finding(report.hash))


def schema_findings(schema: etree.XMLSchema, message: TissMessage) -> list[Finding]:
    lock = _schema_locks.setdefault(id(schema), threading.Lock())
    with lock:
        if schema.validate(message.root):
            return []
        errors = list(schema.error_log)
    return [
        f.error(f.MENSAGEM_FORA_DO_PADRAO, f"Mensagem fora do schema {message.version}: "
                f"{e.message}", e.path, e.line)
        for e in errors
    ]


def _guide_limit(message: TissMessage) -> list[Finding]:
    counter = _GUIAS.get(message.kind)
    count = int(counter(message.root)) if counter else 0
    if count <= MAX_GUIAS_POR_LOTE:
        return []
    return [f.error(f.GUIAS_ACIMA_DO_MAXIMO,
                    f"Lote com {count} guias: o máximo por lote é {MAX_GUIAS_POR_LOTE}.",
                    "guiasTISS")]


def _version_finding(message: TissMessage, version: str | None, registry: SchemaRegistry) -> Finding:
    if not version:
        text = "Versão do padrão (cabecalho/Padrao) não informada."
    else:
        text = missing_version_text(version, registry.versions())
    where = "cabecalho/Padrao" if message.version or not version else "cabecalho/versaoPadrao"
    return f.error(f.VERSAO_INVALIDA, text, where, message.root.sourceline)


def _hash_finding(check: HashCheck) -> Finding:
    if check.found is None:
        text = "Mensagem sem elemento hash."
    elif check.variant:
        text = (f"Hash {check.found} calculado pela variante '{check.variant}', não aceita; "
                f"pela regra da codificação declarada o hash é {check.computed}.")
    else:
        text = f"Hash informado {check.found} não confere; hash calculado {check.computed}."
    return f.error(f.HASH_INVALIDO, text, "hash")
