"""What a simulated health-plan operator answers, for TISS 4.01.00, 4.02.00 and 4.03.00.

Builders in the style of :mod:`gateway.front.responses` (whose helpers, ``ReplyContext`` and
``envelope`` they reuse): each returns the ``*WS`` root with an empty ``hash``; the caller stamps
and wraps it with ``responses.envelope``. Inputs are the frozen dataclasses below, filled by the
simulator from its storage (``ler_solicitacao`` / ``ler_recurso`` read the stored requests).

Facts from the official schemas that shape this module:

* Analysis is only shown once done: a protocol (or recurso) whose dm_statusProtocolo is not
  analysed (3, 4, 5, 6; 10 Bloqueio judicial from 4.02.00) shows the informed values
  (``ValorTotal.recebido``), no glosas and, in the demonstrativo de análise, no relacaoGuias.
* situacaoProtocolo (ct_loteStatus/ct_guiaDados) has no status per guide: the lot's status,
  ``glosaGuia`` (motives) and, per item, ``glosasProcedimento`` (motives + valorGlosaProcedimento).
  ``situacaoGuia`` per guide exists only in the demonstrativo de análise de conta.
* ct_valorTotal has processado/glosa/liberado, no "informado"; the demonstrativos carry all four.
  Here liberado = processado − glosa (− franquia, odontologia only); processado defaults to the
  informed value.
* Widths: 4.01.00 has st_decimal8-2 for item values (valorUnitario, valorInformado of detalhesGuia,
  valorDbCr, valorSolicitado/Autorizado, valorRecursado/Acatado...) and st_decimal7-2 for the
  odonto demonstrativo's item values; 4.02.00 widened them to 10-2, except the odonto
  demonstrativo's item ``valorLiberado``, st_decimal7-2 in all three versions, and narrowed the
  odonto autorização's ``qtdUS`` from 8-2 to 7-2. Values that do not fit raise ValueError.
* ct_demonstrativoCabecalho needs the operator's name and CNPJ and ``dadosPrestador/CNES``
  (st_texto7; "9999999" is the TISS filler for a provider without CNES). The odonto
  demonstrativo (cto_demonstrativoOdontologia) needs both the provider's code at the operator and
  its CPF/CNPJ, and its numeroDemonstrativo is st_texto12 (st_texto20 in the others).
* Autorização: guide-level ``motivosNegativa`` holds bare ``codigoGlosa`` codes (changed in
  4.00.00), item-level ones ct_motivoGlosa (code + description). The odonto answer
  (cto_autorizacaoServico, tipoTransacao AUTORIZACAO_ODONTOLOGIA) has per procedure ``aut`` S/N and
  requires ``valorProc``; SP-SADT, internação and prorrogação answer ctm_autorizacaoServico
  (internação/prorrogação wrap it as ``autorizacaoDosServicos``). nomeBeneficiario is required
  although no request carries it.
* Recurso de glosa (ct_respostaGlosa): the decision (reciboGlosa / reciboGlosaOdonto) has no
  status; the status alone is ``reciboGlosaStatus``. The decision types numeroLote as
  st_numerico12 while the recurso sends st_texto12: a lot number with non-digits can only be
  answered with reciboGlosaStatus. The medical item decision's value is spelled
  ``valorAcatadado``; one ``recursoGuia`` holds one guide-level motive or one item.
* respostaElegibilidadeWS has no mensagemErro: not eligible is reciboElegibilidade with
  respostaSolicitacao N and motivosNegativa (ct_motivoGlosa).

Unknown protocols, guides or recursos are answered with ``responses.protocolo_nao_localizado`` /
``responses.mensagem_erro`` (``glosa_elegibilidade`` for a message-level elegibilidade error).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TypeVar

from lxml import etree

from gateway.front import responses as r
from gateway.front.responses import (
    _A,
    _CONTRATADO,
    NOME_NAO_INFORMADO,
    ReplyContext,
    ValorTotal,
    _child,
    _data,
    _decimal,
    _el,
    _finish,
    _motivo_glosa,
    _response,
    _situacao_do_protocolo,
    _texto,
    _valor_total,
    codigos_glosa,
)

T = TypeVar("T")
ZERO = Decimal("0.00")
CENTAVO = Decimal("0.01")
# dm_statusProtocolo values whose analysis (glosas, liberado) is shown; 10 exists from 4.02.00.
STATUS_ANALISADOS = frozenset({3, 4, 5, 6, 10})
CNES_NAO_INFORMADO = "9999999"  # TISS filler for a provider without CNES
DESCRICAO_NAO_INFORMADA = "PROCEDIMENTO SEM DESCRIÇÃO"  # ct_procedimentoDados needs one; consulta has none

# dm_statusSolicitacao (comments of tissSimpleTypes)
AUTORIZADO = "1"
EM_ANALISE = "2"
NEGADO = "3"
AGUARDANDO_JUSTIFICATIVA = "4"
AGUARDANDO_DOCUMENTACAO = "5"
CANCELADA = "6"
AUTORIZADO_PARCIALMENTE = "7"
_PENDENTES = frozenset({EM_ANALISE, AGUARDANDO_JUSTIFICATIVA, AGUARDANDO_DOCUMENTACAO})
VALIDADE_SENHA_DIAS = 30  # default validity of a senha, counted from the authorization date

# Table 38 motives of elegibilidade (all in dm_tipoGlosa 4.01.00-4.03.00).
CARTEIRA_INVALIDA = "1001"
BENEFICIARIO_DESLIGADO = "1006"
PAGAMENTO_EM_ABERTO = "1009"
ATENDIMENTO_SUSPENSO = "1016"
CARTEIRA_VENCIDA = "1017"
# Recurso de glosa not accepted (Table 38 2902 GLOSA MANTIDA).
GLOSA_MANTIDA = "2902"

# dm_debitoCreditoTipo (comments of tissSimpleTypes) -> descricaoDbCr default (st_texto40)
DEBITO_CREDITO = {"01": "IRRF", "02": "ISS", "03": "INSS", "04": "PIS", "05": "COFINS", "06": "CSLL",
                  "07": "Descontos financeiros", "08": "Ajuste de pagamento anterior",
                  "09": "Determinação judicial"}
# dm_formaPagamento: 1 depósito/transferência, 2 carteira, 3 boleto/DDA, 4 dinheiro/cheque
FORMAS_PAGAMENTO = frozenset({"1", "2", "3", "4"})

SOLICITACOES = ("solicitacaoSP-SADT", "solicitacaoInternacao", "solicitacaoProrrogacao",
                "solicitacaoOdontologia")
_FACE = re.compile(r"[OLMVDIP]{1,5}")  # dm_face
_NUMERICO12 = re.compile(r"[0-9]{1,12}")


def _d(value: Decimal | int | str) -> Decimal:
    return Decimal(value)


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, ZERO)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Glosa:
    """One Table 38 motive (dm_tipoGlosa of the message's version) and, on an item, the amount it
    cut. ``descricao`` defaults to the Table 38 term (cut to st_texto500)."""

    codigo: str
    valor: Decimal = ZERO
    descricao: str | None = None


@dataclass(frozen=True)
class Procedimento:
    """ct_procedimentoDados: dm_tabela, code (st_texto10), description (cut to st_texto150)."""

    codigo_tabela: str
    codigo: str
    descricao: str | None = None


@dataclass(frozen=True)
class ItemAnalisado:
    """One billed item of a guide and the operator's analysis of it.

    ``valor_processado`` defaults to ``valor_informado``; ``glosas`` amounts add up to the item's
    glosa; ``valor_franquia`` (odontologia only) is the beneficiary's share. ``sequencial`` and
    ``data_realizacao`` default to the item's position and the guide's ``data_inicio``.
    """

    procedimento: Procedimento
    valor_informado: Decimal
    quantidade: Decimal = Decimal(1)
    sequencial: int | None = None
    data_realizacao: date | None = None
    valor_processado: Decimal | None = None
    glosas: tuple[Glosa, ...] = ()
    valor_franquia: Decimal = ZERO
    valor_unitario: Decimal | None = None  # default informado / quantidade
    grau_participacao: str | None = None  # dm_grauPart
    dente: str | None = None  # dm_dente
    regiao: str | None = None  # dm_regiao
    face: str | None = None  # dm_face

    def __post_init__(self) -> None:
        if self.valor_glosa + _d(self.valor_franquia) > self.processado:
            raise ValueError(f"item {self.procedimento.codigo}: glosa + franquia acima do valor processado")
        if min(_d(self.valor_informado), self.processado, _d(self.valor_franquia)) < 0 or any(
                _d(g.valor) < 0 for g in self.glosas):
            raise ValueError(f"item {self.procedimento.codigo}: valores negativos")

    @property
    def processado(self) -> Decimal:
        return _d(self.valor_informado if self.valor_processado is None else self.valor_processado)

    @property
    def valor_glosa(self) -> Decimal:
        return _sum(_d(g.valor) for g in self.glosas)

    @property
    def valor_liberado(self) -> Decimal:
        return self.processado - self.valor_glosa - _d(self.valor_franquia)


@dataclass(frozen=True)
class GuiaAnalisada:
    """A guide of a protocol, its items and the guide-level glosa motives.

    Amounts live on the items; ``glosas`` are the guide's motives (e.g. a total glosa's code).
    ``status`` (dm_statusProtocolo, situacaoGuia) defaults to the protocol's. ``recurso``: paid
    after a recurso de glosa (tipoPagamento 2 / odonto ``recurso`` S). ``nome_executante`` is
    required by the odonto demonstrativo.
    """

    numero_guia_prestador: str
    numero_carteira: str
    data_inicio: date
    itens: tuple[ItemAnalisado, ...]
    numero_guia_operadora: str | None = None
    senha: str | None = None
    data_fim: date | None = None
    atendimento_rn: bool = False
    glosas: tuple[Glosa, ...] = ()
    status: int | None = None
    odonto: bool = False
    recurso: bool = False
    nome_executante: str = NOME_NAO_INFORMADO

    def __post_init__(self) -> None:
        if not self.itens:
            raise ValueError(f"guia {self.numero_guia_prestador} sem itens")
        if not self.odonto and any(_d(i.valor_franquia) for i in self.itens):
            raise ValueError(f"guia {self.numero_guia_prestador}: franquia só existe em guias odontológicas")

    @property
    def valor_informado(self) -> Decimal:
        return _sum(_d(i.valor_informado) for i in self.itens)

    @property
    def valor_processado(self) -> Decimal:
        return _sum(i.processado for i in self.itens)

    @property
    def valor_glosa(self) -> Decimal:
        return _sum(i.valor_glosa for i in self.itens)

    @property
    def valor_franquia(self) -> Decimal:
        return _sum(_d(i.valor_franquia) for i in self.itens)

    @property
    def valor_liberado(self) -> Decimal:
        return _sum(i.valor_liberado for i in self.itens)


@dataclass(frozen=True)
class ProtocoloSituacao:
    """A protocol (one lote) at a moment: dm_statusProtocolo, its guides, an optional
    protocol-level glosa motive (GlosaProtocolo of the demonstrativo de análise)."""

    numero_protocolo: str
    numero_lote: str
    data_envio: date
    status: int
    guias: tuple[GuiaAnalisada, ...]
    glosa: Glosa | None = None

    def __post_init__(self) -> None:
        if not self.guias:
            raise ValueError(f"protocolo {self.numero_protocolo} sem guias")
        if len({g.odonto for g in self.guias}) > 1:
            raise ValueError("guias odontológicas e médicas misturadas num lote")

    @property
    def analisado(self) -> bool:
        return int(self.status) in STATUS_ANALISADOS

    @property
    def odonto(self) -> bool:
        return self.guias[0].odonto

    def _total(self, name: str) -> Decimal:
        return _sum(getattr(g, name) for g in self.guias)

    @property
    def valor_informado(self) -> Decimal:
        return self._total("valor_informado")

    @property
    def valor_processado(self) -> Decimal:
        return self._total("valor_processado")

    @property
    def valor_glosa(self) -> Decimal:
        return self._total("valor_glosa")

    @property
    def valor_franquia(self) -> Decimal:
        return self._total("valor_franquia")

    @property
    def valor_liberado(self) -> Decimal:
        return self._total("valor_liberado")

    def valores(self) -> ValorTotal:
        """ct_valorTotal as shown now: the analysis once analysed, else the informed value."""
        if not self.analisado:
            return ValorTotal.recebido(self.valor_informado)
        return ValorTotal(self.valor_processado, self.valor_glosa, self.valor_liberado)


@dataclass(frozen=True)
class Operadora:
    """The operator as the demonstrativos' cabeçalho names it (st_texto70, st_CNPJ)."""

    nome: str
    cnpj: str


@dataclass(frozen=True)
class Prestador:
    """The provider as the demonstrativos need it beyond the request's identification."""

    codigo_na_operadora: str  # st_texto14
    documento: str  # CNPJ (14) or CPF (11)
    cnes: str = CNES_NAO_INFORMADO  # st_texto7


@dataclass(frozen=True)
class ContaBancaria:
    banco: str  # st_texto4
    agencia: str  # st_texto7
    conta: str  # st_texto20


CONTA_SANDBOX = ContaBancaria("001", "0001-9", "12345-6")


@dataclass(frozen=True)
class DebitoCredito:
    """ct_descontos: a debit (tax, discount) or credit; ``valor`` is positive."""

    tipo: str  # dm_debitoCreditoTipo 01..09
    valor: Decimal
    credito: bool = False  # dm_debitoCreditoIndicador 2 (else 1 débito)
    descricao: str | None = None  # default DEBITO_CREDITO[tipo], cut to st_texto40

    def __post_init__(self) -> None:
        if self.tipo not in DEBITO_CREDITO:
            raise ValueError(f"tipoDebitoCredito inválido: {self.tipo!r}")
        if _d(self.valor) < 0:
            raise ValueError("valor de débito/crédito deve ser positivo")


@dataclass(frozen=True)
class PagamentoPorData:
    """The protocols paid on one date (analysed ones), how, and that date's debits/credits."""

    data_pagamento: date
    protocolos: tuple[ProtocoloSituacao, ...]
    forma: str = "1"  # dm_formaPagamento (the odonto demonstrativo has none)
    conta: ContaBancaria | None = CONTA_SANDBOX
    debitos_creditos: tuple[DebitoCredito, ...] = ()

    def __post_init__(self) -> None:
        if not self.protocolos:
            raise ValueError("pagamento sem protocolos")
        if self.forma not in FORMAS_PAGAMENTO:
            raise ValueError(f"formaPagamento inválida: {self.forma!r}")
        pendentes = [p.numero_protocolo for p in self.protocolos if not p.analisado]
        if pendentes:
            raise ValueError(f"protocolos não analisados não são pagos: {pendentes}")

    def total(self, name: str) -> Decimal:
        return _sum(getattr(p, name) for p in self.protocolos)

    @property
    def debitos(self) -> Decimal:
        return _sum(_d(x.valor) for x in self.debitos_creditos if not x.credito)

    @property
    def creditos(self) -> Decimal:
        return _sum(_d(x.valor) for x in self.debitos_creditos if x.credito)

    @property
    def liquido(self) -> Decimal:
        return self.total("valor_liberado") - self.debitos + self.creditos


@dataclass(frozen=True)
class Elegibilidade:
    """The operator's verdict on a card: eligible, or not with at least one motive."""

    elegivel: bool
    nome_beneficiario: str = NOME_NAO_INFORMADO
    validade_carteira: date | None = None  # None: echo the request's validadeCarteira
    motivos: tuple[Glosa, ...] = ()
    nome_social: str | None = None

    def __post_init__(self) -> None:
        if self.elegivel == bool(self.motivos):
            raise ValueError("elegível não tem motivos de negativa; não elegível precisa de ao menos um")


@dataclass(frozen=True)
class ProcedimentoSolicitado:
    """One requested procedure (``sequencial`` = its position in the request)."""

    sequencial: int
    procedimento: Procedimento
    quantidade: int
    # odontologia (procedimentosSolicitados of cto_odontoSolicitacaoGuia)
    valor: Decimal | None = None
    valor_franquia: Decimal | None = None
    qtd_us: Decimal | None = None
    dente: str | None = None
    regiao: str | None = None
    face: str | None = None


@dataclass(frozen=True)
class SolicitacaoAutorizacao:
    """What a solicitacaoProcedimentoWS asked (see :func:`ler_solicitacao`)."""

    tipo: str  # one of SOLICITACOES (the request's body element)
    numero_guia_prestador: str
    numero_carteira: str
    procedimentos: tuple[ProcedimentoSolicitado, ...] = ()
    atendimento_rn: bool = False
    tipo_etapa: str = "1"  # dm_etapasAutorizacao
    diarias_solicitadas: int | None = None
    data_sugerida_internacao: date | None = None

    def __post_init__(self) -> None:
        if self.tipo not in SOLICITACOES:
            raise ValueError(f"tipo de solicitação desconhecido: {self.tipo!r}")

    @property
    def odonto(self) -> bool:
        return self.tipo == "solicitacaoOdontologia"


@dataclass(frozen=True)
class DecisaoItem:
    """The decision on one requested procedure (by ``sequencial``)."""

    sequencial: int
    quantidade_autorizada: int
    valor_autorizado: Decimal | None = None
    motivos: tuple[Glosa, ...] = ()


@dataclass(frozen=True)
class DecisaoAutorizacao:
    """The operator's decision on a solicitação.

    ``status`` is dm_statusSolicitacao. Autorizado (1) and parcialmente (7) need ``senha``;
    negado (3) needs ``motivos``. Procedures without a DecisaoItem follow the status: all
    authorised (1, 7), none with the guide's motives (3, 6); pending statuses (2, 4, 5) list none.
    """

    status: str
    numero_guia_operadora: str | None = None
    senha: str | None = None
    data_autorizacao: date | None = None  # default: the answer's date (authorised ones)
    validade_senha: date | None = None  # default: data_autorizacao + VALIDADE_SENHA_DIAS
    motivos: tuple[Glosa, ...] = ()
    itens: tuple[DecisaoItem, ...] = ()
    nome_beneficiario: str = NOME_NAO_INFORMADO
    observacao: str | None = None
    diarias_autorizadas: int | None = None
    acomodacao_autorizada: str | None = None  # dm_tipoAcomodacao
    data_provavel_admissao: date | None = None
    justificativa: str | None = None  # prorrogação: justificativaOperadora

    def __post_init__(self) -> None:
        if self.status not in {AUTORIZADO, EM_ANALISE, NEGADO, AGUARDANDO_JUSTIFICATIVA,
                               AGUARDANDO_DOCUMENTACAO, CANCELADA, AUTORIZADO_PARCIALMENTE}:
            raise ValueError(f"statusSolicitacao inválido: {self.status!r}")
        if self.autorizada and not self.senha:
            raise ValueError("autorização sem senha")
        if self.status == NEGADO and not self.motivos:
            raise ValueError("negativa sem motivo")

    @property
    def autorizada(self) -> bool:
        return self.status in (AUTORIZADO, AUTORIZADO_PARCIALMENTE)


@dataclass(frozen=True)
class PedidoRecurso:
    """One appealed unit of a recurso de glosa and, once analysed, the operator's decision.

    ``numero_guia_prestador`` None: the whole protocol; ``sequencial_item`` None: a guide-level
    motive. ``valor_acatado`` defaults to ``valor_recursado`` when ``acatado``, else 0.
    """

    codigo_glosa: str
    justificativa: str
    valor_recursado: Decimal = ZERO
    numero_guia_prestador: str | None = None
    numero_guia_operadora: str | None = None
    senha: str | None = None
    sequencial_item: int | None = None
    data_realizacao: date | None = None
    data_fim: date | None = None
    procedimento: Procedimento | None = None
    quantidade: int = 1  # odonto
    dente: str | None = None
    regiao: str | None = None
    face: str | None = None
    acatado: bool | None = None
    valor_acatado: Decimal | None = None
    justificativa_operadora: str | None = None

    @property
    def acatado_valor(self) -> Decimal:
        if self.valor_acatado is not None:
            valor = _d(self.valor_acatado)
        else:
            valor = _d(self.valor_recursado) if self.acatado else ZERO
        if not ZERO <= valor <= _d(self.valor_recursado):
            raise ValueError(f"valor acatado {valor} fora de 0..{self.valor_recursado}")
        return valor


@dataclass(frozen=True)
class RecursoGlosa:
    """A recurso de glosa as sent (see :func:`ler_recurso`), with decisions in its pedidos."""

    odonto: bool
    numero_guia_recurso: str  # numeroGuiaRecGlosaPrestador
    nome_operadora: str
    objeto: str  # dm_objetoRecurso: 1 protocolo, 2 guia
    codigo_prestador: str  # st_texto14
    numero_lote: str
    numero_protocolo: str  # the appealed protocol (st_numerico12)
    data_recurso: date
    pedidos: tuple[PedidoRecurso, ...]
    numero_guia_recurso_operadora: str | None = None

    def __post_init__(self) -> None:
        if not self.pedidos:
            raise ValueError("recurso sem pedidos")
        protocolo = [p for p in self.pedidos if p.numero_guia_prestador is None]
        if protocolo and len(self.pedidos) > 1:
            raise ValueError("recurso de protocolo tem um único pedido")

    @property
    def de_protocolo(self) -> bool:
        return self.pedidos[0].numero_guia_prestador is None

    @property
    def decidido(self) -> bool:
        return all(p.acatado is not None for p in self.pedidos)

    @property
    def valor_recursado(self) -> Decimal:
        return _sum(_d(p.valor_recursado) for p in self.pedidos)

    @property
    def valor_acatado(self) -> Decimal:
        return _sum(p.acatado_valor for p in self.pedidos)


@dataclass(frozen=True)
class SituacaoRecurso:
    """A recurso's protocol at a moment. Once analysed (STATUS_ANALISADOS) and given ``recurso``
    with every pedido decided, the answer is the decision; otherwise the status."""

    numero_protocolo: str  # nrProtocoloRecursoGlosa (the recurso's receipt)
    numero_lote: str
    data_envio: date
    data_recebimento: date
    status: int
    data_situacao: date | None = None  # default: the answer's date
    numero_protocolo_situacao: str | None = None  # default: numero_protocolo
    recurso: RecursoGlosa | None = None


# --------------------------------------------------------------------------- situação do protocolo


def situacao_protocolo_detalhado(ctx: ReplyContext, protocolo: ProtocoloSituacao) -> etree._Element:
    """situacaoProtocoloWS/…/detalheLote of a known protocol with each guide's values, glosaGuia
    and items (procedimentosRealizados with glosasProcedimento), glosas once analysed."""
    status = _status_protocolo(ctx, protocolo.status)
    root, body = _response(ctx, "situacaoProtocoloWS", "situacaoProtocolo")
    detalhe = _el(_situacao_do_protocolo(body, ctx), "detalheLote")
    _el(detalhe, "statusProtocolo", status)
    _el(detalhe, "numeroProtocolo", _texto("numeroProtocolo", protocolo.numero_protocolo, 12))
    _el(detalhe, "numeroLote", _texto("numeroLote", protocolo.numero_lote, 12))
    _el(detalhe, "dataEnvioLote", _data(protocolo.data_envio))
    _valor_total(_el(detalhe, "valorTotalLote"), protocolo.valores())
    guias = _el(detalhe, "guiasTISS")
    for guia in protocolo.guias:
        wrapper = _el(guias, "guiasOdonto" if guia.odonto else "guiasMedicas")
        _guia_status(_el(wrapper, "guias"), ctx, guia, protocolo.analisado)
    return _finish(root)


def _guia_status(out: etree._Element, ctx: ReplyContext, guia: GuiaAnalisada, analisado: bool) -> None:
    """ct_guiaDados / ct_guiaDadosOdonto."""
    _numeros_guia(out, guia, senha=False)
    beneficiario = out if guia.odonto else _el(out, "dadosBeneficiario")
    _el(beneficiario, "numeroCarteira", _texto("numeroCarteira", guia.numero_carteira, 20))
    _el(beneficiario, "atendimentoRN", _sim_nao(guia.atendimento_rn))
    if not guia.odonto:
        _el(out, "dataRealizacao", _data(guia.data_inicio))
    if analisado:
        _valor_total(_el(out, "vlInformadoGuia"),
                     ValorTotal(guia.valor_processado, guia.valor_glosa, guia.valor_liberado))
    else:
        _valor_total(_el(out, "vlInformadoGuia"), ValorTotal.recebido(guia.valor_informado))
    if analisado and guia.glosas:
        glosa = _el(out, "glosaGuia")
        for motivo in guia.glosas:
            _motivo(_el(glosa, "motivoGlosa"), ctx, motivo)
    realizados = _el(out, "procedimentosRealizados")
    for posicao, item in enumerate(guia.itens, 1):
        proc = _el(realizados, "procedimentoRealizado")
        if guia.odonto:
            _item_executado_odonto(proc, ctx, item, posicao, guia)
        else:
            _item_executado(proc, ctx, item, posicao, guia)
        if analisado and item.glosas:
            glosas = _el(proc, "glosasProcedimento")
            for motivo in item.glosas:
                _motivo(_el(glosas, "motivoGlosa"), ctx, motivo)
            _el(glosas, "valorGlosaProcedimento", _decimal(item.valor_glosa))


def _item_executado(out: etree._Element, ctx: ReplyContext, item: ItemAnalisado, posicao: int,
                    guia: GuiaAnalisada) -> None:
    """ct_procedimentoExecutado (valorUnitario/valorTotal st_decimal8-2 in 4.01.00)."""
    _el(out, "sequencialItem", _sequencial(item.sequencial or posicao))
    _el(out, "dataExecucao", _data(item.data_realizacao or guia.data_inicio))
    _procedimento(out, "procedimento", item.procedimento)
    _el(out, "quantidadeExecutada", _quantidade(item.quantidade))
    unitario = item.valor_unitario
    if unitario is None:
        quantidade = _d(item.quantidade)
        unitario = _d(item.valor_informado) / quantidade if quantidade else _d(item.valor_informado)
    _el(out, "valorUnitario", _decimal(unitario, _largura(ctx)))
    _el(out, "valorTotal", _decimal(item.valor_informado, _largura(ctx)))


def _item_executado_odonto(out: etree._Element, ctx: ReplyContext, item: ItemAnalisado, posicao: int,
                           guia: GuiaAnalisada) -> None:
    """ct_procedimentoExecutadoOdonto (valorProc/valorFranquia st_decimal8-2 in 4.01.00)."""
    _el(out, "sequencialItem", _sequencial(item.sequencial or posicao))
    _procedimento(out, "procedimento", item.procedimento)
    _dente(out, item.dente, item.regiao, item.face, face_pattern=True)
    _el(out, "qtdProc", _qtd_proc(item.quantidade))
    _el(out, "valorProc", _decimal(item.valor_informado, _largura(ctx)))
    if item.valor_franquia:
        _el(out, "valorFranquia", _decimal(item.valor_franquia, _largura(ctx)))
    _el(out, "dataRealizacao", _data(item.data_realizacao or guia.data_inicio))


# --------------------------------------------------------------------------- demonstrativos


def demonstrativo_analise_conta(ctx: ReplyContext, *, numero_demonstrativo: str, operadora: Operadora,
                                prestador: Prestador, protocolos: Sequence[ProtocoloSituacao],
                                data_emissao: date | None = None) -> etree._Element:
    """demonstrativoRetornoWS/demonstrativoRetorno/demonstrativoAnaliseConta (one demonstrativo,
    one dadosProtocolo per protocol). Analysed protocols list each guide (situacaoGuia, motives)
    and item (informado, processado, liberado, relacaoGlosa); totals are sums of the same values.
    """
    if not protocolos:
        raise ValueError("demonstrativo sem protocolos")
    root, body = _response(ctx, "demonstrativoRetornoWS", "demonstrativoRetorno",
                           r.TIPO_TRANSACAO_DEMONSTRATIVO["2"])
    dem = _el(body, "demonstrativoAnaliseConta")
    _cabecalho_demonstrativo(dem, ctx, numero_demonstrativo, operadora, data_emissao)
    dados = _el(dem, "dadosPrestador")
    _contratado(dados, "dadosContratado", ctx)
    _el(dados, "CNES", _texto("CNES", prestador.cnes, 7))
    conta = _el(dem, "dadosConta")
    totais = [ZERO, ZERO, ZERO, ZERO]
    for protocolo in protocolos:
        valores = _dados_protocolo(_el(conta, "dadosProtocolo"), ctx, protocolo)
        totais = [a + b for a, b in zip(totais, valores, strict=True)]
    for name, value in zip(("valorInformadoGeral", "valorProcessadoGeral", "valorLiberadoGeral",
                            "valorGlosaGeral"), totais, strict=True):
        _el(dem, name, _decimal(value))
    return _finish(root)


def _dados_protocolo(out: etree._Element, ctx: ReplyContext, protocolo: ProtocoloSituacao) -> list[Decimal]:
    """ct_contaMedicaResumo; returns (informado, processado, liberado, glosa) as written."""
    status = _status_protocolo(ctx, protocolo.status)
    _el(out, "numeroLotePrestador", _texto("numeroLote", protocolo.numero_lote, 12))
    _el(out, "numeroProtocolo", _texto("numeroProtocolo", protocolo.numero_protocolo, 12))
    _el(out, "dataProtocolo", _data(protocolo.data_envio))
    if protocolo.analisado and protocolo.glosa is not None:
        _motivo(_el(out, "GlosaProtocolo"), ctx, protocolo.glosa)
    _el(out, "situacaoProtocolo", status)
    if protocolo.analisado:
        for guia in protocolo.guias:
            _relacao_guia(_el(out, "relacaoGuias"), ctx, guia, guia.status or protocolo.status)
        valores = [protocolo.valor_informado, protocolo.valor_processado, protocolo.valor_liberado,
                   protocolo.valor_glosa]
    else:  # nothing processed yet
        valores = [protocolo.valor_informado, ZERO, ZERO, ZERO]
    for name, value in zip(("valorInformadoProtocolo", "valorProcessadoProtocolo",
                            "valorLiberadoProtocolo", "valorGlosaProtocolo"), valores, strict=True):
        _el(out, name, _decimal(value))
    return valores


def _relacao_guia(out: etree._Element, ctx: ReplyContext, guia: GuiaAnalisada, status: int) -> None:
    _numeros_guia(out, guia, senha=True)
    _el(out, "numeroCarteira", _texto("numeroCarteira", guia.numero_carteira, 20))
    _el(out, "dataInicioFat", _data(guia.data_inicio))
    if guia.data_fim is not None:
        _el(out, "dataFimFat", _data(guia.data_fim))
    for motivo in guia.glosas:
        _motivo(_el(out, "motivoGlosaGuia"), ctx, motivo)
    _el(out, "situacaoGuia", _status_protocolo(ctx, status))
    for posicao, item in enumerate(guia.itens, 1):
        detalhe = _el(out, "detalhesGuia")
        _el(detalhe, "sequencialItem", _sequencial(item.sequencial or posicao))
        _el(detalhe, "dataRealizacao", _data(item.data_realizacao or guia.data_inicio))
        _procedimento(detalhe, "procedimento", item.procedimento)
        if item.grau_participacao:
            _el(detalhe, "grauParticipacao", item.grau_participacao)
        _el(detalhe, "valorInformado", _decimal(item.valor_informado, _largura(ctx)))
        _el(detalhe, "qtdExecutada", _quantidade(item.quantidade))
        _el(detalhe, "valorProcessado", _decimal(item.processado, _largura(ctx)))
        _el(detalhe, "valorLiberado", _decimal(item.valor_liberado, _largura(ctx)))
        for glosa in item.glosas:
            relacao = _el(detalhe, "relacaoGlosa")
            _el(relacao, "valorGlosa", _decimal(glosa.valor, _largura(ctx)))
            _el(relacao, "tipoGlosa", _codigo(ctx, glosa.codigo))
    _el(out, "valorInformadoGuia", _decimal(guia.valor_informado))
    _el(out, "valorProcessadoGuia", _decimal(guia.valor_processado))
    _el(out, "valorLiberadoGuia", _decimal(guia.valor_liberado))
    _el(out, "valorGlosaGuia", _decimal(guia.valor_glosa))


def demonstrativo_pagamento(ctx: ReplyContext, *, numero_demonstrativo: str, operadora: Operadora,
                            prestador: Prestador, pagamentos: Sequence[PagamentoPorData],
                            debitos_creditos: Sequence[DebitoCredito] = (),
                            data_emissao: date | None = None) -> etree._Element:
    """demonstrativoRetornoWS/…/demonstrativoPagamento (ctm_demonstrativoPagamento).

    Per payment date: payment data, each protocol with its guides (tipoPagamento 1 inicial /
    2 recurso), gross totals, that date's debits/credits and liquid. ``debitos_creditos`` are the
    demonstrativo-level ones; the demonstrativo's totals count both levels:
    valorLiberadoDemonstrativo = liberado − all debits + all credits.
    """
    if not pagamentos:
        raise ValueError("demonstrativo sem pagamentos")
    root, body = _response(ctx, "demonstrativoRetornoWS", "demonstrativoRetorno",
                           r.TIPO_TRANSACAO_DEMONSTRATIVO["1"])
    dem = _el(body, "demonstrativoPagamento")
    _cabecalho_demonstrativo(dem, ctx, numero_demonstrativo, operadora, data_emissao)
    contratado = _el(dem, "dadosContratado")
    _contratado(contratado, "dadosPrestador", ctx)
    _el(contratado, "CNES", _texto("CNES", prestador.cnes, 7))
    lista = _el(dem, "pagamentos")
    for pagamento in pagamentos:
        _pagamento_por_data(_el(lista, "pagamentosPorData"), ctx, pagamento)
    totais = _el(dem, "totaisDemonstrativo")
    brutos = _el(totais, "totaisBrutosDemonstrativo")
    for name, attr in _TOTAIS_DEMONSTRATIVO:
        _el(brutos, name, _decimal(_sum(p.total(attr) for p in pagamentos)))
    for item in debitos_creditos:
        _desconto(_el(totais, "debitosCreditosDemonstrativo"), ctx, item)
    debitos, creditos, liquido = _liquido(pagamentos, debitos_creditos)
    liquidos = _el(totais, "totaisLiquidosDemonstrativo")
    _el(liquidos, "totalDebitosDemonstrativo", _decimal(debitos))
    _el(liquidos, "totalCreditosdemonstrativo", _decimal(creditos))
    _el(liquidos, "valorLiberadoDemonstrativo", _decimal(liquido))
    return _finish(root)


def _pagamento_por_data(out: etree._Element, ctx: ReplyContext, pagamento: PagamentoPorData) -> None:
    dados = _el(out, "dadosPagamento")
    _el(dados, "dataPagamento", _data(pagamento.data_pagamento))
    _el(dados, "formaPagamento", pagamento.forma)
    _conta(dados, pagamento.conta, "nrContaCheque")
    resumo = _el(out, "dadosResumo")
    for protocolo in pagamento.protocolos:
        rel = _el(resumo, "relacaoProtocolos")
        _el(rel, "dataProtocolo", _data(protocolo.data_envio))
        _el(rel, "numeroProtocolo", _texto("numeroProtocolo", protocolo.numero_protocolo, 12))
        _el(rel, "numeroLote", _texto("numeroLote", protocolo.numero_lote, 12))
        _el(rel, "valorInformado", _decimal(protocolo.valor_informado))
        _el(rel, "valorProcessado", _decimal(protocolo.valor_processado))
        _el(rel, "valorLiberado", _decimal(protocolo.valor_liberado))
        _el(rel, "valorGlosa", _decimal(protocolo.valor_glosa))
        if len(protocolo.guias) > 100:  # guiasDoLote maxOccurs=100
            raise ValueError(f"protocolo {protocolo.numero_protocolo} com mais de 100 guias")
        for guia in protocolo.guias:
            dst = _el(rel, "guiasDoLote")
            _numeros_guia(dst, guia, senha=True)
            _el(dst, "tipoPagamento", "2" if guia.recurso else "1")
            _el(dst, "valorProcessadoGuia", _decimal(guia.valor_processado))
            _el(dst, "valorLiberadoGuia", _decimal(guia.valor_liberado))
            _el(dst, "valorGlosaGuia", _decimal(guia.valor_glosa))
    brutos = _el(out, "totaisBrutosPorData")
    for name, attr in _TOTAIS_POR_DATA:
        _el(brutos, name, _decimal(pagamento.total(attr)))
    if pagamento.debitos_creditos:
        lista = _el(out, "debitosCreditosPorData")
        for item in pagamento.debitos_creditos:
            _desconto(_el(lista, "debitosCreditos"), ctx, item)
    liquidos = _el(out, "totaisLiquidosPorData")
    _el(liquidos, "totalDebitosPorData", _decimal(pagamento.debitos))
    _el(liquidos, "totalCreditosPorData", _decimal(pagamento.creditos))
    _el(liquidos, "liquidoPorData", _decimal(pagamento.liquido))


def demonstrativo_odontologia(ctx: ReplyContext, *, numero_demonstrativo: str, operadora: Operadora,
                              prestador: Prestador, pagamentos: Sequence[PagamentoPorData],
                              debitos_creditos: Sequence[DebitoCredito] = (),
                              periodo: tuple[date, date] | None = None) -> etree._Element:
    """demonstrativoRetornoWS/…/demonstrativoPagamentoOdonto (cto_demonstrativoOdontologia,
    dm_tipoDemonstrativo 3). Per item: informado, processado, glosa, franquia, liberado and glosa
    codes; totals per guide, protocol, date and demonstrativo. ``periodo`` (periodoProc) defaults
    to the first protocol's sending date .. the last payment date.
    """
    if not pagamentos:
        raise ValueError("demonstrativo sem pagamentos")
    root, body = _response(ctx, "demonstrativoRetornoWS", "demonstrativoRetorno",
                           r.TIPO_TRANSACAO_DEMONSTRATIVO["3"])
    dem = _el(body, "demonstrativoPagamentoOdonto")
    cab = _el(dem, "cabecalhoDemonstrativoOdonto")
    _el(cab, "registroANS", ctx.registro_ans)
    _el(cab, "numeroDemonstrativo", _texto("numeroDemonstrativo", numero_demonstrativo, 12))
    _el(cab, "nomeOperadora", _cut(operadora.nome, 70))
    _el(cab, "cnpjOper", _cnpj(operadora.cnpj))
    inicio, fim = periodo or (min(p.data_envio for pg in pagamentos for p in pg.protocolos),
                              max(pg.data_pagamento for pg in pagamentos))
    proc = _el(cab, "periodoProc")
    _el(proc, "datainicio", _data(inicio))
    _el(proc, "datafim", _data(fim))
    dados = _el(dem, "dadosPrestador")
    _el(dados, "codigoPrestador", _texto("codigoPrestador", prestador.codigo_na_operadora, 14))
    documento = _el(dados, "cpfCNPJContratado")
    if len(prestador.documento) == 11:
        _el(documento, "cpfContratado", prestador.documento)
    else:
        _el(documento, "cnpjPrestador", _cnpj(prestador.documento))
    for pagamento in pagamentos:
        _pagamento_odonto(_el(dem, "dadosPagamentoPorData"), ctx, pagamento)
    brutos = _el(dem, "totaisBrutoDemonstrativo")
    for name, attr in _TOTAIS_ODONTO_DEMONSTRATIVO:
        _el(brutos, name, _decimal(_sum(p.total(attr) for p in pagamentos)))
    if debitos_creditos:
        lista = _el(dem, "debCredDemonstrativo")
        for item in debitos_creditos:
            _desconto(_el(lista, "descontos"), ctx, item)
    debitos, creditos, liquido = _liquido(pagamentos, debitos_creditos)
    _el(dem, "totalDebitosDemonstativo", _decimal(debitos))
    _el(dem, "totalCreditosDemonstrativo", _decimal(creditos))
    _el(dem, "valorRecebidoDemonstrativo", _decimal(liquido))
    return _finish(root)


_TOTAIS_DEMONSTRATIVO = (
    ("valorInformadoBruto", "valor_informado"), ("valorProcessadoBruto", "valor_processado"),
    ("valorLiberadoBruto", "valor_liberado"), ("valorGlosaBruto", "valor_glosa"))
_TOTAIS_POR_DATA = (
    ("totalInformadoPorData", "valor_informado"), ("totalProcessadoPorData", "valor_processado"),
    ("totaLiberadoPorData", "valor_liberado"), ("totalGlosaPorData", "valor_glosa"))
# (element, ProtocoloSituacao/GuiaAnalisada attribute), in XSD order; the names (typos included)
# are the XSD's.
_TOTAIS_ODONTO_GUIA = (
    ("valorTotalInformadoGuia", "valor_informado"), ("valorTotalProcessadoGuia", "valor_processado"),
    ("valorTotalGlosaGuia", "valor_glosa"), ("valorTotalFranquiaGuia", "valor_franquia"),
    ("valorTotalLiberadoGuia", "valor_liberado"))
_TOTAIS_ODONTO_PROTOCOLO = tuple((name.replace("Guia", "PorProtocolo"), attr)
                                 for name, attr in _TOTAIS_ODONTO_GUIA)
_TOTAIS_ODONTO_DATA = (
    ("valorBrutonformadoPorData", "valor_informado"), ("valorBrutoProcessadoPorData", "valor_processado"),
    ("valorBrutoGlosaPorData", "valor_glosa"), ("valorBrutoFranquiaPorData", "valor_franquia"),
    ("valorBrutoLiberadoPorData", "valor_liberado"))
_TOTAIS_ODONTO_DEMONSTRATIVO = (("valorInformadoPorDemonstrativoData", "valor_informado"),
                                ("valorlProcessadoPorDemonstrativo", "valor_processado"),
                                ("valorlGlosaPorDemonstrativo", "valor_glosa"),
                                ("valoFranquiaPorDemonstrativo", "valor_franquia"),
                                ("valorLiberadoPorDemonstrativo", "valor_liberado"))


def _pagamento_odonto(out: etree._Element, ctx: ReplyContext, pagamento: PagamentoPorData) -> None:
    dados = _el(out, "dadosPagamento")
    _el(dados, "dataPagamento", _data(pagamento.data_pagamento))
    _conta(dados, pagamento.conta, "conta")
    for protocolo in pagamento.protocolos:
        dst = _el(out, "protocolos")
        _el(dst, "numeroLote", _texto("numeroLote", protocolo.numero_lote, 12))
        _el(dst, "numeroProtocolo", _texto("numeroProtocolo", protocolo.numero_protocolo, 12))
        for guia in protocolo.guias:
            _guia_odonto_paga(_el(dst, "dadosPagamentoGuia"), ctx, guia)
        totais = _el(dst, "totaisPorProtocolo")
        for name, attr in _TOTAIS_ODONTO_PROTOCOLO:
            _el(totais, name, _decimal(getattr(protocolo, attr)))
    totais = _el(out, "totaisPorData")
    for name, attr in _TOTAIS_ODONTO_DATA:
        _el(totais, name, _decimal(pagamento.total(attr)))
    if pagamento.debitos_creditos:
        lista = _el(out, "debCredPorDataPagamento")
        for item in pagamento.debitos_creditos:
            _desconto(_el(lista, "descontos"), ctx, item)
    liquido = _el(out, "totalLiquidoPorData")
    _el(liquido, "valorTotalDebitosPorData", _decimal(pagamento.debitos))
    _el(liquido, "valorTotalCreditosPorData", _decimal(pagamento.creditos))
    _el(liquido, "valorFinalAReceberPorData", _decimal(pagamento.liquido))


def _guia_odonto_paga(out: etree._Element, ctx: ReplyContext, guia: GuiaAnalisada) -> None:
    # Item values: st_decimal7-2 in 4.01.00 (10-2 later) except valorLiberado, 7-2 in all.
    largura = 7 if ctx.version == "4.01.00" else 10
    _numeros_guia(out, guia, senha=False)
    _el(out, "recurso", _sim_nao(guia.recurso))
    _el(out, "nomeExecutante", _cut(guia.nome_executante, 70))
    _el(out, "carteiraBeneficiario", _texto("numeroCarteira", guia.numero_carteira, 20))
    for posicao, item in enumerate(guia.itens, 1):
        dst = _el(out, "dadosPagamento")
        _el(dst, "sequencialItem", _sequencial(item.sequencial or posicao))
        _procedimento(dst, "procedimento", item.procedimento)
        _dente(dst, item.dente, item.regiao, item.face, face_pattern=False)
        _el(dst, "dataRealizacao", _data(item.data_realizacao or guia.data_inicio))
        _el(dst, "qtdProc", _qtd_proc(item.quantidade))
        _el(dst, "valorInformado", _decimal(item.valor_informado, largura))
        _el(dst, "valorProcessado", _decimal(item.processado, largura))
        _el(dst, "valorGlosaEstorno", _decimal(item.valor_glosa, largura))
        _el(dst, "valorFranquia", _decimal(item.valor_franquia, largura))
        _el(dst, "valorLiberado", _decimal(item.valor_liberado, 7))
        for glosa in item.glosas:
            _el(dst, "codigosGlosa", _codigo(ctx, glosa.codigo))
    largura = 8 if ctx.version == "4.01.00" else 10
    for name, attr in _TOTAIS_ODONTO_GUIA:
        _el(out, name, _decimal(getattr(guia, attr), largura))


def _cabecalho_demonstrativo(parent: etree._Element, ctx: ReplyContext, numero: str, operadora: Operadora,
                             data_emissao: date | None) -> None:
    """ct_demonstrativoCabecalho."""
    cab = _el(parent, "cabecalhoDemonstrativo")
    _el(cab, "registroANS", ctx.registro_ans)
    _el(cab, "numeroDemonstrativo", _texto("numeroDemonstrativo", numero, 20))
    _el(cab, "nomeOperadora", _cut(operadora.nome, 70))
    _el(cab, "numeroCNPJ", _cnpj(operadora.cnpj))
    _el(cab, "dataEmissao", _data(data_emissao or ctx.now.date()))


def _conta(parent: etree._Element, conta: ContaBancaria | None, conta_name: str) -> None:
    if conta is None:
        return
    _el(parent, "banco", _texto("banco", conta.banco, 4))
    _el(parent, "agencia", _texto("agencia", conta.agencia, 7))
    _el(parent, conta_name, _texto("conta", conta.conta, 20))


def _desconto(out: etree._Element, ctx: ReplyContext, item: DebitoCredito) -> None:
    """ct_descontos (valorDbCr st_decimal8-2 in 4.01.00)."""
    _el(out, "indicador", "2" if item.credito else "1")
    _el(out, "tipoDebitoCredito", item.tipo)
    _el(out, "descricaoDbCr", _cut(item.descricao or DEBITO_CREDITO[item.tipo], 40))
    _el(out, "valorDbCr", _decimal(item.valor, _largura(ctx)))


def _liquido(pagamentos: Sequence[PagamentoPorData],
             extra: Sequence[DebitoCredito]) -> tuple[Decimal, Decimal, Decimal]:
    """(all debits, all credits, liberado − debits + credits) of a demonstrativo."""
    debitos = _sum(p.debitos for p in pagamentos) + _sum(_d(x.valor) for x in extra if not x.credito)
    creditos = _sum(p.creditos for p in pagamentos) + _sum(_d(x.valor) for x in extra if x.credito)
    liberado = _sum(p.total("valor_liberado") for p in pagamentos)
    return debitos, creditos, liberado - debitos + creditos


# --------------------------------------------------------------------------- elegibilidade


def resposta_elegibilidade(ctx: ReplyContext, request_root: etree._Element,
                           elegibilidade: Elegibilidade) -> etree._Element:
    """respostaElegibilidadeWS/respostaElegibilidade/reciboElegibilidade answering a
    pedidoElegibilidadeWS (echoes numeroCarteira and the beneficiary identification)."""
    pedido = _child(_check_request(request_root, "pedidoElegibilidadeWS", ctx), "pedidoElegibilidade")
    root, body = _response(ctx, "respostaElegibilidadeWS", "respostaElegibilidade")
    recibo = _el(body, "reciboElegibilidade")
    _el(recibo, "registroANS", ctx.registro_ans)
    r._copy(recibo, pedido, "numeroCarteira")
    if elegibilidade.validade_carteira is not None:
        _el(recibo, "validadeCarteira", _data(elegibilidade.validade_carteira))
    else:  # the validity the provider read on the card, if it sent one
        r._copy(recibo, pedido, "validadeCarteira")
    _el(recibo, "nomeBeneficiario", _cut(elegibilidade.nome_beneficiario, 70))
    if elegibilidade.nome_social:
        _el(recibo, "nomeSocialBeneficiario", _cut(elegibilidade.nome_social, 70))
    r._copy(recibo, pedido, "tipoIdent", "identificadorBeneficiario")
    _el(recibo, "respostaSolicitacao", _sim_nao(elegibilidade.elegivel))
    if elegibilidade.motivos:
        motivos = _el(recibo, "motivosNegativa")
        for motivo in elegibilidade.motivos:
            _motivo(_el(motivos, "motivoNegativa"), ctx, motivo)
    return _finish(root)


# --------------------------------------------------------------------------- autorização


def ler_solicitacao(request_root: etree._Element) -> SolicitacaoAutorizacao:
    """The content of a schema-valid solicitacaoProcedimentoWS (any of its four kinds)."""
    body = _child(request_root, "solicitacaoProcedimento")
    guia = next(body.iterchildren(etree.Element))
    tipo = etree.QName(guia).localname
    text = _text_of(guia)
    if tipo == "solicitacaoOdontologia":
        solicitados = guia.findall(f"{_A}procedimentosSolicitados")
        procs = tuple(_proc_odonto(i, p) for i, p in enumerate(solicitados, 1))
        return SolicitacaoAutorizacao(tipo, text("numeroGuiaPrestador"), text("numeroCarteira"), procs,
                                      text("atendimentoRN") == "S")
    numero = text("cabecalhoSolicitacao/numeroGuiaPrestador" if tipo == "solicitacaoSP-SADT"
                  else "numeroGuiaPrestador")
    lista = "procedimentosAdicionais" if tipo == "solicitacaoProrrogacao" else "procedimentosSolicitados"
    procs = tuple(
        ProcedimentoSolicitado(i, _procedimento_de(_child(p, "procedimento")),
                               int(_text_of(p)("quantidadeSolicitada")))
        for i, p in enumerate(guia.findall(f"{_A}{lista}"), 1))
    diarias = text("dadosInternacao/qtDiariasSolicitadas") or text("dadosInternacao/qtDiariasAdicionais")
    sugerida = text("dadosHospitalSolicitado/dataSugeridaInternacao")
    return SolicitacaoAutorizacao(
        tipo, numero, text("dadosBeneficiario/numeroCarteira"), procs,
        text("dadosBeneficiario/atendimentoRN") == "S", text("tipoEtapaAutorizacao") or "1",
        int(diarias) if diarias else None, date.fromisoformat(sugerida) if sugerida else None)


def autorizacao_procedimento(ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                             decisao: DecisaoAutorizacao) -> etree._Element:
    """autorizacaoProcedimentoWS answering a solicitacaoProcedimentoWS: autorizacaoServico
    (SP-SADT), autorizacaoInternacao, autorizacaoProrrogacao or autorizacaoServicoOdonto, with
    tipoTransacao RESPOSTA_SOLICITACAO (AUTORIZACAO_ODONTOLOGIA for the dental one)."""
    tipo = "AUTORIZACAO_ODONTOLOGIA" if solicitacao.odonto else None
    root, body = _response(ctx, "autorizacaoProcedimentoWS", "autorizacaoProcedimento", tipo)
    _autorizacao(body, ctx, solicitacao, decisao)
    return _finish(root)


def situacao_autorizacao(ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                         decisao: DecisaoAutorizacao) -> etree._Element:
    """situacaoAutorizacaoWS (tipoTransacao STATUS_AUTORIZACAO) answering a
    solicitacaoStatusAutorizacaoWS: the same ct_situacaoAutorizacao as the original answer,
    with the decision as it stands now."""
    root, body = _response(ctx, "situacaoAutorizacaoWS", "situacaoAutorizacao")
    _autorizacao(body, ctx, solicitacao, decisao)
    return _finish(root)


def _autorizacao(body: etree._Element, ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                 decisao: DecisaoAutorizacao) -> None:
    if solicitacao.odonto:
        _autorizacao_odonto(_el(body, "autorizacaoServicoOdonto"), ctx, solicitacao, decisao)
    elif solicitacao.tipo == "solicitacaoSP-SADT":
        _autorizacao_servico(_el(body, "autorizacaoServico"), ctx, solicitacao, decisao)
    elif solicitacao.tipo == "solicitacaoInternacao":
        out = _el(body, "autorizacaoInternacao")
        _autorizacao_servico(_el(out, "autorizacaoDosServicos"), ctx, solicitacao, decisao)
        if decisao.autorizada:
            admissao = decisao.data_provavel_admissao or solicitacao.data_sugerida_internacao
            if admissao is not None:
                _el(out, "dataProvavelAdmissao", _data(admissao))
            diarias = decisao.diarias_autorizadas or solicitacao.diarias_solicitadas
            if diarias is not None:
                _el(out, "qtdDiariasAutorizadas", _numero(diarias, 3))
            if decisao.acomodacao_autorizada:
                _el(out, "tipoAcomodacaoAutorizada", decisao.acomodacao_autorizada)
    else:
        out = _el(body, "autorizacaoProrrogacao")
        _autorizacao_servico(_el(out, "autorizacaoDosServicos"), ctx, solicitacao, decisao)
        if decisao.autorizada:
            diarias = decisao.diarias_autorizadas or solicitacao.diarias_solicitadas
            if diarias is not None:
                _el(out, "diariasAutorizadas", _numero(diarias, 3))
            if decisao.acomodacao_autorizada:
                _el(out, "acomodacaoAutorizada", decisao.acomodacao_autorizada)
        if decisao.justificativa:
            _el(out, "justificativaOperadora", _cut(decisao.justificativa, 500))


def _dados_autorizacao(parent: etree._Element, ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                       decisao: DecisaoAutorizacao) -> None:
    """ct_autorizacaoDados: senha and its validity only for an authorised request."""
    dados = _el(parent, "dadosAutorizacao")
    _el(dados, "numeroGuiaPrestador", _texto("numeroGuiaPrestador", solicitacao.numero_guia_prestador, 20))
    if decisao.numero_guia_operadora:
        _el(dados, "numeroGuiaOperadora", _texto("numeroGuiaOperadora", decisao.numero_guia_operadora, 20))
    if decisao.autorizada:
        autorizada_em = decisao.data_autorizacao or ctx.now.date()
        validade = decisao.validade_senha or autorizada_em + timedelta(days=VALIDADE_SENHA_DIAS)
        _el(dados, "dataAutorizacao", _data(autorizada_em))
        _el(dados, "senha", _texto("senha", decisao.senha, 20))
        _el(dados, "dataValidadeSenha", _data(validade))


def _autorizacao_servico(out: etree._Element, ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                         decisao: DecisaoAutorizacao) -> None:
    """ctm_autorizacaoServico."""
    _dados_autorizacao(out, ctx, solicitacao, decisao)
    _el(out, "tipoEtapaAutorizacao", solicitacao.tipo_etapa)
    beneficiario = _el(out, "dadosBeneficiario")
    _el(beneficiario, "numeroCarteira", _texto("numeroCarteira", solicitacao.numero_carteira, 20))
    _el(beneficiario, "atendimentoRN", _sim_nao(solicitacao.atendimento_rn))
    _el(out, "nomeBeneficiario", _cut(decisao.nome_beneficiario, 70))
    _el(out, "statusSolicitacao", decisao.status)
    _motivos_codigos(out, ctx, decisao.motivos)
    itens = _decisoes_itens(solicitacao, decisao)
    if itens:
        servicos = _el(out, "servicosAutorizados")
        for proc, item in itens:
            dst = _el(servicos, "servicoAutorizado")
            _el(dst, "sequencialItem", _sequencial(proc.sequencial))
            _procedimento(dst, "procedimento", proc.procedimento)
            _el(dst, "quantidadeSolicitada", _numero(proc.quantidade, 3))
            _el(dst, "quantidadeAutorizada", _numero(item.quantidade_autorizada, 3))
            if item.valor_autorizado is not None:
                _el(dst, "valorAutorizado", _decimal(item.valor_autorizado, _largura(ctx)))
            if item.motivos:
                motivos = _el(dst, "motivosNegativa")
                for motivo in item.motivos:
                    _motivo(_el(motivos, "motivoNegativa"), ctx, motivo)
    if decisao.observacao:
        _el(out, "observacao", _cut(decisao.observacao, 1000))


def _autorizacao_odonto(out: etree._Element, ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                        decisao: DecisaoAutorizacao) -> None:
    """cto_autorizacaoServico (qtdUS st_decimal8-2 in 4.01.00, 7-2 later; valorProc 8-2 / 10-2)."""
    _dados_autorizacao(out, ctx, solicitacao, decisao)
    _el(out, "numeroCarteira", _texto("numeroCarteira", solicitacao.numero_carteira, 20))
    _el(out, "nomeBeneficiario", _cut(decisao.nome_beneficiario, 70))
    _el(out, "statusSolicitacao", decisao.status)
    for proc, item in _decisoes_itens(solicitacao, decisao):
        if proc.valor is None:
            raise ValueError(f"procedimento odontológico {proc.sequencial} sem valorProc")
        dst = _el(out, "procedimentosAutorizados")
        _el(dst, "sequencialItem", _sequencial(proc.sequencial))
        _procedimento(dst, "procSolic", proc.procedimento)
        _dente(dst, proc.dente, proc.regiao, proc.face, face_pattern=False)
        _el(dst, "qtdProc", _numero(proc.quantidade, 2))
        if proc.qtd_us is not None:
            _el(dst, "qtdUS", _decimal(proc.qtd_us, 8 if ctx.version == "4.01.00" else 7))
        _el(dst, "valorProc", _decimal(proc.valor, _largura(ctx)))
        if proc.valor_franquia is not None:
            _el(dst, "valorFranquia", _decimal(proc.valor_franquia, _largura(ctx)))
        _el(dst, "aut", _sim_nao(item.quantidade_autorizada > 0))
        _motivos_codigos(dst, ctx, item.motivos)
    _motivos_codigos(out, ctx, decisao.motivos)


def _decisoes_itens(solicitacao: SolicitacaoAutorizacao,
                    decisao: DecisaoAutorizacao) -> list[tuple[ProcedimentoSolicitado, DecisaoItem]]:
    """Each requested procedure with its decision (explicit, or what the status implies)."""
    if decisao.status in _PENDENTES:
        return []
    explicitas = {i.sequencial: i for i in decisao.itens}
    unknown = set(explicitas) - {p.sequencial for p in solicitacao.procedimentos}
    if unknown:
        raise ValueError(f"decisão para procedimentos não solicitados: {sorted(unknown)}")
    out = []
    for proc in solicitacao.procedimentos:
        item = explicitas.get(proc.sequencial)
        if item is None and decisao.autorizada:
            item = DecisaoItem(proc.sequencial, proc.quantidade)
        elif item is None:
            item = DecisaoItem(proc.sequencial, 0, motivos=decisao.motivos)
        if not 0 <= item.quantidade_autorizada <= proc.quantidade:
            raise ValueError(f"quantidade autorizada fora de 0..{proc.quantidade} (item {proc.sequencial})")
        out.append((proc, item))
    if decisao.status == AUTORIZADO_PARCIALMENTE and all(
            i.quantidade_autorizada == p.quantidade for p, i in out):
        raise ValueError("autorização parcial sem procedimento negado ou reduzido")
    return out


def _motivos_codigos(parent: etree._Element, ctx: ReplyContext, motivos: Sequence[Glosa]) -> None:
    """motivosNegativa holding bare codigoGlosa codes (changed so in 4.00.00)."""
    if motivos:
        lista = _el(parent, "motivosNegativa")
        for motivo in motivos:
            _el(lista, "codigoGlosa", _codigo(ctx, motivo.codigo))


def _proc_odonto(posicao: int, element: etree._Element) -> ProcedimentoSolicitado:
    text = _text_of(element)
    dente, regiao = text("denteRegiao/codDente"), text("denteRegiao/codRegiao")
    return ProcedimentoSolicitado(
        posicao, _procedimento_de(_child(element, "procSolic")), int(text("qtdProc")),
        valor=Decimal(text("valorProc")), valor_franquia=_decimal_or_none(text("valorFranquia")),
        qtd_us=_decimal_or_none(text("qtdUS")), dente=dente or None, regiao=regiao or None,
        face=text("denteFace") or None)


# --------------------------------------------------------------------------- recurso de glosa


def ler_recurso(request_root: etree._Element) -> RecursoGlosa:
    """The content of a schema-valid loteRecursoGlosaWS, its pedidos undecided.

    Guide-level motives carry no value in the schema: the part of valorTotalRecursado not
    claimed by items is spread over them (the last takes the remainder), so the pedidos add up
    to the total sent.
    """
    lote = _child(request_root, "loteRecurso")
    recurso = next(lote.iterchildren(etree.Element))
    odonto = etree.QName(recurso).localname == "guiaRecursoGlosaOdonto"
    text = _text_of(recurso)
    opcao = _child(recurso, "opcaoRecurso")
    total = Decimal(text("valorTotalRecursado"))
    protocolo = opcao.find(f"{_A}recursoProtocolo")
    if protocolo is not None:
        ptext = _text_of(protocolo)
        pedidos: list[PedidoRecurso] = [
            PedidoRecurso(ptext("codigoGlosaProtocolo"), ptext("justificativaProtocolo"), total)]
    else:
        pedidos = [p for guia in opcao.findall(f"{_A}recursoGuia")
                   for p in (_pedidos_odonto(guia) if odonto else _pedidos_guia(guia))]
        pedidos = _reparte(pedidos, total)
    contratado = next(_child(recurso, "dadosContratado").iterchildren(etree.Element))
    return RecursoGlosa(
        odonto, text("numeroGuiaRecGlosaPrestador"), text("nomeOperadora"), text("objetoRecurso"),
        contratado.text.strip(), text("numeroLote"), text("numeroProtocolo"),
        date.fromisoformat(text("dataRecurso")), tuple(pedidos),
        text("numeroGuiaRecGlosaOperadora") or None)


def _pedidos_guia(guia: etree._Element) -> list[PedidoRecurso]:
    text = _text_of(guia)
    base = dict(numero_guia_prestador=text("numeroGuiaOrigem"),
                numero_guia_operadora=text("numeroGuiaOperadora") or None, senha=text("senha") or None)
    opcao = _child(guia, "opcaoRecursoGuia")
    pedidos = [PedidoRecurso(_text_of(c)("codGlosaGuia"), _text_of(c)("justificativaGuia"), **base)
               for c in opcao.findall(f"{_A}recursoGuiaCompleta")]
    for item in opcao.findall(f"{_A}itensGuia"):
        itext = _text_of(item)
        fim = itext("dataFim")
        pedidos.append(PedidoRecurso(
            itext("codGlosaItem"), itext("justificativaItem"), Decimal(itext("valorRecursado")), **base,
            sequencial_item=int(itext("sequencialItem")),
            data_realizacao=date.fromisoformat(itext("dataInicio")),
            data_fim=date.fromisoformat(fim) if fim else None,
            procedimento=_procedimento_de(_child(item, "procRecurso"))))
    return pedidos


def _pedidos_odonto(guia: etree._Element) -> list[PedidoRecurso]:
    text = _text_of(guia)
    base = dict(numero_guia_prestador=text("numeroGuiaPrestador"),
                numero_guia_operadora=text("numeroGuiaOperadora") or None, senha=text("senha") or None)
    procs = guia.findall(f"{_A}recursoProcedimento")
    if not procs:  # the whole guide
        return [PedidoRecurso(text("codGlosaGuia"), text("justificativaGuia"), **base)]
    pedidos = []
    for proc in procs:
        ptext = _text_of(proc)
        pedidos.append(PedidoRecurso(
            ptext("codGlosaProc"), ptext("justificativaProc"), Decimal(ptext("valorRecursado")), **base,
            sequencial_item=int(ptext("sequencialItem")),
            data_realizacao=date.fromisoformat(ptext("dataRealizacao")),
            procedimento=_procedimento_de(_child(proc, "procRecurso")), quantidade=int(ptext("quantidade")),
            dente=ptext("denteRegiao/codDente") or None, regiao=ptext("denteRegiao/codRegiao") or None,
            face=ptext("denteFace") or None))
    return pedidos


def _reparte(pedidos: list[PedidoRecurso], total: Decimal) -> list[PedidoRecurso]:
    guia = [i for i, p in enumerate(pedidos) if p.sequencial_item is None]
    if not guia:
        return pedidos
    resto = max(total - _sum(_d(p.valor_recursado) for p in pedidos), ZERO)
    parte = (resto / len(guia)).quantize(CENTAVO, rounding=ROUND_HALF_UP)
    for n, i in enumerate(guia, 1):
        valor = resto - parte * (len(guia) - 1) if n == len(guia) else parte
        pedidos[i] = replace(pedidos[i], valor_recursado=max(valor, ZERO))
    return pedidos


def situacao_protocolo_recurso(ctx: ReplyContext, situacao: SituacaoRecurso) -> etree._Element:
    """situacaoProtocoloRecursoWS answering solicitacaoStatusRecursoGlosaWS: reciboGlosa /
    reciboGlosaOdonto (the decision per protocol, guide motive or item) once analysed, else
    reciboGlosaStatus (dm_statusProtocolo of the recurso's protocol)."""
    status = _status_protocolo(ctx, situacao.status)
    root, body = _response(ctx, "situacaoProtocoloRecursoWS", "situacaoProtocoloRecurso")
    recurso = situacao.recurso
    if (recurso is not None and int(situacao.status) in STATUS_ANALISADOS
            and _NUMERICO12.fullmatch(recurso.numero_lote)):
        if not recurso.decidido:
            raise ValueError("recurso analisado com pedidos sem decisão")
        _recibo_glosa(body, ctx, recurso)
    else:
        out = _el(body, "reciboGlosaStatus")
        _el(out, "nrProtocoloRecursoGlosa", _texto("nrProtocoloRecursoGlosa", situacao.numero_protocolo, 12))
        _el(out, "dataEnvioRecurso", _data(situacao.data_envio))
        _el(out, "dataRecebimentoRecurso", _data(situacao.data_recebimento))
        _el(out, "numeroLote", _texto("numeroLote", situacao.numero_lote, 12))
        _el(out, "registroANS", ctx.registro_ans)
        _contratado(out, "dadosPrestador", ctx)
        _el(out, "nrProtocoloSituacaoRecursoGlosa",
            _texto("nrProtocoloSituacaoRecursoGlosa", situacao.numero_protocolo_situacao
                   or situacao.numero_protocolo, 12))
        _el(out, "dataSituacao", _data(situacao.data_situacao or ctx.now.date()))
        _el(out, "situacaoProtocolo", status)
    return _finish(root)


def _recibo_glosa(body: etree._Element, ctx: ReplyContext, recurso: RecursoGlosa) -> None:
    """ct_glosaRecibo / ct_glosaReciboOdonto (numeroGuiaRecGlosaOperadora sits in another place)."""
    out = _el(body, "reciboGlosaOdonto" if recurso.odonto else "reciboGlosa")
    _el(out, "registroANS", ctx.registro_ans)
    _el(out, "numeroGuiaRecGlosaPrestador",
        _texto("numeroGuiaRecGlosaPrestador", recurso.numero_guia_recurso, 20))
    operadora = recurso.numero_guia_recurso_operadora
    if operadora and not recurso.odonto:
        _el(out, "numeroGuiaRecGlosaOperadora", _texto("numeroGuiaRecGlosaOperadora", operadora, 20))
    _el(out, "nomeOperadora", _cut(recurso.nome_operadora, 70))
    if operadora and recurso.odonto:
        _el(out, "numeroGuiaRecGlosaOperadora", _texto("numeroGuiaRecGlosaOperadora", operadora, 20))
    _el(out, "objetoRecurso", recurso.objeto)
    _el(out, "codigoPrestador", _texto("codigoPrestador", recurso.codigo_prestador, 14))
    _el(out, "numeroLote", recurso.numero_lote)
    if not _NUMERICO12.fullmatch(recurso.numero_protocolo):
        raise ValueError(f"numeroProtocolo recursado não numérico: {recurso.numero_protocolo!r}")
    _el(out, "numeroProtocolo", recurso.numero_protocolo)
    opcao = _el(out, "opcaoRecurso")
    if recurso.de_protocolo:
        pedido = recurso.pedidos[0]
        dst = _el(opcao, "recursoProtocolo")
        _el(dst, "codigoGlosaProtocolo", _codigo(ctx, pedido.codigo_glosa))
        _el(dst, "justificativaProtocolo", _cut(pedido.justificativa, 500))
        _el(dst, "recursoAcatado", _sim_nao(bool(pedido.acatado)))
        if not recurso.odonto and not pedido.acatado and pedido.justificativa_operadora:
            _el(dst, "justificativaOPSnaoAcatadoProt", _cut(pedido.justificativa_operadora, 500))
    elif recurso.odonto:
        _respostas_odonto(opcao, ctx, recurso.pedidos)
    else:
        for pedido in recurso.pedidos:
            _resposta_guia(_el(opcao, "recursoGuia"), ctx, pedido)
    _el(out, "dataRecurso", _data(recurso.data_recurso))
    _el(out, "valorTotalRecursado", _decimal(recurso.valor_recursado))
    _el(out, "valorTotalAcatado", _decimal(recurso.valor_acatado))


def _resposta_guia(out: etree._Element, ctx: ReplyContext, pedido: PedidoRecurso) -> None:
    """respostaGuia (a guide motive) or respostaGuiaItens (one item) of a medical recurso."""
    item = pedido.sequencial_item is not None
    dst = _el(out, "respostaGuiaItens" if item else "respostaGuia")
    _numeros_pedido(dst, pedido)
    if not item:
        _el(dst, "codGlosa", _codigo(ctx, pedido.codigo_glosa))
        _el(dst, "justificativaPrestador", _cut(pedido.justificativa, 500))
        _el(dst, "recursoGuiaAcatado", _sim_nao(bool(pedido.acatado)))
        if not pedido.acatado and pedido.justificativa_operadora:
            _el(dst, "justificativaOPSnaoAcatadoGuia", _cut(pedido.justificativa_operadora, 500))
        return
    _el(dst, "dataRealizacao", _data(_required(pedido.data_realizacao, "dataRealizacao")))
    if pedido.data_fim is not None:
        _el(dst, "dataFim", _data(pedido.data_fim))
    _el(dst, "sequencialItem", _sequencial(pedido.sequencial_item))
    _procedimento(dst, "procRecurso", _required(pedido.procedimento, "procRecurso"))
    _el(dst, "codGlosa", _codigo(ctx, pedido.codigo_glosa))
    _el(dst, "valorRecursado", _decimal(pedido.valor_recursado, _largura(ctx)))
    _el(dst, "justificativaPrestador", _cut(pedido.justificativa, 500))
    _el(dst, "valorAcatadado", _decimal(pedido.acatado_valor, _largura(ctx)))
    if pedido.justificativa_operadora:
        _el(dst, "justificativaOperadora", _cut(pedido.justificativa_operadora, 500))


def _respostas_odonto(opcao: etree._Element, ctx: ReplyContext, pedidos: Sequence[PedidoRecurso]) -> None:
    """One recursoGuia per guide motive, one per guide for its items (grouped in order)."""
    grupos: dict[tuple[str | None, bool], list[PedidoRecurso]] = {}
    for pedido in pedidos:
        chave = (pedido.numero_guia_prestador, pedido.sequencial_item is not None)
        grupos.setdefault(chave, []).append(pedido)
    for (_, itens), grupo in grupos.items():
        if not itens:
            for pedido in grupo:
                dst = _el(_el(opcao, "recursoGuia"), "respostaRecursoGuiaOdonto")
                _numeros_pedido(dst, pedido)
                _el(dst, "codGlosaGuia", _codigo(ctx, pedido.codigo_glosa))
                _el(dst, "justificativaGuia", _cut(pedido.justificativa, 500))
                _el(dst, "recursoAcatadoGuia", _sim_nao(bool(pedido.acatado)))
            continue
        dst = _el(_el(opcao, "recursoGuia"), "respostaRecursoItemOdonto")
        _numeros_pedido(dst, grupo[0])
        for pedido in grupo:
            proc = _el(dst, "recursoProcedimento")
            _el(proc, "sequencialItem", _sequencial(pedido.sequencial_item))
            _el(proc, "dataRealizacao", _data(_required(pedido.data_realizacao, "dataRealizacao")))
            _dente(proc, pedido.dente, pedido.regiao, pedido.face, face_pattern=True)
            _el(proc, "quantidade", _numero(pedido.quantidade, 2))
            _procedimento(proc, "procRecurso", _required(pedido.procedimento, "procRecurso"))
            _el(proc, "codGlosaProc", _codigo(ctx, pedido.codigo_glosa))
            _el(proc, "valorRecursado", _decimal(pedido.valor_recursado, _largura(ctx)))
            _el(proc, "justificativaPrestador", _cut(pedido.justificativa, 500))
            _el(proc, "valorAcatado", _decimal(pedido.acatado_valor, _largura(ctx)))
            if pedido.justificativa_operadora:
                _el(proc, "justificativaOperadora", _cut(pedido.justificativa_operadora, 500))


def _numeros_pedido(out: etree._Element, pedido: PedidoRecurso) -> None:
    _el(out, "numeroGuiaPrestador", _texto("numeroGuiaPrestador", pedido.numero_guia_prestador, 20))
    if pedido.numero_guia_operadora:
        _el(out, "numeroGuiaOperadora", _texto("numeroGuiaOperadora", pedido.numero_guia_operadora, 20))
    if pedido.senha:
        _el(out, "senha", _texto("senha", pedido.senha, 20))


# --------------------------------------------------------------------------- helpers


def _check_request(root: etree._Element, kind: str, ctx: ReplyContext) -> etree._Element:
    if etree.QName(root).localname != kind:
        raise ValueError(f"esperado {kind}, recebido {etree.QName(root).localname}")
    padrao = (root.findtext(f"{_A}cabecalho/{_A}Padrao") or "").strip()
    if padrao != ctx.version:
        raise ValueError(f"requisição na versão {padrao!r}, contexto na versão {ctx.version}")
    return root


def _status_protocolo(ctx: ReplyContext, status: int) -> str:
    """dm_statusProtocolo: 1..9, and 10 Bloqueio judicial from 4.02.00."""
    maximo = 9 if ctx.version == "4.01.00" else 10
    if not 1 <= int(status) <= maximo:
        raise ValueError(f"statusProtocolo {status} não existe na versão {ctx.version}")
    return str(int(status))


def _codigo(ctx: ReplyContext, codigo: str) -> str:
    if codigo not in codigos_glosa(ctx.version):
        raise ValueError(f"código {codigo!r} não está na tabela 38 (dm_tipoGlosa) da versão {ctx.version}")
    return codigo


def _motivo(out: etree._Element, ctx: ReplyContext, glosa: Glosa) -> None:
    """ct_motivoGlosa: code of the version's dm_tipoGlosa, description (st_texto500)."""
    _motivo_glosa(out, ctx, glosa.codigo, glosa.descricao)


def _contratado(parent: etree._Element, name: str, ctx: ReplyContext) -> None:
    """ct_contratadoDados named ``name``, identifying the provider as its request did."""
    kind, value = ctx.prestador
    _el(_el(parent, name), _CONTRATADO[kind], value)


def _numeros_guia(out: etree._Element, guia: GuiaAnalisada, *, senha: bool) -> None:
    _el(out, "numeroGuiaPrestador", _texto("numeroGuiaPrestador", guia.numero_guia_prestador, 20))
    if guia.numero_guia_operadora:
        _el(out, "numeroGuiaOperadora", _texto("numeroGuiaOperadora", guia.numero_guia_operadora, 20))
    if senha and guia.senha:
        _el(out, "senha", _texto("senha", guia.senha, 20))


def _procedimento(parent: etree._Element, name: str, proc: Procedimento) -> None:
    """ct_procedimentoDados (descricaoProcedimento is required: a consulta has none)."""
    out = _el(parent, name)
    _el(out, "codigoTabela", _texto("codigoTabela", proc.codigo_tabela, 2))
    _el(out, "codigoProcedimento", _texto("codigoProcedimento", proc.codigo, 10))
    _el(out, "descricaoProcedimento", _cut(proc.descricao or DESCRICAO_NAO_INFORMADA, 150))


def _procedimento_de(element: etree._Element) -> Procedimento:
    text = _text_of(element)
    return Procedimento(text("codigoTabela"), text("codigoProcedimento"),
                        text("descricaoProcedimento") or None)


def _dente(parent: etree._Element, dente: str | None, regiao: str | None, face: str | None, *,
           face_pattern: bool) -> None:
    """denteRegiao (codDente | codRegiao) and denteFace (dm_face pattern, or st_texto5)."""
    if dente or regiao:
        escolha = _el(parent, "denteRegiao")
        if dente:
            _el(escolha, "codDente", dente)
        else:
            _el(escolha, "codRegiao", regiao)
    if face:
        if face_pattern and not _FACE.fullmatch(face):
            raise ValueError(f"denteFace inválida: {face!r} (dm_face [OLMVDIP]{{1,5}})")
        _el(parent, "denteFace", _texto("denteFace", face, 5))


def _largura(ctx: ReplyContext) -> int:
    """totalDigits of the item-level values: st_decimal8-2 in 4.01.00, 10-2 from 4.02.00."""
    return 8 if ctx.version == "4.01.00" else 10


def _quantidade(value: Decimal | int) -> str:
    """st_decimal9-4."""
    quantized = Decimal(value).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    if quantized < 0 or len(str(quantized).replace(".", "")) > 9:
        raise ValueError(f"quantidade inválida: {value}")
    return str(quantized)


def _qtd_proc(value: Decimal | int) -> str:
    quantidade = Decimal(value)
    if quantidade != quantidade.to_integral_value():
        raise ValueError(f"qtdProc deve ser inteira: {value}")
    return _numero(int(quantidade), 2)


def _numero(value: int, digits: int) -> str:
    """st_numericoN: a non-negative integer of at most ``digits`` digits."""
    if not 0 <= int(value) < 10**digits:
        raise ValueError(f"número {value} excede {digits} dígitos")
    return str(int(value))


def _sequencial(value: int | None) -> str:
    return _numero(_required(value, "sequencialItem"), 4)


def _sim_nao(value: bool) -> str:
    return "S" if value else "N"


def _cut(text: str, max_length: int) -> str:
    """Free text cut to its st_textoN (names, descriptions, justifications)."""
    text = (text or "").strip()
    if not text:
        raise ValueError("texto obrigatório vazio")
    return text[:max_length]


def _cnpj(value: str) -> str:
    if len(value or "") != 14:
        raise ValueError(f"CNPJ deve ter 14 caracteres: {value!r}")
    return value


def _required(value: T | None, name: str) -> T:
    if value is None:
        raise ValueError(f"{name} obrigatório")
    return value


def _text_of(element: etree._Element) -> Callable[[str], str]:
    """``text(path)``: the stripped text at an ans: path below ``element`` ('' when absent)."""
    def text(path: str) -> str:
        found = element.find("/".join(f"{_A}{part}" for part in path.split("/")))
        return (found.text or "").strip() if found is not None else ""
    return text


def _decimal_or_none(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None
