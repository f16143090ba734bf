"""Pure decisions on numbers: drift correction, significance, effect sizes and comparisons.

Nothing here measures, stores or knows pytest. Every function takes plain figures (or
:class:`~modelperf.records.Measurement` records) and returns a frozen comparison whose ``line()``
is one readable sentence; :mod:`modelperf.judge` turns those into the verdicts of test results.

- :mod:`~modelperf.decide.latency`: one run against a stored baseline, drift-corrected by the
  control workload, with a bootstrap interval; the re-measurement rules.
- :mod:`~modelperf.decide.paired`: ``--against``'s interleaved blocks of runs, judged over process pairs.
- :mod:`~modelperf.decide.sequential`: ``--against``'s looks after each block, with alpha spending.
- :mod:`~modelperf.decide.spread`: the between-session spread of a test's figure, from the history.
- :mod:`~modelperf.decide.accuracy`: per-example accuracy (Wilson interval, McNemar's exact test).
- :mod:`~modelperf.decide.tolerance`: peak memory and perplexity, deterministic, by a tolerance.
"""

from __future__ import annotations

from modelperf.decide.accuracy import AccuracyComparison, compare_accuracy, wilson_interval
from modelperf.decide.latency import (
    CONTROL_QUANTILE,
    EFFECT_SHARE,
    MAX_DRIFT,
    MIN_SAMPLES,
    POWER,
    SCREEN_SHARE,
    SMALLEST_ALPHA,
    LatencyComparison,
    compare_latency,
    confirm,
    control_floor,
    detectable_ratio,
    latency_verdict,
    reducer,
    should_confirm,
)
from modelperf.decide.paired import compare_paired, run_of
from modelperf.decide.sequential import MAX_PASSES, Design, Look, Stop, passes_within
from modelperf.decide.spread import (
    LOAD_SPREAD,
    LOAD_TAIL_FACTOR,
    MIN_SPREAD_DF,
    TAIL_SPREADS,
    PooledSpread,
    SessionSpread,
    SpreadTable,
    corrected_log_figure,
    figure_name,
    pooled_spread,
    session_log_figure,
    upper_spread,
)
from modelperf.decide.tolerance import MemoryComparison, PerplexityComparison, compare_memory, compare_perplexity
from modelperf.vocab import STATISTICS, Verdict

__all__ = [
    "CONTROL_QUANTILE", "EFFECT_SHARE", "LOAD_SPREAD", "LOAD_TAIL_FACTOR", "MAX_DRIFT", "MAX_PASSES", "MIN_SAMPLES",
    "MIN_SPREAD_DF", "POWER", "SCREEN_SHARE", "SMALLEST_ALPHA", "STATISTICS", "TAIL_SPREADS", "AccuracyComparison",
    "Design", "LatencyComparison", "Look", "MemoryComparison", "PerplexityComparison", "PooledSpread",
    "SessionSpread", "SpreadTable", "Stop", "Verdict", "compare_accuracy", "compare_latency", "compare_memory",
    "compare_paired", "compare_perplexity", "confirm", "control_floor", "corrected_log_figure", "detectable_ratio",
    "figure_name", "latency_verdict", "passes_within", "pooled_spread", "reducer", "run_of", "session_log_figure",
    "should_confirm", "upper_spread", "wilson_interval",
]
