"""What a simulated health-plan operator answers, for TISS 4.01.00, 4.02.00 and 4.03.00.

Builders in the style of :mod:`gateway.message.responses` (whose helpers, ``ReplyContext`` and
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

from gateway.message import responses as r
from gateway.message.responses import (
    CONTRATADO,
    NOME_NAO_INFORMADO,
    ReplyContext,
    ValorTotal,
    add_valor_total,
    codigos_glosa,
    el,
    finish,
    motivo_glosa,
    required_child,
    response_root,
    situacao_do_protocolo,
    sized_text,
    tiss_date,
    tiss_decimal,
)
from gateway.message.services import ANS_NS
from gateway.message.tables import STATUS_ANALISADOS

T = TypeVar("T")
_A = f"{{{ANS_NS}}}"
ZERO = Decimal("0.00")
CENTAVO = Decimal("0.01")
# dm_statusProtocolo values whose analysis (glosas, liberado) is shown; 10 exists from 4.02.00.
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
PAGAMENTO_EM_ABERTO = "1009"
CARTEIRA_VENCIDA = "1017"

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
    root, body = response_root(ctx, "situacaoProtocoloWS", "situacaoProtocolo")
    detalhe = el(situacao_do_protocolo(body, ctx), "detalheLote")
    el(detalhe, "statusProtocolo", status)
    el(detalhe, "numeroProtocolo", sized_text("numeroProtocolo", protocolo.numero_protocolo, 12))
    el(detalhe, "numeroLote", sized_text("numeroLote", protocolo.numero_lote, 12))
    el(detalhe, "dataEnvioLote", tiss_date(protocolo.data_envio))
    add_valor_total(el(detalhe, "valorTotalLote"), protocolo.valores())
    guias = el(detalhe, "guiasTISS")
    for guia in protocolo.guias:
        wrapper = el(guias, "guiasOdonto" if guia.odonto else "guiasMedicas")
        _guia_status(el(wrapper, "guias"), ctx, guia, protocolo.analisado)
    return finish(root)


def _guia_status(out: etree._Element, ctx: ReplyContext, guia: GuiaAnalisada, analisado: bool) -> None:
    """ct_guiaDados / ct_guiaDadosOdonto."""
    _numeros_guia(out, guia, senha=False)
    beneficiario = out if guia.odonto else el(out, "dadosBeneficiario")
    el(beneficiario, "numeroCarteira", sized_text("numeroCarteira", guia.numero_carteira, 20))
    el(beneficiario, "atendimentoRN", _sim_nao(guia.atendimento_rn))
    if not guia.odonto:
        el(out, "dataRealizacao", tiss_date(guia.data_inicio))
    if analisado:
        add_valor_total(el(out, "vlInformadoGuia"),
                     ValorTotal(guia.valor_processado, guia.valor_glosa, guia.valor_liberado))
    else:
        add_valor_total(el(out, "vlInformadoGuia"), ValorTotal.recebido(guia.valor_informado))
    if analisado and guia.glosas:
        glosa = el(out, "glosaGuia")
        for motivo in guia.glosas:
            _motivo(el(glosa, "motivoGlosa"), ctx, motivo)
    realizados = el(out, "procedimentosRealizados")
    for posicao, item in enumerate(guia.itens, 1):
        proc = el(realizados, "procedimentoRealizado")
        if guia.odonto:
            _item_executado_odonto(proc, ctx, item, posicao, guia)
        else:
            _item_executado(proc, ctx, item, posicao, guia)
        if analisado and item.glosas:
            glosas = el(proc, "glosasProcedimento")
            for motivo in item.glosas:
                _motivo(el(glosas, "motivoGlosa"), ctx, motivo)
            el(glosas, "valorGlosaProcedimento", tiss_decimal(item.valor_glosa))


def _item_executado(out: etree._Element, ctx: ReplyContext, item: ItemAnalisado, posicao: int,
                    guia: GuiaAnalisada) -> None:
    """ct_procedimentoExecutado (valorUnitario/valorTotal st_decimal8-2 in 4.01.00)."""
    el(out, "sequencialItem", _sequencial(item.sequencial or posicao))
    el(out, "dataExecucao", tiss_date(item.data_realizacao or guia.data_inicio))
    _procedimento(out, "procedimento", item.procedimento)
    el(out, "quantidadeExecutada", _quantidade(item.quantidade))
    unitario = item.valor_unitario
    if unitario is None:
        quantidade = _d(item.quantidade)
        unitario = _d(item.valor_informado) / quantidade if quantidade else _d(item.valor_informado)
    el(out, "valorUnitario", tiss_decimal(unitario, _largura(ctx)))
    el(out, "valorTotal", tiss_decimal(item.valor_informado, _largura(ctx)))


def _item_executado_odonto(out: etree._Element, ctx: ReplyContext, item: ItemAnalisado, posicao: int,
                           guia: GuiaAnalisada) -> None:
    """ct_procedimentoExecutadoOdonto (valorProc/valorFranquia st_decimal8-2 in 4.01.00)."""
    el(out, "sequencialItem", _sequencial(item.sequencial or posicao))
    _procedimento(out, "procedimento", item.procedimento)
    _dente(out, item.dente, item.regiao, item.face, face_pattern=True)
    el(out, "qtdProc", _qtd_proc(item.quantidade))
    el(out, "valorProc", tiss_decimal(item.valor_informado, _largura(ctx)))
    if item.valor_franquia:
        el(out, "valorFranquia", tiss_decimal(item.valor_franquia, _largura(ctx)))
    el(out, "dataRealizacao", tiss_date(item.data_realizacao or guia.data_inicio))


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
    root, body = response_root(ctx, "demonstrativoRetornoWS", "demonstrativoRetorno",
                           r.TIPO_TRANSACAO_DEMONSTRATIVO["2"])
    dem = el(body, "demonstrativoAnaliseConta")
    _cabecalho_demonstrativo(dem, ctx, numero_demonstrativo, operadora, data_emissao)
    dados = el(dem, "dadosPrestador")
    _contratado(dados, "dadosContratado", ctx)
    el(dados, "CNES", sized_text("CNES", prestador.cnes, 7))
    conta = el(dem, "dadosConta")
    totais = [ZERO, ZERO, ZERO, ZERO]
    for protocolo in protocolos:
        valores = _dados_protocolo(el(conta, "dadosProtocolo"), ctx, protocolo)
        totais = [a + b for a, b in zip(totais, valores, strict=True)]
    for name, value in zip(("valorInformadoGeral", "valorProcessadoGeral", "valorLiberadoGeral",
                            "valorGlosaGeral"), totais, strict=True):
        el(dem, name, tiss_decimal(value))
    return finish(root)


def _dados_protocolo(out: etree._Element, ctx: ReplyContext, protocolo: ProtocoloSituacao) -> list[Decimal]:
    """ct_contaMedicaResumo; returns (informado, processado, liberado, glosa) as written."""
    status = _status_protocolo(ctx, protocolo.status)
    el(out, "numeroLotePrestador", sized_text("numeroLote", protocolo.numero_lote, 12))
    el(out, "numeroProtocolo", sized_text("numeroProtocolo", protocolo.numero_protocolo, 12))
    el(out, "dataProtocolo", tiss_date(protocolo.data_envio))
    if protocolo.analisado and protocolo.glosa is not None:
        _motivo(el(out, "GlosaProtocolo"), ctx, protocolo.glosa)
    el(out, "situacaoProtocolo", status)
    if protocolo.analisado:
        for guia in protocolo.guias:
            _relacao_guia(el(out, "relacaoGuias"), ctx, guia, guia.status or protocolo.status)
        valores = [protocolo.valor_informado, protocolo.valor_processado, protocolo.valor_liberado,
                   protocolo.valor_glosa]
    else:  # nothing processed yet
        valores = [protocolo.valor_informado, ZERO, ZERO, ZERO]
    for name, value in zip(("valorInformadoProtocolo", "valorProcessadoProtocolo",
                            "valorLiberadoProtocolo", "valorGlosaProtocolo"), valores, strict=True):
        el(out, name, tiss_decimal(value))
    return valores


def _relacao_guia(out: etree._Element, ctx: ReplyContext, guia: GuiaAnalisada, status: int) -> None:
    _numeros_guia(out, guia, senha=True)
    el(out, "numeroCarteira", sized_text("numeroCarteira", guia.numero_carteira, 20))
    el(out, "dataInicioFat", tiss_date(guia.data_inicio))
    if guia.data_fim is not None:
        el(out, "dataFimFat", tiss_date(guia.data_fim))
    for motivo in guia.glosas:
        _motivo(el(out, "motivoGlosaGuia"), ctx, motivo)
    el(out, "situacaoGuia", _status_protocolo(ctx, status))
    for posicao, item in enumerate(guia.itens, 1):
        detalhe = el(out, "detalhesGuia")
        el(detalhe, "sequencialItem", _sequencial(item.sequencial or posicao))
        el(detalhe, "dataRealizacao", tiss_date(item.data_realizacao or guia.data_inicio))
        _procedimento(detalhe, "procedimento", item.procedimento)
        if item.grau_participacao:
            el(detalhe, "grauParticipacao", item.grau_participacao)
        el(detalhe, "valorInformado", tiss_decimal(item.valor_informado, _largura(ctx)))
        el(detalhe, "qtdExecutada", _quantidade(item.quantidade))
        el(detalhe, "valorProcessado", tiss_decimal(item.processado, _largura(ctx)))
        el(detalhe, "valorLiberado", tiss_decimal(item.valor_liberado, _largura(ctx)))
        for glosa in item.glosas:
            relacao = el(detalhe, "relacaoGlosa")
            el(relacao, "valorGlosa", tiss_decimal(glosa.valor, _largura(ctx)))
            el(relacao, "tipoGlosa", _codigo(ctx, glosa.codigo))
    el(out, "valorInformadoGuia", tiss_decimal(guia.valor_informado))
    el(out, "valorProcessadoGuia", tiss_decimal(guia.valor_processado))
    el(out, "valorLiberadoGuia", tiss_decimal(guia.valor_liberado))
    el(out, "valorGlosaGuia", tiss_decimal(guia.valor_glosa))


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
    root, body = response_root(ctx, "demonstrativoRetornoWS", "demonstrativoRetorno",
                           r.TIPO_TRANSACAO_DEMONSTRATIVO["1"])
    dem = el(body, "demonstrativoPagamento")
    _cabecalho_demonstrativo(dem, ctx, numero_demonstrativo, operadora, data_emissao)
    contratado = el(dem, "dadosContratado")
    _contratado(contratado, "dadosPrestador", ctx)
    el(contratado, "CNES", sized_text("CNES", prestador.cnes, 7))
    lista = el(dem, "pagamentos")
    for pagamento in pagamentos:
        _pagamento_por_data(el(lista, "pagamentosPorData"), ctx, pagamento)
    totais = el(dem, "totaisDemonstrativo")
    brutos = el(totais, "totaisBrutosDemonstrativo")
    for name, attr in _TOTAIS_DEMONSTRATIVO:
        el(brutos, name, tiss_decimal(_sum(p.total(attr) for p in pagamentos)))
    for item in debitos_creditos:
        _desconto(el(totais, "debitosCreditosDemonstrativo"), ctx, item)
    debitos, creditos, liquido = _liquido(pagamentos, debitos_creditos)
    liquidos = el(totais, "totaisLiquidosDemonstrativo")
    el(liquidos, "totalDebitosDemonstrativo", tiss_decimal(debitos))
    el(liquidos, "totalCreditosdemonstrativo", tiss_decimal(creditos))
    el(liquidos, "valorLiberadoDemonstrativo", tiss_decimal(liquido))
    return finish(root)


def _pagamento_por_data(out: etree._Element, ctx: ReplyContext, pagamento: PagamentoPorData) -> None:
    dados = el(out, "dadosPagamento")
    el(dados, "dataPagamento", tiss_date(pagamento.data_pagamento))
    el(dados, "formaPagamento", pagamento.forma)
    _conta(dados, pagamento.conta, "nrContaCheque")
    resumo = el(out, "dadosResumo")
    for protocolo in pagamento.protocolos:
        rel = el(resumo, "relacaoProtocolos")
        el(rel, "dataProtocolo", tiss_date(protocolo.data_envio))
        el(rel, "numeroProtocolo", sized_text("numeroProtocolo", protocolo.numero_protocolo, 12))
        el(rel, "numeroLote", sized_text("numeroLote", protocolo.numero_lote, 12))
        el(rel, "valorInformado", tiss_decimal(protocolo.valor_informado))
        el(rel, "valorProcessado", tiss_decimal(protocolo.valor_processado))
        el(rel, "valorLiberado", tiss_decimal(protocolo.valor_liberado))
        el(rel, "valorGlosa", tiss_decimal(protocolo.valor_glosa))
        if len(protocolo.guias) > 100:  # guiasDoLote maxOccurs=100
            raise ValueError(f"protocolo {protocolo.numero_protocolo} com mais de 100 guias")
        for guia in protocolo.guias:
            dst = el(rel, "guiasDoLote")
            _numeros_guia(dst, guia, senha=True)
            el(dst, "tipoPagamento", "2" if guia.recurso else "1")
            el(dst, "valorProcessadoGuia", tiss_decimal(guia.valor_processado))
            el(dst, "valorLiberadoGuia", tiss_decimal(guia.valor_liberado))
            el(dst, "valorGlosaGuia", tiss_decimal(guia.valor_glosa))
    brutos = el(out, "totaisBrutosPorData")
    for name, attr in _TOTAIS_POR_DATA:
        el(brutos, name, tiss_decimal(pagamento.total(attr)))
    if pagamento.debitos_creditos:
        lista = el(out, "debitosCreditosPorData")
        for item in pagamento.debitos_creditos:
            _desconto(el(lista, "debitosCreditos"), ctx, item)
    liquidos = el(out, "totaisLiquidosPorData")
    el(liquidos, "totalDebitosPorData", tiss_decimal(pagamento.debitos))
    el(liquidos, "totalCreditosPorData", tiss_decimal(pagamento.creditos))
    el(liquidos, "liquidoPorData", tiss_decimal(pagamento.liquido))


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
    root, body = response_root(ctx, "demonstrativoRetornoWS", "demonstrativoRetorno",
                           r.TIPO_TRANSACAO_DEMONSTRATIVO["3"])
    dem = el(body, "demonstrativoPagamentoOdonto")
    cab = el(dem, "cabecalhoDemonstrativoOdonto")
    el(cab, "registroANS", ctx.registro_ans)
    el(cab, "numeroDemonstrativo", sized_text("numeroDemonstrativo", numero_demonstrativo, 12))
    el(cab, "nomeOperadora", _cut(operadora.nome, 70))
    el(cab, "cnpjOper", _cnpj(operadora.cnpj))
    inicio, fim = periodo or (min(p.data_envio for pg in pagamentos for p in pg.protocolos),
                              max(pg.data_pagamento for pg in pagamentos))
    proc = el(cab, "periodoProc")
    el(proc, "datainicio", tiss_date(inicio))
    el(proc, "datafim", tiss_date(fim))
    dados = el(dem, "dadosPrestador")
    el(dados, "codigoPrestador", sized_text("codigoPrestador", prestador.codigo_na_operadora, 14))
    documento = el(dados, "cpfCNPJContratado")
    if len(prestador.documento) == 11:
        el(documento, "cpfContratado", prestador.documento)
    else:
        el(documento, "cnpjPrestador", _cnpj(prestador.documento))
    for pagamento in pagamentos:
        _pagamento_odonto(el(dem, "dadosPagamentoPorData"), ctx, pagamento)
    brutos = el(dem, "totaisBrutoDemonstrativo")
    for name, attr in _TOTAIS_ODONTO_DEMONSTRATIVO:
        el(brutos, name, tiss_decimal(_sum(p.total(attr) for p in pagamentos)))
    if debitos_creditos:
        lista = el(dem, "debCredDemonstrativo")
        for item in debitos_creditos:
            _desconto(el(lista, "descontos"), ctx, item)
    debitos, creditos, liquido = _liquido(pagamentos, debitos_creditos)
    el(dem, "totalDebitosDemonstativo", tiss_decimal(debitos))
    el(dem, "totalCreditosDemonstrativo", tiss_decimal(creditos))
    el(dem, "valorRecebidoDemonstrativo", tiss_decimal(liquido))
    return finish(root)


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
    dados = el(out, "dadosPagamento")
    el(dados, "dataPagamento", tiss_date(pagamento.data_pagamento))
    _conta(dados, pagamento.conta, "conta")
    for protocolo in pagamento.protocolos:
        dst = el(out, "protocolos")
        el(dst, "numeroLote", sized_text("numeroLote", protocolo.numero_lote, 12))
        el(dst, "numeroProtocolo", sized_text("numeroProtocolo", protocolo.numero_protocolo, 12))
        for guia in protocolo.guias:
            _guia_odonto_paga(el(dst, "dadosPagamentoGuia"), ctx, guia)
        totais = el(dst, "totaisPorProtocolo")
        for name, attr in _TOTAIS_ODONTO_PROTOCOLO:
            el(totais, name, tiss_decimal(getattr(protocolo, attr)))
    totais = el(out, "totaisPorData")
    for name, attr in _TOTAIS_ODONTO_DATA:
        el(totais, name, tiss_decimal(pagamento.total(attr)))
    if pagamento.debitos_creditos:
        lista = el(out, "debCredPorDataPagamento")
        for item in pagamento.debitos_creditos:
            _desconto(el(lista, "descontos"), ctx, item)
    liquido = el(out, "totalLiquidoPorData")
    el(liquido, "valorTotalDebitosPorData", tiss_decimal(pagamento.debitos))
    el(liquido, "valorTotalCreditosPorData", tiss_decimal(pagamento.creditos))
    el(liquido, "valorFinalAReceberPorData", tiss_decimal(pagamento.liquido))


def _guia_odonto_paga(out: etree._Element, ctx: ReplyContext, guia: GuiaAnalisada) -> None:
    # Item values: st_decimal7-2 in 4.01.00 (10-2 later) except valorLiberado, 7-2 in all.
    largura = 7 if ctx.version == "4.01.00" else 10
    _numeros_guia(out, guia, senha=False)
    el(out, "recurso", _sim_nao(guia.recurso))
    el(out, "nomeExecutante", _cut(guia.nome_executante, 70))
    el(out, "carteiraBeneficiario", sized_text("numeroCarteira", guia.numero_carteira, 20))
    for posicao, item in enumerate(guia.itens, 1):
        dst = el(out, "dadosPagamento")
        el(dst, "sequencialItem", _sequencial(item.sequencial or posicao))
        _procedimento(dst, "procedimento", item.procedimento)
        _dente(dst, item.dente, item.regiao, item.face, face_pattern=False)
        el(dst, "dataRealizacao", tiss_date(item.data_realizacao or guia.data_inicio))
        el(dst, "qtdProc", _qtd_proc(item.quantidade))
        el(dst, "valorInformado", tiss_decimal(item.valor_informado, largura))
        el(dst, "valorProcessado", tiss_decimal(item.processado, largura))
        el(dst, "valorGlosaEstorno", tiss_decimal(item.valor_glosa, largura))
        el(dst, "valorFranquia", tiss_decimal(item.valor_franquia, largura))
        el(dst, "valorLiberado", tiss_decimal(item.valor_liberado, 7))
        for glosa in item.glosas:
            el(dst, "codigosGlosa", _codigo(ctx, glosa.codigo))
    largura = 8 if ctx.version == "4.01.00" else 10
    for name, attr in _TOTAIS_ODONTO_GUIA:
        el(out, name, tiss_decimal(getattr(guia, attr), largura))


def _cabecalho_demonstrativo(parent: etree._Element, ctx: ReplyContext, numero: str, operadora: Operadora,
                             data_emissao: date | None) -> None:
    """ct_demonstrativoCabecalho."""
    cab = el(parent, "cabecalhoDemonstrativo")
    el(cab, "registroANS", ctx.registro_ans)
    el(cab, "numeroDemonstrativo", sized_text("numeroDemonstrativo", numero, 20))
    el(cab, "nomeOperadora", _cut(operadora.nome, 70))
    el(cab, "numeroCNPJ", _cnpj(operadora.cnpj))
    el(cab, "dataEmissao", tiss_date(data_emissao or ctx.now.date()))


def _conta(parent: etree._Element, conta: ContaBancaria | None, conta_name: str) -> None:
    if conta is None:
        return
    el(parent, "banco", sized_text("banco", conta.banco, 4))
    el(parent, "agencia", sized_text("agencia", conta.agencia, 7))
    el(parent, conta_name, sized_text("conta", conta.conta, 20))


def _desconto(out: etree._Element, ctx: ReplyContext, item: DebitoCredito) -> None:
    """ct_descontos (valorDbCr st_decimal8-2 in 4.01.00)."""
    el(out, "indicador", "2" if item.credito else "1")
    el(out, "tipoDebitoCredito", item.tipo)
    el(out, "descricaoDbCr", _cut(item.descricao or DEBITO_CREDITO[item.tipo], 40))
    el(out, "valorDbCr", tiss_decimal(item.valor, _largura(ctx)))


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
    pedido = required_child(_check_request(request_root, "pedidoElegibilidadeWS", ctx), "pedidoElegibilidade")
    root, body = response_root(ctx, "respostaElegibilidadeWS", "respostaElegibilidade")
    recibo = el(body, "reciboElegibilidade")
    el(recibo, "registroANS", ctx.registro_ans)
    r._copy(recibo, pedido, "numeroCarteira")
    if elegibilidade.validade_carteira is not None:
        el(recibo, "validadeCarteira", tiss_date(elegibilidade.validade_carteira))
    else:  # the validity the provider read on the card, if it sent one
        r._copy(recibo, pedido, "validadeCarteira")
    el(recibo, "nomeBeneficiario", _cut(elegibilidade.nome_beneficiario, 70))
    if elegibilidade.nome_social:
        el(recibo, "nomeSocialBeneficiario", _cut(elegibilidade.nome_social, 70))
    r._copy(recibo, pedido, "tipoIdent", "identificadorBeneficiario")
    el(recibo, "respostaSolicitacao", _sim_nao(elegibilidade.elegivel))
    if elegibilidade.motivos:
        motivos = el(recibo, "motivosNegativa")
        for motivo in elegibilidade.motivos:
            _motivo(el(motivos, "motivoNegativa"), ctx, motivo)
    return finish(root)


# --------------------------------------------------------------------------- autorização


def ler_solicitacao(request_root: etree._Element) -> SolicitacaoAutorizacao:
    """The content of a schema-valid solicitacaoProcedimentoWS (any of its four kinds)."""
    body = required_child(request_root, "solicitacaoProcedimento")
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
        ProcedimentoSolicitado(i, _procedimento_de(required_child(p, "procedimento")),
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
    root, body = response_root(ctx, "autorizacaoProcedimentoWS", "autorizacaoProcedimento", tipo)
    _autorizacao(body, ctx, solicitacao, decisao)
    return finish(root)


def situacao_autorizacao(ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                         decisao: DecisaoAutorizacao) -> etree._Element:
    """situacaoAutorizacaoWS (tipoTransacao STATUS_AUTORIZACAO) answering a
    solicitacaoStatusAutorizacaoWS: the same ct_situacaoAutorizacao as the original answer,
    with the decision as it stands now."""
    root, body = response_root(ctx, "situacaoAutorizacaoWS", "situacaoAutorizacao")
    _autorizacao(body, ctx, solicitacao, decisao)
    return finish(root)


def _autorizacao(body: etree._Element, ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                 decisao: DecisaoAutorizacao) -> None:
    if solicitacao.odonto:
        _autorizacao_odonto(el(body, "autorizacaoServicoOdonto"), ctx, solicitacao, decisao)
    elif solicitacao.tipo == "solicitacaoSP-SADT":
        _autorizacao_servico(el(body, "autorizacaoServico"), ctx, solicitacao, decisao)
    elif solicitacao.tipo == "solicitacaoInternacao":
        out = el(body, "autorizacaoInternacao")
        _autorizacao_servico(el(out, "autorizacaoDosServicos"), ctx, solicitacao, decisao)
        if decisao.autorizada:
            admissao = decisao.data_provavel_admissao or solicitacao.data_sugerida_internacao
            if admissao is not None:
                el(out, "dataProvavelAdmissao", tiss_date(admissao))
            diarias = decisao.diarias_autorizadas or solicitacao.diarias_solicitadas
            if diarias is not None:
                el(out, "qtdDiariasAutorizadas", _numero(diarias, 3))
            if decisao.acomodacao_autorizada:
                el(out, "tipoAcomodacaoAutorizada", decisao.acomodacao_autorizada)
    else:
        out = el(body, "autorizacaoProrrogacao")
        _autorizacao_servico(el(out, "autorizacaoDosServicos"), ctx, solicitacao, decisao)
        if decisao.autorizada:
            diarias = decisao.diarias_autorizadas or solicitacao.diarias_solicitadas
            if diarias is not None:
                el(out, "diariasAutorizadas", _numero(diarias, 3))
            if decisao.acomodacao_autorizada:
                el(out, "acomodacaoAutorizada", decisao.acomodacao_autorizada)
        if decisao.justificativa:
            el(out, "justificativaOperadora", _cut(decisao.justificativa, 500))


def _dados_autorizacao(parent: etree._Element, ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                       decisao: DecisaoAutorizacao) -> None:
    """ct_autorizacaoDados: senha and its validity only for an authorised request."""
    dados = el(parent, "dadosAutorizacao")
    el(dados, "numeroGuiaPrestador", sized_text("numeroGuiaPrestador", solicitacao.numero_guia_prestador, 20))
    if decisao.numero_guia_operadora:
        el(dados, "numeroGuiaOperadora", sized_text("numeroGuiaOperadora", decisao.numero_guia_operadora, 20))
    if decisao.autorizada:
        autorizada_em = decisao.data_autorizacao or ctx.now.date()
        validade = decisao.validade_senha or autorizada_em + timedelta(days=VALIDADE_SENHA_DIAS)
        el(dados, "dataAutorizacao", tiss_date(autorizada_em))
        el(dados, "senha", sized_text("senha", decisao.senha, 20))
        el(dados, "dataValidadeSenha", tiss_date(validade))


def _autorizacao_servico(out: etree._Element, ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                         decisao: DecisaoAutorizacao) -> None:
    """ctm_autorizacaoServico."""
    _dados_autorizacao(out, ctx, solicitacao, decisao)
    el(out, "tipoEtapaAutorizacao", solicitacao.tipo_etapa)
    beneficiario = el(out, "dadosBeneficiario")
    el(beneficiario, "numeroCarteira", sized_text("numeroCarteira", solicitacao.numero_carteira, 20))
    el(beneficiario, "atendimentoRN", _sim_nao(solicitacao.atendimento_rn))
    el(out, "nomeBeneficiario", _cut(decisao.nome_beneficiario, 70))
    el(out, "statusSolicitacao", decisao.status)
    _motivos_codigos(out, ctx, decisao.motivos)
    itens = _decisoes_itens(solicitacao, decisao)
    if itens:
        servicos = el(out, "servicosAutorizados")
        for proc, item in itens:
            dst = el(servicos, "servicoAutorizado")
            el(dst, "sequencialItem", _sequencial(proc.sequencial))
            _procedimento(dst, "procedimento", proc.procedimento)
            el(dst, "quantidadeSolicitada", _numero(proc.quantidade, 3))
            el(dst, "quantidadeAutorizada", _numero(item.quantidade_autorizada, 3))
            if item.valor_autorizado is not None:
                el(dst, "valorAutorizado", tiss_decimal(item.valor_autorizado, _largura(ctx)))
            if item.motivos:
                motivos = el(dst, "motivosNegativa")
                for motivo in item.motivos:
                    _motivo(el(motivos, "motivoNegativa"), ctx, motivo)
    if decisao.observacao:
        el(out, "observacao", _cut(decisao.observacao, 1000))


def _autorizacao_odonto(out: etree._Element, ctx: ReplyContext, solicitacao: SolicitacaoAutorizacao,
                        decisao: DecisaoAutorizacao) -> None:
    """cto_autorizacaoServico (qtdUS st_decimal8-2 in 4.01.00, 7-2 later; valorProc 8-2 / 10-2)."""
    _dados_autorizacao(out, ctx, solicitacao, decisao)
    el(out, "numeroCarteira", sized_text("numeroCarteira", solicitacao.numero_carteira, 20))
    el(out, "nomeBeneficiario", _cut(decisao.nome_beneficiario, 70))
    el(out, "statusSolicitacao", decisao.status)
    for proc, item in _decisoes_itens(solicitacao, decisao):
        if proc.valor is None:
            raise ValueError(f"procedimento odontológico {proc.sequencial} sem valorProc")
        dst = el(out, "procedimentosAutorizados")
        el(dst, "sequencialItem", _sequencial(proc.sequencial))
        _procedimento(dst, "procSolic", proc.procedimento)
        _dente(dst, proc.dente, proc.regiao, proc.face, face_pattern=False)
        el(dst, "qtdProc", _numero(proc.quantidade, 2))
        if proc.qtd_us is not None:
            el(dst, "qtdUS", tiss_decimal(proc.qtd_us, 8 if ctx.version == "4.01.00" else 7))
        el(dst, "valorProc", tiss_decimal(proc.valor, _largura(ctx)))
        if proc.valor_franquia is not None:
            el(dst, "valorFranquia", tiss_decimal(proc.valor_franquia, _largura(ctx)))
        el(dst, "aut", _sim_nao(item.quantidade_autorizada > 0))
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
        lista = el(parent, "motivosNegativa")
        for motivo in motivos:
            el(lista, "codigoGlosa", _codigo(ctx, motivo.codigo))


def _proc_odonto(posicao: int, element: etree._Element) -> ProcedimentoSolicitado:
    text = _text_of(element)
    dente, regiao = text("denteRegiao/codDente"), text("denteRegiao/codRegiao")
    return ProcedimentoSolicitado(
        posicao, _procedimento_de(required_child(element, "procSolic")), int(text("qtdProc")),
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
    lote = required_child(request_root, "loteRecurso")
    recurso = next(lote.iterchildren(etree.Element))
    odonto = etree.QName(recurso).localname == "guiaRecursoGlosaOdonto"
    text = _text_of(recurso)
    opcao = required_child(recurso, "opcaoRecurso")
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
    contratado = next(required_child(recurso, "dadosContratado").iterchildren(etree.Element))
    return RecursoGlosa(
        odonto, text("numeroGuiaRecGlosaPrestador"), text("nomeOperadora"), text("objetoRecurso"),
        contratado.text.strip(), text("numeroLote"), text("numeroProtocolo"),
        date.fromisoformat(text("dataRecurso")), tuple(pedidos),
        text("numeroGuiaRecGlosaOperadora") or None)


def _pedidos_guia(guia: etree._Element) -> list[PedidoRecurso]:
    text = _text_of(guia)
    prestador, operadora = text("numeroGuiaOrigem"), text("numeroGuiaOperadora") or None
    senha = text("senha") or None
    opcao = required_child(guia, "opcaoRecursoGuia")
    pedidos = [PedidoRecurso(_text_of(c)("codGlosaGuia"), _text_of(c)("justificativaGuia"),
                             numero_guia_prestador=prestador, numero_guia_operadora=operadora, senha=senha)
               for c in opcao.findall(f"{_A}recursoGuiaCompleta")]
    for item in opcao.findall(f"{_A}itensGuia"):
        itext = _text_of(item)
        fim = itext("dataFim")
        pedidos.append(PedidoRecurso(
            itext("codGlosaItem"), itext("justificativaItem"), Decimal(itext("valorRecursado")),
            numero_guia_prestador=prestador, numero_guia_operadora=operadora, senha=senha,
            sequencial_item=int(itext("sequencialItem")),
            data_realizacao=date.fromisoformat(itext("dataInicio")),
            data_fim=date.fromisoformat(fim) if fim else None,
            procedimento=_procedimento_de(required_child(item, "procRecurso"))))
    return pedidos


def _pedidos_odonto(guia: etree._Element) -> list[PedidoRecurso]:
    text = _text_of(guia)
    prestador, operadora = text("numeroGuiaPrestador"), text("numeroGuiaOperadora") or None
    senha = text("senha") or None
    procs = guia.findall(f"{_A}recursoProcedimento")
    if not procs:  # the whole guide
        return [PedidoRecurso(text("codGlosaGuia"), text("justificativaGuia"),
                              numero_guia_prestador=prestador, numero_guia_operadora=operadora, senha=senha)]
    pedidos = []
    for proc in procs:
        ptext = _text_of(proc)
        pedidos.append(PedidoRecurso(
            ptext("codGlosaProc"), ptext("justificativaProc"), Decimal(ptext("valorRecursado")),
            numero_guia_prestador=prestador, numero_guia_operadora=operadora, senha=senha,
            sequencial_item=int(ptext("sequencialItem")),
            data_realizacao=date.fromisoformat(ptext("dataRealizacao")),
            procedimento=_procedimento_de(required_child(proc, "procRecurso")),
            quantidade=int(ptext("quantidade")),
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
    root, body = response_root(ctx, "situacaoProtocoloRecursoWS", "situacaoProtocoloRecurso")
    recurso = situacao.recurso
    if (recurso is not None and int(situacao.status) in STATUS_ANALISADOS
            and _NUMERICO12.fullmatch(recurso.numero_lote)):
        if not recurso.decidido:
            raise ValueError("recurso analisado com pedidos sem decisão")
        _recibo_glosa(body, ctx, recurso)
    else:
        out = el(body, "reciboGlosaStatus")
        numero = sized_text("nrProtocoloRecursoGlosa", situacao.numero_protocolo, 12)
        el(out, "nrProtocoloRecursoGlosa", numero)
        el(out, "dataEnvioRecurso", tiss_date(situacao.data_envio))
        el(out, "dataRecebimentoRecurso", tiss_date(situacao.data_recebimento))
        el(out, "numeroLote", sized_text("numeroLote", situacao.numero_lote, 12))
        el(out, "registroANS", ctx.registro_ans)
        _contratado(out, "dadosPrestador", ctx)
        el(out, "nrProtocoloSituacaoRecursoGlosa",
            sized_text("nrProtocoloSituacaoRecursoGlosa", situacao.numero_protocolo_situacao
                   or situacao.numero_protocolo, 12))
        el(out, "dataSituacao", tiss_date(situacao.data_situacao or ctx.now.date()))
        el(out, "situacaoProtocolo", status)
    return finish(root)


def _recibo_glosa(body: etree._Element, ctx: ReplyContext, recurso: RecursoGlosa) -> None:
    """ct_glosaRecibo / ct_glosaReciboOdonto (numeroGuiaRecGlosaOperadora sits in another place)."""
    out = el(body, "reciboGlosaOdonto" if recurso.odonto else "reciboGlosa")
    el(out, "registroANS", ctx.registro_ans)
    el(out, "numeroGuiaRecGlosaPrestador",
        sized_text("numeroGuiaRecGlosaPrestador", recurso.numero_guia_recurso, 20))
    operadora = recurso.numero_guia_recurso_operadora
    if operadora and not recurso.odonto:
        el(out, "numeroGuiaRecGlosaOperadora", sized_text("numeroGuiaRecGlosaOperadora", operadora, 20))
    el(out, "nomeOperadora", _cut(recurso.nome_operadora, 70))
    if operadora and recurso.odonto:
        el(out, "numeroGuiaRecGlosaOperadora", sized_text("numeroGuiaRecGlosaOperadora", operadora, 20))
    el(out, "objetoRecurso", recurso.objeto)
    el(out, "codigoPrestador", sized_text("codigoPrestador", recurso.codigo_prestador, 14))
    el(out, "numeroLote", recurso.numero_lote)
    if not _NUMERICO12.fullmatch(recurso.numero_protocolo):
        raise ValueError(f"numeroProtocolo recursado não numérico: {recurso.numero_protocolo!r}")
    el(out, "numeroProtocolo", recurso.numero_protocolo)
    opcao = el(out, "opcaoRecurso")
    if recurso.de_protocolo:
        pedido = recurso.pedidos[0]
        dst = el(opcao, "recursoProtocolo")
        el(dst, "codigoGlosaProtocolo", _codigo(ctx, pedido.codigo_glosa))
        el(dst, "justificativaProtocolo", _cut(pedido.justificativa, 500))
        el(dst, "recursoAcatado", _sim_nao(bool(pedido.acatado)))
        if not recurso.odonto and not pedido.acatado and pedido.justificativa_operadora:
            el(dst, "justificativaOPSnaoAcatadoProt", _cut(pedido.justificativa_operadora, 500))
    elif recurso.odonto:
        _respostas_odonto(opcao, ctx, recurso.pedidos)
    else:
        for pedido in recurso.pedidos:
            _resposta_guia(el(opcao, "recursoGuia"), ctx, pedido)
    el(out, "dataRecurso", tiss_date(recurso.data_recurso))
    el(out, "valorTotalRecursado", tiss_decimal(recurso.valor_recursado))
    el(out, "valorTotalAcatado", tiss_decimal(recurso.valor_acatado))


def _resposta_guia(out: etree._Element, ctx: ReplyContext, pedido: PedidoRecurso) -> None:
    """respostaGuia (a guide motive) or respostaGuiaItens (one item) of a medical recurso."""
    item = pedido.sequencial_item is not None
    dst = el(out, "respostaGuiaItens" if item else "respostaGuia")
    _numeros_pedido(dst, pedido)
    if not item:
        el(dst, "codGlosa", _codigo(ctx, pedido.codigo_glosa))
        el(dst, "justificativaPrestador", _cut(pedido.justificativa, 500))
        el(dst, "recursoGuiaAcatado", _sim_nao(bool(pedido.acatado)))
        if not pedido.acatado and pedido.justificativa_operadora:
            el(dst, "justificativaOPSnaoAcatadoGuia", _cut(pedido.justificativa_operadora, 500))
        return
    el(dst, "dataRealizacao", tiss_date(_required(pedido.data_realizacao, "dataRealizacao")))
    if pedido.data_fim is not None:
        el(dst, "dataFim", tiss_date(pedido.data_fim))
    el(dst, "sequencialItem", _sequencial(pedido.sequencial_item))
    _procedimento(dst, "procRecurso", _required(pedido.procedimento, "procRecurso"))
    el(dst, "codGlosa", _codigo(ctx, pedido.codigo_glosa))
    el(dst, "valorRecursado", tiss_decimal(pedido.valor_recursado, _largura(ctx)))
    el(dst, "justificativaPrestador", _cut(pedido.justificativa, 500))
    el(dst, "valorAcatadado", tiss_decimal(pedido.acatado_valor, _largura(ctx)))
    if pedido.justificativa_operadora:
        el(dst, "justificativaOperadora", _cut(pedido.justificativa_operadora, 500))


def _respostas_odonto(opcao: etree._Element, ctx: ReplyContext, pedidos: Sequence[PedidoRecurso]) -> None:
    """One recursoGuia per guide motive, one per guide for its items (grouped in order)."""
    grupos: dict[tuple[str | None, bool], list[PedidoRecurso]] = {}
    for pedido in pedidos:
        chave = (pedido.numero_guia_prestador, pedido.sequencial_item is not None)
        grupos.setdefault(chave, []).append(pedido)
    for (_, itens), grupo in grupos.items():
        if not itens:
            for pedido in grupo:
                dst = el(el(opcao, "recursoGuia"), "respostaRecursoGuiaOdonto")
                _numeros_pedido(dst, pedido)
                el(dst, "codGlosaGuia", _codigo(ctx, pedido.codigo_glosa))
                el(dst, "justificativaGuia", _cut(pedido.justificativa, 500))
                el(dst, "recursoAcatadoGuia", _sim_nao(bool(pedido.acatado)))
            continue
        dst = el(el(opcao, "recursoGuia"), "respostaRecursoItemOdonto")
        _numeros_pedido(dst, grupo[0])
        for pedido in grupo:
            proc = el(dst, "recursoProcedimento")
            el(proc, "sequencialItem", _sequencial(pedido.sequencial_item))
            el(proc, "dataRealizacao", tiss_date(_required(pedido.data_realizacao, "dataRealizacao")))
            _dente(proc, pedido.dente, pedido.regiao, pedido.face, face_pattern=True)
            el(proc, "quantidade", _numero(pedido.quantidade, 2))
            _procedimento(proc, "procRecurso", _required(pedido.procedimento, "procRecurso"))
            el(proc, "codGlosaProc", _codigo(ctx, pedido.codigo_glosa))
            el(proc, "valorRecursado", tiss_decimal(pedido.valor_recursado, _largura(ctx)))
            el(proc, "justificativaPrestador", _cut(pedido.justificativa, 500))
            el(proc, "valorAcatado", tiss_decimal(pedido.acatado_valor, _largura(ctx)))
            if pedido.justificativa_operadora:
                el(proc, "justificativaOperadora", _cut(pedido.justificativa_operadora, 500))


def _numeros_pedido(out: etree._Element, pedido: PedidoRecurso) -> None:
    el(out, "numeroGuiaPrestador", sized_text("numeroGuiaPrestador", pedido.numero_guia_prestador, 20))
    if pedido.numero_guia_operadora:
        el(out, "numeroGuiaOperadora", sized_text("numeroGuiaOperadora", pedido.numero_guia_operadora, 20))
    if pedido.senha:
        el(out, "senha", sized_text("senha", pedido.senha, 20))


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
    motivo_glosa(out, ctx, glosa.codigo, glosa.descricao)


def _contratado(parent: etree._Element, name: str, ctx: ReplyContext) -> None:
    """ct_contratadoDados named ``name``, identifying the provider as its request did."""
    kind, value = ctx.prestador
    el(el(parent, name), CONTRATADO[kind], value)


def _numeros_guia(out: etree._Element, guia: GuiaAnalisada, *, senha: bool) -> None:
    el(out, "numeroGuiaPrestador", sized_text("numeroGuiaPrestador", guia.numero_guia_prestador, 20))
    if guia.numero_guia_operadora:
        el(out, "numeroGuiaOperadora", sized_text("numeroGuiaOperadora", guia.numero_guia_operadora, 20))
    if senha and guia.senha:
        el(out, "senha", sized_text("senha", guia.senha, 20))


def _procedimento(parent: etree._Element, name: str, proc: Procedimento) -> None:
    """ct_procedimentoDados (descricaoProcedimento is required: a consulta has none)."""
    out = el(parent, name)
    el(out, "codigoTabela", sized_text("codigoTabela", proc.codigo_tabela, 2))
    el(out, "codigoProcedimento", sized_text("codigoProcedimento", proc.codigo, 10))
    el(out, "descricaoProcedimento", _cut(proc.descricao or DESCRICAO_NAO_INFORMADA, 150))


def _procedimento_de(element: etree._Element) -> Procedimento:
    text = _text_of(element)
    return Procedimento(text("codigoTabela"), text("codigoProcedimento"),
                        text("descricaoProcedimento") or None)


def _dente(parent: etree._Element, dente: str | None, regiao: str | None, face: str | None, *,
           face_pattern: bool) -> None:
    """denteRegiao (codDente | codRegiao) and denteFace (dm_face pattern, or st_texto5)."""
    if dente or regiao:
        escolha = el(parent, "denteRegiao")
        if dente:
            el(escolha, "codDente", dente)
        else:
            el(escolha, "codRegiao", regiao)
    if face:
        if face_pattern and not _FACE.fullmatch(face):
            raise ValueError(f"denteFace inválida: {face!r} (dm_face [OLMVDIP]{{1,5}})")
        el(parent, "denteFace", sized_text("denteFace", face, 5))


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
