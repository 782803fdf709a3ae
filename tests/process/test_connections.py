"""Connections cannot starve the gateway (issue 15): a real ``tiss-gateway serve`` (gunicorn with
gateway.gunicorn_worker, the worker class of gateway.deploy_settings) with short read deadlines.

- Idle connections and slow-loris ones (a head byte a second) held open: every valid lote sent
  meanwhile is answered, with a protocol, in much less time than the head deadline; the
  gateway closes the slow ones once the deadline is past (408) and the idle ones too. SQLite and
  PostgreSQL (lote acceptance is storage).
- A body that stops arriving holds one thread of its process, until its deadline (408), while the
  same single process answers lotes: threads, and bounded body reads.
- Under gunicorn's own TLS, handshakes that never end hold no thread either.
- The settings resolve to the threaded worker with threads, for ``serve`` and gunicorn.conf.py.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
import requests
from gunicorn.util import load_class
from gunicorn.workers.gthread import ThreadWorker

from gateway import deploy_settings
from gateway.config import Config
from tests.db_fixtures import BACKENDS
from tests.factory import build_lote
from tests.gateway_process import GatewayProcess
from tests.held_connections import HeldConnections

HEADER_S = 6.0  # the gateway's head deadline here (TISS_GATEWAY_HEADER_TIMEOUT)
BODY_S = 2.0  # TISS_GATEWAY_BODY_TIMEOUT, at most BODY_MAX_S
BODY_MAX_S = 3.0
# Far below the head deadline: a lote that waited for a slow connection's deadline would miss it.
ANSWER_S = 3.0
LOTE = "/tiss/v4_03_00/tissLoteGuias"
HEADERS = {"Content-Type": "text/xml; charset=ISO-8859-1", "SOAPAction": '""'}
PROTOCOLO = re.compile(rb"<ans:numeroProtocolo>(\d{12})</ans:numeroProtocolo>")
READ_LIMITS = {deploy_settings.HEADER_TIMEOUT_ENV: str(HEADER_S),
               deploy_settings.BODY_TIMEOUT_ENV: str(BODY_S),
               deploy_settings.BODY_MAX_TIMEOUT_ENV: str(BODY_MAX_S)}
TIMED_OUT = b"HTTP/1.1 408 "

_numbers = count(1)


def lote() -> bytes:
    n = str(next(_numbers))
    return build_lote("sp-sadt", 5, envelope=True, numero_lote=n, sequencial=n)


def send_lote(base_url: str, **kwargs: object) -> tuple[requests.Response, float]:
    start = time.monotonic()
    answer = requests.post(base_url + LOTE, data=lote(), headers=HEADERS, timeout=ANSWER_S, **kwargs)
    return answer, time.monotonic() - start


def start_gateway(url: str, home: Path, tmp: Path, *, workers: int = 2, env: dict[str, str] | None = None,
                  **kwargs) -> GatewayProcess:
    server = GatewayProcess(url, home, workers=workers, log_dir=tmp, env={**READ_LIMITS, **(env or {})},
                            **kwargs)
    server.start()
    return server


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(request: pytest.FixtureRequest, tiss_home: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("connections")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'gateway.sqlite'}"
    else:
        url = request.getfixturevalue("pg_schemas")()  # a fresh schema, migrated by serve
    server = start_gateway(url, tiss_home, tmp)
    try:
        yield server
    finally:
        server.close()


def test_lotes_are_answered_while_idle_and_slow_connections_are_held(gateway: GatewayProcess):
    answered = []
    with HeldConnections(gateway.port, idle=10, slow=10) as held:
        time.sleep(1.5)  # every connection accepted and a few head bytes in
        assert held.held() == {"idle": 10, "slow": 10}, held.closed
        for _ in range(5):
            answer, took = send_lote(gateway.base_url)
            assert answer.status_code == 200, answer.text[:2000]
            assert PROTOCOLO.search(answer.content), answer.text[:2000]
            answered.append(took)
            time.sleep(0.2)
        assert held.held() == {"idle": 10, "slow": 10}, "lotes were sent while all 20 were held"
        deadline = time.monotonic() + HEADER_S + 5
        while held.held() != {"idle": 0, "slow": 0} and time.monotonic() < deadline:
            time.sleep(0.2)
        closed = list(held.closed)
    slow = [c for c in closed if c.kind == "slow"]
    idle = [c for c in closed if c.kind == "idle"]
    assert len(slow) == 10 and len(idle) == 10, (closed, gateway.log()[-3000:])
    for connection in slow:  # after the deadline, with a 408 (and not before it)
        assert HEADER_S - 0.5 <= connection.held_s <= HEADER_S + 2.5, connection
        assert connection.answer.startswith(TIMED_OUT) and connection.sent >= 3, connection
    for connection in idle:  # they sent nothing: closed without an answer
        assert HEADER_S - 0.5 <= connection.held_s <= HEADER_S + 2.5 and connection.answer == b"", connection
    assert max(answered) < ANSWER_S


def test_a_body_the_application_did_not_read_keeps_the_connection(gateway: GatewayProcess):
    """The whole body was read before the application ran: what it left unread (a 100 KB form it
    refused) is dropped from memory, and the next request on the same connection is served
    (gunicorn's drain, counting it as socket bytes, closed the connection after 64 KiB)."""
    body = b"x=" + b"a" * 100_000
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        for path in ("/console/logout", "/console/logout"):
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: gateway\r\n"
                         "Content-Type: application/x-www-form-urlencoded\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            head = _read_head(sock)
            assert head.startswith(b"HTTP/1.1 "), head
            assert b"connection: close" not in head.lower(), head
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert _read_head(sock).startswith(b"HTTP/1.1 200"), "connection closed after an unread body"


def _read_head(sock: socket.socket) -> bytes:
    """A response's head, and its body skipped (Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        rest += sock.recv(65536)
    return head


def test_a_body_that_stops_holds_one_thread_until_its_deadline(tiss_home: Path, tmp_path: Path):
    """One worker process: a lote is answered while another request's body is stuck in a thread
    of that same process, which answers the stuck one 408 once its body deadline is past."""
    server = start_gateway(f"sqlite:///{tmp_path / 'gateway.sqlite'}", tiss_home, tmp_path, workers=1)
    try:
        stuck = socket.create_connection(("127.0.0.1", server.port))
        body = lote()
        stuck.sendall(f"POST {LOTE} HTTP/1.1\r\nHost: gateway\r\nContent-Type: text/xml\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:100])
        start = time.monotonic()
        time.sleep(0.5)  # its head is in, a thread reads its body
        answer, _took = send_lote(server.base_url)
        assert answer.status_code == 200 and PROTOCOLO.search(answer.content), answer.text[:2000]
        stuck.settimeout(BODY_MAX_S + 5)
        assert stuck.recv(100).startswith(TIMED_OUT)
        assert BODY_S - 0.5 <= time.monotonic() - start <= BODY_MAX_S + 2.5
        stuck.close()
        assert "corpo incompleto" in server.log()
    finally:
        server.close()


def test_tls_handshakes_that_never_end_hold_no_thread(tiss_home: Path, tmp_path: Path):
    from gateway.security import pki

    authority = pki.new_authority("AC Conexões")
    authority.issue_server("127.0.0.1").save(tmp_path, "server")
    (tmp_path / "ca.pem").write_bytes(authority.cert_pem)
    server = start_gateway(f"sqlite:///{tmp_path / 'gateway.sqlite'}", tiss_home, tmp_path, workers=1,
                           tls_ca=tmp_path / "ca.pem",
                           extra_args=("--threads", "2", "--certfile", str(tmp_path / "server-cert.pem"),
                                       "--keyfile", str(tmp_path / "server-key.pem")))
    try:
        # More half-sent ClientHellos than the process has threads.
        stuck = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(6)]
        for connection in stuck:
            connection.sendall(b"\x16\x03\x01")
        time.sleep(0.5)
        answer, _took = send_lote(server.base_url, verify=str(tmp_path / "ca.pem"))
        assert answer.status_code == 200 and PROTOCOLO.search(answer.content), answer.text[:2000]
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with context.wrap_socket(socket.create_connection(("127.0.0.1", server.port)),
                                 server_hostname="127.0.0.1") as slow:
            slow.sendall(b"POST /tiss")  # a head that never ends, under TLS
            slow.settimeout(HEADER_S + 5)
            assert slow.recv(100).startswith(TIMED_OUT)
        for connection in stuck:  # closed at the deadline, with nothing to answer
            connection.settimeout(5)
            assert connection.recv(100) == b""
            connection.close()
    finally:
        server.close()


def test_the_deployment_runs_the_threaded_worker():
    options = deploy_settings.gunicorn_options(Config(), bind="127.0.0.1:1", workers=2, env={})
    worker = load_class(options["worker_class"])
    assert issubclass(worker, ThreadWorker)
    assert options["threads"] == deploy_settings.DEFAULT_THREADS >= 4
    assert options["worker_connections"] == deploy_settings.WORKER_CONNECTIONS
    assert options["keepalive"] > 0
    env = {deploy_settings.THREADS_ENV: "3", deploy_settings.HEADER_TIMEOUT_ENV: "7.5"}
    assert deploy_settings.gunicorn_options(Config(), bind="x:1", workers=1, env=env)["threads"] == 3
    assert deploy_settings.ReadLimits.from_env(env).header_s == 7.5
    for bad in ({deploy_settings.THREADS_ENV: "0"}, {deploy_settings.HEADER_TIMEOUT_ENV: "-1"},
                {deploy_settings.BODY_MIN_RATE_ENV: "rápido"},
                {deploy_settings.BODY_TIMEOUT_ENV: "30", deploy_settings.BODY_MAX_TIMEOUT_ENV: "10"}):
        with pytest.raises(ValueError, match="TISS_GATEWAY_"):
            deploy_settings.gunicorn_options(Config(), bind="x:1", workers=1, env=bad)
    limits = deploy_settings.ReadLimits()
    assert limits.body_deadline_s(0) == limits.body_s
    assert limits.body_deadline_s(470_000) == pytest.approx(limits.body_s + 470_000 / (64 * 1024))
    assert limits.body_deadline_s(15 * 1024 * 1024) == limits.body_max_s
    assert limits.body_deadline_s(None) == limits.body_max_s
