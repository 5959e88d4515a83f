"""Serve a :class:`FakeKubeAPI` from its own process: ``python -m airflow_executor_logs_testing.kube_api``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_executor_logs_testing.kube_api.api import FakeKubeAPI

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a :class:`FakeKubeAPI` until SIGTERM/SIGINT; print ``{"url", "port", "pid"}`` once ready."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_executor_logs_testing.kube_api", description="Serve a fake Kubernetes API."
    )
    parser.add_argument("--kubeconfig", required=True, type=Path, help="kubeconfig file to write")
    parser.add_argument("--pods", type=Path, help="JSON file: a list of add_pod keyword arguments")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: ephemeral)")
    parser.add_argument("--token", help="bearer token (default: random)")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process dies")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    with FakeKubeAPI(token=args.token, port=args.port) as api:
        if args.pods is not None:
            for spec in json.loads(args.pods.read_text(encoding="utf-8")):
                api.add_pod(**spec)
        api.write_kubeconfig(args.kubeconfig)
        ready = {"url": api.url, "port": api.port, "pid": os.getpid(), "kubeconfig": str(args.kubeconfig)}
        print(json.dumps(ready), flush=True)
        while not stop.wait(0.2):
            if args.exit_with_parent and os.getppid() != parent:
                break
    return 0
