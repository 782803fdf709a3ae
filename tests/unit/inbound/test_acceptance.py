"""Lote acceptance's write transaction (issue 15), on SQLite and PostgreSQL: every row written once
(no read-back, no rewrite), the guides in one statement on PostgreSQL, and what is stored is what
the lote says. The database itself tells, through triggers installed by the test."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import exc, func, select, text

from gateway.inbound.pipeline import Pipeline
from gateway.message.lote import read_lote
from gateway.message.reader import read
from gateway.message.schema_registry import SchemaRegistry
from gateway.observability.metrics import OUTCOME_KEY
from gateway.server import build_config, load_adapters, prepare
from gateway.soap.app import TissWsgi
from gateway.storage import db, rows
from gateway.storage.models import Guia, Lote, Mensagem, Prestador, Transacao
from tests import wsgi_call
from tests.db_triggers import installed, no_update_of
from tests.factory import build_lote

LOTE = "/tiss/v4_03_00/tissLoteGuias"
NOW = datetime(2025, 12, 3, 14, 5, 9, tzinfo=UTC)


@pytest.fixture
def gateway(database_url: str, registry: SchemaRegistry):
    config = build_config(None, database_url, True, simulator=None)
    engine = db.make_engine(prepare(config))
    pipeline = Pipeline(config, registry, db.session_factory(engine), readers=db.reader_factory(engine),
                        adapters=load_adapters(config, registry))
    yield TissWsgi(pipeline, registry, max_bytes=config.gateway.max_message_bytes), engine
    engine.dispose()


def accept(app: TissWsgi, data: bytes) -> wsgi_call.Posted:
    posted = wsgi_call.post(app, LOTE, data, remote_addr="10.0.0.8")
    assert posted.status.startswith("200"), posted.body[:1000]
    return posted


def test_a_lote_is_stored_with_each_row_written_once(gateway):
    app, engine = gateway
    data = build_lote("sp-sadt", 100, envelope=True, numero_lote="77", sequencial="77")
    with no_update_of(engine, "transacao"):
        first = accept(app, data)
        assert first.environ[OUTCOME_KEY][0] == "accepted", first.body[:1000]
        again = accept(app, data)  # the replay reads what the transaction wrote
    assert again.environ[OUTCOME_KEY][0] == "replayed"
    assert again.body == first.body
    lido = read_lote(read(data, len(data) + 1).root)
    with engine.connect() as connection:
        requisicao, resposta = connection.execute(select(Transacao.requisicao_id,
                                                         Transacao.resposta_id)).one()
        assert connection.scalar(select(Mensagem.resposta_de_id).where(Mensagem.id == resposta)) == requisicao
        lote_id = connection.scalar(select(Lote.id).where(Lote.mensagem_id == requisicao))
        guias = connection.execute(select(Guia.numero_guia_prestador, Guia.numero_guia_operadora, Guia.tipo,
                                          Guia.numero_carteira, Guia.valor_informado, Guia.situacao)
                                   .where(Guia.lote_id == lote_id).order_by(Guia.id)).all()
    assert [tuple(g) for g in guias] == [
        (g.numero_guia_prestador, g.numero_guia_operadora, "sp-sadt", g.numero_carteira, g.valor_informado,
         "aceita") for g in lido.guias]
    assert sum((g[4] for g in guias), Decimal("0")) == lido.valor_informado


def test_postgresql_writes_a_lotes_guides_in_one_statement(gateway):
    """100 guides are one COPY, not 100 INSERTs: a statement-level trigger counts them."""
    app, engine = gateway
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs in process: an executemany costs no round trips")
    create = ["CREATE TABLE guia_statements (n integer)",
              "CREATE FUNCTION guia_statement() RETURNS trigger LANGUAGE plpgsql AS "
              "$$ BEGIN INSERT INTO guia_statements VALUES (1); RETURN NULL; END $$",
              "CREATE TRIGGER guia_statement AFTER INSERT ON guia "
              "FOR EACH STATEMENT EXECUTE FUNCTION guia_statement()"]
    drop = ["DROP TRIGGER guia_statement ON guia", "DROP FUNCTION guia_statement()",
            "DROP TABLE guia_statements"]
    with installed(engine, create, drop):
        accept(app, build_lote("sp-sadt", 100, envelope=True, numero_lote="78", sequencial="78"))
        with engine.connect() as connection:
            statements = connection.scalar(text("SELECT count(*) FROM guia_statements"))
            last = connection.scalar(select(Guia.id).order_by(Guia.id.desc()).limit(1))
    assert statements == 1
    assert last is not None


def test_a_guide_rows_driver_error_is_sqlalchemys_and_leaves_nothing(db_engine):
    """The guide rows (COPY on PostgreSQL, executemany elsewhere) fail as any request-path statement
    does: a SQLAlchemy IntegrityError, the lote's transaction rolled back whole."""
    guia = dict(numero_guia_prestador="G1", numero_guia_operadora=None, tipo="sp-sadt", numero_carteira="C1",
                valor_informado=Decimal("10.00"))
    with db_engine.begin() as connection:
        prestador_id = connection.execute(Prestador.__table__.insert().returning(Prestador.id), dict(
            documento="11222333000181", tipo_documento="CNPJ", nome="Clínica", login="demo", senha_hash="x",
            ativo=True, criado_em=NOW)).scalar_one()
    lote = dict(prestador_id=prestador_id, registro_ans="331988", numero_lote="7", tipo_guia="sp-sadt",
                quantidade_guias=2, valor_informado=Decimal("20.00"), criado_em=NOW)
    with pytest.raises(exc.IntegrityError), db_engine.begin() as connection:
        rows.add_lote(connection, lote, [guia, {**guia, "tipo": None}])  # guia.tipo is NOT NULL
    with db_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Lote)) == 0
        assert connection.scalar(select(func.count()).select_from(Guia)) == 0
    with db_engine.begin() as connection:  # the same connection pool goes on working
        lote_id = rows.add_lote(connection, lote, [guia, {**guia, "numero_guia_prestador": "G2"}])
    with db_engine.connect() as connection:
        guias = connection.execute(select(Guia.numero_guia_prestador, Guia.situacao)
                                   .where(Guia.lote_id == lote_id).order_by(Guia.id)).all()
    assert guias == [("G1", "aceita"), ("G2", "aceita")]
