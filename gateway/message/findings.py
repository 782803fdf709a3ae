"""Findings: what is wrong with a message, with its ANS Table 38 code (dm_tipoGlosa)."""

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from itertools import islice


class Severity(StrEnum):
    ERROR = "erro"
    WARNING = "alerta"


# Table 38 codes the message core uses (descriptions are the ANS terms).
MENSAGEM_FORA_DO_PADRAO = "5001"
XML_NAO_VALIDADO = "5002"
REMETENTE_NAO_IDENTIFICADO = "5005"
HASH_INVALIDO = "5014"
GUIAS_ACIMA_DO_MAXIMO = "5015"
VERSAO_INVALIDA = "5028"

# The críticas a message is answered and stored with: the first ones, then one counting the rest.
# A hostile message can carry hundreds of thousands of errors (one per unknown attribute); each
# kept costs memory, a database row and a line of the answer.
MAX_FINDINGS = 100


@dataclass(frozen=True, slots=True)
class Finding:
    code: str | None
    severity: Severity
    message: str  # Portuguese, for the provider
    location: str | None = None  # element path
    line: int | None = None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["severity"] = str(self.severity)
        return data


def error(code: str | None, message: str, location: str | None = None,
          line: int | None = None) -> Finding:
    return Finding(code, Severity.ERROR, message, location, line)


def first_of(findings: Iterable[Finding], limit: int = MAX_FINDINGS) -> list[Finding]:
    """All the findings when there are at most ``limit`` + 1 (a crítica counting one would cost
    as much), else the first ``limit`` and one crítica counting the rest (counted by consuming
    the iterable, without keeping them). Capping a capped list changes nothing."""
    found = iter(findings)
    kept = list(islice(found, limit + 1))
    rest = sum(1 for _ in found)
    if rest:
        kept[limit:] = [more(rest + 1, kept[limit].code, total=limit + rest + 1)]
    return kept


def more(count: int, code: str | None, *, total: int) -> Finding:
    """The crítica that stands for ``count`` findings not listed, of ``total`` found."""
    return Finding(code, Severity.ERROR,
                   f"E mais {_number(count)} críticas não listadas (total {_number(total)}).")


def stopped(after: int, code: str | None) -> Finding:
    """The crítica saying a check stopped looking after ``after`` findings (there may be more)."""
    return Finding(code, Severity.ERROR, f"Verificação interrompida após {_number(after)} críticas: "
                   "pode haver outras; corrija as listadas e envie a mensagem de novo.")


def _number(n: int) -> str:
    return f"{n:,}".replace(",", ".")  # 599.900, as written in Portuguese


@cache
def tabela38() -> dict[str, str | None]:
    """Codes allowed by the 4.03.00 dm_tipoGlosa enumeration, with the ANS description if known."""
    raw = files(__package__).joinpath("tabela38.json").read_text(encoding="utf-8")
    return json.loads(raw)["codes"]


def describe(code: str) -> str | None:
    return tabela38().get(code)
