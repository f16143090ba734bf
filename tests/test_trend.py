"""Change points over history: the pure step finder, and ``modelperf history`` / ``report`` naming commits.

The history series are simulated as sessions produce them: each run times 20 rounds and keeps their
median, and runs differ by a machine-state offset (realistic run-to-run noise of 0.5-1 %). After
each +3 % step the next run re-saves the baseline, as a team absorbing a creep would; history keeps
every run, so the step is still found.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelperf.cli import main
from modelperf.records import Judgement, Kind, Measurement, TestResult
from modelperf.store.history import HistoryStore, RunInfo
from modelperf.trend import find_steps
from modelperf.vocab import Verdict

RUNS = 60
STEP_RUNS = (10, 20, 30, 40, 50)  # a +3 % creep lands at each of these runs
TEST = "tests/test_models.py::test_batch1"
HW = "x86_64-linux-abc123"


def _series(seed: int, run_noise: float, steps: tuple[int, ...]) -> list[tuple[float, tuple[float, ...]]]:
    """(median of the run's rounds, the rounds) per run; each step multiplies the true level by 1.03."""
    rng = np.random.default_rng(seed)
    level, out = 0.050, []
    for run in range(RUNS):
        if run in steps:
            level *= 1.03
        offset = level * float(np.exp(rng.normal(0.0, run_noise)))
        rounds = tuple(float(x) for x in offset * np.exp(rng.normal(0.0, 0.01, 20)))
        out.append((float(np.median(rounds)), rounds))
    return out


def _verdict(run: int, steps: tuple[int, ...]) -> str:
    if run in steps:
        return "pass"  # +3 % is inside the gate's 10 % minimum effect: nothing fails
    return "recorded" if run - 1 in steps else "pass"  # the re-save that absorbs the creep


def _history(path: Path, series: list[tuple[float, tuple[float, ...]]], steps: tuple[int, ...]) -> str:
    with HistoryStore(str(path)) as store:
        for run, (value, rounds) in enumerate(series):
            info = RunInfo(f"{run:04d}" + "0" * 28, f"2026-01-01T{run // 60:02d}:{run % 60:02d}:00+00:00", HW,
                           commit=f"c{run:03d}aaaa", dirty=False)
            judged = Judgement(Verdict(_verdict(run, steps)), "")
            store.append(info, [TestResult(Measurement(TEST, Kind.LATENCY, "p10_s", "s", value, rounds), judged)])
    return str(path)


def _named_commits(text: str) -> list[str]:
    return [line.split(" at commit ")[1].split()[0] for line in text.splitlines() if line.startswith("change point:")]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_history_names_the_five_commits_of_a_creep_that_re_saves_absorbed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    store = _history(tmp_path / "h.sqlite", _series(seed, 0.004, STEP_RUNS), STEP_RUNS)
    assert main(["history", "--history", store]) == 0
    out = capsys.readouterr().out
    assert _named_commits(out) == [f"c{run:03d}aaaa" for run in STEP_RUNS]
    lines = [line for line in out.splitlines() if line.startswith("change point:")]
    assert lines[0].startswith("change point: +") and " at commit c010aaaa (run 00100000, 2026-01-01 00:10:00): " in lines[0]
    for line in lines:
        match = re.fullmatch(r"change point: \+(\d\.\d) % at commit \S+ \(run \d{8}, [\d: -]+\): [\d.]+ ms -> [\d.]+ ms", line)
        assert match is not None and 2.0 <= float(match[1]) <= 4.0, line


@pytest.mark.parametrize(("seed", "run_noise"), [(0, 0.004), (1, 0.004), (2, 0.009), (3, 0.009)])
def test_history_names_no_commit_in_an_a_a_series_of_the_same_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int, run_noise: float
) -> None:
    store = _history(tmp_path / "h.sqlite", _series(100 + seed, run_noise, ()), ())
    assert main(["history", "--history", store]) == 0
    assert _named_commits(capsys.readouterr().out) == []


def test_report_marks_the_change_points_in_markdown_and_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _history(tmp_path / "h.sqlite", _series(0, 0.004, STEP_RUNS), STEP_RUNS)
    page = tmp_path / "report.html"
    assert main(["report", "--history", store, "--html", str(page), "--markdown", "-"]) == 0
    markdown = capsys.readouterr().out
    assert "## Change points" in markdown
    assert [line.split(" at commit ")[1].split()[0] for line in markdown.splitlines() if " at commit " in line] == [
        f"c{run:03d}aaaa" for run in STEP_RUNS]
    assert page.read_text().count('<li class="step">change point: ') == len(STEP_RUNS)


@pytest.mark.parametrize(
    ("values", "indices"),
    [
        ([1.0] * 10, []),
        ([1.0] * 5 + [1.05] * 5, [5]),  # deterministic figures (perplexity): any lasting move is a step
        ([1.0] * 5 + [1.005] * 5, []),  # below the 1 % minimum effect
        ([1.0] * 9 + [1.05], []),  # one run at a new level is not yet a step
        ([1.0] * 4 + [1.3] + [1.0] * 5, []),  # one odd run is an outlier, not a change
        ([0.9] * 6 + [0.8] * 6, [6]),  # accuracy drops are steps too
        ([1.0, 1.0, 1.0], []),  # too short to tell
        ([1.0] * 5 + [float("nan")] + [1.1] * 5, []),
    ],
)
def test_find_steps_on_exact_series(values: list[float], indices: list[int]) -> None:
    assert [s.index for s in find_steps(values)] == indices


def test_a_step_reports_its_levels_and_change() -> None:
    [step] = find_steps([2.0] * 6 + [2.5] * 6)
    assert (step.index, step.before, step.after) == (6, pytest.approx(2.0), pytest.approx(2.5))
    assert step.change == pytest.approx(0.25)


@settings(max_examples=50, deadline=None)
@given(scale=st.floats(1e-6, 1e6), seed=st.integers(0, 2**16))
def test_steps_do_not_depend_on_the_unit(scale: float, seed: int) -> None:
    values = [v for v, _ in _series(seed, 0.004, (30,))]
    assert [s.index for s in find_steps(values)] == [s.index for s in find_steps([v * scale for v in values])]
