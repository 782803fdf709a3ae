"""Operator adapters: lote splitting, version conversion, hash variant, signing, operator rules and maps."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import pytest
from lxml import etree

from adapters import Adapter, AdapterError, Destino, Envio, load_adapter
from adapters.base import STATUS_TISS, numero_lote_parte
from adapters.pasa import Pasa
from gateway.config import DEMO_OPERADORAS, Operadora, demo_config
from gateway.message import hashing, reader
from gateway.message.findings import Finding
from gateway.message.lote import read_lote
from gateway.message.reader import TissMessage
from gateway.message.responses import codigos_glosa
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, SERVICE_BY_REQUEST, SERVICES
from gateway.message.validation import validate_message
from gateway.security import pki, xmldsig
from tests.factory import (
    REQUEST_KINDS,
    Party,
    build_lote,
    build_mensagem_tiss,
    build_request,
    numero_guia_prestador,
)

NS = {"ans": ANS_NS}
AGORA = datetime(2026, 1, 20, 9, 30, 5)
REGISTROS = {adapter: registro for registro, _nome, adapter, _codigo in DEMO_OPERADORAS}
VERSOES = ("4.02.00", "4.03.00")
UNIMED_CNPJ = "33187200000154"


# ------------------------------------------------------------------------------- helpers


def adapter(registry: SchemaRegistry, name: str, versoes: tuple[str, ...] = VERSOES, **destino) -> Adapter:
    return load_adapter(name, Destino(REGISTROS[name], versoes, **destino), registry)


def read(data: bytes) -> TissMessage:
    return reader.read(data)


def sequenciais(n: int) -> list[str]:
    return [f"9{i:04d}" for i in range(1, n + 1)]


def preparar(a: Adapter, message: TissMessage) -> list[Envio]:
    return a.preparar(message, sequenciais=sequenciais, agora=AGORA)


def party(name: str, **kw) -> Party:
    return Party(registro_ans=REGISTROS[name], **kw)


def numeros(message: TissMessage) -> list[str]:
    return [g.numero_guia_prestador for g in read_lote(message.root).guias]


def codes(findings: list[Finding]) -> list[str | None]:
    return [x.code for x in findings]


def check_part(envio: Envio, registry: SchemaRegistry, variante: str) -> TissMessage:
    """The part parses, validates in its version, and carries the hash in ``variante``."""
    part = read(envio.corpo)
    assert part.kind == "loteGuiasWS" and not part.in_envelope
    assert part.version == envio.versao
    policy = hashing.HashPolicy.of([variante])
    report = validate_message(part, registry=registry, policy=policy)
    assert report.valid, report.findings[:3]
    assert report.hash is not None and report.hash.variant == variante and report.hash.accepted
    return part


def modified(data: bytes, change) -> bytes:
    """``data`` after ``change(root)``, hash stamped again (declared rule)."""
    tree = etree.ElementTree(etree.fromstring(data))
    change(tree.getroot())
    return hashing.rewrite(tree, tree.getroot())


def guias(root: etree._Element) -> list[etree._Element]:
    return root.xpath("ans:loteGuias/ans:guiasTISS/*", namespaces=NS)


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ca() -> pki.Authority:
    return pki.new_authority("AC Teste Adapters")


@pytest.fixture(scope="module")
def gateway_leaf(ca: pki.Authority) -> pki.Leaf:
    return ca.issue("TISS GATEWAY DEMONSTRACAO", cnpj="11222333000181")


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


# ------------------------------------------------------------------------------- splitting


@pytest.mark.parametrize("version", VERSOES)
def test_pasa_splits_250_guides_into_100_100_50(registry: SchemaRegistry, version: str) -> None:
    a = adapter(registry, "pasa", hash_variante="utf-8")
    data = build_lote("sp-sadt", 250, version=version, numero_lote="1002270", party=party("pasa"))
    message = read(data)
    assert a.criticas(message) == []
    envios = preparar(a, message)

    assert [len(e.guias) for e in envios] == [100, 100, 50]
    assert [e.numero_lote for e in envios] == ["1002270-1", "1002270-2", "1002270-3"]
    assert [e.sequencial for e in envios] == ["90001", "90002", "90003"]
    assert {e.servico for e in envios} == {"tissLoteGuias"} and {e.versao for e in envios} == {version}
    original = numeros(message)
    assert len(original) == 250
    assert list(itertools.chain.from_iterable(e.guias for e in envios)) == original
    total = Decimal("0.00")
    for envio in envios:
        part = check_part(envio, registry, "utf-8")
        lote = read_lote(part.root)
        assert lote.numero_lote == envio.numero_lote and lote.tipo_guia == "sp-sadt"
        assert [g.numero_guia_prestador for g in lote.guias] == list(envio.guias)
        total += lote.valor_informado
        # the hash really is the operator's variant: the strict (declared) rule refuses it
        assert not hashing.check(part.root, part.encoding, hashing.STRICT).accepted
        ident = part.root.find("ans:cabecalho/ans:identificacaoTransacao", NS)
        assert ident.findtext("ans:sequencialTransacao", namespaces=NS) == envio.sequencial
        assert ident.findtext("ans:dataRegistroTransacao", namespaces=NS) == "2026-01-20"
        assert ident.findtext("ans:horaRegistroTransacao", namespaces=NS) == "09:30:05"
        assert part.encoding.upper() == "ISO-8859-1"
    assert total == read_lote(message.root).valor_informado


def test_splitting_is_deterministic_and_leaves_the_message_alone(registry: SchemaRegistry) -> None:
    a = adapter(registry, "pasa")
    data = build_lote("consulta", 130, numero_lote="77", party=party("pasa"))
    message = read(data)
    before = etree.tostring(message.tree)
    first, second = preparar(a, message), preparar(a, read(data))
    assert first == second
    assert [e.numero_lote for e in first] == ["77-1", "77-2"]
    assert etree.tostring(message.tree) == before


def test_cassems_splits_120_into_50_50_20(registry: SchemaRegistry) -> None:
    a = adapter(registry, "cassems")
    message = read(build_lote("odonto", 120, numero_lote="5632", party=party("cassems")))
    assert a.criticas(message) == []
    envios = preparar(a, message)
    assert [len(e.guias) for e in envios] == [50, 50, 20]
    assert [e.numero_lote for e in envios] == ["5632-1", "5632-2", "5632-3"]
    assert list(itertools.chain.from_iterable(e.guias for e in envios)) == numeros(message)
    values = [read_lote(check_part(e, registry, hashing.DECLARED).root).valor_informado for e in envios]
    assert sum(values) == read_lote(message.root).valor_informado


@pytest.mark.parametrize(("name", "n"), [("pasa", 100), ("cassems", 50), ("unimed", 1), ("capitalprev", 7)])
def test_a_lote_within_the_limit_keeps_its_number(registry: SchemaRegistry, name: str, n: int) -> None:
    tipo = "odonto" if name == "cassems" else "consulta"
    message = read(build_lote(tipo, n, numero_lote="781500101296", party=party(name)))
    (envio,) = preparar(adapter(registry, name), message)
    assert envio.numero_lote == "781500101296" and len(envio.guias) == n
    check_part(envio, registry, hashing.DECLARED)


def test_operators_without_a_limit_still_cut_at_the_padrao_100(registry: SchemaRegistry) -> None:
    message = read(build_lote("consulta", 101, party=party("capitalprev")))
    envios = preparar(adapter(registry, "capitalprev"), message)
    assert [len(e.guias) for e in envios] == [100, 1]


def test_numero_lote_parte_scheme() -> None:
    assert numero_lote_parte("1002270", 1, 1) == "1002270"
    assert numero_lote_parte("1002270", 2, 3) == "1002270-2"
    assert numero_lote_parte("781500101296", 2, 2) == "1500101296-2"
    assert numero_lote_parte("781500101296", 1, 1) == "781500101296"
    parts = [numero_lote_parte("999999999999", i, 150) for i in range(1, 151)]
    assert len(set(parts)) == 150 and all(len(p) <= 12 for p in parts)


class PasaPequena(Pasa):
    max_bytes = 120_000


def test_pasa_splits_by_file_size_too(registry: SchemaRegistry) -> None:
    a = PasaPequena(Destino("331988", VERSOES), registry)
    message = read(build_lote("sp-sadt", 90, party=party("pasa")))
    assert len(message.data) > PasaPequena.max_bytes
    envios = preparar(a, message)
    assert len(envios) > 1
    assert all(len(e.corpo) <= PasaPequena.max_bytes for e in envios)
    assert list(itertools.chain.from_iterable(e.guias for e in envios)) == numeros(message)
    for envio in envios:
        check_part(envio, registry, hashing.DECLARED)


class PasaMinuscula(Pasa):
    max_bytes = 10_000


def test_a_guide_larger_than_the_file_limit_is_a_critica(registry: SchemaRegistry) -> None:
    a = PasaMinuscula(Destino("331988", VERSOES), registry)
    message = read(build_lote("resumo-internacao", 2, party=party("pasa")))
    found = a.criticas(message)
    assert codes(found) == ["3166"]
    assert numero_guia_prestador("1", 1) in found[0].message
    with pytest.raises(AdapterError):
        preparar(a, message)


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


def test_mensagem_tiss_lote_is_sent_as_lote_guias_ws(registry: SchemaRegistry) -> None:
    message = read(build_mensagem_tiss("consulta", 60, numero_lote="42", party=party("cassems")))
    a = adapter(registry, "pasa")
    assert a.criticas(message) == []
    (envio,) = preparar(a, message)
    part = check_part(envio, registry, hashing.DECLARED)
    assert envio.servico == "tissLoteGuias" and envio.numero_lote == "42"
    assert numeros(part) == [numero_guia_prestador("42", i) for i in range(1, 61)]


def test_a_message_in_a_soap_envelope_is_sent_bare(registry: SchemaRegistry) -> None:
    message = read(build_lote("consulta", 3, envelope=True, party=party("pasa")))
    assert message.in_envelope
    (envio,) = preparar(adapter(registry, "pasa"), message)
    assert b"Envelope" not in envio.corpo
    check_part(envio, registry, hashing.DECLARED)


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


# ------------------------------------------------------------------------------- versions


def test_versao_destino(registry: SchemaRegistry) -> None:
    a = adapter(registry, "pasa", ("4.01.00", "4.02.00"))
    assert a.versao_destino("4.01.00") == "4.01.00"
    assert a.versao_destino("4.02.00") == "4.02.00"
    assert a.versao_destino("4.03.00") == "4.02.00"
    assert adapter(registry, "unimed", ("4.03.00",)).versao_destino("4.01.00") == "4.03.00"


@pytest.mark.parametrize("tipo", ["consulta", "sp-sadt", "odonto", "resumo-internacao"])
@pytest.mark.parametrize("origem", ["4.01.00", "4.02.00"])
def test_restamped_to_403_where_the_structures_are_equal(registry: SchemaRegistry, tipo: str,
                                                         origem: str) -> None:
    a = adapter(registry, "unimed", ("4.03.00",))
    message = read(build_lote(tipo, 4, version=origem, party=party("unimed")))
    assert a.criticas(message) == []
    (envio,) = preparar(a, message)
    assert envio.versao == "4.03.00"
    part = check_part(envio, registry, hashing.DECLARED)
    assert part.root.findtext("ans:cabecalho/ans:Padrao", namespaces=NS) == "4.03.00"
    assert numeros(part) == numeros(message)


def test_honorarios_402_to_403_lack_carater_atendimento(registry: SchemaRegistry) -> None:
    a = adapter(registry, "unimed", ("4.03.00",))
    message = read(build_lote("honorarios", 3, version="4.02.00", party=party("unimed")))
    found = a.criticas(message)
    assert codes(found) == ["5001"]  # one crítica for the element, naming every guide
    text = found[0].message
    assert "caraterAtendimento" in text and "dadosInternacao" in text
    assert "4.02.00" in text and "4.03.00" in text
    for i in (1, 2, 3):
        assert numero_guia_prestador("1", i) in text
    assert "dadosInternacao" in (found[0].location or "")
    assert set(codes(found)) <= codigos_glosa("4.02.00")
    with pytest.raises(AdapterError):
        preparar(a, message)


def test_honorarios_403_as_402_lose_nothing_required(registry: SchemaRegistry) -> None:
    a = adapter(registry, "ipasgo", ("4.02.00",))
    message = read(build_lote("honorarios", 2, version="4.03.00", party=party("ipasgo")))
    found = a.criticas(message)
    # caraterAtendimento does not exist in 4.02.00: downwards it is the element that is refused
    assert codes(found) == ["5001"] and "caraterAtendimento" in found[0].message
    assert "não existe na versão 4.02.00" in found[0].message


def test_optional_403_elements_are_refused_downwards(registry: SchemaRegistry) -> None:
    a = adapter(registry, "capitalprev", ("4.02.00",))
    message = read(build_lote("resumo-internacao", 2, version="4.03.00", party=party("capitalprev")))
    found = a.criticas(message)
    assert found and set(codes(found)) == {"5001"}
    assert all("centroConsumo" in x.message for x in found)


def test_a_target_version_not_installed_is_5028(registry: SchemaRegistry) -> None:
    a = adapter(registry, "pasa", ("4.04.00",))
    found = a.criticas(read(build_lote("consulta", 1, party=party("pasa"))))
    assert codes(found) == ["5028"] and "4.04.00" in found[0].message


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


def test_ipasgo_honorarios_need_the_receiving_matricula(registry: SchemaRegistry) -> None:
    def blank(root: etree._Element) -> None:
        guias(root)[0].find("ans:dadosContratadoExecutante/ans:codigonaOperadora", NS).text = " "

    a = adapter(registry, "ipasgo")
    data = build_lote("honorarios", 2, party=party("ipasgo"))
    assert a.criticas(read(data)) == []
    found = a.criticas(read(modified(data, blank)))
    assert codes(found) == ["1311"] and numero_guia_prestador("1", 1) in found[0].message
    assert a.envio_parcial


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


@pytest.mark.parametrize("name", list(REGISTROS))
def test_criticas_codes_exist_in_the_message_version(registry: SchemaRegistry, name: str) -> None:
    a = adapter(registry, name)
    declared = a.CODIGOS_REGRAS | set(a.CRITICAS.values()) | {a.CRITICA_PADRAO, "5001", "5028", "3166"}
    for version in registry.versions():
        assert declared <= codigos_glosa(version), (version, declared - codigos_glosa(version))


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


@pytest.mark.parametrize(("name", "critica", "codigo"), [
    ("pasa", "1206 CPF / CNPJ INVÁLIDO Detalhes: prestador não localizado na operadora", "1206"),
    ("pasa", "Prestador não localizado na operadora", "1206"),
    ("pasa", "1206", "1206"),
    ("pasa", "Este lote já possui 101 guias. Limite máximo permitido por lote é de 100 guias.", "5015"),
    ("cassems", "Lote não aceito - CPF / CNPJ INVÁLIDO (1206): prestador não localizado", "1206"),
    ("cassems", "Guia 123 incompleta", "3111"),
    ("unimed", "Guia SADT sem o campo 30 preenchido com o nome do médico executante", "1311"),
    ("ipasgo", "1311 - PRESTADOR EXECUTANTE NÃO INFORMADO - guia de honorários 9", "1311"),
    ("ipasgo", "matrícula 5020999 de quem receberá os honorários não localizada", "1203"),
    ("capitalprev", "Necessário ajuste no lote - 1001 NÚMERO DA CARTEIRA INVÁLIDO: carteira 9", "1001"),
    ("capitalprev", "Processamento interrompido em 17/04/2023 às 16:34", "5002"),
])
def test_operator_criticas_map_to_table_38(registry: SchemaRegistry, name: str, critica: str,
                                           codigo: str) -> None:
    assert adapter(registry, name).critica_tiss(critica) == codigo
