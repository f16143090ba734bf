"""The HTML report in a real headless Chromium (Debian's), driven through the DevTools protocol by playwright.

The page of a history with several runs on two machines and a pull request's results must load with
no request beyond its own file, draw every chart, show a point's figures in human units when the
mouse rests on it, and narrow to one machine through the filter. Skips where playwright or a
Chromium is missing; .ci/run installs both and keeps the screenshot ($MODELPERF_REPORT_SCREENSHOT).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelperf.cli import main
from tests.report.report_data import BATCH1, MACHINES, STEP_AT, page_figures, write_history, write_results

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Where .ci/run keeps the screenshot among its artifacts (any folder works for the assertions).
SHOT_ENV = "MODELPERF_REPORT_SCREENSHOT"
# Chromium's own chatter (updates, metrics, first-run pages) would be requests the page did not make.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-default-apps", "--disable-sync"]
WAIT_MS = 60_000  # drawing a few dozen charts takes a second or two; a loaded machine may take far longer


def _browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip(f"no headless browser ({', '.join(BROWSERS)}) is installed; .ci/run installs chromium")
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """One Chromium and one report for the module: (the browser, the report file). Each test opens its own page."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright drives the browser: pip install -e .[dev]")
    browser_path = _browser()
    folder = tmp_path_factory.mktemp("report")
    report = folder / "report.html"
    argv = ["report", "--history", write_history(folder / "h.sqlite"), "--results",
            str(write_results(folder / "results.json")), "--html", str(report)]
    assert main(argv) == 0
    with sync_api.sync_playwright() as playwright:
        # Playwright gives the browser a fresh temporary profile (--user-data-dir) of its own.
        launched = playwright.chromium.launch(executable_path=browser_path, args=FLAGS)
        try:
            yield launched, report
        finally:
            launched.close()


@pytest.fixture
def page(browser: tuple[Any, Path]) -> Iterator[tuple[Any, list[str], str]]:
    """The report opened in a fresh page: (page, every URL it requested, the file's URL)."""
    launched, report = browser
    # A context of its own per test: no cache, storage or filter state carries over from another test's page.
    context = launched.new_context(viewport={"width": 1400, "height": 1000})
    try:
        opened = context.new_page()
        requested: list[str] = []
        opened.on("request", lambda request: requested.append(request.url))
        opened.goto(report.as_uri())
        opened.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
        yield opened, requested, report.as_uri()
    finally:
        context.close()


def _hover_point(page: Any, plot: str, index: int) -> str:
    """Rest the mouse on the ``index``-th point of the chart ``plot`` and read the tooltip plotly shows."""
    point = page.locator(f"#{plot} .scatterlayer .trace path.point").nth(index)
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    assert box is not None, f"point {index} of {plot} is not drawn"
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    tooltip = page.locator(f"#{plot} .hoverlayer .hovertext")
    tooltip.wait_for(timeout=WAIT_MS)
    return str(tooltip.text_content())


def test_the_report_loads_offline_and_a_hovered_point_shows_its_figures(
    page: tuple[Any, list[str], str], tmp_path: Path
) -> None:
    opened, requested, own = page
    assert requested == [own], "the page must load nothing but itself"
    html = Path(own.removeprefix("file://")).read_text(encoding="utf-8")
    figures = page_figures(html)
    assert opened.locator(".js-plotly-plot").count() == len(figures) == 1 + 4 * len(MACHINES)
    # The batch-1 card of the first machine: the point just after its step, a regressed run.
    card = opened.locator(f'article[data-test="{BATCH1}"]')
    plot = card.locator(f'[data-machine="{MACHINES[0]}"] .plot').get_attribute("id")
    text = _hover_point(opened, str(plot), STEP_AT + 1)
    assert re.search(r"^\d+\.\d+ ms\s+latency p10", text), text  # the figure in ms, with its human name
    assert re.search(r"interval \d+\.\d+ ms to \d+\.\d+ ms", text), text
    assert f"commit {STEP_AT + 1:02d}c0ffee" in text and f"2026-03-{STEP_AT + 2:02d} 02:15:00" in text, text
    assert "regressed" in text, text
    shot = Path(os.environ.get(SHOT_ENV) or tmp_path / "report.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_the_pull_request_chart_shows_each_ratio_and_its_interval(page: tuple[Any, list[str], str]) -> None:
    opened, _, _ = page
    text = _hover_point(opened, "plot-0", 0)
    assert "test_distilbert_batch1" in text and "change/base ×1.121" in text, text
    assert "95 % interval ×1.094 to ×1.149" in text and "verdict regressed" in text, text
    assert "change 13.90 ms, base 12.40 ms" in text, text


def test_the_machine_filter_leaves_one_panel_per_card(page: tuple[Any, list[str], str]) -> None:
    opened, _, _ = page
    opened.select_option('select[data-filter="machine"]', MACHINES[1])
    assert opened.locator(".panel:visible").count() == 4
    assert opened.locator(f'.panel:visible[data-machine="{MACHINES[0]}"]').count() == 0
    assert opened.locator(f'#latest td:visible[data-machine="{MACHINES[0]}"]').count() == 0
    assert opened.locator("#shown-count").text_content() == "4 of 4 charts"
    opened.select_option('select[data-filter="model"]', "llama")
    assert opened.locator("article.card:visible").count() == 1
    assert opened.locator("#shown-count").text_content() == "1 of 4 charts"
