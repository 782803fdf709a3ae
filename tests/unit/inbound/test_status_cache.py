"""A lote's status answered from the guide list kept per protocol state (gateway.inbound.status,
gateway.storage.kept_lists), in process on SQLite and PostgreSQL: the answer is the builder's byte
for byte in every encoding TISS takes, a replay gets the bytes first sent, the list is stored once
per state, and every writer of the state (the worker's outcome, the tracker, a cancelamento, a
status) makes the next answer say the new state. Over HTTP, two gunicorn workers each with its own
cache: tests/process/test_status_cache.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.delivery.worker import Worker
from gateway.inbound.pipeline import Pipeline
from gateway.inbound.status import TemplateCache, guia_recebida
from gateway.message import reader, responses
from gateway.message.lote import read_lote
from gateway.message.responses import ValorTotal
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS
from gateway.message.validation import validate_message
from gateway.server import build_config, load_adapters, prepare
from gateway.soap.app import TissWsgi
from gateway.storage import db, kept_lists
from gateway.storage.kept_lists import KeptList, KeptListCache, ListKey
from gateway.storage.models import GuiasDaSituacao, Lote, Mensagem, Protocolo
from gateway.storage.protocolos import set_status
from tests import wsgi_call
from tests.factory import build_lote, build_request, numero_guia_prestador
from tests.fake_operadora import GLOSA, FakeOperadora
from tests.inprocess_operators import InProcess, Relogio, party

NS = {"ans": ANS_NS}
DETALHE = "ans:situacaoProtocolo/ans:situacaoDoProtocolo/ans:lote/ans:detalheLote"
GUIAS = f"{DETALHE}/ans:guiasTISS/*/ans:guias"
SEQUENCIAL = "ans:cabecalho/ans:identificacaoTransacao/ans:sequencialTransacao"
_DECLARATION = re.compile(rb"encoding=['\"]UTF-8['\"]")


@dataclass
class Gateway:
    """The pipeline, and a worker (with its tracker) whose operators are one FakeOperadora."""

    app: TissWsgi
    sessions: sessionmaker[Session]
    worker: Worker
    operadora: FakeOperadora
    clock: Relogio

    def lote(self, key: str, n: int, numero: str, guide: str = "consulta", encoding: str = "ISO-8859-1",
             ) -> tuple[str, bytes]:
        """(its gateway protocol, the lote sent)"""
        body = build_lote(guide, n, envelope=True, numero_lote=numero, sequencial=numero, party=party(key),
                          encoding=encoding)
        posted = wsgi_call.post(self.app, "/tiss/v4_03_00/tissLoteGuias", body)
        found = re.search(rb"<ans:numeroProtocolo>(\w+)</ans:numeroProtocolo>", posted.body)
        assert found, posted.body[:2000]
        return found.group(1).decode(), body

    def poll(self, key: str, protocolo: str, sequencial: str, encoding: str = "ISO-8859-1",
             version: str = "4.03.00") -> tuple[bytes, bytes]:
        """(the status request, the gateway's answer)"""
        request = status_request(key, protocolo, sequencial, encoding, version)
        posted = wsgi_call.post(self.app, "/tiss/tissSolicitacaoStatusProtocolo", request)
        assert posted.status.startswith("200"), posted.body[:2000]
        return request, posted.body

    def deliver(self) -> None:
        while self.worker.run_once():
            pass

    def track(self) -> None:
        """The tracker asks every open protocol's situação (a day later: all are due)."""
        self.clock.agora += timedelta(days=1)
        while self.worker.tracker.run_once():
            pass


def status_request(key: str, protocolo: str, sequencial: str, encoding: str, version: str) -> bytes:
    if encoding == "US-ASCII":  # a subset of UTF-8: the same bytes and hash, declared otherwise
        data = build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=sequencial,
                             party=party(key), numero_protocolo=protocolo, encoding="UTF-8", version=version)
        return _DECLARATION.sub(b'encoding="US-ASCII"', data, count=1)
    return build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=sequencial,
                         party=party(key), numero_protocolo=protocolo, encoding=encoding, version=version)


@pytest.fixture
def gateway(database_url: str, registry: SchemaRegistry) -> Iterator[Gateway]:
    config = build_config(None, database_url, True, simulator="127.0.0.1:9000")
    engine = db.make_engine(prepare(config))
    sessions = db.session_factory(engine)
    clock = Relogio(datetime.now(UTC).replace(microsecond=0))
    adapters = load_adapters(config, registry)
    operadora = FakeOperadora()
    pipeline = Pipeline(config, registry, sessions, clock, readers=db.reader_factory(engine),
                        adapters=adapters)
    worker = Worker(config, registry, sessions, adapters, clock=clock, clients=operadora)  # type: ignore[arg-type]
    yield Gateway(TissWsgi(pipeline, registry, max_bytes=config.gateway.max_message_bytes), sessions, worker,
                  operadora, clock)
    engine.dispose()


def root_of(answer: bytes) -> etree._Element:
    return reader.read(answer, len(answer) + 1).root


def status_of(answer: bytes) -> str | None:
    return root_of(answer).findtext(f"{DETALHE}/ans:statusProtocolo", namespaces=NS)


def glosas_of(answer: bytes) -> list[str | None]:
    return [e.text for e in root_of(answer).iterfind(f"{GUIAS}/ans:vlInformadoGuia/ans:valorGlosa", NS)]


def guias_of(answer: bytes) -> list[str]:
    return [g.findtext("ans:numeroGuiaPrestador", namespaces=NS) for g in root_of(answer).iterfind(GUIAS, NS)]


def change_status(gateway: Gateway, numero: str, status: int) -> None:
    """As the tracker records a status the operator reported (gateway.storage.protocolos.set_status)."""
    with gateway.sessions.begin() as session:
        protocolo = session.scalars(select(Protocolo).where(Protocolo.numero == numero)).one()
        set_status(session, protocolo, status, "operadora:331988")


def answers_stored(gateway: Gateway) -> list[tuple[int, int, int]]:
    """(id, tamanho, stored length) of every status answer, in order."""
    with gateway.sessions() as session:
        return [tuple(r) for r in session.execute(
            select(Mensagem.id, Mensagem.tamanho, func.length(Mensagem.corpo))
            .where(Mensagem.direcao == "saida", Mensagem.servico == "tissSolicitacaoStatusProtocolo")
            .order_by(Mensagem.id))]


def builders_answer(gateway: Gateway, request: bytes, answer: bytes, protocolo: str, lote: bytes, *,
                    status: int = 1, analisada: bool = False) -> bytes:
    """What responses.situacao_protocolo_draft writes for that state, with the answer's own
    sequencialTransacao (the answer gateway.inbound.status wrote before issue 15)."""
    message = reader.read(request)
    sequencial = root_of(answer).findtext(SEQUENCIAL, namespaces=NS)
    ctx = responses.reply_context(message.root, registro_ans=party("pasa").registro_ans,
                                  sequencial=sequencial, now=gateway.clock())
    lido = read_lote(reader.read(lote).root)
    guias = [guia_recebida(g, lido.tipo_guia) for g in lido.guias]
    valor_total: Decimal | ValorTotal = lido.valor_informado
    if analisada:
        guias = [gateway.operadora.analisada(g) for g in guias]
        glosa = (gateway.operadora.glosa or Decimal(0)) * len(guias)
        valor_total = ValorTotal(lido.valor_informado, glosa, lido.valor_informado - glosa)
    with gateway.sessions() as session:
        criado_em = session.scalars(select(Lote.criado_em).join(Protocolo, Lote.protocolo_id == Protocolo.id)
                                    .where(Protocolo.numero == protocolo)).one()
    draft = responses.situacao_protocolo_draft(
        ctx, numero_protocolo=protocolo, numero_lote=lido.numero_lote, status=status,
        data_envio_lote=criado_em.date(), valor_total=valor_total, guias=guias)
    return responses.envelope(draft, message.encoding)


# --- the answer ------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-8", "US-ASCII"])
def test_an_answer_is_the_builders_byte_for_byte_rendered_or_kept(gateway: Gateway, encoding: str) -> None:
    protocolo, lote = gateway.lote("pasa", 3, "701")
    for sequencial in ("1", "2"):  # the list rendered, then kept
        request, answer = gateway.poll("pasa", protocolo, f"70{sequencial}", encoding)
        assert answer == builders_answer(gateway, request, answer, protocolo, lote)
    gateway.deliver()
    gateway.operadora.glosa = Decimal("5.00")
    gateway.track()  # the operator's values and glosa motive (not ASCII) in the answer
    for sequencial in ("3", "4"):
        request, answer = gateway.poll("pasa", protocolo, f"70{sequencial}", encoding)
        assert answer == builders_answer(gateway, request, answer, protocolo, lote, analisada=True)
        message = reader.read(answer, len(answer) + 1)
        assert message.encoding == encoding and validate_message(message).valid
        motivo = f"{GUIAS}/ans:glosaGuia/ans:motivoGlosa/ans:descricaoGlosa"
        assert root_of(answer).findtext(motivo, namespaces=NS) == GLOSA[1]
    # in the answer's encoding: a character US-ASCII lacks as a reference (hashed so, as the rule says)
    assert GLOSA[1].encode(encoding, "xmlcharrefreplace") in answer


def test_a_replay_gets_the_bytes_first_sent_and_a_new_query_the_new_state(gateway: Gateway) -> None:
    protocolo, _lote = gateway.lote("pasa", 2, "711")
    _request, first = gateway.poll("pasa", protocolo, "7111")
    change_status(gateway, protocolo, 2)
    _request, again = gateway.poll("pasa", protocolo, "7111")
    assert again == first and status_of(first) == "1"
    _request, new = gateway.poll("pasa", protocolo, "7112")
    assert status_of(new) == "2"
    resposta_id = answers_stored(gateway)[0][0]
    with gateway.sessions() as session:  # as stored: the frame; read back whole
        assert kept_lists.MARK in session.get_one(Mensagem, resposta_id).corpo
        assert kept_lists.stored_answer(session, resposta_id) == first


def test_the_list_is_stored_once_per_state_and_version(gateway: Gateway) -> None:
    protocolo, _lote = gateway.lote("pasa", 100, "721")
    answers = [gateway.poll("pasa", protocolo, f"721{i}")[1] for i in range(3)]
    assert all(len(a) > 40_000 for a in answers)
    assert lists(gateway) == [(0, "4.03.00")]
    rows = answers_stored(gateway)
    assert [tamanho for _id, tamanho, _stored in rows] == [len(a) for a in answers]  # what was sent
    assert all(stored < 3_000 for _id, _tamanho, stored in rows)  # no 51 KB body per poll
    gateway.poll("pasa", protocolo, "7219", version="4.02.00")  # the glosa codes a version keeps differ
    assert lists(gateway) == [(0, "4.03.00"), (0, "4.02.00")]
    change_status(gateway, protocolo, 2)  # read with versao on every query: the list stays
    assert status_of(gateway.poll("pasa", protocolo, "7218")[1]) == "2"
    assert lists(gateway) == [(0, "4.03.00"), (0, "4.02.00")]


def test_queries_at_once_from_threads_render_and_store_one_list(gateway: Gateway) -> None:
    """gunicorn's threaded workers: queries of a state not rendered yet, all at once."""
    protocolo, lote = gateway.lote("pasa", 20, "781")
    with ThreadPoolExecutor(8) as pool:
        asked = list(pool.map(lambda i: gateway.poll("pasa", protocolo, f"781{i:02d}"), range(16)))
    for request, answer in asked:
        assert answer == builders_answer(gateway, request, answer, protocolo, lote)
    assert lists(gateway) == [(0, "4.03.00")]


def lists(gateway: Gateway) -> list[tuple[int, str]]:
    with gateway.sessions() as session:
        return [tuple(r) for r in session.execute(select(GuiasDaSituacao.versao, GuiasDaSituacao.padrao)
                                                  .order_by(GuiasDaSituacao.id))]


# --- every writer of the state makes the next answer new -------------------------------------------


def test_guides_the_operators_receipt_leaves_out_leave_the_next_answer(gateway: Gateway) -> None:
    protocolo, _lote = gateway.lote("pasa", 3, "731")
    _request, before = gateway.poll("pasa", protocolo, "7311")
    segunda = numero_guia_prestador("731", 2)
    gateway.operadora.deixa_de_fora = {segunda}
    gateway.deliver()  # gateway.delivery.outcome: the guide becomes recusada
    _request, after = gateway.poll("pasa", protocolo, "7312")
    assert segunda in guias_of(before)
    assert guias_of(after) == [numero_guia_prestador("731", i) for i in (1, 3)]
    assert status_of(after) == "1"  # the status alone did not change


def test_a_part_the_operator_refused_leaves_the_next_answer(gateway: Gateway) -> None:
    protocolo, _lote = gateway.lote("cassems", 60, "741", guide="odonto")  # two parts: 50 + 10
    _request, before = gateway.poll("cassems", protocolo, "7411")
    gateway.operadora.recusa = {"741-2"}
    gateway.deliver()
    _request, after = gateway.poll("cassems", protocolo, "7412")
    assert len(guias_of(before)) == 60 and len(guias_of(after)) == 50
    assert status_of(after) == "1"


def test_the_operators_values_stored_by_the_tracker_reach_the_next_answer(gateway: Gateway) -> None:
    protocolo, _lote = gateway.lote("pasa", 2, "751")
    gateway.deliver()
    _request, before = gateway.poll("pasa", protocolo, "7511")
    gateway.operadora.glosa = Decimal("7.00")  # the same status, other values
    gateway.track()
    _request, after = gateway.poll("pasa", protocolo, "7512")
    assert status_of(before) == status_of(after) == "1"
    assert (glosas_of(before), glosas_of(after)) == (["0.00", "0.00"], ["7.00", "7.00"])


def test_a_status_the_tracker_learns_reaches_the_next_answer(gateway: Gateway) -> None:
    protocolo, _lote = gateway.lote("pasa", 2, "761")
    gateway.deliver()
    assert status_of(gateway.poll("pasa", protocolo, "7611")[1]) == "1"
    gateway.operadora.status = 2
    gateway.track()
    assert status_of(gateway.poll("pasa", protocolo, "7612")[1]) == "2"


@pytest.fixture
def stack(database_url: str, registry: SchemaRegistry, tmp_path: Path) -> Iterator[InProcess]:
    found = InProcess(database_url, registry, tmp_path, ("capitalprev",))
    yield found
    found.close()


def test_a_guide_the_operator_cancelled_leaves_the_next_answer(stack: InProcess) -> None:
    protocolo = stack.send_lote("capitalprev", 2, "771")
    stack.deliver()
    primeira = numero_guia_prestador("771", 1)

    def poll(sequencial: str) -> etree._Element:
        return stack.post("tissSolicitacaoStatusProtocolo", build_request(
            "solicitacaoStatusProtocoloWS", envelope=True, sequencial=sequencial, party=party("capitalprev"),
            numero_protocolo=protocolo))

    assert primeira in [e.text for e in poll("7711").iterfind(f"{GUIAS}/ans:numeroGuiaPrestador", NS)]
    stack.post("tissCancelaGuia", build_request("cancelaGuiaWS", envelope=True, sequencial="7719",
                                                party=party("capitalprev"), numero_guia_prestador=primeira,
                                                numero_protocolo=protocolo))
    after = poll("7712")
    assert [e.text for e in after.iterfind(f"{GUIAS}/ans:numeroGuiaPrestador", NS)] == [
        numero_guia_prestador("771", 2)]
    assert after.findtext(f"{DETALHE}/ans:statusProtocolo", namespaces=NS) == "1"


# --- the cache and the bytes -----------------------------------------------------------------------


def kept(protocolo_id: int, size: int) -> KeptList:
    return KeptList(ListKey(protocolo_id, 0, "4.03.00"), "x" * size, "", ValorTotal.recebido(Decimal(1)),
                    id=protocolo_id)


def test_the_cache_drops_the_least_recently_used_past_its_size() -> None:
    cache = KeptListCache(max_bytes=300)
    for protocolo_id in (1, 2, 3):
        cache.keep(kept(protocolo_id, 100))
    assert cache.get(ListKey(1, 0, "4.03.00")) is not None  # used: kept
    cache.keep(kept(4, 100))
    found = [cache.get(ListKey(i, 0, "4.03.00")) is not None for i in (1, 2, 3, 4)]
    assert found == [True, False, True, True]
    cache.keep(replace_id(kept(5, 100), None))  # not stored: nothing to reference
    assert cache.get(ListKey(5, 0, "4.03.00")) is None


def replace_id(found: KeptList, kept_id: int | None) -> KeptList:
    return KeptList(found.key, found.lista, found.folhas, found.valor_total, kept_id)


def test_a_stored_body_without_a_list_is_read_as_it_is() -> None:
    assert kept_lists.whole(b"<a/>", None, None) == b"<a/>"
    assert kept_lists.whole(b"", "<x/>", "UTF-8") == b""  # emptied by retention
    assert kept_lists.whole(b"<a>" + kept_lists.MARK + b"</a>", "ã", "ISO-8859-1") == b"<a>\xe3</a>"
    with pytest.raises(ValueError):
        kept_lists.whole(b"<a/>", "<x/>", "UTF-8")


# --- answers written from a template, replays, the poll's own transaction ----------------------------


def templates_of(gateway: Gateway) -> TemplateCache:
    return gateway.app.pipeline.acceptance.status.templates  # type: ignore[attr-defined]


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-8"])
def test_polls_of_a_state_answered_before_are_written_from_its_template_as_the_builder_writes(
        gateway: Gateway, encoding: str) -> None:
    protocolo, lote = gateway.lote("pasa", 5, "801")
    gateway.poll("pasa", protocolo, "8010", encoding)  # the list rendered and stored
    for i, later in enumerate((timedelta(0), timedelta(hours=1, seconds=7), timedelta(days=1, minutes=59))):
        gateway.clock.agora += later  # another date and time, another sequencial: another hash
        request, answer = gateway.poll("pasa", protocolo, f"801{i + 1}", encoding)
        assert answer == builders_answer(gateway, request, answer, protocolo, lote)
    assert len(templates_of(gateway)) == 1  # one state, one header, one encoding


def test_a_template_is_never_stale(gateway: Gateway) -> None:
    """The status (read on every poll, not in versao) and the guides (a new versao) each reach the
    next poll of a protocol whose answer was templated."""
    protocolo, lote = gateway.lote("pasa", 2, "811")
    for sequencial in ("8111", "8112"):
        gateway.poll("pasa", protocolo, sequencial)
    change_status(gateway, protocolo, 2)
    request, answer = gateway.poll("pasa", protocolo, "8113")
    assert answer == builders_answer(gateway, request, answer, protocolo, lote, status=2)
    gateway.deliver()
    gateway.operadora.glosa = Decimal("3.00")
    gateway.operadora.status = 2
    gateway.track()  # the operator's values: a new versao
    request, answer = gateway.poll("pasa", protocolo, "8114")
    assert answer == builders_answer(gateway, request, answer, protocolo, lote, status=2, analisada=True)
    assert glosas_of(answer) == ["3.00", "3.00"]


def test_a_replay_is_answered_from_the_snapshot_without_the_write_lock(gateway: Gateway,
                                                                     database_url: str) -> None:
    """On SQLite one writer at a time: a replay needs no write transaction, so it is answered while
    another one holds the lock (and stores nothing)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the one write lock is SQLite's")
    protocolo, _lote = gateway.lote("pasa", 3, "821")
    gateway.poll("pasa", protocolo, "8211")
    _request, first = gateway.poll("pasa", protocolo, "8212")
    stored = answers_stored(gateway)
    with ThreadPoolExecutor(1) as pool, gateway.sessions.begin() as writer:
        writer.execute(select(1))  # BEGIN IMMEDIATE: this process's connection holds the write lock
        replayed = pool.submit(gateway.poll, "pasa", protocolo, "8212")
        try:
            _request, again = replayed.result(timeout=10)
        finally:
            writer.rollback()
    assert again == first
    assert answers_stored(gateway) == stored


def test_copies_of_one_poll_at_once_are_stored_once_and_answered_alike(gateway: Gateway) -> None:
    protocolo, _lote = gateway.lote("pasa", 10, "831")
    gateway.poll("pasa", protocolo, "8310")
    with ThreadPoolExecutor(8) as pool:
        answers = [answer for _request, answer in pool.map(
            lambda _i: gateway.poll("pasa", protocolo, "8311"), range(8))]
    assert len(set(answers)) == 1
    assert len(answers_stored(gateway)) == 2


def test_only_a_polls_transaction_skips_the_wait_for_the_flush(gateway: Gateway, database_url: str) -> None:
    """PostgreSQL: ``synchronous_commit = off`` for the poll's own transaction, never for a lote's."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite commits do not wait for the disk (WAL, synchronous=NORMAL)")
    seen: list[str] = []
    engine = gateway.sessions.kw["bind"]

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        protocolo, _lote = gateway.lote("pasa", 2, "841")
        assert not [s for s in seen if "synchronous_commit" in s]
        gateway.poll("pasa", protocolo, "8411")
        assert [s for s in seen if "synchronous_commit" in s] == ["SET LOCAL synchronous_commit = off"]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with engine.connect() as connection:  # LOCAL: gone with the poll's transaction
        assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
