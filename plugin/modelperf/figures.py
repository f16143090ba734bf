"""How a latency statistic is computed from rounds: the one definition that measuring (a record's
headline figure) and deciding (the verdict's ratio) share, so the two can never disagree.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["CONTROL_QUANTILE", "TAIL_STATISTICS", "control_floor", "control_for", "reducer", "statistic_of"]

# The control's figure is its lower decile, the machine's speed when nothing else interferes, for every
# statistic but a tail (TAIL_STATISTICS, below).
CONTROL_QUANTILE = 0.10
_QUANTILES = {"p10": 0.10, "p90": 0.90, "p99": 0.99}
# A tail percentile of the rounds moves with how much interference its session had, and the control's
# own tail, timed between the same rounds, moves with it; its floor does not. In the stored A/A pairs of
# 2026-12-07 (docs/trust.md#tail-correction) the inter-token p90 went x0.71 between two sessions while
# the control's p90 went x0.71 too; corrected by the floor it read "improved", by the control's p90 not.
TAIL_STATISTICS = ("p90", "p99")


def reducer(statistic: str) -> Any:
    """The numpy function (``f(array, axis=...)``) that computes ``statistic`` over rounds."""
    if statistic in _QUANTILES:
        return functools.partial(np.quantile, q=_QUANTILES[statistic])
    return np.median if statistic == "median" else np.mean


def statistic_of(statistic: str, samples: Any) -> float:
    """``statistic`` of one run's rounds, as a float."""
    return float(reducer(statistic)(np.asarray(samples, dtype=float)))


def control_floor(control: Any, axis: int = -1) -> Any:
    """The control rounds' lower decile: how fast the machine runs the control when undisturbed."""
    return np.quantile(control, CONTROL_QUANTILE, axis=axis)


def control_for(statistic: str, control: Any, axis: int = -1) -> Any:
    """The control figure a latency ``statistic`` is corrected by: the control's same percentile for a
    tail (:data:`TAIL_STATISTICS`: how much interference the session had), its floor for any other."""
    if statistic in TAIL_STATISTICS:
        return reducer(statistic)(control, axis=axis)
    return control_floor(control, axis=axis)
