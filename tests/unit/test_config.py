"""The TOML configuration: the documented example, the demo, and clear errors."""

from pathlib import Path

import pytest

from gateway.config import Config, ConfigError, MiB, demo_config, load_config, parse_config
from gateway.message import hashing
from gateway.message.identificacao import md5_hex
from gateway.security.senhas import confere_senha, hash_senha

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "config-example.toml"
HASH = hash_senha(md5_hex("x"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_parses() -> None:
    config = load_config(EXAMPLE)
    assert config.source == EXAMPLE
    assert config.gateway.public_base_url == "https://tiss.example.com.br"
    assert config.gateway.max_message_bytes == 15 * MiB
    assert set(config.operadoras) == {"329665", "331988", "331872", "413534", "424188"}
    capital = config.operadoras["329665"]
    assert capital.versoes == ("4.02.00", "4.03.00")
    assert capital.hash_policy().accepted == frozenset({"declared", "utf-8", "iso-8859-1"})
    assert config.operadoras["331872"].versoes == ("4.01.00", "4.02.00", "4.03.00")
    clinica, maria = config.prestadores
    assert clinica.documento == "11222333000181" and clinica.tipo_documento == "CNPJ"
    assert confere_senha(clinica.senha_hash, md5_hex("exemplo"))
    assert maria.tipo_documento == "CPF" and maria.senha_hash is None
    assert maria.codigos == {"424188": "5012377"}
    assert "scrypt" not in repr(config)  # hashes stay out of logs
    assert capital.versoes_envio == ("4.03.00",) and capital.timeout_s == 30
    assert config.operadoras["331988"].versoes_envio == ("4.01.00", "4.02.00", "4.03.00")
    assert config.entregas.tentativas == 12 and config.entregas.consulta_max_s == 21600


def test_delivery_settings_and_signing_files(tmp_path) -> None:
    (tmp_path / "k.pem").write_text("key")
    (tmp_path / "c.pem").write_text("cert")
    config = load_config(_write(tmp_path, """
[entregas]
tentativas = 3
espera_inicial_s = 0.5
[operadoras.424188]
nome = "IPASGO"
adapter = "ipasgo"
assinatura_chave = "k.pem"
assinatura_certificados = "c.pem"
cnpj = "11.222.333/0001-81"
codigos_proprios = ["00001"]
"""))
    ipasgo = config.operadoras["424188"]
    assert ipasgo.assinatura_chave == tmp_path / "k.pem"  # relative to the config file
    assert (ipasgo.cnpj, ipasgo.codigos_proprios) == ("11222333000181", ("00001",))
    assert (config.entregas.tentativas, config.entregas.espera_inicial_s) == (3, 0.5)


@pytest.mark.parametrize(("text", "message"), [
    ("[entregas]\ntentativas = 0\n", "entregas.tentativas"),
    ("[entregas]\nreserva = 1\n", "quis dizer 'reserva_s'"),
    ('[operadoras.424188]\nnome = "I"\nadapter = "ipasgo"\nassinatura_chave = "falta.pem"\n'
     'assinatura_certificados = "falta.pem"\n', "arquivo não encontrado"),
    ('[operadoras.424188]\nnome = "I"\nadapter = "ipasgo"\ncnpj = "123"\n', "operadoras.424188.cnpj"),
])
def test_delivery_settings_errors_name_the_key(tmp_path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_defaults_without_a_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TISS_GATEWAY_HOME", str(tmp_path))
    monkeypatch.delenv("TISS_GATEWAY_CONFIG", raising=False)
    config = load_config(None)
    assert config == Config()
    assert config.gateway.database_url is None and config.gateway.public_base_url is None
    assert (config.gateway.lockout_attempts, config.gateway.lockout_minutes) == (5, 30)
    assert config.gateway.fault_http_status == 500
    (tmp_path / "config.toml").write_text('[gateway]\nlockout_minutes = 10\n')
    assert load_config(None).gateway.lockout_minutes == 10
    other = tmp_path / "other.toml"
    other.write_text("")
    monkeypatch.setenv("TISS_GATEWAY_CONFIG", str(other))  # the variable wins over <home>/config.toml
    assert load_config(None).gateway.lockout_minutes == 30


def test_demo_config() -> None:
    config = demo_config()
    assert {r: o.adapter for r, o in config.operadoras.items()} == {
        "329665": "capitalprev", "331988": "pasa", "331872": "unimed", "413534": "cassems",
        "424188": "ipasgo"}
    assert all(o.versoes == ("4.01.00", "4.02.00", "4.03.00") for o in config.operadoras.values())
    assert all(o.registro_ans == r for r, o in config.operadoras.items())
    (demo,) = config.prestadores
    assert (demo.documento, demo.login) == ("11222333000181", "demo")
    assert confere_senha(demo.senha_hash, md5_hex("demo"))
    assert set(demo.codigos) == set(config.operadoras)


@pytest.mark.parametrize(("text", "message"), [
    ("[gateway]\nlockout_attempt = 3\n",
     r"chave desconhecida 'gateway.lockout_attempt' .*'lockout_attempts'"),
    ("[gatway]\n", r"chave desconhecida 'gatway'.*'gateway'"),
    ("[operadoras.32966]\nnome='X'\nadapter='x'\n", r"operadoras.32966.*6 dígitos"),
    ("[operadoras.ABCDEF]\nnome='X'\nadapter='x'\n", r"6 dígitos"),
    ("[operadoras.329665]\nnome='X'\nadapter='x'\nhash_aceito=['declared','md5-upper']\n",
     r"operadoras.329665.hash_aceito: variante de hash desconhecida 'md5-upper'"),
    ("[operadoras.329665]\nnome='X'\nadapter='x'\nhash_emitido='sha1'\n", r"hash_emitido.*'sha1'"),
    ("[operadoras.329665]\nnome='X'\nadapter='x'\nversoes=['4.3']\n", r"versão do Padrão TISS inválida"),
    ("[operadoras.329665]\nnome='X'\n", r"operadoras.329665.adapter é obrigatório"),
    ("[operadoras.329665]\nnome='X'\nadapter='x'\nendpoint='ftp://x'\n", r"endpoint deve ser uma URL"),
    ("[[prestadores]]\ndocumento='11222333000182'\nnome='X'\nlogin='x'\n",
     r"prestadores\[0\].documento: CNPJ inválido \(dígitos verificadores"),
    ("[[prestadores]]\ndocumento='52998224724'\nnome='X'\nlogin='x'\n", r"CPF inválido"),
    ("[[prestadores]]\ndocumento='11222333000181'\nnome='X'\nlogin='x'\nsenha='demo'\n",
     r"chave desconhecida 'prestadores\[0\].senha' .*'senha_hash'"),
    ("[[prestadores]]\ndocumento='11222333000181'\nnome='X'\nlogin='x'\nsenha_hash='abc'\n",
     r"senha_hash: .*scrypt"),
    ("[[prestadores]]\ndocumento='11222333000181'\nnome='X'\nlogin='x'\ncodigos={329665='1'}\n",
     r"operadora 329665 não está em \[operadoras\]"),
    ("[[prestadores]]\ndocumento='11222333000181'\nnome='X'\nlogin='x'\n"
     "[[prestadores]]\ndocumento='52998224725'\nnome='Y'\nlogin='x'\n", r"login 'x' repetido"),
    ("[gateway]\nfault_http_status = 418\n", r"fault_http_status deve ser um de"),
    ("[gateway]\nmax_message_bytes = 'big'\n", r"max_message_bytes deve ser um número inteiro"),
    ("[gateway]\nlockout_attempts = 0\n", r"lockout_attempts deve estar entre 1"),
    ("[gateway]\ndatabase_url = 'mysql://x'\n", r"database_url deve começar com"),
    ("[gateway\n", r"TOML inválido"),
])
def test_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(info.value).startswith(str(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="não foi possível ler"):
        load_config(tmp_path / "nope.toml")


def test_full_prestador_entry(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, f"""
[gateway]
database_url = "postgresql://tiss@db/tiss"
fault_http_status = 500

[operadoras.424188]
nome = "IPASGO"
adapter = "ipasgo"
hash_aceito = ["trimmed", "trimmed", "utf-8"]
hash_emitido = "iso-8859-1"

[[prestadores]]
documento = "529.982.247-25"
nome = "Dra. Maria"
login = "maria"
senha_hash = "{HASH}"
codigos = {{ 424188 = " 5012377 " }}
"""))
    assert config.gateway.database_url == "postgresql://tiss@db/tiss"
    ipasgo = config.operadora("424188")
    assert ipasgo.hash_aceito == ("trimmed", "utf-8") and ipasgo.hash_emitido == "iso-8859-1"
    assert ipasgo.hash_policy().accepted == frozenset({hashing.DECLARED, "trimmed", "utf-8"})
    (maria,) = config.prestadores
    assert maria.documento == "52998224725" and maria.codigos == {"424188": "5012377"}
    assert parse_config({}) == Config()
