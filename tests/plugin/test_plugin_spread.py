"""A stored latency comparison judges with its own test's between-session spread, read from the history.

Inner tests take a declared millisecond on the virtual clock of tests/ab (pytest-benchmark's
``--benchmark-timer vclock.now``), so their figures do not depend on what runs beside them; the control
workload is a constant stand-in (these tests are about which spread a verdict uses, not about drift). The baseline is edited to read
at least 1.5x faster than the test runs: past a tail percentile's default spread, within a noisy history's.
"""

from __future__ import annotations

import json
import math
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from modelperf.records import Kind, LatencyDetail, Measurement
from modelperf.store.history import HistoryStore, RunInfo
from tests.ab.helpers import CLOCK_DIR

TAIL_TEST = """
    import pytest
    import vclock

    def work():
        vclock.spend(0.001)

    @pytest.mark.latency(statistic="p90", min_effect=0.2)
    def test_tail(benchmark):
        benchmark(work)
"""
TEST_ID = "test_tail.py::test_tail"
# The corrected log figures of six earlier sessions of one commit: an sd of 0.5 on the log scale.
NOISY = (-0.7, -0.35, 0.0, 0.35, 0.7, 0.0)

# Imported once, before any inner session: pytester's in-process runs drop the modules a run imported,
# and neither torch nor numpy's C modules load twice into one process (see test_plugin_latency.py).
torch = pytest.importorskip("torch")
pytest.importorskip("scipy.stats")

from modelperf.measure import control as control_module


@pytest.fixture(autouse=True)
def _steady_control(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control_module, "control_timer", lambda threads=None, model_weights=(): lambda: 0.003)
    monkeypatch.syspath_prepend(str(CLOCK_DIR))


def _run(pytester: pytest.Pytester, history: Path) -> pytest.RunResult:
    return pytester.runpytest("--benchmark", "--history", str(history), "--baseline-dir", "baselines",
                              "--results-json", "results.json", "-p", "no:randomly",
                              "--benchmark-timer", "vclock.now")


def _faster_baseline(pytester: pytest.Pytester) -> str:
    """Make the stored baseline read at least 1.5x faster; the hardware id it was stored under."""
    [folder] = [p for p in (pytester.path / "baselines").iterdir() if p.is_dir()]
    [path] = [p for p in folder.glob("*.json") if p.name != "machine.json"]
    stored = json.loads(path.read_text())
    record = stored["records"][f"{TEST_ID}::p90_s"]
    # Every round at the recorded lower decile over 1.5: the current p90 reads at least 1.5x slower,
    # however much this machine's tail moved between the two sessions.
    fast = sorted(record["samples"])[len(record["samples"]) // 10] / 1.5
    record["samples"] = [fast] * len(record["samples"])
    record["value"] = fast
    path.write_text(json.dumps(stored))
    return folder.name


def _noisy_history(location: Path, hardware_id: str) -> None:
    with HistoryStore(location) as history:
        for index, log in enumerate(NOISY):
            value = 0.003 * math.exp(log)
            figure = Measurement(TEST_ID, Kind.LATENCY, "p90_s", "s", value, (value,) * 20, (0.003,) * 12,
                                 latency=LatencyDetail("p90", 20, control_version="stand-in"))
            history.append(RunInfo(f"{index:032x}", f"2025-02-01T00:0{index}:00+00:00", hardware_id, commit="c1"),
                           [figure])


def _judged(pytester: pytest.Pytester, history: Path, outcome: str) -> dict[str, Any]:
    result = _run(pytester, history)
    result.assert_outcomes(**{outcome: 1})
    [judged] = json.loads((pytester.path / "results.json").read_text())["results"]
    judgement: dict[str, Any] = judged["judgement"]
    return judgement


def test_a_tail_percentile_with_a_noisy_history_is_judged_with_that_spread_and_names_it(
    pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_tail=TAIL_TEST)
    _run(pytester, pytester.path / "recording.sqlite").assert_outcomes(passed=1)
    hardware_id = _faster_baseline(pytester)
    # No history of this test yet: p90's default spread, and 1.5x slower is far past it.
    alone = _judged(pytester, pytester.path / "empty.sqlite", "failed")
    assert alone["verdict"] == "regressed" and alone["ratio"] >= 1.45 and alone["session_spread"] == 0.07
    assert (
        "; with 7 % between sessions, the default for p90 until 5 sessions of one commit exist (the history holds 0 "
        "of this test)): slower, past the alarm line x1.120 of the 20 % minimum effect (confirmed by a "
        "re-measurement)") in alone["line"], alone["line"]
    # Six earlier sessions whose p90 moved by 50 % (sd): the same figures are noise for this test.
    noisy = pytester.path / "history.sqlite"
    _noisy_history(noisy, hardware_id)
    judged = _judged(pytester, noisy, "passed")
    assert judged["verdict"] == "pass" and judged["ratio"] >= 1.45 and judged["session_spread"] > 0.5
    assert fnmatch(judged["line"], "*; with * % between sessions, the upper 80 % bound from 6 sessions of this "
                                   "test in the history (sd 49 %)): no significant change*"), judged["line"]
