"""A load test's figure against its reference: per-request bootstrap, widened for a stored baseline.

A load figure is a statistic of one run's requests: a percentile of their end-to-end times, TTFT,
TPOT or inter-token gaps, or the share of them that met every objective (goodput). Its precision is
the run's own, so the comparison resamples both runs' per-request values (a request that failed
counts as infinitely slow) and reads the ratio of the two statistics off the resamples. A tail
percentile has few requests behind it, and the bootstrap shows that by itself: a p99 of 60 requests
rests on its slowest one or two, and its interval is wide.

Under ``--against`` each side's run comes in phases, each on a fresh server process, the two sides'
phases taking turns (see :mod:`modelperf.measure.load`). One server process can be slower than the next
for its whole life, so requests of one process are not independent draws: resampling them cannot see
the spread between processes. There :func:`compare_load_phases` compares the figure of each phase with
the base's phase of the same arrivals and prompts, the phase pair as the unit of variation, exactly as
:func:`modelperf.decide.paired.compare_paired` compares latency over worker-process pairs (a t-test
over the pairs' log ratios, the same verdict rules, the same stated power).

A stored baseline was measured in another session, and a server's speed moves between sessions more
than a process's does (see :mod:`modelperf.decide.spread`); the resamples are widened by the spread of
the difference of two sessions: the figure's own between-session spread from the history once it
holds enough sessions, else a default scaled per percentile (a tail moves more from one session to
the next than a median), as :meth:`modelperf.decide.spread.SpreadTable.for_figure` picks it. Widened,
the comparison also states what it could have seen. Side by side (``--against``) nothing is added.

A max-rate search has no per-request values: its bracket (the highest rate that held, the lowest that
did not) is its precision, and a regression is a rate the baseline held, with the minimum effect to
spare, that now fails.

The verdict rules are latency's (:func:`modelperf.decide.latency.latency_verdict`): significant at
``alpha`` and past :data:`~modelperf.decide.latency.EFFECT_SHARE` of the minimum effect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modelperf.decide.latency import EFFECT_SHARE, detectable_ratio, latency_verdict
from modelperf.decide.spread import SessionSpread
from modelperf.records import Measurement
from modelperf.units import format_value
from modelperf.vocab import LOAD_FIGURES, Verdict

__all__ = ["RESAMPLES", "LoadComparison", "LoadRun", "compare_load", "compare_load_phases", "figure_text"]

RESAMPLES = 4000  # resolves p down to 1/4001, as the latency bootstrap does


@dataclass(frozen=True)
class LoadRun:
    """What a comparison needs of one side's run: the gated figure's per-request values (seconds, or
    1/0 for goodput), how many requests failed, and for a search its bracket."""

    value: float
    samples: tuple[float, ...]
    failed: int = 0
    max_rate: float | None = None
    failed_rate: float | None = None


@dataclass(frozen=True)
class LoadComparison:
    verdict: Verdict
    figure: str
    unit: str
    baseline: float
    current: float
    ratio: float
    ratio_low: float
    ratio_high: float
    p_value: float | None
    min_effect: float
    spread: str  # what the interval was made of, said in the verdict line
    reason: str
    # The smallest slowdown this comparison would have called regressed with 95 % probability at its
    # precision: phase pairs, or a stored comparison widened by a between-session spread. A bootstrap of
    # one process's requests alone cannot say: it does not see how far the next process would differ.
    detectable: float | None = None
    session_spread: float | None = None  # the between-session spread that widened a stored comparison

    def line(self) -> str:
        figures = f"{self.figure} {format_value(self.baseline, self.unit)} -> {format_value(self.current, self.unit)}"
        if not math.isfinite(self.ratio):
            return f"{figures} ({self.spread}): {self.reason}"
        p = "" if self.p_value is None else f", p={self.p_value:.2g}"
        power = "" if self.detectable is None else f", could detect >= x{self.detectable:.3f}"
        return (f"{figures} (x{self.ratio:.3f}, 95% CI {self.ratio_low:.3f}-{self.ratio_high:.3f}{p}{power}; "
                f"spread: {self.spread}): {self.reason}")


def _statistic(figure: str, values: np.ndarray) -> np.ndarray:
    """The figure of each row of ``values`` (resamples x requests)."""
    if figure == "goodput":
        return np.asarray(values.mean(axis=-1))
    q = float(figure.rsplit("_p", 1)[-1])
    with np.errstate(invalid="ignore"):
        found = np.quantile(values, q / 100.0, axis=-1)
    return np.where(np.isnan(found), np.inf, found)  # inf - inf in the interpolation: infinitely slow


def _with_failures(run: LoadRun, figure: str) -> np.ndarray:
    failed = np.zeros(run.failed) if figure == "goodput" else np.full(run.failed, np.inf)
    return np.concatenate([np.asarray(run.samples, dtype=float), failed])


def _worse(log_ratio: np.ndarray, higher: bool) -> np.ndarray:
    """Log 'times worse' (> 0 is worse) from log(current/baseline)."""
    return -log_ratio if higher else log_ratio


def compare_load(baseline: LoadRun, current: LoadRun, *, figure: str, unit: str, min_effect: float = 0.10,
                 direction: str = "lower", alpha: float = 0.01, session_spread: SessionSpread | float = 0.0,
                 side_by_side: bool = False, seed: int = 0) -> LoadComparison:
    """Compare the gated ``figure`` of two load runs (see the module's docstring); ``session_spread``
    is the figure's between-session sd (log scale), already chosen for it, used unless ``side_by_side``."""
    if figure not in LOAD_FIGURES:
        raise ValueError(f"figure={figure!r} is not a load figure; use one of {', '.join(LOAD_FIGURES)}.")
    higher = direction == "higher"
    if figure == "max_rate":
        return _compare_rates(baseline, current, unit, min_effect)
    base, change = _with_failures(baseline, figure), _with_failures(current, figure)
    if base.size < 2 or change.size < 2:
        return _undecided(baseline, current, figure, unit, min_effect, "fewer than 2 requests on a side: not compared")
    between = session_spread if isinstance(session_spread, SessionSpread) else SessionSpread(session_spread)
    spread_sd = 0.0 if side_by_side else between.value
    rng = np.random.default_rng(seed)
    boot_base = _statistic(figure, base[rng.integers(0, base.size, (RESAMPLES, base.size))])
    boot_change = _statistic(figure, change[rng.integers(0, change.size, (RESAMPLES, change.size))])
    base_figure, change_figure = float(_statistic(figure, base)), float(_statistic(figure, change))
    with np.errstate(divide="ignore", invalid="ignore"):
        point = float(np.float64(change_figure) / np.float64(base_figure))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(boot_change) - np.log(boot_base)
    log_ratio = np.where(np.isnan(log_ratio), 0.0, log_ratio)  # both infinitely slow (or both zero): alike
    if spread_sd:
        # Two sessions, each its own draw around the machine's typical figure: the difference's sd is sqrt(2) x.
        log_ratio = log_ratio + rng.normal(0.0, math.sqrt(2.0) * spread_sd, log_ratio.size)
    worse = _worse(log_ratio, higher)
    p_worse = (np.count_nonzero(worse <= 0) + 1) / (worse.size + 1)
    p_better = (np.count_nonzero(worse >= 0) + 1) / (worse.size + 1)
    finite = np.exp(log_ratio[np.isfinite(log_ratio)])
    low, high = (float(x) for x in np.quantile(finite, [0.025, 0.975])) if finite.size else (math.nan, math.nan)
    if math.isnan(point):  # both infinitely slow, or both without a success: no change to see
        point_worse = 1.0
    else:
        point_worse = (math.inf if point == 0 else 1 / point) if higher else point
    verdict, reason, p = latency_verdict(point_worse, float(p_worse), float(p_better), min_effect, alpha)
    if higher:
        reason = reason.replace("slower", "lower").replace("faster", "higher")
    what = "success" if figure == "goodput" else "per-request values"
    source = f", {between.source}" if between.source else ""
    if side_by_side:
        how = ", side by side"
    elif spread_sd:
        how = f", widened by {spread_sd * 100:.3g} % between sessions{source}"
    else:
        how = f", not widened between sessions{source}"
    spread = f"bootstrap over {base.size}+{change.size} requests' {what}{how}"
    # Widened, the resamples hold both sessions' spread, so their sd is the comparison's precision.
    finite_log = log_ratio[np.isfinite(log_ratio)]
    log_se = float(np.std(finite_log)) if spread_sd and finite_log.size > 1 else math.nan
    return LoadComparison(verdict, figure, unit, baseline.value, current.value, point, low, high, p, min_effect,
                          spread, reason, detectable_ratio(log_se, None, min_effect, alpha),
                          spread_sd if spread_sd else None)


def compare_load_phases(base: Sequence[float], change: Sequence[float], *, figure: str, unit: str,
                        baseline: float, current: float, min_effect: float = 0.10, direction: str = "lower",
                        alpha: float = 0.01) -> LoadComparison:
    """The gated figure phase by phase (``base[k]`` and ``change[k]`` sent the same arrivals and prompts,
    each on its own fresh server): a t-test over the phase pairs' log ratios, as latency's process pairs.
    ``baseline`` and ``current`` are the pooled figures the line shows."""
    from modelperf.decide.paired import compare_paired
    from modelperf.records import RunFigure

    found = compare_paired([RunFigure(k, v, None, 1) for k, v in enumerate(base)],
                           [RunFigure(k, v, None, 1) for k, v in enumerate(change)], min_effect=min_effect,
                           statistic=figure, direction=direction, alpha=alpha, unit=unit, pairs_of="phase pairs",
                           more_pairs="give the load marker more phases=")
    spread = f"{min(len(base), len(change))} phase pairs, each phase on its own server process"
    reason = found.reason
    if direction == "higher":
        reason = reason.replace("slower", "lower").replace("faster", "higher")
    detectable = found.detectable if math.isfinite(found.ratio) else None
    return LoadComparison(found.verdict, figure, unit, baseline, current, found.ratio, found.ratio_low,
                          found.ratio_high, None if math.isnan(found.p_value) else found.p_value, min_effect, spread,
                          reason, detectable)


def _compare_rates(baseline: LoadRun, current: LoadRun, unit: str, min_effect: float) -> LoadComparison:
    """Max rates by their brackets: a regression is a failure at a rate the baseline held with the margin."""
    spread = "the two searches' brackets (held / failed rates)"
    if baseline.max_rate is None or current.max_rate is None:
        reason = "a search found no rate that held its objectives: not compared"
        return _undecided(baseline, current, "max_rate", unit, min_effect, reason, spread)
    threshold = 1.0 + min_effect * EFFECT_SHARE
    ratio = current.max_rate / baseline.max_rate
    low = current.max_rate / baseline.failed_rate if baseline.failed_rate else ratio
    high = current.failed_rate / baseline.max_rate if current.failed_rate else math.inf
    margin = f"{(threshold - 1) * 100:.3g} % under the rate the baseline held"
    if current.failed_rate is not None and current.failed_rate * threshold <= baseline.max_rate:
        verdict, reason = Verdict.REGRESSED, f"fails at {current.failed_rate:.3g}/s, more than {margin}"
    elif baseline.failed_rate is not None and current.max_rate >= baseline.failed_rate * threshold:
        verdict, reason = Verdict.IMPROVED, f"holds {current.max_rate:.3g}/s, past the rate the baseline failed at"
    else:
        verdict, reason = Verdict.PASS, f"the brackets overlap within the {min_effect * 100:.3g} % minimum effect"
    return LoadComparison(verdict, "max_rate", unit, baseline.value, current.value, ratio, low, high, None,
                          min_effect, spread, reason)


def _undecided(baseline: LoadRun, current: LoadRun, figure: str, unit: str, min_effect: float, reason: str,
               spread: str = "none") -> LoadComparison:
    return LoadComparison(Verdict.INCONCLUSIVE, figure, unit, baseline.value, current.value, math.nan, math.nan,
                          math.nan, None, min_effect, spread, reason)


def figure_text(measurement: Measurement) -> str:
    """A load figure in words: ``e2e_p50 1.23 s over 20 requests (Poisson 1/s (seed 0), 0 failed)``."""
    detail = measurement.load
    value = format_value(measurement.value, measurement.unit)
    if detail is None:
        return f"{measurement.metric} {value}"
    if measurement.metric == "max_rate":
        above = f", failed at {detail.failed_rate:.3g}/s" if detail.failed_rate is not None else ""
        return f"max rate {value} held its objectives ({detail.trials} runs{above})"
    return (f"{measurement.metric} {value} over {detail.sent} requests ({detail.pattern}, {detail.failed} failed, "
            f"{detail.requests_per_s:.3g} req/s)")
