"""What the console reads out of stored message bodies: the message itself and its decimal values.
Either is None when it is not there to read: the console shows "—", never a guess."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from gateway.message import reader
from gateway.message.reader import MessageError, TissMessage


def message(corpo: bytes | None, kind: str) -> TissMessage | None:
    """A stored body read with the safe reader, if it is a ``kind`` message (e.g. loteGuiasWS);
    None when the body was pruned, does not parse or is another message."""
    if not corpo:
        return None
    try:
        found = reader.read(corpo)
    except MessageError:
        return None
    return found if found.kind == kind else None


def decimal(text: str | None) -> Decimal | None:
    """A TISS value (``1234.56``); None when empty, malformed or not finite."""
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
