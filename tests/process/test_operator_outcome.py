"""What the operator's answer makes of a lote the gateway accepted, seen from everywhere: the
protocol (status and history), the guides and their críticas, the status service, and the lote's
number (gateway.delivery.outcome).

1. Every operator refuses a lote after the gateway gave it a protocol (the simulator's ``refuse``
   fault): the protocol is RECUSADO_PELA_OPERADORA, the status service answers the operator's
   crítica, and the corrected lote goes under the same number, as a resend of the refused one.
2. IPASGO takes a lote in part (a matrícula only it knows): the refused guide is recusada with its
   crítica, the status service lists and totals the others.

One stack and one worker for the module (a worker per test would pay its start every time).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from lxml import etree
from sqlalchemy import Row, select

from gateway.message import hashing, reader
from gateway.message.lote import read_lote
from gateway.message.services import ANS_NS
from gateway.message.tables import GUIA_ACEITA, GUIA_RECUSADA, RECUSADO_PELA_OPERADORA
from gateway.storage.models import Critica, Entrega, Guia, Lote, Protocolo, ProtocoloStatus
from simulator.profile import load_profile
from tests.factory import build_lote, numero_guia_prestador
from tests.forwarding_stack import GUIDE, NS, OPERADORAS, Stack, new_number, party, wait_until
from tests.gateway_process import WorkerProcess

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")
A = f"{{{ANS_NS}}}"
CODIGO = "1323"  # DATA PREENCHIDA INCORRETAMENTE: what a provider corrects and sends again
TEXTO = "data de realização posterior à data de envio"


@pytest.fixture(scope="module")
def running(stack: Stack) -> Iterator[WorkerProcess]:
    """The module's one worker (the stack closes it if a test leaves it behind)."""
    found = stack.worker()
    yield found
    found.close()
    stack.workers.remove(found)


def post_lote(stack: Stack, key: str, numero: str, n: int = 2,
              body: bytes | None = None) -> requests.Response:
    """Lote ``numero`` for operator ``key`` in a transaction of its own (a new sequencialTransacao)."""
    body = body or build_lote(GUIDE[key], n, envelope=True, numero_lote=numero, sequencial=new_number(),
                              party=party(key))
    response = stack.post("tissLoteGuias", body)
    assert response.status_code == 200, response.text[:2000]
    return response


def protocolo_of(response: requests.Response) -> str:
    found = re.search(rb"<ans:numeroProtocolo>(\w+)</ans:numeroProtocolo>", response.content)
    assert found, response.text[:2000]
    return found.group(1).decode()


def codigo_do_erro(response: requests.Response) -> str | None:
    return reader.read(response.content).root.findtext(".//ans:mensagemErro/ans:codigoGlosa", namespaces=NS)


def parts_in(stack: Stack, protocolo: str, estado: str) -> list[Entrega] | None:
    found = stack.entregas(protocolo)
    return found if found and all(e.estado == estado for e in found) else None


def detalhe_lote(stack: Stack, key: str, protocolo: str) -> etree._Element:
    """detalheLote of the gateway's status answer (a situação, not a mensagemErro)."""
    detalhe = stack.status(key, protocolo).find(".//ans:situacaoProtocolo//ans:detalheLote", NS)
    assert detalhe is not None, f"protocolo {protocolo}: a situação não veio"
    return detalhe


def lote_row(stack: Stack, protocolo: str) -> Row[Any]:
    """The lote row (id, numero_lote, numero_vigente, reenvio_de_id...) of a gateway protocol."""
    with stack.db.connect() as connection:
        return connection.execute(select(Lote).join(Protocolo, Lote.protocolo_id == Protocolo.id)
                                  .where(Protocolo.numero == protocolo)).one()


def protocolo_row(stack: Stack, protocolo: str) -> tuple[int, list[tuple[int, str]]]:
    """(status, history as (status, origem))."""
    with stack.db.connect() as connection:
        row = connection.execute(select(Protocolo.id, Protocolo.status)
                                 .where(Protocolo.numero == protocolo)).one()
        history = connection.execute(select(ProtocoloStatus.status, ProtocoloStatus.origem)
                                     .where(ProtocoloStatus.protocolo_id == row.id)
                                     .order_by(ProtocoloStatus.id))
        return row.status, [(h.status, h.origem) for h in history]


def guias_row(stack: Stack, lote_id: int) -> dict[str, tuple[str, list[tuple[str | None, str]]]]:
    """numeroGuiaPrestador -> (situacao, its críticas as (code, text))."""
    with stack.db.connect() as connection:
        guias = connection.execute(select(Guia.id, Guia.numero_guia_prestador, Guia.situacao)
                                   .where(Guia.lote_id == lote_id).order_by(Guia.id)).all()
        criticas = connection.execute(select(Critica.guia_id, Critica.codigo, Critica.mensagem)
                                      .where(Critica.guia_id.in_([g.id for g in guias]))
                                      .order_by(Critica.id)).all()
    return {g.numero_guia_prestador: (g.situacao, [(c.codigo, c.mensagem) for c in criticas
                                                   if c.guia_id == g.id]) for g in guias}


# --- 1. every operator refuses a lote the gateway accepted ----------------------------------------


@pytest.mark.parametrize("key", list(OPERADORAS))
def test_a_lote_the_operator_refuses_frees_its_number_for_the_corrected_one(
        stack: Stack, running: WorkerProcess, key: str) -> None:
    registro = OPERADORAS[key][0]
    stack.simulator.set_fault(key, "refuse", code=CODIGO, text=TEXTO)  # every call: a poll may come first
    numero = new_number()
    refused = protocolo_of(post_lote(stack, key, numero))
    wait_until(lambda: parts_in(stack, refused, "recusada"), what=f"recusa do lote {numero} por {key}")
    stack.simulator.clear_fault(key)

    status, history = protocolo_row(stack, refused)
    assert status == RECUSADO_PELA_OPERADORA
    assert history[-1] == (RECUSADO_PELA_OPERADORA, f"operadora:{registro}")
    first = lote_row(stack, refused)
    assert first.numero_vigente is None
    guias = guias_row(stack, first.id)
    assert len(guias) == 2 and all(g == (GUIA_RECUSADA, [(CODIGO, TEXTO)]) for g in guias.values())
    erro = stack.status(key, refused).find(".//ans:situacaoProtocolo/ans:mensagemErro", NS)
    assert erro is not None and erro.findtext("ans:codigoGlosa", namespaces=NS) == CODIGO
    assert erro.findtext("ans:descricaoGlosa", namespaces=NS).endswith(TEXTO)

    corrected = protocolo_of(post_lote(stack, key, numero))  # the same number, a new transaction
    assert corrected != refused
    second = lote_row(stack, corrected)
    assert (second.numero_lote, second.numero_vigente, second.reenvio_de_id) == (numero, numero, first.id)
    wait_until(lambda: stack.delivered(corrected), what=f"entrega do lote {numero} corrigido a {key}")
    assert stack.operator_lotes(key, numero) == {numero: 1}  # the refused one left nothing there
    assert detalhe_lote(stack, key, corrected).findtext("ans:statusProtocolo", namespaces=NS) == "1"
    assert {g for g, _ in guias_row(stack, second.id).values()} == {GUIA_ACEITA}

    third = post_lote(stack, key, numero)  # an accepted lote holds the number now
    assert codigo_do_erro(third) == "3268"


def test_a_split_lote_with_one_part_refused_follows_the_part_taken(stack: Stack,
                                                                   running: WorkerProcess) -> None:
    """CASSEMS takes 60 dental guides as <n>-1 (50) and <n>-2 (10); it already has a lote <n>-2 (the
    provider numbered one so), so it refuses that part (3268) and takes the other."""
    numero = new_number()
    _n, outro = stack.send_lote("cassems", 1, numero=f"{numero}-2")
    wait_until(lambda: stack.delivered(outro), what=f"o lote {numero}-2 na operadora")
    body = build_lote("odonto", 60, envelope=True, numero_lote=numero, sequencial=numero,
                      party=party("cassems"))
    protocolo = protocolo_of(post_lote(stack, "cassems", numero, body=body))
    wait_until(lambda: {e.estado for e in stack.entregas(protocolo)} == {"entregue", "recusada"},
               what="uma parte entregue e a outra recusada")

    assert protocolo_row(stack, protocolo)[0] == 1  # the part taken's; not RECUSADO_PELA_OPERADORA
    lote = lote_row(stack, protocolo)
    assert lote.numero_vigente == numero
    guias = guias_row(stack, lote.id)
    recusadas = {n for n, (situacao, _c) in guias.items() if situacao == GUIA_RECUSADA}
    assert recusadas == {numero_guia_prestador(numero, i) for i in range(51, 61)}
    assert {guias[n][1][0][0] for n in recusadas} == {"3268"}
    detalhe = detalhe_lote(stack, "cassems", protocolo)  # a situação, no longer the part's refusal
    listed = detalhe.xpath("ans:guiasTISS//ans:numeroGuiaPrestador/text()", namespaces=NS)
    assert listed == [numero_guia_prestador(numero, i) for i in range(1, 51)]
    valores = {g.numero_guia_prestador: g.valor_informado for g in read_lote(reader.read(body).root).guias}
    total = Decimal(detalhe.findtext("ans:valorTotalLote/ans:valorProcessado", namespaces=NS))
    assert total == sum(valores[n] for n in listed)


# --- 2. IPASGO takes a lote in part ----------------------------------------------------------------


def _matriculas(body: bytes, matriculas: tuple[str, ...]) -> bytes:
    """The honorários guides' receivers (dadosContratadoExecutante/codigonaOperadora), hash stamped
    again."""
    message = reader.read(body)
    guias = message.root.find(f"{A}loteGuias/{A}guiasTISS")
    for guia, matricula in zip(guias, matriculas, strict=True):
        guia.find(f"{A}dadosContratadoExecutante/{A}codigonaOperadora").text = matricula
    return hashing.rewrite(message.tree, message.root)


def test_a_guide_ipasgo_refuses_leaves_the_lote_and_its_totals(stack: Stack, running: WorkerProcess) -> None:
    conhecidas = load_profile("ipasgo").matriculas
    numero = new_number()
    body = build_lote("honorarios", 3, envelope=True, numero_lote=numero, sequencial=numero,
                      party=party("ipasgo"))
    body = _matriculas(body, (conhecidas[0], "9999999", conhecidas[1]))  # only IPASGO knows the 2nd is none
    protocolo = protocolo_of(post_lote(stack, "ipasgo", numero, body=body))
    wait_until(lambda: stack.delivered(protocolo), what="entrega do lote de honorários")
    [parte] = stack.entregas(protocolo)

    lote = lote_row(stack, protocolo)
    recusada = numero_guia_prestador(numero, 2)
    guias = guias_row(stack, lote.id)
    assert {n: g[0] for n, g in guias.items()} == {
        numero_guia_prestador(numero, 1): GUIA_ACEITA, recusada: GUIA_RECUSADA,
        numero_guia_prestador(numero, 3): GUIA_ACEITA}
    [(codigo, texto)] = guias[recusada][1]
    assert codigo == "1203" and "9999999" in texto
    assert lote.numero_vigente == numero  # the lote was taken: its number stays taken

    valores = {g.numero_guia_prestador: g.valor_informado for g in read_lote(reader.read(body).root).guias}
    aceitas = [numero_guia_prestador(numero, 1), numero_guia_prestador(numero, 3)]
    detalhe = detalhe_lote(stack, "ipasgo", protocolo)
    assert detalhe.xpath("ans:guiasTISS//ans:numeroGuiaPrestador/text()", namespaces=NS) == aceitas
    total = Decimal(detalhe.findtext("ans:valorTotalLote/ans:valorProcessado", namespaces=NS))
    assert total == sum(valores[g] for g in aceitas) < sum(valores.values())
    assert detalhe.findtext("ans:statusProtocolo", namespaces=NS) == str(parte.status) == "1"

    stack.simulator.advance(hours=25)  # IPASGO: "Em análise" 24 h after receipt
    wait_until(lambda: protocolo_row(stack, protocolo)[0] == 2, what="a análise segundo a IPASGO")
    assert protocolo_row(stack, protocolo)[1][-1] == (2, f"operadora:{OPERADORAS['ipasgo'][0]}")
    detalhe = detalhe_lote(stack, "ipasgo", protocolo)
    assert detalhe.findtext("ans:statusProtocolo", namespaces=NS) == "2"
    assert detalhe.xpath("ans:guiasTISS//ans:numeroGuiaPrestador/text()", namespaces=NS) == aceitas
