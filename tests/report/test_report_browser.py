"""The HTML report in a real headless browser (Debian's chromium): the page loads offline and renders.

Skips where no chromium is installed; .ci/run installs it, and keeps the screenshot as an artifact.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from modelperf.cli import main
from tests.test_trend import STEP_RUNS, _history, _series

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Where .ci/run keeps the screenshot among its artifacts (any folder works for the assertion).
SHOT_ENV = "MODELPERF_REPORT_SCREENSHOT"


def _browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip(f"no headless browser ({', '.join(BROWSERS)}) is installed; .ci/run installs chromium")
    return found


def test_the_report_renders_in_a_headless_browser(tmp_path: Path) -> None:
    browser = _browser()
    store = _history(tmp_path / "h.sqlite", _series(0, 0.004, STEP_RUNS), STEP_RUNS)
    page = tmp_path / "report.html"
    assert main(["report", "--history", store, "--html", str(page)]) == 0
    shot = Path(os.environ.get(SHOT_ENV) or tmp_path / "report.png")
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,2400"]
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], check=True, timeout=120, capture_output=True)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000  # a drawn page, not a blank one
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True, timeout=120, capture_output=True, text=True)
    assert dom.stdout.count("<img") == 1 and dom.stdout.count('class="step"') == len(STEP_RUNS)
