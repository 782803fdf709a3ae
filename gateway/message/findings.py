"""Findings: what is wrong with a message, with its ANS Table 38 code (dm_tipoGlosa)."""

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files


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


@cache
def tabela38() -> dict[str, str | None]:
    """Codes allowed by the 4.03.00 dm_tipoGlosa enumeration, with the ANS description if known."""
    raw = files(__package__).joinpath("tabela38.json").read_text(encoding="utf-8")
    return json.loads(raw)["codes"]


def describe(code: str) -> str | None:
    return tabela38().get(code)
