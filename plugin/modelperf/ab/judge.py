"""Verdicts of ``--against``: the base side's and the change side's figures of one test, compared.

Pure functions from records to :class:`~modelperf.records.TestResult`; nothing here runs a process.
Latency goes through the paired blocks of :mod:`modelperf.ab.paired`; peak memory compares the two
sides' figures (each from its own fresh process) with the marker's tolerance; accuracy pairs the
two sides' predictions example by example (McNemar), perplexity by its tolerance.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from modelperf import decide
from modelperf.ab.paired import Run, compare_paired, pooled_measurement, run_of
from modelperf.markers import AccuracyOptions, LatencyOptions, MemoryOptions
from modelperf.records import Measurement, TestResult
from modelperf.units import format_size

__all__ = ["AGAINST_MIN_EFFECT", "accuracy_result", "latency_comparison", "latency_result", "memory_result",
           "not_compared"]

# The minimum effect of a latency test whose marker sets none. Lower than stored baselines' 10 %:
# measured side by side, interleaved, a few per cent stand out of the noise (benchmarks/against_gate.py).
AGAINST_MIN_EFFECT = 0.05


def _result(change: Measurement, line: str, verdict: str, base: float | None, **figures: Any) -> TestResult:
    return TestResult(change, line, verdict, base, pid=os.getpid(), **figures)


def not_compared(change: Measurement, why: str) -> TestResult:
    """The change side's figure alone, with the sentence saying why it has nothing to compare with."""
    return _result(change, why, decide.Verdict.NOT_COMPARED.value, None)


def latency_comparison(base: Sequence[Run], change: Sequence[Run], options: LatencyOptions,
                       min_effect: float, unit: str) -> decide.LatencyComparison:
    return compare_paired(base, change, min_effect=min_effect, statistic=options.statistic,
                          direction=options.direction, alpha=options.alpha, unit=unit)


def latency_result(base: Sequence[Measurement], change: Sequence[Measurement], processes: Sequence[tuple[int, int]],
                   comparison: decide.LatencyComparison, ref: str) -> TestResult:
    """One result for a latency test: the change's rounds pooled, the base's figure, the paired verdict.

    ``processes[k]`` names the (base, change) worker processes of block ``k``; the runs travel in
    ``extra["against"]`` so a reader can redo the statistics.
    """
    runs = {"ref": ref, "min_effect": comparison.min_effect, "statistic": comparison.statistic,
            "base": [run_of(m, p[0], comparison.statistic).to_json() for m, p in zip(base, processes)],
            "change": [run_of(m, p[1], comparison.statistic).to_json() for m, p in zip(change, processes)]}
    pooled_change = pooled_measurement(change[0], change[1:])
    pooled_change = replace(pooled_change, extra=dict(pooled_change.extra, against=runs))
    pooled_base = pooled_measurement(base[0], base[1:])
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
