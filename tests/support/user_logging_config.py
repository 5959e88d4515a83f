"""A user's own logging config, as a deployment writes one: Airflow's, changed, then wrapped (README)."""

from __future__ import annotations

import copy
from typing import Any

from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG

from airflow_executor_logs.logging_config import DEFAULT_REMOTE_CONN_ID, REMOTE_TASK_LOG, wrap_logging_config

__all__ = ["DEFAULT_REMOTE_CONN_ID", "LOGGING_CONFIG", "REMOTE_TASK_LOG"]

_MINE: dict[str, Any] = copy.deepcopy(DEFAULT_LOGGING_CONFIG)
_MINE["formatters"]["airflow"]["format"] = "[my-company] " + _MINE["formatters"]["airflow"]["format"]

LOGGING_CONFIG = wrap_logging_config(_MINE)
