"""``python -m airflow_executor_logs <command>``: the ``airflow-executor-logs`` command line."""

from __future__ import annotations

from airflow_executor_logs.cli import main

raise SystemExit(main())
