"""WSDL templates and renderer (gateway.soap.wsdl) against the official ANS 4.01.00 WSDLs, and zeep."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path

import pytest
import zeep
from lxml import etree
from zeep.exceptions import EntitiesForbidden

from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SERVICES, Service
from gateway.soap.wsdl import (
    render_wsdl,
    schema_file,
    version_from_path,
    version_path,
    web_services_xsd,
    without_doctype,
)
from tests.conftest import OFFICIAL_SCHEMAS

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
NS = {"w": WSDL_NS, "soap": SOAP_NS, "xs": XSD_NS}
HOST = "http://gw.example:8080"
XMLDSIG = "xmldsig-core-schema.xsd"


def official_wsdl(service: Service) -> etree._Element:
    path = OFFICIAL_SCHEMAS / "4.01.00" / f"{service.name}V4_01_00.wsdl"
    return etree.parse(str(path)).getroot()


def render(service: Service, version: str) -> tuple[etree._Element, str, str]:
    address = f"{HOST}/tiss/{version_path(version)}/{service.name}"
    schema_base = f"{HOST}/tiss/{version_path(version)}/schemas/"
    root = etree.fromstring(render_wsdl(service.name, version, address=address, schema_base=schema_base))
    return root, address, schema_base


def shape(element: etree._Element) -> tuple:
    """Everything that matters structurally, minus the two attributes allowed to differ."""
    attributes = dict(element.attrib)
    if element.tag == f"{{{SOAP_NS}}}address":
        attributes.pop("location", None)
    if element.tag == f"{{{XSD_NS}}}import":
        attributes.pop("schemaLocation", None)
    assert not (element.text or "").strip()
    children = [shape(child) for child in element if isinstance(child.tag, str)]
    return element.tag, sorted(element.nsmap.items(), key=str), sorted(attributes.items()), children


def qname(element: etree._Element, attribute: str) -> str:
    prefix, _, local = element.get(attribute).rpartition(":")
    return etree.QName(element.nsmap[prefix or None], local).text


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert len(found) == 1, path
    return found[0]


# --- templates -------------------------------------------------------------------------------


def test_one_template_per_service_and_nothing_else():
    names = {p.name for p in files("wsdl").iterdir() if p.name.endswith(".wsdl")}
    assert names == {f"{s.name}.wsdl" for s in SERVICES}
    for service in SERVICES:
        text = files("wsdl").joinpath(f"{service.name}.wsdl").read_bytes().decode("utf-8")
        assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
        for placeholder in ("$version_tag", "$schema_location", "$address"):
            assert placeholder in text, (service.name, placeholder)
        assert "4_01_00" not in text and "v40100" not in text and "\r" not in text


# --- 4.01.00 against the official WSDLs -----------------------------------------------------


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_rendered_401_matches_official(service: Service):
    official = official_wsdl(service)
    rendered, address, schema_base = render(service, "4.01.00")

    assert shape(rendered) == shape(official)
    # The only differences allowed: soap:address and the imported XSD's location.
    assert one(official, "//soap:address").get("location") is None
    assert one(rendered, "//soap:address").get("location") == address
    assert one(official, "//xs:import").get("schemaLocation") == "tissWebServicesV4_01_00.xsd"
    assert one(rendered, "//xs:import").get("schemaLocation") == schema_base + "tissWebServicesV4_01_00.xsd"
    assert one(rendered, "//xs:import").get("namespace") == ANS_NS

    # And explicitly, name for name (the definitions name is the official one: it differs from the
    # file/service name for tissSolicitacaoStatusRecursoGlosa).
    name = official.get("name")
    tns = official.get("targetNamespace")
    assert rendered.tag == f"{{{WSDL_NS}}}definitions"
    assert (rendered.get("name"), rendered.get("targetNamespace")) == (name, tns)
    assert rendered.nsmap["tns"] == tns and rendered.nsmap["ans"] == ANS_NS
    assert tns.endswith("/v40100")

    messages = {m.get("name"): m for m in rendered.xpath("w:message", namespaces=NS)}
    assert set(messages) == {f"{name}_Request", f"{name}_Response", "tissFault"}
    for message, part_name, element in (
            (f"{name}_Request", service.request_part, service.request),
            (f"{name}_Response", service.response_part, service.response),
            ("tissFault", "tissFault", "tissFaultWS")):
        part = one(messages[message], "w:part")
        assert part.get("name") == part_name
        assert qname(part, "element") == f"{{{ANS_NS}}}{element}"

    port_type = one(rendered, "w:portType")
    assert port_type.get("name") == f"{name}_PortType"
    operation = one(port_type, "w:operation")
    assert operation.get("name") == service.operation
    assert qname(one(operation, "w:input"), "message") == f"{{{tns}}}{name}_Request"
    assert qname(one(operation, "w:output"), "message") == f"{{{tns}}}{name}_Response"
    fault = one(operation, "w:fault")
    assert fault.get("name") == "TissFault" and qname(fault, "message") == f"{{{tns}}}tissFault"

    binding = one(rendered, "w:binding")
    assert binding.get("name") == f"{name}_Binding"
    assert qname(binding, "type") == f"{{{tns}}}{name}_PortType"
    soap_binding = one(binding, "soap:binding")
    assert soap_binding.get("style") == "document"
    assert soap_binding.get("transport") == "http://schemas.xmlsoap.org/soap/http"
    operation = one(binding, "w:operation")
    assert operation.get("name") == service.operation
    assert one(operation, "soap:operation").get("soapAction") == ""
    assert one(operation, "w:input/soap:body").get("use") == "literal"
    assert one(operation, "w:output/soap:body").get("use") == "literal"
    soap_fault = one(operation, "w:fault[@name='TissFault']/soap:fault")
    assert (soap_fault.get("name"), soap_fault.get("use")) == ("TissFault", "literal")

    service_element = one(rendered, "w:service")
    assert service_element.get("name") == name
    port = one(service_element, "w:port")
    assert port.get("name") == f"{name}_Port"
    assert qname(port, "binding") == f"{{{tns}}}{name}_Binding"


# --- later versions ------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["4.02.00", "4.03.00"])
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_later_versions_carry_their_version(service: Service, version: str, registry: SchemaRegistry):
    tag = "v" + version.replace(".", "")
    xsd = f"tissWebServicesV{version.replace('.', '_')}.xsd"
    official_tns = official_wsdl(service).get("targetNamespace")
    rendered, _, schema_base = render(service, version)

    tns = rendered.get("targetNamespace")
    assert tns == official_tns.replace("/v40100", f"/{tag}")
    assert rendered.nsmap["tns"] == tns
    assert b"v40100" not in etree.tostring(rendered)
    assert one(rendered, "//xs:import").get("schemaLocation") == schema_base + xsd
    assert web_services_xsd(version) == xsd

    # The imported XSD of that version exists and declares the message elements.
    declared = etree.parse(str(registry.get(version).directory / xsd)).getroot()
    names = set(declared.xpath("xs:element/@name", namespaces=NS))
    assert {service.request, service.response, "tissFaultWS"} <= names


# --- renderer details ----------------------------------------------------------------------


def test_render_is_cached_and_keyed_by_all_arguments():
    args = dict(address=f"{HOST}/a", schema_base=f"{HOST}/s/")
    first = render_wsdl("tissLoteGuias", "4.03.00", **args)
    assert render_wsdl("tissLoteGuias", "4.03.00", **args) is first
    assert render_wsdl("tissLoteGuias", "4.02.00", **args) != first
    assert render_wsdl("tissLoteGuias", "4.03.00", address=f"{HOST}/b", schema_base=f"{HOST}/s/") != first
    assert render_wsdl("tissLoteGuias", "4.03.00", address=f"{HOST}/a", schema_base=f"{HOST}/t/") != first
    assert render_wsdl("tissCancelaGuia", "4.03.00", **args) != first


def test_render_rejects_unknown_service_and_bad_version():
    with pytest.raises(KeyError):
        render_wsdl("tissNaoExiste", "4.03.00", address="x", schema_base="y")
    with pytest.raises(KeyError):  # the WSDL's inner name is not a service name of the gateway
        render_wsdl("tissSolicitacaoStatusProtocoloRecurso", "4.03.00", address="x", schema_base="y")
    for version in ("4.3.0", "v4_03_00", "4.03.00 ", ""):
        with pytest.raises(ValueError):
            render_wsdl("tissLoteGuias", version, address="x", schema_base="y")


def test_address_and_schema_base_are_escaped():
    address = f'{HOST}/tiss/v4_03_00/tissLoteGuias?a=1&b="2"<x>'
    base = f"{HOST}/s/?p=1&q='2'/"
    root = etree.fromstring(render_wsdl("tissLoteGuias", "4.03.00", address=address, schema_base=base))
    assert one(root, "//soap:address").get("location") == address
    assert one(root, "//xs:import").get("schemaLocation") == base + "tissWebServicesV4_03_00.xsd"


def test_version_path_round_trip():
    assert version_path("4.03.00") == "v4_03_00"
    assert version_path("4.01.00") == "v4_01_00"
    assert version_from_path("v4_03_00") == "4.03.00"
    for version in ("4.01.00", "4.02.00", "4.03.00"):
        assert version_from_path(version_path(version)) == version
    for segment in ("4_03_00", "v4_3_00", "v4_03_00x", "V4_03_00", "v4.03.00", "", "v4_03_00/"):
        assert version_from_path(segment) is None
    with pytest.raises(ValueError):
        version_path("4.3")


# --- schema_file ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["4.01.00", "4.02.00", "4.03.00"])
def test_schema_file_serves_the_sets_xsds(version: str, registry: SchemaRegistry):
    directory = registry.get(version).directory
    for name in registry.get(version).expected:
        assert schema_file(version, name) == (directory / name).read_bytes()
        assert schema_file(version, name, registry) == (directory / name).read_bytes()
    assert schema_file(version, web_services_xsd(version)) is not None


@pytest.mark.parametrize("name", [
    "../x.xsd", "a/b.xsd", "a\\b.xsd", "/etc/x.xsd", "..xsd", "../4.03.00/tissV4_03_00.xsd",
    "tissV4_03_00.xml", "tissV4_03_00", "tissV4_03_00.xsd.bak", "", ".xsd", "tissV4_03_00.XSD",
    "x.xsd", "tissV4_01_00.xsd",
])
def test_schema_file_rejects(name: str):
    assert schema_file("4.03.00", name) is None


def test_schema_file_rejects_wsdl_and_records_and_unknown_versions(registry: SchemaRegistry):
    directory = registry.get("4.01.00").directory
    assert (directory / "tissLoteGuiasV4_01_00.wsdl").is_file()  # copied by the import...
    assert schema_file("4.01.00", "tissLoteGuiasV4_01_00.wsdl") is None  # ...but not served
    assert schema_file("4.01.00", "import.json") is None
    assert schema_file("9.99.00", "tissV9_99_00.xsd") is None
    assert schema_file("../4.03.00", "tissV4_03_00.xsd") is None


def test_strip_doctype_only_touches_xmldsig(registry: SchemaRegistry):
    official = schema_file("4.03.00", XMLDSIG)
    assert b"<!DOCTYPE" in official and b"<!ENTITY" in official
    stripped = schema_file("4.03.00", XMLDSIG, strip_doctype=True)
    assert b"<!DOCTYPE" not in stripped and b"<!ENTITY" not in stripped
    assert stripped.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    assert (etree.tostring(etree.fromstring(official, parser), method="c14n")
            == etree.tostring(etree.fromstring(stripped, parser), method="c14n"))
    assert schema_file("4.03.00", XMLDSIG) == official  # the cache keeps both variants apart
    for name in registry.get("4.03.00").expected:
        if name != XMLDSIG:
            assert schema_file("4.03.00", name, strip_doctype=True) == schema_file("4.03.00", name)


def test_without_doctype_keeps_documents_whose_dtd_matters():
    prolog = b'<?xml version="1.0"?>\n'
    kept = [
        b'<!DOCTYPE r [<!ENTITY e "v">]>\n<r a="&e;"/>',  # entity used in an attribute
        b'<!DOCTYPE r [<!ENTITY e "v">]>\n<r>&e;</r>',  # ... in text
        b'<!DOCTYPE r [<!ATTLIST r a CDATA "d">]>\n<r/>',  # defaulted attribute
        b'<!DOCTYPE r [<!ATTLIST r xmlns:x CDATA #FIXED "u">]>\n<r/>',  # namespace only from the DTD
        b'<!DOCTYPE r [<!ELEMENT r EMPTY>]>\n<r/>',
        b'<!DOCTYPE r [<!ENTITY % p "">%p;]>\n<r/>',
        b'<r/>',
    ]
    for document in kept:
        assert without_doctype(prolog + document) == prolog + document, document
    stripped = {
        b'<!DOCTYPE r [\n <!ENTITY e "v">\n]> \n<r>x</r>': b'<r>x</r>',
        b'<!DOCTYPE r [<!ENTITY e "]>"><!-- c -->]>\n<r/>': b'<r/>',
        b'<!DOCTYPE r [<!ATTLIST r a CDATA #IMPLIED>]>\n<r/>': b'<r/>',
        b'<!DOCTYPE r SYSTEM "r.dtd">\n<r/>': b'<r/>',
    }
    for document, expected in stripped.items():
        assert without_doctype(prolog + document) == prolog + expected, document


# --- zeep ----------------------------------------------------------------------------------
# Measured: import zeep ~0.2 s; each Client (one WSDL + the 7 XSDs of a version) ~0.06-0.3 s.

LOTE = next(s for s in SERVICES if s.name == "tissLoteGuias")
STATUS = next(s for s in SERVICES if s.name == "tissSolicitacaoStatusProtocolo")


def assert_operation(client, service: Service) -> None:
    operations = client.service._binding._operations
    assert list(operations) == [service.operation]
    operation = operations[service.operation]
    assert operation.input.body.qname.text == f"{{{ANS_NS}}}{service.request}"
    assert operation.output.body.qname.text == f"{{{ANS_NS}}}{service.response}"


def write_local(tmp_path: Path, version: str, registry: SchemaRegistry, *,
                strip_doctype: bool = False) -> Path:
    """Rendered WSDLs of two services plus the version's XSDs (through schema_file) in tmp_path."""
    (tmp_path / "schemas").mkdir()
    for service in (LOTE, STATUS):
        (tmp_path / f"{service.name}.wsdl").write_bytes(render_wsdl(
            service.name, version, address=f"{HOST}/tiss/{version_path(version)}/{service.name}",
            schema_base="schemas/"))
    for name in registry.get(version).expected:
        (tmp_path / "schemas" / name).write_bytes(schema_file(version, name, strip_doctype=strip_doctype))
    return tmp_path


@pytest.mark.parametrize("version", ["4.01.00", "4.03.00"])
def test_zeep_loads_rendered_wsdl_from_local_files(tmp_path: Path, version: str, registry: SchemaRegistry):
    directory = write_local(tmp_path, version, registry)
    # The official xmldsig-core-schema.xsd declares entities: a default zeep client refuses it.
    with pytest.raises(EntitiesForbidden):
        zeep.Client(str(directory / f"{LOTE.name}.wsdl"))
    settings = zeep.Settings(forbid_entities=False)
    for service in (LOTE, STATUS):
        client = zeep.Client(str(directory / f"{service.name}.wsdl"), settings=settings)
        assert_operation(client, service)
        assert client.service._binding_options["address"].endswith(f"/{version_path(version)}/{service.name}")
    assert client.get_element(f"{{{ANS_NS}}}loteGuiasWS") is not None
    # Nothing beyond the local files is needed.
    settings = zeep.Settings(forbid_entities=False, forbid_external=True)
    assert_operation(zeep.Client(str(directory / f"{LOTE.name}.wsdl"), settings=settings), LOTE)


def test_zeep_default_settings_load_with_xmldsig_doctype_stripped(tmp_path: Path, registry: SchemaRegistry):
    directory = write_local(tmp_path, "4.03.00", registry, strip_doctype=True)
    assert_operation(zeep.Client(str(directory / f"{LOTE.name}.wsdl")), LOTE)
    strict = zeep.Settings(forbid_dtd=True, forbid_external=True)
    assert_operation(zeep.Client(str(directory / f"{STATUS.name}.wsdl"), settings=strict), STATUS)


def test_zeep_official_401_wsdl_needs_forbid_entities_false():
    path = str(OFFICIAL_SCHEMAS / "4.01.00" / "tissLoteGuiasV4_01_00.wsdl")
    with pytest.raises(EntitiesForbidden):
        zeep.Client(path)
    assert_operation(zeep.Client(path, settings=zeep.Settings(forbid_entities=False)), LOTE)


@pytest.fixture
def wsdl_server() -> Iterator[str]:
    """A stand-in for the server's GET routes: /tiss/<vN_NN_NN>/<service> and .../schemas/<file>."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            parts = self.path.split("?")[0].strip("/").split("/")
            version = version_from_path(parts[1]) if len(parts) > 1 else None
            body = None
            if version and len(parts) == 4 and parts[2] == "schemas":
                body = schema_file(version, parts[3], strip_doctype=True)
            elif version and len(parts) == 3:
                prefix = f"{base}/tiss/{parts[1]}"
                try:
                    body = render_wsdl(parts[2], version, address=f"{prefix}/{parts[2]}",
                                       schema_base=f"{prefix}/schemas/")
                except KeyError:
                    body = None
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_zeep_default_client_over_http(wsdl_server: str):
    """The proposed server behaviour: WSDL by render_wsdl, XSDs by schema_file(strip_doctype=True)."""
    client = zeep.Client(f"{wsdl_server}/tiss/v4_03_00/tissLoteGuias?wsdl")
    assert_operation(client, LOTE)
    assert client.service._binding_options["address"] == f"{wsdl_server}/tiss/v4_03_00/tissLoteGuias"
