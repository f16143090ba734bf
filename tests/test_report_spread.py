"""The spread each trend plot draws around a run's figure (pure helper, plain parametrized tests)."""

from __future__ import annotations

import pytest

from modelperf.records import Kind
from modelperf.report.html import spread
from modelperf.store.history import HistoryRow


def _row(kind: Kind, value: float, samples: tuple[float, ...]) -> HistoryRow:
    return HistoryRow("r", "2026-01-01T00:00:00+00:00", "hw", None, False, "t.py::t", kind, "m", "s", value, {}, samples)


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
