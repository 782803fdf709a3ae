"""One status truth in every view (issue 14): the console over HTTP and the ``protocolo show`` /
``lote list`` commands, against the real gateway (tests/forwarding_stack), on SQLite and on
PostgreSQL. The lotes are written straight to the gateway's database as the gateway stores them
once the operator has answered (tests/unit/console/seed_outcome.py): no operator flow is needed to
read them.

* a lote the operator refused whole: protocol status 99 "Recusado pela operadora" with its crítica,
  in the console (light, filter, history, refusals page) and the commands;
* a lote taken in part (2 guides accepted, 1 refused with its crítica): counts, accepted value,
  the glosa chart over the accepted guides only;
* a resubmission under the refused lote's number: linked both ways.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from gateway.console.desfecho import GATEWAY, OPERADORA
from gateway.storage.db import session_factory
from tests.console_client import Console, add_outro_prestador, add_usuarios, doc, lote_ids, stack_cli
from tests.forwarding_stack import Stack, new_number
from tests.unit.console import seed_outcome as seed

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")

RECUSADO = "Recusado pela operadora"


@pytest.fixture(scope="module")
def users(stack: Stack) -> Stack:
    add_outro_prestador(stack)
    add_usuarios(stack)
    return stack


def console(stack: Stack, login: str = "clinica.demo") -> Console:
    client = Console(stack.gateway.base_url)
    assert client.login(login).status_code == 303
    return client


def text(tree, xpath: str) -> str:
    return " ".join(tree.xpath(f"string({xpath})").split())


def show(stack: Stack, protocolo: str) -> dict:
    done = stack_cli(stack, "protocolo", "show", protocolo, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def seed_and_commit(users: Stack, build) -> seed.Semeado:
    with session_factory(users.db).begin() as session:
        return build(session)


def test_a_lote_the_operator_refused_whole_says_so_everywhere(users: Stack) -> None:
    numero = new_number()
    lote = seed_and_commit(users, lambda s: seed.recusado_pela_operadora(s, numero))
    client = console(users)
    page = doc(client.get(f"/lotes/{lote.lote_id}"))
    assert text(page, '//*[@id="resumo-lote"]//*[@data-situacao]') == RECUSADO
    assert page.xpath('string(//*[@id="resumo-lote"]//span[@data-situacao]/@class)') == "luz luz-vermelha"
    assert text(page, '//*[@id="guias-aceitas"]') == "aceitas 0 de 2 (2 recusadas)"
    for row in page.xpath('//section[@id="guias"]//tr[@data-guia]'):
        assert row.xpath("string(.//@data-situacao-guia)") == "recusada"
        assert text(row, './/*[@class="critica-guia"]') == " ".join(seed.NAO_CADASTRADO)
    (ultimo,) = page.xpath('//section[@id="historico"]//tbody/tr[last()]')
    assert RECUSADO in text(ultimo, "td[2]") and text(ultimo, "td[3]") == "Operadora pasa (331988)"
    codigos = page.xpath('//section[@id="criticas"]//td[@class="codigo"]/text()')
    assert codigos and set(codigos) == {seed.NAO_CADASTRADO[0]}
    capa = doc(client.get(f"/lotes/{lote.lote_id}/capa"))
    assert text(capa, '//*[@class="capa-situacao"]//*[@data-situacao]') == RECUSADO

    assert lote.lote_id in lote_ids(client.get("/lotes?situacao=recusado"))
    assert lote.lote_id not in lote_ids(client.get("/lotes?situacao=1"))
    (row,) = doc(client.get(f"/lotes?q={lote.protocolo}")).xpath("//tr[@data-lote-id]")
    assert text(row, ".//*[@data-situacao]") == RECUSADO
    assert text(row, './/*[contains(@class,"guias-aceitas")]') == "0 de 2"

    data = show(users, lote.protocolo)
    assert data["status"] == f"99 {RECUSADO}" and data["critica"] == " ".join(seed.NAO_CADASTRADO)
    assert (data["guias"], data["guias_aceitas"], data["guias_recusadas"], data["valor_aceito"]) == \
        (2, 0, 2, "0.00")
    assert [(g["guia"], g["critica"], g["por"]) for g in data["recusadas"]] == [
        (f"R{i}", " ".join(seed.NAO_CADASTRADO), OPERADORA) for i in (1, 2)]
    assert data["historico"][-1].endswith(f" 99 {RECUSADO} (operadora:331988)")
    human = stack_cli(users, "protocolo", "show", lote.protocolo).stdout.splitlines()
    assert f"status: 99 {RECUSADO}" in human and f"critica: {' '.join(seed.NAO_CADASTRADO)}" in human
    listed = stack_cli(users, "lote", "list", "--json")
    (linha,) = [r for r in json.loads(listed.stdout) if r["protocolo"] == lote.protocolo]
    assert (linha["status"], linha["aceitas"], linha["recusadas"]) == (f"99 {RECUSADO}", 0, 2)


def test_a_lote_taken_in_part_counts_only_its_accepted_guides(users: Stack) -> None:
    numero = new_number()
    registro = "990001"  # an operator of its own: the glosa chart's row is this lote's alone
    analisadas = [("A1", Decimal("60.00"), Decimal("10.00")), ("A2", Decimal("40.00"), Decimal("0.00"))]
    corpo = seed.situacao_analisada(registro, analisadas, glosa=Decimal("10.00"))
    lote = seed_and_commit(users, lambda s: seed.aceito_em_parte(s, numero, registro=registro, status=[3],
                                                                 entrega="entregue", situacao_corpo=corpo))
    client = console(users)
    page = doc(client.get(f"/lotes/{lote.lote_id}"))
    assert text(page, '//*[@id="resumo-lote"]//*[@data-situacao]') == "Liberado para pagamento"
    assert text(page, '//*[@id="guias-aceitas"]') == "aceitas 2 de 3 (1 recusada)"
    assert page.xpath('string(//*[@id="valor-aceito"]/@data-valor)') == "100.00"
    guias = {r.get("data-guia"): r for r in page.xpath('//section[@id="guias"]//tr[@data-guia]')}
    assert {n: r.xpath("string(.//@data-situacao-guia)") for n, r in guias.items()} == {
        "A1": "aceita", "A2": "aceita", "A3": "recusada"}
    assert text(guias["A3"], './/*[@class="critica-guia"]') == " ".join(seed.PROFISSIONAL)
    assert guias["A3"].xpath("string(.//@data-recusada-por)") == GATEWAY
    assert text(guias["A1"], "td[last()]") == "—"
    (row,) = doc(client.get(f"/lotes?q={lote.protocolo}")).xpath("//tr[@data-lote-id]")
    assert text(row, './/*[contains(@class,"guias-aceitas")]') == "2 de 3"
    assert row.xpath('string(.//*[contains(@class,"valor-aceito")]/@data-valor)') == "100.00"

    chart = doc(client.get(f"/graficos?operadora={registro}"))
    (taxa,) = chart.xpath("//table[@id='tabela-glosa']//tr[td]")
    assert taxa.xpath("string(td[3]/@data-valor)") == "100.00"  # not 600.00: A3 never reached the operator
    assert taxa.xpath("string(td[4]/@data-valor)") == "10.00" and text(taxa, "td[5]") == "10,0%"

    data = show(users, lote.protocolo)
    assert (data["guias"], data["guias_aceitas"], data["guias_recusadas"], data["valor_aceito"]) == \
        (3, 2, 1, "100.00")
    assert data["recusadas"] == [{"guia": "A3", "valor": "500.00", "critica": " ".join(seed.PROFISSIONAL),
                                  "por": GATEWAY}]
    human = stack_cli(users, "protocolo", "show", lote.protocolo).stdout
    assert f"A3 (500.00) recusada pelo gateway no recebimento (regras da operadora): " \
           f"{' '.join(seed.PROFISSIONAL)}" in human
    listed = json.loads(stack_cli(users, "lote", "list", "--operadora", registro, "--json").stdout)
    assert [(r["aceitas"], r["recusadas"], r["valor"], r["valor_aceito"]) for r in listed] == [
        (2, 1, "600.00", "100.00")]


def test_a_resubmission_links_to_the_refused_lote_and_back(users: Stack) -> None:
    numero = new_number()

    def build(session: Session) -> tuple[seed.Semeado, seed.Semeado]:
        recusado = seed.recusado_pela_operadora(session, numero)
        return recusado, seed.aceito_em_parte(session, numero, reenvio_de_id=recusado.lote_id)

    recusado, reenvio = seed_and_commit(users, build)
    client = console(users)
    page = doc(client.get(f"/lotes/{recusado.lote_id}"))
    (link,) = page.xpath('//*[@id="reenviado-como"]/a')
    assert link.get("href") == f"/console/lotes/{reenvio.lote_id}" and reenvio.protocolo in link.text
    followed = doc(client.get(link.get("href").removeprefix("/console")))
    (back,) = followed.xpath('//*[@id="reenvio-de"]/a')
    assert back.get("href") == f"/console/lotes/{recusado.lote_id}" and recusado.protocolo in back.text
    assert "recusado pela operadora em" in text(followed, '//*[@id="reenvio-de"]')
    assert not followed.xpath('//*[@id="reenviado-como"]')
    assert console(users, "clinica.b").get(f"/lotes/{recusado.lote_id}").status_code == 404

    antes, depois = show(users, recusado.protocolo), show(users, reenvio.protocolo)
    assert antes["reenvio_de"] is None and antes["reenviado_como"]["protocolo"] == reenvio.protocolo
    assert depois["reenviado_como"] is None and depois["reenvio_de"]["protocolo"] == recusado.protocolo
    assert depois["reenvio_de"]["recusado_em"]
    human = stack_cli(users, "protocolo", "show", reenvio.protocolo).stdout
    assert f"reenvio de: protocolo {recusado.protocolo} (lote {numero}," in human


def test_the_refusals_page_puts_each_refusal_under_its_heading(users: Stack) -> None:
    def build(session: Session) -> tuple[seed.Semeado, seed.Semeado, int]:
        return (seed.recusado_pela_operadora(session, new_number()),
                seed.aceito_em_parte(session, new_number()), seed.recusada_pelo_gateway(session))

    recusado, parcial, no_gateway = seed_and_commit(users, build)
    page = doc(console(users).get("/recusadas"))
    assert text(page, '//section[@id="recusadas-com-protocolo"]/h2') == \
        "Lotes recusados pela operadora ou aceitos em parte"
    assert text(page, '//section[@id="recusadas-pelo-gateway"]/h2') == "Mensagens recusadas pelo gateway"
    lotes = {int(r.get("data-lote-recusado")): r for r in page.xpath(
        '//section[@id="recusadas-com-protocolo"]//tr[@data-lote-recusado]')}
    assert {recusado.lote_id, parcial.lote_id} <= set(lotes)
    assert text(lotes[recusado.lote_id], ".//*[@data-situacao]") == RECUSADO
    assert lotes[recusado.lote_id].xpath("string(.//@data-recusadas-por)") == OPERADORA
    assert lotes[parcial.lote_id].xpath("string(.//@data-recusadas-por)") == GATEWAY
    mensagens = {int(i) for i in page.xpath('//section[@id="recusadas-pelo-gateway"]//tr/@data-mensagem')}
    assert no_gateway in mensagens
    # The operator's answer refusing the lote, and the lote message taken in part, got a protocol:
    # never under "nenhuma delas virou protocolo nem foi enviada à operadora".
    assert recusado.resposta_id not in mensagens and parcial.mensagem_id not in mensagens
    outro = doc(console(users, "clinica.b").get("/recusadas"))  # another provider's refusals are not shown
    assert not outro.xpath(f'//tr[@data-lote-recusado="{recusado.lote_id}"]')
