"""The status light of a lote, as the operators' portals show it (semáforo): green paid or
released, yellow under analysis, orange waiting for the provider, red refused, closed without
payment or failed, grey received or not sent yet.

A lote's situação is its gateway protocol's dm_statusProtocolo once every part reached the operator;
before that, what its deliveries are doing (a part refused by the operator or dead-lettered wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.delivery.state import NOT_SENT, State
from gateway.message.tables import STATUS_PROTOCOLO

VERDE, AMARELA, LARANJA, VERMELHA, CINZA = "verde", "amarela", "laranja", "vermelha", "cinza"
COR_DO_STATUS = {1: CINZA, 2: AMARELA, 3: VERDE, 4: VERMELHA, 5: AMARELA, 6: VERDE, 7: VERMELHA,
                 8: LARANJA, 9: VERMELHA, 10: VERMELHA}
# Situações that are not a dm_statusProtocolo (filter values of the lotes list).
RECUSADO, FALHA, ENVIO = "recusado", "falha", "envio"
ROTULOS = {RECUSADO: "Recusado pela operadora", FALHA: "Falha no envio (entrega morta)",
           ENVIO: "Não enviado à operadora"}
COR_DA_ENTREGA = {RECUSADO: VERMELHA, FALHA: VERMELHA, ENVIO: CINZA}


@dataclass(frozen=True)
class Luz:
    codigo: str  # a dm_statusProtocolo as text, or RECUSADO / FALHA / ENVIO
    rotulo: str
    cor: str

    @property
    def status(self) -> int | None:
        """The dm_statusProtocolo shown; None for what the deliveries are doing (RECUSADO, ...)."""
        return int(self.codigo) if self.codigo.isdigit() else None


def do_status(status: int | None) -> Luz:
    status = status or 1
    rotulo = STATUS_PROTOCOLO.get(status, f"Status {status}")
    return Luz(str(status), rotulo, COR_DO_STATUS.get(status, CINZA))


def do_lote(status: int | None, estados: Mapping[str, int]) -> Luz:
    """``estados``: how many of the lote's deliveries are in each entrega.estado."""
    for codigo, estado in ((RECUSADO, State.RECUSADA), (FALHA, State.MORTA)):
        if estados.get(estado):
            return Luz(codigo, ROTULOS[codigo], COR_DA_ENTREGA[codigo])
    if any(estados.get(estado) for estado in NOT_SENT):
        return Luz(ENVIO, ROTULOS[ENVIO], CINZA)
    return do_status(status)


def opcoes() -> list[tuple[str, str, str]]:
    """(value, label, colour) of every situação the lotes list filters by."""
    found = [(str(k), v, COR_DO_STATUS[k]) for k, v in STATUS_PROTOCOLO.items()]
    return found + [(k, v, COR_DA_ENTREGA[k]) for k, v in ROTULOS.items()]
