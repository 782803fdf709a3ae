"""The console's status displays: the capa's figures from the operator's situação answer (read by
gateway.message.situacao), and the operator's own status name beside the TISS light."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import create_engine

from gateway.config import demo_config
from gateway.console import capa, situacao
from gateway.console.app import ConsoleApp
from gateway.delivery.state import State
from gateway.message import reader
from gateway.message.responses import (
    GuiaRecebida,
    ValorTotal,
    envelope,
    protocolo_nao_localizado,
    reply_context,
    situacao_protocolo,
)
from gateway.message.schema_registry import SchemaRegistry
from gateway.storage.db import session_factory
from tests.factory import Party, build_request

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PASA = "331988"


def _ctx():
    request = reader.read(build_request("solicitacaoStatusProtocoloWS", party=Party(registro_ans=PASA)))
    return reply_context(request.root, registro_ans=PASA, sequencial="77", now=NOW)


def _situacao(status: int) -> bytes:
    guias = [GuiaRecebida("G1", None, "123456", Decimal("60.00"),
                          valores=ValorTotal(Decimal("60.00"), Decimal("10.00"), Decimal("50.00")),
                          glosas=(("1705", "VALOR APRESENTADO A MAIOR"),)),
             GuiaRecebida("G2", None, "654321", Decimal("40.00"),  # a motive without a value: com glosa
                          valores=ValorTotal(Decimal("40.00"), Decimal("0.00"), Decimal("40.00")),
                          glosas=(("1705", None),)),
             GuiaRecebida("G3", None, "111111", Decimal("5.00"))]  # vlInformadoGuia as received
    return envelope(situacao_protocolo(_ctx(), numero_protocolo="P1", numero_lote="1", status=status,
                                       data_envio_lote=date(2026, 11, 20), guias=guias,
                                       valor_total=ValorTotal(Decimal("105.00"), Decimal("10.00"),
                                                              Decimal("95.00"))))


def test_the_capa_reads_an_analysed_situacao(registry: SchemaRegistry) -> None:
    found = capa.da_situacao(_situacao(3), registry)
    assert found == capa.Analise(
        "P1", 3, Decimal("105.00"), Decimal("10.00"), Decimal("95.00"), guias_com_glosa=2, itens_com_glosa=0,
        glosa_por_guia={"G1": Decimal("10.00"), "G2": Decimal("0.00"), "G3": Decimal("0.00")},
        fonte="situação do protocolo")


def test_the_capa_takes_nothing_from_a_situacao_not_analysed_or_not_found(registry: SchemaRegistry) -> None:
    assert capa.da_situacao(_situacao(2), registry) is None  # em análise: the values are not the analysis
    missing = envelope(protocolo_nao_localizado(_ctx(), numero_protocolo="P1"))
    assert capa.da_situacao(missing, registry) is None
    assert capa.da_situacao(None, registry) is None and capa.da_situacao(b"<x/>", registry) is None
    broken = _situacao(3).replace(b"<ans:valorGlosa>10.00<", b"<ans:valorGlosa>11.00<", 1)  # hash fails
    assert capa.da_situacao(broken, registry) is None


def test_the_light_of_a_status_and_of_a_lote_not_at_the_operator() -> None:
    assert situacao.do_status(3).status == 3
    assert situacao.do_lote(3, {State.ENTREGUE: 1}).status == 3
    assert situacao.do_lote(3, {"recusada": 1}).status == 3  # a part the operator refused: the protocol says
    assert situacao.do_lote(3, {situacao.NAO_PREPARADA: 1}).status is None  # the deliveries' situação
    assert situacao.do_lote(None, {"pendente": 1}).codigo == situacao.ENVIO


@pytest.fixture
def app(registry: SchemaRegistry) -> ConsoleApp:
    sessions = session_factory(create_engine("sqlite://"))  # the templates read nothing
    return ConsoleApp(demo_config("127.0.0.1:9000"), sessions, sessions, registry)


def test_the_operators_own_status_name_follows_the_tiss_light(app: ConsoleApp) -> None:
    macros = app.env.get_template("_macros.html").module
    shown = etree.fromstring(f"<td>{macros.status_operadora(PASA, 3)}</td>")  # type: ignore[attr-defined]
    (small,) = shown.findall("small")
    assert (small.get("class"), small.get("data-status-operadora"), small.text) == \
        ("status-operadora", "3", "(PASA: Faturado)")
    for registro, status in ((PASA, 6), (PASA, None), ("999999", 3)):  # no name of its own: nothing
        assert str(macros.status_operadora(registro, status)).strip() == ""  # type: ignore[attr-defined]
