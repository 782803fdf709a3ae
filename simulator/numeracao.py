"""The operators' own numbers: protocols (PEG), guide numbers assigned by the operator, senhas.

Numbers come from per-operator counters in the database (``models.proximo_numero``), formatted the
way each operator's portal shows them. Protocol numbers are digits only: the recurso de glosa
refers to them as st_numerico12. Where a manual shows no format, a plain counter is used.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from simulator.models import proximo_numero

if TYPE_CHECKING:
    from simulator.profile import Profile


@dataclass(frozen=True)
class Formato:
    largura: int = 0  # zero-padded to this width (0: as is)
    prefixo_ano: bool = False  # AAAA + the counter (the counter does not restart each year)

    def formatar(self, numero: int, agora: datetime) -> str:
        text = f"{numero:0{self.largura}d}" if self.largura else str(numero)
        if self.prefixo_ano:
            text = f"{agora.year:04d}{text}"
        if len(text) > 12:
            raise OverflowError(f"número de protocolo com mais de 12 dígitos: {text}")
        return text


# How each operator's portal shows its numbers (the first one is the profile's protocolo_inicial):
# PASA "Protocolo (PEG): 48759"; Capital Prev's 8-digit "Sequencial" (00000036). The others show
# none: a year-prefixed counter for Unimed (its faturas are numbered by date), a 10-digit one for
# CASSEMS, a plain one for IPASGO (SIFE "Fatura").
FORMATOS: dict[str, Formato] = {
    "capitalprev": Formato(largura=8),
    "unimed": Formato(largura=6, prefixo_ano=True),
    "cassems": Formato(largura=10),
}
GUIA_INICIAL = 700  # PASA's demonstrativo shows a guide numbered 698 by the operator


def numero_protocolo(session: Session, profile: Profile, agora: datetime) -> str:
    """A new protocol number of the operator (lotes, anexos, recursos, documentos share it)."""
    numero = proximo_numero(session, profile.registro_ans, "protocolo", profile.protocolo_inicial)
    return FORMATOS.get(profile.key, Formato()).formatar(numero, agora)


def numero_demonstrativo(session: Session, registro_ans: str) -> str:
    return str(proximo_numero(session, registro_ans, "demonstrativo", 1))


def numero_guia_operadora(session: Session, registro_ans: str) -> str:
    """The number the operator gives a guide (or an authorisation) that came without one."""
    return str(proximo_numero(session, registro_ans, "guia", GUIA_INICIAL))


def senha(seed: int | str, registro_ans: str, numero_guia_operadora: str) -> str:
    """An authorisation password: 8 digits, deterministic for (seed, operator, guide)."""
    digest = hashlib.sha256(f"{seed}:{registro_ans}:{numero_guia_operadora}".encode()).hexdigest()
    return f"{int(digest[:12], 16) % 10**8:08d}"
