"""Simulated operator profiles (data from the manuals) and the rules that need code."""

from __future__ import annotations

from dataclasses import replace
from importlib.resources import files

import pytest
from lxml import etree

from adapters.rules import OPERADORAS
from gateway.config import DEMO_CNPJ, DEMO_OPERADORAS
from gateway.message import hashing
from gateway.message.identificacao import md5_hex
from gateway.message.reader import read
from gateway.message.responses import codigos_glosa
from gateway.message.services import ANS_NS
from simulator import rules
from simulator.profile import (
    PROFILE_KEYS,
    Profile,
    ProfileError,
    load_all,
    load_profile,
    parse_profile,
)
from simulator.rules import Critica, check_lote, guias_recusadas, lote_recusado
from tests.factory import Party, build_lote, build_mensagem_tiss, numero_guia_prestador

NS = {"ans": ANS_NS}
VERSIONS = ("4.02.00", "4.03.00")
REGISTROS = {"capitalprev": "329665", "pasa": "331988", "unimed": "331872", "cassems": "413534",
             "ipasgo": "424188"}
CODIGOS_DEMO = {adapter: codigo for _registro, _nome, adapter, codigo in DEMO_OPERADORAS}


def _party(key: str, *, codigo: bool = False, cnpj: str = DEMO_CNPJ) -> Party:
    return Party(cnpj=cnpj, registro_ans=REGISTROS[key],
                 codigo_na_operadora=CODIGOS_DEMO[key] if codigo else None)


def _lote(key: str, guide_type: str, n: int = 3, *, version: str = "4.03.00", **party) -> etree._Element:
    """A schema-valid loteGuiasWS from the demo provider to ``key``, parsed as the operator would."""
    return read(build_lote(guide_type, n, version=version, party=_party(key, **party))).root


def _check(key: str, root: etree._Element, version: str) -> list[Critica]:
    return check_lote(load_profile(key), root, version)


def _guias(root: etree._Element) -> list[etree._Element]:
    return root.xpath("ans:loteGuias/ans:guiasTISS/*", namespaces=NS)


def _remove(parent: etree._Element, path: str) -> None:
    found = parent.xpath(path, namespaces=NS)
    assert found, f"nothing at {path}"
    for element in found:
        element.getparent().remove(element)


def _set(parent: etree._Element, path: str, text: str) -> None:
    found = parent.xpath(path, namespaces=NS)
    assert found, f"nothing at {path}"
    for element in found:
        element.text = text


# ----------------------------------------------------------------------------------- loading


def test_load_all_five_profiles_in_order() -> None:
    profiles = load_all()
    assert tuple(profiles) == PROFILE_KEYS == ("capitalprev", "pasa", "unimed", "cassems", "ipasgo")
    for key, profile in profiles.items():
        assert isinstance(profile, Profile)
        assert profile.key == key
        assert profile.registro_ans == REGISTROS[key]


def test_unknown_profile_key() -> None:
    with pytest.raises(ProfileError, match="operadora simulada desconhecida 'bradesco'"):
        load_profile("bradesco")


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_demo_provider_is_known_by_every_profile(key: str) -> None:
    profile = load_profile(key)
    demo = profile.prestador_por_login("demo")
    assert demo is not None
    assert demo.documento == DEMO_CNPJ
    assert demo.codigo_na_operadora == CODIGOS_DEMO[key]  # the same codes as gateway/config.py
    assert profile.prestador_por_documento("11.222.333/0001-81") is demo
    assert profile.prestador_por_codigo(CODIGOS_DEMO[key]) is demo
    assert demo.confere("demo", md5_hex("demo").upper())  # senhaPrestador = MD5 hex of the password
    assert not demo.confere("demo", md5_hex("outra"))
    assert "senha" not in repr(demo)  # the password stays out of logs


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_flow_is_ordered_and_ends_in_payment(key: str) -> None:
    profile = load_profile(key)
    horas = [e.apos_horas for e in profile.status]
    assert horas == sorted(horas) and len(set(horas)) == len(horas) and horas[0] == 0
    assert profile.status[0].status_tiss == 1 and profile.status[-1].status_tiss == 6
    assert all(1 <= e.status_tiss <= 10 for e in profile.status)
    assert profile.status_glosa_total.status_tiss == 4
    assert profile.status_recusa.status_tiss == 7
    assert 2 <= profile.horas_analise < profile.horas_pagamento <= 24 * 30  # hours to days
    # a lote glosado in full stops at 4 once analysed, and never reaches payment
    assert profile.etapa_em(profile.horas_pagamento + 1, glosa_total=True) == profile.status_glosa_total
    assert profile.etapa_em(profile.horas_analise - 0.01, glosa_total=True).status_tiss in (1, 2)
    assert profile.etapa_em(10_000).status_tiss == 6
    assert profile.etapa_em(0) == profile.status[0]


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_every_code_exists_in_table_38_of_the_accepted_versions(key: str) -> None:
    profile = load_profile(key)
    codes = {*profile.glosa.codigos, *(r.codigo for r in profile.elegibilidade),
             *profile.autorizacao.negados.values()}
    codes |= {c for nome in profile.regras for c in rules.REGRAS[nome].codigos}
    for version in profile.versoes:
        assert codes <= codigos_glosa(version)
    assert set(profile.hash_aceito) <= set(hashing.VARIANTS) and profile.hash_variante in hashing.VARIANTS


def test_capitalprev_shows_the_nine_statuses_of_its_manual() -> None:
    profile = load_profile("capitalprev")
    nomes = [e.nome for e in profile.status]
    nomes += [profile.status_glosa_total.nome, profile.status_recusa.nome, profile.status_nao_enviado]
    assert sorted(nomes) == sorted([
        "Não enviado para operadora", "Necessário ajuste no lote", "Em processamento", "Recebido",
        "Em análise", "Liberado para pagamento", "Encerrado sem pagamento",
        "Analisado e aguardando liberação para o pagamento", "Pagamento efetuado"])
    # "02 em análise" ... "03 - Liberado para pagamento": the manual's numbers are dm_statusProtocolo
    flow = {(e.nome, e.status_tiss) for e in profile.status}
    assert flow >= {("Em análise", 2), ("Liberado para pagamento", 3)}


def test_pasa_facts_from_its_manual() -> None:
    pasa = load_profile("pasa")
    assert pasa.max_guias_lote == 100 and pasa.max_bytes == 15 * 1024 * 1024
    assert [e.nome for e in pasa.status] == ["Enviado para a Operadora", "Em análise",
                                             "Liberado para faturamento", "Faturado", "Faturado"]
    assert pasa.demonstrativos == (2, 1)
    # análise from "Liberado para faturamento", pagamento only once the payment date has come
    assert pasa.horas_ate(pasa.demonstrativo_analise_desde) == 48
    assert pasa.horas_ate(pasa.demonstrativo_pagamento_desde) == pasa.horas_pagamento == 7 * 24
    assert pasa.nome_protocolo == "Protocolo (PEG)"


def test_operator_choices() -> None:
    profiles = load_all()
    assert "utf-8" in {p.hash_variante for p in profiles.values()}  # always-UTF-8 variant emitted
    signed = [p.key for p in profiles.values() if p.assinatura_exigida and p.assina_respostas]
    assert signed == ["ipasgo"]
    assert profiles["cassems"].max_guias_lote == 50
    assert profiles["cassems"].tipos_guia == ("odonto",) and profiles["cassems"].demonstrativos == (3,)
    assert [p.key for p in profiles.values() if p.envio_parcial] == ["ipasgo"]
    assert "executante_sadt" in profiles["unimed"].regras
    assert all(p.um_tipo_de_guia_por_lote for p in profiles.values())


def test_autorizacao_and_elegibilidade_rules_are_data() -> None:
    pasa = load_profile("pasa")
    assert pasa.autorizacao.situacao("40316521") == ("3", "1426")
    assert pasa.autorizacao.situacao("40901122") == ("2", None)
    assert pasa.autorizacao.situacao("40304361") == ("1", None)
    assert {(r.sufixo, r.codigo) for r in pasa.elegibilidade} == {("0000", "1001"), ("9999", "1017")}


# ----------------------------------------------------------------------------- strict validation


def _pasa_text() -> str:
    return files("simulator.profiles").joinpath("pasa.toml").read_text(encoding="utf-8")


def _mutated(old: str, new: str) -> str:
    text = _pasa_text()
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("max_bytes = 15728640", "max_byte = 15728640",
     "pasa.toml: chave desconhecida 'max_byte' (quis dizer 'max_bytes'?)"),
    ("protocolo_inicial = 48760", 'protocolo_inicial = "48760"',
     "protocolo_inicial deve ser um número inteiro"),
    # the manual's rules are adapters/rules.py's (their range checks: tests/unit/adapters/test_rules.py)
    ("max_bytes = 15728640", "max_bytes = 15728640\nmax_guias_lote = 100",
     "max_guias_lote: regra do manual da operadora, definida em adapters/rules.py (OPERADORAS['pasa'])"),
    ("assina_respostas = false", "assina_respostas = 0", "assina_respostas deve ser true ou false"),
    ("max_bytes = 15728640", "max_bytes = 14000000", "max_bytes 14000000 abaixo do tamanho máximo de arquivo "
                                                     "do manual da operadora (15000000 bytes"),
    ('cnpj = "39419809000198"', "", "cnpj é obrigatório"),
    ('cnpj = "39419809000198"', 'cnpj = "39419809000199"', "cnpj '39419809000199' inválido"),
    ('registro_ans = "331988"', 'registro_ans = "33198"', "registro_ans deve ter 6 dígitos"),
    ('hash_variante = "utf-8"', 'hash_variante = "utf8"', "variante de hash desconhecida 'utf8'"),
    ('versoes = ["4.02.00", "4.03.00"]', 'versoes = ["4.00.01"]', "versão '4.00.01' não suportada"),
    ("formato_critica =", 'regras = ["prestador_conhecido", "sem_regra"]\nformato_critica =',
     "regras: regra do manual da operadora"),
    ("apos_horas = 6\n", "apos_horas = 80\n",
     "status[2] (Liberado para faturamento): apos_horas deve crescer"),
    ("status_tiss = 2\n", "status_tiss = 11\n", "status_tiss 11 fora de dm_statusProtocolo"),
    ("status_tiss = 2\n", "status_tiss = 4\n", "status 4 não faz parte do fluxo"),
    ("status_tiss = 6\n", "status_tiss = 3\n", "o fluxo deve terminar em 6"),
    ('codigos = ["1705",', 'codigos = ["9998",', "glosa.codigos: código '9998' não está na tabela 38"),
    # 3169 and later exist only from 4.03.00
    ('codigos = ["1705",', 'codigos = ["3171",', "código '3171' não está na tabela 38 (dm_tipoGlosa) "
                                                 "da versão 4.02.00"),
    ('"40316521" = "1426"', '"40316521" = "0001"', "autorizacao.negados.40316521: código '0001'"),
    ("taxa_parcial = 0.2", "taxa_parcial = 0.99", "taxa_parcial + glosa.taxa_total não pode passar de 1"),
    ('documento = "11222333000181"', 'documento = "11222333000180"', "não é CNPJ/CPF válido"),
    ("demonstrativo_analise_desde = 5", "demonstrativo_analise_desde = 2", "status de lote analisado"),
    ('formato_critica = "{codigo}', 'formato_critica = "{guia}', "formato_critica só pode usar"),
    ("assina_respostas = false", "assina_respostas = false\num_tipo_de_guia_por_lote = false",
     "um_tipo_de_guia_por_lote: regra do manual da operadora"),
    ("max_bytes = 15728640", "max_bytes = [15]", "max_bytes deve ser um número inteiro"),
    ('[status_recusa]\nnome = "Inválido"', '[status_recusa]\nnivel = 1\nnome = "Inválido"',
     "chave desconhecida 'status_recusa.nivel'"),
    ("[[status]]", "[[estado]]", "chave desconhecida 'estado'"),
    ("max_bytes = 15728640", "max_bytes = ", "TOML inválido"),
])
def test_strict_validation(old: str, new: str, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(_mutated(old, new), "pasa")
    assert message in str(info.value)
    assert str(info.value).startswith("pasa.toml: ")


def test_unmodified_text_parses() -> None:
    assert parse_profile(_pasa_text(), "pasa") == load_profile("pasa")


def test_an_operator_without_rules_in_adapters_is_refused() -> None:
    with pytest.raises(ProfileError, match=r"operadora 'bradesco' sem regras em adapters/rules\.py"):
        parse_profile(_pasa_text(), "bradesco")


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_the_manuals_rules_come_from_adapters(key: str) -> None:
    """One place for each manual's rule: the profile's are adapters.rules' (the adapters use them too)."""
    profile, regras = load_profile(key), OPERADORAS[key]
    assert profile.max_guias_lote == regras.limite_guias
    assert profile.tipos_guia == regras.tipos_guia
    assert profile.campos_obrigatorios == regras.campos_obrigatorios
    assert (profile.um_tipo_de_guia_por_lote, profile.envio_parcial, profile.assinatura_exigida) == (
        regras.um_tipo_de_guia_por_lote, regras.envio_parcial, regras.exige_assinatura)
    assert profile.regras == ("prestador_conhecido", *(rule.name for rule in regras.rules))
    assert regras.max_bytes is None or profile.max_bytes >= regras.max_bytes


# ------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_demo_lote_passes_every_operator(key: str, version: str) -> None:
    guide_type = "odonto" if key == "cassems" else "sp-sadt"
    for codigo in (False, True):
        assert _check(key, _lote(key, guide_type, version=version, codigo=codigo), version) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_cnpj_is_1206_as_pasa_words_it(version: str) -> None:
    root = _lote("pasa", "sp-sadt", version=version, cnpj="11444777000161")
    (critica,) = _check("pasa", root, version)
    assert critica == Critica("1206",
                              "1206 CPF / CNPJ INVÁLIDO Detalhes: prestador não localizado na operadora",
                              None, True, "cabecalho/origem/identificacaoPrestador/CNPJ")


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_code_na_operadora_is_1203(version: str) -> None:
    root = _lote("capitalprev", "consulta", version=version, codigo=True)
    _set(root, "ans:cabecalho/ans:origem/ans:identificacaoPrestador/ans:codigoPrestadorNaOperadora", "999")
    (critica,) = _check("capitalprev", root, version)
    assert critica.codigo == "1203" and critica.rejeita_lote and critica.guia is None
    assert critica.mensagem.startswith("Necessário ajuste no lote - 1203 CÓDIGO PRESTADOR INVÁLIDO")


@pytest.mark.parametrize("version", VERSIONS)
def test_sender_without_identification_is_5005(version: str) -> None:
    root = _lote("pasa", "consulta", version=version)
    _remove(root, "ans:cabecalho/ans:origem/ans:identificacaoPrestador/*")
    assert [c.codigo for c in _check("pasa", root, version)] == ["5005"]


@pytest.mark.parametrize("version", VERSIONS)
def test_max_guides_per_lote(version: str) -> None:
    assert _check("cassems", _lote("cassems", "odonto", 50, version=version), version) == []
    (critica,) = _check("cassems", _lote("cassems", "odonto", 51, version=version), version)
    assert critica.codigo == "5015" and critica.guia is None and critica.rejeita_lote
    assert "limite máximo permitido por lote é de 50 guias" in critica.mensagem
    assert _check("pasa", _lote("pasa", "consulta", 100, version=version), version) == []
    acima = _check("pasa", _lote("pasa", "consulta", 101, version=version), version)
    assert [c.codigo for c in acima] == ["5015"]


@pytest.mark.parametrize("version", VERSIONS)
def test_unimed_refuses_a_lote_that_mixes_guide_types(version: str) -> None:
    root = _lote("unimed", "consulta", 2, version=version)
    assert _check("unimed", root, version) == []
    sadt = _guias(_lote("unimed", "sp-sadt", 1, version=version))[0]
    root.find("ans:loteGuias/ans:guiasTISS", NS).append(sadt)  # what ctm_guiaLote forbids
    (critica,) = _check("unimed", root, version)
    assert critica.codigo == "1301" and critica.rejeita_lote
    assert "mistura guias de consulta e SP/SADT" in critica.mensagem


@pytest.mark.parametrize("version", VERSIONS)
def test_unimed_sadt_without_executante_field_30(version: str) -> None:
    root = _lote("unimed", "sp-sadt", 3, version=version)
    _remove(_guias(root)[1], "ans:dadosExecutante/ans:contratadoExecutante")
    (critica,) = _check("unimed", root, version)
    assert critica.codigo == "1311" and critica.rejeita_lote
    assert critica.guia == numero_guia_prestador("1", 2)
    assert "campo 30" in critica.mensagem and "médico executante" in critica.mensagem
    assert critica.campo == "dadosExecutante/contratadoExecutante"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("element", "value"), [
    ("cnpjContratado", "33187200000154"),  # the operator's CNPJ
    ("codigoPrestadorNaOperadora", "00001"),  # its own network code
    ("codigoPrestadorNaOperadora", "331872"),  # its registro ANS
])
def test_unimed_sadt_with_the_operator_as_executante(version: str, element: str, value: str) -> None:
    root = _lote("unimed", "sp-sadt", 2, version=version)
    executante = _guias(root)[0].find("ans:dadosExecutante/ans:contratadoExecutante", NS)
    executante[0].tag = f"{{{ANS_NS}}}{element}"
    executante[0].text = value
    (critica,) = _check("unimed", root, version)
    assert critica.codigo == "1311" and critica.guia == numero_guia_prestador("1", 1)
    assert "própria operadora (Unimed São José dos Campos)" in critica.mensagem


@pytest.mark.parametrize("version", VERSIONS)
def test_executante_rule_applies_to_unimed_only(version: str) -> None:
    root = _lote("pasa", "sp-sadt", 1, version=version)
    _remove(_guias(root)[0], "ans:dadosExecutante/ans:contratadoExecutante")
    assert _check("pasa", root, version) == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("campo", ["senhaAutorizacao", "dadosProfissionaisResponsaveis/croSolic",
                                   "dataTerminoTrat"])
def test_cassems_refuses_an_incomplete_guide(version: str, campo: str) -> None:
    root = _lote("cassems", "odonto", 3, version=version, codigo=True)
    _remove(_guias(root)[2], "/".join(f"ans:{step}" for step in campo.split("/")))
    (critica,) = _check("cassems", root, version)
    assert critica.codigo == "3111" and critica.rejeita_lote
    assert critica.guia == numero_guia_prestador("1", 3)
    assert f"guia {critica.guia} incompleta" in critica.mensagem and campo in critica.mensagem


@pytest.mark.parametrize("version", VERSIONS)
def test_cassems_takes_dental_guides_only(version: str) -> None:
    (critica,) = _check("cassems", _lote("cassems", "sp-sadt", 2, version=version), version)
    assert critica.codigo == "1301" and critica.guia is None
    assert "SP/SADT não são aceitas" in critica.mensagem


@pytest.mark.parametrize("version", VERSIONS)
def test_ipasgo_honorarios_need_the_receiving_matricula(version: str) -> None:
    root = _lote("ipasgo", "honorarios", 3, version=version, codigo=True)
    assert _check("ipasgo", root, version) == []
    guias = _guias(root)
    _set(guias[0], "ans:dadosContratadoExecutante/ans:codigonaOperadora", "5020011")  # a known professional
    _remove(guias[1], "ans:dadosContratadoExecutante/ans:codigonaOperadora")
    _set(guias[2], "ans:dadosContratadoExecutante/ans:codigonaOperadora", "7777777")
    sem, desconhecida = _check("ipasgo", root, version)
    assert (sem.codigo, sem.guia) == ("1311", numero_guia_prestador("1", 2))
    assert "sem a matrícula de quem receberá os honorários" in sem.mensagem
    assert (desconhecida.codigo, desconhecida.guia) == ("1203", numero_guia_prestador("1", 3))
    # partial sending: only those guides are refused, the first is accepted
    assert not sem.rejeita_lote and not desconhecida.rejeita_lote
    assert not lote_recusado([sem, desconhecida])
    recusadas = guias_recusadas([sem, desconhecida])
    assert recusadas == {numero_guia_prestador("1", 2), numero_guia_prestador("1", 3)}


@pytest.mark.parametrize("version", VERSIONS)
def test_ipasgo_still_refuses_the_whole_lote_for_lote_level_criticas(version: str) -> None:
    root = _lote("ipasgo", "honorarios", 2, version=version, cnpj="11444777000161")
    criticas = _check("ipasgo", root, version)
    assert [c.codigo for c in criticas] == ["1206", "1203", "1203"]  # the guides carry "10203040"
    assert criticas[0].rejeita_lote and lote_recusado(criticas)


def test_envio_parcial_turns_guide_criticas_into_guide_refusals() -> None:
    root = _lote("cassems", "odonto", 2, codigo=True)
    _remove(_guias(root)[0], "ans:senhaAutorizacao")
    (critica,) = _check("cassems", root, "4.03.00")
    assert critica.rejeita_lote  # CASSEMS: an incomplete guide sends the lote back
    parcial = replace(load_profile("cassems"), envio_parcial=True)
    (critica,) = check_lote(parcial, root, "4.03.00")
    assert not critica.rejeita_lote and critica.guia == numero_guia_prestador("1", 1)


def test_rules_read_the_mensagem_tiss_form_too() -> None:
    party = Party(registro_ans="331988", cnpj="11444777000161")
    root = read(build_mensagem_tiss("consulta", 2, party=party)).root
    assert [c.codigo for c in _check("pasa", root, "4.03.00")] == ["1206"]


def test_every_registered_rule_declares_codes_present_in_all_versions() -> None:
    used = {nome for p in load_all().values() for nome in p.regras}
    assert used == set(rules.REGRAS)  # no dead rule
    for regra in rules.REGRAS.values():
        assert regra.codigos
        for version in ("4.01.00", *VERSIONS):
            assert set(regra.codigos) <= codigos_glosa(version)


def test_a_rule_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registrada duas vezes"):
        rules.regra("max_guias_lote", "5015")(lambda profile, lote: [])
