"""gateway.message.validation: versions whose schemas are not installed, TISS 2.x/3.x files."""

import re
from pathlib import Path

import pytest
from lxml import etree

from gateway.message import hashing
from gateway.message.findings import MAX_FINDINGS, error, first_of
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.validation import TREE_MAX_ELEMENTS, validate
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


# --- what a message with many errors costs: bounded (issue 16) --------------------------------------

def with_items(data: bytes, item: bytes, count: int) -> bytes:
    """``data`` (an SP/SADT lote) with ``count`` copies of ``item`` before its first procedure."""
    return data.replace(b"<ans:procedimentosExecutados>", b"<ans:procedimentosExecutados>" + item * count, 1)


def test_many_attributes_are_one_finding_without_schema_validation() -> None:
    attributes = b" ".join(b'x%d="1"' % i for i in range(50_000))
    data = build_lote("sp-sadt", 1).replace(b"<ans:loteGuias>", b"<ans:loteGuias " + attributes + b">", 1)
    report = validate(data)
    schema = [f for f in report.findings if f.code == "5001"]
    assert len(schema) == 1
    assert "Mensagem com 50000 atributos (o primeiro em loteGuias: x0, x1, x2...)" in schema[0].message
    assert (schema[0].location, schema[0].line) == ("/loteGuiasWS/loteGuias", 2)


def test_a_few_attributes_are_left_to_the_schema() -> None:
    data = build_lote("sp-sadt", 1).replace(b"<ans:loteGuias>", b'<ans:loteGuias a="1" b="2">', 1)
    messages = [f.message for f in validate(data).findings if f.code == "5001"]
    assert len(messages) == 2 and all("The attribute" in m for m in messages)


def test_many_errors_in_a_small_tree_are_the_first_100_and_a_count() -> None:
    data = with_items(build_lote("sp-sadt", 1), b"<ans:procedimentoExecutado/>", 300)  # 300 < 500 wide
    findings = [f for f in validate(data).findings if f.code == "5001"]
    assert len(findings) == MAX_FINDINGS + 1
    assert all(f.location and f.location.endswith(f"procedimentoExecutado[{i + 1}]")
               for i, f in enumerate(findings[:MAX_FINDINGS]))
    assert findings[-1].message == "E mais 200 críticas não listadas (total 300)."


def test_many_errors_in_a_large_tree_stop_at_100() -> None:
    data = with_items(build_lote("sp-sadt", 1), b"<ans:procedimentoExecutado/>", 20_000)
    findings = [f for f in validate(data).findings if f.code == "5001"]
    assert len(findings) == MAX_FINDINGS + 1
    assert all("procedimentoExecutado': Missing child element(s)" in f.message for f in findings[:-1])
    assert findings[-1].message.startswith("Verificação interrompida após 100 críticas")


def test_a_large_valid_lote_is_valid_and_a_few_errors_in_it_are_located() -> None:
    big = build_lote("resumo-internacao", 60)  # > TREE_MAX_ELEMENTS elements: validated streaming
    root = etree.fromstring(big)
    assert int(root.xpath("count(//*)")) > TREE_MAX_ELEMENTS
    report = validate(big)
    assert report.valid, report.findings[:3]
    wrong = re.sub(rb"<ans:numeroLote>\d+</ans:numeroLote>", b"<ans:numeroLote>x" + b"1" * 20
                   + b"</ans:numeroLote>", big)
    (finding,) = [f for f in validate(wrong).findings if f.code == "5001"]
    assert "numeroLote" in finding.message and finding.location.endswith("ans:numeroLote")
    assert finding.line is not None


@pytest.mark.parametrize("count", [150, 50])
def test_streaming_and_tree_validation_agree(count: int) -> None:
    """A wide parent (more than TREE_MAX_CHILDREN children) goes the streaming way; its errors are
    those of tree validation (few: located by the tree)."""
    good = re.search(rb"<ans:procedimentoExecutado>.*?</ans:procedimentoExecutado>", build_lote("sp-sadt", 1),
                     re.S).group(0)
    data = with_items(build_lote("sp-sadt", 1), good * 600 + b"<ans:procedimentoExecutado/>" * count, 1)
    findings = [f for f in validate(data).findings if f.code == "5001"]
    if count >= MAX_FINDINGS:
        assert len(findings) == MAX_FINDINGS + 1 and findings[-1].location is None
    else:
        assert len(findings) == count and all(f.location for f in findings)


def test_first_of_caps_once() -> None:
    many = [error("5001", f"erro {i}") for i in range(250)]
    capped = first_of(many)
    assert [f.message for f in capped[:2]] == ["erro 0", "erro 1"]
    assert len(capped) == 101 and capped[-1].message == "E mais 150 críticas não listadas (total 250)."
    assert first_of(capped) == capped
    assert first_of(many[:101]) == many[:101]  # a count of one would cost as much as the one
    assert first_of(iter(many), 10)[-1].message == "E mais 240 críticas não listadas (total 250)."


def test_an_encoding_tiss_does_not_take_is_a_finding() -> None:
    data = build_lote("sp-sadt", 1, encoding="UTF-8").decode("utf-8")
    utf16 = data.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    (finding,) = validate(utf16).findings
    assert finding.code == "5001" and "UTF-16" in finding.message
