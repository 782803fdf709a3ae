"""The ANS schema sets the gateway knows, verified by SHA-256 and compiled once per process.

Sources: sets bundled by the PyPI package ``tiss`` (4.02.00, 4.03.00), found through
``importlib.resources`` and checked against ``schemas/manifest.json``; and sets imported into
``$TISS_GATEWAY_HOME/schemas/<version>/`` by ``tiss-gateway schemas import``. Compilation is
offline: every include/import must name a file of the same set.
"""

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from lxml import etree

import schemas as shipped
from gateway.home import gateway_home
from gateway.message import schema_types
from gateway.message.services import MENSAGEM_TISS

IMPORT_RECORD = "import.json"
_VERSION = re.compile(r"\d\.\d\d\.\d\d")
schema_types.prepare()  # before any thread compiles: libxml2 is not thread-safe there


class SchemaSetError(Exception):
    """A schema set cannot be used (hashes differ, files missing, does not compile)."""


@dataclass(frozen=True, slots=True)
class HashStatus:
    ok: bool
    label: str  # oficial | divergente | registrado | alterado
    detail: str = ""


@dataclass
class SchemaSet:
    version: str
    directory: Path
    origin: str
    valid_from: str | None
    expected: dict[str, str]  # file name -> sha256 the set must have
    official: bool  # expected hashes come from the ANS manifest
    _compiled: dict[str, etree.XMLSchema] = field(default_factory=dict, repr=False)
    _verified: bool = field(default=False, repr=False)
    _compiling: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tag(self) -> str:
        return self.version.replace(".", "_")

    def root_file(self, kind: str) -> str:
        stem = "tissV" if kind == MENSAGEM_TISS else "tissWebServicesV"
        return f"{stem}{self.tag}.xsd"

    def hash_status(self) -> HashStatus:
        problems = []
        for name, expected in sorted(self.expected.items()):
            path = self.directory / name
            if not path.is_file():
                problems.append(f"{name}: ausente")
            elif sha256_file(path) != expected:
                problems.append(f"{name}: SHA-256 difere do esperado")
        if not problems:
            return HashStatus(True, "oficial" if self.official else "registrado")
        return HashStatus(False, "divergente" if self.official else "alterado", "; ".join(problems))

    def verify(self) -> None:
        if self._verified:
            return
        status = self.hash_status()
        if not status.ok:
            raise SchemaSetError(
                f"Conjunto de schemas {self.version} ({self.directory}) recusado: {status.detail}")
        self._verified = True

    def schema(self, kind: str) -> etree.XMLSchema:
        """The compiled schema for a message kind: tissV*.xsd or tissWebServicesV*.xsd."""
        name = self.root_file(kind)
        compiled = self._compiled.get(name)
        if compiled is None:
            with self._compiling:  # threads that ask at once wait for one compile (~0.1-0.3 s)
                compiled = self._compiled.get(name)
                if compiled is None:
                    self.verify()
                    compiled = self._compiled[name] = compile_offline(self.directory, name)
        return compiled


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _LocalOnly(etree.Resolver):
    """Resolve schemaLocation to a file of the same folder; refuse anything else."""

    def __init__(self, directory: Path):
        super().__init__()
        self.directory = directory.resolve()

    def resolve(self, system_url, public_id, context):
        name = Path(system_url.split("?")[0]).name
        candidate = self.directory / name
        if candidate.is_file():
            return self.resolve_filename(str(candidate), context)
        raise SchemaSetError(f"schemaLocation fora do conjunto local: {system_url}")


def compile_offline(directory: Path, root_file: str) -> etree.XMLSchema:
    check_locations_are_local(directory)
    parser = etree.XMLParser(no_network=True, resolve_entities=True, load_dtd=False)
    parser.resolvers.add(_LocalOnly(directory))
    try:
        document = etree.parse(str(directory / root_file), parser)
        return etree.XMLSchema(document)
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError) as exc:
        raise SchemaSetError(f"{root_file} não compila: {exc}") from exc


_LOCATION = etree.XPath("//xs:include/@schemaLocation | //xs:import/@schemaLocation",
                        namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})


def check_locations_are_local(directory: Path) -> None:
    """Every include/import must name a plain file present in the set (no URL, no path)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    for xsd in directory.glob("*.xsd"):
        for location in _LOCATION(etree.parse(str(xsd), parser)):
            if "/" in location or "\\" in location or ":" in location:
                raise SchemaSetError(f"{xsd.name}: schemaLocation não local: {location}")
            if not (directory / location).is_file():
                raise SchemaSetError(f"{xsd.name}: arquivo incluído ausente: {location}")


class SchemaRegistry:
    """All schema sets of this process; each set's schemas are compiled once, on first use."""

    def __init__(self, home: Path | None = None):
        self.home = home or gateway_home()
        self._sets: dict[str, SchemaSet] | None = None
        self._lock = threading.Lock()

    @property
    def imported_dir(self) -> Path:
        return self.home / "schemas"

    def sets(self) -> dict[str, SchemaSet]:
        with self._lock:
            if self._sets is None:
                self._sets = {**self._bundled(), **self._imported()}
            return self._sets

    def get(self, version: str) -> SchemaSet | None:
        return self.sets().get(version)

    def versions(self) -> list[str]:
        return sorted(self.sets())

    def schema(self, version: str, kind: str) -> etree.XMLSchema:
        schema_set = self.get(version)
        if schema_set is None:
            raise KeyError(version)
        return schema_set.schema(kind)

    def reload(self) -> None:
        with self._lock:
            self._sets = None

    def _bundled(self) -> dict[str, SchemaSet]:
        found: dict[str, SchemaSet] = {}
        for version, entry in shipped.manifest()["versions"].items():
            if entry.get("bundled_by") != "tiss":
                continue
            directory = Path(str(files("tiss").joinpath("_data", "schemas", version)))
            if directory.is_dir():
                found[version] = SchemaSet(version, directory, entry["origin"],
                                           entry["valid_from"], entry["files"], official=True)
        return found

    def _imported(self) -> dict[str, SchemaSet]:
        found: dict[str, SchemaSet] = {}
        if not self.imported_dir.is_dir():
            return found
        for record_path in sorted(self.imported_dir.glob(f"*/{IMPORT_RECORD}")):
            record = json.loads(record_path.read_text(encoding="utf-8"))
            found[record["version"]] = SchemaSet(
                record["version"], record_path.parent, record["origin"], record.get("valid_from"),
                record["files"], official=record.get("official", False))
        return found


def missing_version_text(version: str, installed: list[str]) -> str:
    """Why a message of ``version`` cannot be validated here, and how to install that version's
    schemas (the VersaoInvalida/5028 text of the SOAP fault and of ``tiss-gateway validate``)."""
    have = ", ".join(installed) or "nenhuma"
    if not _VERSION.fullmatch(version):
        return f"Versão do padrão '{version}' inválida: esperado N.NN.NN (versões instaladas: {have})."
    if version[:1] in ("1", "2", "3"):  # TISS 2.x/3.x: versaoPadrao, another message structure
        return (f"Mensagem TISS {version} (versão informada em cabecalho/versaoPadrao, como no TISS "
                f"2.x e 3.x): os schemas dessa versão não estão instalados neste gateway, que valida "
                f"as versões {have} do TISS 4 (versão em cabecalho/Padrao).")
    entry = shipped.manifest()["versions"].get(version)
    not_shipped = " Nenhum pacote PyPI traz o conjunto oficial dessa versão." \
        if entry is not None and not entry.get("bundled_by") else ""
    return (f"Os schemas da versão {version} do padrão TISS não estão instalados neste gateway "
            f"(versões instaladas: {have}).{not_shipped} Para validá-la, importe-os com "
            f"'tiss-gateway schemas import <zip da ANS ou pasta do PadraoTISS {version}>' "
            "(num servidor em execução, recarregue-o depois: SIGHUP).")


_default: SchemaRegistry | None = None


def default_registry() -> SchemaRegistry:
    """The process-wide registry (so each schema compiles once per process)."""
    global _default
    if _default is None:
        _default = SchemaRegistry()
    return _default
