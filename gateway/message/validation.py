"""Validate one TISS message: one parse, the schema of its own version, the hash, the guide limit."""

import logging
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
_local = threading.local()
# Tree validation (libxml2 over the parsed tree) gives each error its element path, at a cost per
# error: lxml keeps every error (~1 KB) and computes its path by scanning the element's same-name
# siblings, so many errors among many siblings take quadratic time (80,000 invalid items in one
# parent: 49 s). Only trees that cannot report many errors are validated so; larger ones are
# parsed again with the schema plugged in, stopping at MAX_FINDINGS errors (_streamed_errors).
TREE_MAX_ELEMENTS = 10_000
TREE_MAX_CHILDREN = 500
# The TISS schemas declare attributes only in the XMLDSig signature (a few per signature); past
# this many, each is an error libxml2 reports (and lxml keeps) one by one: refused as one.
MAX_ATTRIBUTES = 1_000
_ELEMENTS = etree.XPath("count(descendant-or-self::*)")
_WIDE = etree.XPath(f"boolean(descendant-or-self::*/*[{TREE_MAX_CHILDREN + 1}])")
_ATTRIBUTES = etree.XPath("count(descendant-or-self::*/@*)")
_FIRST_WITH_ATTRIBUTE = etree.XPath("(descendant-or-self::*[@*])[1]")
_FIRST_ATTRIBUTES = etree.XPath("@*[position() <= 3]")  # not .keys(): a list of them all
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
    refusal = reader.encoding_refusal(data)  # parsed, but not in bytes TISS takes
    if refusal is not None:
        return Report(False, message.version, message.kind, [refusal], message=message)
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
    """The message's schema errors as findings: at most MAX_FINDINGS and one counting the rest,
    in time and memory proportional to the message whatever the number of errors."""
    root = message.root
    attributes = int(_ATTRIBUTES(root))
    if attributes > MAX_ATTRIBUTES:  # each would be an error of its own: refused as one
        return [_attributes_finding(root, attributes)]
    if _ELEMENTS(root) <= TREE_MAX_ELEMENTS and not _WIDE(root):
        return _tree_findings(schema, message)
    count, first = _streamed_errors(schema, root)
    if count == 0:
        return []
    if count < f.MAX_FINDINGS:  # few: validate the tree too, for each error's element path
        return _tree_findings(schema, message)
    found = [_schema_finding(message, text, None, None) for text in first]
    return [*found, f.stopped(len(found), f.MENSAGEM_FORA_DO_PADRAO)]


def _tree_findings(schema: etree.XMLSchema, message: TissMessage) -> list[Finding]:
    lock = _schema_locks.setdefault(id(schema), threading.Lock())
    with lock:
        if schema.validate(message.root):
            return []
        errors = schema.error_log  # a copy of the list; findings made only for the first ones
    return f.first_of(_schema_finding(message, e.message, e.path, e.line) for e in errors)


def _schema_finding(message: TissMessage, text: str, path: str | None, line: int | None) -> Finding:
    return f.error(f.MENSAGEM_FORA_DO_PADRAO, f"Mensagem fora do schema {message.version}: {text}",
                   path, line or None)


def _attributes_finding(root: etree._Element, count: int) -> Finding:
    first = _FIRST_WITH_ATTRIBUTE(root)[0]
    names = [etree.QName(value.attrname).localname for value in _FIRST_ATTRIBUTES(first)]
    return f.error(f.MENSAGEM_FORA_DO_PADRAO,
                   f"Mensagem com {count} atributos (o primeiro em {etree.QName(first).localname}: "
                   f"{', '.join(names)}...): o schema TISS só prevê atributos na assinatura digital.",
                   _path(first, root), first.sourceline)


def _path(element: etree._Element, root: etree._Element) -> str:
    names = [etree.QName(element).localname]
    for ancestor in element.iterancestors():
        names.append(etree.QName(ancestor).localname)
        if ancestor is root:
            break
    return "/" + "/".join(reversed(names))


class _Stop(Exception):
    """Raised by the parser target to end a validating parse that found enough errors."""


class _Tally(etree.PyErrorLog):
    """This thread's lxml global error log: lxml hands it every error as well as the parser's own
    log. While armed it counts them and keeps the first texts; otherwise it drops them."""

    def __init__(self) -> None:
        super().__init__(logger=logging.getLogger("tiss_gateway.message.lxml"))
        self.limit = 0  # 0: disarmed
        self.count = 0
        self.first: list[str] = []

    def arm(self, limit: int) -> None:
        self.limit, self.count, self.first = limit, 0, []

    def receive(self, log_entry: etree._LogEntry) -> None:
        if not self.limit or log_entry.level < etree.ErrorLevels.ERROR:
            return
        self.count += 1
        if len(self.first) < self.limit:
            self.first.append(log_entry.message)


class _Halt:
    """Parser target: builds nothing, stops the parse once the tally has ``limit`` errors (checked
    at each element start, so lxml keeps at most a few errors past the limit)."""

    def __init__(self, tally: _Tally, limit: int):
        self.tally, self.limit = tally, limit

    def start(self, _tag: str, _attrib: dict[str, str]) -> None:
        if self.tally.count >= self.limit:
            raise _Stop

    def close(self) -> None:
        return None


def _streamed_errors(schema: etree.XMLSchema, root: etree._Element,
                     limit: int = f.MAX_FINDINGS) -> tuple[int, list[str]]:
    """Validate ``root`` by parsing its serialisation with the schema plugged into the parser:
    linear time, no element paths, and it stops after ``limit`` errors. Returns the number of
    errors seen (``limit`` or more: it stopped) and the first ones' texts."""
    tally = getattr(_local, "tally", None)
    if tally is None:
        tally = _local.tally = _Tally()
    etree.use_global_python_log(tally)  # per thread; cheap to set again
    tally.arm(limit)
    parser = etree.XMLParser(schema=schema, target=_Halt(tally, limit), huge_tree=True,
                             resolve_entities=False, no_network=True)
    try:
        etree.fromstring(etree.tostring(root), parser)
    except (_Stop, etree.XMLSyntaxError):  # enough errors, or the schema's verdict
        pass
    finally:
        count, first = tally.count, tally.first
        tally.arm(0)
    return count, first


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
