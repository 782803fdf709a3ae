"""A real headless Chromium for the console's browser tests: Debian's ``chromium`` driven by
Playwright for Python (``playwright install`` is never run: browser downloads are blocked; the
Playwright driver ships inside its wheel and talks to the system Chromium).

:func:`ensure_chromium` installs ``chromium`` and ``chromium-driver`` with apt (``sudo -n`` when
not root) if ``/usr/bin/chromium`` is missing, and raises :class:`BrowserUnavailable` when it
cannot: the browser tests must fail loudly on a machine without a browser, not skip.

Also PNG helpers for the screenshot tests (no imaging library: zlib and struct are enough).
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from tests.debian import PackagesUnavailable, apt_install

CHROMIUM = Path("/usr/bin/chromium")
PACKAGES = ("chromium", "chromium-driver")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class BrowserUnavailable(RuntimeError):
    pass


def ensure_chromium() -> Path:
    """``/usr/bin/chromium``, installed with apt-get first if it is missing."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    try:
        apt_install(PACKAGES)
    except PackagesUnavailable as exc:
        raise BrowserUnavailable(f"{CHROMIUM} não existe: {exc}") from exc
    if not CHROMIUM.is_file():
        raise BrowserUnavailable(f"{' '.join(PACKAGES)} instalados, mas {CHROMIUM} não existe")
    return CHROMIUM


# --- PNG ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Png:
    width: int
    height: int
    channels: int
    rows: list[bytes]  # unfiltered scanlines, ``channels`` bytes per pixel

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        start = x * self.channels
        return tuple(self.rows[y][start:start + self.channels])

    def luminance_variance(self, step: int = 3) -> float:
        """Variance of the grey level over a grid of pixels: ~0 for a blank (one-colour) image."""
        values = []
        for y in range(0, self.height, step):
            row = self.rows[y]
            for x in range(0, self.width, step):
                r, g, b = row[x * self.channels:x * self.channels + 3]
                values.append(0.299 * r + 0.587 * g + 0.114 * b)
        mean = sum(values) / len(values)
        return sum((v - mean) ** 2 for v in values) / len(values)

    def count(self, rgb: tuple[int, int, int]) -> int:
        """How many pixels are exactly this colour."""
        needle, found = bytes(rgb), 0
        for row in self.rows:
            position = row.find(needle)
            while position != -1:
                found += position % self.channels == 0
                position = row.find(needle, position + 1)
        return found

    def distinct_colours(self, step: int = 3) -> int:
        return len({self.pixel(x, y)[:3] for y in range(0, self.height, step)
                    for x in range(0, self.width, step)})


_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(data: bytes) -> Png:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium's screenshots are)."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("não é um PNG")
    offset, header, idat = len(_SIGNATURE), None, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        chunk = data[offset + 8:offset + 8 + length]
        if zlib.crc32(kind + chunk) != struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])[0]:
            raise ValueError(f"CRC errado no bloco {kind!r}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        offset += 12 + length
    if header is None:
        raise ValueError("PNG sem IHDR")
    width, height, depth, colour, _compression, _filter, interlace = header
    channels = {2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"PNG não suportado: profundidade {depth}, cor {colour}, entrelaçado {interlace}")
    raw = zlib.decompress(b"".join(idat))
    return Png(width, height, channels, _unfilter(raw, width, height, channels))


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytes]:
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    position = 0
    for _ in range(height):
        kind = raw[position]
        line = bytearray(raw[position + 1:position + 1 + stride])
        position += 1 + stride
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                corner = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
            elif kind != 0:
                raise ValueError(f"filtro PNG desconhecido {kind}")
        rows.append(bytes(line))
        previous = line
    return rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c
