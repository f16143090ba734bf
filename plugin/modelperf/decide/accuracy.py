"""Accuracy compared example by example: Wilson intervals and McNemar's exact test."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from modelperf.decide._checks import Array
from modelperf.decide._checks import require as _require
from modelperf.records import Measurement
from modelperf.vocab import Verdict

__all__ = ["AccuracyComparison", "compare_accuracy", "wilson_interval"]



def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n``; ``(0, 1)`` when ``n`` is 0."""
    _require(0 <= k <= n, f"wilson_interval needs 0 <= k <= n, got k={k!r}, n={n!r}.")
    _require(0.0 < confidence < 1.0, f"confidence={confidence!r} must lie in (0, 1), e.g. 0.95.")
    if n == 0:
        return 0.0, 1.0
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    # Clamp float dust: callers rely on the bounds holding the point k/n and staying in [0, 1].
    return max(0.0, min(float(ci.low), k / n)), min(1.0, max(float(ci.high), k / n))


@dataclass(frozen=True)
class AccuracyComparison:
    """Paired per-example accuracy comparison (McNemar exact test on the discordant pairs)."""

    verdict: Verdict
    baseline_accuracy: float
    current_accuracy: float
    current_low: float
    current_high: float
    n: int
    lost: int
    gained: int
    p_value: float
    min_drop: float
    min_fraction: float
    reason: str = ""

    def line(self) -> str:
        if self.verdict is Verdict.NOT_COMPARED:
            return f"accuracy not compared: {self.reason}"
        return (f"accuracy {self.baseline_accuracy:.2%} -> {self.current_accuracy:.2%} "
                f"(95% CI {self.current_low:.2%}-{self.current_high:.2%}, n={self.n}, lost {self.lost}, "
                f"gained {self.gained}, McNemar p={self.p_value:.2g}): {self.reason}")


def _correctness(measurement: Measurement, side: str) -> Array:
    array = np.asarray(measurement.samples, dtype=float)
    _require(bool(np.all((array == 0.0) | (array == 1.0))),
             f"{side} accuracy samples of {measurement.test_id!r} must be per-example 0/1 correctness; "
             "re-measure or delete that baseline entry.")
    return array.astype(bool)


def _pairing_problem(baseline: Measurement, current: Measurement) -> str | None:
    """Why the two sides cannot be paired example by example, or None when they can."""
    if not baseline.samples or not current.samples:
        return "a side has no per-example samples; re-save the baseline"
    if len(baseline.samples) != len(current.samples):
        return (f"the baseline has {len(baseline.samples)} examples and this run {len(current.samples)}; "
                "the evaluation set changed, so re-save the baseline")
    ids = [None if m.accuracy is None else m.accuracy.example_ids for m in (baseline, current)]
    if ids[0] is not None and ids[1] is not None and ids[0] != ids[1]:
        return "the example ids differ from the baseline's; the evaluation set changed, so re-save the baseline"
    return None


def _mcnemar(wins: int, losses: int) -> float:
    """Exact one-sided McNemar p that ``wins`` outnumber ``losses`` among the discordant pairs."""
    return float(stats.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue) if wins + losses else 1.0


def compare_accuracy(
    baseline: Measurement,
    current: Measurement,
    *,
    min_drop: float = 0.02,
    min_fraction: float = 0.99,
    alpha: float = 0.05,
) -> AccuracyComparison:
    """Compare per-example correctness (0/1, same example order) of a baseline and this run.

    REGRESSED when the loss is significant (McNemar exact, ``p < alpha``) and at least ``min_drop``,
    or when accuracy fell below ``min_fraction`` of the baseline's (the MLPerf rule). IMPROVED on a
    significant gain of at least ``min_drop``. NOT_COMPARED when the examples do not pair up.
    """
    _require(0.0 <= min_drop < 1.0, f"min_drop={min_drop!r} must lie in [0, 1), e.g. 0.02 for 2 points.")
    _require(0.0 < min_fraction <= 1.0, f"min_fraction={min_fraction!r} must lie in (0, 1], e.g. 0.99.")
    _require(0.0 < alpha < 1.0, f"alpha={alpha!r} must lie in (0, 1), e.g. 0.05.")
    problem = _pairing_problem(baseline, current)
    if problem is not None:
        return AccuracyComparison(Verdict.NOT_COMPARED, baseline.value, current.value, math.nan, math.nan, 0, 0, 0,
                                  math.nan, min_drop, min_fraction, problem)
    base, cur = _correctness(baseline, "baseline"), _correctness(current, "current")
    lost, gained = int(np.sum(base & ~cur)), int(np.sum(~base & cur))
    base_acc, cur_acc = float(base.mean()), float(cur.mean())
    p_lost, p_gained = _mcnemar(lost, gained), _mcnemar(gained, lost)
    # Counts, not float accuracies, so that 0.90 -> 0.88 on n=100 is exactly a 0.02 drop.
    drop = (lost - gained) / base.size
    if cur_acc < min_fraction * base_acc:
        verdict, p, reason = Verdict.REGRESSED, p_lost, f"below {min_fraction:g} x the baseline accuracy"
    elif p_lost < alpha and drop >= min_drop - 1e-12:
        verdict, p, reason = Verdict.REGRESSED, p_lost, f"significant drop of {drop:.2%} (minimum {min_drop:.2%})"
    elif p_gained < alpha and -drop >= min_drop - 1e-12:
        verdict, p, reason = Verdict.IMPROVED, p_gained, f"significant gain of {-drop:.2%}"
    else:
        verdict, p = Verdict.PASS, min(p_lost, p_gained)
        reason = f"no significant drop of {min_drop:.2%} or more, and above {min_fraction:g} x the baseline"
    low, high = wilson_interval(int(cur.sum()), base.size)
    return AccuracyComparison(verdict, base_acc, cur_acc, low, high, base.size, lost, gained, p, min_drop,
                              min_fraction, reason)

