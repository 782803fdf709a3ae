"""The CLI contract, run as a real process: output shape and exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.message import hashing, reader
from tests.conftest import OFFICIAL_SCHEMAS
from tests.factory import build_lote, build_request, envelope
from tests.unit.message.test_reader import BILLION_LAUGHS, XXE
from tests.unit.message.test_validation import tiss3


def cli(*args: str, home: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TISS_GATEWAY_HOME": str(home), **environ}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    messages = {
        "lote.xml": build_lote("sp-sadt", 5),
        "lote-utf8-envelope.xml": envelope(build_lote("consulta", 2, encoding="UTF-8")),
        "lote-401.xml": build_lote("odonto", 2, version="4.01.00"),
        "status.xml": build_request("solicitacaoStatusProtocoloWS"),
        "bad-hash.xml": build_lote("sp-sadt", 1, hash_variant="utf-8"),
        "xxe.xml": XXE,
        "laughs.xml": BILLION_LAUGHS,
        "garbage.xml": os.urandom(2048),
    }
    for name, data in messages.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in messages}


def test_validate_json_contract(files, tiss_home) -> None:
    names = ["lote.xml", "lote-utf8-envelope.xml", "lote-401.xml", "status.xml"]
    result = cli("validate", "--json", *(str(files[n]) for n in names), home=tiss_home)
    assert result.returncode == 0, result.stdout + result.stderr
    reports = json.loads(result.stdout)
    assert [r["file"] for r in reports] == [str(files[n]) for n in names]
    first = reports[0]
    assert set(first) == {"file", "valid", "version", "kind", "findings", "hash"}
    assert first["valid"] and first["version"] == "4.03.00" and first["kind"] == "loteGuiasWS"
    assert set(first["hash"]) == {"found", "computed", "variant"}
    assert first["hash"]["variant"] == "declared"
    assert reports[2]["version"] == "4.01.00"
    assert reports[3]["kind"] == "solicitacaoStatusProtocoloWS"


def test_validate_findings_exit_1_with_codes(files, tiss_home) -> None:
    result = cli("validate", "--json", str(files["lote.xml"]), str(files["bad-hash.xml"]),
                 home=tiss_home)
    assert result.returncode == 1
    bad = json.loads(result.stdout)[1]
    assert not bad["valid"]
    assert [f["code"] for f in bad["findings"]] == ["5014"]
    assert set(bad["findings"][0]) == {"code", "severity", "message", "location", "line"}
    assert bad["hash"]["variant"] == "utf-8"
    accepted = cli("validate", "--hash-variant", "utf-8", str(files["bad-hash.xml"]), home=tiss_home)
    assert accepted.returncode == 0, accepted.stdout


@pytest.mark.parametrize("name", ["xxe.xml", "laughs.xml", "garbage.xml"])
def test_hostile_files_are_findings_not_tracebacks(files, tiss_home, name) -> None:
    result = cli("validate", "--json", str(files[name]), home=tiss_home)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)[0]
    assert report["findings"][0]["code"] == "5002"
    assert "root:x:0" not in result.stdout


def test_a_tiss_3_file_names_its_version_and_keeps_its_hash(tmp_path, tiss_home) -> None:
    path = tmp_path / "tiss3.xml"
    path.write_bytes(tiss3())
    result = cli("validate", str(path), home=tiss_home)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: INVÁLIDO (mensagemTISS 3.05.00)"
    assert "[5028] erro: Mensagem TISS 3.05.00 (versão informada em cabecalho/versaoPadrao" in lines[1]
    digest = reader.read(path.read_bytes()).root.findtext(".//{*}epilogo/{*}hash")
    assert lines[2] == f"  hash: informado {digest}, calculado {digest}, variante declared"


def test_4_01_00_without_its_schemas_says_how_to_import_them(files, tmp_path) -> None:
    home = tmp_path / "home"  # only the bundled sets
    result = cli("validate", "--json", str(files["lote-401.xml"]), home=home)
    assert result.returncode == 1
    (report,) = json.loads(result.stdout)
    assert report["version"] == "4.01.00" and report["hash"]["variant"] == "declared"
    assert [f["code"] for f in report["findings"]] == ["5028"]
    assert "'tiss-gateway schemas import <zip da ANS ou pasta do PadraoTISS 4.01.00>'" in \
        report["findings"][0]["message"]
    assert cli("schemas", "import", str(OFFICIAL_SCHEMAS / "4.01.00"), home=home).returncode == 0
    assert cli("validate", str(files["lote-401.xml"]), home=home).returncode == 0


def test_unreadable_file_and_bad_usage_exit_2(tmp_path, tiss_home) -> None:
    assert cli("validate", str(tmp_path / "missing.xml"), home=tiss_home).returncode == 2
    assert cli("validate", "--no-such-flag", "x", home=tiss_home).returncode == 2
    assert cli("validate", home=tiss_home).returncode == 2
    assert cli("hash", str(tmp_path / "missing.xml"), home=tiss_home).returncode == 2


def test_human_output_is_portuguese(files, tiss_home) -> None:
    result = cli("validate", str(files["bad-hash.xml"]), home=tiss_home)
    assert "INVÁLIDO" in result.stdout and "[5014]" in result.stdout


def test_bundled_example_is_valid(tiss_home) -> None:
    result = cli("validate", "--example", home=tiss_home)
    assert result.returncode == 0, result.stdout


def test_hash_print_check_and_write(files, tiss_home) -> None:
    path = files["bad-hash.xml"]
    printed = cli("hash", str(path), home=tiss_home)
    message = reader.read(path.read_bytes())
    assert printed.returncode == 0
    assert printed.stdout.split()[0] == hashing.compute(message.root, message.encoding)
    assert cli("hash", "--check", str(path), home=tiss_home).returncode == 1
    assert cli("hash", "--check", "--variant", "utf-8", str(path), home=tiss_home).returncode == 0
    written = cli("hash", "--write", str(path), home=tiss_home)
    assert written.returncode == 0
    assert cli("hash", "--check", str(path), home=tiss_home).returncode == 0
    assert cli("validate", str(path), home=tiss_home).returncode == 0


def test_hash_write_converts_encoding(files, tiss_home) -> None:
    path = files["lote.xml"]
    assert cli("hash", "--write", "--encoding", "UTF-8", str(path), home=tiss_home).returncode == 0
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert cli("validate", str(path), home=tiss_home).returncode == 0


def test_schemas_list_and_import(tmp_path) -> None:
    home = tmp_path / "home"
    listed = cli("schemas", "list", "--json", home=home)
    assert listed.returncode == 0
    assert [r["version"] for r in json.loads(listed.stdout)] == ["4.02.00", "4.03.00"]
    human = cli("schemas", "list", home=home).stdout
    assert "4.01.00  não instalada: tiss-gateway schemas import <zip da ANS ou pasta do PadraoTISS " \
        "4.01.00>" in human
    imported = cli("schemas", "import", str(OFFICIAL_SCHEMAS / "4.01.00"), home=home)
    assert imported.returncode == 0, imported.stderr
    rows = json.loads(cli("schemas", "list", "--json", home=home).stdout)
    assert "não instalada" not in cli("schemas", "list", home=home).stdout
    assert [(r["version"], r["hashes"], r["valid_from"]) for r in rows] == [
        ("4.01.00", "oficial", "2022-10-01"), ("4.02.00", "oficial", "2025-06-01"),
        ("4.03.00", "oficial", "2025-12-01")]
    refused = cli("schemas", "import", str(tmp_path / "nothing"), home=home)
    assert refused.returncode == 2 and "recusada" in refused.stderr


@pytest.mark.parametrize(("args", "said"), [
    (("--database", "mysql://tiss:topsecret@db/tiss"), "banco não suportado: mysql://"),
    (("--database", "nonsense"), "URL de banco inválida"),
    (("--database", "postgresql://tiss:topsecret@127.0.0.1:1/tiss"),
     "não foi possível preparar o banco postgresql://tiss:***@127.0.0.1:1/tiss: connection failed"),
    (("--bind", "nonsense"), "bind inválido: 'nonsense' (use HOST:PORTA"),
    (("--bind", "127.0.0.1:99999"), "bind inválido: '127.0.0.1:99999' (use HOST:PORTA"),
    (("--bind", "gw.invalid:8080"), "bind inválido: 'gw.invalid:8080': host 'gw.invalid' desconhecido"),
    (("--demo", "--bind", "127.0.0.1:65536"), "bind inválido: '127.0.0.1:65536'"),
    (("--demo", "--simulator", "nonsense"), "--simulator inválido: 'nonsense'"),
    (("--demo", "--simulator", "127.0.0.1:65534"), "--simulator inválido: '127.0.0.1:65534'"),
])
def test_serve_refuses_a_bad_database_or_bind_in_one_line(tmp_path: Path, args: tuple[str, ...],
                                                          said: str) -> None:
    """Before anything starts: no traceback, no gunicorn retrying an address for 5 s."""
    home = tmp_path / "home"
    result = cli("serve", *args, home=home)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], result.stderr
    assert "topsecret" not in result.stderr and not (home / "gateway.sqlite").exists()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_credential_key_that_cannot_be_used_stops_serve_and_worker_at_start(tmp_path: Path,
                                                                              command: str) -> None:
    """Found at start in one line, not by the first lote (serve) or the first delivery (worker)."""
    home = tmp_path / "home"
    result = cli(command, "--demo", home=home, TISS_GATEWAY_CHAVE_CREDENCIAIS="not base64 of 32 bytes")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines()[-1] == \
        "TISS_GATEWAY_CHAVE_CREDENCIAIS: base64 de 32 bytes esperado", result.stderr
    assert not (home / "gateway.sqlite").exists()


