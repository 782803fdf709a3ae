"""Lotes as the gateway stores them once the operator has answered, written straight to the
database (for the views' tests: the console and the ``protocolo``/``lote`` commands read them):
a lote the operator refused whole (RECUSADO_PELA_OPERADORA, its guides refused with the crítica,
as gateway.delivery.outcome writes it), a lote taken in part (guides refused by the gateway at
acceptance or by the operator), a resubmission, a message the gateway refused at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.console.desfecho import GATEWAY, OPERADORA
from gateway.message import reader
from gateway.message.responses import GuiaRecebida, ValorTotal, envelope, reply_context, situacao_protocolo
from gateway.message.tables import GUIA_ACEITA, GUIA_RECUSADA, RECUSADO_PELA_OPERADORA
from gateway.storage.models import Critica, Entrega, Guia, Lote, Mensagem, Prestador
from gateway.storage.protocolos import new_protocolo, set_status
from tests.factory import Party, build_request

DEMO_CNPJ = "11222333000181"
PASA = "331988"
CARTEIRA = "12345678901"
NAO_CADASTRADO = ("1206", "Prestador não cadastrado na operadora")  # the operator's refusal
PROFISSIONAL = ("1311", "Profissional executante inválido")  # a guide refused at acceptance


@dataclass(frozen=True)
class GuiaSemente:
    numero: str
    valor: Decimal
    situacao: str = GUIA_ACEITA
    critica: tuple[str, str] | None = None  # (Table 38 code, text) of a refused guide
    por: str = OPERADORA  # who refused it: OPERADORA (in its answer) or GATEWAY (at acceptance)


@dataclass
class Semeado:
    lote_id: int
    protocolo: str
    mensagem_id: int  # the provider's lote message
    resposta_id: int | None = None  # the operator's answer to the delivery
    guia_ids: dict[str, int] = field(default_factory=dict)


def prestador_id(session: Session, documento: str = DEMO_CNPJ) -> int:
    """The provider with this CNPJ (made when missing: the unit tests' empty database)."""
    found = session.scalar(select(Prestador.id).where(Prestador.documento == documento))
    if found is not None:
        return found
    row = Prestador(documento=documento, tipo_documento="CNPJ", nome="Clínica Demo",
                    login=f"p{documento[-6:]}")
    session.add(row)
    session.flush()
    return row.id


def _mensagem(session: Session, prestador: int, **values) -> int:
    row = Mensagem(prestador_id=prestador, tamanho=len(values.get("corpo", b"")), **values)
    session.add(row)
    session.flush()
    return row.id


def lote(session: Session, *, numero_lote: str, guias: Sequence[GuiaSemente], registro: str = PASA,
         prestador: int | None = None, status: Sequence[int] = (), entrega: str | None = None,
         critica_do_lote: tuple[str, str] | None = None, reenvio_de_id: int | None = None,
         situacao_corpo: bytes | None = None, now: datetime | None = None) -> Semeado:
    """A lote with its protocol (history: 1 Recebido, then each of ``status`` from the operator),
    guides and críticas; ``entrega``: its delivery's final state (entregue / recusada) with the
    operator's answer (and ``situacao_corpo``, its last situação answer)."""
    now = now or datetime.now(UTC)
    prestador = prestador if prestador is not None else prestador_id(session)
    pedido = _mensagem(session, prestador, direcao="entrada", servico="tissLoteGuias",
                       corpo=b"<lote/>", destinatario=registro, resultado="aceita", criada_em=now)
    protocolo = new_protocolo(session, tipo="lote", prestador_id=prestador, registro_ans=registro, now=now)
    for s in status:
        set_status(session, protocolo, s, f"operadora:{registro}", now=now)
    refused = RECUSADO_PELA_OPERADORA in status
    row = Lote(prestador_id=prestador, registro_ans=registro, numero_lote=numero_lote,
               numero_vigente=None if refused else numero_lote, reenvio_de_id=reenvio_de_id,
               tipo_guia="consulta", quantidade_guias=len(guias), valor_informado=sum(g.valor for g in guias),
               mensagem_id=pedido, protocolo_id=protocolo.id, criado_em=now)
    session.add(row)
    session.flush()
    found = Semeado(row.id, protocolo.numero, pedido)
    for g in guias:
        guia = Guia(lote_id=row.id, numero_guia_prestador=g.numero, tipo="consulta", numero_carteira=CARTEIRA,
                    valor_informado=g.valor, situacao=g.situacao)
        session.add(guia)
        session.flush()
        found.guia_ids[g.numero] = guia.id
    if entrega is not None:
        found.resposta_id = _entrega(session, row, protocolo.id, entrega, now, situacao_corpo,
                                     status[-1] if status else None)
    for g in guias:
        if g.critica is not None:
            em = pedido if g.por == GATEWAY else found.resposta_id
            _critica(session, em, row.id, found.guia_ids[g.numero], g.critica)
    if critica_do_lote is not None:
        _critica(session, found.resposta_id, row.id, None, critica_do_lote)
    return found


def _entrega(session: Session, lote_: Lote, protocolo_id: int, estado: str, now: datetime,
             situacao_corpo: bytes | None, status: int | None) -> int:
    """A delivery in its final state, with the bytes sent and the operator's answer; returns the
    answer's id. Nothing is left for a worker to do (no poll scheduled)."""
    prestador, registro = lote_.prestador_id, lote_.registro_ans
    envio = _mensagem(session, prestador, direcao="saida", servico="tissLoteGuias", corpo=b"<envio/>",
                      destinatario=registro, resultado="aceita", criada_em=now)
    resposta = _mensagem(session, prestador, direcao="entrada", servico="tissLoteGuias",
                         corpo=b"<resposta/>", remetente=registro, resposta_de_id=envio, criada_em=now,
                         resultado="recusada" if estado == "recusada" else "aceita")
    situacao_id = None
    if situacao_corpo is not None:
        situacao_id = _mensagem(session, prestador, direcao="entrada",
                                servico="tissSolicitacaoStatusProtocolo", corpo=situacao_corpo,
                                remetente=registro, resultado="resposta", criada_em=now)
    session.add(Entrega(registro_ans=registro, servico="tissLoteGuias", prestador_id=prestador,
                        mensagem_id=lote_.mensagem_id, protocolo_id=protocolo_id, lote_id=lote_.id, parte=1,
                        partes=1, numero_lote=lote_.numero_lote, estado=estado, tentativas=1, proxima_em=now,
                        envio_id=envio, resposta_id=resposta, situacao_id=situacao_id,
                        numero_protocolo=f"OP{lote_.id}" if estado == "entregue" else None,
                        status=status if estado == "entregue" else None, status_em=now,
                        ultimo_erro="1206 prestador não cadastrado" if estado == "recusada" else None,
                        entregue_em=now if estado == "entregue" else None))
    session.flush()
    return resposta


def _critica(session: Session, mensagem_id: int | None, lote_id: int, guia_id: int | None,
             critica: tuple[str, str]) -> None:
    session.add(Critica(mensagem_id=mensagem_id, lote_id=lote_id, guia_id=guia_id, codigo=critica[0],
                        mensagem=critica[1]))
    session.flush()


def recusada_pelo_gateway(session: Session, registro: str = PASA, prestador: int | None = None) -> int:
    """A provider message refused at once (no protocol), with its crítica; returns its id."""
    prestador = prestador if prestador is not None else prestador_id(session)
    found = _mensagem(session, prestador, direcao="entrada", servico="tissLoteGuias",
                      corpo=b"<lote/>", destinatario=registro, resultado="recusada", codigo_erro="1301")
    session.add(Critica(mensagem_id=found, codigo="1301", mensagem="Tipo de guia não aceito pela operadora"))
    session.flush()
    return found


def situacao_analisada(registro: str, guias: Sequence[tuple[str, Decimal, Decimal]], glosa: Decimal) -> bytes:
    """The operator's situacaoProtocoloWS (schema-valid, hashed) of an analysed protocol (3 Liberado
    para pagamento): ``guias`` (numero, informado, glosa), ``glosa`` the protocol's total glosa."""
    request = reader.read(build_request("solicitacaoStatusProtocoloWS", party=Party(registro_ans=registro)))
    ctx = reply_context(request.root, registro_ans=registro, sequencial="77", now=datetime.now(UTC))
    recebidas = [GuiaRecebida(numero, None, CARTEIRA, informado,
                              valores=ValorTotal(informado, glosa_, informado - glosa_))
                 for numero, informado, glosa_ in guias]
    processado = sum((informado for _n, informado, _g in guias), Decimal("0.00"))
    return envelope(situacao_protocolo(ctx, numero_protocolo="OP1", numero_lote="1", status=3,
                                       data_envio_lote=date.today(), guias=recebidas,
                                       valor_total=ValorTotal(processado, glosa, processado - glosa)))


# --- the scenarios the views' tests share -----------------------------------------------------------

def recusado_pela_operadora(session: Session, numero_lote: str, n: int = 2, **kwargs) -> Semeado:
    """A lote the operator refused whole: RECUSADO_PELA_OPERADORA, every guide refused with the
    operator's crítica (and the lote's), its number free again. Guides R1..Rn, R$ 30,00 each."""
    return lote(session, numero_lote=numero_lote, status=[RECUSADO_PELA_OPERADORA], entrega="recusada",
                critica_do_lote=NAO_CADASTRADO,
                guias=[GuiaSemente(f"R{i}", Decimal("30.00"), GUIA_RECUSADA, NAO_CADASTRADO)
                       for i in range(1, n + 1)], **kwargs)


def aceito_em_parte(session: Session, numero_lote: str, **kwargs) -> Semeado:
    """A lote of 3 guides, 2 accepted (A1 R$ 60,00, A2 R$ 40,00) and A3 (R$ 500,00) refused by the
    gateway at acceptance with PROFISSIONAL (partial sending)."""
    return lote(session, numero_lote=numero_lote, guias=[
        GuiaSemente("A1", Decimal("60.00")), GuiaSemente("A2", Decimal("40.00")),
        GuiaSemente("A3", Decimal("500.00"), GUIA_RECUSADA, PROFISSIONAL, por=GATEWAY)], **kwargs)
