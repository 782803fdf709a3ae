"""Storage layer: migrations, schema/model agreement, protocol numbering, database constraints."""

import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.message.responses import ValorTotal
from gateway.storage import migrate, rows
from gateway.storage.db import database_url, make_engine, normalize_url, session_factory
from gateway.storage.kept_lists import KeptList, ListKey, keep
from gateway.storage.models import (
    Auditoria,
    Base,
    FalhaLogin,
    Guia,
    GuiasDaSituacao,
    Lote,
    Mensagem,
    Prestador,
    Protocolo,
    ProtocoloStatus,
    Transacao,
)
from gateway.storage.protocolos import new_protocolo, numero_for, set_status


def _prestador(session: Session, login: str = "clinica", documento: str = "11222333000181") -> Prestador:
    prestador = Prestador(documento=documento, tipo_documento="CNPJ", nome="Clínica", login=login)
    session.add(prestador)
    session.flush()
    return prestador


def _mensagem(session: Session, prestador: Prestador | None = None, **fields) -> Mensagem:
    corpo = fields.pop("corpo", b"<loteGuiasWS/>")
    mensagem = Mensagem(direcao="entrada", servico="tissLoteGuias", corpo=corpo, tamanho=len(corpo),
                        prestador_id=prestador.id if prestador else None, **fields)
    session.add(mensagem)
    session.flush()
    return mensagem


# --- migrations ---------------------------------------------------------------------------------

def test_upgrade_from_empty(empty_database_url: str) -> None:
    assert not migrate.is_current(empty_database_url)
    migrate.upgrade(empty_database_url)
    assert migrate.is_current(empty_database_url)
    migrate.upgrade(empty_database_url)  # idempotent
    engine = make_engine(empty_database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) | {"alembic_version"} == tables


def test_concurrent_upgrades_take_turns(empty_database_url: str) -> None:
    """Several processes (gunicorn workers) migrating the same empty database at once."""
    code = "import sys; from gateway.storage import migrate; migrate.upgrade(sys.argv[1])"
    processes = [subprocess.Popen([sys.executable, "-c", code, empty_database_url], stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
    failures = [p.stderr.read() for p in processes if p.wait(timeout=120) != 0]
    assert failures == []
    assert migrate.is_current(empty_database_url)


def test_models_match_migrated_schema(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        opts = {"compare_type": True, "compare_server_default": True}
        context = MigrationContext.configure(connection, opts=opts)
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back(empty_database_url: str) -> None:
    from alembic import command

    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            config = migrate.alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    migrate.upgrade(empty_database_url)
    assert migrate.is_current(empty_database_url)


def test_migrations_ship_with_the_package() -> None:
    assert (migrate.MIGRATIONS / "env.py").is_file()
    assert (migrate.MIGRATIONS / "script.py.mako").is_file()
    assert migrate.head() == "0009"


def test_0005_clears_the_per_account_locks(empty_database_url: str) -> None:
    """Locks on the account (anyone could set them) do not outlive the move to per-address ones."""
    from alembic import command

    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            config = migrate.alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            connection.execute(text(
                "INSERT INTO prestador (documento, tipo_documento, nome, login, ativo, falhas_login, "
                "bloqueado_ate, criado_em) VALUES ('11222333000181', 'CNPJ', 'P', 'p', true, 3, "
                "'2099-01-01 00:00:00', '2026-01-01 00:00:00')"))
        migrate.upgrade(empty_database_url)
        with engine.connect() as connection:
            row = connection.execute(text("SELECT falhas_login, bloqueado_ate FROM prestador")).one()
    finally:
        engine.dispose()
    assert tuple(row) == (0, None)


# --- engine -------------------------------------------------------------------------------------

def test_sqlite_connection_settings(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


def test_url_mapping(tmp_path, monkeypatch) -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    monkeypatch.setenv("TISS_GATEWAY_HOME", str(tmp_path / "home"))
    assert database_url() == f"sqlite:///{tmp_path / 'home' / 'gateway.sqlite'}"
    assert (tmp_path / "home").is_dir()
    assert database_url(override="sqlite:///x.db") == "sqlite:///x.db"


def test_foreign_keys_enforced(db_session: Session) -> None:
    db_session.add(Lote(prestador_id=999, registro_ans="329665", numero_lote="1", tipo_guia="SP-SADT",
                        quantidade_guias=1))
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_timestamps_are_aware_utc(db_session: Session) -> None:
    prestador = _prestador(db_session)
    local = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-3)))
    prestador.bloqueado_ate = local
    db_session.commit()
    db_session.expire_all()
    loaded = db_session.get(Prestador, prestador.id)
    assert loaded.bloqueado_ate == local
    assert loaded.bloqueado_ate.tzinfo is not None and loaded.bloqueado_ate.utcoffset() == timedelta(0)
    assert loaded.criado_em.tzinfo is not None


def test_message_body_kept_byte_for_byte(db_session: Session) -> None:
    corpo = '<?xml version="1.0" encoding="ISO-8859-1"?><a>ção</a>\r\n\x00'.encode("latin-1")
    mensagem = _mensagem(db_session, corpo=corpo)
    db_session.commit()
    db_session.expire_all()
    assert db_session.get(Mensagem, mensagem.id).corpo == corpo


def test_lote_guias_and_decimal_values(db_session: Session) -> None:
    prestador = _prestador(db_session)
    lote = Lote(prestador_id=prestador.id, registro_ans="329665", numero_lote="123", tipo_guia="SP-SADT",
                quantidade_guias=2, valor_informado=Decimal("1234.56"))
    lote.guias = [Guia(numero_guia_prestador="1", tipo="SP-SADT", valor_informado=Decimal("1000.00")),
                  Guia(numero_guia_prestador="2", tipo="SP-SADT", valor_informado=Decimal("234.56"))]
    db_session.add(lote)
    db_session.commit()
    db_session.expire_all()
    loaded = db_session.get(Lote, lote.id)
    assert loaded.valor_informado == Decimal("1234.56")
    assert sum(g.valor_informado for g in loaded.guias) == loaded.valor_informado


# --- uniqueness ---------------------------------------------------------------------------------

def test_transacao_unique_per_prestador_tipo_sequencial(db_session: Session) -> None:
    prestador = _prestador(db_session)
    outro = _prestador(db_session, "outro", "52998224725")
    first = _mensagem(db_session, prestador)
    db_session.add(Transacao(prestador_id=prestador.id, tipo_transacao="ENVIO_LOTE_GUIAS",
                             sequencial_transacao="42", hash="a" * 32, requisicao_id=first.id))
    db_session.commit()
    # Same sequencial, other type or other provider: fine.
    db_session.add(Transacao(prestador_id=prestador.id, tipo_transacao="SOLICITA_STATUS_PROTOCOLO",
                             sequencial_transacao="42", requisicao_id=first.id))
    db_session.add(Transacao(prestador_id=outro.id, tipo_transacao="ENVIO_LOTE_GUIAS",
                             sequencial_transacao="42", requisicao_id=first.id))
    db_session.commit()
    second = _mensagem(db_session, prestador)
    db_session.commit()
    db_session.add(Transacao(prestador_id=prestador.id, tipo_transacao="ENVIO_LOTE_GUIAS",
                             sequencial_transacao="42", hash="b" * 32, requisicao_id=second.id))
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()
    assert len(db_session.scalars(select(Transacao)).all()) == 3


def test_lote_number_unique_while_in_force(db_session: Session) -> None:
    """One lote in force per (provider, operator, number); a lote refused in full (numero_vigente
    cleared) leaves the number to its corrected resend."""
    prestador = _prestador(db_session)
    for registro in ("329665", "331988"):
        db_session.add(Lote(prestador_id=prestador.id, registro_ans=registro, numero_lote="7",
                            numero_vigente="7", tipo_guia="consulta", quantidade_guias=1))
    db_session.commit()
    db_session.add(Lote(prestador_id=prestador.id, registro_ans="329665", numero_lote="7",
                        numero_vigente="7", tipo_guia="consulta", quantidade_guias=1))
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()
    recusado = db_session.scalars(select(Lote).where(Lote.registro_ans == "329665")).one()
    recusado.numero_vigente = None
    db_session.commit()
    db_session.add(Lote(prestador_id=prestador.id, registro_ans="329665", numero_lote="7",
                        numero_vigente="7", reenvio_de_id=recusado.id, tipo_guia="consulta",
                        quantidade_guias=1))
    db_session.commit()
    assert len(db_session.scalars(select(Lote).where(Lote.numero_lote == "7")).all()) == 3


# --- protocols ----------------------------------------------------------------------------------

def test_protocol_numbers(db_session: Session) -> None:
    prestador = _prestador(db_session)
    numeros = []
    for _ in range(3):
        protocolo = new_protocolo(db_session, tipo="lote", prestador_id=prestador.id, registro_ans="329665")
        numeros.append(protocolo.numero)
    db_session.commit()
    assert all(len(n) == 12 and n.isdigit() for n in numeros)
    assert numeros == sorted(numeros) and len(set(numeros)) == 3
    assert numeros[0] == numero_for(int(numeros[0]))

    # Delete the newest: its number is not handed out again.
    newest = db_session.scalars(select(Protocolo).where(Protocolo.numero == numeros[-1])).one()
    db_session.delete(newest)
    db_session.commit()
    again = new_protocolo(db_session, tipo="anexo", prestador_id=prestador.id, registro_ans="329665")
    db_session.commit()
    assert again.numero > numeros[-1]

    # A rolled-back allocation was never seen by anyone: the next one still comes after every
    # committed number (PostgreSQL skips the lost value, SQLite may hand it out again).
    new_protocolo(db_session, tipo="lote", prestador_id=prestador.id, registro_ans="329665")
    db_session.rollback()
    after = new_protocolo(db_session, tipo="lote", prestador_id=prestador.id, registro_ans="329665").numero
    db_session.commit()
    assert after > again.numero


def test_protocol_status_history(db_session: Session) -> None:
    prestador = _prestador(db_session)
    created = datetime(2026, 1, 5, 12, tzinfo=UTC)
    protocolo = new_protocolo(db_session, tipo="lote", prestador_id=prestador.id, registro_ans="331988",
                              now=created)
    assert protocolo.status == 1
    set_status(db_session, protocolo, 2, "pasa", now=created + timedelta(hours=1))
    set_status(db_session, protocolo, 6, "pasa", now=created + timedelta(days=10))
    db_session.commit()
    db_session.expire_all()
    loaded = db_session.scalars(select(Protocolo).where(
        Protocolo.prestador_id == prestador.id, Protocolo.numero == protocolo.numero)).one()
    assert loaded.status == 6
    assert loaded.atualizado_em == created + timedelta(days=10)
    assert [(h.status, h.origem) for h in loaded.historico] == [(1, "gateway"), (2, "pasa"), (6, "pasa")]
    with pytest.raises(ValueError, match="dm_statusProtocolo"):
        set_status(db_session, loaded, 11, "x")
    with pytest.raises(ValueError, match="tipo de protocolo"):
        new_protocolo(db_session, tipo="guia", prestador_id=prestador.id, registro_ans="331988")


def test_protocol_numbers_concurrent(db_engine: Engine) -> None:
    factory = session_factory(db_engine)
    with factory() as session:
        prestador_id = _prestador(session).id
        session.commit()
    threads_n, per_thread = 4, 50
    results: list[list[str]] = [[] for _ in range(threads_n)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def worker(index: int) -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                with factory() as session:
                    numero = new_protocolo(session, tipo="lote", prestador_id=prestador_id,
                                           registro_ans="424188").numero
                    session.commit()
                results[index].append(numero)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    everything = [n for numbers in results for n in numbers]
    assert len(everything) == threads_n * per_thread
    assert len(set(everything)) == threads_n * per_thread
    assert all(len(n) == 12 for n in everything)
    for numbers in results:  # each writer sees its numbers increase
        assert numbers == sorted(numbers)
    with factory() as session:
        rows = session.execute(select(Protocolo.id, Protocolo.numero)).all()
        history = session.scalars(select(ProtocoloStatus)).all()
    assert sorted(everything) == sorted(n for _, n in rows)
    assert all(numero == numero_for(id_) for id_, numero in rows)
    assert len(history) == threads_n * per_thread


def test_falha_login_one_row_per_scope_address_and_login(db_session: Session) -> None:
    now = datetime(2026, 2, 2, tzinfo=UTC)
    for escopo, login in (("prestador", "clinica"), ("prestador", ""), ("console", "clinica")):
        db_session.add(FalhaLogin(escopo=escopo, login=login, endereco="203.0.113.9", falhas=1, desde=now))
    db_session.commit()
    db_session.add(FalhaLogin(escopo="prestador", login="clinica", endereco="203.0.113.9", falhas=2,
                              desde=now))
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()
    db_session.add(FalhaLogin(escopo="outro", login="x", endereco="203.0.113.9", falhas=1, desde=now))
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()
    assert db_session.scalars(select(FalhaLogin.desde)).all() == [now] * 3


def test_auditoria_rows(db_session: Session) -> None:
    db_session.add(Auditoria(quem="anonimo", acao="login_recusado", endereco="2001:db8::1"))
    db_session.commit()
    assert db_session.execute(text("SELECT count(*) FROM auditoria")).scalar() == 1


def test_a_guide_list_is_kept_once_per_protocol_state_and_version(db_session: Session) -> None:
    prestador = _prestador(db_session)
    protocolo = new_protocolo(db_session, tipo="lote", prestador_id=prestador.id, registro_ans="331988")
    assert protocolo.versao == 0
    key = ListKey(protocolo.id, 0, "4.03.00")
    first = keep(db_session, KeptList(key, "<ans:guias/>", "1", ValorTotal(Decimal("1.00"), Decimal(0),
                                                                         Decimal("1.00"))))
    other = KeptList(key, "<ans:outra/>", "2", ValorTotal.recebido(Decimal("2.00")))
    assert keep(db_session, other) == first  # the one stored: what answers reference
    db_session.commit()
    db_session.add(GuiasDaSituacao(protocolo_id=protocolo.id, versao=0, padrao="4.03.00", lista="", folhas="",
                                   valor_processado=0, valor_glosa=0, valor_liberado=0))
    with pytest.raises(IntegrityError):
        db_session.flush()
    db_session.rollback()
    assert keep(db_session, replace(other, key=ListKey(protocolo.id, 1, "4.03.00"))).id != first.id


def test_protocol_state_version_bumps_are_never_lost(db_engine: Engine) -> None:
    """rows.bump_versao from many transactions at once (writers of different parts of a lote)."""
    sessions = session_factory(db_engine)
    with sessions.begin() as session:
        protocolo_id = new_protocolo(session, tipo="lote", prestador_id=_prestador(session).id,
                                     registro_ans="331988").id

    def bump() -> None:
        for _ in range(10):
            with sessions.begin() as session:
                rows.bump_versao(session, protocolo_id)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    with sessions() as session:
        assert session.get_one(Protocolo, protocolo_id).versao == 40
