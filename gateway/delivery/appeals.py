"""A recurso de glosa names the lote it appeals by the gateway's protocol and the provider's lote
number; the operator knows the lote by its own protocol and by the part's number. Translated
before the recurso is prepared, so the operator finds what is appealed.

A split lote: the recurso goes to the part holding the first guide it appeals (a recurso over
guides of several parts would have to be split as well; not done: the operator then refuses the
recurso, 1307 for the guides of the other parts, gateway.message.recurso).
"""

from __future__ import annotations

from lxml import etree
from sqlalchemy.orm import Session

from gateway.message.services import ANS_NS
from gateway.storage import rows
from gateway.storage.models import Entrega

_A = f"{{{ANS_NS}}}"


def translate(session: Session, entrega: Entrega, root: etree._Element) -> str | None:
    """Rewrite the appealed protocol and lote in ``root`` (the recurso as received); returns why
    the recurso must wait, or None."""
    for guia in root.iter(f"{_A}guiaRecursoGlosa", f"{_A}guiaRecursoGlosaOdonto"):
        protocolo = guia.find(f"{_A}numeroProtocolo")
        if protocolo is None or not (protocolo.text or "").strip():
            continue
        found = rows.protocolo_encaminhado(session, prestador_id=entrega.prestador_id,
                                              registro_ans=entrega.registro_ans,
                                              numero=protocolo.text.strip())
        if found is None or not found.partes:
            continue  # not the gateway's number: the provider used the operator's own
        if not found.entregue:
            return f"o lote do protocolo {found.numero} ainda não foi entregue à operadora"
        parte = _part_of(found, {g.text.strip() for g in guia.iter(f"{_A}numeroGuiaPrestador")
                                 if g.text})
        protocolo.text = parte.numero_protocolo
        lote = guia.find(f"{_A}numeroLote")
        if lote is not None and parte.numero_lote:
            lote.text = parte.numero_lote
    return None


def _part_of(found: rows.ProtocoloEncaminhado, guias: set[str]) -> rows.ParteEncaminhada:
    for parte in found.partes:
        if guias & set(parte.guias):
            return parte
    return found.partes[0]
