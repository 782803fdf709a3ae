"""gateway.message.recurso: a recurso de glosa read and checked against the glosas it appeals
(the checks the gateway and the simulated operators share). ``recurso_request`` builds a
schema-valid loteRecursoGlosaWS appealing chosen items (the other recurso tests use it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from lxml import etree

from gateway.message import hashing, reader, responses, validation
from gateway.message.recurso import (
    GuiaGlosada,
    GuiaRecursada,
    ItemGlosado,
    ItemRecursado,
    Recurso,
    criticas,
    descricao,
    glosas_da_situacao,
    ler_recurso,
)
from gateway.message.services import ANS_NS
from simulator import answers
from tests.factory import Party, build_request, envelope

A = f"{{{ANS_NS}}}"
D = Decimal


@dataclass(frozen=True)
class Pedido:
    """One appealed item of :func:`recurso_request`."""

    sequencial: int
    codigo_tabela: str
    codigo_procedimento: str
    valor: Decimal
    codigo_glosa: str = "1705"


def sequencial_na_guia(sequencial_item: str | None, ordem: int) -> int:
    """An item's sequencialItem as the operators' answers give it: as written, or its position."""
    escrito = int(sequencial_item) if sequencial_item and sequencial_item.isdigit() else 0
    return escrito or ordem


def recurso_request(guias: Mapping[str, Sequence[Pedido]] | None, *, numero_protocolo: str,
                    numero_lote: str = "1", party: Party | None = None, version: str = "4.03.00",
                    sequencial: str = "1", when: datetime | None = None, total: Decimal | None = None,
                    with_envelope: bool = False) -> bytes:
    """A loteRecursoGlosaWS appealing ``guias`` (numeroGuiaPrestador -> items; no items: the whole
    guide, recursoGuiaCompleta), or the whole protocol when ``guias`` is None; valorTotalRecursado
    is ``total`` or the items' sum. The hash is stamped."""
    message = reader.read(build_request("loteRecursoGlosaWS", numero_protocolo=numero_protocolo,
                                        numero_lote=numero_lote, party=party, version=version,
                                        sequencial=sequencial, when=when))
    recurso = message.root.find(f"{A}loteRecurso/{A}guiaRecursoGlosa")
    opcao = recurso.find(f"{A}opcaoRecurso")
    opcao.clear()
    if guias is None:
        _protocolo(opcao)
    for numero, pedidos in (guias or {}).items():
        _guia(opcao, numero, pedidos)
    soma = sum((p.valor for g in (guias or {}).values() for p in g), D("0.00"))
    recurso.find(f"{A}valorTotalRecursado").text = f"{total if total is not None else soma:.2f}"
    data = hashing.rewrite(message.tree, message.root)
    return envelope(data) if with_envelope else data


def _e(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{A}{name}")
    child.text = text
    return child


def _protocolo(opcao: etree._Element) -> None:
    protocolo = _e(opcao, "recursoProtocolo")
    _e(protocolo, "codigoGlosaProtocolo", "1705")
    _e(protocolo, "justificativaProtocolo", "Valores conforme tabela contratual.")


def _guia(opcao: etree._Element, numero: str, pedidos: Sequence[Pedido]) -> None:
    guia = _e(opcao, "recursoGuia")
    _e(guia, "numeroGuiaOrigem", numero)
    escolha = _e(guia, "opcaoRecursoGuia")
    if not pedidos:
        completa = _e(escolha, "recursoGuiaCompleta")
        _e(completa, "codGlosaGuia", "1705")
        _e(completa, "justificativaGuia", "Guia cobrada conforme contrato.")
    for pedido in pedidos:
        item = _e(escolha, "itensGuia")
        _e(item, "sequencialItem", str(pedido.sequencial))
        _e(item, "dataInicio", "2026-01-05")
        proc = _e(item, "procRecurso")
        _e(proc, "codigoTabela", pedido.codigo_tabela)
        _e(proc, "codigoProcedimento", pedido.codigo_procedimento)
        _e(proc, "descricaoProcedimento", "Procedimento recursado")
        _e(item, "codGlosaItem", pedido.codigo_glosa)
        _e(item, "valorRecursado", f"{pedido.valor:.2f}")
        _e(item, "justificativaItem", "Valor cobrado conforme tabela contratual vigente.")


# --------------------------------------------------------------------------- reading


def test_the_builder_makes_a_schema_valid_recurso() -> None:
    data = recurso_request({"G1": [Pedido(2, "22", "40304361", D("12.50"))], "G2": []},
                           numero_protocolo="48760")
    report = validation.validate_message(reader.read(data))
    assert report.valid, [f.message for f in report.findings]


def test_reads_guides_items_and_total() -> None:
    data = recurso_request({"G1": [Pedido(2, "22", "40304361", D("12.50")),
                                   Pedido(3, "22", "40301630", D("5.00"))], "G2": []},
                           numero_protocolo="48760", total=D("30.00"))
    assert ler_recurso(reader.read(data).root) == Recurso("48760", (
        GuiaRecursada("G1", (ItemRecursado(2, "22", "40304361", D("12.50")),
                             ItemRecursado(3, "22", "40301630", D("5.00")))),
        GuiaRecursada("G2", ())), D("30.00"))


def test_reads_a_recurso_of_the_whole_protocol() -> None:
    data = recurso_request(None, numero_protocolo="48760", total=D("80.00"))
    assert ler_recurso(reader.read(data).root) == Recurso("48760", (), D("80.00"))


def test_reads_an_odonto_recurso() -> None:
    root = reader.read(build_request("loteRecursoGlosaWS", numero_protocolo="77")).root
    lote = root.find(f"{A}loteRecurso")
    medico = lote.find(f"{A}guiaRecursoGlosa")
    odonto = etree.fromstring(f"""<ans:guiaRecursoGlosaOdonto xmlns:ans="{ANS_NS}">
      <ans:numeroProtocolo>77</ans:numeroProtocolo><ans:opcaoRecurso><ans:recursoGuia>
      <ans:numeroGuiaPrestador>O1</ans:numeroGuiaPrestador><ans:codGlosaGuia>3040</ans:codGlosaGuia>
      <ans:justificativaGuia>x</ans:justificativaGuia><ans:recursoProcedimento>
      <ans:sequencialItem>4</ans:sequencialItem><ans:procRecurso><ans:codigoTabela>22</ans:codigoTabela>
      <ans:codigoProcedimento>81000065</ans:codigoProcedimento></ans:procRecurso>
      <ans:valorRecursado>45.10</ans:valorRecursado></ans:recursoProcedimento></ans:recursoGuia>
      </ans:opcaoRecurso><ans:valorTotalRecursado>45.10</ans:valorTotalRecursado>
      </ans:guiaRecursoGlosaOdonto>""")
    lote.replace(medico, odonto)
    assert ler_recurso(root) == Recurso("77", (GuiaRecursada("O1", (
        ItemRecursado(4, "22", "81000065", D("45.10")),)),), D("45.10"))


# --------------------------------------------------------------------------- the checks

GLOSADAS = {
    "G1": GuiaGlosada("G1", D("18.60"), (ItemGlosado(1, "22", "10101012", D("0.00")),
                                         ItemGlosado(2, "22", "40304361", D("18.60")))),
    "G2": GuiaGlosada("G2", D("0.00"), (ItemGlosado(1, "22", "40301630", D("0.00")),)),
}


def recurso(*guias: GuiaRecursada, total: Decimal | None = None) -> Recurso:
    soma = sum((i.valor for g in guias for i in g.itens), D("0.00"))
    return Recurso("48760", guias, soma if total is None else total)


def codes(found: list) -> list[tuple[str | None, str]]:
    return [(f.code, f.message) for f in found]


def test_a_recurso_within_the_glosa_passes() -> None:
    assert criticas(recurso(GuiaRecursada("G1", (ItemRecursado(2, "22", "40304361", D("18.60")),))),
                    GLOSADAS) == []
    assert criticas(recurso(GuiaRecursada("G1", ()), total=D("18.60")), GLOSADAS) == []


def test_more_than_the_glosa_is_1705() -> None:
    found = criticas(recurso(GuiaRecursada("G1", (ItemRecursado(2, "22", "40304361", D("62.00")),))),
                     GLOSADAS)
    assert codes(found) == [("1705", "Item 2 (22 40304361) da guia G1: valor recursado 62.00 acima do valor "
                                     "glosado 18.60.")]
    assert found[0].location == "opcaoRecurso/recursoGuia[1]/item[1]/valorRecursado"


def test_a_total_above_the_guides_glosa_is_1705() -> None:
    found = criticas(recurso(GuiaRecursada("G1", ()), total=D("20.00")), GLOSADAS)
    assert codes(found) == [("1705", "Valor total recursado 20.00 acima do valor glosado das guias "
                                     "recursadas (18.60).")]


def test_an_item_not_in_the_guide_is_1801() -> None:
    outro_codigo = ItemRecursado(2, "22", "40301630", D("1.00"))  # the guide's item 2 is another exam
    outro_item = ItemRecursado(7, "22", "40304361", D("1.00"))
    found = criticas(recurso(GuiaRecursada("G1", (outro_codigo, outro_item))), GLOSADAS)
    assert [f.code for f in found] == ["1801", "1801"]
    assert found[1].message == "Item 7 (22 40304361) da guia G1: o item não consta da guia."


def test_a_guide_or_an_item_without_glosa_is_2908() -> None:
    found = criticas(recurso(GuiaRecursada("G2", ())), GLOSADAS)
    assert codes(found) == [("2908", "Guia G2 sem glosa: não há o que recorrer.")]
    item = criticas(recurso(GuiaRecursada("G1", (ItemRecursado(1, "22", "10101012", D("5.00")),))), GLOSADAS)
    assert [f.code for f in item] == ["2908"]


def test_a_guide_not_in_the_protocol_is_1307_unless_its_analysis_is_pending() -> None:
    estranha = recurso(GuiaRecursada("G9", (ItemRecursado(1, "22", "40304361", D("1.00")),)))
    assert codes(criticas(estranha, GLOSADAS)) == [("1307", "Guia G9 não consta do protocolo recursado.")]
    assert criticas(estranha, GLOSADAS, pendentes={"G9"}) == []  # the operator decides


def test_a_recurso_of_the_protocol_is_checked_against_every_glosa() -> None:
    assert criticas(Recurso("48760", (), D("18.60")), GLOSADAS) == []
    assert [f.code for f in criticas(Recurso("48760", (), D("18.61")), GLOSADAS)] == ["1705"]
    sem_glosa = {"G2": GLOSADAS["G2"]}
    assert [f.code for f in criticas(Recurso("48760", (), D("1.00")), sem_glosa)] == ["2908"]
    assert criticas(Recurso("48760", (), D("99.00")), GLOSADAS, pendentes={"G3"}) == []


@pytest.mark.parametrize("version", ["4.01.00", "4.02.00", "4.03.00"])
def test_every_code_is_in_every_version(version: str) -> None:
    assert {"1307", "1801", "2908", "1705"} <= responses.codigos_glosa(version)


def test_the_description_holds_every_critica_within_500_characters() -> None:
    found = criticas(recurso(*(GuiaRecursada(f"X{n:03}", ()) for n in range(40))), GLOSADAS)
    texto = descricao(found)
    assert len(found) == 40 and len(texto) == 500 and texto.endswith("...")
    assert descricao(found[:2]) == f"{found[0].message} {found[1].message}"


# --------------------------------------------------------------------------- the operator's answer


def situacao(status: int, itens: tuple[answers.ItemAnalisado, ...]) -> etree._Element:
    request = reader.read(build_request("solicitacaoStatusProtocoloWS")).root
    ctx = responses.reply_context(request, registro_ans="331988", sequencial="9",
                                  now=datetime(2026, 2, 1, tzinfo=UTC))
    guia = answers.GuiaAnalisada("G1", "0000012345", date(2026, 1, 5), itens)
    root = answers.situacao_protocolo_detalhado(ctx, answers.ProtocoloSituacao(
        "48760", "1", date(2026, 1, 6), status, (guia,)))
    report = validation.validate_message(reader.read(responses.envelope(root)))
    assert report.valid, [f.message for f in report.findings]
    return root


ITENS = (answers.ItemAnalisado(answers.Procedimento("22", "10101012"), D("100.00")),
         answers.ItemAnalisado(answers.Procedimento("22", "40304361"), D("62.00"), sequencial=5,
                               glosas=(answers.Glosa("1705", D("18.60")),)))


def test_the_glosas_of_an_analysed_situacao() -> None:
    assert glosas_da_situacao(situacao(3, ITENS)) == {"G1": GuiaGlosada("G1", D("18.60"), (
        ItemGlosado(1, "22", "10101012", D("0")), ItemGlosado(5, "22", "40304361", D("18.60"))))}


def test_no_glosas_before_the_analysis() -> None:
    assert glosas_da_situacao(situacao(2, ITENS)) is None
