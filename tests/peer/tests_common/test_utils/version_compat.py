"""Which Airflow core line is installed, as the provider's tests ask it."""

from __future__ import annotations

from importlib.metadata import version

from packaging.version import Version

_CORE = Version(Version(version("apache-airflow-core")).base_version)

AIRFLOW_V_3_0_PLUS = _CORE >= Version("3.0.0")
AIRFLOW_V_3_1_PLUS = _CORE >= Version("3.1.0")
AIRFLOW_V_3_2_PLUS = _CORE >= Version("3.2.0")
AIRFLOW_V_3_3_PLUS = _CORE >= Version("3.3.0")
AIRFLOW_V_3_4_PLUS = _CORE >= Version("3.4.0")
