"""Tests mirror the sources: tests/unit mirrors src/airflow_executor_logs and tests/kit mirrors the test kit
(kit/src/airflow_executor_logs_testing); each module with code of its own has a test module of the same path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airflow_executor_logs
import airflow_executor_logs_testing

TESTS = Path(__file__).parents[1]
#: (a source package, the test directory that mirrors it)
MIRRORS = [
    (Path(airflow_executor_logs.__file__).parent, TESTS / "unit"),
    (Path(airflow_executor_logs_testing.__file__).parent, TESTS / "kit"),
]
IDS = ["package", "kit"]


def defines_code(module: Path) -> bool:
    """Whether ``module`` defines a function or class (a re-export-only ``__init__`` does not)."""
    tree = ast.parse(module.read_text())
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for node in tree.body)


def mirror_of(module: Path, package: Path, tests: Path) -> Path:
    """``a/b/c.py`` -> ``<tests>/a/b/test_c.py``; a package's ``__init__.py`` -> ``test_<package>.py``."""
    relative = module.relative_to(package)
    name = module.stem
    if module.name == "__init__.py":
        name = relative.parent.name or package.name
    return tests / relative.parent / f"test_{name}.py"


@pytest.mark.parametrize(("package", "tests"), MIRRORS, ids=IDS)
def test_every_source_module_has_its_test_module(package: Path, tests: Path) -> None:
    modules = [m for m in sorted(package.rglob("*.py")) if m.name != "__main__.py" and defines_code(m)]
    missing = [str(mirror_of(m, package, tests).relative_to(tests)) for m in modules]
    assert [m for m in missing if not (tests / m).exists()] == []


@pytest.mark.parametrize(("package", "tests"), MIRRORS, ids=IDS)
def test_no_test_module_without_its_source_module(package: Path, tests: Path) -> None:
    expected = {mirror_of(m, package, tests) for m in package.rglob("*.py")}
    strays = [
        str(t.relative_to(tests)) for t in sorted(tests.rglob("test_*.py")) if t not in expected and t != Path(__file__)
    ]
    assert strays == []
