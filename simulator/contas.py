"""The billing side of a simulated operator: lotes de guias, situação do protocolo, demonstrativos
and cancelamento.

Choices where the manuals and the issue are silent:
* A lote refused by a crítica gets no protocol: the answer is protocoloRecebimentoWS/mensagemErro
  with the first refusing crítica's code and the operator's wording; every crítica is stored.
* Partial sending (IPASGO): guides with críticas are refused one by one, the others accepted; the
  protocol lists only the accepted guides and its value is theirs; each refused guide is a
  glosaProtocolo motive with its crítica ("Guia <n> recusada: ...", responses.GuiaRecusada) and
  a crítica stored for the lote. Every guide refused: the lote is refused.
* The guide values come from the message (valor total of each guide); glosas are per item and
  the demonstrativos add up the items, so for a well-formed guide (total = sum of items) the
  demonstrativo's totals are the lote's minus its glosas.
* Demonstrativo not available yet (not analysed, payment date not reached): mensagemErro 3019
  EVENTO SOB ANÁLISE TÉCNICA, AGUARDANDO LIBERAÇÃO [...] PARA POSTERIOR PAGAMENTO; nothing paid in
  the period asked: 5016 SEM NENHUMA OCORRÊNCIA DE MOVIMENTO NA COMPETÊNCIA; a demonstrativo type
  the operator does not issue: 3148 TIPO DE TRANSAÇÃO INVÁLIDO.
* Cancelamento answers per guide / lote with dm_statusCancelamento: 1 cancelado com sucesso,
  2 não cancelado (already analysed), 3 guia inexistente, 5 lote inexistente, 6 protocolo
  inexistente. A lote can be cancelled while 1 Recebido or 2 Em análise; a cancelled guide
  leaves its protocol (values and demonstrativos), a lote whose guides are all cancelled is 9.
  An operator whose manual says a lote sent cannot be cancelled (PASA: "Os Lotes de Pagamentos
  com a situação de Enviado à Operadora não poderão ser cancelados", adapters.rules) answers 2
  for a lote or guide it received, from its receipt on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from lxml import etree
from sqlalchemy import select

from gateway.message import responses
from gateway.message.conta import GuiaConta, ItemLido, LoteConta, read_conta
from simulator import answers, lifecycle, numeracao, rules
from simulator.atendimento import A, Atendimento, data_local, data_ou_none, protocolo_nao_localizado
from simulator.clock import horario_local
from simulator.models import (
    SimAutorizacao,
    SimCancelamento,
    SimCritica,
    SimGuia,
    SimItem,
    SimLote,
    SimRecurso,
)
from simulator.profile import Etapa

LOTE_JA_INFORMADO = {"4.03.00": "3268"}  # 4.01/4.02 lack 3268: 1308 GUIA JÁ APRESENTADA is nearest
ARQUIVO_ACIMA_DO_TAMANHO = "3166"
MENSAGEM_FORA_DO_PADRAO = "5001"
EM_ANALISE_AGUARDANDO = "3019"
SEM_MOVIMENTO = "5016"
TIPO_INVALIDO = "3148"
ANALISE_CONTA, PAGAMENTO, PAGAMENTO_ODONTOLOGIA = 2, 1, 3
# dm_statusCancelamento
CANCELADO, NAO_CANCELADO, GUIA_INEXISTENTE, LOTE_INEXISTENTE, PROTOCOLO_INEXISTENTE = "1", "2", "3", "5", "6"
# PASA's manual (adapters.rules.PASA): a lote received is "Enviado à Operadora" and stays so.
ENVIADO_NAO_CANCELA = "Enviado à Operadora: lote de pagamento enviado não pode ser cancelado"
# dm_tipoGuia of a cancelamento
SOLICITACAO, FATURAMENTO, RECURSO = "1", "2", "3"
ZERO = Decimal("0.00")


# --------------------------------------------------------------------------- tissLoteGuias


def lote_guias(at: Atendimento) -> etree._Element:
    profile = at.profile
    conta = read_conta(at.root)
    if len(at.message.data) > profile.max_bytes:
        return at.erro(ARQUIVO_ACIMA_DO_TAMANHO, f"Arquivo de {len(at.message.data)} bytes excede o "
                       f"tamanho máximo de {profile.max_bytes} bytes.")
    anterior = at.session.scalars(select(SimLote.numero_protocolo).where(
        SimLote.registro_ans == at.registro, SimLote.prestador == at.documento,
        SimLote.numero_lote == conta.numero_lote)).first() if at.deduplica_lote else None
    if anterior is not None:
        return at.erro(LOTE_JA_INFORMADO.get(at.versao, "1308"), f"Número de lote {conta.numero_lote} já "
                       f"informado anteriormente ({profile.nome_protocolo} {anterior}).")
    criticas = rules.check_lote(profile, at.root, at.versao)
    recusadas = rules.guias_recusadas(criticas) if profile.envio_parcial else frozenset()
    aceitas = [g for g in conta.guias if g.lida.numero_guia_prestador not in recusadas]
    if rules.lote_recusado(criticas) or (criticas and not profile.envio_parcial) or not aceitas:
        _guardar_criticas(at, conta.numero_lote, criticas, None)
        primeira = next((c for c in criticas if c.rejeita_lote), criticas[0] if criticas else None)
        if primeira is None:  # no guide at all (the schema requires one): nothing to protocol
            return at.erro(MENSAGEM_FORA_DO_PADRAO, f"Lote {conta.numero_lote} sem guias.")
        return at.erro(primeira.codigo, primeira.mensagem)
    lote = _receber(at, conta, aceitas)
    _guardar_criticas(at, conta.numero_lote, criticas, lote)
    odonto = lote.tipo_guia == "odonto"
    return responses.protocolo_recebimento(
        at.ctx, numero_lote=lote.numero_lote, numero_protocolo=lote.numero_protocolo,
        data_envio_lote=at.hoje, valor_total=lote.valor_informado,  # the accepted guides' (_totalizar)
        guias=[_recebida(g, odonto) for g in lote.guias], recusadas=_recusadas(conta, criticas, recusadas))


def _recusadas(conta: LoteConta, criticas: Sequence[rules.Critica],
               recusadas: frozenset[str]) -> list[responses.GuiaRecusada]:
    """The guides refused one by one (partial sending), each with its first crítica, for the
    receipt's glosaProtocolo: how the provider learns which guides were not taken, and why."""
    primeira: dict[str, rules.Critica] = {}
    for critica in criticas:
        if critica.guia in recusadas:
            primeira.setdefault(critica.guia, critica)
    found = []
    for guia in conta.guias:
        sua = primeira.get(guia.lida.numero_guia_prestador)
        if sua is not None:
            found.append(responses.GuiaRecusada(guia.lida.numero_guia_prestador, sua.codigo, sua.mensagem,
                                                guia.lida.valor_informado))
    return found


def _receber(at: Atendimento, conta: LoteConta, aceitas: Sequence[GuiaConta]) -> SimLote:
    """Store the accepted guides with the glosas decided now (shown once analysed)."""
    codigos = responses.codigos_glosa(at.versao)
    lote = SimLote(registro_ans=at.registro, prestador=at.documento, numero_lote=conta.numero_lote,
                   numero_protocolo=numeracao.numero_protocolo(at.session, at.profile, at.agora),
                   tipo_guia=conta.tipo_guia, versao=at.versao, recebido_em=at.agora,
                   data_envio=at.hoje.isoformat(), valor_informado=ZERO, valor_glosa=ZERO,
                   mensagem_id=at.mensagem_id)
    for guia in aceitas:
        itens = guia.itens or (_item_da_guia(guia),)
        glosa = lifecycle.decidir_glosa(
            at.profile.glosa, seed=at.seed, registro_ans=at.registro, numero_lote=conta.numero_lote,
            numero_guia=guia.lida.numero_guia_prestador, valores_itens=[i.valor_informado for i in itens],
            codigos_validos=codigos)
        lote.guias.append(_guia(at, guia, itens, glosa))
    _totalizar(lote)
    at.session.add(lote)
    at.session.flush()
    return lote


def _guia(at: Atendimento, guia: GuiaConta, itens: Sequence[ItemLido], glosa: lifecycle.GlosaGuia) -> SimGuia:
    lida = guia.lida
    numero_operadora = lida.numero_guia_operadora or numeracao.numero_guia_operadora(at.session, at.registro)
    sim = SimGuia(numero_guia_prestador=lida.numero_guia_prestador, numero_guia_operadora=numero_operadora,
                  senha=guia.senha, numero_carteira=lida.numero_carteira, atendimento_rn=guia.atendimento_rn,
                  data_realizacao=guia.data_realizacao, valor_informado=lida.valor_informado,
                  valor_glosa=glosa.valor, glosa=glosa.tipo, codigo_glosa=glosa.codigo)
    sim.itens = [
        SimItem(ordem=ordem, sequencial_item=(item.sequencial_item or "")[:4] or None,
                data_realizacao=item.data_realizacao, codigo_tabela=item.codigo_tabela[:2],
                codigo_procedimento=item.codigo_procedimento[:10],
                descricao=(item.descricao or "")[:150] or None,
                quantidade=item.quantidade, valor_informado=item.valor_informado, valor_glosa=valor,
                codigo_glosa=codigo, dente=item.dente, regiao=item.regiao, face=item.face)
        for ordem, (item, (valor, codigo)) in enumerate(zip(itens, glosa.itens, strict=True), 1)]
    return sim


def _item_da_guia(guia: GuiaConta) -> ItemLido:
    """A guide without items (none in the schema-valid factory guides, but the XSD allows some):
    its total billed as one item, so that it can be glosado and listed."""
    return ItemLido(None, guia.data_realizacao, "00", "GUIA", "VALOR TOTAL DA GUIA", Decimal(1),
                    guia.lida.valor_informado)


def _totalizar(lote: SimLote) -> None:
    ativas = [g for g in lote.guias if g.cancelada_em is None] or lote.guias
    lote.valor_informado = sum((g.valor_informado for g in ativas), ZERO)
    lote.valor_glosa = sum((g.valor_glosa for g in ativas), ZERO)


def _guardar_criticas(at: Atendimento, numero_lote: str, criticas: Sequence[rules.Critica],
                      lote: SimLote | None) -> None:
    for critica in criticas:
        at.session.add(SimCritica(
            registro_ans=at.registro, prestador=at.documento, mensagem_id=at.mensagem_id,
            lote_id=lote.id if lote is not None else None, numero_lote=numero_lote[:12],
            numero_guia_prestador=critica.guia, codigo=critica.codigo, mensagem=critica.mensagem,
            rejeita_lote=critica.rejeita_lote, em=at.agora))


def _recebida(guia: SimGuia, odonto: bool) -> responses.GuiaRecebida:
    return responses.GuiaRecebida(
        numero_guia_prestador=guia.numero_guia_prestador, numero_guia_operadora=guia.numero_guia_operadora,
        numero_carteira=guia.numero_carteira, valor_informado=guia.valor_informado,
        atendimento_rn=guia.atendimento_rn, odonto=odonto, data_realizacao=data_ou_none(guia.data_realizacao))


# --------------------------------------------------------------------------- the protocol at a moment


def fluxo(at: Atendimento, lote: SimLote) -> tuple[Etapa, ...]:
    """The lote's flow: the profile's, or the one ending at 4 when every guide is glosado in full."""
    ativas = _ativas(lote, at.agora)
    glosa_total = bool(ativas) and all(g.glosa == lifecycle.GLOSA_TOTAL for g in ativas)
    return at.profile.fluxo(glosa_total)


def situacao(at: Atendimento, lote: SimLote) -> lifecycle.Situacao:
    return lifecycle.situacao_em(fluxo(at, lote), lote.recebido_em, at.agora, cancelado_em=lote.cancelado_em)


def protocolo(at: Atendimento, lote: SimLote) -> answers.ProtocoloSituacao:
    """The lote as answers.py shows it now (its glosas appear once the status is analysed)."""
    status = situacao(at, lote).status_tiss
    odonto = lote.tipo_guia == "odonto"
    guias = _ativas(lote, at.agora) or list(lote.guias)
    return answers.ProtocoloSituacao(lote.numero_protocolo, lote.numero_lote,
                                     date.fromisoformat(lote.data_envio), status,
                                     tuple(_analisada(g, lote, odonto) for g in guias))


def _ativas(lote: SimLote, agora: datetime) -> list[SimGuia]:
    return [g for g in lote.guias if g.cancelada_em is None or g.cancelada_em > agora]


def _analisada(guia: SimGuia, lote: SimLote, odonto: bool) -> answers.GuiaAnalisada:
    inicio = data_ou_none(guia.data_realizacao) or date.fromisoformat(lote.data_envio)
    glosas = (answers.Glosa(guia.codigo_glosa),) if guia.codigo_glosa else ()
    return answers.GuiaAnalisada(
        guia.numero_guia_prestador, guia.numero_carteira, inicio, tuple(_item(i, odonto) for i in guia.itens),
        numero_guia_operadora=guia.numero_guia_operadora, senha=guia.senha,
        atendimento_rn=guia.atendimento_rn, glosas=glosas, odonto=odonto)


def _item(item: SimItem, odonto: bool) -> answers.ItemAnalisado:
    sequencial = item.sequencial_item
    codigo_glosa, valor_glosa = item.codigo_glosa, item.valor_glosa
    glosas = (answers.Glosa(codigo_glosa, valor_glosa),) if codigo_glosa and valor_glosa else ()
    return answers.ItemAnalisado(
        answers.Procedimento(item.codigo_tabela, item.codigo_procedimento, item.descricao),
        item.valor_informado, quantidade=item.quantidade,
        sequencial=int(sequencial) if sequencial and sequencial.isdigit() and int(sequencial) > 0 else None,
        data_realizacao=data_ou_none(item.data_realizacao), glosas=glosas,
        dente=item.dente if odonto else None, regiao=item.regiao if odonto else None,
        face=item.face if odonto else None)


# --------------------------------------------------------------------------- tissSolicitacaoStatusProtocolo


def situacao_protocolo(at: Atendimento) -> etree._Element:
    numero = at.text("ans:solicitacaoStatusProtocolo/ans:numeroProtocolo")
    lote = at.lote_por_protocolo(numero)
    if lote is None:  # unknown, or another provider's: the same answer
        return responses.protocolo_nao_localizado(at.ctx, numero_protocolo=numero)
    return answers.situacao_protocolo_detalhado(at.ctx, protocolo(at, lote))


# --------------------------------------------------------------------------- demonstrativos


def demonstrativo(at: Atendimento) -> etree._Element:
    base = "ans:solicitacaoDemonstrativoRetorno/"
    analise = at.root.find(f"{A}solicitacaoDemonstrativoRetorno/{A}demonstrativoAnalise")
    if analise is not None:
        numeros = [(e.text or "").strip() for e in analise.iter(f"{A}numeroProtocolo")]
        return _demonstrativo_analise(at, numeros)
    pagamento = base + "ans:demonstrativoPagamento/"
    return _demonstrativo_pagamento(at, int(at.text(pagamento + "ans:tipoDemonstrativo")),
                                    data_ou_none(at.text(pagamento + "ans:periodo/ans:dataPagamento")),
                                    at.text(pagamento + "ans:periodo/ans:competencia") or None)


def _operadora(at: Atendimento) -> answers.Operadora:
    return answers.Operadora(at.profile.nome, at.profile.cnpj)


def _prestador(at: Atendimento) -> answers.Prestador:
    return answers.Prestador(at.prestador.codigo_na_operadora, at.prestador.documento)


def _demonstrativo_analise(at: Atendimento, numeros: Sequence[str]) -> etree._Element:
    profile = at.profile
    if ANALISE_CONTA not in profile.demonstrativos:
        return at.erro(TIPO_INVALIDO, f"A operadora {profile.nome} não emite demonstrativo de análise de "
                       "conta.")
    protocolos = []
    for numero in numeros:
        lote = at.lote_por_protocolo(numero)
        if lote is None or (lote.cancelado_em is not None and lote.cancelado_em <= at.agora):
            estado = "não localizado" if lote is None else "cancelado"
            return at.erro(protocolo_nao_localizado(at.versao), f"Protocolo {numero} {estado}.")
        flow = fluxo(at, lote)
        if not lifecycle.analise_disponivel(flow, lote.recebido_em, at.agora,
                                            desde=profile.demonstrativo_analise_desde):
            quando = lifecycle.analisado_em(flow, lote.recebido_em, profile.demonstrativo_analise_desde)
            return at.erro(EM_ANALISE_AGUARDANDO, f"Protocolo {numero} em '{situacao(at, lote).nome}': o "
                           f"demonstrativo de análise estará disponível a partir de {_quando(quando)}.")
        protocolos.append(protocolo(at, lote))
    return answers.demonstrativo_analise_conta(
        at.ctx, numero_demonstrativo=numeracao.numero_demonstrativo(at.session, at.registro),
        operadora=_operadora(at), prestador=_prestador(at), protocolos=protocolos)


def _demonstrativo_pagamento(at: Atendimento, tipo: int, data_pagamento: date | None,
                             competencia: str | None) -> etree._Element:
    profile = at.profile
    if tipo not in profile.demonstrativos:
        nome = "pagamento odontologia" if tipo == PAGAMENTO_ODONTOLOGIA else "pagamento"
        return at.erro(TIPO_INVALIDO, f"A operadora {profile.nome} não emite demonstrativo de {nome}.")
    pagos: dict[date, list[answers.ProtocoloSituacao]] = {}
    pendente: datetime | None = None
    for lote in _lotes_do_tipo(at, tipo):
        quando = lifecycle.data_pagamento(fluxo(at, lote), lote.recebido_em,
                                          profile.demonstrativo_pagamento_desde)
        if quando is None:
            continue
        dia = data_local(quando)
        if dia != data_pagamento and dia.strftime("%Y%m") != competencia:
            continue
        if quando > at.agora:
            pendente = min(pendente or quando, quando)
            continue
        pagos.setdefault(dia, []).append(protocolo(at, lote))
    periodo = f"data de pagamento {data_pagamento}" if data_pagamento else f"competência {competencia}"
    if not pagos and pendente is not None:
        return at.erro(EM_ANALISE_AGUARDANDO, f"Sem pagamento efetuado na {periodo} até agora: o próximo "
                       f"pagamento previsto é em {_quando(pendente)}.")
    if not pagos:
        return at.erro(SEM_MOVIMENTO, f"Nenhum pagamento na {periodo}.")
    pagamentos = [answers.PagamentoPorData(dia, tuple(pagos[dia])) for dia in sorted(pagos)]
    numero = numeracao.numero_demonstrativo(at.session, at.registro)
    odonto = tipo == PAGAMENTO_ODONTOLOGIA
    build = answers.demonstrativo_odontologia if odonto else answers.demonstrativo_pagamento
    return build(at.ctx, numero_demonstrativo=numero, operadora=_operadora(at), prestador=_prestador(at),
                 pagamentos=pagamentos)


def _lotes_do_tipo(at: Atendimento, tipo: int) -> list[SimLote]:
    """Lotes a demonstrativo de pagamento covers: odontologia (3) the dental ones; pagamento (1)
    the others, and the dental ones too where the operator issues no odontologia demonstrativo."""
    lotes = at.session.scalars(select(SimLote).where(
        SimLote.registro_ans == at.registro, SimLote.prestador == at.documento,
        SimLote.cancelado_em.is_(None)).order_by(SimLote.id)).all()
    if tipo == PAGAMENTO_ODONTOLOGIA:
        return [lote for lote in lotes if lote.tipo_guia == "odonto"]
    if PAGAMENTO_ODONTOLOGIA in at.profile.demonstrativos:
        return [lote for lote in lotes if lote.tipo_guia != "odonto"]
    return list(lotes)


def _quando(moment: datetime | None) -> str:
    return horario_local(moment).strftime("%d/%m/%Y %H:%M") if moment is not None else "(sem data)"


# --------------------------------------------------------------------------- tissCancelaGuia


def cancela_guia(at: Atendimento) -> etree._Element:
    tipo = at.root.find(f"{A}cancelaGuia/{A}tipoCancelamento")
    lote = tipo.find(f"{A}tipoCancelamentoLote")
    if lote is not None:
        decisoes = [_cancelar_lote(at, _filho(lote, "numeroLote"), _filho(lote, "numeroProtocolo"))]
    else:
        decisoes = [_cancelar_guia(at, guia) for guia in tipo.findall(f"{A}tipoCancelamentoGuia")]
    root = responses.recibo(at.ctx, at.service, at.root, numero_protocolo=None)
    for element, decisao in zip(root.iter(f"{A}statusCancelamento"), decisoes, strict=True):
        element.text = decisao
    return root


def _filho(parent: etree._Element, name: str) -> str | None:
    return (parent.findtext(f"{A}{name}") or "").strip() or None


def _registrar(at: Atendimento, tipo: str, status: str, *, numero_lote: str | None = None,
               numero_protocolo: str | None = None, numero_guia: str | None = None,
               detalhe: str | None = None) -> str:
    at.session.add(SimCancelamento(
        registro_ans=at.registro, prestador=at.documento, tipo=tipo, numero_lote=numero_lote,
        numero_protocolo=numero_protocolo, numero_guia_prestador=numero_guia, aceito=status == CANCELADO,
        status=status, recebido_em=at.agora, mensagem_id=at.mensagem_id, detalhe=detalhe))
    return status


def _cancelar_lote(at: Atendimento, numero_lote: str | None, numero_protocolo: str | None) -> str:
    registrar = dict(numero_lote=numero_lote, numero_protocolo=numero_protocolo)
    if numero_protocolo:
        lote = at.lote_por_protocolo(numero_protocolo)
        if lote is None or lote.numero_lote != numero_lote:
            return _registrar(at, "lote", PROTOCOLO_INEXISTENTE, **registrar)
    else:
        lote = at.session.scalars(select(SimLote).where(
            SimLote.registro_ans == at.registro, SimLote.prestador == at.documento,
            SimLote.numero_lote == numero_lote)).one_or_none()
        if lote is None:
            return _registrar(at, "lote", LOTE_INEXISTENTE, **registrar)
    if lote.cancelado_em is None:
        motivo = _nao_cancelavel(at, lote)
        if motivo is not None:
            return _registrar(at, "lote", NAO_CANCELADO, detalhe=motivo, **registrar)
        lote.cancelado_em = at.agora
    return _registrar(at, "lote", CANCELADO, **registrar)


def _cancelar_guia(at: Atendimento, pedido: etree._Element) -> str:
    tipo_guia = _filho(pedido, "tipoGuia")
    numero = _filho(pedido, "numeroGuiaPrestador") or ""
    numero_protocolo = _filho(pedido, "numeroProtocolo")
    registrar = dict(numero_guia=numero, numero_protocolo=numero_protocolo)
    if tipo_guia == SOLICITACAO:
        status = _cancelar_autorizacao(at, numero, _filho(pedido, "numeroGuiaOperadora"))
        return _registrar(at, "guia", status, **registrar)
    if tipo_guia == RECURSO:
        return _registrar(at, "guia", _cancelar_recurso(at, numero), **registrar)
    query = select(SimGuia).join(SimLote).where(
        SimLote.registro_ans == at.registro, SimLote.prestador == at.documento,
        SimGuia.numero_guia_prestador == numero).order_by(SimGuia.id.desc())
    if numero_protocolo:
        if at.lote_por_protocolo(numero_protocolo) is None:
            return _registrar(at, "guia", PROTOCOLO_INEXISTENTE, **registrar)
        query = query.where(SimLote.numero_protocolo == numero_protocolo)
    guia = at.session.scalars(query).first()
    if guia is None:
        return _registrar(at, "guia", GUIA_INEXISTENTE, **registrar)
    lote = guia.lote
    if guia.cancelada_em is None and lote.cancelado_em is None:
        motivo = _nao_cancelavel(at, lote)
        if motivo is not None:
            return _registrar(at, "guia", NAO_CANCELADO, detalhe=motivo, **registrar)
        guia.cancelada_em = at.agora
        if not _ativas(lote, at.agora):
            lote.cancelado_em = at.agora
        _totalizar(lote)
    return _registrar(at, "guia", CANCELADO, numero_lote=lote.numero_lote, **registrar)


def _nao_cancelavel(at: Atendimento, lote: SimLote) -> str | None:
    """Why the lote (or a guide of it) cannot be cancelled now, or None: an operator whose manual
    says a lote sent cannot be cancelled (PASA) refuses from its receipt on; the others once
    they analysed it (the status name is the detalhe)."""
    if not at.profile.cancela_lote_enviado:
        return ENVIADO_NAO_CANCELA
    if not lifecycle.cancelavel(fluxo(at, lote), lote.recebido_em, at.agora):
        return situacao(at, lote).nome
    return None


def _cancelar_autorizacao(at: Atendimento, numero: str, numero_operadora: str | None) -> str:
    query = select(SimAutorizacao).where(SimAutorizacao.registro_ans == at.registro,
                                         SimAutorizacao.prestador == at.documento)
    query = query.where(SimAutorizacao.numero_guia_operadora == numero_operadora) if numero_operadora \
        else query.where(SimAutorizacao.numero_guia_prestador == numero)
    autorizacao = at.session.scalars(query.order_by(SimAutorizacao.id.desc())).first()
    if autorizacao is None:
        return GUIA_INEXISTENTE
    if autorizacao.cancelada_em is None:
        autorizacao.cancelada_em = at.agora
    return CANCELADO


def _cancelar_recurso(at: Atendimento, numero: str) -> str:
    recurso = at.session.scalars(select(SimRecurso).where(
        SimRecurso.registro_ans == at.registro, SimRecurso.prestador == at.documento,
        SimRecurso.numero_guia_recurso == numero).order_by(SimRecurso.id.desc())).first()
    if recurso is None:
        return GUIA_INEXISTENTE
    if recurso.cancelado_em is None:
        if not lifecycle.cancelavel(at.profile.status, recurso.recebido_em, at.agora):
            return NAO_CANCELADO
        recurso.cancelado_em = at.agora
    return CANCELADO
