"""Operator protocol numbers in the texts a provider reads become the gateway's
(gateway.delivery.numeros), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree
from sqlalchemy import Engine

from gateway.delivery import numeros
from gateway.message.services import ANS_NS
from gateway.storage.db import session_factory
from gateway.storage.models import Entrega
from gateway.storage.protocolos import insert_protocolo
from tests.db_fixtures import add_prestador_and_mensagem

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
PASA = "331988"



def test_candidates_are_the_tokens_with_a_digit() -> None:
    assert numeros.candidatos("Protocolo de recurso 48761 não localizado (lote 555-2, 2026-01-05).") == {
        "48761", "555-2", "2026-01-05"}
    assert numeros.candidatos("Login ou senha inválidos.") == set()


def test_only_whole_tokens_are_replaced() -> None:
    traducoes = {"48761": "000000000123"}
    assert numeros.substituir("Protocolo 48761 não localizado; 148761 e 48761-2 não.", traducoes) == \
        "Protocolo 000000000123 não localizado; 148761 e 48761-2 não."
    assert numeros.substituir("48761.", traducoes) == "000000000123."
    assert numeros.substituir("sem números", {}) == "sem números"


def test_free_text_is_the_sentences_not_the_values() -> None:
    a = f"{{{ANS_NS}}}"
    root = etree.fromstring(f'<ans:r xmlns:ans="{ANS_NS}"><ans:numeroProtocolo>48761</ans:numeroProtocolo>'
                            "<ans:m><ans:codigoGlosa>3291</ans:codigoGlosa><ans:descricaoGlosa>"
                            "Protocolo 48761 não localizado.</ans:descricaoGlosa></ans:m>"
                            "<ans:nrProtocoloRecursoGlosa>4 8</ans:nrProtocoloRecursoGlosa></ans:r>")
    found = [etree.QName(e).localname for e in numeros.textos_livres(root, {f"{a}nrProtocoloRecursoGlosa"})]
    assert found == ["descricaoGlosa"]


def _delivered(engine: Engine, numero_operadora: str) -> tuple[int, str]:
    """A provider's protocol delivered to PASA, which gave it ``numero_operadora``."""
    with session_factory(engine).begin() as session:
        prestador, mensagem = add_prestador_and_mensagem(session)
        protocolo_id, numero = insert_protocolo(session, tipo="lote", prestador_id=prestador.id,
                                                registro_ans=PASA, now=NOW)
        session.add(Entrega(registro_ans=PASA, servico="tissLoteGuias", prestador_id=prestador.id,
                            mensagem_id=mensagem.id, protocolo_id=protocolo_id, estado="entregue",
                            numero_protocolo=numero_operadora))
        return prestador.id, numero


def test_a_text_names_the_gateways_protocol_of_this_provider_at_this_operator(db_engine: Engine) -> None:
    prestador_id, numero = _delivered(db_engine, "48761")
    texto = "Protocolo de recurso 48761 não localizado (guia 555)."
    with db_engine.connect() as connection:
        def traduzido(prestador: int, registro: str) -> str:
            return numeros.traduzir_texto(connection, texto, prestador_id=prestador, registro_ans=registro)

        assert traduzido(prestador_id, PASA) == f"Protocolo de recurso {numero} não localizado (guia 555)."
        assert traduzido(prestador_id + 1, PASA) == texto  # another provider's numbers are not its
        assert traduzido(prestador_id, "331872") == texto
    with session_factory(db_engine)() as session:  # a Session works as well (the relay's)
        found = numeros.da_operadora(session, ["48761", "1"], prestador_id=prestador_id, registro_ans=PASA)
    assert found == {"48761": numero}
