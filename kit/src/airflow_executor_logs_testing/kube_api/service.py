"""What every loopback server of the kit is: something on 127.0.0.1 that starts and stops, with a URL."""

from __future__ import annotations

from airflow_executor_logs_testing.lifecycle import Lifecycle

__all__ = ["LoopbackService"]


class LoopbackService(Lifecycle):
    """Something serving HTTP on 127.0.0.1 that starts and stops: a context manager with a :attr:`url`."""

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"
