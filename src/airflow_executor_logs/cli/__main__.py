"""``python -m airflow_executor_logs.cli <command>``."""

from __future__ import annotations

from airflow_executor_logs.cli import main

raise SystemExit(main())
