"""Pure decisions on numbers: drift correction, significance, effect sizes and verdicts.

Nothing here measures, stores or knows pytest. Every function takes plain figures (or
:class:`~modelperf.records.Measurement` records) and returns a frozen result whose ``line()`` is one
readable sentence for the terminal.

Latency rule (:func:`compare_latency`): each side's samples are divided by that side's control
floor (the control rounds' lower decile), so a machine that got uniformly faster or slower cancels
out. The figure compared is, by default, the lower decile (``p10``) of the rounds: on a shared
machine interference only ever adds time, so the fast rounds are the ones that show the code's own
cost, while a median moves with whatever else ran: in A/A comparisons the median's drift-corrected
ratio spread more than twice as far as p10's (docs/concepts/design-measurements.md#lower-decile).

A result is REGRESSED only when it is significant (the one-sided bootstrap p of the ratio,
resampling both sides' rounds and controls, is below ``alpha``) and the point ratio reaches
:data:`EFFECT_SHARE` of the minimum effect. Only a share of it: a true slowdown of exactly
``min_effect`` then sits inside the alarm region instead of on its edge (where it would be caught
half the time), while identical samples give a ratio of 1 and never alarm.

A stored baseline is one process's figure, and so is the current run. A model's speed differs from
one process to the next (where its weights land in memory, what the neighbours run that hour), and
no resampling of rounds inside one process can see that: ``session_spread`` (the sd, on a log scale,
of one session's drift-corrected figure around the machine's typical figure) widens the bootstrap by
the spread of the difference of two such sessions. Without the term, a session-to-session swing
larger than a session's own interval reads as a change (docs/concepts/design-measurements.md#session-spread).
``benchmarks/gate_benchmark.py`` measures the resulting rates on the real machine.
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
from modelperf.units import format_size, format_value

__all__ = [
    "CONTROL_QUANTILE",
    "EFFECT_SHARE",
    "MAX_DRIFT",
    "MAX_PASSES",
    "MIN_SAMPLES",
    "SCREEN_SHARE",
    "SMALLEST_ALPHA",
    "STATISTICS",
    "AccuracyComparison",
    "LatencyComparison",
    "MemoryComparison",
    "PerplexityComparison",
    "SessionSpread",
    "Verdict",
    "another_pass",
    "compare_accuracy",
    "compare_latency",
    "compare_memory",
    "compare_perplexity",
    "confirm",
    "control_floor",
    "corrected_log_figure",
    "latency_verdict",
    "pooled_spread",
    "reducer",
    "should_confirm",
    "undecided",
    "wilson_interval",
]

# Share of min_effect the point ratio must reach. With FA <= 1 % (z 2.33) and detection >= 95 %
# (z 1.645) wanted, the best cut is 2.33 / (2.33 + 1.645) = 0.59 of the effect: rounded to 0.6.
EFFECT_SHARE = 0.6
# A first run worse by this share of min_effect is re-measured before its verdict is final.
SCREEN_SHARE = 0.3
# --against measures a test that still leans worse after its re-measurement, with a 95 % interval
# that reaches the alarm line, in further passes, up to this many in all: with 2, the noisiest test
# (Llama decode) missed a third of 5 % slowdowns, and 4 catch nearly all at little cost where nothing
# changed (docs/concepts/design-measurements.md#against-passes).
MAX_PASSES = 4
# p10 first: the default. Lower deciles ignore interference, which only ever adds time. p90 and p99
# are what serving teams set targets on (tail latency of tokens or requests); they follow interference,
# so gate on them with more rounds and a larger min_effect.
STATISTICS = ("p10", "median", "mean", "p90", "p99")
_QUANTILES = {"p10": 0.10, "p90": 0.90, "p99": 0.99}
DIRECTIONS = ("lower", "higher")
# The control's figure is always its lower decile: the machine's speed when nothing else interferes.
CONTROL_QUANTILE = 0.10
# Beyond this much machine drift (either way) the control no longer tracks the models closely enough
# to correct them, so a verdict would be a guess: say so instead. The corrected ratio's A/A error
# grows several-fold beyond x1.10 of drift (docs/concepts/design-measurements.md#drift-limit).
MAX_DRIFT = 1.15
# Fewer rounds a side than this give a lower decile of one or two rounds: too few to judge.
MIN_SAMPLES = 10
# Fixed seed: the same figures must always give the same verdict (and the same CI in reports).
_BOOTSTRAP_SEED = 20240601
# 4000 resamples: a bootstrap p resolves down to 1/4001 = 0.00025, and a CI bound is stable to
# ~0.2 %, at a few ms per comparison.
_BOOTSTRAP_RESAMPLES = 4000
SMALLEST_ALPHA = 1.0 / (_BOOTSTRAP_RESAMPLES + 1)
Array = np.ndarray[Any, Any]


class Verdict(str, Enum):
    """Outcome of one comparison."""

    PASS = "pass"
    REGRESSED = "regressed"
    IMPROVED = "improved"
    INCONCLUSIVE = "inconclusive"
    NOT_COMPARED = "not_compared"


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


# ------------------------------------------------------------------------------------------ latency


@dataclass(frozen=True)
class LatencyComparison:
    """A drift-corrected latency (or throughput) comparison.

    ``baseline_median``/``current_median`` are raw medians, for people. ``ratio`` is current/baseline
    of ``statistic`` after dividing each side by its control floor (multiplying, for
    ``direction="higher"`` rates), with its 95 % bootstrap CI. ``p_value`` is the one-sided
    bootstrap p of the side the ratio leans to (worse, unless the figure got better). ``drift`` is
    this run's control floor over the baseline's: above 1 the machine is slower now.
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
    alpha: float = 0.01
    reason: str = ""
    confirmed: bool = False
    session_spread: float = 0.0
    # False for --against's paired runs: judged on raw figures measured side by side, ``drift``
    # only reported (modelperf.ab.paired says why).
    corrected: bool = True

    def line(self) -> str:
        def show(value: float) -> str:
            return format_value(value, self.unit)

        figures = f"median {show(self.baseline_median)} -> {show(self.current_median)}"
        if not math.isfinite(self.ratio):
            return f"{figures}: {self.reason}"
        spread = f" with {self.session_spread * 100:.3g} % between sessions" if self.session_spread else ""
        how, drift = ("drift-corrected", "machine drift") if self.corrected else ("side-by-side", "control")
        return (f"{figures} ({how} {self.statistic} x{self.ratio:.3f}, 95% CI {self.ratio_low:.3f}-"
                f"{self.ratio_high:.3f}{spread}, p={self.p_value:.2g}, {drift} x{self.drift:.2f}): {self.reason}")

    @property
    def drift_beyond_limit(self) -> bool:
        """The control moved too far for a corrected verdict to stand. Never for side-by-side runs,
        whose control is only reported (a quieter re-measurement would not change what they judge)."""
        return self.corrected and math.isfinite(self.drift) and max(self.drift, 1 / self.drift) > MAX_DRIFT

    @property
    def times_worse(self) -> tuple[float, float]:
        """The ratio and the worse end of its 95 % interval, as "times worse" (> 1 is worse) for either direction."""
        if self.direction == "lower":
            return self.ratio, self.ratio_high
        return 1 / self.ratio, 1 / self.ratio_low


def _positive_array(values: tuple[float, ...], what: str, test_id: str) -> Array:
    array = np.asarray(values, dtype=float)
    _require(bool(np.all(np.isfinite(array)) and np.all(array > 0)),
             f"{what} of {test_id!r} hold a value that is not a positive finite number; "
             "re-measure or delete that baseline entry.")
    return array


def reducer(statistic: str) -> Any:
    """The numpy function (``f(array, axis=...)``) that computes ``statistic`` over rounds."""
    if statistic in _QUANTILES:
        return functools.partial(np.quantile, q=_QUANTILES[statistic])
    return np.median if statistic == "median" else np.mean


def control_floor(control: Any, axis: int = -1) -> Any:
    """The control rounds' lower decile: how fast the machine runs the control when undisturbed."""
    return np.quantile(control, CONTROL_QUANTILE, axis=axis)


def _bootstrap_ratios(cur: Array, base: Array, controls: tuple[Array, Array] | None, reduce: Any,
                      sign: int, session_spread: float = 0.0) -> Array:
    """Bootstrap distribution of the corrected ratio, resampling each side's rounds AND controls.

    Resampling the controls carries their own noise into the interval and the p-value. ``sign`` is
    -1 where rates are multiplied by the control. ``session_spread`` > 0 multiplies each resample by
    a log-normal draw for the two sessions' own offsets (sd ``sqrt(2) * session_spread``).
    """
    rng = np.random.default_rng(_BOOTSTRAP_SEED)

    def resampled(values: Array) -> Array:
        return values[rng.integers(0, values.size, size=(_BOOTSTRAP_RESAMPLES, values.size))]

    ratios = reduce(resampled(cur), axis=-1) / reduce(resampled(base), axis=-1)
    if controls is not None:
        drifts = control_floor(resampled(controls[0])) / control_floor(resampled(controls[1]))
        ratios = ratios * drifts ** float(-sign)
    if session_spread > 0:
        ratios = ratios * np.exp(rng.normal(0.0, math.sqrt(2.0) * session_spread, size=_BOOTSTRAP_RESAMPLES))
    return np.asarray(ratios, dtype=float)


def latency_verdict(worse: float, p_worse: float, p_better: float, min_effect: float,
                     alpha: float) -> tuple[Verdict, str, float]:
    """Verdict, reason and reported p, from the ratio expressed as 'times worse' (> 1 is worse)."""
    threshold = 1.0 + min_effect * EFFECT_SHARE
    line = f"the alarm line x{threshold:.3f} of the {min_effect * 100:.3g} % minimum effect"
    if p_worse < alpha and worse >= threshold:
        return Verdict.REGRESSED, f"slower, past {line}", p_worse
    if p_better < alpha and worse <= 1.0 / threshold:
        return Verdict.IMPROVED, f"faster, past {line}", p_better
    p = p_worse if worse >= 1.0 else p_better
    if p < alpha:
        return Verdict.PASS, f"significantly {'slower' if worse >= 1.0 else 'faster'}, but within {line}", p
    return Verdict.PASS, f"no significant change ({line})", p


def compare_latency(
    baseline: Measurement,
    current: Measurement,
    *,
    min_effect: float = 0.10,
    statistic: str = "p10",
    direction: str = "lower",
    alpha: float = 0.01,
    session_spread: float = 0.0,
) -> LatencyComparison:
    """Compare two latency measurements after correcting both for machine drift.

    ``direction="lower"`` for seconds (lower is better), ``"higher"`` for rates such as tokens/s.
    Each side's samples are divided (rates: multiplied) by that side's control floor; when either
    side has no control, neither is corrected and ``drift`` is 1.0. INCONCLUSIVE when a side has
    fewer than :data:`MIN_SAMPLES` rounds, or when a regression or improvement comes with more
    machine drift than :data:`MAX_DRIFT`. ``session_spread`` is the between-session sd of the
    corrected figure (see the module's docstring); 0 trusts the two sessions to be alike.
    """
    _require(statistic in STATISTICS, f"statistic={statistic!r} is unknown; use one of {', '.join(STATISTICS)}.")
    _require(direction in DIRECTIONS,
             f"direction={direction!r} is unknown; use 'lower' (seconds) or 'higher' (e.g. tokens/s).")
    _require(0.0 < min_effect < 10.0, f"min_effect={min_effect!r} must lie in (0, 10), e.g. 0.10 for 10 %.")
    _require(SMALLEST_ALPHA < alpha < 1.0,
             f"alpha={alpha!r} must lie in ({SMALLEST_ALPHA:.2g}, 1), the bootstrap's resolution; e.g. 0.01.")
    _require(0.0 <= session_spread < 1.0,
             f"session_spread={session_spread!r} must lie in [0, 1), e.g. 0.03 for 3 % between sessions.")
    base = _positive_array(baseline.samples, "baseline samples", baseline.test_id)
    cur = _positive_array(current.samples, "current samples", current.test_id)
    base_ctl = _positive_array(baseline.control, "baseline control samples", baseline.test_id)
    cur_ctl = _positive_array(current.control, "current control samples", current.test_id)
    controls = (cur_ctl, base_ctl) if base_ctl.size and cur_ctl.size else None
    drift = float(control_floor(cur_ctl) / control_floor(base_ctl)) if controls is not None else 1.0
    common: dict[str, Any] = {
        "baseline_median": float(np.median(base)) if base.size else math.nan,
        "current_median": float(np.median(cur)) if cur.size else math.nan,
        "min_effect": min_effect, "statistic": statistic, "direction": direction, "unit": current.unit,
        "alpha": alpha, "drift": drift, "session_spread": session_spread,
    }
    if min(base.size, cur.size) < MIN_SAMPLES:
        reason = (f"too few rounds ({base.size} baseline, {cur.size} current; at least {MIN_SAMPLES} a side) "
                  "to judge; raise the number of rounds")
        return LatencyComparison(Verdict.INCONCLUSIVE, ratio=math.nan, ratio_low=math.nan, ratio_high=math.nan,
                                 p_value=math.nan, reason=reason, **common)
    return _compare_corrected(cur, base, controls, common)


def _compare_corrected(cur: Array, base: Array, controls: tuple[Array, Array] | None,
                       common: dict[str, Any]) -> LatencyComparison:
    sign = 1 if common["direction"] == "lower" else -1
    reduce = reducer(common["statistic"])
    ratio = float(reduce(cur) / reduce(base)) * common["drift"] ** -sign
    ratios = _bootstrap_ratios(cur, base, controls, reduce, sign, common["session_spread"])
    low, high = (float(x) for x in np.quantile(ratios, (0.025, 0.975)))
    # One-sided bootstrap p: the share of resampled ratios on the far side of "no change".
    p_up = float((np.sum(ratios <= 1.0) + 1) / (ratios.size + 1))
    p_down = float((np.sum(ratios >= 1.0) + 1) / (ratios.size + 1))
    # Worse means larger for seconds and smaller for rates; express both as "times worse".
    worse, p_worse, p_better = (ratio, p_up, p_down) if sign == 1 else (1 / ratio, p_down, p_up)
    verdict, reason, p = latency_verdict(worse, p_worse, p_better, common["min_effect"], common["alpha"])
    comparison = LatencyComparison(verdict, ratio=ratio, ratio_low=low, ratio_high=high, p_value=p, reason=reason,
                                   **common)
    if comparison.drift_beyond_limit and verdict in (Verdict.REGRESSED, Verdict.IMPROVED):
        now = "slower" if common["drift"] > 1 else "faster"
        return replace(comparison, verdict=Verdict.INCONCLUSIVE, reason=(
            f"{reason}, but the machine ran the control x{common['drift']:.2f} against the baseline's session "
            f"({now} now), beyond the x{MAX_DRIFT:g} that drift correction is trusted for; rerun on a quieter "
            "machine, or re-save the baseline if it was recorded on a busy one"))
    return comparison


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
    statistic = str(measurement.extra.get("statistic", "p10"))
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


def should_confirm(comparison: LatencyComparison) -> bool:
    """True when a result must be re-measured before its verdict is final.

    That is when it looks regressed, or worse by SCREEN_SHARE of the minimum effect (a lower bar on
    purpose: a true slowdown of the minimum effect whose first estimate fell short by noise gets a
    second look with twice the data), or when it was left inconclusive by machine drift (a quieter
    re-measurement lowers this run's control floor).
    """
    if comparison.confirmed or not math.isfinite(comparison.ratio):
        return False
    drifted = comparison.verdict is Verdict.INCONCLUSIVE and comparison.drift_beyond_limit
    return comparison.verdict is Verdict.REGRESSED or _leans_worse(comparison) or drifted


def _leans_worse(comparison: LatencyComparison) -> bool:
    return (comparison.verdict is Verdict.PASS
            and comparison.times_worse[0] >= 1 + SCREEN_SHARE * comparison.min_effect)


def undecided(pooled: LatencyComparison) -> bool:
    """True when a re-measured comparison passes yet leans worse, and its 95 % interval still reaches
    the alarm line: more blocks could still show the minimum effect. One that is clearly below the
    line, a regression, or anything not finite is decided.
    """
    if not math.isfinite(pooled.ratio) or not _leans_worse(pooled):
        return False
    return pooled.times_worse[1] >= 1 + pooled.min_effect * EFFECT_SHARE


def another_pass(pooled: LatencyComparison, passes: int) -> bool:
    """After ``passes`` passes of ``--against``'s blocks whose pooled comparison is ``pooled``: measure one more?

    After the first, when it should be confirmed; after later ones, while it is :func:`undecided`,
    up to :data:`MAX_PASSES` in all.
    """
    if passes <= 1:
        return should_confirm(pooled)
    return passes < MAX_PASSES and undecided(pooled)


def confirm(first: LatencyComparison, pooled: LatencyComparison, remeasurements: int = 1) -> LatencyComparison:
    """The final verdict of a screened comparison, decided on the first run pooled with its re-measurements.

    Returns ``first`` unchanged when it did not need confirming, else ``pooled`` (the comparison of
    the first run's and the re-measurements' samples together): marked ``confirmed`` when it
    regressed, or with its own verdict when it did not.
    """
    if not should_confirm(first):
        return first
    again = "a re-measurement" if remeasurements == 1 else f"{remeasurements} re-measurements"
    if first.verdict is Verdict.INCONCLUSIVE:
        return replace(pooled, confirmed=True, reason=f"{pooled.reason} (re-measured after machine drift)")
    if pooled.verdict is Verdict.REGRESSED:
        return replace(pooled, confirmed=True, reason=f"{pooled.reason} (confirmed by {again})")
    return replace(pooled, confirmed=True,
                   reason=f"{pooled.reason} (a first run looked worse; with {again} it did not)")


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
        return f"{self.figure} {format_size(self.current_bytes)}: {self.reason}"


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
    limit = "" if limit_bytes is None else f"the limit of {format_size(limit_bytes)}"
    if limit_bytes is not None and current_bytes > limit_bytes:
        return made(Verdict.REGRESSED, reason=f"over {limit}")
    if baseline_bytes is None or rel is None:
        if limit_bytes is None:
            return made(Verdict.NOT_COMPARED, reason="no baseline and no limit to compare with")
        return made(Verdict.PASS, reason=f"within {limit}")
    verdict = _tolerance_verdict(baseline_bytes, current_bytes, rel)
    versus = f"the baseline {format_size(baseline_bytes)} + {rel:.0%} = {format_size(baseline_bytes * (1 + rel))}"
    if verdict is Verdict.REGRESSED:
        return made(verdict, reason=f"above {versus}")
    if verdict is Verdict.IMPROVED:
        return made(verdict, reason=f"more than {rel:.0%} below the baseline {format_size(baseline_bytes)}")
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
