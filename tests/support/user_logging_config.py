"""
A user's own logging config, as a deployment writes one (README): Airflow's, with a logger of its own and, for
OpenSearch, the provider's ``OpensearchTaskHandler`` (core 3.3's own settings keep ``FileTaskHandler`` there),
then wrapped. ``REMOTE_TASK_LOG`` and ``DEFAULT_REMOTE_CONN_ID`` are kept in this module, as Airflow reads them here.
"""

from __future__ import annotations

import copy
from typing import Any

from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG
from airflow.configuration import conf

from airflow_executor_logs.logging_config import DEFAULT_REMOTE_CONN_ID, REMOTE_TASK_LOG, wrap_logging_config

__all__ = ["DEFAULT_REMOTE_CONN_ID", "LOGGING_CONFIG", "REMOTE_TASK_LOG"]

_MINE: dict[str, Any] = copy.deepcopy(DEFAULT_LOGGING_CONFIG)
_MINE["loggers"]["my_company"] = {"handlers": ["console"], "level": "INFO", "propagate": False}
if conf.get("opensearch", "host", fallback=""):
    _MINE["handlers"]["task"] = {
        **_MINE["handlers"]["task"],
        "class": "airflow.providers.opensearch.log.os_task_handler.OpensearchTaskHandler",
        "end_of_log_mark": conf.get("opensearch", "end_of_log_mark", fallback="end_of_log"),
        "write_stdout": False,
        "json_format": False,
        "json_fields": conf.get("opensearch", "json_fields", fallback="asctime, filename, lineno, levelname, message"),
        "host": conf.get("opensearch", "host"),
        "port": conf.getint("opensearch", "port", fallback=9200),
        "username": conf.get("opensearch", "username", fallback=""),
        "password": conf.get("opensearch", "password", fallback=""),
    }

LOGGING_CONFIG = wrap_logging_config(_MINE)
