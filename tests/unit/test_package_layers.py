"""The layering the README's architecture section describes, checked on the source.

Units are the gateway's subpackages (``gateway.message``, ``gateway.inbound``...), each top-level
gateway module (``gateway.config``...), ``adapters`` and ``simulator``. Every import counts,
including those inside functions and under ``TYPE_CHECKING``: a unit that reaches another which
reaches it back (directly or through others) is a cycle. Nobody imports another unit's private
(``_name``) names.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "adapters", "simulator")


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module
    names: tuple[str, ...]  # names taken with ``from target import ...``


def unit_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "gateway" and len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path = REPO) -> Iterator[Import]:
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            source = module_name(path)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    yield Import(source, node.module, tuple(a.name for a in node.names))
                elif isinstance(node, ast.Import):
                    yield from (Import(source, a.name, ()) for a in node.names)


def first_party(module: str) -> bool:
    return module.split(".")[0] in PACKAGES and module != "gateway"


def unit_graph(found: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in found:
        if not first_party(imp.target):
            continue
        src, dst = unit_of(imp.source), unit_of(imp.target)
        graph.setdefault(src, set())
        graph.setdefault(dst, set())
        if src != dst:
            graph[src].add(dst)
        # ``from gateway.storage import inbound`` names a module of that unit: same edge.
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def evidence(found: list[Import], component: list[str]) -> list[str]:
    members = set(component)
    return sorted({f"{i.source} -> {i.target}" for i in found if first_party(i.target)
                   and unit_of(i.source) in members and unit_of(i.target) in members
                   and unit_of(i.source) != unit_of(i.target)})


def test_no_unit_imports_one_that_imports_it_back() -> None:
    found = list(imports())
    problems = [f"{' <-> '.join(c)}:\n    " + "\n    ".join(evidence(found, c))
                for c in cycles(unit_graph(found))]
    assert not problems, "package cycles:\n" + "\n".join(problems)


def test_no_private_name_is_imported_from_another_unit() -> None:
    private = sorted(f"{i.source}: from {i.target} import {n}" for i in imports() if first_party(i.target)
                     and unit_of(i.source) != unit_of(i.target)
                     for n in i.names if n.startswith("_") and not n.startswith("__"))
    assert not private, "\n".join(private)


def test_the_message_core_depends_on_no_other_part_of_the_project() -> None:
    """gateway.message is what every side uses: it imports nothing of the gateway's other units,
    of the adapters or of the simulator (but gateway.home, a leaf: where imported schema sets are)."""
    allowed = {"gateway.message", "gateway.home"}
    outside = sorted({f"{i.source} -> {i.target}" for i in imports() if unit_of(i.source) == "gateway.message"
                      and first_party(i.target) and unit_of(i.target) not in allowed})
    assert not outside, "\n".join(outside)


def test_the_checker_finds_a_cycle_through_three_units(tmp_path: Path) -> None:
    """The check itself: a -> b -> c -> a is one cycle; a leaf outside it is not part of it."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
