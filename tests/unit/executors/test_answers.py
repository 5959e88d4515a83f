"""The seam around every answer: the key of a read, its outcome, and a policy that sees both."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.answers import Answer, ReadKey
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.executors.problem_answers import PassThrough
from airflow_executor_logs.executors.reader_protocol import Outcome, ReadReport, TextStreams
from airflow_executor_logs.executors.reader_registry import class_path
from airflow_executor_logs_testing import executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.task_instances import fake_ti


class RecordingPolicy:
    """Reads every time (rendering problems as :class:`PassThrough` does), and remembers each key with its outcome."""

    def __init__(self) -> None:
        self.seen: list[tuple[ReadKey, Outcome]] = []

    def answer(self, key: ReadKey, read: Callable[[], Answer], *, lasts: float) -> Answer:
        answer = PassThrough().answer(key, read, lasts=lasts)
        self.seen.append((key, answer.outcome))
        return answer


@pytest.fixture(autouse=True)
def _all_fakes_configured() -> Iterator[None]:
    with conf_vars({("core", "executor"): fx.all_executors_setting()}):
        yield


def test_the_key_of_a_read_names_the_executor_the_task_instance_and_the_try() -> None:
    ti = fake_ti("KubernetesExecutor", dag_id="d", task_id="t", run_id="r", map_index=3)
    assert ReadKey.of("a.B", ti, 2) == ReadKey("a.B", "d", "t", "r", 3, 2)
    assert ReadKey.of("a.B", ti, 2) != ReadKey.of("a.B", ti, 1)


def test_a_key_is_made_for_a_task_instance_missing_fields() -> None:
    """A reader that needs none of them still answers: making the key never fails the read."""
    assert ReadKey.of("a.B", object(), 1) == ReadKey("a.B", "", "", "", -1, 1)


def test_pass_through_reads_every_time() -> None:
    reads: list[int] = []

    def read() -> Answer:
        reads.append(1)
        return Answer(["m"], TextStreams())

    key = ReadKey.of("a.B", fake_ti(), 1)
    assert PassThrough().answer(key, read, lasts=1.0).messages == ["m"]
    PassThrough().answer(key, read, lasts=1.0)
    assert len(reads) == 2


def test_the_pipeline_passes_each_read_through_its_policy_with_the_outcome() -> None:
    policy = RecordingPolicy()
    pipeline = ExecutorLogPipeline(settings=Settings(fallback_enabled=False), policy=policy)
    pipeline.register(fx.CountingExecutor, lambda cls, ti, try_number: (["ok"], ["line"]))
    pipeline.read(fake_ti("CountingExecutor", task_id="a"), 1)  # a registered reader answers
    pipeline.read(fake_ti("ManagerExecutor", task_id="b"), 2)  # no reader, and no fallback: refused
    pipeline.register(fx.GetLogHangsExecutor, lambda cls, ti, try_number: 1 / 0)
    pipeline.read(fake_ti("GetLogHangsExecutor", task_id="c"), 1)  # a reader that raises: failed
    assert [(key.executor, key.task_id, key.try_number, outcome) for key, outcome in policy.seen] == [
        (class_path(fx.CountingExecutor), "a", 1, Outcome.SUCCESS),
        (class_path(fx.ManagerExecutor), "b", 2, Outcome.REFUSED),
        (class_path(fx.GetLogHangsExecutor), "c", 1, Outcome.FAILED),
    ]


def test_a_timed_out_reader_is_reported_as_a_timeout() -> None:
    policy = RecordingPolicy()
    pipeline = ExecutorLogPipeline(settings=Settings(read_timeout=0.05), policy=policy)
    release = []

    def hangs(cls: type, ti: Any, try_number: int) -> Any:
        import threading

        event = threading.Event()
        release.append(event)
        event.wait(10)
        return [], []

    pipeline.register(fx.CountingExecutor, hangs)
    try:
        _messages, logs = pipeline.read(fake_ti("CountingExecutor"), 1)
    finally:
        for event in release:
            event.set()
    assert policy.seen[-1][1] is Outcome.TIMEOUT
    assert json.loads(logs[0])["event"] == "hangs timed out (0.05 s)"


def test_a_policy_may_answer_without_reading() -> None:
    kept = Answer(["kept"], TextStreams())

    class Keeps:
        def answer(self, key: ReadKey, read: Callable[[], Answer], *, lasts: float) -> Answer:
            return kept

    pipeline = ExecutorLogPipeline(settings=Settings(), policy=Keeps())
    constructed = fx.constructed(fx.ManagerExecutor)
    assert pipeline.read(fake_ti("ManagerExecutor"), 1) == (["kept"], [])
    assert fx.constructed(fx.ManagerExecutor) == constructed  # no short-lived executor was built


def test_an_unknown_executor_is_answered_before_any_policy() -> None:
    policy = RecordingPolicy()
    pipeline = ExecutorLogPipeline(settings=Settings(), policy=policy)
    answer = pipeline.answer(fake_ti("NoSuchExecutor"), 1)
    assert answer.outcome is Outcome.FAILED
    assert policy.seen == []  # no key: the executor class is not known


def test_a_report_keeps_its_first_problem() -> None:
    report = ReadReport()
    assert report.outcome is Outcome.SUCCESS
    report.problem(Outcome.TIMEOUT, "first")
    report.problem(Outcome.FAILED, "second")
    assert (report.outcome, report.detail) == (Outcome.TIMEOUT, "first")


def test_a_problem_reaches_the_policy_typed_and_is_rendered_once_there() -> None:
    """The pipeline reports the problem and renders nothing: the policy renders it (here: PassThrough), once."""
    unrendered: list[Answer] = []

    class Keeps(RecordingPolicy):
        def answer(self, key: ReadKey, read: Callable[[], Answer], *, lasts: float) -> Answer:
            return super().answer(key, lambda: unrendered.append(read()) or unrendered[-1], lasts=lasts)

    pipeline = ExecutorLogPipeline(settings=Settings(fallback_timeout=1), policy=Keeps())
    pipeline.register(fx.GetLogHangsExecutor, lambda cls, ti, try_number: 1 / 0)
    messages, logs = pipeline.read(fake_ti("GetLogHangsExecutor"), 1)
    assert unrendered[0].outcome is Outcome.FAILED
    assert unrendered[0].streams == []  # typed: what failed is on its report, no line rendered yet
    assert messages == [unrendered[0].report.detail]
    (line,) = logs
    assert json.loads(line)["event"].startswith("Executor logs unavailable: GetLogHangsExecutor failed to read logs")
