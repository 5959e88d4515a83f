"""Operators the provider's tests import through ``compat``."""

from __future__ import annotations

from airflow.providers.standard.operators.python import PythonOperator

__all__ = ["PythonOperator"]
