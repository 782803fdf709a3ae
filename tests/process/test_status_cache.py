"""A lote's status answered from the guide list kept per protocol state (issue 15), over HTTP against
a real ``tiss-gateway serve`` (gunicorn, 2 workers, each with its own cache of lists) on SQLite and
PostgreSQL. What changes the state is written by this process the way the worker and the tracker
write it: their own code (a Worker and its Tracker on the gateway's database, operators faked by
tests.fake_operadora). Polls go several at once, so that both gunicorn workers answer."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from lxml import etree
from sqlalchemy import Engine, func, select

from gateway.delivery.worker import Worker
from gateway.message import reader
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS
from gateway.server import build_config, load_adapters
from gateway.storage import kept_lists
from gateway.storage.db import session_factory
from gateway.storage.models import GuiasDaSituacao, Mensagem, Protocolo
from gateway.storage.protocolos import set_status
from tests.console_client import Console, doc
from tests.db_fixtures import BACKENDS, backend_url, reading_engine
from tests.factory import build_lote, build_request, numero_guia_prestador
from tests.fake_operadora import FakeOperadora
from tests.gateway_process import GatewayProcess
from tests.inprocess_operators import Relogio

NS = {"ans": ANS_NS}
DETALHE = "ans:situacaoProtocolo/ans:situacaoDoProtocolo/ans:lote/ans:detalheLote"
GUIAS = f"{DETALHE}/ans:guiasTISS/*/ans:guias"
STATUS = "tissSolicitacaoStatusProtocolo"
AT_ONCE = 6  # polls sent together: both workers get some
_numbers = itertools.count(1)


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(request: pytest.FixtureRequest, tiss_home: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with GatewayProcess(backend_url(request, tmp_path_factory, "status"), tiss_home, workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def db(gateway: GatewayProcess) -> Iterator[Engine]:
    yield from reading_engine(gateway.database_url)


@pytest.fixture(scope="module")
def every_lote() -> FakeOperadora:
    """One fake for the module: the lotes any test's worker delivered stay known to the tracker."""
    return FakeOperadora()


@pytest.fixture
def operadora(every_lote: FakeOperadora) -> FakeOperadora:
    every_lote.recusa, every_lote.deixa_de_fora, every_lote.status, every_lote.glosa = set(), set(), 1, None
    return every_lote


@pytest.fixture
def worker(gateway: GatewayProcess, db: Engine, operadora: FakeOperadora, registry: SchemaRegistry) -> Worker:
    """The gateway's worker (and tracker) in this process, its operators ``operadora``; its clock
    set by :func:`deliver` and :func:`track`."""
    config = build_config(None, gateway.database_url, True, simulator="127.0.0.1:9000")
    return Worker(config, registry, session_factory(db), load_adapters(config, registry),
                  clock=Relogio(datetime.now(UTC)), clients=operadora)  # type: ignore[arg-type]


def new_number() -> str:
    return f"9{next(_numbers):04d}"


def post(gateway: GatewayProcess, service: str, data: bytes) -> bytes:
    response = requests.post(gateway.url(f"/tiss/v4_03_00/{service}"), data=data, timeout=60,
                             headers={"Content-Type": "text/xml; charset=ISO-8859-1"})
    assert response.status_code == 200, response.text[:2000]
    return response.content


def lote(gateway: GatewayProcess, n: int) -> tuple[str, str]:
    """(numeroLote, gateway protocol) of a lote of ``n`` consultas to PASA just accepted."""
    numero = new_number()
    answer = post(gateway, "tissLoteGuias", build_lote("consulta", n, envelope=True, numero_lote=numero,
                                                       sequencial=numero))
    found = re.search(rb"<ans:numeroProtocolo>(\w+)</ans:numeroProtocolo>", answer)
    assert found, answer[:2000]
    return numero, found.group(1).decode()


def status_request(protocolo: str, sequencial: str) -> bytes:
    return build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=sequencial,
                         numero_protocolo=protocolo)


def polls(gateway: GatewayProcess, protocolo: str, sequenciais: list[str] | None = None) -> list[bytes]:
    """AT_ONCE new status queries of ``protocolo``, sent together (their sequenciais added to
    ``sequenciais``)."""
    news = [new_number() for _ in range(AT_ONCE)]
    if sequenciais is not None:
        sequenciais += news
    with ThreadPoolExecutor(AT_ONCE) as pool:
        return list(pool.map(lambda sequencial: post(gateway, STATUS, status_request(protocolo, sequencial)),
                             news))


def root_of(answer: bytes) -> etree._Element:
    return reader.read(answer, len(answer) + 1).root


def status_of(answer: bytes) -> str | None:
    return root_of(answer).findtext(f"{DETALHE}/ans:statusProtocolo", namespaces=NS)


def guias_of(answer: bytes) -> list[str | None]:
    return [g.findtext("ans:numeroGuiaPrestador", namespaces=NS) for g in root_of(answer).iterfind(GUIAS, NS)]


def glosas_of(answer: bytes) -> list[str | None]:
    return [e.text for e in root_of(answer).iterfind(f"{GUIAS}/ans:vlInformadoGuia/ans:valorGlosa", NS)]


def change_status(db: Engine, protocolo: str, status: int) -> None:
    """As the tracker records a status the operator reported."""
    with session_factory(db).begin() as session:
        found = session.scalars(select(Protocolo).where(Protocolo.numero == protocolo)).one()
        set_status(session, found, status, "operadora:331988")


def deliver(worker: Worker) -> None:
    """Every lote the gateway took so far (all due now)."""
    worker.clock.agora = datetime.now(UTC) + timedelta(seconds=1)  # type: ignore[attr-defined]
    while worker.run_once():
        pass


def track(worker: Worker) -> None:
    """A day later: every delivered lote's situação is due."""
    worker.clock.agora += timedelta(days=1)  # type: ignore[attr-defined]
    while worker.tracker.run_once():
        pass


def stored_answers(db: Engine, sequenciais: list[str]) -> list[tuple[int, int, int]]:
    """(id, tamanho, bytes stored) of the answers to the status queries ``sequenciais``, in order."""
    with db.connect() as connection:
        asked = select(Mensagem.id).where(Mensagem.servico == STATUS, Mensagem.direcao == "entrada",
                                          Mensagem.sequencial_transacao.in_(sequenciais))
        return [tuple(r) for r in connection.execute(
            select(Mensagem.id, Mensagem.tamanho, func.length(Mensagem.corpo))
            .where(Mensagem.resposta_de_id.in_(asked)).order_by(Mensagem.id))]


def lists_kept(db: Engine, protocolo: str) -> int:
    with db.connect() as connection:
        return connection.scalar(select(func.count()).select_from(GuiasDaSituacao)
                                 .join(Protocolo, GuiasDaSituacao.protocolo_id == Protocolo.id)
                                 .where(Protocolo.numero == protocolo))


# --- idempotency and what is stored -----------------------------------------------------------------


def test_a_replayed_status_query_gets_the_bytes_first_sent(gateway: GatewayProcess, db: Engine) -> None:
    _numero, protocolo = lote(gateway, 100)
    sequencial = new_number()
    request = status_request(protocolo, sequencial)
    first = post(gateway, STATUS, request)
    change_status(db, protocolo, 2)  # the protocol moved on meanwhile
    with ThreadPoolExecutor(AT_ONCE) as pool:  # the same transaction again, to both workers
        again = list(pool.map(lambda _i: post(gateway, STATUS, request), range(AT_ONCE)))
    assert status_of(first) == "1" and len(first) > 40_000
    assert all(a == first for a in again)  # byte for byte what was sent the first time
    assert {status_of(a) for a in polls(gateway, protocolo)} == {"2"}  # a new query: the new state
    ((resposta_id, tamanho, stored),) = stored_answers(db, [sequencial])  # the replays stored nothing
    with db.connect() as connection:
        assert (tamanho, kept_lists.stored_answer(connection, resposta_id)) == (len(first), first)
    assert stored < 3_000


def test_a_second_poll_of_an_unchanged_protocol_stores_no_second_guide_list(gateway: GatewayProcess,
                                                                            db: Engine) -> None:
    _numero, protocolo = lote(gateway, 100)
    sequenciais: list[str] = []
    answers = polls(gateway, protocolo, sequenciais) + polls(gateway, protocolo, sequenciais)
    assert all(len(a) > 40_000 for a in answers)  # ~51 KB sent every time
    stored = stored_answers(db, sequenciais)
    assert sorted(tamanho for _id, tamanho, _stored in stored) == sorted(len(a) for a in answers)
    assert all(size < 3_000 for _id, _tamanho, size in stored)  # today 51 KB each
    assert lists_kept(db, protocolo) == 1  # the 51 KB once, whichever worker rendered it


# --- not stale after the operator's answer changed ----------------------------------------------------


def test_a_status_the_operator_changed_is_in_the_next_answer(gateway: GatewayProcess, db: Engine) -> None:
    _numero, protocolo = lote(gateway, 3)
    assert {status_of(a) for a in polls(gateway, protocolo)} == {"1"}
    change_status(db, protocolo, 3)
    assert {status_of(a) for a in polls(gateway, protocolo)} == {"3"}


def test_guides_the_operator_did_not_take_are_not_in_the_next_answer(gateway: GatewayProcess, worker: Worker,
                                                                     operadora: FakeOperadora) -> None:
    numero, protocolo = lote(gateway, 3)
    todas = [numero_guia_prestador(numero, i) for i in (1, 2, 3)]
    assert {tuple(guias_of(a)) for a in polls(gateway, protocolo)} == {tuple(todas)}
    operadora.deixa_de_fora = {todas[1]}  # its receipt lists two of the three
    deliver(worker)
    answers = polls(gateway, protocolo)
    assert {tuple(guias_of(a)) for a in answers} == {(todas[0], todas[2])}
    assert {status_of(a) for a in answers} == {"1"}  # only the guides changed


def test_values_the_tracker_stored_are_in_the_next_answer(gateway: GatewayProcess, worker: Worker,
                                                          operadora: FakeOperadora) -> None:
    _numero, protocolo = lote(gateway, 2)
    deliver(worker)
    assert {tuple(glosas_of(a)) for a in polls(gateway, protocolo)} == {("0.00", "0.00")}
    operadora.glosa = Decimal("7.00")  # the operator's situação: the same status, analysed values
    track(worker)
    answers = polls(gateway, protocolo)
    assert {tuple(glosas_of(a)) for a in answers} == {("7.00", "7.00")}
    assert {status_of(a) for a in answers} == {"1"}


# --- the console -------------------------------------------------------------------------------------


def test_the_console_shows_and_downloads_a_status_answer_as_sent(gateway: GatewayProcess, db: Engine) -> None:
    numero, protocolo = lote(gateway, 100)
    sequencial = new_number()
    sent = post(gateway, STATUS, status_request(protocolo, sequencial))
    ((resposta_id, _tamanho, _stored),) = stored_answers(db, [sequencial])
    client = Console(gateway.base_url)
    assert client.login("demo", "demo").status_code == 303
    raw = client.get(f"/mensagens/{resposta_id}/xml")
    assert raw.status_code == 200 and raw.content == sent  # the bytes sent, byte for byte
    shown = doc(client.get(f"/mensagens/{resposta_id}")).xpath('string(//pre[@id="xml-texto"])')
    assert numero_guia_prestador(numero, 100) in shown
