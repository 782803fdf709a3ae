"""The inbound pipeline in-process (SQLite): checks -> store -> answer, the outcome each call came
to, and what a refusal stores. The same over HTTP and real processes: tests/process/test_soap_front.py.
"""

from dataclasses import dataclass

import pytest
from lxml import etree
from sqlalchemy import select

from gateway.inbound.pipeline import Pipeline
from gateway.message.reader import read
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS
from gateway.observability.metrics import OUTCOME_KEY
from gateway.server import build_config, load_adapters, prepare
from gateway.soap.app import TissWsgi
from gateway.storage import db
from gateway.storage.models import Critica, Mensagem, Transacao
from tests import wsgi_call
from tests.factory import Party, build_lote, build_request

NS = {"ans": ANS_NS}
PASA = "331988"


@dataclass
class Answer:
    status: str
    root: etree._Element
    outcome: tuple[str, str | None, str | None] | None
    data: bytes

    def text(self, path: str) -> str | None:
        return self.root.findtext(path, namespaces=NS)


@pytest.fixture
def gateway(tmp_path, registry: SchemaRegistry):
    config = build_config(None, f"sqlite:///{tmp_path / 'gateway.sqlite'}", True, simulator=None)
    engine = db.make_engine(prepare(config))
    pipeline = Pipeline(config, registry, db.session_factory(engine), readers=db.reader_factory(engine),
                        adapters=load_adapters(config, registry))
    yield TissWsgi(pipeline, registry, max_bytes=config.gateway.max_message_bytes), pipeline
    engine.dispose()


def post(app: TissWsgi, service: str, data: bytes) -> Answer:
    posted = wsgi_call.post(app, f"/tiss/v4_03_00/{service}", data, remote_addr="10.0.0.7")
    return Answer(posted.status, read(posted.body, len(posted.body) + 1).root,
                  posted.environ.get(OUTCOME_KEY), posted.body)


def lote(sequencial: str = "1", numero_lote: str = "1", party: Party | None = None) -> bytes:
    return build_lote("sp-sadt", 2, numero_lote=numero_lote, sequencial=sequencial, party=party,
                      envelope=True)


def test_lote_accepted_then_replayed_with_the_same_bytes(gateway):
    app, pipeline = gateway
    first = post(app, "tissLoteGuias", lote())
    assert first.status.startswith("200")
    assert first.outcome == ("accepted", None, "4.03.00")
    numero = first.text(".//ans:protocoloRecebimento/ans:detalheProtocolo/ans:numeroProtocolo")
    assert numero
    again = post(app, "tissLoteGuias", lote())
    assert again.outcome == ("replayed", None, "4.03.00")
    assert again.data == first.data
    with pipeline.sessions() as session:
        assert session.scalar(select(Transacao.hash)) == session.scalar(
            select(Mensagem.hash).where(Mensagem.direcao == "entrada"))


def test_a_lote_number_used_before_is_refused_in_the_answer(gateway):
    app, _pipeline = gateway
    post(app, "tissLoteGuias", lote("1"))
    refused = post(app, "tissLoteGuias", lote("2"))
    assert refused.outcome == ("refused", "3268", "4.03.00")
    assert refused.text(".//ans:mensagemErro/ans:codigoGlosa") == "3268"


def test_the_status_of_a_protocol(gateway):
    app, _pipeline = gateway
    numero = post(app, "tissLoteGuias", lote()).text(".//ans:detalheProtocolo/ans:numeroProtocolo")
    status = post(app, "tissSolicitacaoStatusProtocolo", build_request(
        "solicitacaoStatusProtocoloWS", sequencial="2", numero_protocolo=numero, envelope=True))
    assert status.outcome == ("accepted", None, "4.03.00")
    assert status.text(".//ans:detalheLote/ans:statusProtocolo") == "1"
    assert len(status.root.findall(".//ans:detalheLote/ans:guiasTISS/ans:guiasMedicas", NS)) == 2
    assert status.text(".//ans:cabecalho/ans:identificacaoTransacao/ans:sequencialTransacao") != "0"
    unknown = post(app, "tissSolicitacaoStatusProtocolo", build_request(
        "solicitacaoStatusProtocoloWS", sequencial="3", numero_protocolo="999", envelope=True))
    assert unknown.outcome[0] == "refused" and unknown.outcome[1]


def test_refusals_are_stored_with_the_sender_once_it_is_known(gateway):
    app, pipeline = gateway
    wrong_password = post(app, "tissLoteGuias", lote(party=Party(senha="errada")))
    assert wrong_password.outcome == ("fault", "5005", "4.03.00")
    other_operator = post(app, "tissLoteGuias", lote("2", party=Party(registro_ans="999999")))
    assert other_operator.outcome == ("fault", "5027", "4.03.00")
    assert other_operator.text(".//ans:tissFault") == "DestinatarioInvalido"
    with pipeline.sessions() as session:
        rows = session.execute(select(Mensagem.codigo_erro, Mensagem.prestador_id, Mensagem.resultado,
                                      Mensagem.endereco).order_by(Mensagem.id)).all()
        assert [(r.codigo_erro, r.prestador_id is not None, r.resultado, r.endereco) for r in rows] == [
            ("5005", False, "recusada", "10.0.0.7"), ("5027", True, "recusada", "10.0.0.7")]
        assert session.scalars(select(Critica.codigo).order_by(Critica.id)).all() == ["5005", "5027"]
