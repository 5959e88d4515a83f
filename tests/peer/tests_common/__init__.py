"""
Our stand-in for Airflow's ``tests_common`` (devel-common), enough for the provider's task-log tests.

The real package lives in the Airflow source tree only: PyPI's apache-airflow-devel-common 0.1.1 (2025) is
older than core 3.3 and its pytest plugin runs scripts of an Airflow checkout when imported. This package is
written here, against core 3.3's public models; it implements only the names the selected tests import.
"""
