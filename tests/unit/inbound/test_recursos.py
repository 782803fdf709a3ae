"""gateway.inbound.recursos: a recurso de glosa checked at acceptance against the glosas the
operator reported in its situação answers, on the gateway's database (SQLite and PostgreSQL).
The lote goes through the gateway's worker to simulated PASA in process (tests.inprocess_operators),
which analyses it; the tracker stores its situação answer."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.inbound.recursos import criticas_do_recurso
from gateway.message import reader
from gateway.message.findings import Finding
from gateway.message.schema_registry import SchemaRegistry
from gateway.storage.models import Prestador
from simulator.lifecycle import GLOSA_NENHUMA
from simulator.models import SimGuia, SimItem, SimLote
from tests.inprocess_operators import OPERADORAS, InProcess, party
from tests.unit.message.test_recurso import Pedido, recurso_request, sequencial_na_guia

PASA = OPERADORAS["pasa"][0]


@pytest.fixture
def stack(database_url: str, registry: SchemaRegistry, tmp_path: Path) -> Iterator[InProcess]:
    found = InProcess(database_url, registry, tmp_path, ("pasa",))
    yield found
    found.close()


def delivered(stack: InProcess, numero: str = "701") -> str:
    protocolo = stack.send_lote("pasa", 12, numero, guide="sp-sadt")
    stack.deliver()
    return protocolo


def analysed(stack: InProcess, numero: str = "701") -> str:
    """A delivered lote the operator analysed, whose situação the gateway has fetched."""
    protocolo = delivered(stack, numero)
    stack.advance(48)
    stack.poll()
    assert all(e.status == 5 for e in stack.entregas(protocolo))  # Liberado para faturamento
    return protocolo


def sim_guias(stack: InProcess, numero: str = "701") -> list[SimGuia]:
    with stack.sim_sessions() as session:
        guias = list(session.scalars(select(SimGuia).join(SimLote).where(SimLote.numero_lote == numero)
                                     .order_by(SimGuia.id)))
        for guia in guias:
            guia.itens  # noqa: B018  (loaded before the session closes)
        session.expunge_all()
    return guias


def glosado(guias: list[SimGuia]) -> tuple[SimGuia, SimItem]:
    return next((g, i) for g in guias for i in g.itens if i.valor_glosa > 0)


def item(pedido: SimItem, valor: Decimal, sequencial: int | None = None) -> Pedido:
    sequencial = sequencial or sequencial_na_guia(pedido.sequencial_item, pedido.ordem)
    return Pedido(sequencial, pedido.codigo_tabela, pedido.codigo_procedimento, valor)


def check(stack: InProcess, guias: dict[str, list[Pedido]] | None, protocolo: str,
          total: Decimal | None = None, registry: SchemaRegistry | None = None) -> list[Finding]:
    root = reader.read(recurso_request(guias, numero_protocolo=protocolo, numero_lote="701",
                                       party=party("pasa"), total=total)).root
    with stack.engine.connect() as connection:
        prestador_id = connection.scalar(select(Prestador.id).where(Prestador.documento == "11222333000181"))
        return criticas_do_recurso(connection, prestador_id, PASA, root, "4.03.00", registry=registry)


def codes(found: list[Finding]) -> list[str | None]:
    return [f.code for f in found]


@pytest.mark.parametrize("validate", [False, True])
def test_what_the_operator_glosou_may_be_appealed(stack: InProcess, registry: SchemaRegistry,
                                                  validate: bool) -> None:
    protocolo = analysed(stack)
    guia, glosa = glosado(sim_guias(stack))
    found = check(stack, {guia.numero_guia_prestador: [item(glosa, glosa.valor_glosa)]}, protocolo,
                  registry=registry if validate else None)
    assert found == []


def test_more_than_glosado_is_1705(stack: InProcess) -> None:
    protocolo = analysed(stack)
    guia, glosa = glosado(sim_guias(stack))
    found = check(stack, {guia.numero_guia_prestador: [item(glosa, glosa.valor_glosa + Decimal("43.40"))]},
                  protocolo)
    assert codes(found) == ["1705"]
    assert f"acima do valor glosado {glosa.valor_glosa:.2f}" in found[0].message


def test_an_item_not_in_the_guide_is_1801(stack: InProcess) -> None:
    protocolo = analysed(stack)
    guia, glosa = glosado(sim_guias(stack))
    assert codes(check(stack, {guia.numero_guia_prestador: [item(glosa, Decimal("1.00"), sequencial=99)]},
                       protocolo)) == ["1801"]


def test_a_guide_without_glosa_is_2908(stack: InProcess) -> None:
    protocolo = analysed(stack)
    sem = next(g for g in sim_guias(stack) if g.glosa == GLOSA_NENHUMA)
    assert codes(check(stack, {sem.numero_guia_prestador: []}, protocolo, total=Decimal("5.00"))) == ["2908"]


def test_named_by_the_operators_protocol_the_same(stack: InProcess) -> None:
    protocolo = analysed(stack)
    (entrega,) = stack.entregas(protocolo)
    guia, glosa = glosado(sim_guias(stack))
    pedido = {guia.numero_guia_prestador: [item(glosa, glosa.valor_glosa + 1)]}
    assert codes(check(stack, pedido, entrega.numero_protocolo)) == ["1705"]


def test_before_the_analysis_only_a_guide_not_in_the_lote_is_refused(stack: InProcess) -> None:
    protocolo = delivered(stack)
    stack.poll()  # the operator answers: 1 Recebido, nothing glosado yet
    guia, glosa = glosado(sim_guias(stack))
    assert check(stack, {guia.numero_guia_prestador: [item(glosa, glosa.valor_glosa + 100)]}, protocolo) == []
    assert codes(check(stack, {"99990001": [item(glosa, Decimal("1.00"))]}, protocolo)) == ["1307"]


def test_a_protocol_the_gateway_does_not_know_is_left_to_the_operator(stack: InProcess) -> None:
    analysed(stack)
    assert check(stack, {"99990001": []}, "987654321", total=Decimal("5.00")) == []
