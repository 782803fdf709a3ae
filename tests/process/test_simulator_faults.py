"""Fault injection of the simulated operators (simulator.faults, simulator.server).

1. ``Fault`` / ``FaultState``: validation, seeded determinism, ``count`` and ``duration_s``.
2. ``FaultInjector`` around a trivial WSGI app: the middleware on its own (the only place a
   stand-in app is used).
3. The listeners in-process (trivial apps): down is a real connection refused on the same port,
   chunked bodies, the admin API's validation.
4. A real ``tiss-gateway simulate`` process: every fault mode as an HTTP/zeep client sees it.
"""

from __future__ import annotations

import io
import itertools
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
import requests
import zeep
from cryptography import x509
from lxml import etree
from sqlalchemy import Engine, func, select
from sqlalchemy.pool import NullPool
from zeep.transports import Transport

from gateway.message import hashing
from gateway.message.services import ANS_NS, SOAP11_NS
from gateway.security import xmldsig
from gateway.security.pki import cnpj_do_certificado, load_authority
from gateway.storage.db import make_engine
from simulator.clock import SimClock
from simulator.faults import FAULT_KEY, Fault, FaultInjector, FaultState, wrong_hash
from simulator.models import SimMensagem
from simulator.profile import PROFILE_KEYS, load_profile
from simulator.server import (
    Listener,
    SimulatedOperator,
    Simulator,
    StartupError,
    _read_chunked,
    parse_bind,
)
from tests.factory import Party, build_request, envelope
from tests.gateway_process import cli, free_port_block
from tests.simulator_process import SimulatorProcess

NS = {"ans": ANS_NS, "soap": SOAP11_NS}

# --- 1. Fault and FaultState ----------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    ({"mode": "sideways"}, "modo de falha desconhecido"),
    ({}, "informe mode"),
    ({"mode": "error", "rate": 1.5}, "rate"),
    ({"mode": "error", "rate": "0.5"}, "rate deve ser um número"),
    ({"mode": "slow"}, "latency_ms"),
    ({"mode": "error", "latency_ms": 100}, "latency_ms"),
    ({"mode": "down", "count": 2}, "count"),
    ({"mode": "error", "count": 0}, "count"),
    ({"mode": "error", "count": 1.5}, "count deve ser um número inteiro"),
    ({"mode": "error", "kind": "truncated"}, "kind"),
    ({"mode": "wrong_hash", "kind": "http500"}, "kind"),
    ({"mode": "error", "duration_s": 0}, "duration_s"),
    ({"mode": "error", "colour": "red"}, "campos desconhecidos"),
])
def test_fault_from_dict_refuses(data, message):
    with pytest.raises(ValueError, match=message):
        Fault.from_dict(data)


def test_fault_defaults_and_round_trip():
    assert Fault.from_dict({"mode": "error"}) == Fault("error", 1.0, 0, "http500")
    assert Fault.from_dict({"mode": "malformed"}).kind == "truncated"
    slow = Fault.from_dict({"mode": "slow", "latency_ms": 250, "rate": 0.5, "count": 3})
    assert slow.to_dict() == {"mode": "slow", "rate": 0.5, "latency_ms": 250, "count": 3}
    assert Fault.from_dict(slow.to_dict()) == slow


def _hits(state: FaultState, n: int = 64) -> list[bool]:
    return [state.draw() is not None for _ in range(n)]


def test_fault_state_is_deterministic_per_seed_and_reset_on_set():
    one, two, other = FaultState("unimed", 7), FaultState("unimed", 7), FaultState("unimed", 8)
    for state in (one, two, other):
        state.set(Fault("error", rate=0.5))
    first = _hits(one)
    assert first == _hits(two)
    assert first != _hits(other)
    assert 16 < sum(first) < 48  # about half
    one.set(Fault("error", rate=0.5))  # set again: the same hits again
    assert _hits(one) == first


def test_fault_state_rate_bounds():
    state = FaultState("x")
    state.set(Fault("wrong_hash", rate=0.0))
    assert not any(_hits(state))
    state.set(Fault("wrong_hash", rate=1.0))
    assert all(_hits(state))


def test_fault_state_count_clears_after_n_requests():
    changes: list[Fault | None] = []
    state = FaultState("x")
    state.on_change = changes.append
    fault = Fault("error", count=2)
    state.set(fault)
    assert state.snapshot() == {"fault": fault.to_dict(), "remaining_count": 2, "expires_in_s": None,
                                "applied": 0}
    assert [state.draw(), state.draw(), state.draw()] == [fault, fault, None]
    assert state.current() is None
    assert changes == [fault, None]


def test_fault_state_count_counts_requests_not_hits():
    state = FaultState("x", seed=3)
    state.set(Fault("error", rate=0.0, count=2))
    assert [state.draw(), state.draw()] == [None, None]
    assert state.current() is None


def test_fault_state_duration_expires():
    now = [100.0]
    changes: list[Fault | None] = []
    state = FaultState("x", monotonic=lambda: now[0], timers=False)
    state.on_change = changes.append
    state.set(Fault("down", duration_s=5))
    assert state.down
    assert state.snapshot()["expires_in_s"] == 5.0
    now[0] = 104.9
    assert state.down
    now[0] = 105.0
    assert not state.down
    assert changes == [Fault("down", duration_s=5), None]


def test_fault_state_expiry_seen_by_the_state_is_notified():
    now = [0.0]
    changes: list[Fault | None] = []
    state = FaultState("x", monotonic=lambda: now[0], timers=False)
    state.on_change = changes.append
    state.set(Fault("down", duration_s=1))
    now[0] = 2.0
    assert state.snapshot() == {"fault": None}
    assert changes[-1] is None  # the server reopens the listener on this


def test_fault_state_timer_expires_down_without_requests():
    changes: list[Fault | None] = []
    state = FaultState("x")
    state.on_change = changes.append
    state.set(Fault("down", duration_s=0.2))
    state.set(Fault("down", duration_s=0.1))  # the first timer must not clear it again
    time.sleep(0.4)
    assert state.current() is None
    assert changes == [Fault("down", duration_s=0.2), Fault("down", duration_s=0.1), None]


def test_down_is_not_drawn_by_requests():
    state = FaultState("x")
    state.set(Fault("down"))
    assert state.draw() is None
    assert state.down


# --- 2. FaultInjector around a trivial app -----------------------------------------------------------

ANSWER = build_request("solicitacaoStatusProtocoloWS", envelope=True, encoding="UTF-8")


class TrivialApp:
    """Stands in for the operator: counts calls, reads the body, answers a hashed TISS message."""

    def __init__(self, answer: bytes = ANSWER):
        self.answer = answer
        self.bodies: list[bytes] = []
        self.paths: list[str] = []

    def __call__(self, environ, start_response):
        self.paths.append(environ.get("PATH_INFO"))
        self.bodies.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start_response("200 OK", [("Content-Type", "text/xml; charset=UTF-8"),
                                  ("Content-Length", str(len(self.answer)))])
        return iter([self.answer[:100], self.answer[100:]])  # in pieces, without a list


def call(app, method: str = "POST", body: bytes = b"<pedido/>") -> tuple[str, dict, bytes, dict]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/tiss/v4_03_00/tissLoteGuias",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    data = b"".join(app(environ, start_response))
    assert int(seen["headers"]["Content-Length"]) == len(data)
    return seen["status"], seen["headers"], data, environ


def injector(fault: Fault | None, app: TrivialApp | None = None,
             **kwargs) -> tuple[FaultInjector, TrivialApp]:
    state = FaultState("x")
    if fault is not None:
        state.set(fault)
    app = app or TrivialApp()
    return FaultInjector(app, state, **kwargs), app


def ws_root(data: bytes) -> etree._Element:
    return etree.fromstring(data).find("soap:Body", NS)[0]


def test_no_fault_passes_through():
    middleware, app = injector(None)
    status, _headers, data, environ = call(middleware)
    assert (status, data, app.bodies, environ[FAULT_KEY]) == ("200 OK", ANSWER, [b"<pedido/>"], None)


def test_only_soap_posts_are_affected():
    middleware, _app = injector(Fault("error", count=1))
    assert call(middleware, "GET")[0] == "200 OK"
    assert middleware.state.current() is not None  # a GET does not use up the count
    assert call(middleware)[0].startswith("500")


def test_error_http500_answers_without_calling_the_operator():
    middleware, app = injector(Fault("error"))
    body = io.BytesIO(b"x" * 200_000)
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "200000", "wsgi.input": body}
    seen = {}
    data = b"".join(middleware(environ, lambda s, h, e=None: seen.update(status=s, headers=dict(h))))
    assert seen["status"] == "500 Internal Server Error"
    assert seen["headers"]["Content-Type"].startswith("text/html")
    assert b"Internal Server Error" in data
    assert app.bodies == []  # nothing processed nor stored
    assert body.tell() == 200_000  # drained: the client is not reset while still sending
    assert environ[FAULT_KEY] == "error"


def test_error_soap_fault_is_a_tiss_fault():
    middleware, app = injector(Fault("error", kind="soap_fault"))
    status, headers, data, _ = call(middleware)
    assert status.startswith("500") and headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(data)
    assert root.xpath("//ans:tissFaultWS/ans:tissFault/text()", namespaces=NS) == ["ErroInesperadoServidor"]
    assert root.findtext("soap:Body/soap:Fault/faultcode", namespaces=NS) == "soap:Server"
    assert app.bodies == []


def test_slow_processes_then_waits():
    slept: list[float] = []
    middleware, app = injector(Fault("slow", latency_ms=1500), sleep=slept.append)
    status, _headers, data, _ = call(middleware)
    assert (status, data, slept, len(app.bodies)) == ("200 OK", ANSWER, [1.5], 1)


def test_malformed_truncated_is_processed_and_not_xml():
    middleware, app = injector(Fault("malformed"))
    status, _headers, data, _ = call(middleware)
    assert status == "200 OK" and len(app.bodies) == 1
    assert ANSWER.startswith(data) and len(data) == len(ANSWER) // 2
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(data)


def test_malformed_not_xml():
    middleware, app = injector(Fault("malformed", kind="not_xml"))
    status, headers, data, _ = call(middleware)
    assert status == "200 OK" and headers["Content-Type"].startswith("text/html") and len(app.bodies) == 1
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(data)


def test_wrong_hash_changes_only_the_hash():
    assert hashing.check(ws_root(ANSWER), "UTF-8").accepted
    middleware, app = injector(Fault("wrong_hash"))
    status, _headers, data, _ = call(middleware)
    assert status == "200 OK" and len(app.bodies) == 1
    check = hashing.check(ws_root(data), "UTF-8")
    assert not check.accepted and check.variant is None
    assert len(check.found) == 32 and check.found != check.computed
    assert check.computed == hashing.check(ws_root(ANSWER), "UTF-8").computed  # same content
    assert len(data) == len(ANSWER)


def test_wrong_hash_leaves_a_fault_alone():
    fault = b"<soap:Envelope><soap:Body><soap:Fault/></soap:Body></soap:Envelope>"
    assert wrong_hash(fault) == fault


def test_injector_is_deterministic_over_requests():
    def statuses(seed: int) -> list[str]:
        state = FaultState("unimed", seed)
        state.set(Fault("error", rate=0.3))
        middleware = FaultInjector(TrivialApp(), state)
        return [call(middleware)[0][:3] for _ in range(40)]

    assert statuses(1) == statuses(1)
    assert {"200", "500"} == set(statuses(1))


def test_count_two_fails_twice_then_succeeds():
    middleware, app = injector(Fault("error", kind="soap_fault", count=2))
    assert [call(middleware)[0][:3] for _ in range(4)] == ["500", "500", "200", "200"]
    assert len(app.bodies) == 2


# --- 3. listeners in-process, trivial apps -----------------------------------------------------------


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    ops = [SimulatedOperator(key, key.upper(), registro, ("4.02.00", "4.03.00"), TrivialApp(), 1000,
                             FaultState(key), certificate_pem=b"-----BEGIN CERTIFICATE-----\n")
           for key, registro in (("a", "111111"), ("b", "222222"))]
    sim = Simulator(ops, SimClock(0), host="127.0.0.1", port=0)
    sim.start()
    yield sim
    sim.stop()


def admin(sim: Simulator, method: str, path: str, payload=None) -> requests.Response:
    return requests.request(method, f"{sim.admin_url()}/admin/{path}", json=payload, timeout=10)


def test_down_closes_the_port_and_clear_reopens_the_same_one(simulator):
    url = simulator.operator_url("a")
    port = simulator.operators["a"].listener.port
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
    state = admin(simulator, "POST", "a/faults", {"mode": "down"}).json()
    assert state["up"] is False and state["fault"] == {"mode": "down", "rate": 1.0}
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # refused: nobody listens
    assert requests.get(f"{simulator.operator_url('b')}/healthz", timeout=5).status_code == 200
    assert admin(simulator, "DELETE", "a/faults").json()["up"] is True
    assert simulator.operators["a"].listener.port == port
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200


def test_down_with_duration_reopens_by_itself(simulator):
    url = simulator.operator_url("b")
    admin(simulator, "POST", "b/faults", {"mode": "down", "duration_s": 0.5})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=5)
    time.sleep(0.8)
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200


def test_another_fault_replaces_down_and_reopens(simulator):
    admin(simulator, "POST", "a/faults", {"mode": "down"})
    state = admin(simulator, "POST", "a/faults", {"mode": "error", "kind": "soap_fault"}).json()
    assert state["up"] is True
    response = requests.post(simulator.operator_url("a") + "/tiss/v4_03_00/tissLoteGuias", data=b"<x/>",
                             timeout=5)
    assert response.status_code == 500


def test_chunked_request_bodies_reach_the_app(simulator):
    app = simulator.operators["a"].app
    response = requests.post(simulator.operator_url("a") + "/tiss/v4_03_00/tissLoteGuias",
                             data=iter([b"<lote>", b"parte", b"</lote>"]), timeout=5)
    assert response.status_code == 200
    assert app.bodies[-1] == b"<lote>parte</lote>"


def test_read_chunked_stops_at_the_limit():
    stream = io.BytesIO(b"5\r\nabcde\r\n3;ext=1\r\nfgh\r\n0\r\nX-Trailer: 1\r\n\r\n")
    assert _read_chunked(stream, 100) == b"abcdefgh"
    assert _read_chunked(io.BytesIO(b"5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n"), 7) == b"abcdefg"
    with pytest.raises(ValueError):
        _read_chunked(io.BytesIO(b"zz\r\n"), 10)


def test_wsdl_only_for_accepted_versions(simulator):
    url = simulator.operator_url("a")
    app = simulator.operators["a"].app
    assert requests.get(url + "/tiss/v4_01_00/tissLoteGuias?wsdl", timeout=5).status_code == 404
    assert app.paths == []
    assert requests.get(url + "/tiss/tissLoteGuias?wsdl", timeout=5).status_code == 200
    assert requests.get(url + "/tiss/v4_02_00/tissLoteGuias?wsdl", timeout=5).status_code == 200
    requests.post(url + "/tiss/tissLoteGuias", data=b"<x/>", timeout=5)  # a POST keeps its URL
    assert app.paths == ["/tiss/v4_03_00/tissLoteGuias", "/tiss/v4_02_00/tissLoteGuias",
                         "/tiss/tissLoteGuias"]


def test_admin_api_validation_and_state(simulator):
    assert admin(simulator, "POST", "zz/faults", {"mode": "down"}).status_code == 404
    assert admin(simulator, "POST", "a/faults", {"mode": "slow"}).status_code == 400
    bad = requests.post(f"{simulator.admin_url()}/admin/a/faults", data=b"{not json", timeout=5)
    assert bad.status_code == 400 and "JSON" in bad.json()["erro"]
    assert admin(simulator, "POST", "clock/advance", {"days": -1}).status_code == 400
    assert admin(simulator, "POST", "clock/advance", {"weeks": 1}).status_code == 400
    before = simulator.clock.now()
    clock = admin(simulator, "POST", "clock/advance", {"days": 2, "seconds": 30}).json()
    assert clock["advanced_s"] == 2 * 86400 + 30
    assert (simulator.clock.now() - before).total_seconds() == pytest.approx(2 * 86400 + 30)
    assert admin(simulator, "POST", "clock/time-scale", {"time_scale": 60}).json()["time_scale"] == 60
    state = admin(simulator, "GET", "state").json()
    assert set(state["operators"]) == {"a", "b"}
    assert state["operators"]["a"]["url"] == simulator.operator_url("a")
    assert state["operators"]["a"]["fault"] is None
    pem = admin(simulator, "GET", "a/certificate")
    assert pem.headers["Content-Type"] == "application/x-pem-file" and pem.content.startswith(b"-----BEGIN")
    assert requests.get(f"{simulator.admin_url()}/healthz", timeout=5).text == "ok"
    assert "111111" in requests.get(f"{simulator.admin_url()}/", timeout=5).text


def test_consecutive_ports_after_the_admin_port():
    base = free_port_block(3)
    ops = [SimulatedOperator(k, k, "111111", ("4.03.00",), TrivialApp(), 1000, FaultState(k)) for k in "ab"]
    sim = Simulator(ops, SimClock(0), host="127.0.0.1", port=base)
    sim.start()
    try:
        assert [sim.admin.port, sim.operators["a"].listener.port, sim.operators["b"].listener.port] == \
            [base, base + 1, base + 2]
    finally:
        sim.stop()


def test_port_in_use_is_a_startup_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listener = Listener("x", TrivialApp(), "127.0.0.1", taken.getsockname()[1])
        with pytest.raises(StartupError, match="não foi possível ouvir"):
            listener.open()


def test_parse_bind():
    assert parse_bind("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_bind(":9100") == ("127.0.0.1", 9100)
    with pytest.raises(StartupError, match="HOST:PORTA"):
        parse_bind("9000")




# --- 4. a real `tiss-gateway simulate` process, HTTP and zeep clients ---------------------------------

OPERADORA = "capitalprev"  # 4.02/4.03, declared hash, no signatures: the plainest profile
OUTRA = "unimed"
ASSINA = "ipasgo"  # requires signed requests and signs its answers
STATUS_SERVICE = "tissSolicitacaoStatusProtocolo"
_seq = itertools.count(1)


@pytest.fixture(scope="module")
def sim_process(tiss_home) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(tiss_home, operators=(OPERADORA, OUTRA, ASSINA), seed=11) as process:
        yield process


@pytest.fixture
def sim(sim_process: SimulatorProcess, request: pytest.FixtureRequest) -> Iterator[SimulatorProcess]:
    """The shared process, its faults cleared after each test (and its log shown on failure)."""
    start = len(sim_process.log())
    failed = request.session.testsfailed
    yield sim_process
    for key in (OPERADORA, OUTRA, ASSINA):
        sim_process.clear_fault(key)
    if request.session.testsfailed > failed:
        print(f"--- log do simulador ---\n{sim_process.log()[start:][-20_000:]}")


@pytest.fixture(scope="module")
def sim_db(sim_process: SimulatorProcess) -> Iterator[Engine]:
    engine = make_engine(sim_process.database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def party(key: str) -> Party:
    profile = load_profile(key)
    prestador = profile.prestadores[0]
    return Party(cnpj=prestador.documento, login=prestador.login, senha=prestador.senha,
                 registro_ans=profile.registro_ans)


def status_request(key: str = OPERADORA) -> bytes:
    """A new solicitacaoStatusProtocolo (UTF-8: zeep re-serialises in UTF-8, the hash survives)."""
    n = str(next(_seq))
    return build_request("solicitacaoStatusProtocoloWS", envelope=True, encoding="UTF-8", sequencial=n,
                         numero_protocolo=f"9{n:0>8}", party=party(key))


def post(sim: SimulatorProcess, data: bytes, key: str = OPERADORA, timeout: float = 30) -> requests.Response:
    return requests.post(sim.service_url(key, STATUS_SERVICE), data=data, timeout=timeout,
                         headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})


def zeep_call(sim: SimulatorProcess, data: bytes, key: str = OPERADORA, timeout: float = 30):
    """Call the operation with a zeep client built from the operator's served WSDL."""
    client = zeep.Client(sim.wsdl_url(key, STATUS_SERVICE), transport=Transport(timeout=30,
                                                                                 operation_timeout=timeout))
    body = ws_root(data)
    value = client.get_element(f"{{{ANS_NS}}}{etree.QName(body).localname}").parse(body, client.wsdl.types)
    return client.service.tissSolicitacaoStatusProtocolo_Operation(**{name: value[name] for name in value})


def entradas(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(SimMensagem)
                                 .where(SimMensagem.direcao == "entrada"))


def hash_ok(response: requests.Response) -> bool:
    assert response.status_code == 200, response.content[:1000]
    return hashing.check(ws_root(response.content), "UTF-8").accepted


def test_without_faults_the_operator_answers_a_valid_message(sim, sim_db):
    before = entradas(sim_db)
    response = post(sim, status_request())
    assert response.headers["Content-Type"].startswith("text/xml")
    assert etree.QName(ws_root(response.content)).localname == "situacaoProtocoloWS"
    assert hash_ok(response)
    assert entradas(sim_db) == before + 1
    result = zeep_call(sim, status_request())
    assert result.situacaoProtocolo is not None


def test_down_is_connection_refused_then_cleared(sim):
    state = sim.set_fault(OPERADORA, "down")
    assert state["up"] is False
    with pytest.raises(requests.ConnectionError):
        post(sim, status_request())
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.url(OPERADORA, "/healthz"), timeout=5)
    assert requests.get(sim.url(OUTRA, "/healthz"), timeout=5).status_code == 200  # only that one
    assert sim.state()["operators"][OPERADORA]["fault"]["mode"] == "down"
    assert sim.clear_fault(OPERADORA)["up"] is True
    assert hash_ok(post(sim, status_request()))


def test_down_for_a_duration_comes_back_by_itself(sim):
    sim.set_fault(OPERADORA, "down", duration_s=1)
    with pytest.raises(requests.ConnectionError):
        zeep_call(sim, status_request())
    time.sleep(1.5)
    assert sim.state()["operators"][OPERADORA]["up"] is True
    assert zeep_call(sim, status_request()).situacaoProtocolo is not None


def test_slow_delays_the_answer_and_still_processes_the_request(sim, sim_db):
    sim.set_fault(OPERADORA, "slow", latency_ms=1200)
    started = time.monotonic()
    response = post(sim, status_request())
    assert time.monotonic() - started >= 1.2
    assert hash_ok(response)
    before = entradas(sim_db)
    with pytest.raises(requests.exceptions.Timeout):
        zeep_call(sim, status_request(), timeout=0.4)
    assert entradas(sim_db) == before + 1  # the client gave up; the operator has it anyway


def test_error_http500_is_a_500_page_and_nothing_is_stored(sim, sim_db):
    sim.set_fault(OPERADORA, "error", rate=1.0, kind="http500")
    before = entradas(sim_db)
    response = post(sim, status_request())
    assert response.status_code == 500 and response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(zeep.exceptions.TransportError) as caught:
        zeep_call(sim, status_request())
    assert caught.value.status_code == 500
    assert entradas(sim_db) == before


def test_http_error_soap_fault_is_a_tiss_fault(sim, sim_db):
    sim.set_fault(OPERADORA, "error", kind="soap_fault")
    before = entradas(sim_db)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        zeep_call(sim, status_request())
    assert caught.value.code == "soap:Server"
    assert caught.value.detail.xpath("ans:tissFaultWS/ans:tissFault/text()", namespaces=NS) == \
        ["ErroInesperadoServidor"]
    assert post(sim, status_request()).status_code == 500
    assert entradas(sim_db) == before


def test_malformed_is_a_parse_error_but_the_operator_stored_the_request(sim, sim_db):
    sim.set_fault(OPERADORA, "malformed")
    data = status_request()
    before = entradas(sim_db)
    with pytest.raises(zeep.exceptions.TransportError, match="invalid XML") as caught:
        zeep_call(sim, data)
    assert caught.value.status_code == 200
    assert entradas(sim_db) == before + 1
    sim.set_fault(OPERADORA, "malformed", kind="not_xml")
    response = post(sim, status_request())
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)


def test_wrong_hash_alters_only_the_hash_of_the_real_answer(sim, sim_db):
    sim.set_fault(OPERADORA, "wrong_hash")
    data = status_request()
    before = entradas(sim_db)
    altered = post(sim, data)
    assert entradas(sim_db) == before + 1
    check = hashing.check(ws_root(altered.content), "UTF-8")
    assert not check.accepted and check.variant is None and re.fullmatch(r"[0-9a-f]{32}", check.found)
    sim.clear_fault(OPERADORA)
    stored = post(sim, data)  # the same transaction again: the operator's stored answer
    assert hash_ok(stored)
    assert hashing.check(ws_root(stored.content), "UTF-8").computed == check.computed


def test_http_count_two_fails_twice_then_succeeds(sim):
    state = sim.set_fault(OPERADORA, "error", kind="soap_fault", count=2)
    assert state["remaining_count"] == 2
    for _ in range(2):
        with pytest.raises(zeep.exceptions.Fault):
            zeep_call(sim, status_request())
    assert zeep_call(sim, status_request()).situacaoProtocolo is not None
    assert sim.state()["operators"][OPERADORA]["fault"] is None


def test_rate_is_reproducible_with_the_seed(sim):
    def statuses() -> list[int]:
        sim.set_fault(OPERADORA, "error", rate=0.5)
        return [post(sim, status_request()).status_code for _ in range(12)]

    first = statuses()
    assert set(first) == {200, 500}
    assert statuses() == first
    assert sim.state()["operators"][OPERADORA]["applied"] == first.count(500)


def test_faults_are_per_operator(sim):
    sim.set_fault(OUTRA, "error")
    assert hash_ok(post(sim, status_request()))
    assert post(sim, status_request(OUTRA), key=OUTRA).status_code == 500


def test_admin_clock_and_certificate(sim):
    before = datetime.fromisoformat(sim.state()["clock"]["now"])
    after = datetime.fromisoformat(sim.advance(days=2, hours=3)["now"])
    assert after - before == timedelta(days=2, hours=3)  # time_scale 0: only advance moves it
    pem = sim.certificate(OPERADORA).encode()
    leaf, ca = x509.load_pem_x509_certificates(pem)
    assert leaf.issuer == ca.subject
    assert cnpj_do_certificado(leaf) == load_profile(OPERADORA).cnpj
    assert sim.admin("POST", "nada/faults", {"mode": "down"}, expect=404)["erro"]


def test_signed_answers_check_with_the_served_ca_and_wrong_hash_breaks_them(sim, tiss_home):
    prestador = load_profile(ASSINA).prestadores[0]
    authority = load_authority(tiss_home / "simulator" / "runtime")  # the sandbox CA issues providers too
    leaf = authority.issue("Clínica Demonstração", cnpj=prestador.documento)
    unsigned = build_request("solicitacaoStatusProtocoloWS", encoding="UTF-8", sequencial=str(next(_seq)),
                             numero_protocolo="123", party=party(ASSINA))
    signed = xmldsig.sign(etree.fromstring(unsigned), leaf.key_pem, leaf.chain_pem)
    data = envelope(etree.tostring(signed, encoding="UTF-8", xml_declaration=True))
    ca_pem = sim.certificate(ASSINA).encode().split(b"-----END CERTIFICATE-----\n", 1)[1]
    answer = ws_root(post(sim, data, key=ASSINA).content)
    assert xmldsig.verify(answer, ca_pem).documento == load_profile(ASSINA).cnpj
    sim.set_fault(ASSINA, "wrong_hash")
    altered = ws_root(post(sim, data, key=ASSINA).content)  # the stored answer, hash altered on the wire
    assert not hashing.check(altered, "UTF-8").accepted
    with pytest.raises(xmldsig.SignatureError) as caught:
        xmldsig.verify(altered, ca_pem)  # the hash is inside what was signed
    assert caught.value.codigo == xmldsig.ASSINATURA_NAO_CONFERE


def test_restart_with_all_operators_reuses_the_certificates_and_stops_cleanly(sim_process, tiss_home):
    with SimulatorProcess(tiss_home) as every:  # --all
        assert set(every.urls) == set(PROFILE_KEYS)
        for key in PROFILE_KEYS:
            assert requests.get(every.url(key, "/healthz"), timeout=5).status_code == 200
            leaf, _ca = x509.load_pem_x509_certificates(every.certificate(key).encode())
            assert cnpj_do_certificado(leaf) == load_profile(key).cnpj
        assert every.certificate(OPERADORA) == sim_process.certificate(OPERADORA)
        assert every.stop() == 0
        assert "simulador encerrado" in every.log()
    runtime = tiss_home / "simulator" / "runtime"
    assert (runtime / "ca-key.pem").stat().st_mode & 0o077 == 0


def test_a_request_the_soap_layer_cannot_read_is_a_client_fault(sim, sim_db):
    before = entradas(sim_db)
    response = post(sim, b"<isto-nao-e-soap/>")
    assert response.status_code == 500  # the simulator answers faults with 500, as SOAP 1.1 says
    root = etree.fromstring(response.content)
    assert root.xpath("//ans:tissFault/text()", namespaces=NS) == ["SchemaInvalido"]
    assert root.findtext("soap:Body/soap:Fault/faultcode", namespaces=NS) == "soap:Client"
    assert entradas(sim_db) == before + 1  # stored for audit, like every refused message


def test_concurrent_requests_are_served_in_threads(sim, sim_db):
    requests_ = [status_request() for _ in range(24)]
    before = entradas(sim_db)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda data: post(sim, data), requests_))
    assert all(hash_ok(response) for response in answers)
    assert entradas(sim_db) == before + 24


@pytest.mark.parametrize("args, message", [
    (("nenhuma",), "operadora desconhecida: nenhuma"),
    ((), "informe as operadoras ou --all"),
    (("--all", "unimed"), "não ambos"),
    (("unimed", "--bind", "9000"), "HOST:PORTA"),
])
def test_simulate_command_refuses_bad_arguments(tiss_home, args, message):
    done = cli("simulate", *args, home=tiss_home)
    assert done.returncode == 2 and message in done.stderr, done.stderr
