"""tissCancelaGuia relayed (gateway.delivery.relay + sync_relay) with the operators' rule on lotes
already sent (adapters.rules ``cancela_lote_enviado``) and what a confirmed cancelamento records
(guia.situacao, protocol status 9): the gateway's pipeline and worker against simulated PASA and
Capital Prev in process (tests.inprocess_operators), on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS
from gateway.storage.models import Critica, Entrega, Guia, Lote, Mensagem, Protocolo, ProtocoloStatus
from tests.factory import build_request, numero_guia_prestador
from tests.inprocess_operators import OPERADORAS, InProcess, party

NS = {"ans": ANS_NS}
RETORNO = "ans:reciboCancelaGuia/ans:reciboCancelaGuia/ans:retornoStatus/"
LOTE = RETORNO + "ans:loteCancelado/ans:statusCancelamento"
GUIAS = RETORNO + "ans:guiasCanceladas/ans:dadosGuia/ans:statusCancelamento"
PASA, CAPITALPREV = OPERADORAS["pasa"][0], OPERADORAS["capitalprev"][0]
_sequenciais = itertools.count(9000)


@pytest.fixture
def stack(database_url: str, registry: SchemaRegistry, tmp_path: Path) -> Iterator[InProcess]:
    found = InProcess(database_url, registry, tmp_path, ("pasa", "capitalprev"))
    yield found
    found.close()


def cancela(stack: InProcess, key: str, **fields: str) -> etree._Element:
    data = build_request("cancelaGuiaWS", envelope=True, sequencial=str(next(_sequenciais)), party=party(key),
                         **fields)
    return stack.post("tissCancelaGuia", data)


def statuses(root: etree._Element, path: str) -> list[str]:
    return [e.text for e in root.xpath(path, namespaces=NS)]


def situacoes(stack: InProcess, protocolo: str) -> dict[str, str]:
    with stack.sessions() as session:
        return dict(session.execute(select(Guia.numero_guia_prestador, Guia.situacao).join(Lote)
                                    .join(Protocolo, Lote.protocolo_id == Protocolo.id)
                                    .where(Protocolo.numero == protocolo)).all())


def protocolo_status(stack: InProcess, protocolo: str) -> tuple[int, list[tuple[int, str]]]:
    with stack.sessions() as session:
        found = session.scalars(select(Protocolo).where(Protocolo.numero == protocolo)).one()
        historico = session.execute(select(ProtocoloStatus.status, ProtocoloStatus.origem)
                                    .where(ProtocoloStatus.protocolo_id == found.id)
                                    .order_by(ProtocoloStatus.id)).all()
        return found.status, [tuple(h) for h in historico]


def delivered(stack: InProcess, key: str, numero: str, n: int = 2) -> str:
    protocolo = stack.send_lote(key, n, numero)
    stack.deliver()
    assert [e.estado for e in stack.entregas(protocolo)] == ["entregue"]
    return protocolo


# --------------------------------------------------------------------------- PASA: a lote sent stays


def test_pasa_a_delivered_lote_is_answered_not_cancelled_without_asking(stack: InProcess) -> None:
    protocolo = delivered(stack, "pasa", "501")
    root = cancela(stack, "pasa", cancelamento="lote", numero_lote="501", numero_protocolo=protocolo)
    assert statuses(root, LOTE) == ["2"]
    assert root.findtext(RETORNO + "ans:loteCancelado/ans:numeroprotocolo", namespaces=NS) == protocolo
    assert stack.operadoras.chamadas("tissCancelaGuia") == []  # the operator was not asked
    assert set(situacoes(stack, protocolo).values()) == {"aceita"}
    assert protocolo_status(stack, protocolo)[0] == 1
    with stack.sessions() as session:  # why, for whoever reads the request in the console
        (texto,) = session.scalars(select(Critica.mensagem).join(Mensagem, Critica.mensagem_id == Mensagem.id)
                                   .where(Mensagem.servico == "tissCancelaGuia")).all()
    assert "não cancela lotes já enviados" in texto and "o lote 501 já foi entregue" in texto


def test_pasa_guides_of_a_delivered_lote_by_protocol_or_by_number_alike(stack: InProcess) -> None:
    protocolo = delivered(stack, "pasa", "502")
    primeira, segunda = numero_guia_prestador("502", 1), numero_guia_prestador("502", 2)
    assert statuses(cancela(stack, "pasa", numero_guia_prestador=primeira, numero_protocolo=protocolo),
                    GUIAS) == ["2"]
    assert statuses(cancela(stack, "pasa", numero_guia_prestador=segunda), GUIAS) == ["2"]
    assert stack.operadoras.chamadas("tissCancelaGuia") == []
    assert set(situacoes(stack, protocolo).values()) == {"aceita"}


def test_pasa_a_guide_the_gateway_did_not_deliver_goes_to_the_operator(stack: InProcess) -> None:
    root = cancela(stack, "pasa", numero_guia_prestador="77700001")
    assert statuses(root, GUIAS) == ["3"]  # guia inexistente, said by the operator
    assert stack.operadoras.chamadas("tissCancelaGuia") == [PASA]


def test_a_lote_still_at_the_gateway_is_not_cancelled_there(stack: InProcess) -> None:
    protocolo = stack.send_lote("pasa", 1, "503")  # not delivered: the worker has not run
    root = cancela(stack, "pasa", cancelamento="lote", numero_lote="503", numero_protocolo=protocolo)
    assert root.findtext(".//ans:mensagemErro/ans:codigoGlosa", namespaces=NS) == "3019"
    assert [e.estado for e in stack.entregas(protocolo)] == ["pendente"]
    assert stack.operadoras.chamadas("tissCancelaGuia") == []


# --------------------------------------------------------------------------- Capital Prev: cancels


def test_capitalprev_cancels_guides_and_the_gateway_records_them(stack: InProcess) -> None:
    protocolo = delivered(stack, "capitalprev", "601")
    assert stack.entregas(protocolo)[0].senha_cifrada  # tracked: the polls send the provider's senha
    primeira, segunda = numero_guia_prestador("601", 1), numero_guia_prestador("601", 2)
    root = cancela(stack, "capitalprev", numero_guia_prestador=primeira, numero_protocolo=protocolo)
    assert statuses(root, GUIAS) == ["1"]
    assert stack.operadoras.chamadas("tissCancelaGuia") == [CAPITALPREV]
    assert situacoes(stack, protocolo) == {primeira: "cancelada", segunda: "aceita"}
    assert protocolo_status(stack, protocolo)[0] == 1  # a guide left: the lote goes on
    assert statuses(cancela(stack, "capitalprev", numero_guia_prestador=segunda), GUIAS) == ["1"]
    assert situacoes(stack, protocolo) == {primeira: "cancelada", segunda: "cancelada"}
    assert protocolo_status(stack, protocolo) == (9, [(1, "gateway"), (9, f"operadora:{CAPITALPREV}")])
    (entrega,) = stack.entregas(protocolo)
    assert (entrega.status, entrega.proxima_consulta_em) == (9, None)  # tracking stops
    assert entrega.senha_cifrada is None  # and its sealed senha goes


def test_capitalprev_cancels_a_whole_lote(stack: InProcess) -> None:
    protocolo = delivered(stack, "capitalprev", "602", n=3)
    root = cancela(stack, "capitalprev", cancelamento="lote", numero_lote="602", numero_protocolo=protocolo)
    assert statuses(root, LOTE) == ["1"]
    assert set(situacoes(stack, protocolo).values()) == {"cancelada"}
    assert protocolo_status(stack, protocolo)[0] == 9


def test_capitalprev_not_cancelled_records_nothing(stack: InProcess) -> None:
    protocolo = delivered(stack, "capitalprev", "603")
    stack.advance(hours=200)  # analysed: too late for the operator
    root = cancela(stack, "capitalprev", cancelamento="lote", numero_lote="603", numero_protocolo=protocolo)
    assert statuses(root, LOTE) == ["2"]
    assert stack.operadoras.chamadas("tissCancelaGuia") == [CAPITALPREV]
    assert set(situacoes(stack, protocolo).values()) == {"aceita"}
    with stack.sessions() as session:
        assert session.scalars(select(Entrega.status)).all() == [1]
