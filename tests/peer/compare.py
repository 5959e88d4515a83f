"""
Compare the provider's task-log tests run stock and with our handler (``plugin.py``'s JSON reports).

Prints both counts and the tests that fail only with ours by design, each with its reason. Exits 1 if a test
fails stock, or fails with ours without being listed here, or is listed but passes or fails for another reason
(each listed failure must show its expected text). Usage: ``python compare.py STOCK.json OURS.json``.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

LOG_HANDLERS = "tests/unit/cncf/kubernetes/log_handlers/test_log_handlers.py::TestFileTaskLogHandler::"
EXECUTOR = "tests/unit/cncf/kubernetes/executors/test_kubernetes_executor.py::"


@dataclass(frozen=True)
class ByDesign:
    """Test ids (a regular expression) that fail only with ours, the text their failure must show, and why."""

    ids: str
    shows: str
    reason: str
    #: A closer look at the failure's text, beyond ``shows``: whether it fails for that reason only.
    only: Callable[[str], bool] | None = None

    def explains(self, failure: str) -> bool:
        return self.shows in failure and (self.only is None or self.only(failure))


def only_the_request_timeout(failure: str) -> bool:
    """The call made is the call the provider's test expects, plus our ``_request_timeout``."""
    # The assertion's own lines (pytest prefixes them with "E"), not the mock library's source shown above them.
    expected = re.findall(r"^E +Expected: (.*)$", failure, re.MULTILINE)
    actual = re.findall(r"^E +Actual: (.*)$", failure, re.MULTILINE)
    if len(expected) != 1 or len(actual) != 1:
        return False
    return re.sub(r", _request_timeout=\([^)]*\)", "", actual[0]) == expected[0]


BY_DESIGN = [
    ByDesign(
        re.escape(f"{LOG_HANDLERS}test__read_for_k8s_executor[running]"),
        "Expected 'get_streaming_task_log' to be called once. Called 0 times.",
        "asserts that FileTaskHandler._read reaches KubernetesExecutor.get_streaming_task_log, i.e. that core builds "
        "the executor; ours reads through its pipeline and never builds or calls an executor",
    ),
    ByDesign(
        re.escape(f"{LOG_HANDLERS}test_read_from_k8s_under_multi_namespace_mode[") + r"[^]]+\]",
        "_request_timeout=",
        "the pod list (namespace, label selector) and the pod-log call's name, namespace, container, follow, "
        "tail_lines and _preload_content match the provider's; the exact-call assertion fails only on the "
        "_request_timeout=(connect, read) we add to every call, which bounds the read by [executor_logs] timeouts",
        only=only_the_request_timeout,
    ),
    ByDesign(
        re.escape(f"{EXECUTOR}TestKubernetesExecutor::test_get_") + r"(streaming_)?task_log",
        "'list' object has no attribute",
        "the test's client returns a list of bytes from read_namespaced_pod_log(_preload_content=False); the real "
        "client returns urllib3's HTTPResponse, which ours reads chunk by chunk under the deadline "
        "(read_chunked/read, then release_conn or close), where the provider only iterates it",
    ),
    ByDesign(
        re.escape(f"{EXECUTOR}TestClientFactoryCallSites::test_get_streaming_task_log_uses_executor_client"),
        "Actual: _get_executor_kube_client(team_name=None)",
        "asserts the client is built for the team set on the executor object the test built (team_a); ours has no "
        "executor and builds the client for the team of the task's Dag ([core] multi_team), here none",
    ),
]


def by_design(test_id: str) -> ByDesign | None:
    return next((entry for entry in BY_DESIGN if re.fullmatch(entry.ids, test_id)), None)


def main(stock_path: str, ours_path: str) -> int:
    with open(stock_path, encoding="utf-8") as stock_file, open(ours_path, encoding="utf-8") as ours_file:
        stock_report, ours_report = json.load(stock_file), json.load(ours_file)
    stock, ours = stock_report["tests"], ours_report["tests"]
    problems: list[str] = []
    expected: list[tuple[str, ByDesign]] = []
    for test_id in sorted(set(stock) | set(ours)):
        theirs, mine = stock.get(test_id, {}).get("outcome"), ours.get(test_id, {}).get("outcome")
        entry = by_design(test_id)
        if theirs != "passed" and theirs != "skipped":
            problems.append(f"{test_id}: {theirs or 'not run'} stock (the stand-in tests_common or the setup)")
        elif entry is not None:
            if mine == "failed" and entry.explains(ours[test_id].get("text", "")):
                expected.append((test_id, entry))
            elif mine == "failed":
                problems.append(f"{test_id}: fails with ours, not (only) for the reason listed ({entry.shows!r})")
            else:
                problems.append(f"{test_id}: listed as failing by design, but {mine or 'not run'} with ours")
        elif mine != theirs:
            problems.append(f"{test_id}: {theirs} stock, {mine or 'not run'} with ours")

    def counts(tests: dict[str, dict[str, str]]) -> str:
        tally = Counter(result["outcome"] for result in tests.values())
        return f"{tally['passed']} passed, {tally['failed']} failed, {tally['skipped']} skipped"

    print(f"provider task-log tests, stock: {counts(stock)}")
    print(f"provider task-log tests, ours:  {counts(ours)} (airflow_executor_logs from {ours_report['package']})")
    print(f"failing only with ours, by design ({len(expected)}):")
    for test_id, entry in expected:
        print(f"  {test_id}\n      {entry.reason}")
    if problems:
        print(f"differences not by design ({len(problems)}):")
        for problem in problems:
            print(f"  {problem}")
        for test_id in ours:
            if ours[test_id].get("outcome") == "failed" and by_design(test_id) is None:
                print(f"--- {test_id} (ours)\n{ours[test_id].get('text', '')[-3000:]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
