"""``tiss-gateway schemas list|import``: the ANS schema sets this gateway can validate."""

import argparse
import json
import sys
from pathlib import Path

import schemas as shipped
from gateway.home import gateway_home
from gateway.message.schema_import import import_schema_set
from gateway.message.schema_registry import SchemaRegistry, SchemaSetError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("schemas", help="conjuntos de schemas ANS")
    commands = parser.add_subparsers(dest="schemas_command", required=True)
    listing = commands.add_parser("list", help="versões, origem, hashes e início de vigência")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)
    importing = commands.add_parser("import", help="instala um conjunto oficial (zip ou pasta)")
    importing.add_argument("path", type=Path)
    importing.add_argument("--force", action="store_true",
                           help="importar mesmo que os hashes difiram do manifesto oficial")
    importing.add_argument("--valid-from", help="início de vigência (AAAA-MM-DD) se não conhecido")
    importing.set_defaults(run=run_import)


def run_list(args: argparse.Namespace) -> int:
    rows = []
    for version, schema_set in sorted(SchemaRegistry().sets().items()):
        status = schema_set.hash_status()
        rows.append({"version": version, "origin": schema_set.origin,
                     "directory": str(schema_set.directory), "hashes": status.label,
                     "hashes_ok": status.ok, "detail": status.detail,
                     "valid_from": schema_set.valid_from})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        print(f"{row['version']}  vigência {row['valid_from'] or '?'}  hashes {row['hashes']}  "
              f"{row['origin']}")
        if row["detail"]:
            print(f"    {row['detail']}")
    for version in sorted(set(shipped.manifest()["versions"]) - {row["version"] for row in rows}):
        print(f"{version}  não instalada: tiss-gateway schemas import <zip da ANS ou pasta do "
              f"PadraoTISS {version}>")
    return 0 if all(row["hashes_ok"] for row in rows) else 1


def run_import(args: argparse.Namespace) -> int:
    try:
        schema_set = import_schema_set(args.path, gateway_home(), force=args.force,
                                       valid_from=args.valid_from)
    except (SchemaSetError, OSError) as exc:
        print(f"importação recusada: {exc}", file=sys.stderr)
        return 2
    label = "oficial" if schema_set.official else "não oficial"
    print(f"{schema_set.version} importado ({label}) em {schema_set.directory}")
    return 0
