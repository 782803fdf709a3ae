"""The ``tiss-gateway`` command. Each command group lives in its own module with ``register``."""

import argparse
import sys
from collections.abc import Callable, Sequence

from gateway.cli import (
    db_cmd,
    entregas_cmd,
    hash_cmd,
    prestador_cmd,
    prune_cmd,
    schemas_cmd,
    serve_cmd,
    simulate_cmd,
    usuario_cmd,
    validate_cmd,
    worker_cmd,
)

USAGE_ERROR = 2

# Modules that add sub-commands: each has register(subparsers) -> None and sets a `run` default.
COMMAND_MODULES = [validate_cmd, hash_cmd, schemas_cmd, db_cmd, prestador_cmd, serve_cmd, worker_cmd,
                   entregas_cmd, simulate_cmd, prune_cmd, usuario_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tiss-gateway", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
