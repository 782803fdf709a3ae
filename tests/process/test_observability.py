"""Readiness, Prometheus metrics, JSON logs with a request id, masking of secrets.

The process tests run the forwarding test bed of tests/forwarding_stack.py with one change: the
config logs at DEBUG, so that the gateway and the worker (zeep logs every request it posts) write
message bodies to their logs, which the masking must catch. The worker serves its own /metrics
(``--metrics-bind``); the gateway's /metrics sums its 2 gunicorn workers (multiprocess mode).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from gateway.config import ConfigError, parse_config
from gateway.message.services import ANS_NS
from gateway.observability import logs
from gateway.observability.readiness import Readiness
from gateway.observability.wsgi import ObservedApp
from gateway.storage import db, migrate
from gateway.storage.models import Mensagem
from tests.db_fixtures import BACKENDS
from tests.factory import Party, build_lote
from tests.forwarding_stack import OPERADORAS, Stack, new_number, party, wait_until, write_config
from tests.gateway_process import GatewayProcess, WorkerProcess, free_port
from tests.simulator_process import SimulatorProcess

# The process tests (the unit tests below them need no processes).
on_stack = pytest.mark.usefixtures("clean_faults", "logs_on_failure")

PASA = OPERADORAS["pasa"][0]
DEMO_MD5 = Party().senha_md5  # what every test message carries in senhaPrestador
JSON_KEYS = {"ts", "level", "logger", "message", "request_id"}


# -- the test bed --------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tiss_home: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Overrides tests.forwarding_stack's: the same processes, logging at DEBUG, and a worker of the
    module's own (``stack.metrics_url``: its /metrics)."""
    home = tmp_path_factory.mktemp("observability")
    url = f"sqlite:///{home / 'gateway.sqlite'}" if request.param == "sqlite" \
        else request.getfixturevalue("pg_schemas")()
    simulator = SimulatorProcess(home / "sim").start()
    config = write_config(home, simulator)
    with config.open("a", encoding="utf-8") as file:
        file.write('\n[logs]\nnivel = "DEBUG"\n')
    gateway = GatewayProcess(url, tiss_home, demo=False, extra_args=("--config", str(config))).start()
    found = Stack(simulator, gateway, config)
    port = free_port()
    worker = WorkerProcess(url, tiss_home, config, threads=2,
                           extra_args=("--metrics-bind", f"127.0.0.1:{port}")).start()
    found.workers.append(worker)
    found.metrics_url = f"http://127.0.0.1:{port}/metrics"  # type: ignore[attr-defined]
    try:
        yield found
    finally:
        found.close()
        gateway.close()
        simulator.close()


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a /metrics page: (name, labels) -> value."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def worker_metrics(stack: Stack) -> dict[tuple[str, frozenset], float]:
    return wait_until(lambda: _try_scrape(stack.metrics_url), 30, "/metrics do worker")  # type: ignore[attr-defined]


def _try_scrape(url: str) -> dict | None:
    try:
        return scrape(url)
    except requests.RequestException:
        return None


def json_lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def post_lote(stack: Stack, key: str = "pasa", *, request_id: str | None = None,
              body: bytes | None = None) -> requests.Response:
    numero = new_number()
    body = body or build_lote("consulta", 2, envelope=True, numero_lote=numero, sequencial=numero,
                              party=party(key))
    headers = {"Content-Type": "text/xml; charset=ISO-8859-1"}
    if request_id:
        headers["X-Request-Id"] = request_id
    return requests.post(stack.gateway.url("/tiss/v4_03_00/tissLoteGuias"), data=body, headers=headers,
                         timeout=60)


def protocolo_of(response: requests.Response) -> str:
    found = re.search(rb"<ans:numeroProtocolo>(\w+)</ans:numeroProtocolo>", response.content)
    assert response.status_code == 200 and found, response.text[:2000]
    return found.group(1).decode()


# -- /readyz ---------------------------------------------------------------------------------------------

@on_stack
def test_readyz_answers_503_while_the_migrations_are_behind(stack: Stack) -> None:
    ready = requests.get(stack.gateway.url("/readyz"), timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "schemas": "ok"}
    assert requests.get(stack.gateway.url("/healthz"), timeout=10).status_code == 200
    head = migrate.head()
    with stack.db.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    try:
        behind = wait_until(lambda: _status(stack, 503), 20, "/readyz 503")
        assert "0002" in behind["checks"]["migrations"], behind
        assert behind["status"] == "indisponivel" and behind["checks"]["database"] == "ok"
    finally:
        with stack.db.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    wait_until(lambda: _status(stack, 200), 20, "/readyz 200 de novo")


def _status(stack: Stack, status: int) -> dict | None:
    """/readyz's JSON if it answered ``status`` (a Response object is falsy when not ok)."""
    response = requests.get(stack.gateway.url("/readyz"), timeout=10)
    return response.json() if response.status_code == status else None


@pytest.mark.parametrize("url", ["sqlite:////nonexistent-dir/tiss/gateway.sqlite",
                                 "postgresql://tiss@127.0.0.1:{port}/tiss?connect_timeout=3"])
def test_readyz_answers_503_when_the_database_is_unreachable(url: str, registry) -> None:
    """Real connection attempts: a SQLite file that cannot be opened, a PostgreSQL port nobody
    listens on; the middleware answers 503 with the reason, never 500."""
    engine = db.make_engine(url.format(port=free_port()))
    try:
        readiness = Readiness(db.reader_factory(engine), registry, ttl=0)
        verdict = readiness.verdict()
        assert not verdict.ready and verdict.checks["database"].startswith("inacessível")
        app = ObservedApp(lambda environ, start: [], readiness, ())
        seen: list[str] = []
        body = b"".join(app({"PATH_INFO": "/readyz"}, lambda status, headers: seen.append(status)))
        assert seen == ["503 Service Unavailable"]
        assert json.loads(body)["status"] == "indisponivel"
    finally:
        engine.dispose()


# -- /metrics --------------------------------------------------------------------------------------------

@on_stack
def test_metrics_count_requests_by_service_version_and_outcome_over_both_workers(stack: Stack) -> None:
    url = stack.gateway.url("/metrics")
    before = scrape(url)
    sent, pids = 0, set()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _round in range(6):  # concurrent calls spread over both gunicorn workers
            ids = [f"obs-metrics-{new_number()}" for _ in range(6)]
            responses = list(pool.map(lambda rid: post_lote(stack, request_id=rid), ids))
            assert all(r.status_code == 200 for r in responses), [r.text[:500] for r in responses]
            sent += len(ids)
            served = wait_until(lambda ids=ids: _served_by(stack, ids), 10, "linhas do log de acesso")
            pids |= set(served.values())
            if len(pids) >= 2:
                break
    assert len(pids) >= 2, "todas as chamadas caíram no mesmo worker do gunicorn"
    numero = new_number()
    duplicate = build_lote("consulta", 1, envelope=True, numero_lote=numero, sequencial=numero,
                           party=party("pasa"))
    assert post_lote(stack, body=duplicate).status_code == 200
    again = build_lote("consulta", 1, envelope=True, numero_lote=numero, sequencial=new_number(),
                       party=party("pasa"))
    refused = post_lote(stack, body=again)
    assert b"mensagemErro" in refused.content, refused.text
    good = build_lote("consulta", 1, envelope=True, numero_lote=new_number(), party=party("pasa"))
    wrong_hash = re.sub(rb"<ans:hash>\w+</ans:hash>", b"<ans:hash>" + b"0f" * 16 + b"</ans:hash>", good)
    faulted = post_lote(stack, body=wrong_hash, request_id="obs-wrong-hash")
    assert faulted.status_code == 500 and b"HashInvalido" in faulted.content
    with stack.db.connect() as connection:
        code = connection.scalar(select(Mensagem.codigo_erro).where(Mensagem.request_id == "obs-wrong-hash"))
    status = stack.status("pasa", protocolo_of(post_lote(stack)))
    assert status.find(f".//{{{ANS_NS}}}statusProtocolo") is not None
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    lote = {"service": "tissLoteGuias", "version": "4.03.00"}
    assert delta("tiss_gateway_requests_total", **lote, outcome="accepted") == sent + 2
    assert delta("tiss_gateway_requests_total", **lote, outcome="refused") == 1
    assert delta("tiss_gateway_requests_total", **lote, outcome="fault") == 1
    assert delta("tiss_gateway_requests_total", service="tissSolicitacaoStatusProtocolo", version="4.03.00",
                 outcome="accepted") == 1
    assert code == "5014"
    assert delta("tiss_gateway_validation_failures_total", service="tissLoteGuias", code="5014") == 1
    assert delta("tiss_gateway_validation_failures_total", service="tissLoteGuias", code="3268") == 1
    histogram = "tiss_gateway_request_duration_seconds"
    assert delta(f"{histogram}_count", service="tissLoteGuias") == sent + 4
    assert delta(f"{histogram}_bucket", service="tissLoteGuias", le="+Inf") == sent + 4
    assert sample(after, f"{histogram}_bucket", service="tissLoteGuias", le="10.0") >= \
        sample(after, f"{histogram}_bucket", service="tissLoteGuias", le="0.001")
    assert delta(f"{histogram}_sum", service="tissLoteGuias") > 0


@on_stack
def test_queue_depth_rises_while_the_operator_is_down_and_falls_after(stack: Stack) -> None:
    url = stack.gateway.url("/metrics")
    wait_until(lambda: _queued(scrape(url)) == 0, 60, "fila da PASA vazia antes do teste")
    stack.simulator.set_fault("pasa", "down")
    protocolos = [protocolo_of(post_lote(stack)) for _ in range(3)]
    seen = wait_until(lambda: (lambda s: s if _queued(s) >= 3 else None)(scrape(url)), 30,
                      "3 entregas na fila da PASA")
    assert sample(seen, "tiss_gateway_delivery_queue_oldest_seconds", operadora=PASA) > 0
    assert sample(seen, "tiss_gateway_database_up") == 1
    wait_until(lambda: sample(worker_metrics(stack), "tiss_gateway_deliveries_total", operadora=PASA,
                              outcome="falha") >= 1, 30, "tentativas falhas contadas pelo worker")
    stack.simulator.clear_fault("pasa")
    for protocolo in protocolos:
        wait_until(lambda p=protocolo: stack.delivered(p), 60, f"entrega de {protocolo}")
    drained = scrape(url)
    assert _queued(drained) == 0
    assert sample(drained, "tiss_gateway_delivery_queue_oldest_seconds", operadora=PASA) == 0
    worker = wait_until(lambda: _polled(worker_metrics(stack)), 30, "consultas de situação respondidas")
    assert sample(worker, "tiss_gateway_status_poll_lag_seconds_count", operadora=PASA) >= 1
    assert sample(worker, "tiss_gateway_deliveries_total", operadora=PASA, outcome="entregue") >= 3
    assert sample(worker, "tiss_gateway_delivery_duration_seconds_count", operadora=PASA) >= 3


@on_stack
def test_a_worker_whose_database_fails_counts_the_failed_cycles_backs_off_and_recovers(stack: Stack) -> None:
    """A database outage as the worker sees it: its delivery table renamed away, so that every
    cycle of both threads fails. The failures are counted in /metrics, logged at a falling rate
    (the backoff doubles from 0.4 s), and the worker delivers again once the table is back."""
    worker = stack.workers[0]

    def failed_cycles() -> float:
        return sample(worker_metrics(stack), "tiss_gateway_worker_cycle_failures_total", causa="banco")

    before = failed_cycles()
    logged_before = _cycle_failures(worker.log())
    with stack.db.begin() as connection:
        connection.execute(text("ALTER TABLE entrega RENAME TO entrega_fora"))
    try:
        wait_until(lambda: failed_cycles() - before >= 6 or None, 30, "ciclos falhos contados")
        time.sleep(3)
        failed = failed_cycles() - before
    finally:
        with stack.db.begin() as connection:
            connection.execute(text("ALTER TABLE entrega_fora RENAME TO entrega"))
    # About 1.2 s to the 6th failure, then 3 s: with the backoff each thread fails at 0, 0.4, 1.2,
    # 2.8, 6 s (at most 5 each); at the 0.2 s idle pace without it, ~20 each (36 seen)
    assert 6 <= failed <= 12, failed
    protocolo = protocolo_of(post_lote(stack))
    wait_until(lambda: stack.delivered(protocolo), 60, "entrega depois da volta do banco")
    # logged after the cycle that delivered: the other thread may still be in its backoff
    wait_until(lambda: "ciclo do worker voltou a funcionar" in worker.log() or None, 30, "a volta no log")
    failures = _cycle_failures(worker.log())[len(logged_before):]
    assert len(failures) == failed_cycles() - before  # each one logged, with its cause
    assert all(re.search(r'no such table: entrega|relation "entrega" does not exist', line.get("exc", ""))
               for line in failures), failures[0]


def _cycle_failures(log: str) -> list[dict]:
    return [line for line in json_lines(log) if line["message"].startswith("falha no ciclo do worker")]


def _polled(samples: dict) -> dict | None:
    answered = sample(samples, "tiss_gateway_status_polls_total", operadora=PASA, outcome="respondida")
    return samples if answered >= 1 else None


def _served_by(stack: Stack, ids: list[str]) -> dict[str, int] | None:
    """request id -> pid of the gunicorn worker that served it, once every id is in the access log
    (written just after the answer is sent)."""
    served = {line["request_id"]: line["pid"] for line in json_lines(stack.gateway.log())
              if line["logger"] == "gunicorn.access"}
    return {rid: served[rid] for rid in ids} if all(rid in served for rid in ids) else None


def _queued(samples: dict) -> float:
    return sum(sample(samples, "tiss_gateway_delivery_queue", operadora=PASA, estado=e)
               for e in ("pendente", "enviando"))


# -- the request id ---------------------------------------------------------------------------------------

@on_stack
def test_the_request_id_follows_the_message_to_the_operator(stack: Stack) -> None:
    rid = f"obs-rid-{new_number()}"
    response = post_lote(stack, request_id=rid)
    assert response.headers["X-Request-Id"] == rid
    protocolo = protocolo_of(response)
    wait_until(lambda: stack.delivered(protocolo), 60, "entrega")
    with stack.db.connect() as connection:
        rows = connection.execute(select(Mensagem.direcao, Mensagem.resultado)
                                  .where(Mensagem.request_id == rid)).all()
    assert ("entrada", "aceita") in rows and ("saida", "resposta") in rows
    assert ("saida", "aceita") in rows  # what the worker sent to the operator
    assert [e.request_id for e in stack.entregas(protocolo)] == [rid]
    access = [line for line in json_lines(stack.gateway.log()) if line.get("request_id") == rid]
    assert any(line["logger"] == "gunicorn.access" and line["service"] == "tissLoteGuias"
               and line["outcome"] == "accepted" for line in access), access
    delivered = wait_until(lambda: [line for line in json_lines(stack.workers[0].log())
                                    if line["request_id"] == rid and "entregue" in line["message"]],
                           30, "linha de log da entrega")
    assert delivered[0]["operadora"] == PASA and delivered[0]["logger"] == "tiss_gateway.delivery"
    wait_until(lambda: f"request_id='{rid}'" in stack.simulator.log(), 30, "X-Request-Id na operadora")
    assert re.search(rf"pasa \S+ POST /tiss/\S*tissLoteGuias 200 .*request_id='{rid}'", stack.simulator.log())


@on_stack
@pytest.mark.parametrize("header", ["com espaço", "x" * 33, "a;b", ""])
def test_an_insane_request_id_is_replaced_by_a_new_one(stack: Stack, header: str) -> None:
    response = requests.get(stack.gateway.url("/healthz"), headers={"X-Request-Id": header}, timeout=10)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])


# -- the logs ---------------------------------------------------------------------------------------------

@on_stack
def test_every_log_line_of_gateway_and_worker_is_a_json_object(stack: Stack) -> None:
    post_lote(stack, request_id="obs-json")
    gateway_lines = [line for line in stack.gateway.log().splitlines() if line and not line.startswith("$ ")]
    worker_lines = [line for line in stack.workers[0].log().splitlines() if line]
    assert len(gateway_lines) > 20 and len(worker_lines) > 5
    for line in gateway_lines + worker_lines:
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(line[:500]) from None
        assert entry.keys() >= JSON_KEYS, line
        assert entry["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])


@on_stack
def test_no_password_nor_full_card_number_reaches_the_logs(stack: Stack) -> None:
    """At DEBUG zeep logs every envelope the worker posts (senhaPrestador, numeroCarteira): they
    must come out masked. The demo password's MD5 and the full card numbers appear nowhere."""
    rid = f"obs-mask-{new_number()}"
    numero = new_number()
    body = build_lote("consulta", 3, envelope=True, numero_lote=numero, sequencial=numero,
                      party=party("pasa"))
    protocolo = protocolo_of(post_lote(stack, body=body, request_id=rid))
    wait_until(lambda: stack.delivered(protocolo), 60, "entrega")
    carteiras = {c.text for c in etree.fromstring(body).iter(f"{{{ANS_NS}}}numeroCarteira")}
    assert carteiras and all(len(c) > 4 for c in carteiras)
    every = stack.gateway.log() + stack.workers[0].log()
    assert DEMO_MD5 not in every
    for carteira in carteiras:
        assert carteira not in every
    # The bodies were logged (the masking had work to do), masked:
    assert re.search(r"senhaPrestador>\*\*\*</", every), "nenhum corpo nos logs: o teste não provaria nada"
    assert any(f"numeroCarteira>***{c[-4:]}</" in every for c in carteiras)


# -- masking and formatting (units) ------------------------------------------------------------------------

CERT_PEM = ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ0\nabc==\n-----END CERTIFICATE-----\n"
            "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----")


@pytest.mark.parametrize(("raw", "hidden", "kept"), [
    ("<ans:loginSenhaPrestador><ans:loginPrestador>demo</ans:loginPrestador>"
     "<ans:senhaPrestador>fe01ce2a7fbac8fafaed7c982a04e229</ans:senhaPrestador></ans:loginSenhaPrestador>",
     ["fe01ce2a7fbac8fafaed7c982a04e229"], ["<ans:senhaPrestador>***</ans:senhaPrestador>", "demo"]),
    ("<senhaPrestador>segredo</senhaPrestador>", ["segredo"], ["<senhaPrestador>***</senhaPrestador>"]),
    ("<ans:senhaPrestador><![CDATA[fe01ce2a7f]]></ans:senhaPrestador>", ["fe01ce2a7f"],
     ["<ans:senhaPrestador>***</ans:senhaPrestador>"]),
    ("<ans:numeroCarteira>00331988123456789</ans:numeroCarteira>", ["00331988123456789", "3319881"],
     ["<ans:numeroCarteira>***6789</ans:numeroCarteira>"]),
    ("<numeroCarteira> 123456 </numeroCarteira>", ["123456"], ["<numeroCarteira>***3456</numeroCarteira>"]),
    (CERT_PEM, ["MIIBszCCAVmgAwIBAgIUJ0", "MIGHAgEAMBMGByqGSM49"],
     ["-----BEGIN CERTIFICATE-----***-----END CERTIFICATE-----", "-----BEGIN PRIVATE KEY-----***"]),
    ("chave: -----BEGIN RSA PRIVATE KEY-----\nMIIEow truncated", ["MIIEow"], ["BEGIN RSA PRIVATE KEY"]),
    ("<ds:X509Certificate>MIIDdzCCAl+gAwIBAgIE</ds:X509Certificate>", ["MIIDdzCCAl"],
     ["X509Certificate>***<"]),
    ("login demo senha=demo123&x=1", ["demo123"], ["senha=***", "&x=1"]),
    ('{"senha": "abc123", "password":"p4ss"}', ["abc123", "p4ss"], ['"senha": "***"']),
    ("numero_carteira=99998888777766", ["99998888777766"], ["numero_carteira=***7766"]),
    ("postgresql://tiss:s3cr3t@db:5432/tiss", ["s3cr3t"], ["postgresql://tiss:***@db:5432/tiss"]),
    ("Login ou senha inválidos.", [], ["Login ou senha inválidos."]),
])
def test_mask_hides_passwords_certificates_keys_and_card_numbers(raw: str, hidden: list[str],
                                                                  kept: list[str]) -> None:
    masked = logs.mask(raw)
    for secret in hidden:
        assert secret not in masked, masked
    for text_ in kept:
        assert text_ in masked, masked


def _record(message: str, *args, **extra) -> logging.LogRecord:
    record = logging.getLogger("tiss_gateway.teste").makeRecord(
        "tiss_gateway.teste", logging.WARNING, __file__, 1, message, args, None, extra=extra)
    return record


def test_json_formatter_writes_one_masked_object_with_the_request_id_and_extra_fields() -> None:
    formatter = logs.JsonFormatter()
    with logs.request_context("rid-123"):
        line = formatter.format(_record("login %s <senhaPrestador>%s</senhaPrestador>", "demo", DEMO_MD5,
                                        entrega_id=7, senha="demo", numero_carteira="12345678901",
                                        corpo=b"<numeroCarteira>12345678901</numeroCarteira>"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "rid-123" and entry["level"] == "WARNING"
    assert entry["logger"] == "tiss_gateway.teste" and entry["entrega_id"] == 7
    assert entry["senha"] == "***" and entry["numero_carteira"] == "***8901"
    assert "12345678901" not in line and DEMO_MD5 not in line
    assert entry["message"] == "login demo <senhaPrestador>***</senhaPrestador>"
    assert json.loads(formatter.format(_record("fora de uma chamada")))["request_id"] is None


def test_json_formatter_masks_tracebacks_and_the_text_formatter_masks_too() -> None:
    try:
        raise ValueError(f"falhou com <senhaPrestador>{DEMO_MD5}</senhaPrestador>")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "erro", (),
                                                   __import__("sys").exc_info())
    entry = json.loads(logs.JsonFormatter().format(record))
    assert "ValueError" in entry["exc"] and DEMO_MD5 not in entry["exc"]
    text_line = logs.TextFormatter().format(_record("senha=%s carteira=%s", "x1y2", "12345678901"))
    assert "x1y2" not in text_line and "12345678901" not in text_line and "[-]" in text_line


def test_configure_logging_sends_json_lines_to_stderr(capsys: pytest.CaptureFixture) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure_logging(True, "INFO")
        logs.configure_logging(True, "INFO")  # twice: still one handler
        assert sum(getattr(h, "_tiss", False) for h in root.handlers) == 1
        logging.getLogger("tiss_gateway.teste").info("olá %s", "mundo", extra={"lote": "12"})
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(err)["message"] == "olá mundo" and json.loads(err)["lote"] == "12"
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)


@pytest.mark.parametrize(("value", "sane"), [("abc-DEF_123", True), ("a" * 32, True), ("a" * 33, False),
                                             ("", False), (None, False), ("a b", False), ("é", False),
                                             ("a\nb", False)])
def test_sane_request_id(value: str | None, sane: bool) -> None:
    assert (logs.sane_request_id(value) is not None) is sane


def test_log_and_metrics_config_sections_are_strict() -> None:
    config = parse_config({"logs": {"formato": "texto", "nivel": "debug"},
                           "metricas": {"diretorio": "/tmp/m"}})
    assert (config.logs.formato, config.logs.nivel) == ("texto", "DEBUG")
    assert str(config.metricas.diretorio) == "/tmp/m"
    for bad in ({"logs": {"formato": "xml"}}, {"logs": {"nivel": "verbose"}}, {"logs": {"fomato": "json"}},
                {"metricas": {"dir": "/tmp"}}):
        with pytest.raises(ConfigError):
            parse_config(bad)
