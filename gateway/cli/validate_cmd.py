"""``tiss-gateway validate [--json] FILE...``: exit 0 all valid, 1 any findings, 2 unreadable.

A version whose schemas are not installed (4.01.00 before ``tiss-gateway schemas import``, a TISS
2.x/3.x file, which names its version in ``versaoPadrao``) is a 5028 finding that says so and how
to import them; its hash is still checked and printed."""

import argparse
import json
import sys
from pathlib import Path

from gateway import examples
from gateway.message import hashing, reader
from gateway.message.schema_registry import SchemaSetError
from gateway.message.validation import Report, validate

VALID, FINDINGS, UNREADABLE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validate", help="valida mensagens TISS (schema, hash, limites)")
    parser.add_argument("files", nargs="*", metavar="FILE")
    parser.add_argument("--example", action="store_true",
                        help="valida também a mensagem de exemplo que acompanha o gateway")
    parser.add_argument("--json", action="store_true", help="um objeto JSON por arquivo")
    parser.add_argument("--max-bytes", type=int, default=reader.DEFAULT_MAX_BYTES)
    parser.add_argument("--hash-variant", action="append", default=[], metavar="NAME",
                        choices=sorted(hashing.VARIANTS),
                        help="aceitar também esta variante de hash (padrão: só a estrita)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.example:
        args.files.append(str(examples.path()))
    if not args.files:
        print("informe ao menos um FILE (ou --example)", file=sys.stderr)
        return UNREADABLE
    policy = hashing.HashPolicy.of(args.hash_variant)
    results: list[dict[str, object]] = []
    status = VALID
    for name in args.files:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            print(f"{name}: não foi possível ler: {exc.strerror}", file=sys.stderr)
            status = UNREADABLE
            continue
        try:
            report = validate(data, policy=policy, max_bytes=args.max_bytes)
        except SchemaSetError as exc:
            print(f"erro de configuração: {exc}", file=sys.stderr)
            return UNREADABLE
        if not report.valid and status == VALID:
            status = FINDINGS
        results.append({"file": name, **report.to_dict()})
        if not args.json:
            _print_human(name, report)
    if args.json:
        json.dump(results, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    return status


def _print_human(name: str, report: Report) -> None:
    what = f"{report.kind or '?'} {report.version or ''}".strip()
    print(f"{name}: {'válido' if report.valid else 'INVÁLIDO'} ({what})")
    for finding in report.findings:
        where = ", ".join(x for x in (
            f"linha {finding.line}" if finding.line else "", finding.location or "") if x)
        print(f"  [{finding.code or '----'}] {finding.severity}: {finding.message}"
              + (f" ({where})" if where else ""))
    if report.hash:  # also when the version's schemas are missing (a TISS 3 file, 4.01.00 not imported)
        print(f"  hash: informado {report.hash.found or 'nenhum'}, calculado {report.hash.computed}, "
              f"variante {report.hash.variant or 'nenhuma'}")
