"""
The served-logs check (the Celery/Local path): for the RUNNING tasks whose log core asks the worker's log
server for, the hostname is set and resolves, the log server port accepts a connection within
``connect_timeout``, and a request signed as core signs it is not refused with 403. Hosts are probed at once.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_executor_logs.cli.doctor.check.bounded import Bounded, NotAnswered, within
from airflow_executor_logs.cli.doctor.check.results import FAIL, OK, CheckResult
from airflow_executor_logs.cli.doctor.check.running import RunningTask
from airflow_executor_logs.config import Settings

__all__ = ["HOSTNAME", "PORT", "SECRET", "HostProbe", "check_served_logs", "probe_host"]

#: The setting behind each kind of failure.
HOSTNAME = "[core] hostname_callable (workers must report a name the API server resolves)"
PORT = "[logging] worker_log_server_port (and that the worker's log server runs and is reachable from here)"
SECRET = "[api] secret_key (the same on the API server and every worker, and clocks in sync)"
#: Failing hosts named in the line.
SHOWN = 3

Fetch = Callable[[str, str], Any]


@dataclass(frozen=True)
class HostProbe:
    """What one worker host answered; ``problem`` and ``setting`` are ``None`` when it is fine."""

    host: str
    tasks: int
    problem: str | None = None
    setting: str | None = None
    status: int | None = None


def probe_host(host: str, url: str, rel_path: str, tasks: int, settings: Settings, fetch: Fetch) -> HostProbe:
    """Resolve ``host`` and connect (``connect_timeout`` each), then send core's signed request (read deadline)."""
    port = urlsplit(url).port or 80
    connect = settings.connect_timeout
    try:
        addresses = within(connect, lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), "resolve")
    except (OSError, NotAnswered) as err:
        return HostProbe(host, tasks, f"{host} does not resolve ({err})", HOSTNAME)
    family, kind, proto, _, address = addresses[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(connect)
            sock.connect(address)
    except OSError as err:
        reason = f"no connection within {connect:g} s" if isinstance(err, TimeoutError) else str(err)
        return HostProbe(host, tasks, f"{host}:{port} does not accept a connection ({reason})", PORT)
    try:
        response = within(settings.read_timeout, lambda: fetch(url, rel_path), "served-log")
    except NotAnswered:
        return HostProbe(host, tasks, f"{host}:{port} did not answer within {settings.read_timeout:g} s", PORT)
    except Exception as err:
        return HostProbe(host, tasks, f"{host}:{port}: {type(err).__name__}: {err}", PORT)
    try:
        status = int(response.status_code)
    finally:
        response.close()
    if status == 403:
        return HostProbe(host, tasks, f"{host}:{port} refuses the signed request (403)", SECRET, status)
    return HostProbe(host, tasks, status=status)


def check_served_logs(tasks: Sequence[RunningTask], settings: Settings, fetch: Fetch | None = None) -> CheckResult:
    """Probe each worker host of ``tasks`` at once; one line with the count and the first failing hosts."""
    from airflow.configuration import conf

    from airflow_executor_logs import version_compat

    if not tasks:
        return CheckResult("served-logs", None, OK, "no RUNNING task reads its log from a worker's log server")
    if not conf.get("api", "secret_key", fallback=""):
        summary = "[api] secret_key is not set: each process signs with a key of its own, so workers refuse (403)"
        return CheckResult("served-logs", None, FAIL, summary, f"set {SECRET}", {"tasks": len(tasks)})
    fetch = fetch or version_compat.served_log_fetch()
    probes: list[HostProbe] = []
    by_host: dict[str, list[RunningTask]] = {}
    for task in tasks:
        by_host.setdefault(getattr(task.ti, "hostname", None) or "", []).append(task)
    started: list[tuple[str, int, Bounded[HostProbe]]] = []
    for host, on_host in by_host.items():
        if not host:
            probes.append(HostProbe("(empty hostname)", len(on_host), "the hostname is empty", HOSTNAME))
            continue
        addressed = [task for task in on_host if task.url is not None and task.rel_path is not None]
        if not addressed:
            problem = f"{host}: core builds no log-server address for its task(s) (the log file name does not render)"
            probes.append(HostProbe(host, len(on_host), problem, "[logging] log_filename_template"))
            continue
        first = addressed[0]
        url, rel_path = str(first.url), str(first.rel_path)
        call = Bounded(functools.partial(probe_host, host, url, rel_path, len(on_host), settings, fetch), host)
        started.append((host, len(on_host), call))
    cap = 2 * settings.connect_timeout + settings.read_timeout + 0.5
    for host, count, call in started:
        try:
            probes.append(call.result(cap))
        except Exception as err:  # past its cap (a resolver that ignores its bound), or a bug
            probes.append(HostProbe(host, count, f"{host}: {type(err).__name__}: {err}", PORT))
    return _result(tasks, probes)


def _result(tasks: Sequence[RunningTask], probes: Sequence[HostProbe]) -> CheckResult:
    failing = [probe for probe in probes if probe.problem is not None]
    details = {
        "tasks": len(tasks),
        "hosts": [
            {"host": p.host, "tasks": p.tasks, "problem": p.problem, "setting": p.setting, "status": p.status}
            for p in probes
        ],
    }
    where = f"{len(tasks)} running task(s) on {len(probes)} host(s)"
    if not failing:
        return CheckResult(
            "served-logs", None, OK, f"{where}: every log server answers a signed request", None, details
        )
    shown = "; ".join(f"{p.problem} ({p.tasks} task(s))" for p in failing[:SHOWN])
    more = f"; and {len(failing) - SHOWN} more" if len(failing) > SHOWN else ""
    settings = list(dict.fromkeys(p.setting for p in failing if p.setting))
    summary = f"{where}, {len(failing)} failing: {shown}{more}"
    return CheckResult("served-logs", None, FAIL, summary, "check " + "; ".join(settings), details)
