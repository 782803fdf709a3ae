"""``tiss-gateway db`` and ``tiss-gateway prestador``, and how every command opens the database,
run as separate processes."""

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.pool import NullPool

from gateway.cli.db_cmd import display_url
from gateway.storage import migrate
from gateway.storage.db import make_engine, sqlite_file

SENHA = "Segredo-Muito-Forte-123"
SENHA_STDIN = "outra senha com espaços"


def cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TISS_GATEWAY_CONFIG"}
    env["TISS_GATEWAY_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def cli_many(home: Path, commands: Sequence[Sequence[str]], *,
             stdin: str | None = None) -> list[subprocess.CompletedProcess[str]]:
    """``cli`` for each command, a few at a time (each is a Python start-up)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: cli(home, *args, stdin=stdin), commands))


def test_db_upgrade_default_sqlite(tmp_path: Path) -> None:
    home = tmp_path / "home"
    before = cli(home, "db", "current")
    assert before.returncode == 1 and "nenhuma (o arquivo não existe)" in before.stdout
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


# --- opening the database: commands that only read never create nor migrate it ---------------------

READS = [("lote", "list"), ("entregas", "list"), ("protocolo", "show", "1"), ("usuario", "list"),
         ("prestador", "list"), ("prune", "--dry-run")]
WRITES = [("db", "upgrade"), ("prestador", "add", "--documento", "11222333000181", "--nome", "C",
                              "--login", "c", "--senha", SENHA),
          ("prestador", "disable", "c"), ("usuario", "add", "u", "--nome", "U", "--papel", "admin",
                                           "--senha-stdin"),
          ("entregas", "retry", "--all"), ("prune",), ("worker",)]


def _failed_clearly(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit status 2 and one line on stderr naming ``words``."""
    assert result.returncode == 2, (result.args, result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (result.args, result.stderr)


def _tables(url: str) -> set[str]:
    engine = make_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_read_commands_never_create_a_database(tmp_path: Path) -> None:
    """A mistyped SQLite path (or a home without a database) is an error, and no file is left."""
    home, typo = tmp_path / "home", tmp_path / "typo.sqlite"
    runs = cli_many(home, [*((*c, "--database", f"sqlite:///{typo}") for c in READS), *READS[:2]])
    for result in runs:
        _failed_clearly(result, "não existe", "tiss-gateway db upgrade")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    # Writing keeps migrating first (documented): the database is created.
    written = cli(home, *WRITES[1], "--database", f"sqlite:///{typo}")
    assert written.returncode == 0, written.stderr
    assert cli(home, "lote", "list", "--database", f"sqlite:///{typo}").stdout.strip() == "nada encontrado"


def test_read_commands_refuse_a_schema_behind_without_ddl(tmp_path: Path, empty_database_url: str) -> None:
    url = empty_database_url
    path = sqlite_file(url)
    if path is not None:
        Path(path).touch()  # what `lote list` on a typo used to leave: an empty file
    database = ("--database", url)
    for result in cli_many(tmp_path, [(*c, *database) for c in READS]):
        _failed_clearly(result, "não tem o schema do gateway", "tiss-gateway db upgrade")
    assert _tables(url) == set()

    migrate.upgrade(url, revision="0003")
    for result in cli_many(tmp_path, [(*c, *database) for c in READS]):
        _failed_clearly(result, "na revisão 0003", f"usa a {migrate.head()}", "tiss-gateway db upgrade")
    assert not migrate.is_current(url)
    behind = cli(tmp_path, "db", "current", *database)
    assert behind.returncode == 1 and "revisão 0003" in behind.stdout and not migrate.is_current(url)

    added = cli(tmp_path, *WRITES[1], *database)  # a write migrates first
    assert added.returncode == 0, added.stderr
    assert migrate.is_current(url)
    listed = cli(tmp_path, "prestador", "list", "--json", *database)
    assert listed.returncode == 0 and [r["login"] for r in json.loads(listed.stdout)] == ["c"]


@pytest.mark.parametrize(("url", "said"), [("mysql://tiss:topsecret@db/tiss", "banco não suportado: mysql://"),
                                           ("nonsense", "URL de banco inválida")])
def test_an_unsupported_url_is_one_line_for_every_command(tmp_path: Path, url: str, said: str) -> None:
    commands = [*READS, *WRITES, ("db", "current")]
    runs = cli_many(tmp_path / "home", [(*c, "--database", url) for c in commands], stdin=SENHA + "\n")
    for result in runs:
        _failed_clearly(result, said, "sqlite:///")
        assert "topsecret" not in result.stderr
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
