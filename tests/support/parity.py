"""Comparing our answers with a provider's own: the one deliberate difference taken out."""

from __future__ import annotations

from typing import Any


def without_our_problem_lines(answer: Any) -> Any:
    """
    ``answer`` (messages, logs) without the line this package adds at the end of the log for a problem
    (the provider says it only as a source message, which we keep): that line is the one deliberate difference.
    """

    def ours(line: str) -> bool:
        return line.startswith("{") and '"logger": "airflow_executor_logs"' in line

    messages, logs = answer
    if logs and isinstance(logs[0], str):
        return messages, ["\n".join(line for line in log.split("\n") if not ours(line)) for log in logs]
    kept = [[line for line in log if not ours(line)] for log in logs]
    return messages, [log for log, full in zip(kept, logs, strict=True) if log or not full]


def same_answers(theirs: Any, ours: Any) -> tuple[list[str], list[str]]:
    """Assert both answers equal (but for our problem line); ours in the list form's shape, streams joined."""
    ours = without_our_problem_lines(ours)
    assert ours == theirs
    messages, logs = ours
    return messages, [log if isinstance(log, str) else "\n".join(log) for log in logs] or [""]
