"""What a simulated operator receives and acknowledges: anexos, documentos, comunicação de
internação/alta, and the recurso de glosa with its later decision.

* Anexos, documentos and recursos get a protocol number from the operator's sequence (the same as
  the lotes'), are stored and acknowledged with ``responses.recibo``.
* Comunicação: statusComunicacao N (not accepted) for a card the operator's elegibilidade rules
  refuse, S otherwise.
* Recurso de glosa: refused (mensagemErro) when the appealed protocol is unknown, or not analysed
  yet (no glosa to appeal: 2908 SOLICITAÇÃO DE REANÁLISE EFETUADA DE FORMA INCORRETA), or when
  what it appeals contradicts the operator's own glosas (gateway.message.recurso, the checks the
  gateway runs too: a guide not in the protocol, an item not in the guide, a guide or item
  without glosa, more asked than glosado). One such crítica refuses the whole recurso: the
  receipt (ct_recebimentoRecurso) is mensagemErro or protocoloRecebimento, with no refusal per
  item, and a "não acatado" decision would tell the provider, days later, that the operator
  analysed and kept a glosa it never made. The first crítica's code goes in codigoGlosa, every
  crítica in descricaoGlosa. Its status
  follows the operator's flow from the recurso's receipt; once analysed, each appealed item or
  motive is acatado or not by a deterministic draw (``random.Random(f"{seed}:{registro}:recurso:
  {protocolo}")``, half and half), shown by answers.situacao_protocolo_recurso.
"""

from __future__ import annotations

import base64
import binascii
import random
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from lxml import etree
from sqlalchemy import select

from gateway.message import recurso as checagem
from gateway.message import responses
from gateway.message.tables import STATUS_ANALISADOS
from simulator import answers, lifecycle, numeracao
from simulator.atendimento import (
    A,
    Atendimento,
    carteira_recusada,
    data_local,
    data_ou_none,
    nome_beneficiario,
    protocolo_nao_localizado,
)
from simulator.contas import fluxo
from simulator.models import SimAnexo, SimComunicacao, SimDocumento, SimItem, SimLote, SimRecurso

REANALISE_INCORRETA = "2908"
MANTIDA = "Glosa mantida após reanálise da auditoria: a justificativa não altera a análise."


def _recibo(at: Atendimento, numero_protocolo: str | None) -> etree._Element:
    carteiras = {(e.text or "").strip() for e in at.root.iter(f"{A}numeroCarteira")}
    nomes = {c: nome_beneficiario(c) for c in carteiras if c}
    return responses.recibo(at.ctx, at.service, at.root, numero_protocolo=numero_protocolo,
                            nomes_beneficiarios=nomes)


def _numero(at: Atendimento) -> str:
    return numeracao.numero_protocolo(at.session, at.profile, at.agora)


# --------------------------------------------------------------------------- tissLoteAnexo


def lote_anexo(at: Atendimento) -> etree._Element:
    numero = _numero(at)
    anexos = at.root.find(f"{A}loteAnexo/{A}AnexosGuiasTISS")
    at.session.add(SimAnexo(registro_ans=at.registro, prestador=at.documento, numero_protocolo=numero,
                            numero_lote=at.text("ans:loteAnexo/ans:numeroLote")[:12],
                            quantidade=sum(1 for a in anexos if isinstance(a.tag, str)),
                            recebido_em=at.agora, mensagem_id=at.mensagem_id))
    return _recibo(at, numero)


# --------------------------------------------------------------------------- tissEnvioDocumentos


def envio_documentos(at: Atendimento) -> etree._Element:
    numero = _numero(at)
    base = "ans:envioDOcumento/"
    try:
        tamanho = len(base64.b64decode(at.text(base + "ans:documento"), validate=False))
    except (binascii.Error, ValueError):
        tamanho = 0
    at.session.add(SimDocumento(
        registro_ans=at.registro, prestador=at.documento, numero_protocolo=numero,
        numero_lote=at.text(base + "ans:numeroLote")[:12] or None,
        numero_guia_prestador=at.text(base + "ans:numeroGuiaPrestador")[:20] or None,
        numero_documento=at.text(base + "ans:numeroDocumento")[:30] or None, tamanho=tamanho,
        recebido_em=at.agora, mensagem_id=at.mensagem_id))
    return _recibo(at, numero)


# --------------------------------------------------------------------------- tissComunicacaoBeneficiario


def comunicacao_beneficiario(at: Atendimento) -> etree._Element:
    base = "ans:comunicacaoBeneficiario/"
    carteira = at.text(base + "ans:dadosBeneficiario/ans:numeroCarteira")
    at.session.add(SimComunicacao(
        registro_ans=at.registro, prestador=at.documento, numero_carteira=carteira[:20] or None,
        tipo_evento=at.text(base + "ans:tipoEvento")[:1],
        data_evento=at.text(base + "ans:dataEvento") or None,
        recebido_em=at.agora, mensagem_id=at.mensagem_id))
    root = _recibo(at, None)
    if carteira_recusada(at.profile, carteira) is not None:
        for status in root.iter(f"{A}statusComunicacao"):
            status.text = "N"
    return root


# --------------------------------------------------------------------------- tissRecursoGlosa


def recurso_glosa(at: Atendimento) -> etree._Element:
    recurso = next(at.root.find(f"{A}loteRecurso").iterchildren(etree.Element))
    recursado = _texto(recurso, "numeroProtocolo")
    lote = at.lote_por_protocolo(recursado)
    if lote is None:
        return at.erro(protocolo_nao_localizado(at.versao),
                       f"Protocolo recursado {recursado} não localizado.")
    if not lifecycle.analise_disponivel(fluxo(at, lote), lote.recebido_em, at.agora):
        return at.erro(REANALISE_INCORRETA,
                       f"Protocolo {recursado} ainda não analisado: não há glosa a recorrer.")
    criticas = checagem.criticas(checagem.ler_recurso(at.root), _glosadas(lote, at.agora))
    if criticas:
        return at.erro(criticas[0].code or REANALISE_INCORRETA, checagem.descricao(criticas))
    numero = _numero(at)
    try:
        valor = Decimal(_texto(recurso, "valorTotalRecursado") or "0")
    except InvalidOperation:
        valor = Decimal("0.00")
    at.session.add(SimRecurso(
        registro_ans=at.registro, prestador=at.documento, numero_protocolo=numero,
        numero_protocolo_recursado=recursado, numero_lote=_texto(recurso, "numeroLote")[:12],
        numero_guia_recurso=_texto(recurso, "numeroGuiaRecGlosaPrestador")[:20],
        valor_recursado=valor, recebido_em=at.agora, mensagem_id=at.mensagem_id))
    return _recibo(at, numero)


# --------------------------------------------------------------------------- status do recurso


def _glosadas(lote: SimLote, agora: datetime) -> dict[str, checagem.GuiaGlosada]:
    """The lote's guides (those not cancelled) with the glosas decided at receipt."""
    return {g.numero_guia_prestador: checagem.GuiaGlosada(
        g.numero_guia_prestador, g.valor_glosa, tuple(_glosado(i) for i in g.itens))
        for g in lote.guias if g.cancelada_em is None or g.cancelada_em > agora}


def _glosado(item: SimItem) -> checagem.ItemGlosado:
    """An item as the operator's answers number it: its sequencialItem, or its position."""
    escrito = item.sequencial_item
    sequencial = int(escrito) if escrito and escrito.isdigit() and int(escrito) > 0 else item.ordem
    return checagem.ItemGlosado(sequencial, item.codigo_tabela, item.codigo_procedimento, item.valor_glosa)


def situacao_recurso(at: Atendimento) -> etree._Element:
    numero = at.text("ans:solicitacaoStatusProtocoloRecurso/ans:numeroProtocolo")
    registro = at.session.scalars(select(SimRecurso).where(
        SimRecurso.registro_ans == at.registro, SimRecurso.prestador == at.documento,
        SimRecurso.numero_protocolo == numero)).one_or_none()
    if registro is None:
        return at.erro(protocolo_nao_localizado(at.versao),
                       f"Protocolo de recurso {numero} não localizado.")
    situacao = lifecycle.situacao_em(at.profile.status, registro.recebido_em, at.agora,
                                     cancelado_em=registro.cancelado_em)
    requisicao = at.requisicao_guardada(registro.mensagem_id)
    recurso = answers.ler_recurso(requisicao)
    if situacao.status_tiss in STATUS_ANALISADOS:
        recurso = _decidir(at, numero, recurso)
    recebido = data_local(registro.recebido_em)
    return answers.situacao_protocolo_recurso(at.ctx, answers.SituacaoRecurso(
        numero_protocolo=numero, numero_lote=registro.numero_lote,
        data_envio=_data_envio(requisicao) or recebido, data_recebimento=recebido,
        status=situacao.status_tiss, data_situacao=data_local(situacao.desde), recurso=recurso))


def _data_envio(requisicao: etree._Element) -> date | None:
    """The day the provider sent it (its cabeçalho's dataRegistroTransacao)."""
    path = f"{A}cabecalho/{A}identificacaoTransacao/{A}dataRegistroTransacao"
    return data_ou_none(requisicao.findtext(path))


def _texto(parent: etree._Element, name: str) -> str:
    return (parent.findtext(f"{A}{name}") or "").strip()


def _decidir(at: Atendimento, numero: str, recurso: answers.RecursoGlosa) -> answers.RecursoGlosa:
    rng = random.Random(f"{at.seed}:{at.registro}:recurso:{numero}")
    pedidos = []
    for pedido in recurso.pedidos:
        acatado = rng.random() < 0.5
        pedidos.append(replace(pedido, acatado=acatado, justificativa_operadora=None if acatado else MANTIDA))
    return replace(recurso, pedidos=tuple(pedidos))
