"""The words every part of modelperf shares, declared once: verdicts, figure kinds, statistics.

This module imports nothing of ours and nothing heavy, so the records, the markers, the judge and
the reports all take their vocabulary from here without loading numpy or scipy.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["DIRECTIONS", "LOAD_FIGURES", "LOAD_HIGHER_BETTER", "MALLOC_MODES", "MEMORY_FIGURES", "MIN_PROCESS_PAIRS",
           "STATISTICS", "Kind", "Verdict"]


class Kind(str, Enum):
    """What a measurement is about; also the name of the marker that produces it."""

    LATENCY = "latency"
    MEMORY = "peak_memory"
    ACCURACY = "accuracy"
    LOAD = "load"


class Verdict(str, Enum):
    """The outcome of one figure's comparison (or why there was none)."""

    RECORDED = "recorded"  # nothing to compare with: the figure becomes a baseline
    PASS = "pass"
    REGRESSED = "regressed"
    IMPROVED = "improved"
    INCONCLUSIVE = "inconclusive"
    NOT_COMPARED = "not_compared"


# Latency statistics over a test's rounds. p10 first: the default, since interference on a shared
# machine only ever adds time; p90 and p99 are what serving teams set targets on.
STATISTICS = ("p10", "median", "mean", "p90", "p99")
DIRECTIONS = ("lower", "higher")
# Which peak-memory figure a peak_memory test asserts: memray's high-water mark or the RSS growth.
MEMORY_FIGURES = ("memray", "rss")
# --malloc-thresholds: the process's own allocator settings (the default), or glibc's thresholds fixed.
MALLOC_MODES = ("process", "fixed")
# --against judges a latency test by a t-test over worker-process pairs: fewer than this leave it
# one degree of freedom or none, so --against-processes refuses fewer and the judge says so.
MIN_PROCESS_PAIRS = 3
# The figures of a load test the `load` marker can gate: each latency figure at p50/p90/p99 over the
# run's requests, the share of requests meeting every objective, and the highest rate that held them.
LOAD_FIGURES = (*(f"{metric}_p{q}" for metric in ("e2e", "ttft", "tpot", "itl") for q in (50, 90, 99)),
                "goodput", "max_rate")
LOAD_HIGHER_BETTER = ("goodput", "max_rate")  # the others are times: lower is better
