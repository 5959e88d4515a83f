"""The pytest plugin (``pytest_plugin``), loaded by the kit's entry point, run in a pytest session of its own."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "airflow_executor_logs_testing.pytest_plugin"


def test_the_installed_kit_loads_the_fixtures_unless_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_uses_it(fake_kube_api):\n    assert fake_kube_api.port > 0\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    turned_off = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", f"no:{PLUGIN}")
    turned_off.assert_outcomes(errors=1)
    turned_off.stdout.fnmatch_lines(["*fixture 'fake_kube_api' not found*"])


def test_naming_the_plugin_as_well_loads_it_once(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(f"pytest_plugins = [{PLUGIN!r}]\n")
    pytester.makepyfile("def test_uses_it(fake_kube_api):\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", PLUGIN).assert_outcomes(passed=1)


def test_fake_kube_executor_points_airflow_at_the_api_for_one_test_and_stops_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import socket
        import urllib.error
        import urllib.request

        import pytest

        from airflow_executor_logs.executors import log_pipeline

        seen = {}


        def test_during(fake_kube_executor, fake_kubeconfig):
            seen["port"] = fake_kube_executor.port
            with pytest.raises(urllib.error.HTTPError) as denied:  # up, and wants its token
                urllib.request.urlopen(fake_kube_executor.url + "/api/v1/pods", timeout=5)
            assert denied.value.code == 401
            assert os.environ["AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE"] == str(fake_kubeconfig)
            assert os.environ["AIRFLOW__CORE__EXECUTOR"] == "KubernetesExecutor"
            assert log_pipeline._process_pipeline is None  # a fresh pipeline, built on first read
            seen["pipeline"] = log_pipeline.process_pipeline()


        def test_after():
            assert "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE" not in os.environ
            assert log_pipeline._process_pipeline is None
            with pytest.raises(ConnectionRefusedError):  # stopped after the test
                socket.create_connection(("127.0.0.1", seen["port"]), timeout=2)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
