"""How the console writes things: Brasília dates, reais, masked card numbers, dates typed in forms."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

# Brazil has had no daylight saving time since 2019: Brasília time is a fixed UTC-3 (and needs no
# time-zone database on the host).
BRASILIA = timezone(timedelta(hours=-3), "BRT")
NAO_INFORMADO = "—"


def data_hora(moment: datetime | None) -> str:
    if moment is None:
        return NAO_INFORMADO
    return moment.astimezone(BRASILIA).strftime("%d/%m/%Y %H:%M")


def data(moment: datetime | date | None) -> str:
    if moment is None:
        return NAO_INFORMADO
    if isinstance(moment, datetime):
        moment = moment.astimezone(BRASILIA).date()
    return moment.strftime("%d/%m/%Y")


def reais(valor: Decimal | None) -> str:
    """``R$ 1.234,56``; None (the operator has not said) is ``—``."""
    if valor is None:
        return NAO_INFORMADO
    sinal = "-" if valor < 0 else ""
    inteiro, _, centavos = f"{abs(valor):,.2f}".partition(".")
    return f"R$ {sinal}{inteiro.replace(',', '.')},{centavos}"


def numero(valor: int | None) -> str:
    return NAO_INFORMADO if valor is None else f"{valor:,}".replace(",", ".")


def percentual(valor: Decimal | float | None) -> str:
    if valor is None:
        return NAO_INFORMADO
    return f"{float(valor) * 100:.1f}%".replace(".", ",")


def carteira(numero_carteira: str | None) -> str:
    """A card number with all but its last 4 characters hidden (never shown in full)."""
    if not numero_carteira:
        return NAO_INFORMADO
    visiveis = min(4, len(numero_carteira) // 2)
    return "•" * (len(numero_carteira) - visiveis) + numero_carteira[len(numero_carteira) - visiveis:]


def dia_do_formulario(texto: str | None) -> date | None:
    """``AAAA-MM-DD`` (what <input type=date> sends); ValueError for anything else but empty."""
    texto = (texto or "").strip()
    if not texto:
        return None
    if len(texto) != 10:  # fromisoformat also takes 20250101 and week dates
        raise ValueError(f"data inválida: {texto!r}")
    return date.fromisoformat(texto)


def inicio_do_dia(dia: date) -> datetime:
    """The UTC moment a Brasília day starts."""
    return datetime.combine(dia, time(0), BRASILIA).astimezone(UTC)
