"""The kit's package: import-light, every listed name resolves, and no import cycle among its modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_executor_logs_testing as kit

PROBE = """
import json, sys
import airflow_executor_logs_testing
import airflow_executor_logs_testing.pytest_plugin
heavy = ("airflow", "kubernetes", "httpx", "tests")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_importing_the_kit_and_its_plugin_imports_neither_airflow_nor_kubernetes() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == []


def test_every_listed_name_resolves() -> None:
    unresolved = [name for name in kit.__all__ if getattr(kit, name, None) is None]
    assert unresolved == []


def test_an_unknown_name_is_an_attribute_error_that_names_it() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchHelper'"):
        kit.NoSuchHelper  # type: ignore[attr-defined]  # noqa: B018


def kit_imports() -> dict[str, set[str]]:
    """Each kit module -> the kit modules it imports anywhere in its body, type-only imports included."""
    root = Path(kit.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = [kit.__name__, *path.relative_to(root).with_suffix("").parts]
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as the modules along it (first repeated last), or ``[]``."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        for imported in sorted(graph[module]):
            found = visit(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return []

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return []


def test_no_import_cycle_among_the_kits_modules() -> None:
    assert cycle_in(kit_imports()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert cycle_in(graph) == ["a", "b", "c", "a"]
