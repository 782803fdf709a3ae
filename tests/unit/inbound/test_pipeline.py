"""The inbound pipeline in-process (SQLite): checks -> store -> answer, the outcome each call came
to, and what a refusal stores. The same over HTTP and real processes: tests/process/test_soap_front.py.
"""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import delete, select

from gateway.inbound.pipeline import Pipeline
from gateway.message import hashing
from gateway.message.lote import LoteLido, read_lote
from gateway.message.reader import read
from gateway.message.responses import guia_da_recusa
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS
from gateway.observability.metrics import OUTCOME_KEY
from gateway.server import build_config, load_adapters, prepare
from gateway.soap.app import TissWsgi
from gateway.storage import db
from gateway.storage.models import Critica, Lote, Mensagem, PrestadorCodigo, Transacao
from tests import wsgi_call
from tests.factory import Party, build_lote, build_request, envelope

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


# --- the operator's rules at acceptance ------------------------------------------------------------

IPASGO, UNIMED = "424188", "331872"
UNIMED_CNPJ = "33187200000154"  # simulator/profiles/unimed.toml, in the demo configuration


def edited(data: bytes, change) -> bytes:
    """A SOAP request of the bare ``data`` after ``change(root)``, hash stamped again."""
    tree = etree.ElementTree(etree.fromstring(data))
    change(tree.getroot())
    return envelope(hashing.rewrite(tree, tree.getroot()))


def sem_matricula(*posicoes: int):
    def change(root: etree._Element) -> None:
        guias = root.findall("ans:loteGuias/ans:guiasTISS/*", NS)
        for posicao in posicoes:
            guias[posicao].find("ans:dadosContratadoExecutante/ans:codigonaOperadora", NS).text = " "
    return change


def honorarios(numero: str, n: int, *posicoes: int) -> tuple[bytes, LoteLido]:
    data = build_lote("honorarios", n, numero_lote=numero, sequencial=numero,
                      party=Party(registro_ans=IPASGO))
    return edited(data, sem_matricula(*posicoes)), read_lote(etree.fromstring(data))


def test_ipasgo_takes_a_lote_without_the_guide_it_refuses(gateway):
    """Partial sending: the guide without the receiver's matrícula is refused alone (1311); the
    lote gets its protocol for the others, and keeps every guide with what became of it."""
    app, pipeline = gateway
    data, lido = honorarios("31", 3, 2)
    answer = post(app, "tissLoteGuias", data)
    assert answer.outcome == ("accepted", None, "4.03.00")
    detalhe = ".//ans:protocoloRecebimento/ans:detalheProtocolo/"
    aceitas, recusada = lido.guias[:2], lido.guias[2]
    listadas = answer.root.findall(detalhe + "ans:dadosGuiasProtocolo/*/ans:numeroGuiaPrestador", NS)
    assert [g.text for g in listadas] == [g.numero_guia_prestador for g in aceitas]
    total = Decimal(answer.text(detalhe + "ans:valorTotalProtocolo"))
    assert total == sum(g.valor_informado for g in aceitas)
    glosado = Decimal(answer.text(detalhe + "ans:glosaProtocolo/ans:vlGlosaProtocolo"))
    assert glosado == recusada.valor_informado
    (motivo,) = answer.root.findall(detalhe + "ans:glosaProtocolo/ans:motivosGlosa/ans:motivoGlosa", NS)
    assert motivo.findtext("ans:codigoGlosa", namespaces=NS) == "1311"
    descricao = motivo.findtext("ans:descricaoGlosa", namespaces=NS)
    assert guia_da_recusa(descricao) == recusada.numero_guia_prestador and "matrícula" in descricao
    with pipeline.sessions() as session:
        lote = session.scalars(select(Lote).where(Lote.numero_lote == "31")).one()
        assert (lote.quantidade_guias, lote.valor_informado) == (3, lido.valor_informado)  # as sent
        situacoes = {g.numero_guia_prestador: g.situacao for g in lote.guias}
        assert situacoes == {**{g.numero_guia_prestador: "aceita" for g in aceitas},
                             recusada.numero_guia_prestador: "recusada"}
        (critica,) = session.scalars(select(Critica).where(Critica.lote_id == lote.id)).all()
        guia = next(g for g in lote.guias if g.situacao == "recusada")
        assert (critica.codigo, critica.guia_id, critica.mensagem_id) == ("1311", guia.id, lote.mensagem_id)
        assert "dadosContratadoExecutante/codigonaOperadora" in critica.localizacao


def test_ipasgo_refuses_a_lote_none_of_whose_guides_is_left(gateway):
    app, pipeline = gateway
    data, _lido = honorarios("32", 2, 0, 1)
    answer = post(app, "tissLoteGuias", data)
    assert answer.outcome == ("refused", "1311", "4.03.00")
    assert answer.text(".//ans:mensagemErro/ans:codigoGlosa") == "1311"
    with pipeline.sessions() as session:
        assert session.scalars(select(Lote).where(Lote.numero_lote == "32")).first() is None
        assert session.scalars(select(Critica.codigo).where(Critica.lote_id.is_(None),
                                                            Critica.codigo == "1311")).all() == ["1311"] * 2


def executante(kind: str, valor: str):
    def change(root: etree._Element) -> None:
        for contratado in root.iterfind(".//ans:dadosExecutante/ans:contratadoExecutante", NS):
            contratado[0].tag, contratado[0].text = f"{{{ANS_NS}}}{kind}", valor
    return change


@pytest.mark.parametrize(("kind", "valor"), [("cnpjContratado", UNIMED_CNPJ),
                                             ("codigoPrestadorNaOperadora", "00001")])
def test_unimed_as_its_own_executante_is_refused_with_the_demo_configuration(gateway, kind, valor):
    """The demo operators carry their CNPJ and own codes: Unimed's field-30 rule catches them."""
    app, _pipeline = gateway
    data = build_lote("sp-sadt", 2, numero_lote="33", sequencial="33", party=Party(registro_ans=UNIMED))
    answer = post(app, "tissLoteGuias", edited(data, executante(kind, valor)))
    assert answer.outcome == ("refused", "1311", "4.03.00")
    assert "campo 30" in answer.text(".//ans:mensagemErro/ans:descricaoGlosa")


def test_a_lote_from_a_provider_without_a_code_at_the_operator(gateway):
    """Not one of the operator's providers: PASA's 1206 "prestador não localizado na operadora",
    before any protocol; its other services are the operator's to judge."""
    app, pipeline = gateway
    with pipeline.sessions.begin() as session:
        session.execute(delete(PrestadorCodigo).where(PrestadorCodigo.registro_ans == PASA))
    answer = post(app, "tissLoteGuias", lote("41", "41"))
    assert answer.outcome == ("refused", "1206", "4.03.00")
    assert "Prestador não localizado na operadora" in answer.text(".//ans:mensagemErro/ans:descricaoGlosa")
    assert answer.root.find(".//ans:protocoloRecebimento", NS) is None
    recurso = post(app, "tissRecursoGlosa", build_request(
        "loteRecursoGlosaWS", sequencial="42", envelope=True, numero_lote="1", numero_protocolo="123"))
    assert recurso.outcome == ("accepted", None, "4.03.00")
    with pipeline.sessions() as session:
        assert session.scalars(select(Lote.id)).first() is None
        (critica,) = session.scalars(select(Critica).where(Critica.codigo == "1206")).all()
        assert critica.localizacao == "cabecalho/origem/identificacaoPrestador/CNPJ"


def test_an_origem_by_a_code_the_gateway_does_not_have_is_not_the_sender(gateway):
    """By code, the origem must be the authenticated provider's code there: that is
    authentication (RemetenteInvalido), before the operator's rules."""
    app, pipeline = gateway
    with pipeline.sessions.begin() as session:
        session.execute(delete(PrestadorCodigo).where(PrestadorCodigo.registro_ans == PASA))
    answer = post(app, "tissLoteGuias", lote("43", "43", party=Party(codigo_na_operadora="1004567")))
    assert answer.outcome == ("fault", "5005", "4.03.00")
    assert answer.text(".//ans:tissFault") == "RemetenteInvalido"
