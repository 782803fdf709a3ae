"""gateway.message.validation: versions whose schemas are not installed, TISS 2.x/3.x files."""

import re
from pathlib import Path

import pytest
from lxml import etree

from gateway.message import hashing
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.validation import validate
from tests.factory import build_lote, build_mensagem_tiss


def tiss3(version: str = "3.05.00", good_hash: bool = True) -> bytes:
    """A mensagemTISS as TISS 3 writes its version (cabecalho/versaoPadrao), hash restamped."""
    data = build_mensagem_tiss("consulta", 1, version="4.01.00").replace(
        b"<ans:Padrao>4.01.00</ans:Padrao>", f"<ans:versaoPadrao>{version}</ans:versaoPadrao>".encode())
    digest = hashing.compute(etree.fromstring(data), "ISO-8859-1") if good_hash else "0" * 32
    return re.sub(rb"<ans:hash>\w+</ans:hash>", f"<ans:hash>{digest}</ans:hash>".encode(), data)


@pytest.fixture
def bundled_only(tmp_path: Path) -> SchemaRegistry:
    return SchemaRegistry(tmp_path)


def test_a_tiss_3_file_says_its_version_and_still_reports_its_hash(bundled_only):
    report = validate(tiss3(), registry=bundled_only)
    assert not report.valid
    assert (report.kind, report.version) == ("mensagemTISS", "3.05.00")
    (finding,) = report.findings
    assert (finding.code, finding.location) == ("5028", "cabecalho/versaoPadrao")
    assert "Mensagem TISS 3.05.00" in finding.message and "não estão instalados" in finding.message
    assert report.hash is not None and report.hash.accepted and report.hash.found == report.hash.computed


def test_a_wrong_hash_of_an_unvalidated_version_is_a_finding_too(bundled_only):
    report = validate(tiss3(good_hash=False), registry=bundled_only)
    assert [f.code for f in report.findings] == ["5028", "5014"]


def test_4_01_00_without_its_schemas(bundled_only):
    report = validate(build_lote("sp-sadt", 1, version="4.01.00"), registry=bundled_only)
    (finding,) = report.findings
    assert finding.code == "5028" and finding.location == "cabecalho/Padrao"
    assert "'tiss-gateway schemas import <zip da ANS ou pasta do PadraoTISS 4.01.00>'" in finding.message
    assert report.version == "4.01.00" and report.hash is not None and report.hash.accepted
