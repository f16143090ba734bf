"""Pure decisions on numbers: drift correction, significance, effect sizes and verdicts.

Nothing here measures, stores or knows pytest. Every function takes plain figures (or
:class:`~modelperf.records.Measurement` records) and returns a frozen result whose ``line()`` is one
readable sentence for the terminal.

Latency rule (:func:`compare_latency`): each side's samples are divided by that side's control
median, so a machine that got uniformly faster or slower cancels out. A result is REGRESSED only
when it is significant (one-sided Mann-Whitney U, ``p < alpha``), the bootstrap CI of the ratio lies
wholly above 1, and the point ratio reaches :data:`EFFECT_SHARE` of the minimum effect. Only a
share of it: a true slowdown of exactly ``min_effect`` then sits inside the alarm region instead of
on its edge (where it would be caught half the time), while identical samples give a ratio of 1
and never alarm. ``benchmarks/gate_simulation.py`` shows the resulting rates.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np
from scipy import stats

from modelperf.records import Measurement

__all__ = [
    "EFFECT_SHARE",
    "MAX_DRIFT",
    "SCREEN_SHARE",
    "STATISTICS",
    "AccuracyComparison",
    "LatencyComparison",
    "MemoryComparison",
    "PerplexityComparison",
    "Verdict",
    "compare_accuracy",
    "compare_latency",
    "compare_memory",
    "compare_perplexity",
    "confirm",
    "format_bytes",
    "format_seconds",
    "should_confirm",
    "wilson_interval",
]

# Share of min_effect the point ratio must reach. With FA <= 1 % (z 2.33) and detection >= 95 %
# (z 1.645) wanted, the best cut is 2.33 / (2.33 + 1.645) = 0.59 of the effect: rounded to 0.6.
EFFECT_SHARE = 0.6
# A first run worse by this share of min_effect is re-measured before its verdict is final.
SCREEN_SHARE = 0.3
STATISTICS = ("median", "mean")
DIRECTIONS = ("lower", "higher")
# Beyond this much machine drift (either way) the control no longer tracks the models closely enough
# to correct them, so a verdict would be a guess: say so instead. Measured with
# benchmarks/gate_benchmark.py on a 2-core VM: quiet sessions drifted x0.99-x1.04; with a busy
# neighbour the drift was x1.17 and the drift-corrected ratio still moved by ~10 % (20 % false alarms).
MAX_DRIFT = 1.10
# Fixed seed: the same figures must always give the same verdict (and the same CI in reports).
_BOOTSTRAP_SEED = 20240601
# 2000 resamples keep a CI bound stable to ~0.2 % at a few ms per comparison.
_BOOTSTRAP_RESAMPLES = 2000
Array = np.ndarray[Any, Any]


class Verdict(str, Enum):
    """Outcome of one comparison."""

    PASS = "pass"
    REGRESSED = "regressed"
    IMPROVED = "improved"
    INCONCLUSIVE = "inconclusive"
    NOT_COMPARED = "not_compared"


def format_seconds(seconds: float) -> str:
    """``0.01231`` -> ``"12.31 ms"``: four significant digits in the largest unit below the value."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def format_bytes(size: float) -> str:
    """``1572864`` -> ``"1.5 MiB"``: binary units as memray prints them."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024.0:
            return f"{value:.4g} {unit}"
        value /= 1024.0
    return f"{value:.4g} TiB"


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


# ------------------------------------------------------------------------------------------ latency


@dataclass(frozen=True)
class LatencyComparison:
    """A drift-corrected latency (or throughput) comparison.

    ``baseline_median``/``current_median`` are raw. ``ratio`` is current/baseline of ``statistic``
    after dividing each side by its control median (multiplying, for ``direction="higher"`` rates),
    with its 95 % bootstrap CI. ``p_value`` is the one-sided Mann-Whitney U p-value of the side the
    ratio leans to (worse, unless the figure got better).
    """

    verdict: Verdict
    baseline_median: float
    current_median: float
    drift: float
    ratio: float
    ratio_low: float
    ratio_high: float
    p_value: float
    min_effect: float
    statistic: str
    direction: str = "lower"
    unit: str = "s"
    alpha: float = 0.001
    reason: str = ""
    confirmed: bool = False

    def line(self) -> str:
        def show(value: float) -> str:
            return format_seconds(value) if self.unit == "s" else f"{value:.4g} {self.unit}"

        figures = f"median {show(self.baseline_median)} -> {show(self.current_median)}"
        if not math.isfinite(self.ratio):
            return f"{figures}: {self.reason}"
        name = "" if self.statistic == "median" else f"{self.statistic} "
        return (f"{figures} (drift-corrected {name}x{self.ratio:.3f}, 95% CI {self.ratio_low:.3f}-"
                f"{self.ratio_high:.3f}, p={self.p_value:.2g}, machine drift x{self.drift:.2f}): {self.reason}")


def _positive_array(values: tuple[float, ...], what: str, test_id: str) -> Array:
    array = np.asarray(values, dtype=float)
    _require(bool(np.all(np.isfinite(array)) and np.all(array > 0)),
             f"{what} of {test_id!r} hold a value that is not a positive finite number; "
             "re-measure or delete that baseline entry.")
    return array


def _bootstrap_ratio(cur: Array, base: Array, controls: tuple[Array, Array] | None, reduce: Any,
                     sign: int) -> tuple[float, float]:
    """95 % percentile-bootstrap CI of the corrected ratio from RAW samples, resampling the controls.

    Resampling the controls carries their own noise into the interval (the Mann-Whitney test on
    normalised samples cannot see it). ``sign`` is -1 where rates are multiplied by the control.
    """
    if controls is not None and min(controls[0].size, controls[1].size) < 2:
        # A one-round control cannot be resampled: correct by its value as a constant instead.
        low, high = _bootstrap_ratio(cur, base, None, reduce, sign)
        scale = float(np.median(controls[0]) / np.median(controls[1])) ** -sign
        return low * scale, high * scale
    data = (cur, base) if controls is None else (cur, base, *controls)

    def statistic(*arrays: Array, axis: int = -1) -> Any:
        ratio = reduce(arrays[0], axis=axis) / reduce(arrays[1], axis=axis)
        if len(arrays) == 4:
            ratio = ratio * (np.median(arrays[2], axis=axis) / np.median(arrays[3], axis=axis)) ** float(-sign)
        return ratio

    result = stats.bootstrap(data, statistic, vectorized=True, method="percentile",
                             n_resamples=_BOOTSTRAP_RESAMPLES, rng=np.random.default_rng(_BOOTSTRAP_SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _latency_verdict(worse: float, worse_low: float, worse_high: float, p_worse: float, p_better: float,
                     min_effect: float, alpha: float) -> tuple[Verdict, str, float]:
    """Verdict, reason and reported p, from the ratio expressed as 'times worse' (> 1 is worse)."""
    threshold = 1.0 + min_effect * EFFECT_SHARE
    line = f"the alarm line x{threshold:.3f} of the {min_effect * 100:.3g} % minimum effect"
    if p_worse < alpha and worse_low > 1.0 and worse >= threshold:
        return Verdict.REGRESSED, f"slower, past {line}", p_worse
    if p_better < alpha and worse_high < 1.0 and worse <= 1.0 / threshold:
        return Verdict.IMPROVED, f"faster, past {line}", p_better
    p = p_worse if worse >= 1.0 else p_better
    if p < alpha and (worse_low > 1.0 or worse_high < 1.0):
        return Verdict.PASS, f"significantly {'slower' if worse >= 1.0 else 'faster'}, but within {line}", p
    return Verdict.PASS, f"no significant change ({line})", p


def compare_latency(
    baseline: Measurement,
    current: Measurement,
    *,
    min_effect: float = 0.10,
    statistic: str = "median",
    direction: str = "lower",
    alpha: float = 0.001,
) -> LatencyComparison:
    """Compare two latency measurements after correcting both for machine drift.

    ``direction="lower"`` for seconds (lower is better), ``"higher"`` for rates such as tokens/s.
    Each side's samples are divided (rates: multiplied) by that side's control median; when either
    side has no control, neither is corrected and ``drift`` is 1.0. INCONCLUSIVE when the sample
    counts are too small for even fully separated samples to reach ``p < alpha``.
    """
    _require(statistic in STATISTICS, f"statistic={statistic!r} is unknown; use one of {', '.join(STATISTICS)}.")
    _require(direction in DIRECTIONS,
             f"direction={direction!r} is unknown; use 'lower' (seconds) or 'higher' (e.g. tokens/s).")
    _require(0.0 < min_effect < 10.0, f"min_effect={min_effect!r} must lie in (0, 10), e.g. 0.10 for 10 %.")
    _require(0.0 < alpha < 1.0, f"alpha={alpha!r} must lie in (0, 1), e.g. 0.001.")
    base = _positive_array(baseline.samples, "baseline samples", baseline.test_id)
    cur = _positive_array(current.samples, "current samples", current.test_id)
    base_ctl = _positive_array(baseline.control, "baseline control samples", baseline.test_id)
    cur_ctl = _positive_array(current.control, "current control samples", current.test_id)
    common: dict[str, Any] = {
        "baseline_median": float(np.median(base)) if base.size else math.nan,
        "current_median": float(np.median(cur)) if cur.size else math.nan,
        "min_effect": min_effect, "statistic": statistic, "direction": direction, "unit": current.unit,
        "alpha": alpha,
    }
    # 1 / C(n1 + n2, n1) is the smallest one-sided exact Mann-Whitney p: every sample above every other.
    if min(base.size, cur.size) < 2 or 1.0 / math.comb(base.size + cur.size, base.size) >= alpha:
        reason = (f"too few samples ({base.size} baseline, {cur.size} current) to reach p<{alpha:g}; "
                  "raise the number of rounds")
        drift = float(np.median(cur_ctl) / np.median(base_ctl)) if base_ctl.size and cur_ctl.size else 1.0
        return LatencyComparison(Verdict.INCONCLUSIVE, drift=drift, ratio=math.nan, ratio_low=math.nan,
                                 ratio_high=math.nan, p_value=math.nan, reason=reason, **common)
    controls = (cur_ctl, base_ctl) if base_ctl.size and cur_ctl.size else None
    return _compare_corrected(cur, base, controls, common)


def _compare_corrected(cur: Array, base: Array, controls: tuple[Array, Array] | None,
                       common: dict[str, Any]) -> LatencyComparison:
    sign = 1 if common["direction"] == "lower" else -1
    reduce = np.median if common["statistic"] == "median" else np.mean
    low, high = _bootstrap_ratio(cur, base, controls, reduce, sign)
    drift = 1.0
    if controls is not None:
        drift = float(np.median(controls[0]) / np.median(controls[1]))
        cur, base = cur * float(np.median(controls[0])) ** -sign, base * float(np.median(controls[1])) ** -sign
    ratio = float(reduce(cur) / reduce(base))
    p_up = float(stats.mannwhitneyu(cur, base, alternative="greater").pvalue)
    p_down = float(stats.mannwhitneyu(cur, base, alternative="less").pvalue)
    # Worse means larger for seconds and smaller for rates; express both as "times worse".
    if sign == 1:
        judged = _latency_verdict(ratio, low, high, p_up, p_down, common["min_effect"], common["alpha"])
    else:
        judged = _latency_verdict(1 / ratio, 1 / high, 1 / low, p_down, p_up, common["min_effect"], common["alpha"])
    verdict, reason, p = judged
    if max(drift, 1 / drift) > MAX_DRIFT and verdict in (Verdict.REGRESSED, Verdict.IMPROVED):
        verdict = Verdict.INCONCLUSIVE
        reason = (f"the control workload ran x{drift:.2f} against the baseline's session, beyond the x{MAX_DRIFT:g} "
                  "that drift correction is trusted for: the machine is too busy (or too different) to judge; "
                  "rerun on a quieter machine")
    return LatencyComparison(verdict, drift=drift, ratio=ratio, ratio_low=low, ratio_high=high, p_value=p,
                             reason=reason, **common)


def should_confirm(comparison: LatencyComparison) -> bool:
    """True when a result looks regressed, or worse by SCREEN_SHARE of the minimum effect: re-measure.

    The screen is lower than the verdict's bar on purpose: a true slowdown of the minimum effect
    whose first estimate fell short by noise gets a second look with twice the data.
    """
    if comparison.confirmed or not math.isfinite(comparison.ratio):
        return False
    worse = comparison.ratio if comparison.direction == "lower" else 1 / comparison.ratio
    screened = comparison.verdict is Verdict.PASS and worse >= 1 + SCREEN_SHARE * comparison.min_effect
    return comparison.verdict is Verdict.REGRESSED or screened


def confirm(first: LatencyComparison, pooled: LatencyComparison) -> LatencyComparison:
    """The final verdict of a screened comparison, decided on the first run pooled with a re-measurement.

    Returns ``first`` unchanged when it did not need confirming, else ``pooled`` (the comparison of
    the first run's and the re-measurement's samples together): marked ``confirmed`` when it
    regressed, or with its own verdict when it did not.
    """
    if not should_confirm(first):
        return first
    if pooled.verdict is Verdict.REGRESSED:
        return replace(pooled, confirmed=True, reason=f"{pooled.reason} (confirmed by a re-measurement)")
    return replace(pooled, confirmed=True,
                   reason=f"{pooled.reason} (a first run looked worse; with a re-measurement it did not)")


# ----------------------------------------------------------------------------------------- accuracy


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
    ids = (baseline.extra.get("example_ids"), current.extra.get("example_ids"))
    if ids[0] is not None and ids[1] is not None and list(ids[0]) != list(ids[1]):
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


# -------------------------------------------------------------------------------- memory, perplexity


@dataclass(frozen=True)
class MemoryComparison:
    """A peak-memory figure against a baseline (relative tolerance) and/or an absolute limit."""

    verdict: Verdict
    figure: str
    current_bytes: float
    baseline_bytes: float | None
    rel: float | None
    limit_bytes: float | None
    reason: str = ""

    def line(self) -> str:
        return f"{self.figure} {format_bytes(self.current_bytes)}: {self.reason}"


def _tolerance_verdict(baseline: float, current: float, rel: float) -> Verdict:
    """Deterministic figures (higher is worse): outside ``baseline * (1 +- rel)`` is a change."""
    if current > baseline * (1.0 + rel):
        return Verdict.REGRESSED
    return Verdict.IMPROVED if current < baseline * (1.0 - rel) else Verdict.PASS


def _check_nonnegative(name: str, value: float | None, what: str) -> None:
    _require(value is None or (math.isfinite(value) and value >= 0), f"{name}={value!r} must be {what} >= 0.")


def compare_memory(
    baseline_bytes: float | None,
    current_bytes: float,
    *,
    rel: float | None = 0.10,
    limit_bytes: float | None = None,
    figure: str = "memray peak",
) -> MemoryComparison:
    """Fail when ``current_bytes`` exceeds ``limit_bytes`` or ``baseline_bytes * (1 + rel)``.

    Peaks are deterministic enough that no statistics are needed: a fixed tolerance over the
    baseline and a hard limit. ``rel=None`` disables the baseline check. IMPROVED when the peak fell
    below ``baseline_bytes * (1 - rel)``; NOT_COMPARED with neither baseline nor limit.
    """
    for name, value in (("baseline_bytes", baseline_bytes), ("current_bytes", current_bytes),
                        ("limit_bytes", limit_bytes)):
        _check_nonnegative(name, value, "a finite number of bytes")
    _check_nonnegative("rel", rel, "None or a finite fraction (0.10 for 10 %)")
    made = functools.partial(MemoryComparison, figure=figure, current_bytes=current_bytes,
                             baseline_bytes=baseline_bytes, rel=rel, limit_bytes=limit_bytes)
    limit = "" if limit_bytes is None else f"the limit of {format_bytes(limit_bytes)}"
    if limit_bytes is not None and current_bytes > limit_bytes:
        return made(Verdict.REGRESSED, reason=f"over {limit}")
    if baseline_bytes is None or rel is None:
        if limit_bytes is None:
            return made(Verdict.NOT_COMPARED, reason="no baseline and no limit to compare with")
        return made(Verdict.PASS, reason=f"within {limit}")
    verdict = _tolerance_verdict(baseline_bytes, current_bytes, rel)
    versus = f"the baseline {format_bytes(baseline_bytes)} + {rel:.0%} = {format_bytes(baseline_bytes * (1 + rel))}"
    if verdict is Verdict.REGRESSED:
        return made(verdict, reason=f"above {versus}")
    if verdict is Verdict.IMPROVED:
        return made(verdict, reason=f"more than {rel:.0%} below the baseline {format_bytes(baseline_bytes)}")
    return made(verdict, reason=f"within {versus}" + (f" and {limit}" if limit else ""))


@dataclass(frozen=True)
class PerplexityComparison:
    """A perplexity (lower is better) against its baseline with a relative tolerance."""

    verdict: Verdict
    baseline: float
    current: float
    rel: float
    reason: str = ""

    def line(self) -> str:
        return f"perplexity {self.baseline:.4g} -> {self.current:.4g}: {self.reason}"


def compare_perplexity(baseline: float, current: float, *, rel: float = 0.01) -> PerplexityComparison:
    """Perplexity is deterministic for fixed weights and build, so a plain tolerance decides.

    1 % by default: thread-order float noise stays far below it, a coarser quantisation far above.
    """
    for name, value in (("baseline", baseline), ("current", current), ("rel", rel)):
        _check_nonnegative(name, value, "a finite number")
    verdict = _tolerance_verdict(baseline, current, rel)
    reason = {Verdict.REGRESSED: f"more than {rel:.0%} above the baseline",
              Verdict.IMPROVED: f"more than {rel:.0%} below the baseline"}.get(verdict, f"within {rel:.0%}")
    return PerplexityComparison(verdict, baseline, current, rel, reason)
