"""What the gateway decides at acceptance from the operators' rules and its own data, end to end
(the gateway under gunicorn, a worker, the simulated operators; SQLite and PostgreSQL):

- IPASGO's partial sending: a guide its rules refuse is refused alone, the lote gets its protocol
  for the others, and only those reach the operator;
- Unimed's field 30 with the operator's own CNPJ or code (the configuration's ``cnpj`` and
  ``codigos_proprios``): refused at once, nothing delivered;
- a provider without a code at PASA: PASA's 1206 at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import cast

import pytest
from lxml import etree
from sqlalchemy import select

from gateway.message import hashing
from gateway.message.lote import read_lote
from gateway.message.responses import guia_da_recusa
from gateway.storage.models import Critica, Entrega, Guia, Lote, Protocolo
from simulator.models import SimGuia, SimLote, SimMensagem
from simulator.profile import load_profile
from tests.console_client import stack_cli
from tests.factory import Party, build_lote, envelope
from tests.forwarding_stack import NS, OPERADORAS, SEM_CONTRATO, Stack, new_number, party, wait_until
from tests.gateway_process import WorkerProcess

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")

DETALHE = ".//ans:protocoloRecebimento/ans:detalheProtocolo/"


def edited(data: bytes, change: Callable[[etree._Element], None]) -> bytes:
    """The SOAP request of the bare ``data`` after ``change(root)``, hash stamped again."""
    tree = etree.ElementTree(etree.fromstring(data))
    change(tree.getroot())
    return envelope(hashing.rewrite(tree, tree.getroot()))


def guias(root: etree._Element) -> list[etree._Element]:
    return root.findall(".//ans:loteGuias/ans:guiasTISS/*", NS)


def numeros(root: etree._Element) -> list[str]:
    return [g.findtext("ans:cabecalhoGuia/ans:numeroGuiaPrestador", namespaces=NS) for g in guias(root)]


def refused_at_once(stack: Stack, body: bytes, code: str) -> etree._Element:
    """The gateway's mensagemErro ``code``, no protocol."""
    response = stack.post("tissLoteGuias", body)
    assert response.status_code == 200, response.text[:2000]
    root = etree.fromstring(response.content)
    assert root.findtext(".//ans:mensagemErro/ans:codigoGlosa", namespaces=NS) == code, response.text[:2000]
    assert root.find(".//ans:protocoloRecebimento", NS) is None
    return root


def nothing_stored(stack: Stack, numero: str) -> None:
    with stack.db.connect() as connection:
        assert connection.scalar(select(Lote.id).where(Lote.numero_lote == numero)) is None


# --- IPASGO: partial sending ---------------------------------------------------------------------


def test_ipasgo_takes_a_lote_in_part_and_gets_only_the_guides_it_takes(stack: Stack,
                                                                       worker: WorkerProcess) -> None:
    numero = new_number()
    data = build_lote("honorarios", 3, numero_lote=numero, sequencial=numero, party=party("ipasgo"))

    def sem_matricula(root: etree._Element) -> None:  # the manual: honorários name who receives them
        guias(root)[2].find("ans:dadosContratadoExecutante/ans:codigonaOperadora", NS).text = " "

    lido = read_lote(etree.fromstring(data))
    aceitas, recusada = [g.numero_guia_prestador for g in lido.guias[:2]], lido.guias[2]
    response = stack.post("tissLoteGuias", edited(data, sem_matricula))
    assert response.status_code == 200, response.text[:2000]
    root = etree.fromstring(response.content)
    protocolo = root.findtext(DETALHE + "ans:numeroProtocolo", namespaces=NS)
    assert protocolo, response.text[:2000]
    listadas = root.findall(DETALHE + "ans:dadosGuiasProtocolo/*/ans:numeroGuiaPrestador", NS)
    assert [g.text for g in listadas] == aceitas
    valor_aceito = sum(g.valor_informado for g in lido.guias[:2])
    assert Decimal(root.findtext(DETALHE + "ans:valorTotalProtocolo", namespaces=NS)) == valor_aceito
    (motivo,) = root.findall(DETALHE + "ans:glosaProtocolo/ans:motivosGlosa/ans:motivoGlosa", NS)
    assert motivo.findtext("ans:codigoGlosa", namespaces=NS) == "1311"
    recusada_numero = recusada.numero_guia_prestador
    assert guia_da_recusa(motivo.findtext("ans:descricaoGlosa", namespaces=NS)) == recusada_numero
    assert Decimal(root.findtext(DETALHE + "ans:glosaProtocolo/ans:vlGlosaProtocolo",
                                 namespaces=NS)) == recusada.valor_informado

    with stack.db.connect() as connection:  # every guide kept, with what became of it
        lote = connection.execute(select(Lote.id, Lote.quantidade_guias)
                                  .where(Lote.numero_lote == numero)).one()
        situacoes = dict(connection.execute(select(Guia.numero_guia_prestador, Guia.situacao)
                                            .where(Guia.lote_id == lote.id)).all())
        criticas = connection.execute(select(Critica.codigo, Guia.numero_guia_prestador)
                                      .join(Guia, Critica.guia_id == Guia.id)
                                      .where(Critica.lote_id == lote.id)).all()
    assert lote.quantidade_guias == 3  # as the provider sent it
    assert situacoes == {aceitas[0]: "aceita", aceitas[1]: "aceita", recusada_numero: "recusada"}
    assert [tuple(c) for c in criticas] == [("1311", recusada_numero)]

    (parte,) = cast(list[Entrega], wait_until(lambda: stack.delivered(protocolo), what="entrega a IPASGO"))
    assert (parte.guias or "").split() == aceitas
    assert stack.operator_lotes("ipasgo", numero) == {numero: 1}
    with stack.sim_db.connect() as connection:  # what IPASGO received and took: the two guides
        sim_lote = connection.execute(select(SimLote.id, SimLote.mensagem_id).where(
            SimLote.registro_ans == OPERADORAS["ipasgo"][0], SimLote.numero_lote == numero)).one()
        tomadas = connection.scalars(select(SimGuia.numero_guia_prestador).where(
            SimGuia.lote_id == sim_lote.id).order_by(SimGuia.id)).all()
        recebido = connection.scalar(select(SimMensagem.corpo).where(SimMensagem.id == sim_lote.mensagem_id))
    assert tomadas == aceitas
    assert numeros(etree.fromstring(recebido)) == aceitas
    # The same two-of-three in the views: the status service and `protocolo show`.
    situacao = stack.status("ipasgo", protocolo)
    detalhe = situacao.find(".//ans:detalheLote", NS)
    assert [g.text for g in detalhe.iterfind(".//ans:numeroGuiaPrestador", NS)] == aceitas
    assert Decimal(detalhe.findtext("ans:valorTotalLote/ans:valorProcessado", namespaces=NS)) == valor_aceito
    shown = json.loads(stack_cli(stack, "protocolo", "show", protocolo, "--json").stdout)
    assert (shown["guias_aceitas"], shown["guias_recusadas"], Decimal(shown["valor_aceito"])) == (
        2, 1, valor_aceito)
    assert [g["guia"] for g in shown["recusadas"]] == [recusada_numero]


# --- Unimed: the SP/SADT executante is not the operator --------------------------------------------


UNIMED = load_profile("unimed")


@pytest.mark.parametrize(("kind", "valor"), [("cnpjContratado", UNIMED.cnpj),
                                             ("codigoPrestadorNaOperadora", UNIMED.codigos_proprios[0])])
def test_unimed_as_its_own_executante_is_refused_at_once(stack: Stack, worker: WorkerProcess, kind: str,
                                                         valor: str) -> None:
    """The manual's field 30 named as Unimed itself, by its CNPJ or its own network's code: the
    gateway knows them from its configuration, so the provider hears it now, not after delivery."""
    numero = new_number()
    data = build_lote("sp-sadt", 2, numero_lote=numero, sequencial=numero, party=party("unimed"))

    def executante(root: etree._Element) -> None:
        for contratado in root.iterfind(".//ans:dadosExecutante/ans:contratadoExecutante", NS):
            contratado[0].tag, contratado[0].text = f"{{{NS['ans']}}}{kind}", valor

    root = refused_at_once(stack, edited(data, executante), "1311")
    assert "campo 30" in root.findtext(".//ans:mensagemErro/ans:descricaoGlosa", namespaces=NS)
    nothing_stored(stack, numero)
    time.sleep(1)  # a worker is running: nothing may reach the operator
    assert stack.operator_lotes("unimed", numero) == {}


# --- PASA: the sender is one of its providers ----------------------------------------------------


def test_a_lote_from_a_provider_without_a_pasa_code_is_refused_at_once(stack: Stack,
                                                                       worker: WorkerProcess) -> None:
    """SEM_CONTRATO has no code at PASA in the gateway's configuration: PASA's own crítica
    ("1206 CPF / CNPJ INVÁLIDO Detalhes: prestador não localizado na operadora"), at once."""
    numero = new_number()
    sender = Party(cnpj=SEM_CONTRATO.cnpj, login=SEM_CONTRATO.login, senha=SEM_CONTRATO.senha,
                   registro_ans=OPERADORAS["pasa"][0])
    body = build_lote("consulta", 2, envelope=True, numero_lote=numero, sequencial=numero, party=sender)
    root = refused_at_once(stack, body, "1206")
    descricao = root.findtext(".//ans:mensagemErro/ans:descricaoGlosa", namespaces=NS)
    assert "não localizado na operadora" in descricao
    nothing_stored(stack, numero)
    with stack.db.connect() as connection:
        assert connection.scalar(select(Entrega.id).join(Protocolo, Entrega.protocolo_id == Protocolo.id)
                                 .join(Lote, Lote.protocolo_id == Protocolo.id)
                                 .where(Lote.numero_lote == numero)) is None
    time.sleep(1)
    assert stack.operator_lotes("pasa", numero) == {}
