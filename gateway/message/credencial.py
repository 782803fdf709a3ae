"""The provider's ``senhaPrestador`` taken out of a message's bytes before they are stored, and put
back in memory before they are sent.

The value is the MD5 a client logs in with: kept at rest it is a login for whoever reads the
database. It is found in the raw bytes, never by re-serialising: the content of every
``senhaPrestador`` element (any namespace prefix; text, entities, CDATA or anything else up to its
end tag; without one, as in a malformed or truncated body, up to the next ``<`` or the end) becomes
``*`` of the same length, so offsets, the document's size and its well-formedness stay as they
were, and :func:`restore` gives the original bytes back exactly (hash and signature
computed over the real value stay valid). ISO-8859-1, UTF-8 and US-ASCII are scanned as bytes;
UTF-16 and UTF-32 (refused at the door, but refused bodies are stored too) by their code units.
Pure functions: no I/O, nothing raised for any input but :func:`restore`/:func:`unpack` on spans
that do not fit.
"""

from __future__ import annotations

import hashlib
import re
import string
import struct
from dataclasses import dataclass

MASK = b"*"
_NAME = b"senhaPrestador"
# A start tag with any prefix (ASCII name characters, or any non-ASCII byte) and attributes, not
# self-closing; matched only where the name itself was found (a regex searching the whole body
# tries every "<": 34 ms for a 100-guide lote, against 0.1 ms). Its end tag is looked for apart
# (linear: a hostile body of unclosed start tags costs one search per distinct name).
_PREFIX = frozenset((string.ascii_letters + string.digits + "_.-").encode()) | frozenset(range(0x80, 0x100))
_START = re.compile(rb"<((?:[\w.\x80-\xff-]+:)?" + _NAME + rb")(?:\s[^<>]*)?(?<!/)>")
_END_REST = re.compile(rb"\s*>")
_SPAN = struct.Struct(">II")  # offset, length


@dataclass(frozen=True, slots=True)
class Span:
    """Original bytes at ``offset`` of a message (the masked content of one senhaPrestador)."""

    offset: int
    original: bytes


@dataclass(frozen=True, slots=True)
class Redaction:
    """A message as stored: ``corpo`` with every senha masked, and what was taken out."""

    corpo: bytes
    spans: tuple[Span, ...]
    sha256_original: str | None  # of the bytes as received or sent; None when nothing was taken

    @property
    def removida(self) -> bool:
        return bool(self.spans)


def find(data: bytes) -> tuple[Span, ...]:
    """Every senhaPrestador content in ``data`` (empty, or only the mask already: none)."""
    return _find(data)[0]


def redact(data: bytes) -> Redaction:
    """``data`` with every senhaPrestador content masked (the same bytes when there is none)."""
    spans, unit = _find(data)
    if not spans:
        return Redaction(data, (), None)
    masked = bytearray(data)
    for span in spans:
        masked[span.offset:span.offset + len(span.original)] = unit * (len(span.original) // len(unit))
    return Redaction(bytes(masked), spans, hashlib.sha256(data).hexdigest())


def restore(corpo: bytes, spans: tuple[Span, ...]) -> bytes:
    """The original bytes of a redacted ``corpo``; ValueError when the spans are not its own."""
    if not spans:
        return corpo
    original = bytearray(corpo)
    for span in spans:
        end = span.offset + len(span.original)
        if end > len(corpo) or original[span.offset:end].strip(MASK + b"\x00"):
            raise ValueError("senhaPrestador guardada não corresponde à mensagem armazenada")
        original[span.offset:end] = span.original
    return bytes(original)


def pack(spans: tuple[Span, ...]) -> bytes:
    """Spans as bytes (to be encrypted: gateway.security.vault)."""
    return b"".join(_SPAN.pack(s.offset, len(s.original)) + s.original for s in spans)


def unpack(data: bytes) -> tuple[Span, ...]:
    spans, position = [], 0
    while position < len(data):
        offset, length = _SPAN.unpack_from(data, position)
        position += _SPAN.size
        if position + length > len(data):
            raise ValueError("credencial guardada truncada")
        spans.append(Span(offset, data[position:position + length]))
        position += length
    return tuple(spans)


def _secret(content: bytes) -> bool:
    """Anything but nothing or the mask (a stored message redacted again keeps its first hash)."""
    return bool(content.strip(MASK + b"\x00"))


def _find(data: bytes) -> tuple[tuple[Span, ...], bytes]:
    """The spans, and the mask's code unit (``*``; in UTF-16/32 with NULs around it)."""
    if _NAME in data:
        return tuple(Span(a, data[a:b]) for a, b in _scan(data)), MASK
    if b"\x00" not in data:
        return (), MASK
    for stride in (2, 4):  # UTF-16/32, LE or BE: scan each code unit's ASCII byte
        for phase in range(stride):
            view = data[phase::stride]
            if _NAME in view:
                unit = bytearray(stride)
                unit[phase] = MASK[0]
                whole = len(data) - len(data) % stride
                return tuple(Span(stride * a, data[stride * a:min(stride * b, whole)])
                             for a, b in _scan(view)), bytes(unit)
    return (), MASK


def _scan(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each senhaPrestador element's content, left to right."""
    found, position, unclosed = [], 0, set()
    while (start := _next_start(data, position)) is not None:
        name, position = start.group(1), start.end()
        end = None if name in unclosed else _end_tag(data, name, position)
        if end is None:  # malformed or cut short (refused bodies are stored too): up to the next tag
            unclosed.add(name)  # no end tag after here: none after any later start either
            end = _next_tag(data, position)
        if _secret(data[position:end]):
            found.append((position, end))
        position = end
    return found


def _next_start(data: bytes, position: int) -> re.Match[bytes] | None:
    """The next senhaPrestador start tag at or after ``position``: the name found by a plain search,
    then its prefix walked back (each walk stops at its own colon: linear) and the tag matched."""
    while (found := data.find(_NAME, position)) >= 0:
        position, tag = found + len(_NAME), found - 1
        if tag >= 0 and data[tag] == 0x3A:  # ":": a prefix before it
            tag -= 1
            while tag >= 0 and data[tag] in _PREFIX:
                tag -= 1
        if tag >= 0 and data[tag] == 0x3C and (start := _START.match(data, tag)) is not None:  # "<"
            return start
    return None


def _next_tag(data: bytes, position: int) -> int:
    found = data.find(b"<", position)
    return len(data) if found < 0 else found


def _end_tag(data: bytes, name: bytes, position: int) -> int | None:
    closing = b"</" + name
    while (end := data.find(closing, position)) >= 0:
        if _END_REST.match(data, end + len(closing)):
            return end
        position = end + len(closing)
    return None
