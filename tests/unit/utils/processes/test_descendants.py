"""Stopping a whole tree: every descendant goes, grandchildren included, and the root only with ``stop_tree``."""

from __future__ import annotations

import psutil

from airflow_executor_logs.utils.processes import is_gone, stop_descendants, stop_tree
from tests.support.processes import python_child

#: A process with a child that has a child of its own; prints both pids, then "ready".
_TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import subprocess, time; p = subprocess.Popen(['sleep', '600']); print(p.pid, flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
print("ready", flush=True)
time.sleep(600)
"""


def test_stop_descendants_of_another_root_stops_its_tree_and_leaves_the_root() -> None:
    with python_child(_TREE) as root:
        child, grandchild = (root.adopt(int(pid)) for pid in root.printed[0].split())
        stop_descendants(grace=1.0, root=root.proc.pid)
        assert is_gone(child)
        assert is_gone(grandchild)
        assert not is_gone(psutil.Process(root.proc.pid))


def test_stop_tree_stops_the_root_too() -> None:
    with python_child(_TREE) as root:
        child, grandchild = (root.adopt(int(pid)) for pid in root.printed[0].split())
        stop_tree(root.proc.pid, grace=1.0)
        root.proc.wait(10)
        assert is_gone(child)
        assert is_gone(grandchild)
