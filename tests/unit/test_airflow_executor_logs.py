"""The package: its public names are imported on first use, and importing it never imports Airflow."""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

import airflow_executor_logs

PROBE = """
import json, sys
import airflow_executor_logs
pipeline = "airflow_executor_logs.executors.log_pipeline"
before = sorted(m for m in ("airflow", pipeline) if m in sys.modules)
airflow_executor_logs.read_running_task_log
print(json.dumps({"before": before, "pipeline_after_use": pipeline in sys.modules}))
"""


def test_importing_the_package_imports_neither_airflow_nor_the_pipeline() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout) == {"before": [], "pipeline_after_use": True}


def test_each_public_class_and_function_is_the_one_its_module_defines() -> None:
    """Not a re-export of a re-export: the object's own ``__module__`` is the module the name is mapped to."""
    public = {name: getattr(airflow_executor_logs, name) for name in airflow_executor_logs._EXPORTS}
    defined = {
        name: obj.__module__
        for name, obj in public.items()
        # on 3.10 inspect.isclass also holds for a type alias such as ``tuple[list[str], list[str]]``
        if (inspect.isclass(obj) and not isinstance(obj, types.GenericAlias)) or inspect.isfunction(obj)
    }
    assert defined == {name: airflow_executor_logs._EXPORTS[name] for name in defined}
    assert len(defined) >= len(public) - 4  # the rest: two constants and two type aliases


def test_all_and_dir_list_the_version_and_every_public_name() -> None:
    expected = ["__version__", *sorted(airflow_executor_logs._EXPORTS)]
    assert (airflow_executor_logs.__all__, dir(airflow_executor_logs)) == (expected, sorted(expected))


def test_an_unknown_name_is_an_attribute_error_that_names_it() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        airflow_executor_logs.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "module",
    ["airflow_executor_logs", "airflow_executor_logs.utils.processes", "airflow_executor_logs_testing.kube_api"],
)
def test_a_warning_raised_from_our_code_fails_the_test(module: str) -> None:
    """pyproject.toml's filterwarnings: a warning attributed to the package or its kit is an error."""
    with pytest.raises(DeprecationWarning, match="from our code"):
        warnings.warn_explicit("from our code", DeprecationWarning, "ours.py", 1, module=module)


def test_a_third_party_warning_is_not_an_error() -> None:
    with pytest.warns(DeprecationWarning, match="from a library"):
        warnings.warn_explicit("from a library", DeprecationWarning, "lib.py", 1, module="airflow_executor_logs_x.lib")


# ---------------------------------------------------------------------------------------------- the public surface

_ROOT = Path(__file__).resolve().parents[2]
_GUIDE = _ROOT / "docs" / "executor-authors.md"


def _defined_in_the_product() -> set[str]:
    """Every name a product module defines at its top level (classes, functions, constants)."""
    names: set[str] = set()
    for path in (_ROOT / "src" / "airflow_executor_logs").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def test_the_executor_authors_guide_names_only_public_names() -> None:
    """Each product name the guide shows (in code, or in backticks) is in the package root's ``__all__``."""
    text = _GUIDE.read_text()
    public = set(airflow_executor_logs.__all__)
    imported = {
        name.strip()
        for names in re.findall(r"^from airflow_executor_logs import (.+)$", text, flags=re.MULTILINE)
        for name in names.split(",")
    }
    dotted = set(re.findall(r"airflow_executor_logs\.(\w+)", text)) - {"readers"}  # the entry-point group
    shown = {match.group(1) for match in re.finditer(r"`([A-Za-z_]\w*)[^`]*`", text)}
    named = imported | dotted | (shown & _defined_in_the_product())
    assert named - public == set()
    assert imported, "the pattern no longer finds the guide's imports"
    assert dotted, "the pattern no longer finds the guide's dotted names"
    assert airflow_executor_logs.ENTRY_POINT_GROUP == "airflow_executor_logs.readers"
    assert not re.findall(r"`[\w/]+\.py`", text), "the guide points at module files, which are not public"


def test_the_kit_imports_only_public_names() -> None:
    """``airflow_executor_logs_testing`` is a separate distribution: it uses the package's public surface alone."""
    private: list[str] = []
    for path in (_ROOT / "kit" / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "airflow_executor_logs":
                if node.module != "airflow_executor_logs":
                    private.append(f"{path.name}: from {node.module} import ...")
                else:
                    private.extend(
                        f"{path.name}: {a.name}" for a in node.names if a.name not in airflow_executor_logs.__all__
                    )
            elif isinstance(node, ast.Import):
                private.extend(
                    f"{path.name}: import {a.name}" for a in node.names if a.name.startswith("airflow_executor_logs.")
                )
    assert private == []
