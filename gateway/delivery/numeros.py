"""Operator protocol numbers in the texts a provider reads, turned into the gateway's.

The provider knows only the gateway's protocols: an operator's text relayed to it ("Protocolo de
recurso 48761 não localizado", a crítica of a refused delivery, a tissFault's faultstring) names
the gateway's protocol instead of the operator's. A number is an operator's when a delivery of this
provider to this operator got it as its protocol (``Entrega.numero_protocolo``); other numbers in
the text (guides, values, dates, numbers the provider wrote itself) stay as they are.

Free text is told from values by its spaces: ``descricaoGlosa`` and ``observacao`` are sentences,
while a number element (a guide, a protocol, a value) holds one token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from lxml import etree

from gateway.storage import rows
from gateway.storage.prepared import Db

_NUMERO = re.compile(r"[0-9A-Za-z]+(?:[./-][0-9A-Za-z]+)*")
_MAX_NUMERO = 40  # Entrega.numero_protocolo
_MAX_CANDIDATOS = 200  # per text: a bound on the statement's parameters


def candidatos(texto: str) -> set[str]:
    """The tokens of ``texto`` that may be a protocol number (they hold a digit)."""
    found = {m for m in _NUMERO.findall(texto) if len(m) <= _MAX_NUMERO and any(c.isdigit() for c in m)}
    return set(sorted(found)[:_MAX_CANDIDATOS])


def substituir(texto: str, traducoes: Mapping[str, str]) -> str:
    """``texto`` with every whole token that is a key of ``traducoes`` replaced by its value."""
    if not traducoes:
        return texto
    return _NUMERO.sub(lambda m: traducoes.get(m.group(0), m.group(0)), texto)


def textos_livres(root: etree._Element, excluidos: Iterable[str] = ()) -> Iterator[etree._Element]:
    """The elements of ``root`` whose text is free text (a sentence), but those tagged ``excluidos``."""
    fora = frozenset(excluidos)
    for element in root.iter(etree.Element):
        text = element.text
        if text and element.tag not in fora and len(element) == 0 and " " in text.strip():
            yield element


def da_operadora(db: Db, numeros: Iterable[str], *, prestador_id: int,
                 registro_ans: str) -> dict[str, str]:
    """Operator protocol number -> the gateway's, for those of ``numeros`` that are one (one query)."""
    found = rows.protocolos_da_operadora(db, sorted(set(numeros)), prestador_id=prestador_id,
                                         registro_ans=registro_ans)
    return {numero: protocolo.numero for numero, protocolo in found.items()}

def traduzir_texto(db: Db, texto: str, *, prestador_id: int, registro_ans: str) -> str:
    """``texto`` with the operator's protocol numbers replaced by the gateway's."""
    return substituir(texto, da_operadora(db, candidatos(texto), prestador_id=prestador_id,
                                          registro_ans=registro_ans))
