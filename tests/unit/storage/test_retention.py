"""``tiss-gateway prune`` (gateway.storage.retention) on SQLite and PostgreSQL: bodies emptied past
their age with every row kept, what the gateway still reads kept whatever its age, the access log
kept at least 90 days, a dry run that changes nothing, and a replayed transaction whose stored
answer was pruned answered with a clear tissFault by a real gateway."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from gateway.config import RetencaoSettings
from gateway.storage.db import session_factory
from gateway.storage.models import Arquivo, Auditoria, Demonstrativo, Entrega, Mensagem, Prestador, Transacao
from gateway.storage.retention import prune
from tests.factory import build_lote, build_request
from tests.gateway_process import GatewayProcess, cli

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=10)
BODY = b"<ans:loteGuiasWS>" + b"x" * 100 + b"</ans:loteGuiasWS>"


@dataclass
class Seeded:
    """Ids of the rows the tests look at."""

    mensagens: dict[str, int]
    entregas: dict[str, int]
    auditoria: dict[str, int]


def _mensagem(session: Session, prestador: Prestador, when: datetime, corpo: bytes = BODY, **extra) -> int:
    row = Mensagem(direcao="entrada", servico="tissLoteGuias", versao="4.03.00", hash="ab" * 16,
                   tamanho=len(corpo), corpo=corpo, prestador_id=prestador.id, resultado="aceita",
                   criada_em=when, request_id="rid-retencao", **extra)
    session.add(row)
    session.flush()
    return row.id


def _entrega(session: Session, prestador: Prestador, mensagem_id: int, estado: str, **extra) -> int:
    row = Entrega(registro_ans="331988", servico="tissLoteGuias", prestador_id=prestador.id,
                  mensagem_id=mensagem_id, estado=estado, corpo=b"<prepared>" + b"y" * 50 + b"</prepared>",
                  criada_em=OLD, proxima_em=OLD, **extra)
    session.add(row)
    session.flush()
    return row.id


def seed(engine: Engine) -> Seeded:
    with session_factory(engine).begin() as session:
        prestador = Prestador(documento="11222333000181", tipo_documento="CNPJ", nome="Clínica", login="demo")
        session.add(prestador)
        session.flush()
        m = {name: _mensagem(session, prestador, OLD) for name in (
            "entregue", "pendente", "enviando", "morta", "recusada", "polled_request", "situacao",
            "demonstrativo", "replay_request", "replay_answer", "plain_old")}
        m["recent"] = _mensagem(session, prestador, RECENT)
        m["empty_old"] = _mensagem(session, prestador, OLD, corpo=b"", codigo_erro="5002")
        e = {estado: _entrega(session, prestador, m[estado], estado, **(
            {"entregue_em": OLD} if estado in ("entregue", "recusada") else {}))
             for estado in ("entregue", "pendente", "enviando", "morta", "recusada")}
        e["polled"] = _entrega(session, prestador, m["polled_request"], "entregue", entregue_em=OLD,
                               proxima_consulta_em=NOW + timedelta(hours=1), situacao_id=m["situacao"])
        session.add(Demonstrativo(prestador_id=prestador.id, registro_ans="331988", tipo="1",
                                  mensagem_id=m["demonstrativo"], obtido_em=OLD))
        session.add(Transacao(prestador_id=prestador.id, tipo_transacao="ENVIO_LOTE_GUIAS",
                              sequencial_transacao="77", hash="ab" * 16, requisicao_id=m["replay_request"],
                              resposta_id=m["replay_answer"], criada_em=OLD))
        a = {}
        for name, days in (("d400", 400), ("d100", 100), ("d91", 91), ("d89", 89), ("d10", 10)):
            row = Auditoria(quem="demo", acao="login", em=NOW - timedelta(days=days))
            session.add(row)
            session.flush()
            a[name] = row.id
    return Seeded(m, e, a)


def bodies(engine: Engine) -> dict[int, tuple[bytes, datetime | None, int, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(select(Mensagem.id, Mensagem.corpo, Mensagem.corpo_removido_em,
                                         Mensagem.tamanho, Mensagem.hash))
        return {r.id: (r.corpo, r.corpo_removido_em, r.tamanho, r.hash) for r in rows}


def entrega_bodies(engine: Engine) -> dict[int, bytes | None]:
    with engine.connect() as connection:
        return dict(connection.execute(select(Entrega.id, Entrega.corpo)).all())


def audit_ids(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        return set(connection.execute(select(Auditoria.id)).scalars())


def test_prune_empties_old_bodies_keeps_rows_and_what_is_still_read(db_engine: Engine) -> None:
    seeded = seed(db_engine)
    before = bodies(db_engine)
    report = prune(session_factory(db_engine), RetencaoSettings(corpo_dias=180, auditoria_dias=96, lote=2),
                   quem="teste", now=lambda: NOW)
    after = bodies(db_engine)
    m = seeded.mensagens
    gone = {"entregue", "recusada", "polled_request", "replay_request", "replay_answer", "plain_old"}
    kept = {"pendente", "enviando", "morta", "situacao", "demonstrativo", "recent"}
    assert set(after) == set(before)  # every row stays
    for name in gone:
        corpo, removido, tamanho, hash_ = after[m[name]]
        assert corpo == b"" and removido is not None and abs(removido - NOW) < timedelta(seconds=1), name
        assert (tamanho, hash_) == before[m[name]][2:], name  # the metadata stays
    for name in kept:
        assert after[m[name]] == before[m[name]], name
    assert after[m["empty_old"]][1] is None  # nothing to remove: not marked
    assert report.mensagens == len(gone) and report.bytes == len(gone) * len(BODY)
    assert report.mantidas == 5  # pendente, enviando, morta (their requests), situação, demonstrativo
    entregas = entrega_bodies(db_engine)
    e = seeded.entregas
    assert entregas[e["entregue"]] == b"" and entregas[e["recusada"]] == b""
    for estado in ("pendente", "enviando", "morta", "polled"):  # still sent or polled
        assert entregas[e[estado]].startswith(b"<prepared>"), estado
    assert report.entregas == 2


def test_a_portal_file_part_keeps_its_prepared_body_until_its_status_is_final(db_engine: Engine) -> None:
    """canal "arquivo": nothing polls the part, yet the clerk's demonstrativo is read against it."""
    with session_factory(db_engine).begin() as session:
        prestador = Prestador(documento="11222333000181", tipo_documento="CNPJ", nome="Clínica", login="demo")
        session.add(prestador)
        session.flush()
        e, arquivos = {}, {}
        for name, status in (("aguardando", None), ("analisada", 5), ("final", 6)):
            pedido, arquivos[name] = _mensagem(session, prestador, OLD), _mensagem(session, prestador, OLD)
            e[name] = _entrega(session, prestador, pedido, "entregue", entregue_em=OLD, status=status)
            session.add(Arquivo(entrega_id=e[name], mensagem_id=arquivos[name], nome=f"{name}.xml",
                                criado_em=OLD))
    report = prune(session_factory(db_engine), RetencaoSettings(corpo_dias=180, auditoria_dias=96, lote=2),
                   quem="teste", now=lambda: NOW)
    entregas, mensagens = entrega_bodies(db_engine), bodies(db_engine)
    for name in ("aguardando", "analisada"):  # the file a person still downloads, and what its returns need
        assert entregas[e[name]].startswith(b"<prepared>") and mensagens[arquivos[name]][0] == BODY, name
    assert entregas[e["final"]] == b"" and mensagens[arquivos["final"]][0] == b""
    assert report.entregas == 1 and report.mantidas == 2


def test_the_access_log_is_kept_at_least_90_days(db_engine: Engine) -> None:
    seeded = seed(db_engine)
    report = prune(session_factory(db_engine), RetencaoSettings(auditoria_dias=96, lote=2), now=lambda: NOW)
    a = seeded.auditoria
    remaining = audit_ids(db_engine)
    assert a["d400"] not in remaining and a["d100"] not in remaining
    assert {a["d91"], a["d89"], a["d10"]} <= remaining
    assert report.auditoria == 2
    # A setting under 90 (the config refuses it; here built by hand) still keeps 90 days.
    report = prune(session_factory(db_engine), RetencaoSettings(auditoria_dias=30, lote=2), now=lambda: NOW)
    remaining = audit_ids(db_engine)
    assert a["d91"] not in remaining and {a["d89"], a["d10"]} <= remaining
    assert report.auditoria == 1 and report.auditoria_antes_de == NOW - timedelta(days=90)


def test_the_prune_run_is_audited(db_engine: Engine) -> None:
    seed(db_engine)
    prune(session_factory(db_engine), RetencaoSettings(), quem="cli:operador", now=lambda: NOW)
    with db_engine.connect() as connection:
        row = connection.execute(select(Auditoria).where(Auditoria.acao == "prune")).one()
    assert row.quem == "cli:operador"
    detail = json.loads(row.detalhe)
    assert detail["mensagens"] == 6 and detail["dry_run"] is False


def test_dry_run_changes_nothing_and_counts_what_a_run_does(db_engine: Engine) -> None:
    seed(db_engine)
    snapshot = (bodies(db_engine), entrega_bodies(db_engine), audit_ids(db_engine))
    settings = RetencaoSettings(auditoria_dias=96, lote=3)
    dry = prune(session_factory(db_engine), settings, dry_run=True, now=lambda: NOW)
    # Not even an audit row:
    assert (bodies(db_engine), entrega_bodies(db_engine), audit_ids(db_engine)) == snapshot
    real = prune(session_factory(db_engine), settings, now=lambda: NOW)
    assert (dry.mensagens, dry.bytes, dry.mantidas, dry.entregas, dry.auditoria) == \
        (real.mensagens, real.bytes, real.mantidas, real.entregas, real.auditoria)
    assert dry.dry_run and dry.mensagens == 6
    again = prune(session_factory(db_engine), settings, now=lambda: NOW)  # nothing left to do
    assert (again.mensagens, again.entregas, again.auditoria) == (0, 0, 0)


def test_older_than_overrides_the_configured_age(db_engine: Engine) -> None:
    seeded = seed(db_engine)
    prune(session_factory(db_engine), RetencaoSettings(corpo_dias=365), corpo_dias=5, now=lambda: NOW)
    assert bodies(db_engine)[seeded.mensagens["recent"]][0] == b""  # 10 days old, past 5


def test_cli_prune_reports_json_and_refuses_an_access_log_under_90_days(
        database_url: str, db_engine: Engine, tmp_path: Path, tiss_home: Path) -> None:
    seed(db_engine)
    config = tmp_path / "config.toml"
    config.write_text("[retencao]\ncorpo_dias = 30\nauditoria_dias = 95\nlote = 4\n", encoding="utf-8")
    dry = cli("prune", "--database", database_url, "--config", str(config), "--dry-run", home=tiss_home)
    assert dry.returncode == 0, dry.stderr
    assert "seriam esvaziado" in dry.stdout and "simulação" in dry.stdout
    done = cli("prune", "--database", database_url, "--config", str(config), "--json", home=tiss_home)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mensagens"] == 6 and report["auditoria"] == 2 and report["dry_run"] is False
    with db_engine.connect() as connection:
        quem = connection.scalar(select(Auditoria.quem).where(Auditoria.acao == "prune"))
    assert quem.startswith("cli:")
    config.write_text("[retencao]\nauditoria_dias = 30\n", encoding="utf-8")
    refused = cli("prune", "--database", database_url, "--config", str(config), home=tiss_home)
    assert refused.returncode == 2 and "90" in refused.stderr, refused.stderr
    bad = cli("prune", "--database", database_url, "--older-than", "0", home=tiss_home)
    assert bad.returncode == 2


def test_a_replay_after_prune_gets_a_clear_tiss_fault(database_url: str, db_engine: Engine,
                                                      tiss_home: Path) -> None:
    """A real gateway: the same transaction replays byte for byte; once its answer is pruned the
    replay gets SchemaInvalido (HTTP 500) naming the retention, and new messages still work."""
    with GatewayProcess(database_url, tiss_home) as gateway:
        lote = build_lote("consulta", 2, envelope=True, numero_lote="9001", sequencial="9001")
        first = _post(gateway, "tissLoteGuias", lote)
        assert first.status_code == 200, first.text
        protocolo = re.search(rb"<ans:numeroProtocolo>(\w+)<", first.content).group(1).decode()
        status = build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial="9002",
                               numero_protocolo=protocolo)
        asked = _post(gateway, "tissSolicitacaoStatusProtocolo", status)
        assert asked.status_code == 200, asked.text
        assert _post(gateway, "tissLoteGuias", lote).content == first.content  # replay before prune
        with db_engine.begin() as connection:
            connection.execute(update(Mensagem).values(criada_em=OLD))
        done = cli("prune", "--database", database_url, "--json", home=tiss_home)
        assert done.returncode == 0, done.stderr
        # Both answers and the status request go; the lote's request stays: its delivery (to an
        # operator not running here) is still pending.
        report = json.loads(done.stdout)
        assert (report["mensagens"], report["mantidas"]) == (3, 1), done.stdout
        for service, body in (("tissLoteGuias", lote), ("tissSolicitacaoStatusProtocolo", status)):
            replay = _post(gateway, service, body)
            assert replay.status_code == 500, replay.text
            assert b"SchemaInvalido" in replay.content, replay.text
            charset = replay.headers["Content-Type"].rpartition("charset=")[2]  # the request's encoding
            assert "retenção" in replay.content.decode(charset), replay.text
        fresh = build_lote("consulta", 1, envelope=True, numero_lote="9003", sequencial="9003")
        assert _post(gateway, "tissLoteGuias", fresh).status_code == 200
        # The status of the pruned lote is still answered from the rows that stayed.
        again = build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial="9004",
                              numero_protocolo=protocolo)
        answer = _post(gateway, "tissSolicitacaoStatusProtocolo", again)
        assert answer.status_code == 200 and protocolo.encode() in answer.content, answer.text


def _post(gateway: GatewayProcess, service: str, body: bytes) -> requests.Response:
    return requests.post(gateway.url(f"/tiss/v4_03_00/{service}"), data=body,
                         headers={"Content-Type": "text/xml; charset=ISO-8859-1"}, timeout=60)
