"""Label selectors of the loopback Kubernetes API (``kube_api.selectors``)."""

from __future__ import annotations

import pytest

from airflow_executor_logs_testing import LabelSelectorError, parse_label_selector

# -- label selectors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("   ", {"a": "1"}, True),
        ("a=1", {"a": "1"}, True),
        ("a=1", {"a": "2"}, False),
        ("a=1", {}, False),
        ("a==1", {"a": "1"}, True),
        ("a!=1", {"a": "2"}, True),
        ("a!=1", {}, True),
        ("a!=1", {"a": "1"}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "1"}, False),
        ("!a", {"b": "1"}, True),
        ("!a", {"a": "1"}, False),
        ("a in (1,2)", {"a": "2"}, True),
        ("a in (1,2)", {"a": "3"}, False),
        ("a in (1,2)", {}, False),
        ("a notin (1,2)", {"a": "3"}, True),
        ("a notin (1,2)", {}, True),
        ("a notin (1,2)", {"a": "1"}, False),
        ("a=", {"a": ""}, True),
        (" a = 1 , b in ( x , y ) , !c , d ", {"a": "1", "b": "y", "d": "z"}, True),
        ("a=1,b in (x,y),!c", {"a": "1", "b": "y", "c": "z"}, False),
        (
            "example.com/app=web,app.kubernetes.io/name",
            {"example.com/app": "web", "app.kubernetes.io/name": "x"},
            True,
        ),
        (
            "dag_id=my_dag,try_number=1,airflow-worker",
            {"dag_id": "my_dag", "try_number": "1", "airflow-worker": "7"},
            True,
        ),
    ],
)
def test_selector_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


def test_selector_structure() -> None:
    selector = parse_label_selector("a in (x, y), !b")
    assert [(r.key, r.operator, r.values) for r in selector.requirements] == [
        ("a", "in", frozenset({"x", "y"})),
        ("b", "!", frozenset()),
    ]
    assert parse_label_selector(None).matches(None)


@pytest.mark.parametrize(
    "selector",
    [
        ",",
        "a=1,",
        ",a=1",
        "a=1,,b=2",
        "!",
        "a b",
        "a=1=2",
        "a!1",
        "a in 1",
        "a in (1",
        "a in ()",
        "a in (1,,2)",
        "a in (1,)",
        "a notin (1) b",
        "a@b=1",
        "-a=1",
        "a=-x",
        "a=(",
        "a=" + "x" * 64,
        "x" * 64 + "=1",
        "Bad_Prefix/a=1",
    ],
)
def test_selector_malformed(selector: str) -> None:
    with pytest.raises(LabelSelectorError, match="unable to parse requirement"):
        parse_label_selector(selector)
