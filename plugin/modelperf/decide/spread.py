"""How far one session's latency figure strays from another's of the same code, from the history."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from modelperf.figures import control_floor, reducer
from modelperf.records import Measurement
from modelperf.vocab import STATISTICS

__all__ = ["SessionSpread", "corrected_log_figure", "pooled_spread"]


@dataclass(frozen=True)
class SessionSpread:
    """How far one session's corrected figure strays from another's of the same code: the pooled sd
    (log scale) over groups of sessions, and its degrees of freedom (sessions less groups)."""

    sd: float
    df: int
    sessions: int


def corrected_log_figure(measurement: Measurement) -> float | None:
    """log(statistic / control floor) of a latency measurement, as :func:`compare_latency` corrects it;
    None when it has no control rounds or no usable samples."""
    samples = np.asarray(measurement.samples, dtype=float)
    control = np.asarray(measurement.control, dtype=float)
    if samples.size == 0 or control.size == 0 or np.any(samples <= 0) or np.any(control <= 0):
        return None
    statistic = measurement.statistic
    reduce = reducer(statistic if statistic in STATISTICS else "p10")
    return float(math.log(float(reduce(samples)) / float(control_floor(control))))


def pooled_spread(groups: list[list[float]]) -> SessionSpread:
    """Pooled within-group sd of ``groups`` of log figures (each group: sessions of one code).

    Pooling within groups keeps real changes between commits out of the estimate; a group of one
    session adds nothing. ``sd`` is NaN when no group has two sessions.
    """
    squares, df = 0.0, 0
    for group in groups:
        if len(group) >= 2:
            values = np.asarray(group, dtype=float)
            squares += float(np.sum((values - values.mean()) ** 2))
            df += len(group) - 1
    sessions = sum(len(group) for group in groups)
    return SessionSpread(math.sqrt(squares / df) if df else math.nan, df, sessions)

