"""WSDLs of the 12 TISS web services, rendered per version, and the XSDs they import.

Templates: ``wsdl/<serviceName>.wsdl`` (package ``wsdl``), one per :data:`SERVICES` entry, made
from the official ANS 4.01.00 WSDLs name for name (definitions, messages, parts, portType,
binding, service, port; note that the file ``tissSolicitacaoStatusRecursoGlosa`` defines
``tissSolicitacaoStatusProtocoloRecurso`` and namespace ``.../tisssolicitacaostatusprotocolorecurso/``,
as ANS does). Only three things vary: the version in the WSDL namespace (``v40300``; the 4.01.00
pattern, assumed for later versions, see TISS-NOTES), the imported ``tissWebServicesV4_03_00.xsd``
location, and ``soap:address``. Templates are ``string.Template`` text, read once per process.

zeep (4.3.3) against these files, measured here:

- The XSD sets of every version (4.01.00, 4.02.00, 4.03.00) import the official
  ``xmldsig-core-schema.xsd``, whose prolog has ``<!DOCTYPE schema ... [ <!ATTLIST ...>
  <!ENTITY dsig ...> <!ENTITY % p ''> <!ENTITY % s ''> ]>``. A default ``zeep.Client`` (``Settings()``,
  i.e. ``forbid_entities=True``) refuses it: ``EntitiesForbidden(name='dsig', ...)``. That holds
  for our rendered WSDLs and for the official 4.01.00 WSDLs alike. The entities are declared but
  never used, and ``xmlns:ds`` (the ``#FIXED`` ATTLIST) is also declared on ``<schema>`` itself.
- What zeep needs: ``zeep.Client(wsdl, settings=zeep.Settings(forbid_entities=False))``. That is
  enough (``forbid_dtd`` is already False by default; zeep parses with ``resolve_entities=False``
  and lxml does not fetch the external ``XMLSchema.dtd``, so nothing goes to the network).
  ``forbid_external=True`` also works for local files (relative or absolute schemaLocation), but
  not for a WSDL served over http, whose XSD imports are http themselves.
- ``schemaLocation`` as a ``file://`` URL does not work when the WSDL is opened from a local path:
  zeep's ``force_https`` (default) rewrites it to ``https:///...``, and even with
  ``force_https=False`` its requests session has no file adapter. Use a relative ``schema_base``
  (``"schemas/"``) or an absolute path for local files, an http(s) URL when served.
- With the DOCTYPE cut out of ``xmldsig-core-schema.xsd`` (:func:`without_doctype`, same infoset:
  the canonical form is unchanged), a default ``Settings()`` client loads everything, and so does
  ``Settings(forbid_dtd=True, forbid_external=True)`` for local files.
- Load times (this machine, warm disk, all 12 services x 4.01.00/4.02.00/4.03.00): ``import zeep``
  ~0.25 s; one ``zeep.Client`` (one rendered WSDL plus the version's 7 XSDs, ~340 KB) median
  0.07-0.09 s, max ~0.3 s (first load of a process), same for every version and for the official
  4.01.00 WSDLs; over http from a local server median ~0.14 s. zeep parses every schema when the
  client is built (no cache by default); it is a per-client, not per-call, cost.

Proposal for the server: serve ``xmldsig-core-schema.xsd`` through
``schema_file(version, name, strip_doctype=True)`` so that default clients (zeep ``Settings()``;
possibly other toolkits that refuse DTDs, not checked here) load the WSDL; a later W3C revision
of this schema, as other libraries ship it, has the DOCTYPE commented out. The bytes served then
differ from the official SHA-256 for that one file only. Validation inside the gateway keeps
using the official, hashed files. If byte-identical official files must be served instead,
document for clients that zeep needs ``Settings(forbid_entities=False)``.
"""

import re
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

from lxml import etree

from gateway.message.schema_registry import SchemaRegistry, default_registry
from gateway.message.services import SERVICE_BY_NAME

_VERSION = re.compile(r"(\d)\.(\d\d)\.(\d\d)")
_VERSION_PATH = re.compile(r"v(\d)_(\d\d)_(\d\d)")
_XSD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.xsd")
_ATTR_ENTITIES = {'"': "&quot;", "'": "&apos;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def _check_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ValueError(f"versão TISS inválida: {version!r} (esperado N.NN.NN)")
    return version


def version_path(version: str) -> str:
    """URL path segment of a version: ``"4.03.00"`` -> ``"v4_03_00"``."""
    return "v" + _check_version(version).replace(".", "_")


def version_from_path(segment: str) -> str | None:
    """Inverse of :func:`version_path`; None when ``segment`` is not ``vN_NN_NN``."""
    match = _VERSION_PATH.fullmatch(segment) if isinstance(segment, str) else None
    return ".".join(match.groups()) if match else None


def web_services_xsd(version: str) -> str:
    """The XSD each service WSDL imports: ``tissWebServicesV4_03_00.xsd``."""
    return f"tissWebServicesV{_check_version(version).replace('.', '_')}.xsd"


@cache
def _template(service_name: str) -> Template:
    text = files("wsdl").joinpath(f"{service_name}.wsdl").read_text(encoding="utf-8")
    return Template(text)


@lru_cache(maxsize=128)
def render_wsdl(service_name: str, version: str, *, address: str, schema_base: str) -> bytes:
    """The WSDL of one service for one TISS version, UTF-8.

    ``address``: the full ``soap:address`` URL (``http://host:8080/tiss/v4_03_00/tissLoteGuias``);
    ``schema_base``: the prefix where the version's XSDs are served (``.../v4_03_00/schemas/``),
    so the import is ``schema_base + "tissWebServicesV4_03_00.xsd"``.
    KeyError for an unknown service, ValueError for a malformed version.
    """
    if service_name not in SERVICE_BY_NAME:
        raise KeyError(service_name)
    _check_version(version)
    if not isinstance(address, str) or not isinstance(schema_base, str):
        raise TypeError("address e schema_base devem ser str")
    text = _template(service_name).substitute(
        version=version,
        version_tag="v" + version.replace(".", ""),
        schema_location=escape(schema_base + web_services_xsd(version), _ATTR_ENTITIES),
        address=escape(address, _ATTR_ENTITIES),
    )
    return text.encode("utf-8")


def schema_file(version: str, file_name: str, registry: SchemaRegistry | None = None, *,
                strip_doctype: bool = False) -> bytes | None:
    """The bytes of one XSD of the version's schema set (what ``/tiss/v4_03_00/schemas/<file>`` serves).

    Only a plain ``*.xsd`` name (no path separator, no ``..``) of a file that belongs to the set
    (listed in its hashes and present in its directory); None otherwise, or for an unknown
    version. The set is hash-verified first (SchemaSetError if it was altered).
    ``strip_doctype``: return the file through :func:`without_doctype` (see the module notes).
    """
    if not isinstance(file_name, str) or not _XSD_NAME.fullmatch(file_name) or ".." in file_name:
        return None
    schema_set = (registry or default_registry()).get(version)
    if schema_set is None or file_name not in schema_set.expected:
        return None
    path = schema_set.directory / file_name
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    schema_set.verify()
    return _read_xsd(str(path), stat.st_mtime_ns, stat.st_size, strip_doctype)


@lru_cache(maxsize=64)
def _read_xsd(path: str, _mtime_ns: int, _size: int, strip_doctype: bool) -> bytes:
    data = Path(path).read_bytes()
    return without_doctype(data) if strip_doctype else data


_QUOTED = rb"""(?:"[^"]*"|'[^']*')"""
_DOCTYPE = re.compile(rb"<!DOCTYPE\s(?:[^\[>\"']|" + _QUOTED + rb")*(?:\[((?:[^\]\"']|" + _QUOTED
                      + rb")*)\]\s*)?>")
_ELEMENT_START = re.compile(rb"<[A-Za-z_]")
_LINE_REST = re.compile(rb"\A[ \t]*\r?\n")
# Internal-subset declarations that add nothing to the document once it is parsed (unless used,
# which the canonical comparison catches): comments, ENTITY, and ATTLIST (checked one by one).
_SUBSET_ITEM = re.compile(rb"\s+|<!--.*?-->|<!ENTITY\s(?:[^>\"']|" + _QUOTED + rb")*>"
                          rb"|<!ATTLIST\s+(\S+)((?:[^>\"']|" + _QUOTED + rb")*)>", re.S)
_ATTRIBUTE_DEF = re.compile(rb"\s*(\S+)\s+(?:\([^)]*\)|NOTATION\s*\([^)]*\)|[A-Z]+)\s+"
                            rb"(#REQUIRED|#IMPLIED|(?:#FIXED\s+)?(" + _QUOTED + rb"))")


def without_doctype(data: bytes) -> bytes:
    """``data`` with its prolog DOCTYPE (and internal subset) cut out, bytes otherwise untouched.

    Only when the DTD adds nothing to the parsed document: the internal subset holds only
    comments, entity declarations that are never used, and attribute defaults that are
    namespace declarations the document already makes (``xmldsig-core-schema.xsd``:
    ``<!ATTLIST schema xmlns:ds CDATA #FIXED "...">``, and ``<schema xmlns:ds="...">``); and the
    canonical XML (C14N) of the result is that of the original. Otherwise the original bytes.
    """
    match = _DOCTYPE.search(data)
    if match is None or _ELEMENT_START.search(data, 0, match.start()):
        return data
    head = data[:match.start()].rstrip(b" \t")
    stripped = head + _LINE_REST.sub(b"", data[match.end():], count=1)
    try:
        if _canonical(data) != _canonical(stripped):
            return data
        root = etree.fromstring(stripped, _parser())
    except etree.LxmlError:  # syntax (an entity was used), C14N
        return data
    return stripped if _subset_adds_nothing(match.group(1) or b"", root) else data


def _subset_adds_nothing(subset: bytes, root: etree._Element) -> bool:
    position = 0
    while position < len(subset):
        item = _SUBSET_ITEM.match(subset, position)
        if item is None:
            return False  # ELEMENT, NOTATION, parameter-entity reference, conditional section...
        position = item.end()
        if item.group(1) is not None and not _attlist_adds_nothing(item.group(1), item.group(2), root):
            return False
    return True


def _attlist_adds_nothing(element_name: bytes, definitions: bytes, root: etree._Element) -> bool:
    name = element_name.decode("utf-8", "replace")
    elements = [e for e in root.iter() if isinstance(e.tag, str) and _written_name(e) == name]
    position = 0
    while definitions[position:].strip():
        definition = _ATTRIBUTE_DEF.match(definitions, position)
        if definition is None:
            return False
        position = definition.end()
        value = definition.group(3)
        if value is None:  # #REQUIRED / #IMPLIED: no default
            continue
        attribute = definition.group(1).decode("utf-8", "replace")
        if attribute != "xmlns" and not attribute.startswith("xmlns:"):
            return False
        prefix = attribute.partition(":")[2] or None
        uri = value[1:-1].decode("utf-8", "replace")  # a mismatch only keeps the DTD
        if any(e.nsmap.get(prefix) != uri for e in elements):
            return False
    return True


def _written_name(element: etree._Element) -> str:
    local = etree.QName(element).localname
    return f"{element.prefix}:{local}" if element.prefix else local


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)


def _canonical(data: bytes) -> bytes:
    return etree.tostring(etree.fromstring(data, _parser()), method="c14n")
