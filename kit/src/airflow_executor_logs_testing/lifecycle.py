"""Something a test starts and must stop: the one context-manager shape the kit's services share."""

from __future__ import annotations

from typing import Any, TypeVar

_L = TypeVar("_L", bound="Lifecycle")


__all__ = ["Lifecycle"]


class Lifecycle:
    """
    A service with ``start()`` and an idempotent ``stop()``; as a context manager it is stopped on every
    way out, including when ``start()`` itself fails half-way (a process may already be running).
    """

    def start(self: _L) -> _L:
        """Start it; return ``self``."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop it and everything it started. Idempotent."""
        raise NotImplementedError

    def __enter__(self: _L) -> _L:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
