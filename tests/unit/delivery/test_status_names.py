"""The operators' own status names shown beside the TISS ones (the inverse of each adapter's STATUS)."""

from __future__ import annotations

from types import MappingProxyType

from adapters.base import STATUS_TISS, Adapter
from gateway.config import demo_config
from gateway.delivery.status_names import StatusNames
from gateway.message.schema_registry import SchemaRegistry

PASA, CAPITAL_PREV, CASSEMS = "331988", "329665", "413534"


def names(registry: SchemaRegistry) -> StatusNames:
    return StatusNames.from_config(demo_config("127.0.0.1:9000"), registry)


def test_a_padrao_name_written_another_way_is_not_the_operators() -> None:
    class Outra(Adapter):
        nome = "Outra"
        STATUS = MappingProxyType({**STATUS_TISS, "EM ANALISE": 2, "Recebido.": 1, "Na fila": 1, "Fila": 1})

    found = StatusNames({"123456": Outra.__new__(Outra)})  # the names are class attributes
    assert [found.name("123456", s) for s in (1, 2)] == ["Na fila", None]  # the first declared wins


def test_describe_puts_the_operators_name_beside_the_tiss_one(registry: SchemaRegistry) -> None:
    found = names(registry)
    assert found.describe(PASA, 3) == "3 Liberado para pagamento (PASA: Faturado)"
    assert found.describe(PASA, 1) == "1 Recebido (PASA: Enviado para a Operadora)"
    assert found.describe(CASSEMS, 1) == "1 Recebido (CASSEMS: Lote enviado)"
    assert [found.name(PASA, s) for s in (7, 2, 5)] == ["Não enviado", "Em análise pela Operadora",
                                                        "Liberado para faturamento"]
    # No name of its own for the status, an operator not configured: the TISS name alone.
    assert found.describe(CAPITAL_PREV, 2) == "2 Em análise"
    assert found.describe("999999", 3) == "3 Liberado para pagamento"


def test_name_label_and_suffix(registry: SchemaRegistry) -> None:
    found = names(registry)
    assert found.name(PASA, 5) == "Liberado para faturamento"
    assert found.label(PASA, 5) == "PASA: Liberado para faturamento"
    assert found.suffix(PASA, 5) == " (PASA: Liberado para faturamento)"
    for registro, status in ((PASA, 6), (PASA, None), (None, 3), ("", 3)):
        assert found.name(registro, status) is None and found.label(registro, status) is None
        assert found.suffix(registro, status) == ""


def test_every_configured_operator_is_read_through_the_adapter_registry(registry: SchemaRegistry) -> None:
    config = demo_config("127.0.0.1:9000")
    found = names(registry)
    assert {registro: found.name(registro, 1) for registro in config.operadoras} == {
        CAPITAL_PREV: "Em processamento", PASA: "Enviado para a Operadora",
        "331872": "Lote de guias enviado com sucesso", CASSEMS: "Lote enviado", "424188": "Baixada"}
    assert found.label(CAPITAL_PREV, 5) == "Capital Prev: Analisado e aguardando liberação para o pagamento"


def test_an_adapter_without_a_name_is_labelled_by_its_registro() -> None:
    class SemNome(Adapter):
        STATUS = MappingProxyType({**STATUS_TISS, "Pago": 6})

    assert StatusNames({"123456": SemNome.__new__(SemNome)}).label("123456", 6) == "123456: Pago"
