"""tests/unit mirrors src/: each source module with code of its own has a unit test module of the same path."""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_executor_logs

PACKAGE = Path(airflow_executor_logs.__file__).parent
UNIT = Path(__file__).parent


def defines_code(module: Path) -> bool:
    """Whether ``module`` defines a function or class (a re-export-only ``__init__`` does not)."""
    tree = ast.parse(module.read_text())
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for node in tree.body)


def mirror_of(module: Path) -> Path:
    """``a/b/c.py`` -> ``tests/unit/a/b/test_c.py``; a package's ``__init__.py`` -> ``test_<package>.py``."""
    relative = module.relative_to(PACKAGE)
    name = module.stem
    if module.name == "__init__.py":
        name = relative.parent.name or PACKAGE.name
    return UNIT / relative.parent / f"test_{name}.py"


def test_every_source_module_has_its_unit_test_module() -> None:
    modules = [m for m in sorted(PACKAGE.rglob("*.py")) if m.name != "__main__.py" and defines_code(m)]
    missing = [str(mirror_of(m).relative_to(UNIT)) for m in modules if not mirror_of(m).exists()]
    assert missing == []


def test_no_unit_test_module_without_its_source_module() -> None:
    expected = {mirror_of(m) for m in PACKAGE.rglob("*.py")}
    strays = [
        str(t.relative_to(UNIT)) for t in sorted(UNIT.rglob("test_*.py")) if t not in expected and t != Path(__file__)
    ]
    assert strays == []
