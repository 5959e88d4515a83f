"""
Fail on import cycles between the modules of the packages under the given source roots.

Every import counts: at module level, inside functions and under ``if TYPE_CHECKING:`` (a type-only
cycle is still a knot in the layering). Reads the code with ``ast``; imports nothing of it.

    python scripts/check_cycles.py src kit/src

Prints each cycle (a strongly connected group of modules, with the imports that tie it) and exits 1,
or prints that there is none and exits 0.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["find_cycles", "import_graph", "main"]


def _modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file under ``root`` (packages are folders with ``__init__.py``)."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts:
            found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The known modules ``module`` imports, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _known_prefix(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}" if base else alias.name
                if candidate in known:  # ``from pkg import module``
                    yield candidate
                else:
                    yield from _known_prefix(base, known)


def _known_prefix(name: str, known: set[str]) -> Iterator[str]:
    """The longest known module that ``name`` is or lies in (``a.b.C`` -> ``a.b``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            yield candidate
            return


def import_graph(roots: Iterable[Path]) -> dict[str, set[str]]:
    """Module -> the modules it imports, among the modules under ``roots``."""
    files: dict[str, Path] = {}
    for root in roots:
        files.update(_modules(root))
    known = set(files)
    return {
        module: {target for target in _imported(module, path, known) if target != module}
        for module, path in files.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(groups)


def main(argv: list[str] | None = None) -> int:
    roots = [Path(arg) for arg in (argv if argv is not None else sys.argv[1:])] or [Path("src")]
    missing = [str(root) for root in roots if not root.is_dir()]
    if missing:
        print(f"check_cycles: no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    graph = import_graph(roots)
    cycles = find_cycles(graph)
    for number, group in enumerate(cycles, 1):
        print(f"cycle {number}: {len(group)} modules")
        members = set(group)
        for module in group:
            for target in sorted(graph[module] & members):
                print(f"  {module} -> {target}")
    if cycles:
        return 1
    print(f"no import cycle among {len(graph)} modules under {', '.join(map(str, roots))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
