"""The status light of a lote, as the operators' portals show it (semáforo): green paid or
released, yellow under analysis, orange waiting for the provider, red refused, closed without
payment or failed, grey received or not sent yet.

A lote's situação is its gateway protocol's status (tables.SITUACOES_PROTOCOLO: dm_statusProtocolo,
or the gateway's RECUSADO_PELA_OPERADORA when the operator refused the whole lote; a part the
operator refused leaves its guides refused and the status to the parts it took). Its deliveries
speak only for what the protocol cannot say: a delivery dead-lettered, or refused by its adapter
before any operator saw it, is FALHA; one not sent yet is ENVIO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.delivery.state import NOT_SENT, State
from gateway.message.tables import RECUSADO_PELA_OPERADORA, SITUACOES_PROTOCOLO, STATUS_PROTOCOLO

VERDE, AMARELA, LARANJA, VERMELHA, CINZA = "verde", "amarela", "laranja", "vermelha", "cinza"
COR_DO_STATUS = {1: CINZA, 2: AMARELA, 3: VERDE, 4: VERMELHA, 5: AMARELA, 6: VERDE, 7: VERMELHA,
                 8: LARANJA, 9: VERMELHA, 10: VERMELHA, RECUSADO_PELA_OPERADORA: VERMELHA}
# Filter values of the lotes list that are not a dm_statusProtocolo: RECUSADO is the protocol's
# RECUSADO_PELA_OPERADORA (a word in the URL, as before it was a status); FALHA and ENVIO come
# from the deliveries.
RECUSADO, FALHA, ENVIO = "recusado", "falha", "envio"
ROTULOS = {RECUSADO: SITUACOES_PROTOCOLO[RECUSADO_PELA_OPERADORA],
           FALHA: "Falha no envio (entrega morta ou não preparada)", ENVIO: "Não enviado à operadora"}
COR_DA_ENTREGA = {FALHA: VERMELHA, ENVIO: CINZA}
# A delivery its adapter refused (State.RECUSADA without an answer of the operator): as stuck as a
# dead one. Counted under this name by estado_da_luz.
NAO_PREPARADA = "nao_preparada"
PARADAS = (State.MORTA, NAO_PREPARADA)  # deliveries that wait for a person (FALHA)


@dataclass(frozen=True)
class Luz:
    codigo: str  # a dm_statusProtocolo as text, or RECUSADO / FALHA / ENVIO
    rotulo: str
    cor: str
    status: int | None = None  # the protocol status shown; None for what the deliveries are doing


def estado_da_luz(estado: str, respondida: bool) -> str:
    """A delivery's state as do_lote counts it (``respondida``: the operator answered it)."""
    return NAO_PREPARADA if estado == State.RECUSADA and not respondida else estado


def do_status(status: int | None) -> Luz:
    status = status or 1
    codigo = RECUSADO if status == RECUSADO_PELA_OPERADORA else str(status)
    rotulo = SITUACOES_PROTOCOLO.get(status, f"Status {status}")
    return Luz(codigo, rotulo, COR_DO_STATUS.get(status, CINZA), status)


def do_lote(status: int | None, estados: Mapping[str, int]) -> Luz:
    """``estados``: how many of the lote's deliveries are in each entrega.estado."""
    if status == RECUSADO_PELA_OPERADORA:
        return do_status(status)
    if any(estados.get(estado) for estado in PARADAS):
        return Luz(FALHA, ROTULOS[FALHA], COR_DA_ENTREGA[FALHA])
    if any(estados.get(estado) for estado in NOT_SENT):
        return Luz(ENVIO, ROTULOS[ENVIO], COR_DA_ENTREGA[ENVIO])
    return do_status(status)


def opcoes() -> list[tuple[str, str, str]]:
    """(value, label, colour) of every situação the lotes list filters by."""
    found = [(str(k), v, COR_DO_STATUS[k]) for k, v in STATUS_PROTOCOLO.items()]
    found.append((RECUSADO, ROTULOS[RECUSADO], COR_DO_STATUS[RECUSADO_PELA_OPERADORA]))
    return found + [(k, ROTULOS[k], COR_DA_ENTREGA[k]) for k in (FALHA, ENVIO)]
