"""One request being answered by a simulated operator, and the helpers every service shares."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.message import reader, responses
from gateway.message.reader import TissMessage
from gateway.message.services import ANS_NS, Service
from simulator.clock import horario_local
from simulator.models import SimLote, SimMensagem
from simulator.profile import PrestadorSimulado, Profile

A = f"{{{ANS_NS}}}"
NS = {"ans": ANS_NS}

# Beneficiaries' names: no request carries one, answers need one (elegibilidade, autorização,
# anexos); a card always gets the same name.
NOMES = ("Maria da Conceição Alves", "José Antônio Ribeiro", "Ana Lúcia Gonçalves", "João Batista Simões",
         "Francisca Araújo Lima", "Antônio Carlos Peçanha", "Luíza Helena Brandão", "Sebastião Nóbrega",
         "Cecília Magalhães Assunção", "Raimundo Falcão Tavares")


@dataclass
class Atendimento:
    """What a service needs to answer: the request, who sent it, the operator, and the moment."""

    session: Session
    profile: Profile
    message: TissMessage
    service: Service
    ctx: responses.ReplyContext
    prestador: PrestadorSimulado  # authenticated
    agora: datetime  # simulated, UTC
    seed: int
    mensagem_id: int  # the stored request
    deduplica_lote: bool = True  # a numeroLote already taken is refused (3268); off: taken again

    @property
    def root(self) -> etree._Element:
        return self.message.root

    @property
    def versao(self) -> str:
        return self.message.version or ""

    @property
    def registro(self) -> str:
        return self.profile.registro_ans

    @property
    def documento(self) -> str:
        return self.prestador.documento

    @property
    def hoje(self) -> date:
        """Today at the operator (Brasília)."""
        return horario_local(self.agora).date()

    def text(self, path: str) -> str:
        """The stripped text at an ``ans:`` XPath below the request root ('' when absent)."""
        return str(self.root.xpath(f"string({path})", namespaces=NS)).strip()

    def erro(self, codigo: str, descricao: str) -> etree._Element:
        """The service's answer carrying only mensagemErro (Table 38 ``codigo``)."""
        return responses.mensagem_erro(self.ctx, self.service, codigo, descricao)

    def lote_por_protocolo(self, numero_protocolo: str) -> SimLote | None:
        """This provider's lote with that protocol number at this operator (others' are unknown)."""
        return self.session.scalars(select(SimLote).where(
            SimLote.registro_ans == self.registro, SimLote.prestador == self.documento,
            SimLote.numero_protocolo == numero_protocolo)).one_or_none()

    def requisicao_guardada(self, mensagem_id: int) -> etree._Element:
        """The ``*WS`` root of a stored request (to echo what it asked)."""
        corpo = self.session.get_one(SimMensagem, mensagem_id).corpo
        return reader.read(corpo, max(len(corpo), 1)).root


def protocolo_nao_localizado(versao: str) -> str:
    """3291 PROTOCOLO NÃO LOCALIZADO (4.03.00); 3162 CÓDIGO DO PROTOCOLO NÃO ENCONTRADO before."""
    if versao >= "4.03.00":
        return responses.PROTOCOLO_NAO_LOCALIZADO
    return responses.CODIGO_PROTOCOLO_NAO_ENCONTRADO


def nome_beneficiario(carteira: str | None) -> str:
    digest = hashlib.sha256((carteira or "").encode()).digest()
    return NOMES[digest[0] % len(NOMES)]


def data_local(moment: datetime) -> date:
    return horario_local(moment).date()


def data_ou_none(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def carteira_recusada(profile: Profile, carteira: str | None) -> str | None:
    """The Table 38 code the operator's card rules give ``carteira`` (None: a valid card)."""
    if not carteira:
        return "1001"  # NÚMERO DA CARTEIRA INVÁLIDO
    return next((r.codigo for r in profile.elegibilidade if carteira.endswith(r.sufixo)), None)
