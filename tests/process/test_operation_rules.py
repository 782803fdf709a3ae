"""Each operator's operation rules end to end over HTTP (gateway, worker and the simulated operators
as separate processes, tests/forwarding_stack; SQLite and PostgreSQL): PASA cancels no lote once
sent to it (adapters.rules ``cancela_lote_enviado``), answered by the gateway without asking it;
Capital Prev cancels, and the gateway records the guide cancelled; a simulated operator refuses a
recurso de glosa that asks more than it glosou (gateway.message.recurso) with its Table 38 code.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
import requests
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.message import reader
from gateway.message.services import SERVICE_BY_NAME
from gateway.message.tables import STATUS_ANALISADOS
from gateway.message.validation import validate
from gateway.storage.models import Guia, Lote, Mensagem, Protocolo
from simulator.lifecycle import GLOSA_NENHUMA
from simulator.models import SimCancelamento, SimGuia, SimItem, SimLote, SimRecurso
from simulator.profile import load_profile
from tests.factory import build_lote, build_request, glosas_drawn, numero_guia_prestador
from tests.forwarding_stack import NS, OPERADORAS, Stack, new_number, party, wait_until
from tests.gateway_process import WorkerProcess
from tests.unit.message.test_recurso import Pedido, recurso_request, sequencial_na_guia

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")

RETORNO = "ans:reciboCancelaGuia/ans:reciboCancelaGuia/ans:retornoStatus/"


def answer(response: requests.Response, service: str) -> etree._Element:
    """The ``*WS`` root of a 200 answer, schema-valid with the strict hash."""
    assert response.status_code == 200, response.text[:3000]
    report = validate(response.content)
    assert report.valid, (report.to_dict(), response.text[:3000])
    assert report.kind == SERVICE_BY_NAME[service].response
    return reader.read(response.content).root


def text(root: etree._Element, path: str) -> str | None:
    return root.findtext(path, namespaces=NS)


def cancela(stack: Stack, key: str, sequencial: str, **fields: str) -> etree._Element:
    data = build_request("cancelaGuiaWS", envelope=True, sequencial=sequencial, party=party(key), **fields)
    return answer(stack.post("tissCancelaGuia", data), "tissCancelaGuia")


def delivered(stack: Stack, key: str, n: int = 2) -> tuple[str, str]:
    numero, protocolo = stack.send_lote(key, n)
    wait_until(lambda: stack.delivered(protocolo), what=f"entrega do lote {numero} a {key}")
    return numero, protocolo


def situacoes(stack: Stack, protocolo: str) -> dict[str, str]:
    with stack.db.connect() as connection:
        return dict(connection.execute(select(Guia.numero_guia_prestador, Guia.situacao)
                                       .join(Lote, Guia.lote_id == Lote.id)
                                       .join(Protocolo, Lote.protocolo_id == Protocolo.id)
                                       .where(Protocolo.numero == protocolo)).all())


def sent_to_operator(stack: Stack, sequencial: str) -> list[Mensagem]:
    """What the gateway sent the operator for one cancelamento of the provider (and its parts)."""
    enviada = (Mensagem.servico == "tissCancelaGuia") & (Mensagem.direcao == "saida") \
        & (Mensagem.resultado != "resposta")
    with stack.db.connect() as connection:
        return list(connection.execute(select(Mensagem).where(
            enviada, Mensagem.sequencial_transacao.in_([sequencial, f"{sequencial}-2"]))))


def operator_cancelamentos(stack: Stack, key: str, numero_lote: str) -> list[tuple[str | None, str]]:
    """(guide, dm_statusCancelamento) of what the operator was asked to cancel in lote ``numero_lote``."""
    with stack.sim_db.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(SimCancelamento.numero_guia_prestador, SimCancelamento.status).where(
                SimCancelamento.registro_ans == OPERADORAS[key][0],
                (SimCancelamento.numero_lote == numero_lote)
                | SimCancelamento.numero_guia_prestador.like(f"{numero_lote}%")))]


def sim_lotes(stack: Stack, key: str, numero: str) -> list[SimLote]:
    with Session(stack.sim_db, expire_on_commit=False) as session:
        return list(session.scalars(select(SimLote).where(SimLote.registro_ans == OPERADORAS[key][0],
                                                          SimLote.numero_lote == numero)))


# --------------------------------------------------------------------------- cancelamento


def test_pasa_a_delivered_lote_is_not_cancelled_nor_asked(stack: Stack, worker: WorkerProcess) -> None:
    numero, protocolo = delivered(stack, "pasa")
    sequencial = new_number()
    root = cancela(stack, "pasa", sequencial, cancelamento="lote", numero_lote=numero,
                   numero_protocolo=protocolo)
    assert text(root, RETORNO + "ans:loteCancelado/ans:statusCancelamento") == "2"  # não cancelado
    assert text(root, RETORNO + "ans:loteCancelado/ans:numeroprotocolo") == protocolo
    guia = cancela(stack, "pasa", new_number(), numero_guia_prestador=numero_guia_prestador(numero, 1))
    assert text(guia, RETORNO + "ans:guiasCanceladas/ans:dadosGuia/ans:statusCancelamento") == "2"
    assert sent_to_operator(stack, sequencial) == []
    assert operator_cancelamentos(stack, "pasa", numero) == []  # the operator never saw them
    assert [lote.cancelado_em for lote in sim_lotes(stack, "pasa", numero)] == [None]
    assert set(situacoes(stack, protocolo).values()) == {"aceita"}


def test_capitalprev_cancels_a_guide_and_the_gateway_records_it(stack: Stack, worker: WorkerProcess) -> None:
    numero, protocolo = delivered(stack, "capitalprev")
    primeira, segunda = numero_guia_prestador(numero, 1), numero_guia_prestador(numero, 2)
    sequencial = new_number()
    root = cancela(stack, "capitalprev", sequencial, numero_guia_prestador=primeira,
                   numero_protocolo=protocolo)
    assert text(root, RETORNO + "ans:guiasCanceladas/ans:dadosGuia/ans:statusCancelamento") == "1"
    assert len(sent_to_operator(stack, sequencial)) == 1
    assert operator_cancelamentos(stack, "capitalprev", numero) == [(primeira, "1")]
    assert situacoes(stack, protocolo) == {primeira: "cancelada", segunda: "aceita"}


# --------------------------------------------------------------------------- recurso de glosa


def post_operator(stack: Stack, key: str, service: str, data: bytes) -> etree._Element:
    """Straight to the simulated operator over HTTP (no gateway); the ``*WS`` root of its answer."""
    response = requests.post(stack.simulator.service_url(key, service), data=data, timeout=60,
                             headers={"Content-Type": "text/xml; charset=ISO-8859-1"})
    assert response.status_code == 200, response.text[:2000]
    return reader.read(response.content).root


def glosado(stack: Stack, key: str, numero: str) -> tuple[str, str, Pedido]:
    """(the operator's protocol, a guide of lote ``numero`` with an item glosado, that item
    appealed for its glosa)."""
    (lote,) = sim_lotes(stack, key, numero)
    with Session(stack.sim_db) as session:
        item = session.scalars(select(SimItem).join(SimGuia).where(SimGuia.lote_id == lote.id,
                                                                   SimItem.valor_glosa > 0)
                               .order_by(SimItem.id)).first()
        assert item is not None, f"nada glosado no lote {numero}"
        return lote.numero_protocolo, item.guia.numero_guia_prestador, Pedido(
            sequencial_na_guia(item.sequencial_item, item.ordem), item.codigo_tabela,
            item.codigo_procedimento, item.valor_glosa)


def lote_glosado(stack: Stack, key: str, n: int) -> str:
    """A new lote number whose guides the operator glosa in part at least (its seeded draw)."""
    profile = load_profile(key)
    return next(numero for numero in iter(new_number, None)
                if set(glosas_drawn(profile, numero, n, stack.simulator.seed)) != {GLOSA_NENHUMA})


def test_the_operator_refuses_a_recurso_over_the_glosa_with_1705(stack: Stack) -> None:
    numero = lote_glosado(stack, "pasa", 12)
    lote = build_lote("sp-sadt", 12, envelope=True, numero_lote=numero, sequencial=numero,
                      party=party("pasa"), seed=3)
    assert post_operator(stack, "pasa", "tissLoteGuias", lote).find(".//ans:protocoloRecebimento", NS) \
        is not None
    stack.simulator.advance(hours=49)  # analysed: its glosas can be appealed
    protocolo, guia, item = glosado(stack, "pasa", numero)

    def recurso(pedido: Pedido) -> etree._Element:
        data = recurso_request({guia: [pedido]}, numero_protocolo=protocolo, numero_lote=numero,
                               party=party("pasa"), sequencial=new_number(), with_envelope=True)
        return post_operator(stack, "pasa", "tissRecursoGlosa", data)

    root = recurso(replace(item, valor=item.valor + Decimal("43.40")))
    erro = "ans:recebimentoRecurso/ans:mensagemErro/"
    assert text(root, erro + "ans:codigoGlosa") == "1705"  # VALOR APRESENTADO A MAIOR
    assert f"acima do valor glosado {item.valor:.2f}" in (text(root, erro + "ans:descricaoGlosa") or "")
    with stack.sim_db.connect() as connection:
        assert connection.execute(select(SimRecurso.id).where(
            SimRecurso.numero_protocolo_recursado == protocolo)).all() == []
    taken = recurso(item)  # the same item for its glosa: received
    assert text(taken, "ans:recebimentoRecurso/ans:protocoloRecebimento/ans:nrProtocoloRecursoGlosa")


def test_the_gateway_refuses_a_recurso_over_the_glosa_the_operator_reported(
        stack: Stack, worker: WorkerProcess) -> None:
    """Once the tracker holds the operator's analysis, the gateway checks a recurso against it
    (gateway.inbound.recursos) and answers 1705 itself: no protocol, nothing forwarded."""
    numero = lote_glosado(stack, "pasa", 12)
    numero, protocolo = stack.send_lote("pasa", 12, numero=numero)
    wait_until(lambda: stack.delivered(protocolo), what=f"entrega do lote {numero}")
    stack.simulator.advance(hours=49)  # analysed at the operator; the tracker asks and keeps it

    def analisado() -> bool:
        with stack.db.connect() as connection:
            status = connection.scalar(select(Protocolo.status).where(Protocolo.numero == protocolo))
        return status in STATUS_ANALISADOS

    wait_until(analisado, what="análise guardada pelo gateway")
    _protocolo_operadora, guia, item = glosado(stack, "pasa", numero)

    def recurso(pedido: Pedido) -> etree._Element:
        data = recurso_request({guia: [pedido]}, numero_protocolo=protocolo, numero_lote=numero,
                               party=party("pasa"), sequencial=new_number(), with_envelope=True)
        return answer(stack.post("tissRecursoGlosa", data), "tissRecursoGlosa")

    root = recurso(replace(item, valor=item.valor + Decimal("43.40")))
    assert text(root, "ans:recebimentoRecurso/ans:mensagemErro/ans:codigoGlosa") == "1705"
    assert text(root, ".//ans:nrProtocoloRecursoGlosa") is None
    assert text(recurso(item), ".//ans:nrProtocoloRecursoGlosa")  # at its glosa: received
