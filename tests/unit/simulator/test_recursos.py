"""The simulated operators' operation rules: a recurso de glosa checked against their own glosas
(gateway.message.recurso) and PASA's "a lote sent cannot be cancelled" (adapters.rules), in
process behind TissWsgi, on SQLite and PostgreSQL (the engine fixtures of test_engine)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from simulator.contas import ENVIADO_NAO_CANCELA
from simulator.lifecycle import GLOSA_NENHUMA
from simulator.models import SimCancelamento, SimGuia, SimItem, SimLote, SimRecurso
from tests.unit.message.test_recurso import Pedido, recurso_request, sequencial_na_guia
from tests.unit.simulator import test_engine as engine

# The engine's fixtures, under their own names (pytest finds them in this module).
authority, provider_leaf, sim_url, simulator = (engine.authority, engine.provider_leaf, engine.sim_url,
                                                engine.simulator)
Sim = engine.Sim
ERRO = "ans:recebimentoRecurso/ans:mensagemErro/"
RECEBIDO = "ans:recebimentoRecurso/ans:protocoloRecebimento/ans:nrProtocoloRecursoGlosa"
CANCELAMENTO = "ans:reciboCancelaGuia/ans:reciboCancelaGuia/ans:retornoStatus/"


def analysed_lote(sim: Sim, numero_lote: str = "7", n: int = 12) -> tuple[str, list[SimGuia]]:
    """(protocol, guides with their items) of an SP/SADT lote the operator has analysed."""
    numero = sim.lote("sp-sadt", n, seed=3, numero_lote=numero_lote).text(
        "ans:recebimentoLote/ans:protocoloRecebimento/ans:detalheProtocolo/ans:numeroProtocolo")
    sim.advance(48)
    with sim.sessions() as session:
        guias = list(session.scalars(select(SimGuia).join(SimLote).where(SimLote.numero_protocolo == numero)
                                     .order_by(SimGuia.id)))
        for guia in guias:
            guia.itens  # noqa: B018  (loaded before the session closes)
        session.expunge_all()
    return numero, guias


def glosado(guias: list[SimGuia]) -> tuple[SimGuia, SimItem]:
    return next((g, i) for g in guias for i in g.itens if i.valor_glosa > 0)


def pedido(item: SimItem, valor: Decimal, sequencial: int | None = None) -> Pedido:
    sequencial = sequencial or sequencial_na_guia(item.sequencial_item, item.ordem)
    return Pedido(sequencial, item.codigo_tabela, item.codigo_procedimento, valor)


def send(sim: Sim, guias: dict[str, list[Pedido]] | None, numero: str, total: Decimal | None = None):
    data = recurso_request(guias, numero_protocolo=numero, numero_lote="7", party=sim.party,
                           sequencial=sim.next_seq(), when=sim.clock.local_now().replace(tzinfo=None),
                           total=total, with_envelope=True)
    resposta = sim.post("tissRecursoGlosa", data)
    sim.check(resposta)
    return resposta


# --------------------------------------------------------------------------- recurso de glosa


def test_a_recurso_within_the_glosa_is_received(simulator) -> None:
    pasa = simulator("pasa")
    numero, guias = analysed_lote(pasa)
    guia, item = glosado(guias)
    resposta = send(pasa, {guia.numero_guia_prestador: [pedido(item, item.valor_glosa)]}, numero)
    assert resposta.text(RECEBIDO)
    assert pasa.count(SimRecurso) == 1


def test_a_recurso_over_the_glosa_is_refused_with_1705(simulator) -> None:
    pasa = simulator("pasa")
    numero, guias = analysed_lote(pasa)
    guia, item = glosado(guias)
    resposta = send(pasa, {guia.numero_guia_prestador: [pedido(item, item.valor_glosa + Decimal("43.40"))]},
                    numero)
    assert resposta.text(ERRO + "ans:codigoGlosa") == "1705"
    assert f"acima do valor glosado {item.valor_glosa:.2f}" in resposta.text(ERRO + "ans:descricaoGlosa")
    assert pasa.count(SimRecurso) == 0


def test_an_item_not_in_the_guide_is_refused_with_1801(simulator) -> None:
    pasa = simulator("pasa")
    numero, guias = analysed_lote(pasa)
    guia, item = glosado(guias)
    fora = pedido(item, Decimal("1.00"), sequencial=99)
    resposta = send(pasa, {guia.numero_guia_prestador: [fora]}, numero)
    assert resposta.text(ERRO + "ans:codigoGlosa") == "1801"
    assert pasa.count(SimRecurso) == 0


def test_a_guide_without_glosa_is_refused_with_2908(simulator) -> None:
    pasa = simulator("pasa")
    numero, guias = analysed_lote(pasa)
    sem = next(g for g in guias if g.glosa == GLOSA_NENHUMA)
    resposta = send(pasa, {sem.numero_guia_prestador: []}, numero, total=Decimal("10.00"))
    assert resposta.text(ERRO + "ans:codigoGlosa") == "2908"
    texto = f"Guia {sem.numero_guia_prestador} sem glosa: não há o que recorrer."
    assert resposta.text(ERRO + "ans:descricaoGlosa") == texto


def test_a_guide_of_another_lote_is_refused_with_1307(simulator) -> None:
    pasa = simulator("pasa")
    numero, guias = analysed_lote(pasa)
    _guia, item = glosado(guias)
    resposta = send(pasa, {"99990001": [pedido(item, Decimal("1.00"))]}, numero)
    assert resposta.text(ERRO + "ans:codigoGlosa") == "1307"


# --------------------------------------------------------------------------- cancelamento


def test_pasa_does_not_cancel_a_lote_it_received(simulator) -> None:
    pasa = simulator("pasa")
    pasa.lote("consulta", 2, numero_lote="501")
    lote = pasa.request("cancelaGuiaWS", cancelamento="lote", numero_lote="501")
    pasa.check(lote)
    assert lote.text(CANCELAMENTO + "ans:loteCancelado/ans:statusCancelamento") == "2"
    guia = pasa.request("cancelaGuiaWS", numero_guia_prestador="50100001")
    assert guia.text(CANCELAMENTO + "ans:guiasCanceladas/ans:dadosGuia/ans:statusCancelamento") == "2"
    with pasa.sessions() as session:
        assert {(c.status, c.detalhe) for c in session.scalars(select(SimCancelamento))} == {
            ("2", ENVIADO_NAO_CANCELA)}
        assert session.scalars(select(SimLote.cancelado_em)).one() is None


def test_capitalprev_cancels_a_lote_it_received(simulator) -> None:
    capital = simulator("capitalprev")
    capital.lote("consulta", 2, numero_lote="501")
    guia = capital.request("cancelaGuiaWS", numero_guia_prestador="50100001")
    assert guia.text(CANCELAMENTO + "ans:guiasCanceladas/ans:dadosGuia/ans:statusCancelamento") == "1"
    lote = capital.request("cancelaGuiaWS", cancelamento="lote", numero_lote="501")
    assert lote.text(CANCELAMENTO + "ans:loteCancelado/ans:statusCancelamento") == "1"
