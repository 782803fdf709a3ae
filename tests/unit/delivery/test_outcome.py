"""What the operator's answer to a delivered lote means for the lote (gateway.delivery.outcome), on
SQLite and PostgreSQL: a part refused, a part taken without some of its guides, the protocol's
status from its parts; and the worker recording it (and counting the guides)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select

from adapters import Destino, load_adapter
from gateway.config import demo_config
from gateway.delivery import outcome, state
from gateway.delivery.client import Answer
from gateway.delivery.reading import Reading
from gateway.delivery.worker import Worker
from gateway.message import reader, responses
from gateway.message.findings import error
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import SERVICE_BY_NAME
from gateway.message.tables import GUIA_ACEITA, GUIA_CANCELADA, GUIA_RECUSADA, RECUSADO_PELA_OPERADORA
from gateway.storage import rows
from gateway.storage.db import session_factory
from gateway.storage.models import Critica, Entrega, Guia, Lote, Mensagem, Protocolo
from gateway.storage.protocolos import new_protocolo
from tests.db_fixtures import add_prestador_and_mensagem
from tests.factory import Party, build_lote, numero_guia_prestador

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PASA = "331988"
ORIGEM = f"operadora:{PASA}"
# the protocol of a lote refused whole: status, history, numero_vigente
REFUSED_WHOLE = (RECUSADO_PELA_OPERADORA, [(RECUSADO_PELA_OPERADORA, ORIGEM)], None)
REFUSED = Reading("recusada", "[1308] lote repetido", criticas=[error("1308", "lote repetido")])


@dataclass(frozen=True)
class Montado:
    protocolo_id: int
    lote_id: int
    entregas: list[int]  # one per part


def lote_em_partes(engine: Engine, partes: Sequence[Sequence[str]], numero: str = "L1",
                   corpo: bytes = b"x") -> Montado:
    """A lote protocol whose guides went in ``partes`` (numeroGuiaPrestador of each part), each part
    being sent (the operator's answer stored): what the worker holds when it records an answer."""
    with session_factory(engine).begin() as session:
        prestador, _mensagem = add_prestador_and_mensagem(session)
        mensagem = Mensagem(direcao="entrada", tamanho=len(corpo), corpo=corpo, prestador_id=prestador.id)
        session.add(mensagem)
        session.flush()
        protocolo = new_protocolo(session, tipo="lote", prestador_id=prestador.id, registro_ans=PASA, now=NOW)
        guias = [dict(numero_guia_prestador=n, numero_guia_operadora=None, tipo="consulta",
                      numero_carteira="1", valor_informado=Decimal("10.00"), situacao=GUIA_ACEITA)
                 for parte in partes for n in parte]
        lote_id = rows.add_lote(session, dict(
            prestador_id=prestador.id, registro_ans=PASA, numero_lote=numero, numero_vigente=numero,
            tipo_guia="consulta", quantidade_guias=len(guias), valor_informado=Decimal("10.00") * len(guias),
            mensagem_id=mensagem.id, protocolo_id=protocolo.id, criado_em=NOW), guias)
        entregas = []
        for index, parte in enumerate(partes, 1):
            resposta = Mensagem(direcao="entrada", tamanho=1, corpo=b"r", prestador_id=prestador.id)
            session.add(resposta)
            session.flush()
            entrega = Entrega(registro_ans=PASA, servico="tissLoteGuias", prestador_id=prestador.id,
                              mensagem_id=mensagem.id, protocolo_id=protocolo.id, lote_id=lote_id,
                              parte=index, partes=len(partes), sequencial=f"{lote_id}{index}",
                              guias="\n".join(parte), estado=state.State.ENVIANDO, resposta_id=resposta.id)
            session.add(entrega)
            session.flush()
            entregas.append(entrega.id)
        return Montado(protocolo.id, lote_id, entregas)


def refuse(engine: Engine, entrega_id: int, reading: Reading = REFUSED) -> outcome.Desfecho:
    with session_factory(engine).begin() as session:
        entrega = session.get_one(Entrega, entrega_id)
        state.refused(entrega, reading.motivo)
        return outcome.registrar(session, entrega, reading, NOW)


def take(engine: Engine, entrega_id: int, reading: Reading, status: int = 1) -> outcome.Desfecho:
    with session_factory(engine).begin() as session:
        entrega = session.get_one(Entrega, entrega_id)
        state.delivered(entrega, NOW, "OP1")
        entrega.status = status
        return outcome.registrar(session, entrega, reading, NOW)


def situacoes(engine: Engine, lote_id: int) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(select(Guia.numero_guia_prestador, Guia.situacao)
                                       .where(Guia.lote_id == lote_id)).all())


def criticas_das_guias(engine: Engine, lote_id: int) -> dict[str, list[tuple[str | None, str]]]:
    with engine.connect() as connection:
        found = connection.execute(
            select(Guia.numero_guia_prestador, Critica.codigo, Critica.mensagem)
            .join(Guia, Guia.id == Critica.guia_id).where(Critica.lote_id == lote_id)
            .order_by(Critica.id)).all()
    criticas: dict[str, list[tuple[str | None, str]]] = {}
    for numero, codigo, mensagem in found:
        criticas.setdefault(numero, []).append((codigo, mensagem))
    return criticas


def protocolo(engine: Engine, montado: Montado) -> tuple[int, list[tuple[int, str]], str | None]:
    """(status, history as (status, origem) after the first, the lote's numero_vigente)."""
    with session_factory(engine)() as session:
        found = session.get_one(Protocolo, montado.protocolo_id)
        lote = session.get_one(Lote, montado.lote_id)
        return found.status, [(h.status, h.origem) for h in found.historico[1:]], lote.numero_vigente


def receipt(numero_lote: str, recebidas: Sequence[str],
            motivos: Sequence[responses.GuiaRecusada] = ()) -> Reading:
    """The operator's protocoloRecebimento listing ``recebidas``, with ``motivos`` in glosaProtocolo."""
    request = reader.read(build_lote("consulta", 1, party=Party(registro_ans=PASA)))
    ctx = responses.reply_context(request.root, registro_ans=PASA, sequencial="9", now=NOW)
    root = responses.protocolo_recebimento(
        ctx, numero_lote=numero_lote, numero_protocolo="OP1", data_envio_lote=date(2026, 11, 21),
        valor_total=Decimal("10.00") * len(recebidas), recusadas=motivos,
        guias=[responses.GuiaRecebida(n, None, "1", Decimal("10.00")) for n in recebidas])
    return Reading("entregue", message=reader.read(responses.envelope(root)), numero_protocolo="OP1")


# --- a part refused --------------------------------------------------------------------------------


def test_a_lote_refused_whole_is_recusado_pela_operadora_and_frees_its_number(db_engine: Engine) -> None:
    montado = lote_em_partes(db_engine, [["G1", "G2"]])
    assert refuse(db_engine, montado.entregas[0]) == outcome.Desfecho(recusadas=2)
    assert situacoes(db_engine, montado.lote_id) == {"G1": GUIA_RECUSADA, "G2": GUIA_RECUSADA}
    assert criticas_das_guias(db_engine, montado.lote_id) == {"G1": [("1308", "lote repetido")],
                                                              "G2": [("1308", "lote repetido")]}
    assert protocolo(db_engine, montado) == REFUSED_WHOLE


def test_a_lote_is_refused_whole_only_once_every_part_is(db_engine: Engine) -> None:
    montado = lote_em_partes(db_engine, [["G1", "G2"], ["G3"]])
    assert refuse(db_engine, montado.entregas[1]) == outcome.Desfecho(recusadas=1)
    assert situacoes(db_engine, montado.lote_id) == {"G1": GUIA_ACEITA, "G2": GUIA_ACEITA,
                                                     "G3": GUIA_RECUSADA}
    assert protocolo(db_engine, montado) == (1, [], "L1")  # the other part may still be taken
    refuse(db_engine, montado.entregas[0])
    assert protocolo(db_engine, montado) == REFUSED_WHOLE


def test_a_refused_part_leaves_the_protocol_to_the_parts_the_operator_took(db_engine: Engine) -> None:
    montado = lote_em_partes(db_engine, [["G1"], ["G2"]])
    take(db_engine, montado.entregas[0], receipt("L1-1", ["G1"]), status=3)
    assert protocolo(db_engine, montado)[0] == 1  # a part still on its way: "Recebido"
    refuse(db_engine, montado.entregas[1])
    assert protocolo(db_engine, montado) == (3, [(3, ORIGEM)], "L1")


def test_a_cancelled_guide_stays_cancelled_when_its_part_is_refused(db_engine: Engine) -> None:
    montado = lote_em_partes(db_engine, [["G1", "G2"]])
    with session_factory(db_engine).begin() as session:
        rows.set_situacao_guias(session, [rows.guia_ids(session, montado.lote_id)["G2"]], GUIA_CANCELADA)
    assert refuse(db_engine, montado.entregas[0]) == outcome.Desfecho(recusadas=1)
    assert situacoes(db_engine, montado.lote_id) == {"G1": GUIA_RECUSADA, "G2": GUIA_CANCELADA}


# --- a part taken without some of its guides ------------------------------------------------------


def test_a_receipt_listing_every_guide_refuses_none(db_engine: Engine) -> None:
    montado = lote_em_partes(db_engine, [["G1", "G2"]])
    assert take(db_engine, montado.entregas[0], receipt("L1", ["G1", "G2"])) == outcome.Desfecho(aceitas=2)
    assert set(situacoes(db_engine, montado.lote_id).values()) == {GUIA_ACEITA}
    assert criticas_das_guias(db_engine, montado.lote_id) == {}


MATRICULA = responses.GuiaRecusada("G2", "1203", "1203 - CÓDIGO PRESTADOR INVÁLIDO - matrícula 9",
                                   Decimal(10))
OUTRA = responses.GuiaRecusada("G9", "1311", "sem matrícula", Decimal(10))


@pytest.mark.parametrize(("motivos", "sem_motivo"), [
    ([MATRICULA], "1203"),  # the receipt's only motive: it can only be about the guides left out
    ([MATRICULA, OUTRA], outcome.CODIGO_NAO_CONSTA),
], ids=["one-motive", "two-motives"])
def test_guides_left_out_of_the_receipt_are_refused_with_the_motive_naming_them(
        db_engine: Engine, motivos: list[responses.GuiaRecusada], sem_motivo: str) -> None:
    montado = lote_em_partes(db_engine, [["G1", "G2", "G3"]])
    desfecho = take(db_engine, montado.entregas[0], receipt("L1", ["G1"], motivos))
    assert desfecho == outcome.Desfecho(aceitas=1, recusadas=2)
    assert situacoes(db_engine, montado.lote_id) == {"G1": GUIA_ACEITA, "G2": GUIA_RECUSADA,
                                                     "G3": GUIA_RECUSADA}
    assert criticas_das_guias(db_engine, montado.lote_id) == {
        "G2": [("1203", "1203 - CÓDIGO PRESTADOR INVÁLIDO - matrícula 9")],
        "G3": [(sem_motivo, outcome.NAO_CONSTA)]}
    assert protocolo(db_engine, montado) == (1, [], "L1")  # the lote was taken: its number stays


def test_a_receipt_without_motives_refuses_the_missing_guides_with_the_generic_critica(
        db_engine: Engine) -> None:
    montado = lote_em_partes(db_engine, [["G1", "G2"]])
    take(db_engine, montado.entregas[0], receipt("L1", ["G2"]))
    assert criticas_das_guias(db_engine, montado.lote_id) == {"G1": [("5002", outcome.NAO_CONSTA)]}
    assert "5002" in responses.codigos_glosa("4.01.00")


# --- the protocol's status ----------------------------------------------------------------------------


def test_a_protocol_refused_by_the_operator_is_final(db_engine: Engine) -> None:
    montado = lote_em_partes(db_engine, [["G1"]])
    refuse(db_engine, montado.entregas[0])
    with session_factory(db_engine).begin() as session:  # asked again (a poll, a repeated answer)
        outcome.atualizar_protocolo(session, montado.protocolo_id, PASA, NOW)
    assert protocolo(db_engine, montado) == REFUSED_WHOLE  # said once in the history


def test_other_services_are_none_of_its_business(db_engine: Engine) -> None:
    montado = lote_em_partes(db_engine, [["G1"]])
    with session_factory(db_engine).begin() as session:
        entrega = session.get_one(Entrega, montado.entregas[0])
        entrega.servico = "tissRecursoGlosa"
        assert outcome.registrar(session, entrega, REFUSED, NOW) == outcome.Desfecho()
    assert situacoes(db_engine, montado.lote_id) == {"G1": GUIA_ACEITA}


# --- the worker records it --------------------------------------------------------------------------


class RefusingOperator:
    """An operator answering every call with the service's mensagemErro (1308)."""

    def client(self, registro_ans: str, versao: str) -> RefusingOperator:
        return self

    def call(self, servico: str, corpo: bytes) -> Answer:
        ctx = responses.reply_context(reader.read(corpo).root, registro_ans=PASA, sequencial="9", now=NOW)
        answer = responses.mensagem_erro(ctx, SERVICE_BY_NAME[servico], "1308", "lote repetido")
        return Answer(200, responses.envelope(answer), "text/xml")


def guias_counted(situacao: str) -> float:
    labels = {"operadora": PASA, "situacao": situacao}
    return REGISTRY.get_sample_value("tiss_gateway_guias_total", labels) or 0.0


def test_the_worker_records_the_refusal_and_counts_the_guides(db_engine: Engine,
                                                               registry: SchemaRegistry) -> None:
    corpo = build_lote("consulta", 2, numero_lote="77", party=Party(registro_ans=PASA))
    numeros = [numero_guia_prestador("77", 1), numero_guia_prestador("77", 2)]
    montado = lote_em_partes(db_engine, [numeros], numero="77", corpo=corpo)
    with session_factory(db_engine).begin() as session:  # not sent yet: pending, as accepted
        entrega = session.get_one(Entrega, montado.entregas[0])
        entrega.estado, entrega.proxima_em, entrega.partes, entrega.guias = "pendente", NOW, None, None
        entrega.resposta_id = entrega.sequencial = None
    adapter = load_adapter("pasa", Destino(PASA, ("4.03.00",)), registry)
    worker = Worker(demo_config("127.0.0.1:9000"), registry, session_factory(db_engine), {PASA: adapter},
                    clock=lambda: NOW, clients=RefusingOperator())  # type: ignore[arg-type]
    before = guias_counted(GUIA_RECUSADA)
    assert worker.run_once() == 1
    assert situacoes(db_engine, montado.lote_id) == dict.fromkeys(numeros, GUIA_RECUSADA)
    assert protocolo(db_engine, montado) == REFUSED_WHOLE
    assert guias_counted(GUIA_RECUSADA) == before + 2
