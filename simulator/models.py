"""The simulated operators' own tables (SQLAlchemy 2), apart from the gateway's storage.

A sandbox: :func:`create_schema` runs ``create_all`` at start, there are no migrations. Every table
is prefixed ``sim_`` and carries the operator's ``registro_ans``, so that the five operators (and,
if someone points the simulator at it, the gateway's own database) share one database without
meeting. Moments are simulated time (``SimClock``), stored in UTC and read back UTC-aware.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from gateway.storage.models import NAMING_CONVENTION, BigId, UtcDateTime

# The machinery types are the gateway's own (UTC on every backend, 64-bit keys, constraint names).
Money = Numeric(14, 2)


class SimBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_schema(engine: Engine) -> None:
    """Create the simulator's tables if missing (idempotent)."""
    SimBase.metadata.create_all(engine)


# --------------------------------------------------------------------------- messages


class SimMensagem(SimBase):
    """Every message in and out of a simulated operator, bytes as received or sent (audit)."""

    __tablename__ = "sim_mensagem"
    __table_args__ = (Index(None, "registro_ans", "em"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))  # the simulated operator
    direcao: Mapped[str] = mapped_column(String(7))  # 'entrada' | 'saida'
    servico: Mapped[str | None] = mapped_column(String(60))
    versao: Mapped[str | None] = mapped_column(String(8))
    tipo_transacao: Mapped[str | None] = mapped_column(String(60))
    sequencial_transacao: Mapped[str | None] = mapped_column(String(20))
    hash: Mapped[str | None] = mapped_column(String(32))
    tamanho: Mapped[int] = mapped_column(Integer)
    corpo: Mapped[bytes] = mapped_column(LargeBinary)
    prestador: Mapped[str | None] = mapped_column(String(20))  # CNPJ/CPF of the sender, once known
    resultado: Mapped[str] = mapped_column(String(10))  # 'aceita' | 'recusada' | 'resposta' | 'erro'
    codigo_erro: Mapped[str | None] = mapped_column(String(40))  # Table 38 code or tissFault name
    endereco: Mapped[str | None] = mapped_column(String(45))
    resposta_de_id: Mapped[int | None] = mapped_column(ForeignKey("sim_mensagem.id"))
    em: Mapped[datetime] = mapped_column(UtcDateTime)  # simulated moment


class SimTransacao(SimBase):
    """Idempotent replays: one answer per (operator, provider, tipoTransacao, sequencialTransacao)."""

    __tablename__ = "sim_transacao"
    __table_args__ = (
        UniqueConstraint("registro_ans", "prestador", "tipo_transacao", "sequencial_transacao"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    prestador: Mapped[str] = mapped_column(String(20))
    tipo_transacao: Mapped[str] = mapped_column(String(60))
    sequencial_transacao: Mapped[str] = mapped_column(String(20))
    hash: Mapped[str] = mapped_column(String(32))  # lower case, as found in the request
    requisicao_id: Mapped[int] = mapped_column(ForeignKey("sim_mensagem.id"))
    resposta_id: Mapped[int | None] = mapped_column(ForeignKey("sim_mensagem.id"))

    resposta: Mapped[SimMensagem | None] = relationship(foreign_keys=[resposta_id])


class SimSequencia(SimBase):
    """Counters for the operator's own numbers (PEG / protocol, guide numbers, senhas)."""

    __tablename__ = "sim_sequencia"
    __table_args__ = (UniqueConstraint("registro_ans", "nome"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    nome: Mapped[str] = mapped_column(String(30))
    valor: Mapped[int] = mapped_column(BigInteger)  # the last number handed out


def proximo_numero(session: Session, registro_ans: str, nome: str, inicial: int) -> int:
    """The next number of the operator's sequence ``nome``; the first is ``inicial``.

    An UPDATE takes the row lock first (PostgreSQL) / runs inside BEGIN IMMEDIATE (SQLite), so
    two concurrent requests never get the same number. A concurrent first insert of the counter
    row fails on the unique key and the caller's transaction is retried.
    """
    row = session.execute(update(SimSequencia).where(
        SimSequencia.registro_ans == registro_ans, SimSequencia.nome == nome,
    ).values(valor=SimSequencia.valor + 1).returning(SimSequencia.valor)).scalar_one_or_none()
    if row is not None:
        return int(row)
    session.add(SimSequencia(registro_ans=registro_ans, nome=nome, valor=inicial))
    session.flush()
    return inicial


# --------------------------------------------------------------------------- contas (lotes de guias)


class SimLote(SimBase):
    """A lote de guias the operator accepted, with its protocol (PEG) number."""

    __tablename__ = "sim_lote"
    __table_args__ = (
        UniqueConstraint("registro_ans", "prestador", "numero_lote"),
        UniqueConstraint("registro_ans", "numero_protocolo"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    prestador: Mapped[str] = mapped_column(String(20))  # CNPJ/CPF of the provider
    numero_lote: Mapped[str] = mapped_column(String(12))
    numero_protocolo: Mapped[str] = mapped_column(String(12))  # the operator's (PEG, protocolo...)
    tipo_guia: Mapped[str] = mapped_column(String(20))  # gateway.message.lote.GUIDE_KINDS names
    versao: Mapped[str] = mapped_column(String(8))
    recebido_em: Mapped[datetime] = mapped_column(UtcDateTime)
    data_envio: Mapped[str] = mapped_column(String(10))  # local date (YYYY-MM-DD) of receipt
    valor_informado: Mapped[Decimal] = mapped_column(Money)
    valor_glosa: Mapped[Decimal] = mapped_column(Money)  # decided at receipt, shown once analysed
    cancelado_em: Mapped[datetime | None] = mapped_column(UtcDateTime)
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("sim_mensagem.id"))

    guias: Mapped[list[SimGuia]] = relationship(
        back_populates="lote", cascade="all, delete-orphan", order_by="SimGuia.id")
    criticas: Mapped[list[SimCritica]] = relationship(back_populates="lote", order_by="SimCritica.id")

    @property
    def valor_liberado(self) -> Decimal:
        return self.valor_informado - self.valor_glosa


class SimGuia(SimBase):
    """One accepted guide, with the glosa decided at receipt."""

    __tablename__ = "sim_guia"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lote_id: Mapped[int] = mapped_column(ForeignKey("sim_lote.id", ondelete="CASCADE"), index=True)
    numero_guia_prestador: Mapped[str] = mapped_column(String(20))
    numero_guia_operadora: Mapped[str] = mapped_column(String(20))  # the message's, or one assigned
    senha: Mapped[str | None] = mapped_column(String(20))
    numero_carteira: Mapped[str] = mapped_column(String(20))
    atendimento_rn: Mapped[bool] = mapped_column(Boolean, default=False)
    data_realizacao: Mapped[str | None] = mapped_column(String(10))  # YYYY-MM-DD, first item's
    valor_informado: Mapped[Decimal] = mapped_column(Money)
    valor_glosa: Mapped[Decimal] = mapped_column(Money)
    glosa: Mapped[str] = mapped_column(String(8))  # lifecycle.GLOSA_*: 'nenhuma' | 'parcial' | 'total'
    codigo_glosa: Mapped[str | None] = mapped_column(String(4))  # guide-level motive (total glosa)
    cancelada_em: Mapped[datetime | None] = mapped_column(UtcDateTime)

    lote: Mapped[SimLote] = relationship(back_populates="guias")
    itens: Mapped[list[SimItem]] = relationship(
        back_populates="guia", cascade="all, delete-orphan", order_by="SimItem.ordem")

    @property
    def valor_liberado(self) -> Decimal:
        return self.valor_informado - self.valor_glosa


class SimItem(SimBase):
    """A procedure or other expense of a guide, with its glosa."""

    __tablename__ = "sim_item"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    guia_id: Mapped[int] = mapped_column(ForeignKey("sim_guia.id", ondelete="CASCADE"), index=True)
    ordem: Mapped[int] = mapped_column(Integer)  # position in the guide, 1-based
    sequencial_item: Mapped[str | None] = mapped_column(String(4))  # as written (may repeat)
    data_realizacao: Mapped[str | None] = mapped_column(String(10))
    codigo_tabela: Mapped[str] = mapped_column(String(2))
    codigo_procedimento: Mapped[str] = mapped_column(String(10))
    descricao: Mapped[str | None] = mapped_column(String(150))
    quantidade: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    valor_informado: Mapped[Decimal] = mapped_column(Money)
    valor_glosa: Mapped[Decimal] = mapped_column(Money)
    codigo_glosa: Mapped[str | None] = mapped_column(String(4))
    dente: Mapped[str | None] = mapped_column(String(4))  # odonto: codDente
    regiao: Mapped[str | None] = mapped_column(String(4))  # odonto: codRegiao
    face: Mapped[str | None] = mapped_column(String(5))  # odonto

    guia: Mapped[SimGuia] = relationship(back_populates="itens")

    @property
    def valor_liberado(self) -> Decimal:
        return self.valor_informado - self.valor_glosa


class SimCritica(SimBase):
    """A crítica the operator raised on a lote sent to it ("Ver crítica" in the portals).

    ``lote_id`` is set when the lote was accepted anyway (a guide refused in a partial sending);
    a refused lote has none: its críticas hang on the request message.
    """

    __tablename__ = "sim_critica"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    prestador: Mapped[str] = mapped_column(String(20))
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("sim_mensagem.id"), index=True)
    lote_id: Mapped[int | None] = mapped_column(ForeignKey("sim_lote.id", ondelete="CASCADE"), index=True)
    numero_lote: Mapped[str] = mapped_column(String(12))
    numero_guia_prestador: Mapped[str | None] = mapped_column(String(20))
    codigo: Mapped[str] = mapped_column(String(4))
    mensagem: Mapped[str] = mapped_column(Text)
    rejeita_lote: Mapped[bool] = mapped_column(Boolean)
    em: Mapped[datetime] = mapped_column(UtcDateTime)

    lote: Mapped[SimLote | None] = relationship(back_populates="criticas")


# --------------------------------------------------------------------------- autorizações


class SimAutorizacao(SimBase):
    """A solicitação de procedimento and the operator's decision (dm_statusSolicitacao)."""

    __tablename__ = "sim_autorizacao"
    __table_args__ = (
        UniqueConstraint("registro_ans", "numero_guia_operadora"),
        Index(None, "registro_ans", "prestador", "numero_guia_prestador"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    prestador: Mapped[str] = mapped_column(String(20))
    tipo: Mapped[str] = mapped_column(String(20))  # request body kind, e.g. solicitacaoSP-SADT
    numero_guia_prestador: Mapped[str] = mapped_column(String(20))
    numero_guia_operadora: Mapped[str] = mapped_column(String(20))
    numero_carteira: Mapped[str] = mapped_column(String(20))
    senha: Mapped[str | None] = mapped_column(String(20))  # given once authorised
    status: Mapped[str] = mapped_column(String(1))  # at request time: 1 autorizado, 2 em análise, 3 negado
    status_final: Mapped[str] = mapped_column(String(1))  # what an 'em análise' becomes
    codigo_glosa: Mapped[str | None] = mapped_column(String(4))  # motive of a denial / of the analysis
    decidida_em: Mapped[datetime | None] = mapped_column(UtcDateTime)  # when status_final applies
    solicitada_em: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelada_em: Mapped[datetime | None] = mapped_column(UtcDateTime)
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("sim_mensagem.id"))  # the request, to echo it


# --------------------------------------------------------------------------- recebimentos


class SimRecurso(SimBase):
    """A recurso de glosa received, with its own protocol number."""

    __tablename__ = "sim_recurso"
    __table_args__ = (UniqueConstraint("registro_ans", "numero_protocolo"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    prestador: Mapped[str] = mapped_column(String(20))
    numero_protocolo: Mapped[str] = mapped_column(String(12))
    numero_protocolo_recursado: Mapped[str] = mapped_column(String(12))
    numero_lote: Mapped[str] = mapped_column(String(12))
    numero_guia_recurso: Mapped[str] = mapped_column(String(20))  # numeroGuiaRecGlosaPrestador
    valor_recursado: Mapped[Decimal] = mapped_column(Money)
    recebido_em: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelado_em: Mapped[datetime | None] = mapped_column(UtcDateTime)
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("sim_mensagem.id"))


class SimAnexo(SimBase):
    """A lote de anexos clínicos (OPME, quimioterapia, radioterapia, situação inicial)."""

    __tablename__ = "sim_anexo"
    __table_args__ = (UniqueConstraint("registro_ans", "numero_protocolo"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    prestador: Mapped[str] = mapped_column(String(20))
    numero_protocolo: Mapped[str] = mapped_column(String(12))
    numero_lote: Mapped[str] = mapped_column(String(12))
    quantidade: Mapped[int] = mapped_column(Integer)
    recebido_em: Mapped[datetime] = mapped_column(UtcDateTime)
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("sim_mensagem.id"))


class SimDocumento(SimBase):
    """A document (tissEnvioDocumentos) attached to a guide or lote."""

    __tablename__ = "sim_documento"
    __table_args__ = (UniqueConstraint("registro_ans", "numero_protocolo"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    prestador: Mapped[str] = mapped_column(String(20))
    numero_protocolo: Mapped[str] = mapped_column(String(12))
    numero_lote: Mapped[str | None] = mapped_column(String(12))
    numero_guia_prestador: Mapped[str | None] = mapped_column(String(20))
    numero_documento: Mapped[str | None] = mapped_column(String(30))
    tamanho: Mapped[int] = mapped_column(Integer)  # bytes of the decoded document
    recebido_em: Mapped[datetime] = mapped_column(UtcDateTime)
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("sim_mensagem.id"))


class SimComunicacao(SimBase):
    """A comunicação de internação (I) or alta (A) of a beneficiary."""

    __tablename__ = "sim_comunicacao"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    prestador: Mapped[str] = mapped_column(String(20))
    numero_carteira: Mapped[str | None] = mapped_column(String(20))
    tipo_evento: Mapped[str] = mapped_column(String(1))
    data_evento: Mapped[str | None] = mapped_column(String(10))
    recebido_em: Mapped[datetime] = mapped_column(UtcDateTime)
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("sim_mensagem.id"))


class SimCancelamento(SimBase):
    """One cancelled lote or guide asked for, and what the operator decided (dm_statusCancelamento)."""

    __tablename__ = "sim_cancelamento"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6))
    prestador: Mapped[str] = mapped_column(String(20))
    tipo: Mapped[str] = mapped_column(String(5))  # 'lote' | 'guia'
    numero_lote: Mapped[str | None] = mapped_column(String(12))
    numero_protocolo: Mapped[str | None] = mapped_column(String(12))
    numero_guia_prestador: Mapped[str | None] = mapped_column(String(20))
    aceito: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(1))  # dm_statusCancelamento: 1 cancelado, 2, 3, 5, 6
    recebido_em: Mapped[datetime] = mapped_column(UtcDateTime)
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("sim_mensagem.id"))
    detalhe: Mapped[str | None] = mapped_column(Text)  # e.g. the status that prevented it
