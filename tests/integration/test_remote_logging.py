"""
Remote logging on, the task handler from Airflow's own ``airflow_local_settings`` (``[elasticsearch]`` or
``[opensearch]`` picks it), wrapped by our config or by a user's own with ``wrap_logging_config``: a RUNNING task's
log through the real endpoint, with the store answering, refusing connections and hanging.

Airflow builds ``REMOTE_TASK_LOG`` at import, from the environment: each store kind and logging config runs in a
process of its own (``remote_logging_driver``), whose store is one port that refuses, answers or hangs as each case
needs (``CASES``), a fresh task handler and pipeline per case. Runs where both providers are locked (3.3.2 + 10.24.0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_executor_logs.executors.reader_protocol import NOTICE_LOGGER
from tests.integration.conftest import POD_LINES, SeededCluster

pytest.importorskip("airflow.providers.elasticsearch", reason="the elasticsearch provider is not in this cell's lock")
pytest.importorskip("airflow.providers.opensearch", reason="the opensearch provider is not in this cell's lock")

pytestmark = pytest.mark.remote_logging

REPO = Path(__file__).resolve().parents[2]
#: [executor_logs] remote_read_timeout in these tests; both clients' own timeout is 10 s.
DEADLINE = 1.5
#: What a read may take beyond the deadline on a shared 2-core machine (the pod read, the endpoint).
SLACK = 5.0
#: Threads the pipeline's guard may leave blocked per reader (ExecutorLogPipeline's max_blocked_readers).
MAX_BLOCKED = 4
#: The task handler each config gives: Airflow's own settings (3.3.2) pick Elasticsearch's for [elasticsearch] host but
#: keep FileTaskHandler for [opensearch] host; the user's config names OpensearchTaskHandler itself.
HANDLERS = {
    ("elasticsearch", "ours"): "ElasticsearchTaskHandler",
    ("elasticsearch", "user"): "ElasticsearchTaskHandler",
    ("opensearch", "ours"): "FileTaskHandler",
    ("opensearch", "user"): "OpensearchTaskHandler",
}
STORES = {"elasticsearch": "ElasticsearchRemoteLogIO", "opensearch": "OpensearchRemoteLogIO"}


#: What each logging config's process runs, in this order: refusing first (a port that has listened cannot refuse
#: again), hanging last (its reads leave threads blocked on the store until the process ends). Per case:
#: (store mode, reads, doctor check after the reads).
CASES: dict[str, list[tuple[str, int, bool]]] = {
    "ours": [("refusing", 2, True), ("answering", 1, True), ("hanging", MAX_BLOCKED + 2, True)],
    "user": [("answering", 1, True)],
    "stock": [("refusing", 1, False), ("hanging", 1, False)],
}


def _drive(cluster: SeededCluster, tmp_path: Path, store: str, config: str) -> dict[str, dict[str, Any]]:
    """
    Run the driver for ``store`` with ``config`` through its ``CASES``; what each store mode saw. Killed by PID on
    timeout.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__ELASTICSEARCH__", "AIRFLOW__OPENSEARCH__"))
    }
    env.update(
        {
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
            "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": str(cluster.kubeconfig),
            "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
            "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": "default",
            "AIRFLOW__EXECUTOR_LOGS__REMOTE_READ_TIMEOUT": str(DEADLINE),
            "AIRFLOW__EXECUTOR_LOGS__CONNECT_TIMEOUT": "0.5",
            "AIRFLOW__EXECUTOR_LOGS__ANSWER_TTL": "0.000001",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
    )
    from tests.integration.remote_logging_driver import CONFIGS

    env["AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS"] = CONFIGS[config]
    out, log = tmp_path / f"{store}-{config}.json", tmp_path / f"{store}-{config}.log"
    cases = [f"{mode}:{reads}" + (":doctor" if doctor else "") for mode, reads, doctor in CASES[config]]
    command = [sys.executable, "-m", "tests.integration.remote_logging_driver", str(out), config, store, *cases]
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            code = process.wait(timeout=240 * len(cases))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code == 0, log.read_text()[-4000:]
    return {case["mode"]: case for case in json.loads(out.read_text())}


@pytest.fixture(scope="module")
def driven(seeded_cluster: SeededCluster, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, Any]]:
    """``driven(store, config, mode)``: what that case saw; one driver run per store and config, for all its cases."""
    runs: dict[tuple[str, str], dict[str, dict[str, Any]] | str] = {}

    def case(store: str, config: str, mode: str) -> dict[str, Any]:
        if (store, config) not in runs:
            try:
                runs[store, config] = _drive(seeded_cluster, tmp_path_factory.mktemp("remote"), store, config)
            except AssertionError as failed:
                runs[store, config] = str(failed)
        seen = runs[store, config]
        if isinstance(seen, str):
            pytest.fail(f"the {store} driver with the {config} config failed:\n{seen}")
        return seen[mode]

    return case


def _events(read: dict[str, Any]) -> list[str]:
    return [str(message.get("event", "")) for message in read["content"]]


def _notices(read: dict[str, Any]) -> list[str]:
    return [str(message.get("event", "")) for message in read["content"] if message.get("logger") == NOTICE_LOGGER]


def _log_lines(read: dict[str, Any]) -> int:
    """Lines of the answer core counts in ``log_pos``: not the source-details group, not our notices."""
    count, in_group = 0, False
    for message in read["content"]:
        event = str(message.get("event", ""))
        if event.startswith("::group::"):
            in_group = True
        elif event == "::endgroup::":
            in_group = False
        elif not in_group and message.get("logger") != NOTICE_LOGGER:
            count += 1
    return count


def _assert_pod_lines(read: dict[str, Any]) -> None:
    assert read["status"] == 200, read["text"]
    text = "\n".join(_events(read))
    for line in POD_LINES:
        assert line.split("Z ", 1)[1] in text, text[-2000:]


@pytest.mark.parametrize("config", ["ours", "user"])
@pytest.mark.parametrize("store", ["elasticsearch", "opensearch"])
def test_the_wrapped_handler_serves_the_pod_lines_and_keeps_remote_logging(
    driven: Callable[..., dict[str, Any]], store: str, config: str
) -> None:
    seen = driven(store, config, "answering")
    assert seen["handler_mro"][0].startswith("ExecutorLogs"), seen["handler_mro"]
    assert seen["handler_mro"][2] == HANDLERS[store, config], seen["handler_mro"]  # after ours and the mixin
    assert seen["remote_task_log"] == STORES[store]
    (read,) = seen["reads"]
    _assert_pod_lines(read)
    assert "Found logs through kube API" in _events(read)
    assert seen["executors_built"] == 0
    assert not _notices(read)
    checks = {check["check"]: check for check in seen["doctor"]["document"]["checks"]}
    assert checks["enabled"]["details"]["wraps"].endswith("." + HANDLERS[store, config]), checks["enabled"]
    assert checks["remote-logging"]["status"] == "ok", checks["remote-logging"]
    assert checks["remote-logging"]["details"]["remote_task_log"].endswith(STORES[store])
    assert (checks["remote-store"]["status"], checks["remote-store"]["subject"]) == ("ok", STORES[store])


@pytest.mark.parametrize("down", ["refusing", "hanging"])
@pytest.mark.parametrize("store", ["elasticsearch", "opensearch"])
def test_a_store_that_is_down_does_not_take_the_running_task_log_with_it(
    driven: Callable[..., dict[str, Any]], store: str, down: str
) -> None:
    """Every read answers 200 with the pod's lines within the deadline; hung reads leave at most MAX_BLOCKED threads."""
    seen = driven(store, "ours", down)
    assert len(seen["reads"]) == (MAX_BLOCKED + 2 if down == "hanging" else 2)
    first, tail = seen["reads"][0], seen["reads"][1]
    _assert_pod_lines(first)
    assert seen["executors_built"] == 0
    for read in seen["reads"]:
        assert read["status"] == 200, read["text"]
        assert read["elapsed"] < DEADLINE + SLACK, [r["elapsed"] for r in seen["reads"]]
        assert read["reader_threads"] <= MAX_BLOCKED
    if down == "hanging":
        assert first["elapsed"] >= DEADLINE * 0.9  # the read waited for the store, up to its deadline
        assert any("timed out" in notice for notice in _notices(first)), _notices(first)
        assert any("still blocked" in notice for notice in _notices(seen["reads"][-1])), _notices(seen["reads"][-1])
        assert seen["reads"][-1]["elapsed"] < DEADLINE  # refused at once: no more threads left on the store
    elif store == "opensearch":  # OpenSearch raises: stock answers 500
        assert any("failed: ConnectionError" in notice for notice in _notices(first)), _notices(first)
    # Notices are shown, never counted: a client that tails gets no line twice.
    assert first["log_pos"] == _log_lines(first)
    assert tail["log_pos"] == first["log_pos"]
    assert _log_lines(tail) == 0
    checks = {check["check"]: check for check in seen["doctor"]["document"]["checks"]}
    assert checks["remote-store"]["status"] == "fail", checks["remote-store"]
    wording = "does not answer within" if down == "hanging" else "cannot be reached"
    assert wording in checks["remote-store"]["summary"]


@pytest.mark.parametrize("store", ["elasticsearch", "opensearch"])
def test_stock_with_the_store_refusing(driven: Callable[..., dict[str, Any]], store: str) -> None:
    """The control: stock OpenSearch 1.15.0 answers 500 (its read raises); stock Elasticsearch, a message and lines."""
    seen = driven(store, "stock", "refusing")
    (read,) = seen["reads"]
    print(f"stock {store}, store refusing: {read['status']} in {read['elapsed']:.2f} s")
    if store == "opensearch":
        assert read["status"] == 500, read["text"]
    else:
        _assert_pod_lines(read)
        assert any("not found in Elasticsearch" in event for event in _events(read))


@pytest.mark.parametrize("store", ["elasticsearch", "opensearch"])
def test_stock_with_the_store_hanging(driven: Callable[..., dict[str, Any]], store: str) -> None:
    """The control: stock holds the request for the store client's own timeout (10 s), far past our deadline."""
    seen = driven(store, "stock", "hanging")
    (read,) = seen["reads"]
    print(f"stock {store}, store hanging: {read['status']} in {read['elapsed']:.2f} s")
    assert read["elapsed"] > DEADLINE + SLACK, read["elapsed"]
