"""Short network bounds for ``doctor check`` tests, and a fresh reading of them."""

from __future__ import annotations

import pytest

from airflow_executor_logs.config import Settings

#: ``connect_timeout`` and ``read_timeout`` of these tests (s).
CONNECT, READ = 0.5, 1.5


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``[executor_logs]`` with :data:`CONNECT` and :data:`READ`, set in the environment as a deployment would."""
    monkeypatch.setenv("AIRFLOW__EXECUTOR_LOGS__CONNECT_TIMEOUT", str(CONNECT))
    monkeypatch.setenv("AIRFLOW__EXECUTOR_LOGS__READ_TIMEOUT", str(READ))
    return Settings.from_conf()
