"""Schema sets: bundled ones verified by SHA-256, imports from folders and zips, offline compile."""

import copy
import shutil
import zipfile
from pathlib import Path

import pytest

import schemas as shipped
from gateway.message.schema_import import import_schema_set
from gateway.message.schema_registry import SchemaRegistry, SchemaSetError, missing_version_text
from tests.conftest import OFFICIAL_SCHEMAS


def test_bundled_versions_are_official(tmp_path: Path) -> None:
    registry = SchemaRegistry(tmp_path)
    assert {"4.02.00", "4.03.00"} <= set(registry.versions())
    for version in ("4.02.00", "4.03.00"):
        schema_set = registry.get(version)
        assert schema_set.hash_status().label == "oficial"
        assert "tiss==0.4.0" in schema_set.origin
    assert registry.get("4.03.00").valid_from == "2025-12-01"


def test_each_schema_compiles_once_per_process(tmp_path: Path) -> None:
    registry = SchemaRegistry(tmp_path)
    first = registry.schema("4.03.00", "loteGuiasWS")
    assert registry.schema("4.03.00", "situacaoProtocoloWS") is first
    assert registry.schema("4.03.00", "mensagemTISS") is not first


def test_bundled_set_with_a_differing_hash_is_refused(tmp_path, monkeypatch) -> None:
    altered = copy.deepcopy(shipped.manifest())
    altered["versions"]["4.03.00"]["files"]["tissGuiasV4_03_00.xsd"] = "0" * 64
    monkeypatch.setattr(shipped, "manifest", lambda: altered)
    registry = SchemaRegistry(tmp_path)
    assert registry.get("4.03.00").hash_status().label == "divergente"
    with pytest.raises(SchemaSetError, match=r"tissGuiasV4_03_00\.xsd"):
        registry.schema("4.03.00", "loteGuiasWS")


def test_import_folder_makes_version_available(tmp_path: Path) -> None:
    schema_set = import_schema_set(OFFICIAL_SCHEMAS / "4.01.00", tmp_path)
    assert schema_set.version == "4.01.00" and schema_set.official
    registry = SchemaRegistry(tmp_path)
    assert "4.01.00" in registry.versions()
    assert registry.get("4.01.00").hash_status().label == "oficial"
    assert registry.get("4.01.00").valid_from == "2022-10-01"
    registry.schema("4.01.00", "mensagemTISS")


def test_import_zip_with_nested_folders_and_hostile_names(tmp_path: Path) -> None:
    archive = tmp_path / "PadraoTISS.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for xsd in (OFFICIAL_SCHEMAS / "4.01.00").glob("*.xsd"):
            out.write(xsd, f"Padrao TISS/schemas/{xsd.name}")
        out.writestr("../../evil.xsd", "<x/>")
        out.writestr("leia-me.pdf", "not kept")
    home = tmp_path / "home"
    import_schema_set(archive, home)
    installed = home / "schemas" / "4.01.00"
    assert (installed / "tissV4_01_00.xsd").is_file()
    assert not (tmp_path / "evil.xsd").exists() and not (installed / "leia-me.pdf").exists()


def _modified_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "mod"
    shutil.copytree(OFFICIAL_SCHEMAS / "4.01.00", folder)
    guias = folder / "tissGuiasV4_01_00.xsd"
    guias.write_bytes(guias.read_bytes().replace(b"</schema>", b"<!-- x --></schema>"))
    return folder


def test_import_of_altered_official_set_needs_force(tmp_path: Path) -> None:
    folder = _modified_copy(tmp_path)
    with pytest.raises(SchemaSetError, match="difere do oficial"):
        import_schema_set(folder, tmp_path / "home")
    schema_set = import_schema_set(folder, tmp_path / "home", force=True)
    assert not schema_set.official
    assert SchemaRegistry(tmp_path / "home").get("4.01.00").hash_status().label == "registrado"


def test_imported_set_changed_on_disk_is_refused(tmp_path: Path) -> None:
    import_schema_set(OFFICIAL_SCHEMAS / "4.01.00", tmp_path)
    (tmp_path / "schemas/4.01.00/tissSimpleTypesV4_01_00.xsd").write_text("<x/>")
    registry = SchemaRegistry(tmp_path)
    with pytest.raises(SchemaSetError, match=r"tissSimpleTypesV4_01_00\.xsd"):
        registry.schema("4.01.00", "loteGuiasWS")


def test_remote_schema_location_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "remote"
    shutil.copytree(OFFICIAL_SCHEMAS / "4.01.00", folder)
    ws = folder / "tissWebServicesV4_01_00.xsd"
    ws.write_bytes(ws.read_bytes().replace(
        b'schemaLocation="tissV4_01_00.xsd"', b'schemaLocation="http://127.0.0.1:9/tissV4_01_00.xsd"'))
    with pytest.raises(SchemaSetError, match="não local"):
        import_schema_set(folder, tmp_path / "home", force=True)


def test_incomplete_set_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "incomplete"
    folder.mkdir()
    shutil.copy(OFFICIAL_SCHEMAS / "4.01.00" / "tissV4_01_00.xsd", folder)
    with pytest.raises(SchemaSetError):
        import_schema_set(folder, tmp_path / "home")
    with pytest.raises(SchemaSetError):
        import_schema_set(tmp_path / "nothing-here.txt", tmp_path / "home")


IMPORT_401 = "'tiss-gateway schemas import <zip da ANS ou pasta do PadraoTISS 4.01.00>'"


def test_missing_version_text_says_how_to_import() -> None:
    text = missing_version_text("4.01.00", ["4.02.00", "4.03.00"])
    assert IMPORT_401 in text
    assert "(versões instaladas: 4.02.00, 4.03.00)" in text
    assert "Nenhum pacote PyPI traz o conjunto oficial dessa versão." in text
    future = missing_version_text("4.04.00", [])
    assert "PadraoTISS 4.04.00>" in future and "nenhuma" in future and "PyPI" not in future


def test_missing_version_text_of_tiss_3_and_of_garbage() -> None:
    text = missing_version_text("3.05.00", ["4.03.00"])
    assert text.startswith("Mensagem TISS 3.05.00 (versão informada em cabecalho/versaoPadrao")
    assert "import" not in text
    assert missing_version_text("4.3", ["4.03.00"]) == \
        "Versão do padrão '4.3' inválida: esperado N.NN.NN (versões instaladas: 4.03.00)."
