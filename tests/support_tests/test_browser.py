"""The browser harness (``tests/support/browser.py``): skip reasons, levels, and the UI's DOM read in chromium."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from tests.support import browser


def test_a_line_is_levelled_when_the_ui_colours_it() -> None:
    assert browser.Line("WARNING - Kubernetes API not answering", shown=True).levelled
    assert browser.Line("[2026-12-04, 21:00:00 UTC] ERROR - Executor logs unavailable", shown=True).levelled
    assert not browser.Line("pod line 1 WARNING-free", shown=True).levelled
    assert not browser.Line("Found logs through kube API", shown=True).levelled


def test_unavailable_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "chromium is not installed" in str(browser.unavailable())
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "playwright is not installed" in str(browser.unavailable())


#: The Logs tab as Airflow 3.3's UI renders it: a group header (closed), a pod line, a warning too wide to fit.
PAGE = """<html><body style="margin:0">
<div data-testid="virtual-scroll-container" style="width:400px;height:80px;overflow:hidden">
<code data-testid="virtualized-list"><div>
<div data-testid="group-header-0"><span>&#9654; Log message source details</span></div>
<div data-testid="virtualized-item-0" style="width:max-content"><div>
  <a data-copy-exclude="true" href="#1">1</a><span><span><code><span>pod line 1</span></code></span></span>
</div></div>
<div data-testid="virtualized-item-1" style="width:max-content"><div>
  <a data-copy-exclude="true" href="#2">2</a><span><span>WARNING</span> - <span>%s</span></span>
</div></div>
<div data-testid="virtualized-item-2" style="width:max-content;margin-top:200px"><div>
  <a data-copy-exclude="true" href="#3">3</a><span>below the panel</span>
</div></div>
</div></code></div></body></html>""" % ("Kubernetes API not answering " * 8)


@pytest.mark.skipif(browser.unavailable() is not None, reason=str(browser.unavailable()))
def test_lines_reads_the_rendered_log_in_chromium() -> None:
    with browser.log_view("http://127.0.0.1:9") as view:  # nothing is fetched: the page is set directly
        view.page.set_content(PAGE)
        lines = view.lines()
        assert [line.text for line in lines][:1] == ["pod line 1"]  # without the line number
        assert [(line.shown, line.levelled, line.cut) for line in lines] == [
            (True, False, False),
            (True, True, True),
            (False, False, False),
        ]
        assert view.tail().splitlines()[0] == "▶ Log message source details"
        assert "Log message source details" in view.panel_text()
        assert view.log_polls() == 0
        assert view.server_errors() == []
