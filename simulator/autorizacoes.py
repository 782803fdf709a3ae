"""Elegibilidade and autorização at a simulated operator: deterministic rules from the profile.

* Elegibilidade: a card ending in one of the profile's ``elegibilidade`` suffixes is refused with
  its Table 38 code (e.g. 0000 -> 1001 carteira inválida, 9999 -> 1017 validade vencida); a card
  whose ``validadeCarteira`` in the request is before today is refused with 1017; any other card
  is eligible, with a name derived from the card (no request carries one).
* Autorização: each requested procedure is decided by ``AutorizacaoConfig.situacao`` (negado
  with a motive, em análise, or autorizado); a card refused by the elegibilidade rules denies the
  whole request with that code. All denied -> 3 Negado (motives: the codes); some -> 7
  Autorizado parcialmente (the denied items carry their motive); any em análise -> 2 Em análise
  until ``horas_em_analise`` simulated hours have passed, then the decision the others imply
  (the em-análise procedures authorised). Authorised requests get the operator's guide number and
  a senha valid 30 days from the decision.
"""

from __future__ import annotations

from datetime import timedelta

from lxml import etree
from sqlalchemy import select

from simulator import answers, lifecycle, numeracao
from simulator.atendimento import Atendimento, carteira_recusada, data_local, data_ou_none, nome_beneficiario
from simulator.models import SimAutorizacao
from simulator.profile import Profile

CARTEIRA_VENCIDA = "1017"
GUIA_INVALIDA = "1307"  # NÚMERO DA GUIA INVÁLIDO (present in 4.01.00-4.03.00)


# --------------------------------------------------------------------------- tissVerificaElegibilidade


def elegibilidade(at: Atendimento) -> etree._Element:
    base = "ans:pedidoElegibilidade/"
    carteira = at.text(base + "ans:numeroCarteira")
    validade = data_ou_none(at.text(base + "ans:validadeCarteira"))
    codigo = carteira_recusada(at.profile, carteira)
    if codigo is None and validade is not None and validade < at.hoje:
        codigo = CARTEIRA_VENCIDA
    resposta = answers.Elegibilidade(
        elegivel=codigo is None, nome_beneficiario=nome_beneficiario(carteira),
        validade_carteira=validade if codigo is None else None,
        motivos=(answers.Glosa(codigo),) if codigo else ())
    return answers.resposta_elegibilidade(at.ctx, at.root, resposta)


# --------------------------------------------------------------------------- tissSolicitacaoProcedimento


def decidir(profile: Profile,
            solicitacao: answers.SolicitacaoAutorizacao) -> tuple[str, str, tuple[str, ...]]:
    """(status at the request, final status, denial codes) of a solicitação."""
    recusa = carteira_recusada(profile, solicitacao.numero_carteira)
    if recusa is not None:
        return answers.NEGADO, answers.NEGADO, (recusa,)
    situacoes = [profile.autorizacao.situacao(p.procedimento.codigo) for p in solicitacao.procedimentos]
    motivos = [motivo for status, motivo in situacoes if status == answers.NEGADO]
    negados = tuple(dict.fromkeys(m for m in motivos if m))
    quantos = len(motivos)
    if situacoes and quantos == len(situacoes):
        final = answers.NEGADO
    elif quantos:
        final = answers.AUTORIZADO_PARCIALMENTE
    else:
        final = answers.AUTORIZADO
    em_analise = any(status == answers.EM_ANALISE for status, _ in situacoes)
    return (answers.EM_ANALISE if em_analise else final), final, negados


def solicitacao_procedimento(at: Atendimento) -> etree._Element:
    solicitacao = answers.ler_solicitacao(at.root)
    inicial, final, motivos = decidir(at.profile, solicitacao)
    numero = numeracao.numero_guia_operadora(at.session, at.registro)
    espera = timedelta(hours=at.profile.autorizacao.horas_em_analise) if inicial == answers.EM_ANALISE \
        else timedelta(0)
    autorizacao = SimAutorizacao(
        registro_ans=at.registro, prestador=at.documento, tipo=solicitacao.tipo,
        numero_guia_prestador=solicitacao.numero_guia_prestador, numero_guia_operadora=numero,
        numero_carteira=solicitacao.numero_carteira,
        senha=numeracao.senha(at.seed, at.registro, numero) if final != answers.NEGADO else None,
        status=inicial, status_final=final, codigo_glosa=motivos[0] if motivos else None,
        decidida_em=at.agora + espera, solicitada_em=at.agora, mensagem_id=at.mensagem_id)
    at.session.add(autorizacao)
    at.session.flush()
    return answers.autorizacao_procedimento(at.ctx, solicitacao, decisao(at, autorizacao, solicitacao))


def decisao(at: Atendimento, autorizacao: SimAutorizacao,
            solicitacao: answers.SolicitacaoAutorizacao) -> answers.DecisaoAutorizacao:
    """The decision as it stands at ``at.agora`` (em análise turns final with time)."""
    status = lifecycle.status_autorizacao(autorizacao.status, autorizacao.status_final,
                                          autorizacao.decidida_em, at.agora)
    if autorizacao.cancelada_em is not None and autorizacao.cancelada_em <= at.agora:
        status = answers.CANCELADA
    _, _, codigos = decidir(at.profile, solicitacao)
    motivos: tuple[answers.Glosa, ...] = ()
    itens: tuple[answers.DecisaoItem, ...] = ()
    if status == answers.NEGADO:
        motivos = tuple(answers.Glosa(c) for c in codigos or (autorizacao.codigo_glosa or "1426",))
    elif status == answers.AUTORIZADO_PARCIALMENTE:
        itens = tuple(_negados(at.profile, solicitacao))
    autorizada = status in (answers.AUTORIZADO, answers.AUTORIZADO_PARCIALMENTE)
    data_autorizacao = None
    if autorizada:
        if autorizacao.decidida_em is None:  # solicitacao_procedimento always sets it
            raise ValueError(f"autorização {autorizacao.numero_guia_operadora} sem decidida_em")
        data_autorizacao = data_local(autorizacao.decidida_em)
    return answers.DecisaoAutorizacao(
        status, numero_guia_operadora=autorizacao.numero_guia_operadora,
        senha=autorizacao.senha if autorizada else None, data_autorizacao=data_autorizacao,
        motivos=motivos, itens=itens, nome_beneficiario=nome_beneficiario(autorizacao.numero_carteira))


def _negados(profile: Profile, solicitacao: answers.SolicitacaoAutorizacao) -> list[answers.DecisaoItem]:
    out = []
    for proc in solicitacao.procedimentos:
        status, motivo = profile.autorizacao.situacao(proc.procedimento.codigo)
        if status == answers.NEGADO and motivo is not None:  # a negado always has its motive
            out.append(answers.DecisaoItem(proc.sequencial, 0, motivos=(answers.Glosa(motivo),)))
    return out


# --------------------------------------------------------------------------- tissSolicitacaoStatusAutorizacao


def situacao_autorizacao(at: Atendimento) -> etree._Element:
    # ct_guiaCabecalho identifies the request by numeroGuiaPrestador only: the latest one wins.
    numero = at.text("ans:solicitacaoStatusAutorizacao/ans:identificacaoSolicitacao/ans:numeroGuiaPrestador")
    autorizacao = at.session.scalars(select(SimAutorizacao).where(
        SimAutorizacao.registro_ans == at.registro, SimAutorizacao.prestador == at.documento,
        SimAutorizacao.numero_guia_prestador == numero).order_by(SimAutorizacao.id.desc())).first()
    if autorizacao is None:
        return at.erro(GUIA_INVALIDA, f"Solicitação {numero} não localizada.")
    solicitacao = answers.ler_solicitacao(at.requisicao_guardada(autorizacao.mensagem_id))
    return answers.situacao_autorizacao(at.ctx, solicitacao, decisao(at, autorizacao, solicitacao))
