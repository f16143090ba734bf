"""Verdicts of ``--against``: the base side's and the change side's figures of one test, compared.

Pure functions from records to :class:`~modelperf.records.TestResult`; nothing here runs a process.
Latency goes through the paired blocks of :mod:`modelperf.ab.paired`; peak memory compares the two
sides' figures (each from its own fresh process) with the marker's tolerance; accuracy pairs the
two sides' predictions example by example (McNemar), perplexity by its tolerance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from modelperf import decide
from modelperf.ab.paired import Run, compare_paired
from modelperf.markers import AccuracyOptions, LatencyOptions, MemoryOptions
from modelperf.measure.latency import pool_runs
from modelperf.records import Measurement, TestResult
from modelperf.units import format_size

__all__ = ["AGAINST_MIN_EFFECT", "accuracy_result", "latency_comparison", "latency_result", "memory_result",
           "not_compared"]

# The minimum effect of a latency test whose marker sets none. Lower than stored baselines' 10 %:
# measured side by side, interleaved, a few per cent stand out of the noise (python -m benchmarks.gate).
AGAINST_MIN_EFFECT = 0.05


def _result(change: Measurement, line: str, verdict: str, base: float | None, **figures: Any) -> TestResult:
    return TestResult(change, line, verdict, base, pid=os.getpid(), **figures)


def not_compared(change: Measurement, why: str) -> TestResult:
    """The change side's figure alone, with the sentence saying why it has nothing to compare with."""
    return _result(change, why, decide.Verdict.NOT_COMPARED.value, None)


def latency_comparison(runs: Mapping[str, Sequence[Run]], options: LatencyOptions, min_effect: float,
                       unit: str) -> decide.LatencyComparison:
    """The paired verdict of a latency test's Runs, per side."""
    return compare_paired(runs["base"], runs["change"], min_effect=min_effect, statistic=options.statistic,
                          direction=options.direction, alpha=options.alpha, unit=unit)


def latency_result(base: Sequence[Measurement], change: Sequence[Measurement], runs: Mapping[str, Sequence[Run]],
                   comparison: decide.LatencyComparison, ref: str) -> TestResult:
    """One result for a latency test: the change's rounds pooled, the base's figure, the paired verdict.

    ``runs`` are the Runs the comparison was made on, per side; they travel in ``extra["against"]``
    so a reader can redo the statistics.
    """
    against = {"ref": ref, "min_effect": comparison.min_effect, "statistic": comparison.statistic,
               **{side: [run.to_json() for run in runs[side]] for side in ("base", "change")}}
    pooled_change = pool_runs(change)
    pooled_change = replace(pooled_change, extra=dict(pooled_change.extra, against=against))
    pooled_base = pool_runs(base)
    return replace(_result(pooled_change, comparison.line(), comparison.verdict.value, pooled_base.value,
                           ratio=comparison.ratio, drift=comparison.drift, p_value=comparison.p_value),
                   ratio_low=comparison.ratio_low, ratio_high=comparison.ratio_high)


def memory_result(base: Measurement, change: Measurement, options: MemoryOptions) -> TestResult:
    comparison = decide.compare_memory(base.value, change.value, rel=options.rel, limit_bytes=options.limit_bytes,
                                       figure=str(change.extra.get("figure", options.figure)))
    ratio = change.value / base.value if base.value > 0 else None
    figures = ", ".join(f"{side} {format_size(m.value)}" for side, m in (("base", base), ("change", change)))
    return _result(change, f"{comparison.line()} [{figures}, each from a fresh worker process]",
                   comparison.verdict.value, base.value, ratio=ratio)


def accuracy_result(base: Measurement, change: Measurement, options: AccuracyOptions) -> TestResult:
    if change.metric == "perplexity":
        plain = decide.compare_perplexity(base.value, change.value)
        return _result(change, plain.line(), plain.verdict.value, base.value, ratio=change.value / base.value)
    comparison = decide.compare_accuracy(base, change, min_drop=options.min_drop, min_fraction=options.min_fraction,
                                         alpha=options.alpha)
    return _result(change, comparison.line(), comparison.verdict.value, base.value, p_value=comparison.p_value)
