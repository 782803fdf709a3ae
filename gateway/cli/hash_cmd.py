"""``tiss-gateway hash FILE [--check] [--write] [--variant NAME] [--encoding ENC]``."""

import argparse
import sys
from pathlib import Path

from gateway.message import hashing, reader
from gateway.message.reader import MessageError

OK, MISMATCH, UNREADABLE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hash", help="calcula, confere ou reescreve o hash TISS")
    parser.add_argument("file", metavar="FILE")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="confere com o hash gravado")
    mode.add_argument("--write", action="store_true", help="regrava o hash no arquivo")
    parser.add_argument("--variant", default=hashing.DECLARED, choices=sorted(hashing.VARIANTS))
    parser.add_argument("--encoding", help="com --write: regrava o arquivo nesta codificação")
    parser.add_argument("--max-bytes", type=int, default=reader.DEFAULT_MAX_BYTES)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        message = reader.read(path.read_bytes(), args.max_bytes)
    except OSError as exc:
        print(f"{path}: não foi possível ler: {exc.strerror}", file=sys.stderr)
        return UNREADABLE
    except MessageError as exc:
        print(f"{path}: [{exc.finding.code}] {exc.finding.message}", file=sys.stderr)
        return UNREADABLE
    if args.write:
        try:
            data = hashing.rewrite(message.tree, message.root, args.variant, args.encoding)
        except (ValueError, LookupError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return UNREADABLE
        path.write_bytes(data)
        written = hashing.hash_element(message.root)
        print(written.text if written is not None else "")
        return OK
    computed = hashing.compute(message.root, message.encoding, args.variant)
    print(computed)
    if not args.check:
        return OK
    check = hashing.check(message.root, message.encoding, hashing.HashPolicy.of([args.variant]))
    if check.accepted:
        print(f"confere (variante {check.variant})")
        return OK
    found = check.found or "ausente"
    print(f"NÃO confere: gravado {found}; variante reconhecida: {check.variant or 'nenhuma'}")
    return MISMATCH
