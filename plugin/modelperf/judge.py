"""The one judge: a figure, what it is compared with and the marker's rules in; a verdict out.

Every comparison the plugin makes goes through :func:`judge`, whichever way the reference was
obtained: a baseline stored for this hardware, or the base side of ``--against`` measured beside the
change. Latency comparisons are made by :func:`latency_comparison` (drift-corrected bootstrap for a
stored baseline, paired blocks for ``--against``); a caller that measures more before a verdict
(a re-measurement, further blocks) compares again and hands the final comparison to :func:`judge`.
Nothing here measures, stores or knows pytest.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from modelperf import decide
from modelperf.markers import AccuracyOptions, LatencyOptions, LoadOptions, MarkerOptions, MemoryOptions
from modelperf.records import Judgement, Kind, Measurement, TestResult
from modelperf.units import format_size
from modelperf.vocab import MIN_PROCESS_PAIRS, Verdict

__all__ = ["AGAINST_MIN_EFFECT", "Reference", "Rules", "judge", "latency_comparison"]

# The minimum effect of a latency test whose marker sets none, under --against. Lower than stored
# baselines' 10 %: measured side by side, interleaved, a few per cent stand out of the noise.
AGAINST_MIN_EFFECT = 0.05


@dataclass(frozen=True)
class Rules:
    """Session-wide judging settings: the between-session spread of each stored latency comparison (none:
    the two sessions are trusted to be alike), and whether the reference was measured side by side
    (``--against``) rather than stored."""

    spreads: decide.SpreadTable | None = None
    side_by_side: bool = False


@dataclass(frozen=True)
class Reference:
    """What a figure is compared with: ``figure`` (a stored baseline, or the base side's), or nothing,
    with ``why_none`` saying why (a first run, a new test, a base side that failed)."""

    figure: Measurement | None
    why_none: str = ""


def latency_comparison(current: Measurement, reference: Measurement, options: LatencyOptions,
                       rules: Rules) -> decide.LatencyComparison:
    """A latency figure against its reference: paired blocks where ``current`` carries ``--against``'s
    runs, else the drift-corrected comparison with a stored baseline."""
    paired = current.latency.paired if current.latency is not None else None
    if paired is not None:
        return decide.compare_paired(paired.base, paired.change, min_effect=options.min_effect,
                                     statistic=options.statistic, direction=options.direction, alpha=options.alpha,
                                     unit=current.unit, processes=paired.processes, passes=paired.passes)
    spread = (decide.SessionSpread(0.0) if rules.spreads is None
              else rules.spreads.for_figure(current.test_id, options.statistic))
    return decide.compare_latency(reference, current, min_effect=options.min_effect, statistic=options.statistic,
                                  direction=options.direction, alpha=options.alpha, session_spread=spread)


def judge(current: Measurement, reference: Reference, options: MarkerOptions, rules: Rules = Rules(),
          comparison: decide.LatencyComparison | None = None) -> TestResult:
    """The verdict of ``current`` against ``reference`` under the marker's ``options``.

    For latency, ``comparison`` is the final comparison of a caller that measured more before
    deciding; without it the figure is compared here once.
    """
    if current.kind is Kind.MEMORY:
        assert isinstance(options, MemoryOptions)
        return _memory(current, reference, options, rules)
    if reference.figure is None:
        # Side by side, a figure with no partner is not compared; against stored baselines it becomes one.
        if rules.side_by_side:
            return _result(current, Judgement(Verdict.NOT_COMPARED, reference.why_none))
        return _result(current, Judgement(Verdict.RECORDED, _alone(current, reference.why_none)))
    if current.kind is Kind.LOAD:
        assert isinstance(options, LoadOptions)
        return _load(current, reference.figure, options, rules)
    if current.kind is Kind.LATENCY:
        assert isinstance(options, LatencyOptions)
        found = comparison or latency_comparison(current, reference.figure, options, rules)
        return _result(current, Judgement(found.verdict, found.line(), reference.figure.value, found.ratio,
                                          found.ratio_low, found.ratio_high, found.drift, found.p_value,
                                          found.detectable, found.min_effect,
                                          found.session_spread if found.corrected else None))
    assert isinstance(options, AccuracyOptions)
    return _accuracy(current, reference.figure, options)


def _result(current: Measurement, judgement: Judgement, section: str | None = None) -> TestResult:
    return TestResult(current, judgement, section, os.getpid())


def _alone(current: Measurement, why: str) -> str:
    """The line of a figure with nothing to compare with: the figure, then why."""
    if current.kind is Kind.ACCURACY and current.metric == "perplexity":
        return f"perplexity {current.value:.3f}; {why}"
    if current.kind is Kind.ACCURACY:
        return f"{_accuracy_figure(current)}; {why}"
    if current.kind is Kind.LOAD:
        from modelperf.decide.load import figure_text

        return f"{figure_text(current)}; {why}"
    return why


def _load(current: Measurement, reference: Measurement, options: LoadOptions, rules: Rules) -> TestResult:
    """A load test's gated figure against its reference's: phase pairs side by side where both sides ran
    in phases, else the per-request bootstrap (see decide.load)."""
    from modelperf.decide.load import LoadRun, compare_load, compare_load_phases

    def run(measurement: Measurement) -> LoadRun:
        detail = measurement.load
        return LoadRun(measurement.value, measurement.samples, detail.failed if detail else 0,
                       detail.max_rate if detail else None, detail.failed_rate if detail else None)

    phases = _phase_pairs(current, reference) if rules.side_by_side else None
    if phases is not None:
        found = compare_load_phases(*phases, figure=current.metric, unit=current.unit, baseline=reference.value,
                                    current=current.value, min_effect=options.min_effect,
                                    direction=options.gated_direction, alpha=options.alpha)
    else:
        # A load figure's own spread comes from its requests; the between-session part is the figure's own
        # from the history, or a default for its percentile (decide.SpreadTable.for_figure).
        between = (decide.SessionSpread(0.0) if rules.spreads is None
                   else rules.spreads.for_figure(current.test_id, current.metric))
        found = compare_load(run(reference), run(current), figure=current.metric, unit=current.unit,
                             min_effect=options.min_effect, direction=options.gated_direction, alpha=options.alpha,
                             session_spread=between, side_by_side=rules.side_by_side)
    ratio = found.ratio if math.isfinite(found.ratio) else None
    low, high = (found.ratio_low, found.ratio_high) if ratio is not None else (None, None)
    return _result(current, Judgement(found.verdict, found.line(), reference.value, ratio, low, high,
                                      p_value=found.p_value, detectable=found.detectable, min_effect=found.min_effect,
                                      session_spread=found.session_spread))


def _phase_pairs(current: Measurement, reference: Measurement) -> tuple[list[float], list[float]] | None:
    """(base, change) phase figures where both sides ran the same number of phases, every request
    completed and every figure is a positive time; None sends the comparison to the bootstrap."""
    mine, theirs = current.load, reference.load
    if mine is None or theirs is None or mine.failed or theirs.failed or current.unit != "s":
        return None
    base, change = list(theirs.phase_figures), list(mine.phase_figures)
    if len(base) != len(change) or len(base) < MIN_PROCESS_PAIRS:
        return None
    if not all(math.isfinite(v) and v > 0 for v in base + change):
        return None
    return base, change


def _accuracy_figure(current: Measurement) -> str:
    n = len(current.samples)
    low, high = decide.wilson_interval(int(sum(current.samples)), n)
    per_example = current.accuracy.seconds_per_example if current.accuracy is not None else 0.0
    return (f"accuracy {current.value:.3f} (95% Wilson {low:.3f}-{high:.3f}, n={n}, "
            f"{per_example * 1e3:.1f} ms/example)")


def _accuracy(current: Measurement, reference: Measurement, options: AccuracyOptions) -> TestResult:
    """Accuracy example by example (McNemar); perplexity, deterministic for fixed weights, by a tolerance."""
    if current.metric == "perplexity":
        plain = decide.compare_perplexity(reference.value, current.value)
        ratio = current.value / reference.value if reference.value > 0 else None
        return _result(current, Judgement(plain.verdict, plain.line(), reference.value, ratio))
    found = decide.compare_accuracy(reference, current, min_drop=options.min_drop,
                                    min_fraction=options.min_fraction, alpha=options.alpha)
    return _result(current, Judgement(found.verdict, f"{found.line()} [{_accuracy_figure(current)}]",
                                      reference.value, p_value=found.p_value))


def _memory(current: Measurement, reference: Reference, options: MemoryOptions, rules: Rules) -> TestResult:
    """Peak memory against the reference's figure (a relative tolerance) and the marker's limit."""
    base = reference.figure
    detail = current.memory
    label = detail.label if detail is not None else current.metric
    found = decide.compare_memory(None if base is None else base.value, current.value,
                                  rel=options.rel if base is not None else None, limit_bytes=options.limit_bytes,
                                  figure=label)
    figures: list[str] = []
    if rules.side_by_side and base is not None:
        figures.append(f"base {format_size(base.value)}, change {format_size(current.value)}, each from a fresh "
                       "worker process")
    elif detail is not None:
        figures.append(f"memray peak {format_size(detail.memray_peak_bytes)} (allocated, mapped files whole), "
                       f"RSS peak {format_size(detail.rss_peak_bytes)} (+{format_size(detail.rss_delta_bytes)} "
                       "resident over the test body)")
    line = f"{found.line()} [{'; '.join(figures)}]" if figures else found.line()
    failed = found.verdict is Verdict.REGRESSED
    if base is None and not failed:
        if rules.side_by_side:
            return _result(current, Judgement(Verdict.NOT_COMPARED, reference.why_none))
        return _result(current, Judgement(Verdict.RECORDED, f"{line}; {reference.why_none}"))
    ratio = current.value / base.value if base is not None and base.value > 0 else None
    return _result(current, Judgement(found.verdict, line, None if base is None else base.value, ratio))
