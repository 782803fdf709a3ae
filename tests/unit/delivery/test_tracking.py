"""Protocol tracking on its own: what the worker gives the tracker, and one poll against a fake
operator (a valid situacaoProtocoloWS answer), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, event

from adapters import Adapter, Destino, load_adapter
from gateway.config import demo_config
from gateway.delivery.client import Answer
from gateway.delivery.state import State
from gateway.delivery.tracking import Tracker, TrackerContext
from gateway.delivery.worker import Worker
from gateway.message import reader
from gateway.message.responses import GuiaRecebida, ValorTotal, envelope, reply_context, situacao_protocolo
from gateway.message.schema_registry import SchemaRegistry
from gateway.storage.db import session_factory
from gateway.storage.models import Entrega, Protocolo
from gateway.storage.protocolos import new_protocolo
from tests.db_fixtures import add_prestador_and_mensagem
from tests.factory import Party, build_lote

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PASA = "331988"


class FakeOperator:
    """An operator client answering every status query with ``status`` (the calls are kept)."""

    def __init__(self, status: int):
        self.status = status
        self.calls: list[tuple[str, bytes]] = []
        self.versoes: list[str] = []  # the version of the endpoint of each call

    def client(self, registro_ans: str, versao: str) -> FakeOperator:
        self.versoes.append(versao)
        return self

    def call(self, servico: str, corpo: bytes) -> Answer:
        self.calls.append((servico, corpo))
        ctx = reply_context(reader.read(corpo).root, registro_ans=PASA, sequencial="77", now=NOW)
        valores = ValorTotal(Decimal("100.00"), Decimal("10.00"), Decimal("90.00"))
        guia = GuiaRecebida("1", None, "123456", Decimal("100.00"), valores=valores)
        answer = situacao_protocolo(ctx, numero_protocolo="P1", numero_lote="1", status=self.status,
                                    data_envio_lote=date(2026, 11, 20), valor_total=valores, guias=[guia])
        return Answer(200, envelope(answer), "text/xml")


def pasa(registry: SchemaRegistry, versoes: tuple[str, ...] = ("4.03.00",)) -> Adapter:
    return load_adapter("pasa", Destino(PASA, versoes), registry)


def worker(engine: Engine, registry: SchemaRegistry, operator: FakeOperator,
           versoes: tuple[str, ...] = ("4.03.00",)) -> Worker:
    return Worker(demo_config("127.0.0.1:9000"), registry, session_factory(engine),
                  {PASA: pasa(registry, versoes)}, clock=lambda: NOW, clients=operator)  # type: ignore[arg-type]


def delivered_lote(engine: Engine, registry: SchemaRegistry, version: str = "4.03.00",
                   versoes: tuple[str, ...] = ("4.03.00",)) -> int:
    """A PASA lote (sent by the provider in ``version``) delivered an hour ago, its status due for a
    query."""
    lote = reader.read(build_lote("consulta", 1, version=version, party=Party(registro_ans=PASA)))
    [envio] = pasa(registry, versoes).preparar(lote, sequenciais=["501"], agora=NOW)
    with session_factory(engine).begin() as session:
        prestador, mensagem = add_prestador_and_mensagem(session)
        entrega = Entrega(registro_ans=PASA, servico="tissLoteGuias", prestador_id=prestador.id,
                          mensagem_id=mensagem.id, estado=State.ENTREGUE, corpo=envio.corpo, partes=1,
                          sequencial="501", numero_protocolo="P1", status=1, status_em=NOW,
                          proxima_consulta_em=NOW - timedelta(hours=1), entregue_em=NOW - timedelta(hours=1))
        session.add(entrega)
        session.flush()
        return entrega.id


def test_the_tracker_gets_what_it_needs_from_the_worker_not_the_worker(db_engine: Engine,
                                                                       registry: SchemaRegistry) -> None:
    made = worker(db_engine, registry, FakeOperator(3))
    context = made.tracker.context
    assert [f.name for f in dataclasses.fields(TrackerContext)] == [
        "sessions", "clock", "settings", "breaker", "client", "registry", "adapters", "poll_timeout_s"]
    assert context.poll_timeout_s == max(o.timeout_s for o in made.config.operadoras.values())
    assert (context.sessions, context.clock, context.settings, context.breaker, context.registry,
            context.adapters) == (made.sessions, made.clock, made.settings, made.breaker, made.registry,
                                  made.adapters)
    assert context.client == made.clients.client
    assert not any(value is made or getattr(value, "__self__", None) is made  # no way back to the worker
                   for value in (*vars(made.tracker).values(), *vars(context).values()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.clock = datetime.now  # type: ignore[misc]


def test_the_claim_covers_the_whole_batchs_polls(db_engine: Engine, registry: SchemaRegistry) -> None:
    """The heartbeat renews no poll claim: it lasts the lease plus every poll of the batch at the
    slowest operator's timeout, so a slow batch's last poll is not asked twice meanwhile."""
    entrega_id = delivered_lote(db_engine, registry)
    operator = FakeOperator(3)
    made = worker(db_engine, registry, operator)
    made.tracker.poll = lambda due: None  # type: ignore[method-assign]  # claimed, not polled yet
    assert made.tracker.run_once() == 1
    with session_factory(db_engine)() as session:
        claimed_until = session.get(Entrega, entrega_id).proxima_consulta_em
    settings, context = made.settings, made.tracker.context
    whole_batch = settings.reserva_s + made.tracker.batch * context.poll_timeout_s
    assert claimed_until == NOW + timedelta(seconds=whole_batch)
    assert claimed_until > NOW + timedelta(seconds=settings.reserva_s)


def test_a_seal_the_key_cannot_open_fails_that_poll_not_the_worker(
        db_engine: Engine, registry: SchemaRegistry, caplog: pytest.LogCaptureFixture) -> None:
    entrega_id = delivered_lote(db_engine, registry)
    with session_factory(db_engine).begin() as session:
        session.get(Entrega, entrega_id).senha_cifrada = b"\x01" + b"\x00" * 40  # sealed under another key
    operator = FakeOperator(3)
    made = worker(db_engine, registry, operator)
    with caplog.at_level(logging.WARNING, logger="gateway.delivery.tracking"):
        assert made.tracker.run_once() == 1  # no exception up to the worker's cycle
    assert operator.calls == []
    assert "consulta de situação da entrega" in caplog.text
    with session_factory(db_engine)() as session:
        assert session.get(Entrega, entrega_id).proxima_consulta_em > NOW  # rescheduled


def test_a_poll_reads_the_operators_status_and_logs_its_own_name(db_engine: Engine, registry: SchemaRegistry,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    entrega_id = delivered_lote(db_engine, registry)
    operator = FakeOperator(3)
    tracker = worker(db_engine, registry, operator).tracker
    assert isinstance(tracker, Tracker)
    with caplog.at_level(logging.INFO, logger="tiss_gateway.tracking"):
        assert tracker.run_once() == 1
    assert [servico for servico, _corpo in operator.calls] == ["tissSolicitacaoStatusProtocolo"]
    with session_factory(db_engine)() as session:
        entrega = session.get_one(Entrega, entrega_id)
        assert (entrega.status, entrega.status_em, entrega.consultas) == (3, NOW, 1)
        assert entrega.situacao_id is not None and entrega.proxima_consulta_em is not None
    logged = f"entrega {entrega_id}: situação 1 -> 3 Liberado para pagamento (PASA: Faturado)"
    assert logged in caplog.messages


@pytest.mark.parametrize(("version", "versoes", "sent_in"), [
    ("4.02.00", ("4.02.00", "4.03.00"), "4.02.00"),  # the operator took the part as it came
    ("4.02.00", ("4.03.00",), "4.03.00"),  # the part was converted: asked in the part's version
])
def test_a_poll_goes_in_the_version_of_the_part_it_asks_about(db_engine: Engine, registry: SchemaRegistry,
                                                             version: str, versoes: tuple[str, ...],
                                                             sent_in: str) -> None:
    delivered_lote(db_engine, registry, version, versoes)
    operator = FakeOperator(2)
    assert worker(db_engine, registry, operator, versoes).tracker.run_once() == 1
    assert operator.versoes == [sent_in]
    ((_servico, corpo),) = operator.calls
    assert reader.read(corpo).version == sent_in


def test_a_part_the_operator_refused_does_not_hold_the_protocol_back(db_engine: Engine,
                                                                     registry: SchemaRegistry) -> None:
    """The protocol follows the parts the operator took: a refused part has no status to wait for."""
    entrega_id = delivered_lote(db_engine, registry)
    with session_factory(db_engine).begin() as session:
        entrega = session.get_one(Entrega, entrega_id)
        protocolo = new_protocolo(session, tipo="lote", prestador_id=entrega.prestador_id, registro_ans=PASA,
                                  now=NOW)
        entrega.protocolo_id, entrega.partes = protocolo.id, 2
        session.add(Entrega(registro_ans=PASA, servico="tissLoteGuias", prestador_id=entrega.prestador_id,
                            mensagem_id=entrega.mensagem_id, protocolo_id=protocolo.id, parte=2, partes=2,
                            sequencial="502", estado=State.RECUSADA))
        protocolo_id = protocolo.id
    assert worker(db_engine, registry, FakeOperator(3)).tracker.run_once() == 1
    with session_factory(db_engine)() as session:
        found = session.get_one(Protocolo, protocolo_id)
        assert found.status == 3
        assert [(h.status, h.origem) for h in found.historico] == [(1, "gateway"), (3, f"operadora:{PASA}")]


def test_a_poll_is_built_from_its_claim_no_other_read(db_engine: Engine, registry: SchemaRegistry) -> None:
    """The claim reads what the status query needs (the part's bytes, protocol, request id): a
    poll is two transactions, the claim and the answer's record (on SQLite every transaction,
    a read too, waited for the database's one writer)."""
    entrega_id = delivered_lote(db_engine, registry)
    transactions: list[int] = []
    event.listen(db_engine, "begin", lambda _connection: transactions.append(1))
    operator = FakeOperator(2)
    assert worker(db_engine, registry, operator).tracker.run_once() == 1
    assert len(transactions) == 2 and len(operator.calls) == 1
    with session_factory(db_engine)() as session:
        assert session.get_one(Entrega, entrega_id).consultas == 1


def test_a_poll_reads_only_the_head_of_the_part_it_asks_about(db_engine: Engine,
                                                              registry: SchemaRegistry) -> None:
    """The status query takes the part's cabeçalho, which opens it: the guides after it (up to
    15 MB of them) are not parsed for every poll."""
    entrega_id = delivered_lote(db_engine, registry)
    with session_factory(db_engine).begin() as session:
        entrega = session.get_one(Entrega, entrega_id)
        head = (entrega.corpo or b"").split(b"</ans:cabecalho>")[0] + b"</ans:cabecalho>"
        entrega.corpo = head + b"<ans:loteGuias>" + b"<" * 200_000  # never read
    operator = FakeOperator(2)
    assert worker(db_engine, registry, operator).tracker.run_once() == 1
    ((_servico, corpo),) = operator.calls
    assert reader.read(corpo).kind == "solicitacaoStatusProtocoloWS"


def test_the_claim_looks_only_at_the_due_parts_not_at_every_one_delivered(db_engine: Engine,
                                                                          registry: SchemaRegistry) -> None:
    """Parts stay "entregue" for ever: the claim must find the due ones by proxima_consulta_em.
    SQLite's planner took the (estado, proxima_em) index for the estado test, reading every part
    ever delivered on every claim (73 ms at 200k parts, under the database's write lock)."""
    if db_engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan (PostgreSQL's planner takes proxima_consulta_em by itself)")
    delivered_lote(db_engine, registry)
    executed: list[tuple[str, object]] = []
    event.listen(db_engine, "before_cursor_execute",
                 lambda _c, _cursor, sql, params, _ctx, _many: executed.append((sql, params)))
    assert worker(db_engine, registry, FakeOperator(2)).tracker.run_once() == 1
    sql, params = next((s, p) for s, p in executed if "proxima_consulta_em <=" in s)
    with db_engine.connect() as connection:
        plan = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
    assert any("proxima_consulta_em" in step for step in plan), plan
