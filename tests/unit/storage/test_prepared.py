"""Request-path statements on the driver's cursor (gateway.storage.prepared) store and read exactly
what Core does, also with several writers at once."""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, exc, select, text

from gateway.storage import db, rows
from gateway.storage.models import Guia, Lote, Mensagem, Prestador
from gateway.storage.prepared import Prepared

NOW = datetime(2025, 12, 3, 14, 5, 9, 123456, tzinfo=UTC)
INSERT_MENSAGEM = Mensagem.__table__.insert().returning(Mensagem.id)


def _prestador(connection) -> int:
    return connection.execute(Prestador.__table__.insert().returning(Prestador.id), dict(
        documento="11222333000181", tipo_documento="CNPJ", nome="Clínica", login="demo", senha_hash="x",
        ativo=True, criado_em=NOW)).scalar_one()


def _raw(connection, table: str, row_id: int) -> tuple:
    """The row as the database keeps it (no SQLAlchemy type processing), without its id."""
    row = connection.exec_driver_sql(f"SELECT * FROM {table} WHERE id = {int(row_id)}").one()
    return tuple(row)[1:]


def test_insert_and_select_store_and_read_what_core_does(db_engine: Engine) -> None:
    with db_engine.begin() as connection:
        prestador_id = _prestador(connection)
        values = dict(direcao="entrada", servico="tissLoteGuias", versao="4.03.00", tamanho=3,
                      corpo=b"\x00\xff<", prestador_id=prestador_id, resultado="aceita", hash="ABC",
                      criada_em=NOW)
        core = connection.execute(INSERT_MENSAGEM, values).scalar_one()
        fast = Prepared(INSERT_MENSAGEM, list(values)).scalar(connection, values)
        assert _raw(connection, "mensagem", core) == _raw(connection, "mensagem", fast)
        lote = dict(prestador_id=prestador_id, registro_ans="331988", numero_lote="7", tipo_guia="sp-sadt",
                    quantidade_guias=1, valor_informado=Decimal("1234.50"), mensagem_id=fast, criado_em=NOW)
        lote_core = connection.execute(Lote.__table__.insert().returning(Lote.id), lote).scalar_one()
        lote_fast = rows.add_lote(connection, {**lote, "numero_lote": "8"}, [dict(
            numero_guia_prestador="G1", numero_guia_operadora=None, tipo="sp-sadt", numero_carteira="C1",
            valor_informado=Decimal("1234.50"))])
        assert _raw(connection, "lote", lote_core)[3:] == _raw(connection, "lote", lote_fast)[3:]
        guia = select(Guia.valor_informado, Guia.numero_guia_operadora).where(Guia.lote_id == lote_fast)
        assert Prepared(guia).rows(connection, {}) == [tuple(r) for r in connection.execute(guia)]
        assert connection.execute(guia).one() == (Decimal("1234.50"), None)
        lido = select(Lote.criado_em, Lote.valor_informado).where(Lote.id == lote_fast)
        assert Prepared(lido).first(connection) == (NOW, Decimal("1234.50"))  # aware UTC, cents


def test_python_side_defaults_are_filled(db_engine: Engine) -> None:
    with db_engine.begin() as connection:
        values = dict(direcao="saida", tamanho=0, corpo=b"")
        row_id = Prepared(INSERT_MENSAGEM, list(values)).scalar(connection, values)
        criada = connection.execute(select(Mensagem.criada_em).where(Mensagem.id == row_id)).scalar_one()
        assert criada.tzinfo is not None and abs((datetime.now(UTC) - criada).total_seconds()) < 60


def test_driver_errors_are_sqlalchemy_errors(db_engine: Engine) -> None:
    with db_engine.begin() as connection:
        prestador_id = _prestador(connection)
        mensagem_id = rows.add_mensagem(connection, dict(direcao="entrada", tamanho=0, corpo=b""))
        row = dict(prestador_id=prestador_id, tipo="ENVIO_LOTE_GUIAS", sequencial="1", hash_="h",
                   requisicao_id=mensagem_id, resposta_id=mensagem_id)
        rows.add_transacao(connection, **row)
        with pytest.raises(exc.IntegrityError):
            rows.add_transacao(connection, **row)


def test_sqlite_writers_at_once_all_commit(tmp_path) -> None:
    """Threads (each its own connection, as worker processes are) writing through the prepared
    statements at once: every transaction commits."""
    url = f"sqlite:///{tmp_path / 'gateway.sqlite'}"
    from gateway.storage.migrate import upgrade

    upgrade(url)
    engine = db.make_engine(url)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(40):
                with db.session_factory(engine).begin() as session:
                    rows.add_mensagem(session, dict(direcao="entrada", tamanho=i, corpo=b"x" * 2000,
                                                       servico=f"t{n}"))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert not errors, errors
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM mensagem")).scalar_one() == 160
    finally:
        engine.dispose()


def test_postgresql_compresses_message_bodies_with_lz4(db_engine: Engine) -> None:
    """Large bodies are TOASTed: lz4 where the server has it (pglz cost ~10 ms per 470 KB lote)."""
    if db_engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with db_engine.begin() as connection:
        offered = connection.execute(text("SELECT enumvals FROM pg_settings "
                                          "WHERE name = 'default_toast_compression'")).scalar_one()
        if "lz4" not in offered:
            pytest.skip("this PostgreSQL was built without lz4")
        corpo = b"<ans:guia>" + b"<ans:valor>123.45</ans:valor>" * 20_000 + b"</ans:guia>"
        row_id = rows.add_mensagem(connection, dict(direcao="entrada", tamanho=len(corpo), corpo=corpo))
        method = connection.execute(text("SELECT pg_column_compression(corpo) FROM mensagem WHERE id = :id"),
                                    {"id": row_id}).scalar_one()
        assert method == "lz4"
        assert connection.execute(select(Mensagem.corpo).where(Mensagem.id == row_id)).scalar_one() == corpo
