"""Which module answers each of the 12 TISS services at a simulated operator."""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from simulator import autorizacoes, contas, recebimentos
from simulator.atendimento import Atendimento

__all__ = ["SERVICOS", "Atendimento", "responder"]

SERVICOS: dict[str, Callable[[Atendimento], etree._Element]] = {
    "tissLoteGuias": contas.lote_guias,
    "tissSolicitacaoStatusProtocolo": contas.situacao_protocolo,
    "tissSolicitacaoDemonstrativoRetorno": contas.demonstrativo,
    "tissCancelaGuia": contas.cancela_guia,
    "tissVerificaElegibilidade": autorizacoes.elegibilidade,
    "tissSolicitacaoProcedimento": autorizacoes.solicitacao_procedimento,
    "tissSolicitacaoStatusAutorizacao": autorizacoes.situacao_autorizacao,
    "tissLoteAnexo": recebimentos.lote_anexo,
    "tissEnvioDocumentos": recebimentos.envio_documentos,
    "tissComunicacaoBeneficiario": recebimentos.comunicacao_beneficiario,
    "tissRecursoGlosa": recebimentos.recurso_glosa,
    "tissSolicitacaoStatusRecursoGlosa": recebimentos.situacao_recurso,
}


def responder(atendimento: Atendimento) -> etree._Element:
    """The ``*WS`` answer (empty hash) of ``atendimento``'s service."""
    return SERVICOS[atendimento.service.name](atendimento)
