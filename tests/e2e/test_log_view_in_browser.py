"""
What a person sees on the Logs tab of a RUNNING task, in the real Airflow UI in headless Chromium.

One real ``airflow api-server`` (our logging config, ``read_timeout`` 2 s, the breaker open after 2 timeouts)
and the page of the running task, whose pod logs 300 lines through the loopback Kubernetes API. The UI polls
the log about 3 s after each answer, only while the DAG is unpaused. The test asserts from the rendered page:

* healthy: the pod's last lines, and the UI polls;
* the Kubernetes API hangs: within one poll after the first timeout, the last lines and a warning line the UI
  colours, in the visible part of the log and not cut off at its right edge;
* the API comes back (the pod logged more meanwhile): the fresh lines within 5 s, though the breaker is open;
* a task whose executor does not exist: its message in the log body;
* neither during the hang nor for the unknown executor a served-logs error, the source details opened (the
  task's host name resolves nowhere: that error would only mislead);
* no 5xx answer at any point.

One browser session walks through every state (a server start costs more than the whole walk), so a state that
fails does not stop the walk: the failures are reported together at the end. Screenshots of each state go to the
test's ``tmp_path`` (the paths are printed). Runs on the primary cell airflow-3.3.2-k8s-10.25.0 only
(scripts/test.sh); skips, saying why, without chromium or playwright.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from airflow_executor_logs_testing import Fault
from tests.e2e.conftest import DAG_ID, POD_LINES, POD_NAME, RUN_ID, TASK_ID, UNKNOWN_RUN, Deployment
from tests.support import browser
from tests.support.sandbox import ApiServer

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(browser.unavailable() is not None, reason=str(browser.unavailable()))]

READ_TIMEOUT = 2.0
BREAKER_THRESHOLD = 2
#: The UI asks for the log again about this long after each answer.
POLL = 3.0
#: Rendering and a loaded 2-core machine, on top of the deadlines the issue sets.
SLACK = 2.0
RECOVERY = 5.0
LINES = [f"browser pod line {n:03d}" for n in range(300)]
FRESH = [f"fresh pod line {n} after the API came back" for n in range(3)]


def held(deployment: Deployment) -> int:
    """Kubernetes requests the hang holds right now."""
    return int(deployment.kube.stats()["hanging"])


def wait_held(view: browser.LogView, deployment: Deployment, count: int, timeout: float) -> None:
    """Wait until the hang holds ``count`` requests (the page keeps polling meanwhile)."""
    started = time.monotonic()
    while held(deployment) < count:
        assert time.monotonic() - started < timeout, f"{held(deployment)} requests held, expected {count}"
        view.pause(0.1)


def next_poll(view: browser.LogView, timeout: float, what: str) -> None:
    """Wait for the UI's next answer to a task-log request."""
    polls = view.log_polls()
    view.wait_for(lambda _: view.log_polls() > polls, timeout, what)


def shows_last_lines(lines: list[browser.Line]) -> bool:
    return any(line.shown and LINES[-1] in line.text for line in lines)


def shows(text: str) -> Callable[[list[browser.Line]], bool]:
    return lambda lines: any(line.shown and text in line.text for line in lines)


def warnings(lines: list[browser.Line]) -> list[str]:
    """Shown lines the UI colours as a warning or an error that are not the pod's own."""
    return [line.text for line in lines if line.shown and line.levelled and "pod line" not in line.text]


class Walk:
    """The states seen: failures, timings and screenshots, reported together."""

    def __init__(self, view: browser.LogView, folder: Path) -> None:
        self.view, self.folder = view, folder
        self.failures: list[str] = []
        self.timings: dict[str, float] = {}
        self.shots: dict[str, Path] = {}

    def expect(self, name: str, predicate: Callable[[list[browser.Line]], bool], timeout: float) -> bool:
        """Whether the page shows ``predicate`` within ``timeout``; a failure is recorded, not raised."""
        started = time.monotonic()
        try:
            self.view.wait_for(predicate, timeout, name)
        except AssertionError as failure:
            self.failures.append(str(failure))
            return False
        finally:
            self.timings[name] = time.monotonic() - started
        return True

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        if not ok:
            self.failures.append(f"{name}: {detail}")

    def no_served_logs_error(self, state: str) -> None:
        """Open the source details: no error from the worker's log server (the pod's name resolves nowhere)."""
        self.view.expand_groups()
        panel = self.view.panel_text()
        served = [word for word in ("served logs", ":8793") if word in panel.lower()]
        self.check(f"{state}: no served-logs error", not served, f"{served} in {panel[-1500:]!r}")

    def shot(self, name: str, file: str) -> None:
        self.shots[name] = self.view.screenshot(self.folder / file)

    def report(self) -> None:
        for name, seconds in self.timings.items():
            print(f"[browser] {name}: {seconds:.1f}s")
        for name, path in self.shots.items():
            print(f"[browser] screenshot {name}: {path}")


def test_the_log_view_keeps_its_lines_warns_and_recovers_in_a_real_browser(
    deployment: Deployment, tmp_path: Path
) -> None:
    started = time.monotonic()
    deployment.add_pod_lines(LINES)
    server = deployment.sandbox.api_server(
        workers=1,
        extra_env={
            "AIRFLOW__EXECUTOR_LOGS__READ_TIMEOUT": str(READ_TIMEOUT),
            "AIRFLOW__EXECUTOR_LOGS__BREAKER_THRESHOLD": str(BREAKER_THRESHOLD),
        },
    )
    walk: Walk | None = None
    try:
        with server, browser.log_view(server.base_url) as view:
            print(f"\n[browser] api-server ready in {server.ready_after or 0:.1f}s")
            walk = Walk(view, tmp_path)
            assert_unpaused(server)
            view.open_task(DAG_ID, RUN_ID, TASK_ID)

            # Healthy: the pod's last lines, and the UI polls (the DAG is unpaused).
            view.wait_for(shows_last_lines, 30, "the pod's last line")
            next_poll(view, 2 * POLL + SLACK, "a second poll of the log")
            walk.check("healthy: no warning", not warnings(view.lines()), str(warnings(view.lines())))
            walk.shot("healthy", "1-healthy.png")

            # The Kubernetes API hangs: the last lines stay and a warning shows, within one poll of the first timeout.
            deployment.kube.inject("*", Fault.hang())  # every route, until heal()
            wait_held(view, deployment, 1, 2 * POLL + SLACK)
            walk.expect(
                "hang: the last lines and a warning, from the first held request",
                lambda lines: shows_last_lines(lines) and bool(warnings(lines)),
                READ_TIMEOUT + POLL + SLACK,
            )
            walk.shot("hang", "2-hang.png")
            cut = [line.text for line in view.lines() if line.shown and line.levelled and line.cut]
            walk.check("hang: the warning fits the panel", not cut, f"cut off at the right edge: {cut}")
            print(f"[browser] during the hang, warnings shown: {warnings(view.lines())}")
            walk.no_served_logs_error("hang")

            # The breaker opens (BREAKER_THRESHOLD timeouts) and still answers; then the API comes back with more.
            wait_held(view, deployment, BREAKER_THRESHOLD, BREAKER_THRESHOLD * (READ_TIMEOUT + POLL) + SLACK)
            next_poll(view, READ_TIMEOUT + POLL + SLACK, "an answer once the breaker opened")
            deployment.kube.append_logs(POD_NAME, FRESH)
            deployment.kube.heal()
            walk.expect("recovery: fresh lines after the heal", shows(FRESH[-1]), RECOVERY)
            walk.shot("recovered", "3-recovered.png")

            # An unknown executor: its message in the body; no served-logs error, even in the source details.
            view.open_task(DAG_ID, UNKNOWN_RUN[0], TASK_ID)
            walk.expect(f"unknown executor: {UNKNOWN_RUN[1]} in the log body", shows(UNKNOWN_RUN[1]), 30)
            next_poll(view, 2 * POLL + SLACK, "a poll of the unknown executor's log")
            walk.no_served_logs_error("unknown executor")
            walk.shot("unknown executor", "4-unknown-executor.png")

            walk.check("no 5xx", not view.server_errors(), str(view.server_errors()))
            print(f"[browser] {view.log_polls()} log answers, {len(view.server_errors())} of them 5xx")
            assert not walk.failures, "\n".join(walk.failures)
    finally:
        deployment.kube.heal()
        deployment.add_pod_lines(POD_LINES)
        if walk is not None:
            walk.report()
        print(f"[browser] test time {time.monotonic() - started:.1f}s")


def assert_unpaused(server: ApiServer) -> None:
    """The sandbox unpaused the DAG of its running task, as a DAG with a running task is."""
    response = httpx.get(
        f"{server.base_url}/api/v2/dags/{DAG_ID}", headers={"Authorization": f"Bearer {server.token()}"}, timeout=30
    )
    assert response.status_code == 200, response.text[:500]
    assert response.json()["is_paused"] is False
