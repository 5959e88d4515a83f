"""The kit's package: import-light, every listed name resolves, the sandbox is imported on first use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import airflow_executor_logs.testing as kit

PROBE = """
import json, sys
import airflow_executor_logs.testing as kit
heavy = ("airflow", "kubernetes", "httpx", "airflow_executor_logs.testing.sandbox")
before = sorted(m for m in heavy if m in sys.modules)
kit.AirflowSandbox
after = "airflow_executor_logs.testing.sandbox" in sys.modules
print(json.dumps({"before": before, "sandbox_after_use": after}))
"""


def test_importing_the_kit_imports_neither_airflow_nor_kubernetes_nor_the_sandbox() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == {"before": [], "sandbox_after_use": True}


def test_every_listed_name_resolves() -> None:
    unresolved = [name for name in kit.__all__ if getattr(kit, name, None) is None]
    assert unresolved == []


def test_the_sandbox_names_are_classes_the_sandbox_package_defines() -> None:
    names = ("AirflowSandbox", "ApiServer", "LogResponse", "SandboxError")
    modules = {name: getattr(kit, name).__module__ for name in names}
    assert modules == {
        "AirflowSandbox": "airflow_executor_logs.testing.sandbox.sandbox",
        "ApiServer": "airflow_executor_logs.testing.sandbox.api_server",
        "LogResponse": "airflow_executor_logs.testing.sandbox.client",
        "SandboxError": "airflow_executor_logs.testing.sandbox.home",
    }


def test_an_unknown_name_is_an_attribute_error_that_names_it() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchHelper'"):
        kit.NoSuchHelper  # noqa: B018
