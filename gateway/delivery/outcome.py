"""What the operator's answer to a delivered lote means for the lote, its guides and its protocol:
the one writer of it (the worker calls :func:`registrar` with each answer it records, the tracker
:func:`atualizar_protocolo` with each status it learns).

* **A part refused** (the operator's mensagemErro, or a tissFault about the sender): each guide of
  the part (``Entrega.guias``) becomes GUIA_RECUSADA, with the operator's críticas linked to it.
  Once every part of the lote is refused the protocol becomes RECUSADO_PELA_OPERADORA and the
  lote's number is free again (``numero_vigente`` cleared): the provider sends the corrected lote
  under the same number.
* **A part taken** (protocoloRecebimento): a guide of the part the receipt does not list
  (dadosGuias/dadosGuiasOdonto) was refused by the operator (partial sending, e.g. IPASGO):
  GUIA_RECUSADA, with the glosaProtocolo motive that names it (``responses.guia_da_recusa``), or
  else :data:`NAO_CONSTA` with the code of the receipt's only motive, or 5002.
* **The protocol's status** is the least advanced of the parts the operator took (refused parts
  left out; a part not answered yet keeps it "Recebido"); RECUSADO_PELA_OPERADORA is final.

Runs inside the caller's transaction: flushes, never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.delivery.reading import Reading
from gateway.delivery.state import State
from gateway.message import responses
from gateway.message.findings import XML_NAO_VALIDADO, Finding, error
from gateway.message.services import ANS_NS
from gateway.message.tables import GUIA_ACEITA, GUIA_RECUSADA, PROGRESS, RECEBIDO, RECUSADO_PELA_OPERADORA
from gateway.storage import rows
from gateway.storage.models import Entrega, Lote, Protocolo
from gateway.storage.protocolos import set_status

LOTE_GUIAS = "tissLoteGuias"
NAO_CONSTA = "guia não consta do protocolo de recebimento da operadora"
# No Table 38 term says "not taken, reason not given": every guide-level code (1307 número
# inválido, 1308 já apresentada, 1304 cobrança indevida...) would claim a reason the operator never
# gave. 5002 is the gateway's code for an operator refusal it cannot name (relay.CRITICA_PADRAO),
# in dm_tipoGlosa of every version.
CODIGO_NAO_CONSTA = XML_NAO_VALIDADO
_NS = {"ans": ANS_NS}
_DETALHE = etree.XPath("ans:recebimentoLote/ans:protocoloRecebimento/ans:detalheProtocolo", namespaces=_NS)
_NUMEROS_RECEBIDOS = etree.XPath("ans:dadosGuiasProtocolo/*/ans:numeroGuiaPrestador/text()", namespaces=_NS)
_MOTIVOS = etree.XPath("ans:glosaProtocolo/ans:motivosGlosa/ans:motivoGlosa", namespaces=_NS)


@dataclass(frozen=True)
class Desfecho:
    """How many guides of a part the operator took and refused (for the worker's metrics)."""

    aceitas: int = 0
    recusadas: int = 0


def registrar(session: Session, entrega: Entrega, reading: Reading, now: datetime) -> Desfecho:
    """What ``reading`` (the operator's answer to ``entrega``, just stored) means for its lote;
    nothing for other services nor for an answer to retry."""
    if entrega.servico != LOTE_GUIAS or entrega.lote_id is None:
        return Desfecho()
    if reading.kind == "recusada":
        return _parte_recusada(session, entrega, reading.criticas, now)
    if reading.kind == "entregue" and reading.message is not None:
        return _parte_aceita(session, entrega, reading.message.root)
    return Desfecho()


def _parte_recusada(session: Session, entrega: Entrega, criticas: Sequence[Finding],
                    now: datetime) -> Desfecho:
    lote_id = _lote_id(entrega)
    ids = _guias_aceitas(session, entrega)
    criticas = list(criticas) or [error(None, "recusada pela operadora")]
    rows.set_situacao_guias(session, list(ids.values()), GUIA_RECUSADA)
    rows.bump_versao(session, entrega.protocolo_id)  # the guides left its situação answer
    rows.add_criticas_das_guias(session, entrega.resposta_id,
                                [(guia_id, c) for guia_id in ids.values() for c in criticas], lote_id=lote_id)
    if entrega.protocolo_id is not None:
        atualizar_protocolo(session, entrega.protocolo_id, entrega.registro_ans, now)
    return Desfecho(recusadas=len(ids))


def _parte_aceita(session: Session, entrega: Entrega, recibo: etree._Element) -> Desfecho:
    detalhe = next(iter(_DETALHE(recibo)), None)
    recebidas = set(_NUMEROS_RECEBIDOS(detalhe)) if detalhe is not None else set()
    ids = _guias_aceitas(session, entrega)
    if not recebidas:  # a receipt without its guide list says nothing about them
        return Desfecho(aceitas=len(ids))
    faltam = {numero: guia_id for numero, guia_id in ids.items() if numero not in recebidas}
    motivos = _MOTIVOS(detalhe)
    rows.set_situacao_guias(session, list(faltam.values()), GUIA_RECUSADA)
    rows.bump_versao(session, entrega.protocolo_id if faltam else None)  # they left its situação answer
    criticas = [(guia_id, _critica_da_guia(numero, motivos)) for numero, guia_id in faltam.items()]
    rows.add_criticas_das_guias(session, entrega.resposta_id, criticas, lote_id=_lote_id(entrega))
    return Desfecho(aceitas=len(ids) - len(faltam), recusadas=len(faltam))


def _critica_da_guia(numero: str, motivos: Sequence[etree._Element]) -> Finding:
    """The receipt's glosaProtocolo motive naming the guide; else the generic crítica (with the
    code of the only motive, when there is just one: it can only be about the left-out guides)."""
    lidos = [(m.findtext("ans:codigoGlosa", namespaces=_NS), m.findtext("ans:descricaoGlosa", namespaces=_NS)
              or "") for m in motivos]
    for codigo, descricao in lidos:
        if responses.guia_da_recusa(descricao) == numero:
            prefixo = responses.RECUSADA_PREFIXO.format(numero=numero)
            return error(codigo, descricao.removeprefix(prefixo) or NAO_CONSTA)
    codigo = lidos[0][0] if len(lidos) == 1 and lidos[0][0] else CODIGO_NAO_CONSTA
    return error(codigo, NAO_CONSTA)


def _guias_aceitas(session: Session, entrega: Entrega) -> dict[str, int]:
    """numeroGuiaPrestador -> guia.id of the part's guides still aceita (a lote sent whole may not
    have its list: then every guide of the lote)."""
    ids = rows.guia_ids(session, _lote_id(entrega), GUIA_ACEITA)
    numeros = [n for n in (entrega.guias or "").split("\n") if n]
    if not numeros and (entrega.partes or 1) == 1:
        return ids
    return {n: ids[n] for n in numeros if n in ids}


def _lote_id(entrega: Entrega) -> int:
    if entrega.lote_id is None:
        raise ValueError(f"entrega {entrega.id} não é de um lote")
    return entrega.lote_id


# --- the protocol's status -----------------------------------------------------------------------


def atualizar_protocolo(session: Session, protocolo_id: int, registro_ans: str, now: datetime) -> None:
    """The lote protocol's status from its parts: RECUSADO_PELA_OPERADORA once every part is refused
    (the lote's number freed), else the least advanced of the parts the operator took once each has
    a status. Never changes a protocol already RECUSADO_PELA_OPERADORA."""
    partes = _partes_travadas(session, protocolo_id)
    protocolo = session.get_one(Protocolo, protocolo_id)
    if protocolo.status == RECUSADO_PELA_OPERADORA or not partes:
        return
    origem = f"operadora:{registro_ans}"
    if _todas_recusadas(partes):
        set_status(session, protocolo, RECUSADO_PELA_OPERADORA, origem, now=now)
        _libera_numero(session, protocolo_id)
        return
    tomadas = [p for p in partes if p.estado != State.RECUSADA]
    if any(p.status is None for p in tomadas):
        return  # a part not delivered yet: the lote as a whole is still "Recebido"
    least = min((p.status or RECEBIDO for p in tomadas), key=lambda s: PROGRESS.get(s, 1))
    if protocolo.status != least:
        set_status(session, protocolo, least, origem, now=now)


def _partes_travadas(session: Session, protocolo_id: int) -> Sequence[Entrega]:
    """The protocol's parts, read after locking the protocol: parts are answered and polled by
    different threads, and the later of two concurrent updates must see the earlier one
    (PostgreSQL, READ COMMITTED; SQLite transactions are serial anyway)."""
    session.flush()
    session.execute(select(Protocolo.id).where(Protocolo.id == protocolo_id).with_for_update())
    return session.scalars(select(Entrega).where(Entrega.protocolo_id == protocolo_id)
                           .execution_options(populate_existing=True)).all()


def _todas_recusadas(partes: Sequence[Entrega]) -> bool:
    """Every part refused, and every part there is (all prepared: each knows how many there are)."""
    return all(p.estado == State.RECUSADA and p.partes == len(partes) for p in partes)


def _libera_numero(session: Session, protocolo_id: int) -> None:
    for lote in session.scalars(select(Lote).where(Lote.protocolo_id == protocolo_id)):
        lote.numero_vigente = None
    session.flush()
