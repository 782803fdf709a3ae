"""The operators' lote rules (adapters.rules) as the adapters check them at acceptance."""

from __future__ import annotations

import pytest
from lxml import etree

from adapters.guias import guias_do_lote, lote_guias
from adapters.rules import (
    OPERADORAS,
    RULES,
    OperadoraRules,
    check_max_guias,
    check_tipos_aceitos,
    codigo_prestador_nao_localizado,
    preenchido,
)
from gateway.message.responses import codigos_glosa
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS
from gateway.message.validation import validate_message
from tests.factory import build_lote, build_mensagem_tiss, numero_guia_prestador
from tests.unit.adapters.support import (
    NS,
    REGISTROS,
    UNIMED_CNPJ,
    VERSOES,
    adapter,
    codes,
    guias,
    modified,
    party,
    read,
)

# ------------------------------------------------------------------------------- operator rules


def _executante(valor: str, kind: str = "codigoPrestadorNaOperadora"):
    def change(root: etree._Element) -> None:
        for contratado in root.iterfind(".//ans:dadosExecutante/ans:contratadoExecutante", NS):
            ident = contratado[0]
            ident.tag = f"{{{ANS_NS}}}{kind}"
            ident.text = valor
    return change


@pytest.mark.parametrize(("valor", "kind"), [("331872", "codigoPrestadorNaOperadora"),
                                             ("00001", "codigoPrestadorNaOperadora"),
                                             (UNIMED_CNPJ, "cnpjContratado"),
                                             ("   ", "codigoPrestadorNaOperadora")])
def test_unimed_sadt_executante_must_not_be_the_operator(registry: SchemaRegistry, valor: str,
                                                        kind: str) -> None:
    a = adapter(registry, "unimed", cnpj=UNIMED_CNPJ, codigos_proprios=("00001",))
    data = build_lote("sp-sadt", 3, party=party("unimed", codigo_na_operadora="20345"))
    assert a.criticas(read(data)) == []
    found = a.criticas(read(modified(data, _executante(valor, kind))))
    assert codes(found) == ["1311"] * 3
    assert all("campo 30" in x.message and "contratadoExecutante" in (x.location or "") for x in found)
    assert numero_guia_prestador("1", 2) in found[1].message


def test_unimed_rule_only_looks_at_sp_sadt(registry: SchemaRegistry) -> None:
    a = adapter(registry, "unimed", cnpj=UNIMED_CNPJ)
    data = build_lote("consulta", 3, party=party("unimed", codigo_na_operadora="331872"))
    assert a.criticas(read(data)) == []


def test_cassems_takes_dental_guides_only(registry: SchemaRegistry) -> None:
    a = adapter(registry, "cassems")
    found = a.criticas(read(build_lote("sp-sadt", 3, party=party("cassems"))))
    assert codes(found) == ["1301"] and "SP/SADT" in found[0].message


def test_cassems_guide_must_be_complete(registry: SchemaRegistry) -> None:
    def incomplete(root: etree._Element) -> None:
        second = guias(root)[1]
        second.remove(second.find("ans:dataTerminoTrat", NS))
        prof = second.find("ans:dadosProfissionaisResponsaveis", NS)
        prof.remove(prof.find("ans:croSolic", NS))

    a = adapter(registry, "cassems")
    message = read(modified(build_lote("odonto", 3, party=party("cassems")), incomplete))
    assert validate_message(message, registry=registry).valid  # optional in the XSD
    found = a.criticas(message)
    assert codes(found) == ["3111"]
    assert numero_guia_prestador("1", 2) in found[0].message
    assert "dataTerminoTrat" in found[0].message and "croSolic" in found[0].message


def _sem_matricula(*posicoes: int):
    """Blank the receiver's matrícula of the honorários guides at ``posicoes`` (0-based)."""
    def change(root: etree._Element) -> None:
        todas = root.xpath(".//ans:guiasTISS/*", namespaces=NS)  # a loteGuiasWS or a mensagemTISS
        for posicao in posicoes:
            todas[posicao].find("ans:dadosContratadoExecutante/ans:codigonaOperadora", NS).text = " "
    return change


def test_ipasgo_honorarios_need_the_receiving_matricula(registry: SchemaRegistry) -> None:
    a = adapter(registry, "ipasgo")
    data = build_lote("honorarios", 2, party=party("ipasgo"))
    assert a.criticas(read(data)) == []
    found = a.criticas(read(modified(data, _sem_matricula(0))))
    assert codes(found) == ["1311"] and numero_guia_prestador("1", 1) in found[0].message
    assert a.envio_parcial


@pytest.mark.parametrize("build", [build_lote, build_mensagem_tiss])  # as it is, and through a copy
def test_ipasgo_refuses_a_guide_alone(registry: SchemaRegistry, build) -> None:
    """Partial sending: a crítica about one guide refuses that guide, not the lote."""
    a = adapter(registry, "ipasgo")
    avaliacao = a.avaliar(read(modified(build("honorarios", 3, party=party("ipasgo")), _sem_matricula(1))))
    segunda = numero_guia_prestador("1", 2)
    assert avaliacao.gerais == ()
    assert list(avaliacao.por_guia) == [segunda]
    (found,) = avaliacao.por_guia[segunda]
    assert found.code == "1311" and segunda in found.message and "guiaHonorarios[2]" in (found.location or "")
    assert avaliacao.todas == [found]


def test_ipasgo_refuses_a_lote_none_of_whose_guides_is_left(registry: SchemaRegistry) -> None:
    a = adapter(registry, "ipasgo")
    data = build_lote("honorarios", 2, party=party("ipasgo"))
    avaliacao = a.avaliar(read(modified(data, _sem_matricula(0, 1))))
    assert codes(list(avaliacao.gerais)) == ["1311", "1311"] and not avaliacao.por_guia


def test_without_partial_sending_a_guides_critica_refuses_the_lote(registry: SchemaRegistry) -> None:
    a = adapter(registry, "unimed", cnpj=UNIMED_CNPJ)
    data = build_lote("sp-sadt", 3, party=party("unimed", codigo_na_operadora="20345"))
    avaliacao = a.avaliar(read(modified(data, _executante(UNIMED_CNPJ, "cnpjContratado"))))
    assert codes(list(avaliacao.gerais)) == ["1311"] * 3 and not avaliacao.por_guia


@pytest.mark.parametrize(("name", "tipo", "change"), [
    ("unimed", "sp-sadt", _executante("00001")),
    ("unimed", "sp-sadt", _executante("331872")),
    ("unimed", "sp-sadt", None),
    ("cassems", "consulta", None),
    ("cassems", "odonto", lambda root: guias(root)[0].remove(
        guias(root)[0].find("ans:senhaAutorizacao", NS))),
    ("cassems", "odonto", None),
    ("ipasgo", "honorarios", lambda root: setattr(
        guias(root)[1].find("ans:dadosContratadoExecutante/ans:codigonaOperadora", NS), "text", " ")),
])
def test_same_codes_as_the_simulated_operator(registry: SchemaRegistry, name: str, tipo: str, change) -> None:
    """The simulator is the other side: written independently, the adapter must agree with it on
    the rules it checks before sending (the sender and guide-count rules are not the adapter's)."""
    from simulator import rules
    from simulator.profile import load_profile

    profile = load_profile(name)
    data = build_lote(tipo, 3, version="4.03.00", party=party(name, codigo_na_operadora=
                                                              profile.prestadores[0].codigo_na_operadora))
    if change is not None:
        data = modified(data, change)
    message = read(data)
    a = adapter(registry, name, cnpj=profile.cnpj, codigos_proprios=profile.codigos_proprios)
    simulated = [c.codigo for c in rules.check_lote(profile, message.root, message.version)]
    assert codes(a.criticas(message)) == simulated


# ------------------------------------------------------------------------------- the rule data


def test_each_manual_sets_its_rules() -> None:
    assert {key: [rule.name for rule in regras.rules] for key, regras in OPERADORAS.items()} == {
        "capitalprev": ["max_guias_lote", "um_tipo_de_guia"],
        "pasa": ["max_guias_lote", "um_tipo_de_guia"],
        "unimed": ["max_guias_lote", "um_tipo_de_guia", "executante_sadt"],
        "cassems": ["max_guias_lote", "um_tipo_de_guia", "tipo_de_guia_aceito", "guia_completa"],
        "ipasgo": ["max_guias_lote", "um_tipo_de_guia", "honorarios_matricula"],
    }
    assert [r.limite_guias for r in OPERADORAS.values()] == [100, 100, 100, 50, 100]
    assert OPERADORAS["pasa"].max_bytes == 15_000_000  # "15MB", the smaller reading
    assert [k for k, r in OPERADORAS.items() if r.envio_parcial or r.exige_assinatura] == ["ipasgo"]


@pytest.mark.parametrize("version", ["4.01.00", *VERSOES])
def test_every_rule_code_is_in_table_38_of_every_version(version: str) -> None:
    assert {rule.code for rule in RULES} <= codigos_glosa(version)


@pytest.mark.parametrize(("fields", "message"), [
    ({"max_guias_lote": 101}, "max_guias_lote deve estar entre 1 e 100"),
    ({"max_guias_lote": 0}, "max_guias_lote deve estar entre 1 e 100"),
    ({"max_bytes": 100}, "max_bytes deve ser de ao menos 1024"),
    ({"tipos_guia": ()}, "tipos_guia não pode ser vazio"),
    ({"tipos_guia": ("odontologia",)}, "tipo de guia desconhecido 'odontologia'"),
    ({"campos_obrigatorios": {"sadt": ("x",)}}, "tipo de guia desconhecido 'sadt'"),
    ({"campos_obrigatorios": {"odonto": ("ans:dataAutorizacao",)}}, "caminho inválido 'ans:dataAutorizacao'"),
])
def test_the_rule_data_is_checked(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OperadoraRules(**fields)


def test_the_rule_data_cannot_change() -> None:
    with pytest.raises(TypeError):
        OPERADORAS["cassems"].campos_obrigatorios["consulta"] = ("x",)  # type: ignore[index]


@pytest.mark.parametrize("name", list(REGISTROS))
def test_each_adapter_reads_its_manual(registry: SchemaRegistry, name: str) -> None:
    a = adapter(registry, name)
    regras = OPERADORAS[name]
    assert a.rules is regras
    facts = ("max_guias_lote", "max_bytes", "um_tipo_de_guia_por_lote", "exige_assinatura", "envio_parcial",
             "prestador_cadastrado")
    assert {f: getattr(a, f) for f in facts} == {f: getattr(regras, f) for f in facts}
    assert a.codigos_regras == {rule.code for rule in regras.rules if not rule.by_split} | {"1203", "1206"}


def test_every_operator_takes_lotes_only_from_its_providers() -> None:
    """prestador_cadastrado where the simulated operator checks its sender (prestador_conhecido):
    every profile does, as every operator pays only the providers it credentialed."""
    from simulator.profile import load_all

    assert {key: regras.prestador_cadastrado for key, regras in OPERADORAS.items()} == {
        key: "prestador_conhecido" in profile.regras for key, profile in load_all().items()}
    assert all(regras.prestador_cadastrado for regras in OPERADORAS.values())


@pytest.mark.parametrize(("identificacao", "code"), [("codigoPrestadorNaOperadora", "1203"), ("CNPJ", "1206"),
                                                     ("CPF", "1206")])
def test_the_code_of_a_sender_the_operator_does_not_have(identificacao: str, code: str) -> None:
    assert codigo_prestador_nao_localizado(identificacao) == code


def test_the_words_of_each_rule_are_shared() -> None:
    """One text per rule: the adapter capitalizes it and names the operator, the simulated operator
    puts it in its portal's format."""
    lote = read(build_lote("consulta", 3, numero_lote="77")).root
    found = guias_do_lote(lote_guias(lote))
    (acima,) = check_max_guias("77", found, 2)
    assert acima.detalhe == "o lote 77 tem 3 guias; o limite máximo permitido por lote é de 2 guias"
    assert acima.guia is None and acima.campo == "loteGuias/guiasTISS"
    (tipo,) = check_tipos_aceitos(found, ("odonto",))
    assert tipo.detalhe == ("guias de consulta não são aceitas neste canal; "
                            "tipos aceitos: tratamento odontológico")
    assert tipo.elemento is found[0].elemento


def test_preenchido_needs_every_parent_filled() -> None:
    guia = read(build_lote("odonto", 1)).root.xpath("ans:loteGuias/ans:guiasTISS/*", namespaces=NS)[0]
    assert preenchido(guia, "dadosProfissionaisResponsaveis/croSolic")
    assert not preenchido(guia, "dadosProfissionaisResponsaveis/naoExiste")
    assert not preenchido(guia, "naoExiste/croSolic")  # no parent: not filled
