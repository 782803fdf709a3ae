"""The adapter API (adapters.base): loading, what goes to the operator for each service, signing,
the operator's status names and the codes an adapter may give."""

from __future__ import annotations

import pytest
from lxml import etree

from adapters import Adapter, AdapterError, Destino, load_adapter
from adapters.base import STATUS_TISS
from adapters.ipasgo import Ipasgo
from adapters.pasa import Pasa
from gateway.config import DEMO_OPERADORAS, Operadora, demo_config
from gateway.message import hashing
from gateway.message.responses import codigos_glosa
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SERVICE_BY_REQUEST, SERVICES
from gateway.message.validation import validate_message
from gateway.security import pki, xmldsig
from tests.factory import (
    REQUEST_KINDS,
    build_lote,
    build_request,
    numero_guia_prestador,
)
from tests.unit.adapters.support import (
    AGORA,
    NS,
    REGISTROS,
    UNIMED_CNPJ,
    VERSOES,
    adapter,
    check_part,
    codes,
    guias,
    modified,
    numeros,
    party,
    preparar,
    read,
    sequenciais,
)

GUIA_ACEITA_POR = {"capitalprev": "sp-sadt", "pasa": "consulta", "unimed": "consulta", "cassems": "odonto",
                   "ipasgo": "honorarios"}

# ------------------------------------------------------------------------------- loading


@pytest.mark.parametrize(("registro", "nome", "module", "_codigo"), DEMO_OPERADORAS)
def test_load_adapter_for_every_demo_operator(registry: SchemaRegistry, registro: str, nome: str,
                                              module: str, _codigo: str) -> None:
    operadora = demo_config().operadora(registro)
    a = load_adapter(module, Destino.de_operadora(operadora), registry)
    assert isinstance(a, Adapter)
    assert type(a).__module__ == f"adapters.{module}"
    assert a.nome and a.destino.registro_ans == registro
    assert a.destino.versoes == operadora.versoes_envio
    assert a.operacoes and a.operacoes <= {s.name for s in SERVICES}
    assert a.suporta("tissLoteGuias")


def test_destino_from_the_configuration(registry: SchemaRegistry, tmp_path, gateway_leaf: pki.Leaf,
                                       ca: pki.Authority) -> None:
    if "assinatura_chave" not in Operadora.__dataclass_fields__:
        pytest.skip("gateway.config.Operadora sem arquivos de assinatura")
    (tmp_path / "key.pem").write_bytes(gateway_leaf.key_pem)
    (tmp_path / "chain.pem").write_bytes(b"".join(gateway_leaf.chain_pem))
    operadora = Operadora(registro_ans="424188", nome="IPASGO", adapter="ipasgo", hash_emitido="utf-8",
                          assinatura_chave=tmp_path / "key.pem",
                          assinatura_certificados=tmp_path / "chain.pem")
    destino = Destino.de_operadora(operadora)
    assert destino.chave_pem == gateway_leaf.key_pem
    assert destino.cadeia_pem == tuple(gateway_leaf.chain_pem) and destino.hash_variante == "utf-8"
    a = load_adapter("ipasgo", destino, registry)
    (envio,) = preparar(a, read(build_lote("consulta", 2, party=party("ipasgo"))))
    part = check_part(envio, registry, "utf-8")
    assert xmldsig.verify(part.root, ca.cert_pem).documento == "11222333000181"


@pytest.mark.parametrize("name", ["nenhuma", "base", "../pasa", "Pasa", ""])
def test_load_adapter_refuses_unknown_names(registry: SchemaRegistry, name: str) -> None:
    with pytest.raises(AdapterError):
        load_adapter(name, Destino("331988", VERSOES), registry)


def test_destino_is_checked(registry: SchemaRegistry) -> None:
    with pytest.raises(AdapterError, match="nenhuma versão"):
        load_adapter("pasa", Destino("331988", ()), registry)
    with pytest.raises(AdapterError, match="variante"):
        load_adapter("pasa", Destino("331988", VERSOES, "md5-maiusculo"), registry)
    with pytest.raises(AdapterError, match="certificado"):
        load_adapter("pasa", Destino("331988", VERSOES, chave_pem=b"k"), registry)


# ------------------------------------------------------------------------------- other services


@pytest.mark.parametrize("kind", [k for k in REQUEST_KINDS if k != "loteGuiasWS"])
def test_other_services_go_as_one_message_restamped(registry: SchemaRegistry, kind: str) -> None:
    a = adapter(registry, "unimed", ("4.03.00",))
    message = read(build_request(kind, version="4.02.00", party=party("unimed")))
    assert a.criticas(message) == []
    (envio,) = preparar(a, message)
    assert envio.servico == SERVICE_BY_REQUEST[kind].name
    assert envio.numero_lote is None and envio.guias == () and envio.sequencial == "90001"
    sent = read(envio.corpo)
    assert sent.kind == kind and sent.version == "4.03.00"
    report = validate_message(sent, registry=registry)
    assert report.valid, report.findings[:3]


class SoLotes(Pasa):
    operacoes = frozenset({"tissLoteGuias"})


def test_a_service_the_operator_does_not_take_is_a_critica(registry: SchemaRegistry) -> None:
    a = SoLotes(Destino("331988", VERSOES), registry)
    message = read(build_request("solicitacaoStatusProtocoloWS", party=party("pasa")))
    assert not a.suporta("tissSolicitacaoStatusProtocolo")
    found = a.criticas(message)
    assert codes(found) == ["5001"] and "tissSolicitacaoStatusProtocolo" in found[0].message
    with pytest.raises(AdapterError):
        preparar(a, message)


def test_a_response_is_not_sent_to_an_operator(registry: SchemaRegistry) -> None:
    data = build_lote("consulta", 1).replace(b"loteGuiasWS", b"protocoloRecebimentoWS")
    found = adapter(registry, "pasa").criticas(read(data))
    assert codes(found) == ["5001"]


# ------------------------------------------------------------------------------- sending


def test_sequenciais_are_checked(registry: SchemaRegistry) -> None:
    a = adapter(registry, "pasa")
    message = read(build_lote("consulta", 150, party=party("pasa")))
    asked: list[int] = []
    a.preparar(message, sequenciais=lambda n: asked.append(n) or sequenciais(n), agora=AGORA)
    assert asked == [2]
    with pytest.raises(AdapterError, match="2 sequenciais"):
        a.preparar(message, sequenciais=["1"], agora=AGORA)
    with pytest.raises(AdapterError, match="12 caracteres"):
        a.preparar(message, sequenciais=["1", "1234567890123"], agora=AGORA)
    with pytest.raises(AdapterError, match="repetidos"):
        a.preparar(message, sequenciais=["7", "7"], agora=AGORA)


# ------------------------------------------------------------------------------- signatures


def test_ipasgo_signs_every_part(registry: SchemaRegistry, ca: pki.Authority,
                                 gateway_leaf: pki.Leaf) -> None:
    a = adapter(registry, "ipasgo", chave_pem=gateway_leaf.key_pem, cadeia_pem=tuple(gateway_leaf.chain_pem))
    assert a.exige_assinatura
    message = read(build_lote("consulta", 150, party=party("ipasgo")))
    envios = preparar(a, message)
    assert [len(e.guias) for e in envios] == [100, 50]
    for envio in envios:
        part = check_part(envio, registry, hashing.DECLARED)
        signer = xmldsig.verify(part.root, ca.cert_pem)
        assert signer.documento == "11222333000181"
    tampered = read(envios[0].corpo.replace(b"<ans:numeroLote>1-1<", b"<ans:numeroLote>1-9<"))
    with pytest.raises(xmldsig.SignatureError) as exc:
        xmldsig.verify(tampered.root, ca.cert_pem)
    assert exc.value.codigo == xmldsig.ASSINATURA_NAO_CONFERE


def _sem_matricula(*posicoes: int):
    def change(root: etree._Element) -> None:
        for posicao in posicoes:
            guias(root)[posicao].find("ans:dadosContratadoExecutante/ans:codigonaOperadora", NS).text = " "
    return change


class IpasgoDeDuas(Ipasgo):
    max_guias_lote = 2


@pytest.mark.parametrize(("cls", "partes"), [(Ipasgo, [[1, 3, 4, 5]]), (IpasgoDeDuas, [[1, 3], [4, 5]])])
def test_ipasgo_sends_only_the_guides_it_takes(registry: SchemaRegistry, ca: pki.Authority,
                                               gateway_leaf: pki.Leaf, cls: type[Ipasgo],
                                               partes: list[list[int]]) -> None:
    """Partial sending: the guide the rules refuse (told to the provider at acceptance) is left out
    before the split, and each part is stamped, hashed and signed without it."""
    chave = {"chave_pem": gateway_leaf.key_pem, "cadeia_pem": tuple(gateway_leaf.chain_pem)}
    a = cls(Destino("424188", VERSOES, **chave), registry)
    message = read(modified(build_lote("honorarios", 5, party=party("ipasgo")), _sem_matricula(1)))
    assert list(a.avaliar(message).por_guia) == [numero_guia_prestador("1", 2)]
    envios = preparar(a, message)
    assert [list(e.guias) for e in envios] == [[numero_guia_prestador("1", i) for i in p] for p in partes]
    for envio in envios:
        part = check_part(envio, registry, hashing.DECLARED)  # the hash of what is sent
        assert xmldsig.verify(part.root, ca.cert_pem).documento == "11222333000181"
        assert numeros(part) == list(envio.guias)


def test_ipasgo_sends_nothing_of_a_lote_it_refuses_whole(registry: SchemaRegistry,
                                                         gateway_leaf: pki.Leaf) -> None:
    a = adapter(registry, "ipasgo", chave_pem=gateway_leaf.key_pem, cadeia_pem=tuple(gateway_leaf.chain_pem))
    message = read(modified(build_lote("honorarios", 2, party=party("ipasgo")), _sem_matricula(0, 1)))
    with pytest.raises(AdapterError, match="todas as guias"):
        preparar(a, message)


def test_without_partial_sending_every_guide_goes(registry: SchemaRegistry) -> None:
    """Only the operator that takes guides one by one has guides left out (the others refuse
    such a lote whole at acceptance)."""
    a = adapter(registry, "unimed", cnpj=UNIMED_CNPJ)
    data = build_lote("sp-sadt", 2, party=party("unimed", codigo_na_operadora="20345"))
    (envio,) = preparar(a, read(modified(data, _executante_cnpj(UNIMED_CNPJ))))
    assert len(envio.guias) == 2


def _executante_cnpj(cnpj: str):
    def change(root: etree._Element) -> None:
        for contratado in root.iterfind(".//ans:dadosExecutante/ans:contratadoExecutante", NS):
            contratado[0].tag, contratado[0].text = f"{{{ANS_NS}}}cnpjContratado", cnpj
    return change


# ------------------------------------------------------------------------------- the sender


@pytest.mark.parametrize("name", list(REGISTROS))
def test_a_lote_from_a_sender_the_operator_does_not_have(registry: SchemaRegistry, name: str) -> None:
    """prestador_cadastrado: the gateway has no code of the provider at the operator."""
    a = adapter(registry, name)
    message = read(build_lote(GUIA_ACEITA_POR[name], 2, party=party(name)))
    assert a.avaliar(message, remetente_cadastrado=True).todas == []
    found = a.avaliar(message, remetente_cadastrado=False).gerais
    assert codes(list(found)) == ["1206"]
    assert found[0].location == "cabecalho/origem/identificacaoPrestador/CNPJ"
    assert "Prestador não localizado na operadora" in found[0].message and a.nome in found[0].message
    por_codigo = party(name, cnpj=None, codigo_na_operadora="77")
    by_code = read(build_lote(GUIA_ACEITA_POR[name], 1, party=por_codigo))
    assert codes(a.avaliar(by_code, remetente_cadastrado=False).todas) == ["1203"]


def test_the_sender_is_checked_on_lotes_only(registry: SchemaRegistry) -> None:
    """As the operators do: other services are the operator's to answer."""
    a = adapter(registry, "pasa")
    recurso = read(build_request("loteRecursoGlosaWS", party=party("pasa")))
    assert a.avaliar(recurso, remetente_cadastrado=False).todas == []


def test_the_sender_critica_comes_first(registry: SchemaRegistry) -> None:
    a = adapter(registry, "cassems")
    found = a.avaliar(read(build_lote("sp-sadt", 2, party=party("cassems"))), remetente_cadastrado=False)
    assert codes(list(found.gerais)) == ["1206", "1301"]


def test_ipasgo_without_a_key_cannot_send(registry: SchemaRegistry) -> None:
    a = adapter(registry, "ipasgo")
    message = read(build_lote("consulta", 1, party=party("ipasgo")))
    assert a.criticas(message) == []  # a configuration problem, not the provider's
    with pytest.raises(AdapterError, match="assinatura"):
        preparar(a, message)


def test_a_configured_key_signs_and_the_providers_signature_is_replaced(
        registry: SchemaRegistry, ca: pki.Authority, gateway_leaf: pki.Leaf) -> None:
    provider = ca.issue("CLINICA SAO LUCAS", cnpj="11444777000161")
    signed = read(build_lote("consulta", 2, party=party("pasa")))
    xmldsig.sign(signed.root, provider.key_pem, provider.chain_pem)
    message = read(etree.tostring(signed.tree, encoding="ISO-8859-1", xml_declaration=True))
    plain = adapter(registry, "pasa")
    assert not plain.assina
    (envio,) = preparar(plain, message)
    assert not xmldsig.has_signature(read(envio.corpo).root)
    signing = adapter(registry, "pasa", chave_pem=gateway_leaf.key_pem,
                      cadeia_pem=tuple(gateway_leaf.chain_pem))
    (envio,) = preparar(signing, message)
    assert xmldsig.verify(read(envio.corpo).root, ca.cert_pem).documento == "11222333000181"


# ------------------------------------------------------------------------------- maps


def test_capitalprev_nine_portal_statuses(registry: SchemaRegistry) -> None:
    a = adapter(registry, "capitalprev")
    expected = {
        "Não Enviado para Operadora": 7, "Necessário ajuste no lote": 7, "Em processamento": 1,
        "Recebido": 1, "Em Analise": 2, "Liberado para pagamento": 3, "Encerrado sem pagamento": 4,
        "Analisado e aguardando liberação para o pagamento": 5, "Pagamento efetuado": 6,
    }
    assert {name: a.status_tiss(name) for name in expected} == expected
    assert a.status_tiss("02 em análise") == 2
    assert a.status_tiss("03 - Liberado para pagamento") == 3
    assert a.status_tiss(6) == 6 and a.status_tiss("6") == 6
    with pytest.raises(ValueError):
        a.status_tiss("03 - Em análise")
    with pytest.raises(ValueError):
        a.status_tiss("Arquivado")
    with pytest.raises(ValueError):
        a.status_tiss(11)


@pytest.mark.parametrize(("name", "status", "tiss"), [
    ("pasa", "Enviado para a Operadora", 1), ("pasa", "Em Análise pela Operadora", 2),
    ("pasa", "Liberado para Faturamento", 5), ("pasa", "Faturado", 3), ("pasa", "Inválido", 7),
    ("pasa", "Lote não enviado", 7), ("unimed", "Consultar protocolo", 1),
    ("unimed", "Enviar Arquivo XML", 7),
    ("cassems", "Lote enviado", 1), ("cassems", "LOTE SALVO", 7), ("ipasgo", "Baixada", 1),
    ("ipasgo", "Bloqueio judicial", 10),
])
def test_operator_statuses(registry: SchemaRegistry, name: str, status: str, tiss: int) -> None:
    assert adapter(registry, name).status_tiss(status) == tiss


@pytest.mark.parametrize("name", list(REGISTROS))
def test_every_operator_speaks_the_padrao_statuses(registry: SchemaRegistry, name: str) -> None:
    a = adapter(registry, name)
    assert all(1 <= value <= 10 for value in a.STATUS.values())
    for status, tiss in STATUS_TISS.items():
        assert a.status_tiss(status) == tiss


@pytest.mark.parametrize("name", list(REGISTROS))
def test_criticas_codes_exist_in_the_message_version(registry: SchemaRegistry, name: str) -> None:
    a = adapter(registry, name)
    declared = a.codigos_regras | {"5002", "5001", "5028", "3166"}
    for version in registry.versions():
        assert declared <= codigos_glosa(version), (version, declared - codigos_glosa(version))


@pytest.mark.parametrize(("name", "status", "nome"), [
    ("capitalprev", 1, "Em processamento"), ("capitalprev", 7, "Não enviado para operadora"),
    ("capitalprev", 5, "Analisado e aguardando liberação para o pagamento"), ("capitalprev", 2, None),
    ("pasa", 3, "Faturado"), ("pasa", 5, "Liberado para faturamento"),
    ("pasa", 2, "Em análise pela Operadora"), ("pasa", 6, None),
    ("unimed", 7, "Enviar arquivo XML"), ("unimed", 1, "Lote de guias enviado com sucesso"),
    ("cassems", 7, "Lote salvo"), ("ipasgo", 1, "Baixada"), ("ipasgo", 10, None),
])
def test_nome_status_is_the_operators_own_name(registry: SchemaRegistry, name: str, status: int,
                                               nome: str | None) -> None:
    """The first name STATUS declares for the status that is not the Padrão's label ("Recebido",
    "Em análise" restated by Capital Prev are the Padrão's, whatever their case or accents)."""
    assert adapter(registry, name).nome_status(status) == nome


@pytest.mark.parametrize("name", list(REGISTROS))
def test_nome_status_is_the_inverse_of_status(registry: SchemaRegistry, name: str) -> None:
    a = adapter(registry, name)
    for status in range(1, 11):
        nome = a.nome_status(status)
        assert nome is None or (a.STATUS[nome] == status and a.status_tiss(nome) == status)
    assert Adapter.nome_status(a, 3) == a.nome_status(3)  # class data only: no __init__ state needed


def test_an_operator_without_names_of_its_own(registry: SchemaRegistry) -> None:
    class SoPadrao(Adapter):
        nome = "Só o Padrão"

    a = SoPadrao(Destino("123456", VERSOES), registry)
    assert [a.nome_status(s) for s in range(1, 11)] == [None] * 10
    assert a.status_tiss("Encerrado sem pagamento") == 4


@pytest.mark.parametrize("name", ["conversion", "errors", "guias", "rules", "splitting"])
def test_the_shared_modules_are_not_adapters(registry: SchemaRegistry, name: str) -> None:
    with pytest.raises(AdapterError, match="inválido"):
        load_adapter(name, Destino("331988", VERSOES), registry)
