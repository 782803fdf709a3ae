"""No credential at rest (issue 16, finding 3): the senhaPrestador a provider logs in with is in no
stored row of the gateway's database, SQLite or PostgreSQL, whatever went through it (a lote
delivered and tracked to its end, signed for IPASGO; a status query; a real-time relay; a refused
login), while the operator still receives the real senha, with a hash and signature that hold;
the console says the value was removed and shows the original's SHA-256.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import MetaData, select

from gateway.message import credencial
from gateway.storage.models import Entrega, Mensagem
from simulator.models import SimMensagem
from tests.console_client import SENHA, Console, stack_cli
from tests.factory import Party, build_lote, build_request
from tests.forwarding_stack import GUIDE, OPERADORAS, Stack, new_number, party, wait_until
from tests.gateway_process import WorkerProcess

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")

SENHA_MD5 = Party().senha_md5  # the demo provider's, what it logs in with
OUTRA_SENHA = Party(senha="outra-senha-errada").senha_md5  # a wrong one: refused, stored refused


@pytest.fixture(scope="module")
def users(stack: Stack) -> Stack:
    done = stack_cli(stack, "usuario", "add", "admin.teste", "--nome", "Admin", "--papel", "admin",
                     "--senha-stdin", stdin=SENHA + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    return stack


def secrets_at_rest(stack: Stack, *secrets: str) -> list[str]:
    """table.column#row of every stored value (any table, any column) holding one of ``secrets``."""
    needles = [s.encode() for secret in secrets for s in (secret.lower(), secret.upper())]
    found = []
    with stack.db.connect() as connection:
        metadata = MetaData()
        metadata.reflect(bind=connection)
        for table in metadata.sorted_tables:
            for number, row in enumerate(connection.execute(select(table))):
                for column, value in row._mapping.items():
                    data = value.encode() if isinstance(value, str) else bytes(value) \
                        if isinstance(value, bytes | memoryview) else None
                    if data is not None and any(needle in data for needle in needles):
                        found.append(f"{table.name}.{column}#{number}")
    return found


def sequencial(corpo: bytes) -> str:
    return re.search(rb"sequencialTransacao>\s*(\w+)\s*<", corpo).group(1).decode()


def final(stack: Stack, protocolo: str) -> list[Entrega] | None:
    parts = stack.entregas(protocolo)
    return parts if parts and all(p.estado == "entregue" and p.proxima_consulta_em is None
                                  for p in parts) else None


@pytest.mark.parametrize("key", ["pasa", "ipasgo"])  # IPASGO: signed by the gateway's adapter
def test_no_senha_at_rest_and_the_operator_gets_the_real_one(users: Stack, worker: WorkerProcess,
                                                              key: str) -> None:
    stack = users
    numero = new_number()
    body = build_lote(GUIDE[key], 2, envelope=True, numero_lote=numero, sequencial=numero, party=party(key))
    assert SENHA_MD5.encode() in body
    response = stack.post("tissLoteGuias", body)
    assert response.status_code == 200, response.text[:2000]
    protocolo = re.search(rb"<ans:numeroProtocolo>(\w+)</ans:numeroProtocolo>", response.content).group(1)
    parts = wait_until(lambda: stack.delivered(protocolo.decode()), what="entrega")
    assert all(p.senha_cifrada for p in parts)  # tracked: the status queries need it
    assert stack.status(key, protocolo.decode()) is not None  # answered by the gateway, stored both ways
    relay_numero = new_number()
    relay = stack.post("tissVerificaElegibilidade", build_request(
        "pedidoElegibilidadeWS", envelope=True, sequencial=relay_numero, party=party(key),
        numero_carteira=OPERADORAS[key][0] + "0000012345"))
    assert relay.status_code == 200, relay.text[:2000]
    refused = stack.post("tissLoteGuias", build_lote(
        GUIDE[key], 1, envelope=True, sequencial=new_number(), party=Party(
            senha="outra-senha-errada", registro_ans=OPERADORAS[key][0],
            codigo_na_operadora=OPERADORAS[key][1])))
    assert refused.status_code == 500 and "LoginInvalido" in refused.text
    wait_until(lambda: stack.entregas(protocolo.decode())[0].situacao_id, what="consulta de situação")

    stack.simulator.advance(days=30)  # to the end of the operator's flow: nothing more to send
    ended = wait_until(lambda: final(stack, protocolo.decode()), what="situação final")
    assert all(p.senha_cifrada is None for p in ended)
    assert secrets_at_rest(stack, SENHA_MD5, OUTRA_SENHA) == []

    with stack.db.connect() as connection:
        accepted = connection.execute(select(Mensagem).where(
            Mensagem.sequencial_transacao == numero, Mensagem.servico == "tissLoteGuias",
            Mensagem.direcao == "entrada", Mensagem.resultado == "aceita")).one()
        sent = connection.execute(select(Mensagem).where(Mensagem.id == ended[0].envio_id)).one()
        polled = connection.execute(select(Mensagem).where(Mensagem.id == ended[0].situacao_id)).one()
        query = connection.execute(select(Mensagem).where(Mensagem.id == polled.resposta_de_id)).one()
        relayed = connection.execute(select(Mensagem).where(  # what the relay sent the operator
            Mensagem.resposta_de_id == select(Mensagem.id).where(
                Mensagem.sequencial_transacao == relay_numero, Mensagem.direcao == "entrada",
                Mensagem.servico == "tissVerificaElegibilidade",
                Mensagem.resposta_de_id.is_(None)).scalar_subquery(),  # the provider's request
            Mensagem.direcao == "saida", Mensagem.sha256_original.is_not(None))).one()
    assert accepted.corpo == credencial.redact(body).corpo  # the bytes received, the senha masked
    assert accepted.sha256_original == hashlib.sha256(body).hexdigest()
    assert accepted.tamanho_original == accepted.tamanho == len(body)
    with stack.sim_db.connect() as connection:
        received = {row.sequencial_transacao: row for row in connection.execute(select(SimMensagem).where(
            SimMensagem.registro_ans == OPERADORAS[key][0], SimMensagem.direcao == "entrada",
            SimMensagem.sequencial_transacao.in_([sequencial(m.corpo) for m in (sent, query, relayed)])))}
    # What the operator took (the lote, a status poll, a relay): the real senha; hash and signature checked.
    for stored in (sent, query, relayed):
        operator = received[sequencial(stored.corpo)]
        assert SENHA_MD5.encode() in operator.corpo and operator.resultado == "aceita", operator.codigo_erro
        assert SENHA_MD5.encode() not in stored.corpo and b"*" * 32 in stored.corpo
        sent_bytes = stored.corpo.replace(b"*" * 32, SENHA_MD5.encode())  # what the worker posted
        assert stored.sha256_original == hashlib.sha256(sent_bytes).hexdigest()
        assert re.sub(rb"^<\?xml[^>]*\?>\s*", b"", sent_bytes) in operator.corpo  # in zeep's envelope
    if key == "ipasgo":
        assert b"SignatureValue" in received[sent.sequencial_transacao].corpo

    console = Console(stack.gateway.base_url)
    assert console.login("admin.teste").status_code == 303
    for shown in (accepted, sent):
        page = console.get(f"/mensagens/{shown.id}")
        assert page.status_code == 200, page.text[:2000]
        assert "senhaPrestador removida antes de armazenar" in page.text
        assert shown.sha256_original in page.text and SENHA_MD5 not in page.text
    download = console.get(f"/mensagens/{sent.id}/xml")
    assert download.content == sent.corpo and SENHA_MD5.encode() not in download.content
    assert download.headers["X-TISS-Senha-Removida"].startswith("senhaPrestador removida antes de armazenar")
    assert "sem-senha" in download.headers["Content-Disposition"]
