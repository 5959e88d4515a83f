"""``python -m airflow_executor_logs_testing.kube_api --kubeconfig PATH``: see :func:`.cli.main`."""

import sys

from airflow_executor_logs_testing.kube_api.cli import main

sys.exit(main())
