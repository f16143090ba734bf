"""The between-session spreads a stored-baseline session reads from the history (SQLite)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from modelperf.load_records import LoadDetail
from modelperf.records import Kind, LatencyDetail, Measurement, PairedRuns, RunFigure
from modelperf.store.history import HistoryError, HistoryStore, RunInfo
from modelperf.store.spreads import NEWEST_RUNS, read_spreads

HW = "hw-1"
TEST = "t.py::test_tail"


def _figure(log: float, statistic: str = "p90", model: str | None = None, test: str = TEST,
            paired: bool = False) -> Measurement:
    """A latency figure whose corrected log figure is ``log`` (every round equal, control floor 5 ms)."""
    value = 0.005 * math.exp(log)
    runs = (RunFigure(0, value, 0.005, 3),)
    detail = LatencyDetail(statistic, 20, paired=PairedRuns("HEAD", 0.05, statistic, runs, runs) if paired else None)
    return Measurement(test, Kind.LATENCY, f"{statistic}_s", "s", value, (value,) * 20, (0.005,) * 12, model,
                       latency=detail)


def _store(path: Path, sessions: list[tuple[str, list[Measurement]]], hardware: str = HW) -> str:
    location = str(path / "history.sqlite")
    with HistoryStore(location) as history:
        for index, (commit, measurements) in enumerate(sessions):
            run = RunInfo(f"{index:032x}", f"2025-02-01T{index // 60:02d}:{index % 60:02d}:00+00:00", hardware,
                          commit=commit)
            history.append(run, measurements)
    return location


def test_spreads_are_pooled_within_one_commit_per_test_and_statistic(tmp_path: Path) -> None:
    logs = [-0.1, 0.0, 0.1]
    sessions = [("c1", [_figure(x), _figure(x / 10, "p10")]) for x in logs]
    sessions += [("c2", [_figure(x + 1.0), _figure(x / 10 + 1.0, "p10")]) for x in logs]  # a real step between
    spreads = read_spreads(_store(tmp_path, sessions), HW)
    assert spreads is not None
    assert spreads[(TEST, "p90")].sd == pytest.approx(0.1) and spreads[(TEST, "p90")].df == 4
    assert spreads[(TEST, "p10")].sd == pytest.approx(0.01)


def test_other_weights_against_figures_and_other_hardware_are_not_repeats(tmp_path: Path) -> None:
    sessions = [("c1", [_figure(0.0, model="a@1")]), ("c1", [_figure(0.5, model="b@2")]),
                ("c1", [_figure(0.1, model="a@1")]), ("c1", [_figure(3.0, paired=True)])]
    location = _store(tmp_path, sessions)
    with HistoryStore(location) as history:
        history.append(RunInfo("f" * 32, "2025-03-01T00:00:00+00:00", "hw-2", commit="c1"), [_figure(9.0)])
    spreads = read_spreads(location, HW)
    assert spreads is not None
    pooled = spreads[(TEST, "p90")]
    assert (pooled.sessions, pooled.df) == (3, 1) and pooled.sd == pytest.approx(0.1 / math.sqrt(2))


def test_only_the_newest_runs_are_read(tmp_path: Path) -> None:
    # The old runs, of a noisier machine, fall out of the estimate.
    rng = np.random.default_rng(3)
    old = [("c1", [_figure(float(x))]) for x in rng.normal(0, 1.0, 10)]
    new = [("c2", [_figure(float(x))]) for x in rng.normal(0, 0.01, NEWEST_RUNS)]
    spreads = read_spreads(_store(tmp_path, old + new), HW)
    assert spreads is not None and spreads[(TEST, "p90")].sessions == NEWEST_RUNS
    assert spreads[(TEST, "p90")].sd < 0.05


def test_no_history_is_none_and_a_missing_file_is_empty_and_not_created(tmp_path: Path) -> None:
    assert read_spreads(None, HW) is None
    assert read_spreads(str(tmp_path / "none" / "history.sqlite"), HW) == {}
    assert not (tmp_path / "none").exists()


def test_a_file_that_is_not_a_history_store_is_one_sentence(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    with pytest.raises(HistoryError, match="is not a pytest-modelperf history store"):
        read_spreads(str(other), HW)


def _served(log: float, figure: str = "e2e_p50", phases: int = 1, pattern: str = "Poisson 2/s (seed 0)") -> Measurement:
    value = 0.2 * math.exp(log)
    detail = LoadDetail(pattern, "http://127.0.0.1", 10.0, 20, 20, 0, 2.0, 20.0, phases=phases)
    return Measurement("t.py::test_served", Kind.LOAD, figure, "s", value, (value,) * 20, load=detail)


def test_served_load_figures_get_their_own_spread_per_figure_and_against_phases_are_left_out(tmp_path: Path) -> None:
    logs = [-0.2, 0.0, 0.2]
    sessions = [("c1", [_served(x), _served(x / 2, "ttft_p90"), _figure(x / 20)]) for x in logs]
    sessions += [("c2", [_served(x + 1.0), _served(x / 2 + 1.0, "ttft_p90"), _figure(x / 20)]) for x in logs]
    sessions += [("c2", [_served(5.0, phases=4)])]  # a side of --against: not a session's figure
    spreads = read_spreads(_store(tmp_path, sessions), HW)
    assert spreads is not None
    served = spreads[("t.py::test_served", "e2e_p50")]
    assert served.sd == pytest.approx(0.2) and (served.sessions, served.df) == (6, 4)
    assert spreads[("t.py::test_served", "ttft_p90")].sd == pytest.approx(0.1)
    assert spreads[(TEST, "p90")].sd == pytest.approx(0.01)


def test_a_served_figure_run_twice_is_still_a_repeat_and_other_weights_are_not(tmp_path: Path) -> None:
    # The session whose figure looked worse and was run again is the slowest: leaving it out of its group
    # would understate the spread. A session whose settings loaded other weights is not a repeat.
    location = str(tmp_path / "history.sqlite")
    sessions = [(0.0, "Poisson 2/s (seed 0)", "aaa"), (0.4, "Poisson 2/s (seed 0), run twice", "aaa"),
                (0.2, "Poisson 2/s (seed 0)", "aaa"), (3.0, "Poisson 2/s (seed 0)", "bbb")]
    with HistoryStore(location) as history:
        for index, (log, pattern, weights) in enumerate(sessions):
            versions = {"models": {"llama": {"weights_sha256": weights, "threads": 2}}}
            run = RunInfo(f"{index:032x}", f"2025-02-01T00:0{index}:00+00:00", HW, commit="c1", versions=versions)
            history.append(run, [_served(log, pattern=pattern)])
    spreads = read_spreads(location, HW)
    assert spreads is not None
    served = spreads[("t.py::test_served", "e2e_p50")]
    assert (served.sessions, served.df) == (4, 2) and served.sd == pytest.approx(0.2)
