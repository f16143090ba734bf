"""How a latency statistic is computed from rounds: the one definition that measuring (a record's
headline figure) and deciding (the verdict's ratio) share, so the two can never disagree.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["CONTROL_QUANTILE", "control_floor", "reducer", "statistic_of"]

# The control's figure is always its lower decile: the machine's speed when nothing else interferes.
CONTROL_QUANTILE = 0.10
_QUANTILES = {"p10": 0.10, "p90": 0.90, "p99": 0.99}


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
