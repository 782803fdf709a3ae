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
    assert capital.enderecos == {"4.03.00": "https://ws.capitalprev.example/tiss/v4_03_00"}
    pasa = config.operadoras["331988"]
    assert pasa.versoes == ("4.01.00", "4.02.00", "4.03.00")  # taken from providers; 4.01.00 converted
    assert pasa.versoes_envio == ("4.02.00", "4.03.00") and pasa.conectada
    assert pasa.endereco("4.02.00") == "https://conecta.pasa.example/tiss/v4_02_00"
    assert pasa.endereco("4.01.00") is None
    unimed = config.operadoras["331872"]  # not integrated yet: stored only
    assert not unimed.conectada and unimed.versoes_envio == ("4.01.00", "4.02.00", "4.03.00")
    assert config.entregas.tentativas == 12 and config.entregas.consulta_max_s == 21600
    cassems = config.operadoras["413534"]  # portal only: forwarded as files, nothing to relay to
    assert cassems.por_arquivo and cassems.conectada and not cassems.web_service
    assert not capital.por_arquivo and capital.canal == "webservice"


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


def test_canal_arquivo_and_its_drop_folder(tmp_path) -> None:
    (tmp_path / "portal").mkdir()
    config = load_config(_write(tmp_path, """
[operadoras.413534]
nome = "CASSEMS"
adapter = "cassems"
canal = "arquivo"
pasta_arquivos = "portal"
"""))
    cassems = config.operadoras["413534"]
    assert cassems.pasta_arquivos == tmp_path / "portal"  # relative to the config file
    assert cassems.por_arquivo and cassems.conectada and not cassems.web_service


_CASSEMS = '[operadoras.413534]\nnome = "C"\nadapter = "cassems"\n'


@pytest.mark.parametrize(("text", "message"), [
    (_CASSEMS + 'canal = "ftp"\n', "operadoras.413534.canal"),
    (_CASSEMS + 'pasta_arquivos = "/tmp"\n', 'pasta_arquivos vale só com canal = "arquivo"'),
    (_CASSEMS + 'canal = "arquivo"\npasta_arquivos = "falta"\n', "pasta não encontrada"),
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
    # What each operator's web service takes, at the simulator's address of each version.
    assert config.operadoras["331872"].enderecos == {"4.03.00": "http://127.0.0.1:9003/tiss/v4_03_00"}
    assert config.operadoras["331988"].enderecos == {"4.02.00": "http://127.0.0.1:9002/tiss/v4_02_00",
                                                    "4.03.00": "http://127.0.0.1:9002/tiss/v4_03_00"}
    assert not any(o.conectada for o in demo_config(None).operadoras.values())
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


def test_the_demo_operators_take_the_versions_of_their_simulated_profiles() -> None:
    """serve --demo: the gateway converts what the simulated operator does not take (Unimed takes
    only 4.03.00), and sends each version to that version's address."""
    from simulator.profile import load_profile

    for operadora in demo_config().operadoras.values():
        profile = load_profile(operadora.adapter)
        assert operadora.versoes_envio == tuple(profile.versoes), operadora.nome
        assert operadora.versoes_operadora == tuple(profile.versoes)


def test_the_demo_operators_show_themselves_as_their_simulated_profiles() -> None:
    """How each operator appears in a guide (its CNPJ, its own codes): Unimed's rule refuses it as
    the SP/SADT executante at acceptance, as the simulated operator would after delivery."""
    from simulator.profile import load_profile

    for operadora in demo_config().operadoras.values():
        profile = load_profile(operadora.adapter)
        assert (operadora.cnpj, operadora.codigos_proprios) == (profile.cnpj, profile.codigos_proprios)
    assert demo_config().operadoras["331872"].codigos_proprios == ("00001",)


ENDERECOS = """
[operadoras.331988]
nome = "PASA"
adapter = "pasa"
versoes = ["4.02.00", "4.03.00"]
"""


def test_an_address_per_version(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ENDERECOS + """
[operadoras.331988.enderecos]
"4.03.00" = "https://ws.example/tiss/v4_03_00/"
"4.02.00" = "https://ws.example/tiss/v4_02_00"
"""))
    pasa = config.operadoras["331988"]
    assert pasa.enderecos == {"4.03.00": "https://ws.example/tiss/v4_03_00",
                              "4.02.00": "https://ws.example/tiss/v4_02_00"}
    assert set(pasa.versoes_operadora) == set(pasa.versoes_envio) == {"4.02.00", "4.03.00"}


def test_endpoint_is_the_address_of_an_operator_that_takes_one_version(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ENDERECOS + """versoes_operadora = ["4.03.00"]
endpoint = "https://ws.example/tiss/v4_03_00"
"""))
    pasa = config.operadoras["331988"]
    assert pasa.enderecos == {"4.03.00": "https://ws.example/tiss/v4_03_00"}
    assert pasa.versoes_envio == ("4.03.00",) and pasa.versoes == ("4.02.00", "4.03.00")
    config = load_config(_write(tmp_path, '[operadoras.331988]\nnome="P"\nadapter="pasa"\n'
                                          'versoes=["4.03.00"]\nendpoint="http://ws/tiss"\n'))
    assert config.operadoras["331988"].enderecos == {"4.03.00": "http://ws/tiss"}  # versoes: one


@pytest.mark.parametrize(("text", "message"), [
    # endpoint names one version's address: the operator takes two (versoes_operadora is versoes)
    ('endpoint = "https://ws.example/tiss"\n',
     r"operadoras.331988.endpoint é o endereço de uma só versão, e a operadora recebe 4.02.00, 4.03.00 "
     r"\(versoes_operadora, que sem valor é versoes\): dê o endereço de cada versão em "
     r"\[operadoras.331988.enderecos\], p.ex.\n\"4.02.00\" = \"https://ws.example/tiss/v4_02_00\""),
    ('versoes_operadora = ["4.02.00", "4.03.00"]\nendpoint = "https://ws.example/tiss"\n',
     r"endpoint é o endereço de uma só versão.*\(versoes_operadora\): dê"),
    ('endpoint = "https://ws.example/tiss"\n[operadoras.331988.enderecos]\n"4.03.00" = "https://x/v"\n',
     r"operadoras.331988: use endpoint \(uma só versão\) ou \[operadoras.331988.enderecos\]"),
    ('versoes_operadora = ["4.03.00"]\n[operadoras.331988.enderecos]\n"4.02.00" = "https://x/a"\n'
     '"4.03.00" = "https://x/b"\n',
     r"operadoras.331988.versoes_operadora \(4.03.00\) difere das versões de \[operadoras.331988.enderecos\] "
     r"\(4.02.00, 4.03.00\)"),
    ('[operadoras.331988.enderecos]\n"4.3" = "https://x/a"\n',
     r"operadoras.331988.enderecos: versão do Padrão TISS inválida '4.3'"),
    ('[operadoras.331988.enderecos]\n"4.03.00" = "ftp://x/a"\n',
     r"operadoras.331988.enderecos.\"4.03.00\" deve ser uma URL http\(s\)://"),
    ('[operadoras.331988.enderecos]\n', r"\[operadoras.331988.enderecos\] deve ter ao menos uma versão"),
    ("enderecos = 'https://x'\n", r"operadoras.331988.enderecos deve ser uma tabela TOML"),
    ("[operadoras.331988.enderecos]\n\"4.03.00\" = 3\n", r"enderecos.\"4.03.00\" deve ser um texto"),
])
def test_addresses_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, ENDERECOS + text))
