"""A status poll answered without Spyne (gateway.soap.app ``direct``) in process, SQLite and
PostgreSQL: the same status line, headers and bytes as the same pipeline behind Spyne alone, for
answers, faults (raised by the pipeline: login, hash) and refusals (a Body that is not one plain
request goes through Spyne). Over HTTP, against zeep, suds, PHP and JAX-WS:
tests/process/test_interop.py; with real gunicorn workers: tests/process/test_status_cache.py."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from wsgiref.util import setup_testing_defaults

import pytest

from gateway.inbound.pipeline import Pipeline
from gateway.message.schema_registry import SchemaRegistry
from gateway.server import build_config, load_adapters, prepare
from gateway.soap.app import TissWsgi
from gateway.storage import db
from tests.factory import Party, build_lote, build_request
from tests.inprocess_operators import Relogio

STATUS = "/tiss/v4_03_00/tissSolicitacaoStatusProtocolo"
SEQUENCIAL = re.compile(rb"<ans:sequencialTransacao>\d+</ans:sequencialTransacao>")
HASH = re.compile(rb"<ans:hash>[0-9a-f]{32}</ans:hash>")


@dataclass(frozen=True)
class Answer:
    status: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass
class Fronts:
    direct: TissWsgi  # the default: status polls without Spyne
    spyne: TissWsgi  # the same pipeline, every request through Spyne
    spyne_calls: list[int]  # requests the direct front handed to Spyne

    def both(self, data: bytes, address: str = "10.9.0.1") -> tuple[Answer, Answer]:
        return post(self.direct, data, address), post(self.spyne, data, address)


def post(app: TissWsgi, data: bytes, address: str, path: str = STATUS) -> Answer:
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update({"REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_TYPE": "text/xml; charset=utf-8",
                    "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data), "REMOTE_ADDR": address})
    seen: dict = {}

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        seen.update(status=status, headers=tuple(headers))

    body = b"".join(app(environ, start_response))
    return Answer(seen["status"], seen["headers"], body)


@pytest.fixture
def fronts(database_url: str, registry: SchemaRegistry) -> Iterator[Fronts]:
    config = build_config(None, database_url, True, simulator=None)
    engine = db.make_engine(prepare(config))
    clock = Relogio(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))  # one time: answers differ by their ids alone
    pipeline = Pipeline(config, registry, db.session_factory(engine), clock,
                        readers=db.reader_factory(engine), adapters=load_adapters(config, registry))
    max_bytes = config.gateway.max_message_bytes
    direct = TissWsgi(pipeline, registry, max_bytes=max_bytes)
    calls: list[int] = []
    spyne = direct.spyne

    def counted(environ: dict, start_response) -> object:
        calls.append(1)
        return spyne(environ, start_response)

    direct.spyne = counted  # type: ignore[assignment]
    yield Fronts(direct, TissWsgi(pipeline, registry, max_bytes=max_bytes, direct=frozenset()), calls)
    engine.dispose()


def protocolo_of(fronts: Fronts) -> str:
    lote = build_lote("consulta", 2, envelope=True, numero_lote="901", sequencial="901")
    answer = post(fronts.spyne, lote, "10.9.0.1", "/tiss/v4_03_00/tissLoteGuias")
    found = re.search(rb"<ans:numeroProtocolo>(\w+)</ans:numeroProtocolo>", answer.body)
    assert found, answer.body[:2000]
    return found.group(1).decode()


def poll(protocolo: str, sequencial: str, **kwargs) -> bytes:
    return build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=sequencial,
                         numero_protocolo=protocolo, **kwargs)


def without_ids(body: bytes) -> bytes:
    """An answer without what differs between two stored answers (their sequencial, so their hash)."""
    return HASH.sub(b"", SEQUENCIAL.sub(b"", body))


def test_a_plain_poll_skips_spyne_and_is_answered_as_spyne_answers_it(fronts: Fronts) -> None:
    protocolo = protocolo_of(fronts)
    for encoding in ("ISO-8859-1", "UTF-8"):
        direct = post(fronts.direct, poll(protocolo, f"9{encoding[0]}1", encoding=encoding), "10.9.0.1")
        spyne = post(fronts.spyne, poll(protocolo, f"9{encoding[0]}2", encoding=encoding), "10.9.0.1")
        assert direct.status == spyne.status == "200 OK"
        for answer in (direct, spyne):
            assert answer.headers == (("Content-Type", f"text/xml; charset={encoding}"),
                                      ("Content-Length", str(len(answer.body))))
        assert without_ids(direct.body) == without_ids(spyne.body)
        unknown = fronts.both(poll("999999999999", f"9{encoding[0]}3", encoding=encoding))  # mensagemErro
        assert unknown[0].status == unknown[1].status == "200 OK"
    assert fronts.spyne_calls == []
    replayed = fronts.both(poll(protocolo, "9I1"))  # a replay from either: the stored bytes
    assert replayed[0] == replayed[1] and replayed[0].body == direct_body(fronts, protocolo, "9I1")


def direct_body(fronts: Fronts, protocolo: str, sequencial: str) -> bytes:
    return post(fronts.direct, poll(protocolo, sequencial), "10.9.0.1").body


@pytest.mark.parametrize("kind", ["senha errada", "login desconhecido", "hash errado", "versão", "schema"])
def test_a_fault_the_pipeline_raises_is_spynes_byte_for_byte(fronts: Fronts, kind: str) -> None:
    protocolo = protocolo_of(fronts)
    data = {
        "senha errada": lambda: poll(protocolo, "9201", party=Party(senha="outra")),
        "login desconhecido": lambda: poll(protocolo, "9202", party=Party(login="ninguem")),
        "hash errado": lambda: HASH.sub(b"<ans:hash>" + b"0" * 32 + b"</ans:hash>", poll(protocolo, "9203")),
        "versão": lambda: poll(protocolo, "9204").replace(b"<ans:Padrao>4.03.00", b"<ans:Padrao>4.09.00"),
        "schema": lambda: poll(protocolo, "9205").replace(b"ans:numeroProtocolo>", b"ans:numeroProtocoloX>"),
    }[kind]()
    direct, spyne = fronts.both(data, address=f"10.9.1.{len(kind)}")
    assert direct == spyne and direct.status.startswith("500") and b"tissFault" in direct.body
    assert fronts.spyne_calls == []  # raised by the pipeline: answered without Spyne


@pytest.mark.parametrize("kind", ["comentário", "dois elementos", "mensagemTISS", "doctype", "quebrado",
                                  "sem envelope", "outro serviço"])
def test_a_body_that_is_not_one_plain_poll_goes_through_spyne(fronts: Fronts, kind: str) -> None:
    protocolo = protocolo_of(fronts)
    data = poll(protocolo, "9301")
    body_open = data.index(b"<ans:solicitacaoStatusProtocoloWS")
    data = {
        "comentário": lambda: data[:body_open] + b"<!-- antes -->" + data[body_open:],
        "dois elementos": lambda: data.replace(b"</soapenv:Body>", b"<ans:outro/></soapenv:Body>"),
        "mensagemTISS": lambda: build_lote("consulta", 1, envelope=False),
        "doctype": lambda: data.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY e "e">]>', 1),
        "quebrado": lambda: data[:-40],
        "sem envelope": lambda: build_request("solicitacaoStatusProtocoloWS", sequencial="9302",
                                              numero_protocolo=protocolo),
        "outro serviço": lambda: build_request("loteGuiasWS", envelope=True, sequencial="9303"),
    }[kind]()
    calls = len(fronts.spyne_calls)
    direct, spyne = fronts.both(data, address=f"10.9.2.{len(kind)}")
    assert len(fronts.spyne_calls) == calls + 1
    assert direct == spyne  # a poll taken (the comment dropped), the second a replay: the same bytes
    assert direct.status == ("200 OK" if kind == "comentário" else "500 Internal Server Error")
