"""What became of a lote, as the console shows it (gateway.console.desfecho and the pages that read
it): each guide's situação and crítica, the guides accepted and their value, the status light from
the protocol (RECUSADO_PELA_OPERADORA included), the chain of resubmissions, and the refusals page
that tells the gateway's refusals from the operator's. Pages are rendered by ConsoleApp in process,
on a migrated database (SQLite and PostgreSQL) seeded as the gateway stores lotes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from lxml import html as lxml_html
from sqlalchemy import Engine

from gateway.config import demo_config
from gateway.console import auth, desfecho, situacao
from gateway.console.app import ConsoleApp
from gateway.console.web import Request
from gateway.delivery.state import State
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.tables import GUIA_ACEITA, GUIA_CANCELADA, GUIA_RECUSADA, RECUSADO_PELA_OPERADORA
from gateway.storage.db import session_factory
from tests.unit.console import seed_outcome as seed
from tests.unit.console.seed_outcome import GuiaSemente

D = Decimal


def _guia(id_: int, situacao_: str = GUIA_ACEITA, valor: str = "10.00") -> SimpleNamespace:
    """A stored guide: G<id_>."""
    return SimpleNamespace(id=id_, numero_guia_prestador=f"G{id_}", numero_guia_operadora=None,
                           tipo="consulta", numero_carteira=None, valor_informado=D(valor),
                           situacao=situacao_)


def _critica(id_: int, guia_id: int | None, mensagem_id: int | None, codigo: str = "1206") -> SimpleNamespace:
    return SimpleNamespace(id=id_, guia_id=guia_id, mensagem_id=mensagem_id, codigo=codigo,
                           mensagem=f"texto {id_}")


# --- desfecho, in memory -------------------------------------------------------------------------

def test_each_guide_has_its_situacao_and_the_critica_that_refused_it() -> None:
    guias = [_guia(1), _guia(2, GUIA_RECUSADA, "5.00"), _guia(3, GUIA_RECUSADA), _guia(4, GUIA_CANCELADA)]
    criticas = [_critica(9, 3, 70), _critica(8, 2, 50, "1311"), _critica(10, 2, 50, "9999")]
    found = desfecho.montar(guias, criticas, status=3, mensagem_id=50)  # 50: the provider's lote message
    assert [(g.situacao, g.rotulo) for g in found.guias] == [
        (GUIA_ACEITA, "Aceita"), (GUIA_RECUSADA, "Recusada"), (GUIA_RECUSADA, "Recusada"),
        (GUIA_CANCELADA, "Cancelada")]
    assert found.guias[0].critica is None and found.guias[0].recusada_por is None
    assert str(found.guias[1].critica) == "1311 texto 8"  # its first crítica
    assert found.guias[1].recusada_por == desfecho.GATEWAY  # found in the lote message: at acceptance
    assert found.guias[2].recusada_por == desfecho.OPERADORA  # in the operator's answer
    assert found.contagem == desfecho.Contagem(total=4, aceitas=1, valor_aceito=D("10.00"), recusadas=2,
                                               canceladas=1)
    assert found.critica_do_lote is None and str(found.motivo) == "1311 texto 8"
    assert found.recusadas_por == [desfecho.GATEWAY, desfecho.OPERADORA]


def test_a_lote_the_operator_refused_whole_accepted_nothing() -> None:
    """Its guides the gateway took count as refused, with the lote's crítica (the operator's)."""
    criticas = [_critica(1, None, 50, "5001"), _critica(2, None, 70, "1206")]
    found = desfecho.montar([_guia(1), _guia(2)], criticas, status=RECUSADO_PELA_OPERADORA, mensagem_id=50)
    assert str(found.critica_do_lote) == "1206 texto 2"  # the operator's, not the request's
    assert [(g.situacao, str(g.critica), g.recusada_por) for g in found.guias] == [
        (GUIA_RECUSADA, "1206 texto 2", desfecho.OPERADORA)] * 2
    assert found.contagem == desfecho.Contagem(2, 0, D("0.00"), recusadas=2)
    assert desfecho.contagem({GUIA_ACEITA: (2, D("20.00"))}, status=RECUSADO_PELA_OPERADORA) == \
        desfecho.Contagem(2, 0, D("0.00"), 2, 0)
    assert desfecho.contagem({GUIA_ACEITA: (2, D("20.00")), GUIA_RECUSADA: (1, D("5.00"))}, status=3) == \
        desfecho.Contagem(3, 2, D("20.00"), 1, 0)


def _elo(lote_id: int, reenvio_de_id: int | None) -> desfecho.Elo:
    return desfecho.Elo(lote_id, "77", f"P{lote_id}", None, datetime(2026, 1, 1, tzinfo=UTC), reenvio_de_id,
                        recusado_em=None)


def test_the_chain_of_resubmissions_runs_both_ways() -> None:
    elos = [_elo(7, 3), _elo(3, None), _elo(9, 7), _elo(5, None)]  # 5: same number, another chain
    found = desfecho.cadeia(7, elos)
    assert [e.lote_id for e in found.elos] == [3, 7, 9]
    assert (found.anterior.lote_id, found.seguinte.lote_id) == (3, 9)
    assert desfecho.cadeia(3, elos).anterior is None and desfecho.cadeia(9, elos).seguinte is None
    assert [e.lote_id for e in desfecho.cadeia(5, elos).elos] == [5]
    assert [e.lote_id for e in desfecho.cadeia(1, [_elo(1, 2), _elo(2, 1)]).elos] == [2, 1]  # a loop ends


def test_the_light_comes_from_the_protocol() -> None:
    recusado = situacao.do_lote(RECUSADO_PELA_OPERADORA, {State.RECUSADA: 1})
    assert (recusado.codigo, recusado.rotulo, recusado.cor, recusado.status) == (
        situacao.RECUSADO, "Recusado pela operadora", situacao.VERMELHA, RECUSADO_PELA_OPERADORA)
    assert situacao.do_status(RECUSADO_PELA_OPERADORA) == recusado
    # A part the operator refused leaves the status to the parts it took.
    assert situacao.do_lote(3, {State.RECUSADA: 1, State.ENTREGUE: 1}).status == 3
    refused_by_adapter = situacao.estado_da_luz(State.RECUSADA, respondida=False)
    assert situacao.do_lote(1, {refused_by_adapter: 1}).codigo == situacao.FALHA
    assert situacao.do_lote(1, {State.MORTA: 1}).codigo == situacao.FALHA
    assert (situacao.RECUSADO, "Recusado pela operadora", situacao.VERMELHA) in situacao.opcoes()
    assert "99" not in [valor for valor, _r, _c in situacao.opcoes()]  # the filter's word is "recusado"


# --- the pages, on a seeded database -------------------------------------------------------------

@pytest.fixture
def app(db_engine: Engine, registry: SchemaRegistry) -> ConsoleApp:
    sessions = session_factory(db_engine)
    return ConsoleApp(demo_config(None), sessions, sessions, registry)


def _escopo() -> auth.Escopo:
    return auth.Escopo(1, "admin", "Admin", "admin", None, "s", "c", datetime(2999, 1, 1, tzinfo=UTC))


def _get(app: ConsoleApp, handler: str, *args: int, query: str = ""):
    request = Request({"REQUEST_METHOD": "GET", "PATH_INFO": "/console/x", "QUERY_STRING": query})
    response = getattr(app, handler)(request, _escopo(), *args)
    assert response.status == "200 OK", response.body[:3000]
    return lxml_html.fromstring(response.body.decode())


def _text(tree, xpath: str) -> str:
    return " ".join(tree.xpath(f"string({xpath})").split())


def test_the_lote_page_shows_the_protocol_status_guides_and_resubmissions(app: ConsoleApp) -> None:
    with app.sessions.begin() as session:
        recusado = seed.recusado_pela_operadora(session, "900")
        reenvio = seed.aceito_em_parte(session, "900", reenvio_de_id=recusado.lote_id)
    page = _get(app, "pagina_lote", recusado.lote_id)
    assert _text(page, '//*[@id="resumo-lote"]//*[@data-situacao]') == "Recusado pela operadora"
    assert page.xpath('string(//*[@id="resumo-lote"]//*[@data-situacao]/@data-situacao)') == situacao.RECUSADO
    assert _text(page, '//*[@id="guias-aceitas"]') == "aceitas 0 de 2 (2 recusadas)"
    historico = [_text(r, ".") for r in page.xpath('//section[@id="historico"]//tbody/tr')]
    assert "Recusado pela operadora" in historico[-1] and "Operadora PASA (331988)" in historico[-1]
    assert "Recebido" in historico[0]
    assert page.xpath('string(//*[@id="reenviado-como"]/a/@href)') == f"/console/lotes/{reenvio.lote_id}"
    assert reenvio.protocolo in _text(page, '//*[@id="reenviado-como"]')
    assert not page.xpath('//*[@id="reenvio-de"]')

    page = _get(app, "pagina_lote", reenvio.lote_id)
    assert _text(page, '//*[@id="resumo-lote"]//*[@data-situacao]').startswith("Recebido")
    assert page.xpath('string(//*[@id="guias-aceitas"]/@data-aceitas)') == "2"
    assert page.xpath('string(//*[@id="valor-aceito"]/@data-valor)') == "100.00"
    linhas = {r.get("data-guia"): r for r in page.xpath('//section[@id="guias"]//tr[@data-guia]')}
    assert [linhas[n].xpath("string(.//@data-situacao-guia)") for n in ("A1", "A2", "A3")] == [
        GUIA_ACEITA, GUIA_ACEITA, GUIA_RECUSADA]
    assert _text(linhas["A3"], './/*[@class="critica-guia"]') == " ".join(seed.PROFISSIONAL)
    assert linhas["A3"].xpath("string(.//@data-recusada-por)") == desfecho.GATEWAY
    de = page.xpath('//*[@id="reenvio-de"]/a')[0]
    assert de.get("href") == f"/console/lotes/{recusado.lote_id}" and recusado.protocolo in de.text

    capa = _get(app, "pagina_capa", reenvio.lote_id)
    assert capa.xpath('string(//*[@id="guias-aceitas"]/@data-valor)') == "2"
    assert capa.xpath('string(//*[@id="capa-valor-aceito"]/@data-valor)') == "100.00"


def _ids(tree) -> list[int]:
    return [int(i) for i in tree.xpath("//tr/@data-lote-id")]


def test_the_lotes_list_filters_recusado_by_the_protocol_and_counts_accepted_guides(app: ConsoleApp) -> None:
    with app.sessions.begin() as session:
        recusado = seed.recusado_pela_operadora(session, "901", n=1)
        parcial = seed.aceito_em_parte(session, "902")
    assert _ids(_get(app, "pagina_lotes", query="situacao=recusado")) == [recusado.lote_id]
    assert _ids(_get(app, "pagina_lotes", query="situacao=1")) == [parcial.lote_id]
    assert _ids(_get(app, "pagina_lotes", query="situacao=falha")) == []
    listed = _get(app, "pagina_lotes")
    row = listed.xpath(f'//tr[@data-lote-id="{parcial.lote_id}"]')[0]
    assert _text(row, './/*[contains(@class, "guias-aceitas")]') == "2 de 3"
    assert row.xpath('string(.//*[contains(@class, "valor-aceito")]/@data-valor)') == "100.00"
    row = listed.xpath(f'//tr[@data-lote-id="{recusado.lote_id}"]')[0]
    assert _text(row, ".//*[@data-situacao]") == "Recusado pela operadora"
    assert _text(row, './/*[contains(@class, "guias-aceitas")]') == "0 de 1"


def test_the_refusals_page_tells_the_gateways_from_the_operators(app: ConsoleApp) -> None:
    with app.sessions.begin() as session:
        recusado = seed.recusado_pela_operadora(session, "903", n=1)
        parcial = seed.aceito_em_parte(session, "904")
        aceito = seed.lote(session, numero_lote="905", guias=[GuiaSemente("B1", D("1.00"))])
        no_gateway = seed.recusada_pelo_gateway(session)
    page = _get(app, "pagina_recusadas")
    lotes = {int(r.get("data-lote-recusado")): r
             for r in page.xpath('//*[@id="tabela-recusadas-lotes"]//tr[@data-lote-recusado]')}
    assert sorted(lotes) == sorted([recusado.lote_id, parcial.lote_id]) and aceito.lote_id not in lotes
    assert _text(lotes[recusado.lote_id], ".//*[@data-situacao]") == "Recusado pela operadora"
    assert lotes[recusado.lote_id].xpath("string(.//@data-recusadas-por)") == desfecho.OPERADORA
    assert _text(lotes[recusado.lote_id], './/td[@class="codigo"]') == seed.NAO_CADASTRADO[0]
    assert lotes[parcial.lote_id].xpath("string(.//@data-recusadas-por)") == desfecho.GATEWAY
    assert _text(lotes[parcial.lote_id], './/*[contains(@class, "guias-recusadas")]').startswith("1 de 3")
    mensagens = [int(i) for i in page.xpath('//*[@id="tabela-recusadas"]//tr/@data-mensagem')]
    # Only what never got a protocol: not the operator's answer, not the lote taken in part.
    assert mensagens == [no_gateway]
    assert "Mensagens recusadas pelo gateway" in _text(page, '//section[@id="recusadas-pelo-gateway"]/h2')
    assert "recusados pela operadora" in _text(page, '//section[@id="recusadas-com-protocolo"]/h2')


def test_the_glosa_chart_counts_only_accepted_guides(app: ConsoleApp) -> None:
    registro = "990001"  # an operator of its own: the chart's row is this lote's alone
    corpo = seed.situacao_analisada(registro, [("A1", D("60.00"), D("10.00")), ("A2", D("40.00"), D("0.00"))],
                                    glosa=D("10.00"))
    with app.sessions.begin() as session:
        seed.aceito_em_parte(session, "906", registro=registro, status=[3], entrega="entregue",
                             situacao_corpo=corpo)
    page = _get(app, "pagina_graficos", query=f"operadora={registro}")
    (row,) = page.xpath("//table[@id='tabela-glosa']//tr[td]")
    assert row.xpath("string(td[3]/@data-valor)") == "100.00"  # 60 + 40: not the refused 500
    assert row.xpath("string(td[4]/@data-valor)") == "10.00"
    assert _text(row, "td[5]") == "10,0%"
