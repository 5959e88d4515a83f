"""The package: its public names are imported on first use, and importing it never imports Airflow."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

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


def test_each_public_name_is_its_defining_modules_own() -> None:
    mismatched = [
        name
        for name, module in airflow_executor_logs._EXPORTS.items()
        if getattr(airflow_executor_logs, name) is not getattr(importlib.import_module(module), name)
    ]
    assert mismatched == []


def test_all_and_dir_list_the_version_and_every_public_name() -> None:
    expected = ["__version__", *sorted(airflow_executor_logs._EXPORTS)]
    assert (airflow_executor_logs.__all__, dir(airflow_executor_logs)) == (expected, sorted(expected))


def test_an_unknown_name_is_an_attribute_error_that_names_it() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        airflow_executor_logs.no_such_name  # noqa: B018
