"""
Every pod line exactly once, in order, for a client that follows the continuation token, whatever happens
between its polls: a property test through the real log endpoint and the loopback Kubernetes API.

Hypothesis draws a sequence of events (lines appended, the pod not listed, 500, 403, a reset connection
before or within the body, a hang healed after the deadline, the breaker opening, an answer reused within
``answer_ttl``, a stand-in while another viewer's read is in flight, polls on two API workers, a worker
recycled). The client polls after each one; at the end the API heals and the client catches up. The lines
it was shown must be the pod's, each exactly once, in order; a poll whose read met a 500 or a 403 must show
the problem line.

Each API worker is one ``ExecutorLogPipeline`` (its own answer memory, pod cache, breakers and client),
installed as the process pipeline for the poll that lands on it. Answer memories run on a clock the test
moves, so reuse and stand-ins are drawn, not timed.

``AEL_TAILING_EXAMPLES`` sets the number of sequences (25 by default: the test command's budget); the
closing notes give a local run's count. The core line decides the form: up to 3.3 core asks for
``get_task_log`` (the list form), 3.4 for ``get_streaming_task_log``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_executor_logs.executors.answer_memory import AnswerMemory
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline, use_process_pipeline
from airflow_executor_logs.executors.reader_protocol import NOTICE_LOGGER
from airflow_executor_logs_testing import Fault, serve_task_pod
from airflow_executor_logs_testing.kube_client import FakeClock
from tests.integration.conftest import POD_LINES, SeededCluster
from tests.integration.endpoint import LogEndpoint, log_endpoint
from tests.support.kube import airflow_pointed_at

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # the cells without it run the regression sequences and the table beside stock
    st = None

EXAMPLES = int(os.environ.get("AEL_TAILING_EXAMPLES", "25"))
READ_TIMEOUT = 0.5
ANSWER_TTL = 1.0
WORKERS = 2
POD_LINE = re.compile(r"pod line (\d+)$")


@dataclass(frozen=True)
class Event:
    kind: str
    worker: int = 0
    count: int = 1


@dataclass
class Client:
    """A client that follows the continuation token, as a script or a tailing UI does."""

    endpoint: LogEndpoint
    run_id: str
    token: str | None = None
    shown: list[int] = field(default_factory=list)
    problems: int = 0
    #: Answers other than 200 are a failure of ours; stock's are counted (3.2.0 to 3.3.0 answer a
    #: continuation read with a 500, upstream #69503).
    strict: bool = True
    errors: int = 0

    def poll(self) -> list[dict[str, Any]]:
        url = f"/api/v2/dags/{self.endpoint.dag_id}/dagRuns/{self.run_id}/taskInstances/{self.endpoint.task_id}/logs/1"
        params = {"token": self.token} if self.token else {}
        response = self.endpoint.client.get(
            url, headers={**self.endpoint.headers, "Accept": "application/json"}, params=params
        )
        if response.status_code != 200 and not self.strict:
            self.errors += 1
            return []
        assert response.status_code == 200, response.text[:500]
        body = response.json()
        self.token = body.get("continuation_token") or self.token
        content = list(body["content"])
        for message in content:
            if message.get("logger") == NOTICE_LOGGER:
                self.problems += 1
                continue
            found = POD_LINE.search(str(message.get("event", "")))
            if found:
                self.shown.append(int(found.group(1)))
        return content


class Sandbox:
    """The pod, the API workers and the clock of one drawn sequence."""

    def __init__(self, cluster: SeededCluster, endpoint: LogEndpoint, *, ours: bool = True) -> None:
        self.cluster, self.endpoint, self.ours = cluster, endpoint, ours
        self.kube = cluster.kube
        self.ti = cluster.running_ti()
        self.clock = FakeClock()
        self.lines: list[str] = []
        self.pod = serve_task_pod_fresh(self.kube, self.ti, [])
        self.workers = [self._worker() for _ in range(WORKERS)]

    def _worker(self) -> ExecutorLogPipeline:
        pipeline = ExecutorLogPipeline()
        pipeline.policy = AnswerMemory(lambda: pipeline.settings, clock=self.clock)
        return pipeline

    def append(self, count: int) -> None:
        start = len(self.lines)
        new = [
            f"2026-01-01T00:{n // 60000:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}Z pod line {n}"
            for n in range(start, start + count)
        ]
        self.lines += new
        self.kube.append_logs(self.pod, new)

    def poll(self, client: Client, worker: int, *, later: bool = True) -> list[dict[str, Any]]:
        """``client`` polls ``worker``; ``later``: past ``answer_ttl`` since the last poll (else within it)."""
        if later:
            self.clock.advance(ANSWER_TTL * 1.2)  # past answer_ttl, within two: people are watching
        use_process_pipeline(self.workers[worker])
        return client.poll()

    def fault_polled(self, client: Client, worker: int, route: str, fault: Fault) -> bool:
        """Poll with ``fault`` on ``route`` once; whether a read met it (it may be answered from memory)."""
        before = len(self.kube.requests)
        self.kube.inject(route, fault, times=1)
        self.poll(client, worker)
        self.kube.clear_faults()
        return any(request.status == fault.code for request in self.kube.requests[before:])

    def run(self, event: Event, client: Client) -> None:
        w = event.worker
        if event.kind == "append":
            self.append(event.count)
            self.poll(client, w)
        elif event.kind == "missing":  # not listed yet (just started), or gone for a moment
            self.kube.remove_pod(self.pod)
            self.poll(client, w)
            self.pod = serve_task_pod_fresh(self.kube, self.ti, self.lines)
        elif event.kind in ("500", "403"):
            problems = client.problems
            met = self.fault_polled(client, w, "log", Fault.status(int(event.kind)))
            if met and self.ours:  # stock shows no line of ours
                assert client.problems > problems, f"the {event.kind} was not shown to a tailing client"
        elif event.kind == "reset":
            self.fault_polled(client, w, "log", Fault.reset_mid_stream(0))
        elif event.kind == "reset_mid_body":
            self.append(2)
            self.fault_polled(client, w, "log", Fault.reset_mid_stream(len(self.lines[0]) + 1))
        elif event.kind == "hang":
            self.kube.inject("log", Fault.hang(), times=1)
            heal = threading.Timer(READ_TIMEOUT * 2, self.kube.heal)  # stock's read has no deadline
            heal.start()
            try:
                self.poll(client, w)  # ours: cut at read_timeout, the last good lines and the warning
            finally:
                heal.cancel()
                self.kube.heal()
        elif event.kind == "breaker":  # two transport failures in a row open it; the next read is skipped
            self.kube.inject("log", Fault.reset_mid_stream(0), times=2)
            for _ in range(3):
                self.poll(client, w)
            self.kube.clear_faults()
        elif event.kind == "reuse":
            self.append(1)
            self.poll(client, w, later=False)  # within answer_ttl: the previous answer again
        elif event.kind == "stand_in":
            self.append(1)
            self._stand_in(client, w)
        elif event.kind == "recycle":
            self.workers[w] = self._worker()

    def _stand_in(self, client: Client, worker: int) -> None:
        """Another viewer's read is in flight on ``worker`` (a slow API) while the client polls there."""
        self.clock.advance(ANSWER_TTL * 1.2)
        pipeline = self.workers[worker]
        self.kube.inject("log", Fault.delay(0.3), times=1)
        other = threading.Thread(target=lambda: pipeline.read(self.cluster.running_ti(), 1))
        other.start()
        try:
            self.poll(client, worker, later=False)
        finally:
            other.join(30)
            self.kube.clear_faults()

    def catch_up(self, client: Client) -> None:
        """The API heals; the client polls a fresh worker until nothing new comes."""
        self.kube.heal()
        self.workers.append(self._worker())
        for _ in range(3):
            self.poll(client, len(self.workers) - 1)


def serve_task_pod_fresh(kube: Any, ti: Any, lines: list[str]) -> str:
    """The task's pod, served anew with ``lines``; its name."""
    from contextlib import suppress

    name = f"{ti.task_id}-{ti.try_number}-pod".replace("_", "-").lower()
    with suppress(KeyError):
        kube.remove_pod(name)
    return serve_task_pod(kube, ti, ti.try_number, lines, name=name)


@pytest.fixture(scope="module")
def endpoint(seeded_cluster: SeededCluster) -> Iterator[LogEndpoint]:
    with (
        airflow_pointed_at(
            seeded_cluster.kube,
            seeded_cluster.kubeconfig,
            read_timeout=str(READ_TIMEOUT),
            connect_timeout="0.5",
            answer_ttl=str(ANSWER_TTL),
            breaker_threshold="2",
            breaker_cooldown="0.5",
        ),
        log_endpoint(seeded_cluster.dag_id, seeded_cluster.task_id) as endpoint,
    ):
        yield endpoint


@pytest.fixture
def cluster(seeded_cluster: SeededCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeededCluster]:
    monkeypatch.delenv("AIRFLOW__EXECUTOR_LOGS__ANSWER_TTL", raising=False)  # the module's answer_ttl
    previous = use_process_pipeline(None)
    try:
        yield seeded_cluster
    finally:
        use_process_pipeline(previous)
        seeded_cluster.kube.heal()
        # the session's pod as the other modules expect it: its POD_LINES (an empty pod made the census read 0 lines)
        serve_task_pod_fresh(seeded_cluster.kube, seeded_cluster.running_ti(), POD_LINES)


def tail_through(
    cluster: SeededCluster, endpoint: LogEndpoint, events: list[Event], *, ours: bool = True
) -> tuple[list[int], int, int]:
    """Run ``events`` with a tailing client: the pod lines it was shown, how many the pod has, HTTP errors."""
    sandbox = Sandbox(cluster, endpoint, ours=ours)
    client = Client(endpoint, cluster.run_id, strict=ours)
    sandbox.append(2)
    sandbox.poll(client, 0)
    for event in events:
        sandbox.run(event, client)
    sandbox.catch_up(client)
    return client.shown, len(sandbox.lines), client.errors


def check_sequence(cluster: SeededCluster, endpoint: LogEndpoint, events: list[Event]) -> None:
    """Run ``events`` with a tailing client; its lines are the pod's, each once, in order."""
    shown, lines, _ = tail_through(cluster, endpoint, events)
    assert shown == list(range(lines)), (events, shown)


if st is not None:
    EVENTS = st.one_of(
        st.builds(Event, st.just("append"), st.integers(0, WORKERS - 1), st.integers(1, 3)),
        st.builds(
            Event,
            st.sampled_from(
                ["missing", "500", "403", "reset", "reset_mid_body", "hang", "breaker", "reuse", "stand_in"]
            ),
            st.integers(0, WORKERS - 1),
        ),
        st.builds(Event, st.just("recycle"), st.integers(0, WORKERS - 1)),
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(events=st.lists(EVENTS, max_size=8))
    def test_a_tailing_client_gets_every_pod_line_exactly_once_in_order(
        cluster: SeededCluster, endpoint: LogEndpoint, events: list[Event]
    ) -> None:
        check_sequence(cluster, endpoint, events)

else:

    @pytest.mark.skip(reason="hypothesis is not in this cell's lock (the primary cells and the 3.4 cell have it)")
    def test_a_tailing_client_gets_every_pod_line_exactly_once_in_order() -> None:
        """Runs where hypothesis is installed."""


def test_the_response_is_json_lines_a_ui_renders(cluster: SeededCluster, endpoint: LogEndpoint) -> None:
    """A sanity check of the harness: one poll shows the lines, and the token is a continuation."""
    sandbox = Sandbox(cluster, endpoint)
    client = Client(endpoint, cluster.run_id)
    sandbox.append(3)
    content = sandbox.poll(client, 0)
    assert client.shown == [0, 1, 2], json.dumps(content)[:1000]
    assert client.token


# ------------------------------------------------------------------ named sequences, ours beside stock

#: Sequences that lost or repeated lines before continuation reads skipped lines themselves (each fails there).
REGRESSIONS: dict[str, list[Event]] = {
    "pod not listed, then 3 lines": [Event("missing"), Event("append", count=3)],
    "two 500s, then lines again": [Event("append", count=3), Event("500"), Event("500"), Event("append", count=2)],
    "403, then a line": [Event("403"), Event("append")],
    "hang healed after the deadline": [Event("append", count=2), Event("hang"), Event("append", count=2)],
    "reset within the body": [Event("reset_mid_body"), Event("append")],
}
#: Every kind of event once, for the table beside stock.
SEQUENCES: dict[str, list[Event]] = {
    **REGRESSIONS,
    "breaker opens, then closes": [Event("append", count=2), Event("breaker"), Event("append", count=2)],
    "two workers, one recycled": [
        Event("append", 0),
        Event("append", 1),
        Event("recycle", 0),
        Event("append", 0, 2),
    ],
    "a stand-in, then a line": [Event("append", count=2), Event("stand_in"), Event("append")],
    "reused within answer_ttl": [Event("append"), Event("reuse"), Event("append")],
}


def _counts(shown: list[int], lines: int) -> tuple[int, int]:
    """Lines never shown, and lines shown more than once."""
    return len(set(range(lines)) - set(shown)), len(shown) - len(set(shown))


def _pair(counts: tuple[int, int]) -> str:
    return f"{counts[0]}, {counts[1]}"


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_regressions_exactly_once(cluster: SeededCluster, endpoint: LogEndpoint, name: str) -> None:
    """The failing examples of the issue and of the property test, as plain regression tests."""
    check_sequence(cluster, endpoint, REGRESSIONS[name])


def test_the_same_sequences_against_stock_side_by_side(
    cluster: SeededCluster, endpoint: LogEndpoint, request: pytest.FixtureRequest
) -> None:
    """Ours and stock Airflow on each named sequence: lines never shown, lines shown again (printed)."""
    from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG

    ours = {name: tail_through(cluster, endpoint, events) for name, events in SEQUENCES.items()}
    stock = {}
    stock_config = log_endpoint(cluster.dag_id, cluster.task_id, DEFAULT_LOGGING_CONFIG, raise_server_exceptions=False)
    with stock_config as stock_endpoint:
        for name, events in SEQUENCES.items():
            stock[name] = tail_through(cluster, stock_endpoint, events, ours=False)
    header = f"{'sequence':<34} {'lines':>5}  {'ours: missed, again':>20}  {'stock: missed, again':>21}"
    rows = [f"{header}  {'stock 500s':>10}"]
    for name in SEQUENCES:
        (shown, lines, _), (stock_shown, stock_lines, stock_errors) = ours[name], stock[name]
        ours_counts, stock_counts = _pair(_counts(shown, lines)), _pair(_counts(stock_shown, stock_lines))
        rows.append(f"{name:<34} {lines:>5}  {ours_counts:>20}  {stock_counts:>21}  {stock_errors:>10}")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # in the test command's output, not the captured output
            reporter.write_line("")
            reporter.write_line("A client following the continuation token, ours beside stock:")
            for row in rows:
                reporter.write_line("  " + row)
    for name, (shown, lines, _) in ours.items():
        assert _counts(shown, lines) == (0, 0), name
