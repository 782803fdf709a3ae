"""gateway.inbound.refusals: what a refused message may cost before login (issue 16) — its body
kept up to a size (the rest as length and SHA-256), its críticas capped, a per-address budget of
stored refusals per minute; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging

import pytest
from sqlalchemy import Engine, select

from gateway.inbound.refusals import AddressBudget, Refusals
from gateway.message import credencial, reader
from gateway.message.checks import Call, read_cabecalho
from gateway.message.faults import TissFault
from gateway.message.findings import MAX_FINDINGS, error
from gateway.message.services import SERVICE_BY_NAME
from gateway.storage.db import session_factory
from gateway.storage.models import Critica, Mensagem, Prestador
from tests.factory import build_lote


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0 * 60

    def __call__(self) -> float:
        return self.now


# --- the budget -----------------------------------------------------------------------------------------

def test_each_address_stores_its_budget_per_minute(caplog) -> None:
    clock = Clock()
    budget = AddressBudget(3, clock)
    with caplog.at_level(logging.WARNING, "tiss_gateway.inbound"):
        assert [budget.take("10.0.0.1") for _ in range(5)] == [True, True, True, False, False]
    assert [r.message for r in caplog.records].count(
        "recusas acima do limite (3 por minuto de 10.0.0.1, 30 no total): as próximas deste minuto são "
        "respondidas sem ser gravadas") == 1  # logged once, not per refusal
    assert budget.take("10.0.0.2")  # another address has its own
    clock.now += 60
    assert budget.take("10.0.0.1")  # a new minute


def test_an_ipv6_host_counts_by_its_64() -> None:
    budget = AddressBudget(2, Clock())
    assert budget.take("2001:db8:1:2::1") and budget.take("2001:db8:1:2::ffff")
    assert not budget.take("2001:db8:1:2:abcd::9")
    assert budget.take("2001:db8:1:3::1")
    assert budget.take("::ffff:10.0.0.9") and budget.take("10.0.0.9") and not budget.take("10.0.0.9")


def test_sprayed_addresses_share_a_total() -> None:
    budget = AddressBudget(2, Clock())
    taken = [budget.take(f"10.0.{i // 250}.{i % 250}") for i in range(100)]
    assert taken.count(True) == 20  # ten times the per-address budget


# --- what is stored -------------------------------------------------------------------------------------

@pytest.fixture
def refusals(db_engine: Engine) -> Refusals:
    return Refusals(session_factory(db_engine), body_bytes=1024, per_minute=2, clock=Clock())


def stored(engine: Engine) -> list[tuple[Mensagem, list[Critica]]]:
    with session_factory(engine)() as session:
        found = []
        for mensagem in session.scalars(select(Mensagem).order_by(Mensagem.id)):
            criticas = session.scalars(select(Critica).where(Critica.mensagem_id == mensagem.id)
                                       .order_by(Critica.id)).all()
            found.append((mensagem, list(criticas)))
        session.expunge_all()
        return found


def environ() -> dict:
    return {"REMOTE_ADDR": "10.9.8.7", "tiss.service": "tissLoteGuias"}


def test_an_unread_refusal_keeps_its_first_bytes_and_the_digest_of_all(refusals, db_engine) -> None:
    data = b"lixo " * 1000
    refusals.unread(environ(), data, "5002", client=True, findings=[error("5002", "XML malformado")])
    ((mensagem, criticas),) = stored(db_engine)
    assert (mensagem.tamanho, mensagem.corpo, mensagem.endereco) == (5000, data[:1024], "10.9.8.7")
    assert [c.codigo for c in criticas] == ["5002", None]
    assert criticas[1].mensagem == ("Mensagem recusada antes da identificação do prestador: guardados os "
                                    f"primeiros 1024 de 5000 bytes; SHA-256 da mensagem inteira: "
                                    f"{hashlib.sha256(data).hexdigest()}.")


def test_a_small_refusal_is_kept_whole(refusals, db_engine) -> None:
    refusals.unread(environ(), b"<x/>", "5001", client=True, findings=[])
    ((mensagem, criticas),) = stored(db_engine)
    assert mensagem.corpo == b"<x/>" and [c.codigo for c in criticas] == ["5001"]


def test_findings_past_the_cap_are_one_critica(refusals, db_engine) -> None:
    findings = [error("5001", f"erro {i}") for i in range(1000)]
    refusals.unread(environ(), b"<x/>", "5001", client=True, findings=findings)
    ((_mensagem, criticas),) = stored(db_engine)
    assert len(criticas) == MAX_FINDINGS + 1
    assert criticas[-1].mensagem == "E mais 900 críticas não listadas (total 1.000)."


def test_past_the_budget_refusals_are_not_stored(refusals, db_engine) -> None:
    for _ in range(4):
        refusals.unread(environ(), b"<x/>", "5002", client=True, findings=[])
    refusals.oversize(environ(), 99_999_999)
    assert len(stored(db_engine)) == 2


def call_of(data: bytes) -> Call:
    message = reader.read(data)
    return Call(message, SERVICE_BY_NAME["tissLoteGuias"], "10.9.8.7", read_cabecalho(message.root))


def test_a_refusal_before_login_is_truncated_after_login_kept_whole(refusals, db_engine) -> None:
    data = build_lote("sp-sadt", 3, envelope=True)
    assert len(data) > 1024
    fault = TissFault("LoginInvalido", "Login ou senha inválidos.", code="5005")
    refusals.store(call_of(data), fault, prestador_id=None, request_id="r1")
    with session_factory(db_engine).begin() as session:
        prestador = Prestador(documento="11222333000181", tipo_documento="CNPJ", nome="P", login="p")
        session.add(prestador)
        session.flush()
        prestador_id = prestador.id
    refusals.store(call_of(data), TissFault("DestinatarioInvalido", "x", code="5027"),
                   prestador_id=prestador_id, request_id="r2")
    (before, before_criticas), (after, after_criticas) = stored(db_engine)
    masked = credencial.redact(data).corpo  # no senhaPrestador at rest (the same length)
    assert (before.corpo, before.tamanho, before.request_id) == (masked[:1024], len(data), "r1")
    assert [c.codigo for c in before_criticas] == ["5005", None]
    assert (after.corpo, after.tamanho, after.prestador_id) == (masked, len(data), prestador_id)
    assert before.sha256_original == after.sha256_original == hashlib.sha256(data).hexdigest()
    assert [c.codigo for c in after_criticas] == ["5027"]
