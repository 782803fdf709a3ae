"""The test factory builds schema-valid, hash-stamped TISS messages for every version and kind."""

import hashlib
import time
from datetime import datetime
from decimal import Decimal

import pytest
from lxml import etree

from gateway.message import findings as f
from gateway.message import hashing, reader
from gateway.message.services import ANS_NS, SOAP11_NS
from gateway.message.validation import validate
from tests import factory
from tests.factory import (
    ENCODINGS,
    GUIDE_TYPES,
    REQUEST_KINDS,
    TEXT_REQUEST_KINDS,
    VERSIONS,
    Party,
    build_lote,
    build_mensagem_tiss,
    build_request,
    envelope,
)

NS = {"ans": ANS_NS}


def assert_valid(data: bytes) -> None:
    report = validate(data)
    details = "\n".join(f"  [{x.code}] {x.location}: {x.message}" for x in report.findings)
    assert report.valid and not report.findings, f"message not valid:\n{details}"


def parse(data: bytes) -> etree._Element:
    return reader.read(data).root


def hash_of(data: bytes) -> str:
    element = hashing.hash_element(parse(data))
    assert element is not None
    return element.text or ""


def money(element: etree._Element, path: str) -> Decimal:
    return sum((Decimal(x) for x in element.xpath(path, namespaces=NS)), Decimal("0"))


def test_request_kinds_are_the_twelve_services():
    assert len(REQUEST_KINDS) == 12
    assert set(REQUEST_KINDS) == set(factory.TIPO_TRANSACAO) == set(factory.BODY_ELEMENT)


# ------------------------------------------------------------------------------- lotes de guias


@pytest.mark.parametrize("in_envelope", [False, True], ids=["bare", "envelope"])
@pytest.mark.parametrize("n", [1, 7])
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("guide_type", GUIDE_TYPES)
def test_lote_is_valid(guide_type, version, encoding, n, in_envelope):
    data = build_lote(guide_type, n, version=version, encoding=encoding, envelope=in_envelope)
    assert_valid(data)
    message = reader.read(data)
    assert message.kind == "loteGuiasWS"
    assert message.version == version
    assert message.encoding == encoding
    assert message.in_envelope is in_envelope
    guides = message.root.xpath("ans:loteGuias/ans:guiasTISS/*", namespaces=NS)
    assert len(guides) == n
    assert {etree.QName(g).localname for g in guides} == {factory.GUIDE_ELEMENT[guide_type]}


@pytest.mark.parametrize("guide_type", GUIDE_TYPES)
def test_lote_of_100_guides_is_valid(guide_type):
    assert_valid(build_lote(guide_type, 100))


@pytest.mark.parametrize("version", VERSIONS)
def test_lote_of_100_sp_sadt_is_valid_in_every_version(version):
    assert_valid(build_lote("sp-sadt", 100, version=version, encoding="UTF-8", envelope=True))


def test_lote_over_100_guides_builds_and_is_rejected():
    report = validate(build_lote("consulta", 101))
    assert not report.valid
    codes = {x.code for x in report.findings}
    assert f.GUIAS_ACIMA_DO_MAXIMO in codes
    assert f.MENSAGEM_FORA_DO_PADRAO in codes  # the XSD caps guiasTISS at 100 too


@pytest.mark.parametrize("seed", range(1, 13))
@pytest.mark.parametrize("guide_type", GUIDE_TYPES)
def test_lotes_are_valid_for_other_seeds(guide_type, seed):
    for version in VERSIONS:
        assert_valid(build_lote(guide_type, 5, version=version, seed=seed, numero_lote=f"{seed}77"))


@pytest.mark.parametrize("guide_type", GUIDE_TYPES)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_mensagem_tiss_is_valid(guide_type, version, encoding):
    data = build_mensagem_tiss(guide_type, 3, version=version, encoding=encoding)
    assert_valid(data)
    message = reader.read(data)
    assert message.kind == "mensagemTISS"
    assert message.root.xpath("count(ans:prestadorParaOperadora/ans:loteGuias/ans:guiasTISS/*)",
                              namespaces=NS) == 3
    assert message.root.find("ans:epilogo/ans:hash", NS).text


# ----------------------------------------------------------------------------------- requests


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_request_is_valid(kind, version, encoding):
    data = build_request(kind, version=version, encoding=encoding)
    assert_valid(data)
    message = reader.read(data)
    assert message.kind == kind
    assert message.version == version
    tipo = message.root.findtext("ans:cabecalho/ans:identificacaoTransacao/ans:tipoTransacao",
                                 namespaces=NS)
    assert tipo == factory.TIPO_TRANSACAO[kind]


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_request_in_envelope_is_valid(kind):
    data = build_request(kind, envelope=True, encoding="UTF-8")
    assert_valid(data)
    assert reader.read(data).in_envelope


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("kind", "fields"), [
    ("cancelaGuiaWS", {"cancelamento": "lote", "numero_lote": "42", "numero_protocolo": "9001"}),
    ("cancelaGuiaWS", {"numero_guia_prestador": "4200001", "numero_guia_operadora": "778899",
                       "numero_protocolo": "9001", "tipo_guia": "1"}),
    ("solicitacaoDemonstrativoRetornoWS", {"demonstrativo": "pagamento"}),
    ("solicitacaoDemonstrativoRetornoWS", {"demonstrativo": "pagamento", "competencia": "202510"}),
    ("comunicacaoBeneficiarioWS", {"tipo_evento": "A", "numero_carteira": "0012345678"}),
    ("envioDocumentoWS", {"numero_protocolo": "555", "documento": b"\x89PNG...", "seed": 3}),
    ("loteRecursoGlosaWS", {"numero_protocolo": "987654321012", "numero_guia_operadora": "11"}),
    ("loteAnexoWS", {"numero_lote": "7", "numero_guia_operadora": "123"}),
    ("solicitacaoProcedimentoWS", {"seed": 5, "numero_carteira": "33198812345"}),
    ("loteGuiasWS", {"guide_type": "odonto", "n": 3, "numero_lote": "9"}),
])
def test_request_variants_are_valid(version, kind, fields):
    assert_valid(build_request(kind, version=version, **fields))


def test_request_fields_reach_the_message():
    root = parse(build_request("solicitacaoStatusProtocoloWS", numero_protocolo="20260001"))
    assert root.findtext("ans:solicitacaoStatusProtocolo/ans:numeroProtocolo", namespaces=NS) == "20260001"
    root = parse(build_request("solicitacaoStatusRecursoGlosaWS", numero_protocolo="77"))
    assert root.findtext("ans:solicitacaoStatusProtocoloRecurso/ans:numeroProtocolo",
                         namespaces=NS) == "77"
    root = parse(build_request("pedidoElegibilidadeWS", numero_carteira="0099887766"))
    assert root.findtext("ans:pedidoElegibilidade/ans:numeroCarteira", namespaces=NS) == "0099887766"
    root = parse(build_request("cancelaGuiaWS", numero_lote="12"))
    # the default guide is guide 1 of the lote, numbered as build_lote numbers it
    assert root.findtext(".//ans:tipoCancelamentoGuia/ans:numeroGuiaPrestador", namespaces=NS) == (
        factory.numero_guia_prestador("12", 1))


def test_request_rejects_unknown_fields_and_kinds():
    with pytest.raises(TypeError):
        build_request("cancelaGuiaWS", numero_protocol="1")
    with pytest.raises(ValueError):
        build_request("protocoloRecebimentoWS")


def test_lote_request_delegates_to_build_lote():
    assert build_request("loteGuiasWS") == build_lote("sp-sadt", 1)


# --------------------------------------------------------------------------------------- hash


@pytest.mark.parametrize("guide_type", GUIDE_TYPES)
def test_encodings_give_different_hashes(guide_type):
    iso = build_lote(guide_type, 2, encoding="ISO-8859-1")
    utf = build_lote(guide_type, 2, encoding="UTF-8")
    assert hash_of(iso) and hash_of(utf)
    assert hash_of(iso) != hash_of(utf)
    # same content: the UTF-8 build carries the hash of the ISO-8859-1 one under the iso variant
    assert hashing.compute(parse(utf), "UTF-8", "iso-8859-1") == hash_of(iso)
    iso_msg = build_mensagem_tiss(guide_type, 2, encoding="ISO-8859-1")
    utf_msg = build_mensagem_tiss(guide_type, 2, encoding="UTF-8")
    assert hash_of(iso_msg) != hash_of(utf_msg)


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_request_hashes_by_encoding(kind):
    iso = hash_of(build_request(kind, encoding="ISO-8859-1"))
    utf = hash_of(build_request(kind, encoding="UTF-8"))
    assert len(iso) == len(utf) == 32
    if kind in TEXT_REQUEST_KINDS:
        assert iso != utf
    else:  # only codes, numbers and dates: the bytes hashed are the same in both encodings
        assert iso == utf


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_hash_is_the_declared_encoding_rule(encoding):
    data = build_lote("sp-sadt", 3, encoding=encoding, envelope=True)
    message = reader.read(data)
    values = "".join(hashing.leaf_values(message.root))
    expected = hashlib.md5(values.encode(encoding)).hexdigest()
    assert hash_of(data) == expected
    assert hashing.check(message.root, message.encoding).variant == hashing.DECLARED


def test_hash_variant_option_stamps_another_variant():
    data = build_lote("consulta", 2, hash_variant="utf-8")
    report = validate(data)
    assert not report.valid and report.hash.variant == "utf-8"
    assert validate(data, policy=hashing.LENIENT).valid


def test_envelope_keeps_the_hash_and_the_encoding():
    bare = build_request("loteAnexoWS", encoding="ISO-8859-1")
    wrapped = envelope(bare)
    assert wrapped.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert etree.fromstring(wrapped).tag == f"{{{SOAP11_NS}}}Envelope"
    assert hash_of(wrapped) == hash_of(bare)
    assert_valid(wrapped)
    with pytest.raises(ValueError):
        envelope(build_mensagem_tiss("consulta", 1))


# ------------------------------------------------------------------------------------ content


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_text_is_accented_portuguese_in_the_declared_encoding(encoding):
    data = build_lote("sp-sadt", 5, encoding=encoding)
    assert data.startswith(f'<?xml version="1.0" encoding="{encoding}"?>'.encode("ascii"))
    text = data.decode(encoding)
    for accent in "çãéô":
        assert accent in text
    assert b"&#" not in data  # every character is written as such, not as a character reference


def test_builds_are_deterministic_and_vary_with_seed():
    for guide_type in GUIDE_TYPES:
        assert build_lote(guide_type, 4, seed=3) == build_lote(guide_type, 4, seed=3)
        assert build_lote(guide_type, 4, seed=3) != build_lote(guide_type, 4, seed=4)
    for kind in REQUEST_KINDS:
        assert build_request(kind) == build_request(kind)


def _guides(data: bytes) -> list[etree._Element]:
    return parse(data).xpath("ans:loteGuias/ans:guiasTISS/*", namespaces=NS)


@pytest.mark.parametrize("guide_type", GUIDE_TYPES)
def test_guide_numbers_are_unique_and_derived_from_the_lote(guide_type):
    guides = _guides(build_lote(guide_type, 100, numero_lote="2026"))
    numbers = [g.xpath("string(.//ans:numeroGuiaPrestador)", namespaces=NS) for g in guides]
    assert numbers == [factory.numero_guia_prestador("2026", i) for i in range(1, 101)]
    assert len(set(numbers)) == 100
    assert all(len(x) <= 20 for x in numbers)


def test_guides_do_not_depend_on_the_lote_size():
    one = _guides(build_lote("resumo-internacao", 1))[0]
    first_of_seven = _guides(build_lote("resumo-internacao", 7))[0]
    assert etree.tostring(one) == etree.tostring(first_of_seven)
    third = _guides(build_lote("resumo-internacao", 7))[2]
    assert etree.tostring(_guides(build_lote("resumo-internacao", 1, first_guide=3))[0]) == (
        etree.tostring(third))


def test_values_are_consistent():
    item_total = ("ans:valorTotal", "ans:valorUnitario", "ans:quantidadeExecutada")
    for version in VERSIONS:
        for guide in _guides(build_lote("sp-sadt", 20, version=version)):
            procs = guide.xpath("ans:procedimentosExecutados/ans:procedimentoExecutado", namespaces=NS)
            despesas = guide.xpath("ans:outrasDespesas/ans:despesa/ans:servicosExecutados", namespaces=NS)
            for item in procs + despesas:
                total, unit, qty = (Decimal(item.findtext(x, namespaces=NS)) for x in item_total)
                assert total == unit * qty
            assert money(guide, "ans:valorTotal/ans:valorTotalGeral/text()") == (
                sum(Decimal(p.findtext("ans:valorTotal", namespaces=NS)) for p in procs + despesas))
            assert money(guide, "ans:valorTotal/ans:valorProcedimentos/text()") == (
                sum(Decimal(p.findtext("ans:valorTotal", namespaces=NS)) for p in procs))
        for guide in _guides(build_lote("resumo-internacao", 20, version=version)):
            geral = money(guide, "ans:valorTotal/ans:valorTotalGeral/text()")
            parts = money(guide, "ans:valorTotal/*[local-name() != 'valorTotalGeral']/text()")
            items = money(guide, "ans:procedimentosExecutados/ans:procedimentoExecutado/ans:valorTotal/text()"
                          " | ans:outrasDespesas/ans:despesa/ans:servicosExecutados/ans:valorTotal/text()")
            assert geral == parts == items
            diarias = money(guide, "ans:outrasDespesas/ans:despesa[ans:codigoDespesa='05']"
                                   "/ans:servicosExecutados/ans:valorTotal/text()")
            assert money(guide, "ans:valorTotal/ans:valorDiarias/text()") == diarias
        for guide in _guides(build_lote("odonto", 20, version=version)):
            assert money(guide, "ans:valorTotalProc/text()") == money(
                guide, "ans:procedimentosExecutados/ans:valorProc/text()")
        for guide in _guides(build_lote("honorarios", 20, version=version)):
            assert money(guide, "ans:valorTotalHonorarios/text()") == money(
                guide, "ans:procedimentosRealizados/ans:procedimentoRealizado/ans:valorTotal/text()")
    for value in parse(build_lote("resumo-internacao", 10)).xpath(
            "//ans:valorUnitario/text() | //ans:valorTotal/text() | //ans:valorTotalGeral/text()",
            namespaces=NS):
        assert len(value.split(".")[1]) == 2


def test_service_dates_precede_the_transaction():
    for guide_type in GUIDE_TYPES:
        for seed in range(4):
            root = parse(build_lote(guide_type, 30, seed=seed))
            sent = root.findtext("ans:cabecalho/ans:identificacaoTransacao/ans:dataRegistroTransacao",
                                 namespaces=NS)
            dates = root.xpath("//*[starts-with(local-name(), 'data') and local-name() != 'dataValidadeSenha'"
                               " and local-name() != 'dataRegistroTransacao']/text()")
            assert dates and max(dates) <= sent


def test_version_differences_are_handled():
    carater = "count(//ans:guiaHonorarios/ans:dadosInternacao/ans:caraterAtendimento)"
    centro = "count(//ans:centroConsumo)"
    for version in VERSIONS:
        honorarios = parse(build_lote("honorarios", 3, version=version))
        resumo = parse(build_lote("resumo-internacao", 3, version=version))
        expected = 3 if version == "4.03.00" else 0
        assert honorarios.xpath(carater, namespaces=NS) == expected
        assert (resumo.xpath(centro, namespaces=NS) > 0) is (version == "4.03.00")


def test_cabecalho_and_party():
    root = parse(build_lote("consulta", 1))
    cab = root.find("ans:cabecalho", NS)
    assert cab.findtext("ans:origem/ans:identificacaoPrestador/ans:CNPJ", namespaces=NS) == "11222333000181"
    assert cab.findtext("ans:destino/ans:registroANS", namespaces=NS) == "331988"
    assert cab.findtext("ans:Padrao", namespaces=NS) == "4.03.00"
    assert cab.findtext("ans:loginSenhaPrestador/ans:loginPrestador", namespaces=NS) == "demo"
    assert cab.findtext("ans:loginSenhaPrestador/ans:senhaPrestador", namespaces=NS) == (
        hashlib.md5(b"demo").hexdigest())

    party = Party(cnpj="60701190000104", codigo_na_operadora="778899", login=None, registro_ans="424188")
    for guide_type in GUIDE_TYPES:
        data = build_lote(guide_type, 2, party=party, version="4.01.00")
        assert_valid(data)
        root = parse(data)
        cab = root.find("ans:cabecalho", NS)
        assert cab.findtext("ans:origem/ans:identificacaoPrestador/ans:codigoPrestadorNaOperadora",
                            namespaces=NS) == "778899"
        assert cab.find("ans:loginSenhaPrestador", NS) is None
        assert cab.findtext("ans:destino/ans:registroANS", namespaces=NS) == "424188"
        assert root.xpath("count(//ans:cnpjContratado)", namespaces=NS) == 0
    for kind in REQUEST_KINDS:
        assert_valid(build_request(kind, party=party, version="4.02.00"))


def test_when_sets_the_transaction_moment():
    when = datetime(2025, 12, 2, 8, 5, 0)
    root = parse(build_request("cancelaGuiaWS", when=when))
    ident = root.find("ans:cabecalho/ans:identificacaoTransacao", NS)
    assert ident.findtext("ans:dataRegistroTransacao", namespaces=NS) == "2025-12-02"
    assert ident.findtext("ans:horaRegistroTransacao", namespaces=NS) == "08:05:00"
    assert_valid(build_lote("honorarios", 3, when=when, version="4.02.00"))


def test_check_digits():
    assert factory.cnpj_check_digits("112223330001") == "11222333000181"
    assert factory.cpf_with_check_digits("529982247") == "52998224725"


def test_100_sp_sadt_guides_build_fast():
    build_lote("sp-sadt", 100)  # warm up
    start = time.perf_counter()
    build_lote("sp-sadt", 100)
    assert time.perf_counter() - start < 0.5
