"""A relayed real-time call (gateway.delivery.sync_relay) writes its Transacao row once, whole, as
acceptance and status polls do: a trigger refusing any UPDATE of ``transacao`` changes nothing of
the answer or of its replay. SQLite and PostgreSQL, operators simulated in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.message.schema_registry import SchemaRegistry
from gateway.storage.models import Mensagem, Transacao
from tests.db_triggers import no_update_of
from tests.factory import build_request, numero_guia_prestador
from tests.inprocess_operators import InProcess, party


@pytest.fixture
def stack(database_url: str, registry: SchemaRegistry, tmp_path: Path) -> Iterator[InProcess]:
    found = InProcess(database_url, registry, tmp_path, ("capitalprev",))
    yield found
    found.close()


@pytest.fixture
def written_once(stack: InProcess) -> Iterator[None]:
    with no_update_of(stack.engine, "transacao"):
        yield


def test_a_relayed_cancelamento_writes_its_transacao_once(stack: InProcess, written_once: None) -> None:
    protocolo = stack.send_lote("capitalprev", 2, "701")
    stack.deliver()
    data = build_request("cancelaGuiaWS", envelope=True, sequencial="7011", party=party("capitalprev"),
                         numero_guia_prestador=numero_guia_prestador("701", 1), numero_protocolo=protocolo)
    first = stack.post("tissCancelaGuia", data)  # asserts HTTP 200: the trigger would make it a 500
    again = stack.post("tissCancelaGuia", data)  # the replay: the answer the Transacao names
    assert again.findtext(".//{*}sequencialTransacao") == first.findtext(".//{*}sequencialTransacao")
    with stack.sessions() as session:
        requisicao, resposta = session.execute(select(Transacao.requisicao_id, Transacao.resposta_id)
                                               .where(Transacao.sequencial_transacao == "7011")).one()
        assert session.scalar(select(Mensagem.resposta_de_id).where(Mensagem.id == resposta)) == requisicao
