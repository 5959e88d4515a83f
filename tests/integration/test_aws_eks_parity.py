"""
Our reader and the amazon provider's own ``AwsEksExecutor`` give identical answers, in both forms.

Runs where the amazon provider with ``AwsEksExecutor`` (9.39.0+) imports: the parity cell 3.3.2 + 10.24.0.

Real: ``AwsEksExecutor`` and its ``get_task_log`` / ``get_streaming_task_log`` (cncf-kubernetes'), its EKS
client factory (``_get_eks_kube_client``), ``EksHook`` with boto3/botocore (a real ``DescribeCluster`` HTTP
request, real SigV4 presigning of the ``k8s-aws-v1.`` token), the kubernetes client, and HTTP to the
loopback Kubernetes API (the kit). Fake: the EKS API (a loopback server answering ``DescribeCluster``
with a cluster whose endpoint is the loopback Kubernetes API, reached through ``AWS_ENDPOINT_URL_EKS``),
the AWS credentials (static keys in the environment), and the check of the token (the loopback API
accepts a token that decodes to a presigned STS ``GetCallerIdentity`` URL for the cluster, signed
with those keys; nothing calls STS). No network.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs_testing import FakeKubeAPI, serve_task_pod
from tests.support.airflow_state import conf_vars
from tests.support.parity import same_answers
from tests.support.task_instances import fake_ti

pytestmark = pytest.mark.parity

eks_executor = pytest.importorskip(
    "airflow.providers.amazon.aws.executors.eks.eks_executor",
    reason="needs apache-airflow-providers-amazon 9.39.0+ (AwsEksExecutor) with cncf-kubernetes 10.24.0+",
    exc_type=ImportError,
)

CLUSTER = "parity-cluster"
EXECUTOR = "airflow.providers.amazon.aws.executors.eks.AwsEksExecutor"
ACCESS_KEY = "AKIDPARITYTEST000000"
FACTORY_VARIABLE = "AIRFLOW__KUBERNETES_EXECUTOR__CLIENT_FACTORY"
ASYNC_FACTORY_VARIABLE = "AIRFLOW__KUBERNETES_EXECUTOR__ASYNC_CLIENT_FACTORY"
Compare = Callable[[Any, int], tuple[Any, Any]]


class FakeEks:
    """A loopback EKS API that answers ``DescribeCluster`` for :data:`CLUSTER`, and counts the calls."""

    def __init__(self, kube_url: str) -> None:
        self.described: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = urlsplit(self.path).path.rpartition("/clusters/")[2]
                fake.described.append(name)
                if name != CLUSTER:
                    self._answer(404, {"message": f"No cluster found for name: {name}."})
                    return
                ca = base64.b64encode(b"unused: the loopback API is plain HTTP").decode()
                cluster = {
                    "name": CLUSTER,
                    "status": "ACTIVE",
                    "endpoint": kube_url,
                    "certificateAuthority": {"data": ca},
                }
                self._answer(200, {"cluster": cluster})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeEks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def eks_token_check(tokens: list[str]) -> Callable[[str], bool]:
    """Accept what ``aws eks get-token`` mints for :data:`CLUSTER` with the test keys (recorded in ``tokens``)."""

    def check(token: str) -> bool:
        tokens.append(token)
        if not token.startswith("k8s-aws-v1."):
            return False
        encoded = token.removeprefix("k8s-aws-v1.")
        url = urlsplit(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode())
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        return (
            query.get("Action") == "GetCallerIdentity"
            and "x-k8s-aws-id" in query.get("X-Amz-SignedHeaders", "").split(";")
            and query.get("X-Amz-Credential", "").startswith(f"{ACCESS_KEY}/")
            and bool(query.get("X-Amz-Signature"))
        )

    return check


@pytest.fixture
def eks(fake_kube_api: FakeKubeAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeEks, list[str]]]:
    """The fake EKS API, AWS pointed at it with static keys, and Airflow configured for ``AwsEksExecutor``."""
    tokens: list[str] = []
    fake_kube_api.accept_tokens(eks_token_check(tokens))
    with FakeEks(fake_kube_api.url) as fake:
        for name, value in {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": "parity-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_EKS": fake.url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"}),
        }.items():
            monkeypatch.setenv(name, value)
        # The executor sets these in os.environ when built; each test starts, and ends, without them (monkeypatch
        # would not undo a variable that was absent when it was deleted).
        saved = {name: os.environ.pop(name, None) for name in (FACTORY_VARIABLE, ASYNC_FACTORY_VARIABLE)}
        overrides: dict[tuple[str, str], str | None] = {
            ("core", "executor"): EXECUTOR,
            ("aws_eks_executor", "cluster_name"): CLUSTER,
            ("aws_eks_executor", "region_name"): "us-east-1",
            ("kubernetes_executor", "namespace"): "default",
            ("kubernetes_executor", "in_cluster"): "False",
            # No kubeconfig: a client built the default way cannot reach the loopback API.
            ("kubernetes_executor", "config_file"): os.devnull,
        }
        try:
            with conf_vars(overrides):
                yield fake, tokens
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _materialized(answer: tuple[list[str], list[Any]]) -> tuple[list[str], list[list[str]]]:
    messages, streams = answer
    return list(messages), [list(stream) for stream in streams]


@pytest.fixture(params=["list", "streaming"])
def compare(request: pytest.FixtureRequest, eks: tuple[FakeEks, list[str]]) -> Compare:
    """``compare(ti, try_number)`` -> (the executor's answer, ours). Ours first: nothing set the factory yet."""
    streaming = request.param == "streaming"

    def run(ti: Any, try_number: int) -> tuple[Any, Any]:
        from airflow_executor_logs.executors.kubernetes.aws_eks import AwsEksLogReader

        pipeline = ExecutorLogPipeline()
        found = pipeline.registry.find(eks_executor.AwsEksExecutor)
        assert found is not None
        assert isinstance(found.read, AwsEksLogReader)  # the class-level reader answers, not a short-lived executor
        if streaming:
            ours: Any = _materialized(pipeline.read_streaming(ti, try_number))
        else:
            ours = pipeline.read(ti, try_number)
        executor = eks_executor.AwsEksExecutor()
        if streaming:
            return _materialized(executor.get_streaming_task_log(ti, try_number)), ours
        return executor.get_task_log(ti, try_number), ours

    return run


LINES = [f"2026-01-01T00:00:{n % 60:02d}Z eks line {n}" for n in range(20)]


def test_ours_reads_the_eks_cluster_with_the_executors_client_without_building_it(
    fake_kube_api: FakeKubeAPI, eks: tuple[FakeEks, list[str]]
) -> None:
    from airflow_executor_logs.executors.kubernetes.aws_eks import AwsEksLogReader

    fake, tokens = eks
    ti = fake_ti(EXECUTOR)
    serve_task_pod(fake_kube_api, ti, 1, LINES)
    pipeline = ExecutorLogPipeline()
    found = pipeline.registry.find(eks_executor.AwsEksExecutor)
    assert found is not None
    assert isinstance(found.read, AwsEksLogReader)
    messages, logs = pipeline.read(ti, 1)
    assert messages[-1] == "Found logs through kube API"
    assert "eks line 19" in logs[0]
    assert fake.described == [CLUSTER]
    assert tokens
    assert all(token.startswith("k8s-aws-v1.") for token in tokens)
    assert FACTORY_VARIABLE not in os.environ  # no process-wide setting changed
    pipeline.read(ti, 1)
    assert fake.described == [CLUSTER]  # the client is reused


def _same(compare: Compare, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
    return same_answers(*compare(ti, try_number))


def test_plain_running_task(fake_kube_api: FakeKubeAPI, compare: Compare, eks: tuple[FakeEks, list[str]]) -> None:
    ti = fake_ti(EXECUTOR)
    serve_task_pod(fake_kube_api, ti, 1, LINES)
    messages, logs = _same(compare, ti, 1)
    assert messages[-1] == "Found logs through kube API"
    assert "eks line 19" in logs[0]
    assert eks[0].described == [CLUSTER, CLUSTER]  # ours once, the executor's once


def test_later_try_in_an_overridden_namespace(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    from kubernetes.client import models as k8s

    override = k8s.V1Pod(metadata=k8s.V1ObjectMeta(namespace="team-ns"))
    ti = fake_ti(EXECUTOR, try_number=2, executor_config={"pod_override": override})
    serve_task_pod(fake_kube_api, ti, 1, ["try one"], namespace="team-ns")
    serve_task_pod(fake_kube_api, ti, 2, ["try two"], namespace="team-ns")
    assert "try two" in _same(compare, ti, 2)[1][0]


def test_more_lines_than_the_tail(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti(EXECUTOR)
    serve_task_pod(fake_kube_api, ti, 1, [f"numbered {n:04d}" for n in range(1000)])
    logs = _same(compare, ti, 1)[1]
    assert logs[0].count("numbered") == 100


def test_no_pod(compare: Compare) -> None:
    messages, _ = _same(compare, fake_ti(EXECUTOR), 1)
    assert "Cannot find pod for ti" in messages[-1]


def test_unknown_cluster(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    """DescribeCluster answers 404: neither can build the client, and both say so in the same words."""
    ti = fake_ti(EXECUTOR)
    serve_task_pod(fake_kube_api, ti, 1, LINES)
    with conf_vars({("aws_eks_executor", "cluster_name"): "no-such-cluster"}):
        messages, _ = _same(compare, ti, 1)
    assert messages == [
        "Reading from k8s pod logs failed: An error occurred (404) when calling the DescribeCluster operation: "
        "No cluster found for name: no-such-cluster."
    ]
