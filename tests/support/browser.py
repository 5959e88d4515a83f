"""
The real Airflow UI in headless Chromium: Debian's ``chromium`` driven by playwright (pinned in the lock of the
primary cell), launched with ``executable_path``; never ``playwright install``, which downloads a browser.

:func:`log_view` opens a task's Logs tab on a sandbox api-server and records every response; :class:`LogView`
reads the log lines the page renders. The UI's DOM (Airflow 3.3): the log is a virtualized list
(``[data-testid=virtualized-list]``) inside ``[data-testid=virtual-scroll-container]``; each rendered line is a
``[data-testid^=virtualized-item-]`` (its line number an ``a[data-copy-exclude]`` link), and each group such as
"Log message source details" a ``[data-testid^=group-header-]`` row whose lines render only once clicked open.
A line with a level renders it as a coloured badge followed by ``" - "``: ``WARNING - message``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from airflow_executor_logs.utils.processes import is_gone, stop_processes

if TYPE_CHECKING:
    from playwright.sync_api import Page, Response

LIST = "[data-testid=virtualized-list]"
SCROLL_CONTAINER = "[data-testid=virtual-scroll-container]"
LINE = "[data-testid^=virtualized-item-]"
GROUP_HEADER = "[data-testid^=group-header-]"
LINE_NUMBER = "a[data-copy-exclude]"
#: A line the UI colours: its level badge, then `` - ``.
LEVELLED = re.compile(r"\b(WARNING|ERROR|CRITICAL) - ")

_READ_LINES = """([selector, container, number]) => {
  const box = document.querySelector(container)?.getBoundingClientRect();
  return Array.from(document.querySelectorAll(selector)).map((item) => {
    const copy = item.cloneNode(true);
    copy.querySelectorAll(number).forEach((a) => a.remove());
    const r = item.getBoundingClientRect();
    const shown = !!box && r.height > 0 && r.bottom > box.top && r.top < box.bottom;
    return {text: copy.textContent, shown: shown, cut: !!box && r.right > box.right + 1};
  });
}"""


def chromium_path() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium")


def unavailable() -> str | None:
    """Why the browser cannot run here (a skip reason), or ``None``."""
    if chromium_path() is None:
        return "Debian's chromium is not installed (scripts/lib.sh ensure_chromium installs it as root with apt-get)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed in this environment (the lock of airflow-3.3.2-k8s-10.25.0 pins it)"
    return None


@dataclass(frozen=True)
class Line:
    """One rendered log line: its text without the line number, whether it is inside the visible panel (``shown``)
    and whether it runs past the panel's right edge (``cut``: the rest is seen only by scrolling sideways)."""

    text: str
    shown: bool
    cut: bool = False

    @property
    def levelled(self) -> bool:
        """Whether the UI colours it as a warning or an error."""
        return LEVELLED.search(self.text) is not None


@dataclass
class LogView:
    """A page of the Airflow UI that records every response it gets."""

    page: Page
    base_url: str
    started: float = field(default_factory=time.monotonic)
    responses: list[tuple[float, int, str]] = field(default_factory=list)

    def record(self, response: Response) -> None:
        """Remember one response (seconds since start, status, URL)."""
        self.responses.append((time.monotonic() - self.started, response.status, response.url))

    def open_task(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Open the task instance's page, whose first tab is Logs."""
        self.page.goto(f"{self.base_url}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}")

    def lines(self) -> list[Line]:
        """The log lines rendered right now (a virtualized list: the ones around the view)."""
        raw: list[dict[str, Any]] = self.page.evaluate(_READ_LINES, [LINE, SCROLL_CONTAINER, LINE_NUMBER])
        return [Line(" ".join(str(r["text"]).split()), shown=bool(r["shown"]), cut=bool(r["cut"])) for r in raw]

    def panel_text(self) -> str:
        """All text of the log panel (open groups included)."""
        return str(self.page.locator(LIST).first.text_content() or "") if self.page.locator(LIST).count() else ""

    def tail(self, lines: int = 6) -> str:
        """The last rendered rows of the log panel, group headers included, one per line."""
        rows: list[str] = self.page.evaluate(
            "([s]) => Array.from(document.querySelectorAll(s)).map((e) => e.textContent)",
            [f"{LINE}, {GROUP_HEADER}"],
        )
        return "\n".join(" ".join(row.split()) for row in rows[-lines:])

    def expand_groups(self) -> None:
        """Click every group header open (e.g. "Log message source details")."""
        headers = self.page.locator(GROUP_HEADER)
        for index in range(headers.count()):
            header = headers.nth(index)
            if "▶" in (header.text_content() or ""):
                header.click()
        self.page.wait_for_timeout(200)

    def wait_for(self, predicate: Callable[[list[Line]], bool], timeout: float, what: str) -> float:
        """Seconds until ``predicate(lines())`` holds; ``AssertionError`` with the last lines after ``timeout``."""
        started = time.monotonic()
        while True:
            lines = self.lines()
            if predicate(lines):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{what}: not within {timeout:.1f}s; the log panel ends with:\n{self.tail()}")
            self.page.wait_for_timeout(100)  # lets playwright deliver events (responses) meanwhile

    def pause(self, seconds: float) -> None:
        """Wait while the page keeps polling (``time.sleep`` would hold playwright's event delivery)."""
        self.page.wait_for_timeout(seconds * 1000)

    def log_polls(self) -> int:
        """Task-log responses received so far."""
        return sum(1 for _, _, url in self.responses if "/logs/" in url)

    def server_errors(self) -> list[tuple[float, int, str]]:
        """Responses with a 5xx status."""
        return [r for r in self.responses if r[1] >= 500]

    def screenshot(self, path: Path) -> Path:
        """Save a screenshot of the page and return its path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path


@contextlib.contextmanager
def log_view(base_url: str, *, width: int = 1400, height: int = 1000) -> Iterator[LogView]:
    """
    Headless chromium on ``base_url`` (a sandbox api-server: the simple auth manager, every user an admin).

    The playwright driver and the browser are children of this process: whatever of them is left after
    ``close()`` is stopped by PID.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError(unavailable())
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    started: list[psutil.Process] = []
    try:
        with sync_playwright() as playwright:
            args = ["--disable-dev-shm-usage", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
            browser = playwright.chromium.launch(executable_path=executable, args=args)
            started = [p for p in me.children(recursive=True) if p.pid not in before]
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                view = LogView(page=page, base_url=base_url)
                page.on("response", view.record)
                yield view
            finally:
                browser.close()
    finally:
        left = [p for p in started if not is_gone(p)]
        if left:
            stop_processes(left, grace=3.0)
