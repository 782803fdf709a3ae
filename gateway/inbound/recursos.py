"""A recurso de glosa at acceptance: what the operator would refuse in it, said at once.

The operator refuses a recurso whose guides, items or values contradict its glosas
(gateway.message.recurso: the checks the simulated operators run on their own analysis). The
gateway knows the glosas the operator reported: each delivered part's last situação answer
(``Entrega.situacao_id``, stored by the tracker), read once the operator analysed the part
(STATUS_ANALISADOS). So it refuses, with the same Table 38 codes, only what it knows:

* a guide that is not in the appealed protocol (1307), whether analysed or not: the gateway holds
  the protocol's guides;
* a guide without glosa (2908), an item not in the guide (1801), more asked than glosado (1705),
  only for guides of a part the operator analysed. A guide whose part the operator has not
  analysed yet (or whose situação the gateway has not fetched yet) is not checked: refusing
  "sem glosa" before the analysis would refuse a recurso the operator may take (it has the
  analysis first); the operator decides when the recurso is delivered.

A protocol the gateway does not know (the operator's own number that is none of its deliveries,
or any other number) is not checked either: the operator answers it. Named by the operator's
protocol of one part of a split lote, the recurso appeals that part only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lxml import etree

from gateway.delivery.client import Answer
from gateway.delivery.reading import read_answer
from gateway.message import recurso, responses
from gateway.message.findings import Finding
from gateway.message.reader import MessageError, read
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import SERVICE_BY_NAME
from gateway.storage import rows
from gateway.storage.prepared import Db

STATUS = SERVICE_BY_NAME["tissSolicitacaoStatusProtocolo"]
CRITICA_PADRAO = "5002"  # a code the recurso's version lacks (none today: every code is in 4.01-4.03)


@dataclass
class _Analise:
    glosadas: dict[str, recurso.GuiaGlosada] = field(default_factory=dict)
    pendentes: set[str] = field(default_factory=set)  # guides of the protocol not analysed


def criticas_do_recurso(connection: Db, prestador_id: int, registro_ans: str, message_root: etree._Element,
                        version: str, *, registry: SchemaRegistry | None = None) -> list[Finding]:
    """The críticas of the loteRecursoGlosaWS ``message_root`` against the glosas the operator
    reported (empty: nothing to refuse). ``registry``: validate the stored situação answers
    again (without it they are only parsed safely: the tracker kept them as received)."""
    lido = recurso.ler_recurso(message_root)
    found = _partes_recursadas(connection, lido.numero_protocolo, prestador_id, registro_ans)
    if found is None:
        return []
    guias, partes = found
    analise = _analise(connection, guias, partes, registry)
    codigos = responses.codigos_glosa(version)
    return [c if c.code in codigos else replace(c, code=CRITICA_PADRAO)
            for c in recurso.criticas(lido, analise.glosadas, analise.pendentes)]


def _partes_recursadas(db: Db, numero: str, prestador_id: int, registro_ans: str,
                       ) -> tuple[set[str], list[rows.ParteEncaminhada]] | None:
    """The appealed protocol's guides and the deliveries behind it; None: not the gateway's."""
    lote = rows.lote_do_protocolo(db, numero, prestador_id, registro_ans)
    if lote is not None and lote.lote_id is not None:
        return {g.numero_guia_prestador for g in lote.guias}, rows.partes_do_lote(db, lote.lote_id)
    da_operadora = rows.protocolos_da_operadora(db, [numero], prestador_id=prestador_id,
                                                registro_ans=registro_ans).get(numero)
    if da_operadora is None:
        return None
    lote = rows.lote_do_protocolo(db, da_operadora.numero, prestador_id, registro_ans)
    if lote is None or lote.lote_id is None:
        return None
    partes = [p for p in rows.partes_do_lote(db, lote.lote_id) if p.numero_protocolo == numero]
    guias = {g for p in partes for g in p.guias} or {g.numero_guia_prestador for g in lote.guias}
    return guias, partes


def _analise(db: Db, guias: set[str], partes: Sequence[rows.ParteEncaminhada],
             registry: SchemaRegistry | None) -> _Analise:
    analise = _Analise()
    corpos = rows.corpos(db, [p.situacao_id for p in partes if p.situacao_id is not None])
    cobertas: set[str] = set()
    for parte in partes:
        corpo = corpos.get(parte.situacao_id) if parte.situacao_id is not None else None
        glosadas = _glosas(corpo, registry) if corpo is not None else None
        if glosadas is not None:
            analise.glosadas.update(glosadas)
            cobertas.update(parte.guias or glosadas)
    analise.pendentes = guias - cobertas
    return analise


def _glosas(corpo: bytes, registry: SchemaRegistry | None) -> dict[str, recurso.GuiaGlosada] | None:
    """The glosas of one stored situação answer, if it is a valid one of an analysed protocol."""
    if registry is not None:
        reading = read_answer(Answer(200, corpo, ""), STATUS, registry)
        message = reading.message if reading.kind == "entregue" else None
    else:
        try:
            message = read(corpo, max(len(corpo), 1))
        except MessageError:
            return None
    if message is None or message.kind != STATUS.response:
        return None
    return recurso.glosas_da_situacao(message.root)
