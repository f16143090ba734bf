"""Change points in a history series: where a figure moved for good, and so at which commit.

The idea is asv's step detection: fit the series with a piecewise-constant function, paying a fixed
penalty for every step, and keep the fit of least total cost. Here the fit is optimal partitioning
(exact dynamic programming over every split) of the log values, with a squared-error cost measured in
units of the series' own run-to-run noise, so one penalty serves a 1 ms test and a 1 s one alike:

- noise: the median absolute difference of successive runs (scaled to a standard deviation), which a
  few steps in the series barely move, unlike a plain standard deviation;
- penalty: ``PENALTY_PER_LOG_N * log(n)`` per step, a BIC-like price that grows slowly with the series,
  so an unchanged (A/A) series of any length stays free of steps;
- a step must last ``MIN_SEGMENT`` runs (one odd run is an outlier, not a change), move the figure
  by at least ``min_effect``, and pass Welch's t-test between its two levels at ``STEP_ALPHA`` (the
  noise estimate of a short series is itself noisy; the test uses each level's own spread); other
  steps are merged away, weakest first, and the levels around them recomputed.

Pure: numbers in, frozen :class:`Step` values out. Each run counts once, whatever its samples were.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["DEFAULT_MIN_EFFECT", "MIN_SEGMENT", "PENALTY_PER_LOG_N", "STEP_ALPHA", "Step", "find_steps"]

# 4 log n: simulated A/A series (20-200 runs) showed a step in none of 300 at 0.5 % run-to-run noise and
# in under 2 % at 1 %; +3 % steps 10 runs apart at 0.5 % noise were named at the exact run in 98 %.
PENALTY_PER_LOG_N = 4.0
STEP_ALPHA = 0.001  # one false step in a thousand tested: history is read often, alarms must be rare
MIN_SEGMENT = 2  # runs a new level must hold before it counts as a step
DEFAULT_MIN_EFFECT = 0.01  # a 1 % move: below what these benchmarks can tell apart run to run
_NOISE_FLOOR = 1e-6  # relative: a deterministic series (perplexity) still splits on a real change
_MAD_TO_SD = 1.4826  # median absolute deviation of a normal sample -> its standard deviation


@dataclass(frozen=True)
class Step:
    """The figure moved from ``before`` to ``after`` (typical values of the two levels) at ``index``."""

    index: int  # the first run at the new level
    before: float
    after: float

    @property
    def change(self) -> float:
        """Relative change, e.g. ``0.03`` for +3 %."""
        return self.after / self.before - 1.0 if self.before else math.inf


def find_steps(values: Sequence[float], *, min_effect: float = DEFAULT_MIN_EFFECT) -> list[Step]:
    """The lasting steps of ``values`` (oldest first), each at the index of its first run."""
    if len(values) < 2 * MIN_SEGMENT or not all(math.isfinite(v) for v in values):
        return []
    y, scale = _scaled(values)
    z = y / _noise(y)
    bounds = _partition(z, PENALTY_PER_LOG_N * math.log(len(z)))
    while True:
        steps = _steps(y, bounds, scale)
        weak = [(p, s) for s, p in zip(steps, _p_values(y, bounds)) if abs(s.change) < min_effect or p >= STEP_ALPHA]
        if not weak:
            return steps
        bounds.remove(max(weak, key=lambda pair: (pair[0], -abs(pair[1].change)))[1].index)


def _p_values(y: np.ndarray, bounds: list[int]) -> list[float]:
    """Welch's two-sided p for each step, between the levels on either side of it."""
    edges = [0, *bounds, len(y)]
    out = []
    for a, b, c in zip(edges, edges[1:], edges[2:]):
        left, right = y[a:b], y[b:c]
        if np.ptp(left) == 0 and np.ptp(right) == 0:  # deterministic figures: any move is real
            out.append(0.0 if left[0] != right[0] else 1.0)
        else:
            out.append(float(stats.ttest_ind(left, right, equal_var=False).pvalue))
    return out


def _scaled(values: Sequence[float]) -> tuple[np.ndarray, float | None]:
    """Log values (scale None) when all are positive, as steps are ratios; else values over their typical size."""
    array = np.asarray(values, dtype=float)
    if np.all(array > 0):
        return np.log(array), None
    scale = float(np.median(np.abs(array))) or 1.0
    return array / scale, scale


def _noise(y: np.ndarray) -> float:
    mad = float(np.median(np.abs(np.diff(y))))
    return max(_MAD_TO_SD * mad / math.sqrt(2.0), _NOISE_FLOOR)  # a difference has twice the variance


def _partition(z: np.ndarray, penalty: float) -> list[int]:
    """Start indices (after 0) of the segments of least squared error plus ``penalty`` per segment."""
    n = len(z)
    s1 = np.concatenate(([0.0], np.cumsum(z)))
    s2 = np.concatenate(([0.0], np.cumsum(z * z)))
    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    last = np.zeros(n + 1, dtype=int)
    for end in range(MIN_SEGMENT, n + 1):
        starts = np.arange(0, end - MIN_SEGMENT + 1)
        starts = starts[np.isfinite(best[starts])]
        length = end - starts
        cost = s2[end] - s2[starts] - (s1[end] - s1[starts]) ** 2 / length
        total = best[starts] + cost + penalty
        pick = int(np.argmin(total))
        best[end], last[end] = total[pick], starts[pick]
    bounds, end = [], n
    while end > 0:
        end = int(last[end])
        if end > 0:
            bounds.append(end)
    return sorted(bounds)


def _steps(y: np.ndarray, bounds: list[int], scale: float | None) -> list[Step]:
    edges = [0, *bounds, len(y)]
    levels = [float(np.mean(y[a:b])) for a, b in itertools.pairwise(edges)]
    typical = [math.exp(level) if scale is None else level * scale for level in levels]
    return [Step(index, typical[i], typical[i + 1]) for i, index in enumerate(bounds)]
