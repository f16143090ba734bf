"""The spread each trend plot draws around a run's figure (pure helper, plain parametrized tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelperf.records import Judgement, Kind, MemoryDetail
from modelperf.report.series import spread, verdict_change
from modelperf.store.history import HistoryRow
from modelperf.vocab import Verdict


def _row(kind: Kind, value: float, samples: tuple[float, ...]) -> HistoryRow:
    return HistoryRow("r", "2026-01-01T00:00:00+00:00", "hw", None, False, "t.py::t", kind, "m", "s", value, samples)


@pytest.mark.parametrize(
    ("kind", "value", "samples", "expected"),
    [
        (Kind.LATENCY, 5.0, tuple(float(x) for x in range(1, 11)), (2.0, 9.0)),  # p10-p90 of the rounds
        (Kind.LATENCY, 5.0, (), (5.0, 5.0)),  # no rounds stored: a bare point
        (Kind.MEMORY, 7.0, (7.0,), (7.0, 7.0)),
        (Kind.LATENCY, 0.5, (1.0, 2.0, 3.0), (0.5, 3.0)),  # the band always holds the figure itself
    ],
)
def test_spread_of_rounds(kind: Kind, value: float, samples: tuple[float, ...], expected: tuple[float, float]) -> None:
    assert spread(_row(kind, value, samples)) == pytest.approx(expected)


def test_accuracy_spread_is_the_wilson_interval() -> None:
    low, high = spread(_row(Kind.ACCURACY, 0.9, (1.0,) * 180 + (0.0,) * 20))
    assert low == pytest.approx(0.851, abs=1e-3) and high == pytest.approx(0.934, abs=1e-3)


def _with(judgement: Judgement, value: float = 0.0475) -> HistoryRow:
    return HistoryRow("r", "2026-01-01T00:00:00+00:00", "hw", None, False, "t.py::t", Kind.LATENCY, "p10_s", "s",
                      value, (), judgement=judgement)


@pytest.mark.parametrize(
    ("judgement", "expected"),
    [
        # 54.3 -> 47.5 ms raw, but the verdict's drift-corrected ratio is what the column must show.
        (Judgement(Verdict.PASS, "", reference=0.0543, ratio=1.033), "+3.3% vs baseline (drift-corrected)"),
        (Judgement(Verdict.PASS, "", ratio=1.033, ratio_low=1.01, ratio_high=1.058),
         "+3.3% (+1.0% to +5.8%) vs baseline (drift-corrected)"),
        (Judgement(Verdict.PASS, "", reference=0.05), "-5.0% vs baseline"),
        (Judgement(Verdict.RECORDED, ""), None),
    ],
)
def test_the_change_shown_is_the_one_the_verdict_was_made_on(judgement: Judgement, expected: str | None) -> None:
    assert verdict_change(_with(judgement)) == expected


def test_tradeoff_error_bars_are_wilson_for_accuracy_and_round_spread_for_latency() -> None:
    from modelperf.records import Kind, Measurement
    from modelperf.report.tradeoff import interval

    accuracy = Measurement("t::acc", Kind.ACCURACY, "accuracy", "fraction", 0.9, (1.0,) * 180 + (0.0,) * 20)
    value, [[below], [above]] = interval(accuracy)
    assert value == 0.9 and below == pytest.approx(0.9 - 0.851, abs=1e-3) and above == pytest.approx(0.934 - 0.9, abs=1e-3)
    latency = Measurement("t::lat", Kind.LATENCY, "p10_s", "s", 0.0055, tuple(0.001 * i for i in range(1, 11)))
    value, [[below], [above]] = interval(latency, scale=1e3)
    assert value == pytest.approx(5.5) and below == pytest.approx(5.5 - 1.9) and above == pytest.approx(9.1 - 5.5)


def test_tradeoff_plot_draws_with_intervals(tmp_path: Path) -> None:
    from modelperf.records import Kind, Measurement
    from modelperf.report.tradeoff import plot

    def result(role: str, kind: Kind, metric: str, value: float, samples: tuple[float, ...],
               **extra: float) -> Measurement:
        memory = MemoryDetail("memray", int(extra["memray_peak_bytes"]), 0, 0) if "memray_peak_bytes" in extra else None
        return Measurement(f"tests/suite/t.py::{role}", kind, metric, "x", value, samples, role=f"distilbert:{role}",
                           memory=memory, info=extra)

    results = [
        result("accuracy", Kind.ACCURACY, "accuracy", 0.85, (1.0,) * 170 + (0.0,) * 30),
        result("batch1", Kind.LATENCY, "p10_s", 0.005, (0.004, 0.005, 0.006)),
        result("memory", Kind.MEMORY, "memray_peak_bytes", 2e8, (2e8,), memray_peak_bytes=2e8),
    ]
    written = plot(results, tmp_path / "tradeoff.png")
    assert written is not None and written.read_bytes().startswith(b"\x89PNG")


def test_the_terminal_change_column_shows_the_verdicts_ratio_and_interval() -> None:
    from modelperf.records import Measurement, TestResult
    from modelperf.report.terminal import results_rows

    measured = Measurement("t.py::t", Kind.LATENCY, "p10_s", "s", 0.0475, (0.0475,))
    # Raw 54.3 -> 47.5 ms reads -12.5 %; the verdict was made on the drift-corrected x1.033.
    result = TestResult(measured, Judgement(Verdict.PASS, "line", 0.0543, ratio=1.033, ratio_low=1.01,
                                            ratio_high=1.058))
    [row] = results_rows([result])
    assert row[4] == "x1.033 (1.010-1.058)"
