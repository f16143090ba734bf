"""Pure decisions on numbers: drift correction, significance, effect sizes and verdicts.

Nothing here measures, stores or knows pytest. Every function takes plain figures (or
:class:`~modelperf.records.Measurement` records) and returns a frozen result whose ``line()`` is one
readable sentence for the terminal.

Latency rule (:func:`compare_latency`): each side's samples are divided by that side's control
floor (the control rounds' lower decile), so a machine that got uniformly faster or slower cancels
out; a tail percentile (p90, p99) is divided by the control's same percentile instead, so a session
with more interference than the other cancels out too (:func:`modelperf.figures.control_for`). The
figure compared is, by default, the lower decile (``p10``) of the rounds: on a shared machine
interference only ever adds time, so the fast rounds are the ones that show the code's own
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

import math
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from modelperf.decide._checks import Array
from modelperf.decide._checks import require as _require
from modelperf.decide.spread import SessionSpread
from modelperf.figures import CONTROL_QUANTILE, TAIL_STATISTICS, control_floor, control_for, reducer
from modelperf.records import Measurement
from modelperf.units import format_value
from modelperf.vocab import DIRECTIONS, STATISTICS, Verdict


class SequentialLook(Protocol):
    """What a comparison needs of the look it was made at (:class:`modelperf.decide.sequential.Look`)."""

    @property
    def detectable(self) -> float | None: ...

    @property
    def final(self) -> bool: ...

    def text(self) -> str: ...

__all__ = ["CONTROL_QUANTILE", "EFFECT_SHARE", "MAX_DRIFT", "MIN_SAMPLES", "POWER", "SCREEN_SHARE",
           "SMALLEST_ALPHA", "LatencyComparison", "SequentialLook", "compare_latency", "confirm", "control_floor",
           "detectable_ratio", "latency_verdict", "reducer", "should_confirm"]

# Share of min_effect the point ratio must reach. With FA <= 1 % (z 2.33) and detection >= 95 %
# (z 1.645) wanted, the best cut is 2.33 / (2.33 + 1.645) = 0.59 of the effect: rounded to 0.6.
EFFECT_SHARE = 0.6
# A first run worse by this share of min_effect is re-measured before its verdict is final.
SCREEN_SHARE = 0.3
# p10 first: the default. Lower deciles ignore interference, which only ever adds time. p90 and p99
# are what serving teams set targets on (tail latency of tokens or requests); they follow interference,
# so gate on them with more rounds and a larger min_effect.
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



@dataclass(frozen=True)
class LatencyComparison:
    """A drift-corrected latency (or throughput) comparison.

    ``baseline_median``/``current_median`` are raw medians, for people. ``ratio`` is current/baseline
    of ``statistic`` after dividing each side by its control floor, or by the control's same
    percentile for a tail (``tail_control``; multiplying, for ``direction="higher"`` rates), with its
    95 % bootstrap CI. ``p_value`` is the one-sided bootstrap p of the side the ratio leans to (worse,
    unless the figure got better). ``drift`` is this run's control floor over the baseline's: above 1
    the machine is slower now.
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
    spread_source: str = ""  # where session_spread came from (SessionSpread.source), for the line
    # False for --against's paired runs: judged on raw figures measured side by side, ``drift``
    # only reported (modelperf.decide.paired says why).
    corrected: bool = True
    # The standard error of the log ratio this comparison reached, and the degrees of freedom of its
    # t distribution (None: the bootstrap's, taken as normal); what its stated power is computed from.
    log_se: float = math.nan
    df: int | None = None
    # --against's sequential design: the look this comparison was made at (None: a single test).
    look: SequentialLook | None = None
    # A tail statistic's correction: the current control's percentile over the baseline's (the
    # interference the two sessions had, with the machine's speed); None where the floor corrected.
    tail_control: float | None = None

    @property
    def detectable(self) -> float | None:
        """The smallest slowdown ("times worse") this comparison would have called regressed with 95 %
        probability at the precision it reached: significant at ``alpha`` and past the alarm line.
        Under ``--against``, the look's own figure (see :mod:`modelperf.decide.paired`)."""
        if self.look is not None:
            return self.look.detectable
        return detectable_ratio(self.log_se, self.df, self.min_effect, self.alpha)

    def line(self) -> str:
        def show(value: float) -> str:
            return format_value(value, self.unit)

        figures = f"median {show(self.baseline_median)} -> {show(self.current_median)}"
        if not math.isfinite(self.ratio):
            return f"{figures}: {self.reason}"
        spread = SessionSpread(self.session_spread, self.spread_source).phrase()
        how, drift = ("drift-corrected", "machine drift") if self.corrected else ("side-by-side", "control")
        detectable = self.detectable
        power = "" if detectable is None else f", could detect >= x{detectable:.3f}"
        look = "" if self.look is None else f"; {self.look.text()}"
        tail = "" if self.tail_control is None else f", control {self.statistic} x{self.tail_control:.2f}"
        return (f"{figures} ({how} {self.statistic} x{self.ratio:.3f}, 95% CI {self.ratio_low:.3f}-"
                f"{self.ratio_high:.3f}, p={self.p_value:.2g}, {drift} x{self.drift:.2f}{tail}{power}{look}"
                f"{'; ' + spread if spread else ''}): {self.reason}")

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




def _bootstrap_ratios(cur: Array, base: Array, controls: tuple[Array, Array] | None, statistic: str,
                      sign: int, session_spread: float = 0.0) -> Array:
    """Bootstrap distribution of the corrected ratio, resampling each side's rounds AND controls.

    Resampling the controls carries their own noise into the interval and the p-value. ``sign`` is
    -1 where rates are multiplied by the control. ``session_spread`` > 0 multiplies each resample by
    a log-normal draw for the two sessions' own offsets (sd ``sqrt(2) * session_spread``).
    """
    rng = np.random.default_rng(_BOOTSTRAP_SEED)

    def resampled(values: Array) -> Array:
        return values[rng.integers(0, values.size, size=(_BOOTSTRAP_RESAMPLES, values.size))]

    reduce = reducer(statistic)
    ratios = reduce(resampled(cur), axis=-1) / reduce(resampled(base), axis=-1)
    if controls is not None:
        drifts = control_for(statistic, resampled(controls[0])) / control_for(statistic, resampled(controls[1]))
        ratios = ratios * drifts ** float(-sign)
    if session_spread > 0:
        ratios = ratios * np.exp(rng.normal(0.0, math.sqrt(2.0) * session_spread, size=_BOOTSTRAP_RESAMPLES))
    return np.asarray(ratios, dtype=float)


# The probability with which a stated minimum detectable effect would be caught.
POWER = 0.95


def detectable_ratio(log_se: float, df: int | None, min_effect: float, alpha: float,
                     power: float = POWER) -> float | None:
    """The smallest true ratio (> 1 is worse) that a comparison of standard error ``log_se`` (log
    scale) calls regressed with probability ``power``: its estimate must be significant at ``alpha``
    one-sided and past the alarm line ``1 + EFFECT_SHARE * min_effect``. None when the precision is unknown.
    """
    if not math.isfinite(log_se) or log_se < 0:
        return None
    from scipy import stats

    def quantile(q: float) -> float:
        return float(stats.norm.ppf(q) if df is None else stats.t.ppf(q, df))

    significant = (quantile(1 - alpha) + quantile(power)) * log_se
    past_line = math.log(1.0 + min_effect * EFFECT_SHARE) + quantile(power) * log_se
    return math.exp(max(significant, past_line))


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
    session_spread: float | SessionSpread = 0.0,
) -> LatencyComparison:
    """Compare two latency measurements after correcting both for machine drift.

    ``direction="lower"`` for seconds (lower is better), ``"higher"`` for rates such as tokens/s.
    Each side's samples are divided (rates: multiplied) by that side's control floor; when either
    side has no control, neither is corrected and ``drift`` is 1.0. INCONCLUSIVE when a side has
    fewer than :data:`MIN_SAMPLES` rounds, or when a regression or improvement comes with more
    machine drift than :data:`MAX_DRIFT`. ``session_spread`` is the between-session sd of the
    corrected figure (see the module's docstring), with where it came from when it is a
    :class:`~modelperf.decide.spread.SessionSpread`; 0 trusts the two sessions to be alike.
    """
    spread = session_spread if isinstance(session_spread, SessionSpread) else SessionSpread(session_spread)
    _require(statistic in STATISTICS, f"statistic={statistic!r} is unknown; use one of {', '.join(STATISTICS)}.")
    _require(direction in DIRECTIONS,
             f"direction={direction!r} is unknown; use 'lower' (seconds) or 'higher' (e.g. tokens/s).")
    _require(0.0 < min_effect < 10.0, f"min_effect={min_effect!r} must lie in (0, 10), e.g. 0.10 for 10 %.")
    _require(SMALLEST_ALPHA < alpha < 1.0,
             f"alpha={alpha!r} must lie in ({SMALLEST_ALPHA:.2g}, 1), the bootstrap's resolution; e.g. 0.01.")
    _require(0.0 <= spread.value < 1.0,
             f"session_spread={spread.value!r} must lie in [0, 1), e.g. 0.03 for 3 % between sessions.")
    base = _positive_array(baseline.samples, "baseline samples", baseline.test_id)
    cur = _positive_array(current.samples, "current samples", current.test_id)
    base_ctl = _positive_array(baseline.control, "baseline control samples", baseline.test_id)
    cur_ctl = _positive_array(current.control, "current control samples", current.test_id)
    controls = (cur_ctl, base_ctl) if base_ctl.size and cur_ctl.size else None
    drift = float(control_floor(cur_ctl) / control_floor(base_ctl)) if controls is not None else 1.0
    tail = statistic in TAIL_STATISTICS and controls is not None
    common: dict[str, Any] = {
        "baseline_median": float(np.median(base)) if base.size else math.nan,
        "current_median": float(np.median(cur)) if cur.size else math.nan,
        "min_effect": min_effect, "statistic": statistic, "direction": direction, "unit": current.unit,
        "alpha": alpha, "drift": drift, "session_spread": spread.value, "spread_source": spread.source,
        "tail_control": float(control_for(statistic, cur_ctl) / control_for(statistic, base_ctl)) if tail else None,
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
    correction = common["drift"] if common["tail_control"] is None else common["tail_control"]
    ratio = float(reduce(cur) / reduce(base)) * correction ** -sign
    ratios = _bootstrap_ratios(cur, base, controls, common["statistic"], sign, common["session_spread"])
    low, high = (float(x) for x in np.quantile(ratios, (0.025, 0.975)))
    # One-sided bootstrap p: the share of resampled ratios on the far side of "no change".
    p_up = float((np.sum(ratios <= 1.0) + 1) / (ratios.size + 1))
    p_down = float((np.sum(ratios >= 1.0) + 1) / (ratios.size + 1))
    # Worse means larger for seconds and smaller for rates; express both as "times worse".
    worse, p_worse, p_better = (ratio, p_up, p_down) if sign == 1 else (1 / ratio, p_down, p_up)
    verdict, reason, p = latency_verdict(worse, p_worse, p_better, common["min_effect"], common["alpha"])
    log_se = float(np.std(np.log(ratios), ddof=1))
    comparison = LatencyComparison(verdict, ratio=ratio, ratio_low=low, ratio_high=high, p_value=p, reason=reason,
                                   log_se=log_se, **common)
    if comparison.drift_beyond_limit and verdict in (Verdict.REGRESSED, Verdict.IMPROVED):
        now = "slower" if common["drift"] > 1 else "faster"
        return replace(comparison, verdict=Verdict.INCONCLUSIVE, reason=(
            f"{reason}, but the machine ran the control x{common['drift']:.2f} against the baseline's session "
            f"({now} now), beyond the x{MAX_DRIFT:g} that drift correction is trusted for; rerun on a quieter "
            "machine, or re-save the baseline if it was recorded on a busy one"))
    return comparison


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

