"""Validation cost: the gateway's validate path against the bare minimum, and peak memory.

    .venv/bin/python bench/validate.py [--repeat N]

(a) bare minimum, same process, same compiled schema: lxml parse + schema validate + MD5 of the
    same bytes; (b) ``gateway.message.validation.validate`` (safe parse, version lookup, schema,
    guide limit, TISS hash). Prints times, the ratio b/a (target <= 1.3 at 100 guides) and, for
    a ~15 MB message, the peak resident memory the validate path adds (target <= 20x the size).
"""

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.message import validation
from gateway.message.schema_registry import default_registry
from tests.factory import build_lote, build_request

BARE_PARSER = etree.XMLParser(huge_tree=True)


def bare(data: bytes, schema: etree.XMLSchema) -> None:
    root = etree.fromstring(data, BARE_PARSER)
    schema.validate(root)
    hashlib.md5(data).hexdigest()


def gateway(data: bytes) -> None:
    report = validation.validate(data)
    assert report.valid, report.findings


def best_of(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def big_message() -> bytes:
    """A ~15 MB envioDocumentoWS (one PDF in base64), just under the 15 MiB default limit."""
    return build_request("envioDocumentoWS", documento=b"%PDF-1.4\n" + bytes(range(256)) * 42_500)


def peak_memory_child(path: str) -> None:
    data = Path(path).read_bytes()
    default_registry().schema("4.03.00", "envioDocumentoWS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_kib("VmRSS")
    gateway(data)
    print(f"{len(data)} {(_status_kib('VmHWM') - before) * 1024}")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--memory-child", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        peak_memory_child(args.memory_child)
        return
    schema = default_registry().schema("4.03.00", "loteGuiasWS")
    cases = [(f"lote SP/SADT {n:>3} guias", build_lote("sp-sadt", n)) for n in (1, 10, 100)]
    cases.append(("envioDocumento ~15 MB", big_message()))
    print(f"{'mensagem':<24} {'bytes':>10} {'a) bare ms':>11} {'b) gateway ms':>14} {'b/a':>6}")
    for label, data in cases:
        repeat = args.repeat if len(data) < 1_000_000 else max(3, args.repeat // 6)
        gateway(data)  # warm: schema compiled, caches filled
        a = best_of(lambda d=data: bare(d, schema), repeat)
        b = best_of(lambda d=data: gateway(d), repeat)
        print(f"{label:<24} {len(data):>10} {a * 1000:>11.2f} {b * 1000:>14.2f} {b / a:>6.2f}")
    with tempfile.NamedTemporaryFile(suffix=".xml") as big:
        big.write(cases[-1][1])
        big.flush()
        out = subprocess.run([sys.executable, __file__, "--memory-child", big.name],
                             capture_output=True, text=True, check=True).stdout.split()
    size, peak = int(out[0]), int(out[1])
    print(f"peak memory added by validate, {size / 1e6:.1f} MB message: {peak / 1e6:.1f} MB "
          f"= {peak / size:.1f}x the message (target <= 20x)")


if __name__ == "__main__":
    main()
