"""``PostgresCluster``: a real private server on 127.0.0.1 that leaves no process and no directory behind."""

from __future__ import annotations

import psutil
import pytest

from airflow_executor_logs.utils.processes import is_gone
from tests.support.postgres import PostgresCluster, PostgresUnavailable, missing_reason

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))


def test_serves_its_database_on_loopback_then_leaves_nothing() -> None:
    import sqlalchemy

    with PostgresCluster() as cluster:
        engine = sqlalchemy.create_engine(cluster.url)
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("select current_database()")).scalar() == "airflow"
            listen = conn.execute(sqlalchemy.text("show listen_addresses")).scalar()
        engine.dispose()
        postmaster, root = cluster.pid, cluster.root
        assert postmaster is not None
        assert root is not None
        assert root.is_dir()
        assert listen == "127.0.0.1"
    assert is_gone(postmaster)
    assert not root.exists()


def test_a_failed_start_stops_what_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = PostgresCluster()

    roots: list[str] = []

    def never_ready() -> None:  # the server is starting: pg_ctl cannot stop it yet, its tree must be stopped
        roots.append(str(cluster.root))
        raise PostgresUnavailable("not ready")

    monkeypatch.setattr(cluster, "_wait_ready", never_ready)
    with pytest.raises(PostgresUnavailable, match="not ready"), cluster:
        pass
    assert cluster.proc is None  # stopped and removed by Lifecycle's __enter__
    assert cluster.root is None
    assert len(roots) == 1
    assert _serving(roots[0]) == []


def _serving(root: str) -> list[int]:
    """PIDs of live processes whose command line names ``root`` (zombies count as gone)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(root in arg for arg in proc.info["cmdline"] or ()):
            found.append(proc.pid)
    return found
