"""The gateway's tables (SQLAlchemy 2 declarative). Domain names follow the TISS vocabulary.

Every timestamp is stored in UTC and read back as an aware ``datetime`` (SQLite keeps no zone, so
:class:`UtcDateTime` strips it on the way in and puts it back on the way out). Schema changes go
through Alembic (``gateway/storage/migrations``); the tests check that this module and the
migrations describe the same schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from gateway.message.tables import GUIA_ACEITA, RECEBIDO

# Constraint names are spelled out so that migrations (and SQLite batch mode) can address them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit keys on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the rowid alias that
# autoincrements, and SQLite integers are 64-bit anyway.
BigId = BigInteger().with_variant(Integer(), "sqlite")

DIRECOES = ("entrada", "saida")
RESULTADOS = ("aceita", "recusada", "resposta", "erro")
TIPOS_DOCUMENTO = ("CNPJ", "CPF")
TIPOS_PROTOCOLO = ("lote", "anexo", "recurso", "documento", "comunicacao", "cancelamento")



def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (naive input is taken to be UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Prestador(Base):
    """A provider (prestador de serviços de saúde) that talks to the gateway."""

    __tablename__ = "prestador"
    __table_args__ = (
        CheckConstraint("tipo_documento IN ('CNPJ', 'CPF')", name="tipo_documento"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    documento: Mapped[str] = mapped_column(String(14), unique=True)  # CNPJ (14) or CPF (11)
    tipo_documento: Mapped[str] = mapped_column(String(4))
    nome: Mapped[str] = mapped_column(String(150))
    login: Mapped[str] = mapped_column(String(20), unique=True)  # loginPrestador: st_texto20
    # scrypt$n$r$p$salt$hash over the MD5 hex the client sends; None: cannot log in.
    senha_hash: Mapped[str | None] = mapped_column(String(200))
    ativo: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    falhas_login: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    bloqueado_ate: Mapped[datetime | None] = mapped_column(UtcDateTime)
    criado_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    codigos: Mapped[list[PrestadorCodigo]] = relationship(
        back_populates="prestador", cascade="all, delete-orphan", order_by="PrestadorCodigo.registro_ans")

    def codigo_em(self, registro_ans: str) -> str | None:
        """The provider's código na operadora at ``registro_ans``, if any."""
        return next((c.codigo_na_operadora for c in self.codigos if c.registro_ans == registro_ans), None)

    def __repr__(self) -> str:
        return f"<Prestador {self.id} {self.login} {self.tipo_documento} {self.documento}>"


class PrestadorCodigo(Base):
    """codigoPrestadorNaOperadora: the provider's code at one operator (registro ANS)."""

    __tablename__ = "prestador_codigo"
    __table_args__ = (
        UniqueConstraint("registro_ans", "codigo_na_operadora"),
        UniqueConstraint("prestador_id", "registro_ans"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prestador_id: Mapped[int] = mapped_column(ForeignKey("prestador.id", ondelete="CASCADE"))
    registro_ans: Mapped[str] = mapped_column(String(6))
    codigo_na_operadora: Mapped[str] = mapped_column(String(14))  # st_texto14

    prestador: Mapped[Prestador] = relationship(back_populates="codigos")


class Mensagem(Base):
    """Every inbound and outbound message, with its bytes exactly as received or sent."""

    __tablename__ = "mensagem"
    __table_args__ = (
        CheckConstraint("direcao IN ('entrada', 'saida')", name="direcao"),
        Index(None, "prestador_id", "criada_em"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    direcao: Mapped[str] = mapped_column(String(7))  # 'entrada' | 'saida'
    servico: Mapped[str | None] = mapped_column(String(60))  # e.g. tissLoteGuias
    versao: Mapped[str | None] = mapped_column(String(8))  # Padrao, e.g. 4.03.00
    tipo_transacao: Mapped[str | None] = mapped_column(String(60))
    sequencial_transacao: Mapped[str | None] = mapped_column(String(20))  # st_texto12 in the XSD
    hash: Mapped[str | None] = mapped_column(String(32))
    tamanho: Mapped[int] = mapped_column(Integer)
    corpo: Mapped[bytes] = mapped_column(LargeBinary)
    remetente: Mapped[str | None] = mapped_column(String(20))
    destinatario: Mapped[str | None] = mapped_column(String(20))
    prestador_id: Mapped[int | None] = mapped_column(ForeignKey("prestador.id"))
    resultado: Mapped[str | None] = mapped_column(String(10))  # RESULTADOS
    codigo_erro: Mapped[str | None] = mapped_column(String(40))  # Table 38 code or tissFault name
    endereco: Mapped[str | None] = mapped_column(String(45))  # client IP (IPv6 fits)
    request_id: Mapped[str | None] = mapped_column(String(32))  # follows the message into the logs
    corpo_removido_em: Mapped[datetime | None] = mapped_column(UtcDateTime)  # `prune` emptied corpo
    # Set when senhaPrestador was masked in corpo (gateway.message.credencial): the message as
    # received or sent, for audits.
    sha256_original: Mapped[str | None] = mapped_column(String(64))
    tamanho_original: Mapped[int | None] = mapped_column(Integer)
    resposta_de_id: Mapped[int | None] = mapped_column(ForeignKey("mensagem.id"), index=True)
    criada_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)

    resposta_de: Mapped[Mensagem | None] = relationship(remote_side=[id])


class Transacao(Base):
    """Idempotency: one response per (prestador, tipoTransacao, sequencialTransacao)."""

    __tablename__ = "transacao"
    __table_args__ = (UniqueConstraint("prestador_id", "tipo_transacao", "sequencial_transacao"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prestador_id: Mapped[int] = mapped_column(ForeignKey("prestador.id"))
    tipo_transacao: Mapped[str] = mapped_column(String(60))
    sequencial_transacao: Mapped[str] = mapped_column(String(20))
    hash: Mapped[str | None] = mapped_column(String(32))
    requisicao_id: Mapped[int] = mapped_column(ForeignKey("mensagem.id"))
    resposta_id: Mapped[int | None] = mapped_column(ForeignKey("mensagem.id"))
    criada_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    requisicao: Mapped[Mensagem] = relationship(foreign_keys=[requisicao_id])
    resposta: Mapped[Mensagem | None] = relationship(foreign_keys=[resposta_id])


class Protocolo(Base):
    """A protocol the gateway hands out (protocolo de recebimento), with its dm_statusProtocolo.

    ``id`` is never reused (SQLite AUTOINCREMENT, a PostgreSQL sequence); ``numero`` is the id
    zero-padded to 12 characters, assigned by :func:`gateway.storage.protocolos.new_protocolo`.
    """

    __tablename__ = "protocolo"
    __table_args__ = (
        Index(None, "prestador_id", "numero"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    numero: Mapped[str] = mapped_column(String(12), unique=True)
    tipo: Mapped[str] = mapped_column(String(12))  # TIPOS_PROTOCOLO
    prestador_id: Mapped[int] = mapped_column(ForeignKey("prestador.id"))
    registro_ans: Mapped[str] = mapped_column(String(6))
    status: Mapped[int] = mapped_column(Integer, default=RECEBIDO, server_default=text("1"), index=True)
    numero_operadora: Mapped[str | None] = mapped_column(String(40), index=True)  # the operator's own
    criado_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    atualizado_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    # The state of what a lote's situação answer lists: bumped by every change to it (a guide's
    # situação, a part's situação answer; gateway.storage.rows.bump_versao). The status is not in
    # it: every answer reads the status with this (gateway.storage.kept_lists).
    versao: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    historico: Mapped[list[ProtocoloStatus]] = relationship(
        back_populates="protocolo", cascade="all, delete-orphan", order_by="ProtocoloStatus.id")


class ProtocoloStatus(Base):
    """History of a protocol's status: when it changed and who said so."""

    __tablename__ = "protocolo_status"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    protocolo_id: Mapped[int] = mapped_column(ForeignKey("protocolo.id", ondelete="CASCADE"), index=True)
    status: Mapped[int] = mapped_column(Integer)
    em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    origem: Mapped[str] = mapped_column(String(40))  # 'gateway', 'operadora', an adapter name...

    protocolo: Mapped[Protocolo] = relationship(back_populates="historico")


class Lote(Base):
    """A lot of guides (loteGuias) received from a provider for one operator.

    A provider's lote number is taken while a lote under it is accepted or in process:
    ``numero_vigente`` holds the number then, and is cleared when the operator refuses the whole
    lote, so that the corrected lote can be sent again under the same number (``reenvio_de_id``
    links it to the refused one). The unique key on it is the check (NULLs never collide).
    """

    __tablename__ = "lote"
    __table_args__ = (UniqueConstraint("prestador_id", "registro_ans", "numero_vigente"),
                      Index(None, "prestador_id", "registro_ans", "numero_lote"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prestador_id: Mapped[int] = mapped_column(ForeignKey("prestador.id"))
    registro_ans: Mapped[str] = mapped_column(String(6))
    numero_lote: Mapped[str] = mapped_column(String(20), index=True)  # st_texto12; console search
    numero_vigente: Mapped[str | None] = mapped_column(String(20))  # numero_lote until refused in full
    # the refused lote it resends
    reenvio_de_id: Mapped[int | None] = mapped_column(ForeignKey("lote.id"), index=True)
    tipo_guia: Mapped[str] = mapped_column(String(40))
    quantidade_guias: Mapped[int] = mapped_column(Integer)
    valor_informado: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    hash: Mapped[str | None] = mapped_column(String(32))
    mensagem_id: Mapped[int | None] = mapped_column(ForeignKey("mensagem.id"))
    protocolo_id: Mapped[int | None] = mapped_column(ForeignKey("protocolo.id"), index=True)
    criado_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)

    guias: Mapped[list[Guia]] = relationship(
        back_populates="lote", cascade="all, delete-orphan", order_by="Guia.id")
    protocolo: Mapped[Protocolo | None] = relationship()


class Guia(Base):
    """One guide of a lot."""

    __tablename__ = "guia"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lote_id: Mapped[int] = mapped_column(ForeignKey("lote.id", ondelete="CASCADE"), index=True)
    numero_guia_prestador: Mapped[str] = mapped_column(String(20), index=True)  # console search
    numero_guia_operadora: Mapped[str | None] = mapped_column(String(20), index=True)
    tipo: Mapped[str] = mapped_column(String(40))
    numero_carteira: Mapped[str | None] = mapped_column(String(20))
    valor_informado: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    status: Mapped[int | None] = mapped_column(Integer)  # unused since 0001; kept (no table rebuild)
    situacao: Mapped[str] = mapped_column(String(10), default=GUIA_ACEITA,
                                          server_default=text("'aceita'"))  # SITUACOES_GUIA

    lote: Mapped[Lote] = relationship(back_populates="guias")


class Critica(Base):
    """A finding (crítica) about a message, lot or guide, with its Table 38 code."""

    __tablename__ = "critica"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mensagem_id: Mapped[int | None] = mapped_column(ForeignKey("mensagem.id"), index=True)
    lote_id: Mapped[int | None] = mapped_column(ForeignKey("lote.id", ondelete="CASCADE"), index=True)
    guia_id: Mapped[int | None] = mapped_column(ForeignKey("guia.id", ondelete="CASCADE"), index=True)
    codigo: Mapped[str | None] = mapped_column(String(10))  # dm_tipoGlosa (Table 38)
    mensagem: Mapped[str] = mapped_column(Text)
    localizacao: Mapped[str | None] = mapped_column(Text)
    linha: Mapped[int | None] = mapped_column(Integer)


class Auditoria(Base):
    """Access log (ANS Componente de Segurança: keep at least 90 days)."""

    __tablename__ = "auditoria"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    quem: Mapped[str] = mapped_column(String(100), index=True)  # login, or 'anonimo'
    acao: Mapped[str] = mapped_column(String(40))
    detalhe: Mapped[str | None] = mapped_column(Text)
    endereco: Mapped[str | None] = mapped_column(String(45))


ESTADOS_ENTREGA = ("pendente", "enviando", "entregue", "recusada", "morta")


class Entrega(Base):
    """One message to deliver to an operator: the outbox.

    Scheduled in the transaction that accepts the message. A worker prepares it through the
    operator's adapter (a lote over the operator's limits becomes one row per part, each with its
    own numeroLote and sequencialTransacao) and keeps the prepared bytes: every retry sends the
    same bytes, so the operator never sees one lote under two sequenciais.
    """

    __tablename__ = "entrega"
    __table_args__ = (
        CheckConstraint("estado IN ('pendente', 'enviando', 'entregue', 'recusada', 'morta')",
                        name="estado"),
        UniqueConstraint("registro_ans", "sequencial"),
        Index(None, "estado", "proxima_em"),
        Index(None, "proxima_consulta_em"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registro_ans: Mapped[str] = mapped_column(String(6), index=True)
    servico: Mapped[str] = mapped_column(String(60))
    prestador_id: Mapped[int] = mapped_column(ForeignKey("prestador.id"))
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("mensagem.id"), index=True)  # the request accepted
    protocolo_id: Mapped[int | None] = mapped_column(ForeignKey("protocolo.id"), index=True)
    lote_id: Mapped[int | None] = mapped_column(ForeignKey("lote.id"), index=True)
    parte: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    partes: Mapped[int | None] = mapped_column(Integer)  # None until prepared
    sequencial: Mapped[str | None] = mapped_column(String(12))  # sequencialTransacao sent
    numero_lote: Mapped[str | None] = mapped_column(String(12), index=True)  # numeroLote of this part
    guias: Mapped[str | None] = mapped_column(Text)  # numeroGuiaPrestador of this part, one per line
    corpo: Mapped[bytes | None] = mapped_column(LargeBinary)  # prepared *WS document
    # The senhaPrestador spans of corpo (else of the accepted message) sealed by gateway.security.vault:
    # put back in memory to send; emptied once nothing will be sent any more.
    senha_cifrada: Mapped[bytes | None] = mapped_column(LargeBinary)
    estado: Mapped[str] = mapped_column(String(10), default="pendente", server_default=text("'pendente'"))
    tentativas: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    proxima_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    reservada_ate: Mapped[datetime | None] = mapped_column(UtcDateTime)  # a worker's lease
    reservada_por: Mapped[str | None] = mapped_column(String(100))
    ultimo_erro: Mapped[str | None] = mapped_column(Text)
    envio_id: Mapped[int | None] = mapped_column(ForeignKey("mensagem.id"))  # last bytes sent
    resposta_id: Mapped[int | None] = mapped_column(ForeignKey("mensagem.id"))  # operator's answer
    numero_protocolo: Mapped[str | None] = mapped_column(String(40), index=True)  # the operator's protocol
    status: Mapped[int | None] = mapped_column(Integer)  # dm_statusProtocolo the operator reports
    status_em: Mapped[datetime | None] = mapped_column(UtcDateTime)
    situacao_id: Mapped[int | None] = mapped_column(ForeignKey("mensagem.id"), index=True)  # last situação
    consultas: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    proxima_consulta_em: Mapped[datetime | None] = mapped_column(UtcDateTime)  # poller schedule
    request_id: Mapped[str | None] = mapped_column(String(32))  # the accepting request's id
    criada_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    entregue_em: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Why an earlier send may have reached the operator unrecorded (gateway.delivery.leases).
    incerto: Mapped[str | None] = mapped_column(Text)


class Demonstrativo(Base):
    """A demonstrativo (dm_tipoDemonstrativo) fetched from an operator, kept as received."""

    __tablename__ = "demonstrativo"
    __table_args__ = (Index(None, "prestador_id", "registro_ans", "tipo"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prestador_id: Mapped[int] = mapped_column(ForeignKey("prestador.id"))
    registro_ans: Mapped[str] = mapped_column(String(6))
    tipo: Mapped[str] = mapped_column(String(1))  # 1 pagamento, 2 análise de conta, 3 odontologia
    protocolo_id: Mapped[int | None] = mapped_column(ForeignKey("protocolo.id"), index=True)
    numero_protocolo: Mapped[str | None] = mapped_column(String(40))  # the operator's
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("mensagem.id"))  # the operator's answer
    obtido_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


PAPEIS_USUARIO = ("admin", "operador", "prestador")


class Usuario(Base):
    """A person who signs in to the web console (``tiss-gateway usuario add``).

    ``admin`` manages everything, ``operador`` sees and retries everything, ``prestador`` sees only
    the data of its ``prestador_id``.
    """

    __tablename__ = "usuario"
    __table_args__ = (
        CheckConstraint("papel IN ('admin', 'operador', 'prestador')", name="papel"),
        CheckConstraint("papel <> 'prestador' OR prestador_id IS NOT NULL", name="prestador"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(60), unique=True)
    nome: Mapped[str] = mapped_column(String(150))
    senha_hash: Mapped[str] = mapped_column(String(200))  # scrypt$n$r$p$salt$hash
    papel: Mapped[str] = mapped_column(String(10))
    prestador_id: Mapped[int | None] = mapped_column(ForeignKey("prestador.id"))
    ativo: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    falhas_login: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    bloqueado_ate: Mapped[datetime | None] = mapped_column(UtcDateTime)
    criado_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ultimo_acesso_em: Mapped[datetime | None] = mapped_column(UtcDateTime)

    prestador: Mapped[Prestador | None] = relationship()


class SessaoConsole(Base):
    """A signed-in console session. The cookie carries a random token; only its SHA-256 is kept."""

    __tablename__ = "sessao_console"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie token
    usuario_id: Mapped[int] = mapped_column(ForeignKey("usuario.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    criada_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expira_em: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    endereco: Mapped[str | None] = mapped_column(String(45))

    usuario: Mapped[Usuario] = relationship()


# The Core tables of the models, for the Core statements of the request path and the commands.
# A declarative class with a __tablename__ has a Table; DeclarativeBase declares ``__table__`` only
# as a FromClause (no insert/update/delete, no name), hence the cast, made once here.
PRESTADOR_TABLE = cast(Table, Prestador.__table__)
MENSAGEM_TABLE = cast(Table, Mensagem.__table__)
TRANSACAO_TABLE = cast(Table, Transacao.__table__)
PROTOCOLO_TABLE = cast(Table, Protocolo.__table__)
PROTOCOLO_STATUS_TABLE = cast(Table, ProtocoloStatus.__table__)
LOTE_TABLE = cast(Table, Lote.__table__)
GUIA_TABLE = cast(Table, Guia.__table__)
CRITICA_TABLE = cast(Table, Critica.__table__)
AUDITORIA_TABLE = cast(Table, Auditoria.__table__)
ENTREGA_TABLE = cast(Table, Entrega.__table__)
DEMONSTRATIVO_TABLE = cast(Table, Demonstrativo.__table__)


ESCOPOS_LOGIN = ("prestador", "console")


class FalhaLogin(Base):
    """Failed logins of one client address (gateway.tentativas): a row per (login, address), whose
    lock refuses that login from that address only, and a row per address (``login`` empty), whose
    lock refuses every login from it. Kept in the database so that every worker and host counts
    the same failures, and a restart forgets none."""

    __tablename__ = "falha_login"
    __table_args__ = (
        UniqueConstraint("escopo", "endereco", "login"),
        CheckConstraint("escopo IN ('prestador', 'console')", name="escopo"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    escopo: Mapped[str] = mapped_column(String(10))  # ESCOPOS_LOGIN: SOAP logins or console users
    login: Mapped[str] = mapped_column(String(60))  # "": the address's row (across logins)
    endereco: Mapped[str] = mapped_column(String(45))  # the client address (IPv6: its /64)
    falhas: Mapped[int] = mapped_column(Integer)  # failures since ``desde``
    desde: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # start of the series/window
    bloqueado_ate: Mapped[datetime | None] = mapped_column(UtcDateTime)


FALHA_LOGIN_TABLE = cast(Table, FalhaLogin.__table__)


class GuiasDaSituacao(Base):
    """The guide list of a lote protocol's situação answer in one state of the protocol
    (``protocolo.versao``) and TISS version, rendered once (gateway.storage.kept_lists)."""

    __tablename__ = "guias_da_situacao"
    __table_args__ = (UniqueConstraint("protocolo_id", "versao", "padrao"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    protocolo_id: Mapped[int] = mapped_column(ForeignKey("protocolo.id"))
    versao: Mapped[int] = mapped_column(Integer)
    padrao: Mapped[str] = mapped_column(String(8))
    lista: Mapped[str] = mapped_column(Text)  # the guides as XML text, what goes inside guiasTISS
    folhas: Mapped[str] = mapped_column(Text)  # their leaf values joined (the TISS hash reads them)
    valor_processado: Mapped[Decimal] = mapped_column(Numeric(14, 2))  # valorTotalLote in that state
    valor_glosa: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    valor_liberado: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    criada_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RespostaSituacao(Base):
    """A situação answer stored without its guide list: its ``mensagem.corpo`` has the list's place
    marked, the list is ``guias_id``, written in ``codificacao`` (gateway.storage.kept_lists)."""

    __tablename__ = "resposta_situacao"

    mensagem_id: Mapped[int] = mapped_column(ForeignKey("mensagem.id"), primary_key=True)
    guias_id: Mapped[int] = mapped_column(ForeignKey("guias_da_situacao.id"), index=True)
    codificacao: Mapped[str] = mapped_column(String(40))


GUIAS_DA_SITUACAO_TABLE = cast(Table, GuiasDaSituacao.__table__)
RESPOSTA_SITUACAO_TABLE = cast(Table, RespostaSituacao.__table__)


class Arquivo(Base):
    """A delivery that went as a mensagemTISS file for a person to upload in the operator's portal
    (``canal = "arquivo"``): the file is the delivery's ``envio`` message (``mensagem_id``); the
    portal's protocol, once recorded, is the delivery's ``numero_protocolo``
    (gateway.delivery.arquivo)."""

    __tablename__ = "arquivo"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entrega_id: Mapped[int] = mapped_column(ForeignKey("entrega.id"), unique=True)
    lote_id: Mapped[int | None] = mapped_column(ForeignKey("lote.id"), index=True)
    mensagem_id: Mapped[int] = mapped_column(ForeignKey("mensagem.id"))  # the file's bytes
    nome: Mapped[str] = mapped_column(String(60))  # <sequencial in 20 digits>_<HASH>.xml
    criado_em: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    na_pasta_em: Mapped[datetime | None] = mapped_column(UtcDateTime)  # written whole to pasta_arquivos
    protocolo_em: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the portal's protocol recorded
    protocolo_por: Mapped[str | None] = mapped_column(String(100))  # by whom (console login)
