"""``tiss-gateway db`` and ``tiss-gateway prestador``, run as separate processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.db_cmd import display_url
from gateway.storage import migrate

SENHA = "Segredo-Muito-Forte-123"
SENHA_STDIN = "outra senha com espaços"


def cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TISS_GATEWAY_CONFIG"}
    env["TISS_GATEWAY_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_db_upgrade_default_sqlite(tmp_path: Path) -> None:
    home = tmp_path / "home"
    before = cli(home, "db", "current")
    assert before.returncode == 1 and "nenhuma" in before.stdout
    assert not (home / "gateway.sqlite").exists()
    done = cli(home, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert (home / "gateway.sqlite").is_file()
    assert migrate.head() in done.stdout
    after = cli(home, "db", "current")
    assert after.returncode == 0
    assert f"revisão {migrate.head()}" in after.stdout and "atualizado" in after.stdout


def test_db_upgrade_from_config_and_option(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(f'[gateway]\ndatabase_url = "sqlite:///{tmp_path / "from-config.sqlite"}"\n')
    assert cli(tmp_path, "db", "upgrade", "--config", str(config)).returncode == 0
    assert (tmp_path / "from-config.sqlite").is_file()
    explicit = f"sqlite:///{tmp_path / 'explicit.sqlite'}"
    assert cli(tmp_path, "db", "upgrade", "--config", str(config), "--database", explicit).returncode == 0
    assert (tmp_path / "explicit.sqlite").is_file()
    assert cli(tmp_path, "db", "current", "--database", explicit).returncode == 0


def test_bad_config_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text("[gateway]\nlockout = 3\n")
    result = cli(tmp_path, "prestador", "list", "--config", str(config))
    assert result.returncode == 2
    assert "configuração inválida" in result.stderr and "gateway.lockout" in result.stderr


def test_prestador_round_trip(tmp_path: Path, database_url: str) -> None:
    db = ("--database", database_url)
    outputs: list[str] = []

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = cli(tmp_path, *args, *db, stdin=stdin)
        outputs.extend((result.stdout, result.stderr))
        return result

    added = run("prestador", "add", "--documento", "11.222.333/0001-81", "--nome", "Clínica Exemplo",
                "--login", "clinica", "--senha", SENHA, "--codigo", "329665=000123",
                "--codigo", "424188=5012377")
    assert added.returncode == 0, added.stderr
    assert "clinica" in added.stdout and "329665=000123" in added.stdout
    added = run("prestador", "add", "--documento", "52998224725", "--nome", "Dra. Maria", "--login", "maria",
                "--senha-stdin", stdin=SENHA_STDIN + "\n")
    assert added.returncode == 0, added.stderr

    duplicate = run("prestador", "add", "--documento", "12ABC34501DE35", "--nome", "X", "--login", "clinica",
                    "--senha", SENHA)
    assert duplicate.returncode == 1 and "login" in duplicate.stderr
    bad = run("prestador", "add", "--documento", "11222333000182", "--nome", "X", "--login", "x",
              "--senha", SENHA)
    assert bad.returncode == 1 and "CNPJ inválido" in bad.stderr
    bad_code = run("prestador", "add", "--documento", "12ABC34501DE35", "--nome", "X", "--login", "x",
                   "--senha", SENHA, "--codigo", "329665")
    assert bad_code.returncode == 1 and "REGISTRO=CODIGO" in bad_code.stderr

    listing = run("prestador", "list")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("clinica") and "11222333000181" in lines[0]

    as_json = run("prestador", "list", "--json")
    assert as_json.returncode == 0
    rows = json.loads(as_json.stdout)
    assert [r["login"] for r in rows] == ["clinica", "maria"]
    assert set(rows[0]) == {"login", "documento", "tipo_documento", "nome", "ativo", "tem_senha",
                            "falhas_login", "bloqueado_ate", "codigos", "criado_em"}
    assert rows[0]["codigos"] == {"329665": "000123", "424188": "5012377"}
    assert (rows[0]["tipo_documento"], rows[1]["tipo_documento"]) == ("CNPJ", "CPF")
    assert all(r["ativo"] and r["tem_senha"] and r["bloqueado_ate"] is None for r in rows)

    disabled = run("prestador", "disable", "maria")
    assert disabled.returncode == 0 and "desativado" in disabled.stdout
    assert run("prestador", "disable", "ninguem").returncode == 1
    rows = json.loads(run("prestador", "list", "--json").stdout)
    assert [r["ativo"] for r in rows] == [True, False]
    assert run("prestador", "enable", "maria").returncode == 0
    assert all(r["ativo"] for r in json.loads(run("prestador", "list", "--json").stdout))

    everything = "\n".join(outputs)
    for secret in (SENHA, SENHA_STDIN, "scrypt$"):
        assert secret not in everything


@pytest.mark.parametrize("url", ["postgresql://tiss:topsecret@db:5432/tiss",
                                 "postgresql+psycopg://tiss:topsecret@db/tiss?sslmode=require"])
def test_database_password_never_shown(url: str) -> None:
    assert "topsecret" not in display_url(url)
