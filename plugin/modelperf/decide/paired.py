"""The verdict of a latency test measured on both sides of ``--against``, from paired blocks of runs.

A *run* is one execution of a test's timed call in one worker process: its rounds reduce to one
figure (the marker's statistic, by default the lower decile), and the control rounds between them to
one control floor. Runs come in *blocks*: block ``k`` pairs a run of the base side's process ``k``
with a run of the change side's process ``k``, their timed rounds alternating (ABBA order between
blocks), so whatever the machine did in those seconds touched both alike.

The figure compared is the ratio change/base of the runs' raw figures. A model's speed differs
from one process to the next (where its weights land in memory), so the *process pair* is the unit
of variation: the log ratios of one pair's blocks are averaged first, and the significance is a
one-sample t-test over the pairs (pyperf likewise treats each worker process as a sample).
The verdict rules are those of stored baselines (:func:`modelperf.decide.latency.compare_latency`): significant
at ``alpha`` and past :data:`~modelperf.decide.latency.EFFECT_SHARE` of the minimum effect.

Why raw, when a stored baseline is corrected by the control workload: the two runs of a block take
turns on the machine round by round, so whatever slows the machine slows both, and a correction can
only add the control's own noise; measured in A/A sessions, dividing each run by its process's control
floor widened the spread of the session's ratio in almost every shipped test
(docs/concepts/design-measurements.md#against-raw-figures). The control also belongs to each side's
code: a change to it would move every corrected ratio.
Each run still times a few control rounds; their change/base ratio (``drift``) is reported, near 1
when both sides saw the same machine.

Given the number of processes a side, the comparison is a look of ``--against``'s sequential design
(:mod:`modelperf.decide.sequential`): judged at the look's nominal level, and said to end the
sequence or not. Its stated power (``detectable``) is that of the sequence: the smallest slowdown the cap's t-test
would call regressed with 95 % probability at this look's precision, and never less than ``1 +
min_effect``, because below the minimum effect the equivalence stop may end the sequence as a pass.
Not the upper end of the interval that ruled the minimum effect out (until 2026-12-06): a slowdown
that large keeps the sequence going but is not necessarily called regressed; the gate benchmark at
4f4dd91 stated x1.025 for Llama prefill 128 that way, below its own alarm line of x1.030.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import stats

from modelperf.decide.latency import LatencyComparison, detectable_ratio, latency_verdict
from modelperf.decide.sequential import MAX_PASSES, BlockSpread, Design, Look, Stop, processes_to_detect, stop_rule
from modelperf.figures import control_floor, reducer
from modelperf.records import Measurement, RunFigure
from modelperf.vocab import MIN_PROCESS_PAIRS, Verdict

__all__ = ["MIN_PROCESS_PAIRS", "BlockSpread", "block_spread", "compare_paired", "run_of"]


def run_of(measurement: Measurement, process: int, statistic: str) -> RunFigure:
    """The Run of one worker's latency Measurement, its samples reduced by ``statistic`` as ``decide`` does.

    The caller names the statistic (the change's marker's) for both sides: a change that switches a
    marker from p10 to median must not compare the base's p10 with the change's median.
    """
    value = float(reducer(statistic)(np.asarray(measurement.samples, dtype=float)))
    control = float(control_floor(np.asarray(measurement.control))) if measurement.control else None
    return RunFigure(process, value, control, len(measurement.samples))


def _pair_logs(base: Sequence[RunFigure], change: Sequence[RunFigure]) -> list[list[float]]:
    """Each process pair's blocks as log ratios (change over base, so that > 0 is a larger figure)."""
    by_pair: dict[tuple[int, int], list[float]] = {}
    for b, c in zip(base, change):
        by_pair.setdefault((b.process, c.process), []).append(math.log(c.value) - math.log(b.value))
    return list(by_pair.values())


def _pair_means(base: Sequence[RunFigure], change: Sequence[RunFigure]) -> list[float]:
    """Mean log ratio per process pair."""
    return [float(np.mean(v)) for v in _pair_logs(base, change)]


def block_spread(base: Sequence[RunFigure], change: Sequence[RunFigure]) -> BlockSpread | None:
    """The within-pair and between-pair spread of these blocks (see :class:`BlockSpread`); None where
    no pair has two blocks or there are fewer than two pairs, which leave one of the two unknown."""
    if len(base) != len(change):
        raise ValueError(f"{len(base)} base runs and {len(change)} change runs do not pair up block by block.")
    groups = [np.asarray(g) for g in _pair_logs(base, change)]
    sizes = np.array([len(g) for g in groups], dtype=float)
    total, k = float(sizes.sum()), len(groups)
    if k < 2 or total - k < 1:
        return None
    within_var = sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / (total - k)
    grand = float(np.concatenate(groups).mean())
    between_ms = sum(n * (float(g.mean()) - grand) ** 2 for n, g in zip(sizes, groups)) / (k - 1)
    typical_size = (total - float((sizes ** 2).sum()) / total) / (k - 1)  # n0 of unequal groups
    between_var = max(0.0, (between_ms - within_var) / typical_size)
    return BlockSpread(math.sqrt(within_var), math.sqrt(between_var), k, int(total))


def compare_paired(base: Sequence[RunFigure], change: Sequence[RunFigure], *, min_effect: float, statistic: str = "p10",
                   direction: str = "lower", alpha: float = 0.01, unit: str = "s",
                   processes: int = 0, passes: int = 0, pairs_of: str = "worker-process pairs",
                   more_pairs: str = "raise --against-processes") -> LatencyComparison:
    """Compare the change's runs with the base's, block by block (``base[k]`` ran beside ``change[k]``).

    ``ratio`` is change/base of the runs' figures (a geometric mean over process pairs), with the
    95 % t interval over the pairs; ``drift`` is the change's control floor over the base's (median
    over blocks), near 1 when both sides ran on the same machine at the same time. ``processes``:
    the worker processes a side of the sequential design these blocks come from (its ``look`` says
    whether the sequence ends here); 0 judges them as one fixed-size test at ``alpha``. ``passes``: the
    passes over the processes that design allowed (0: :data:`~modelperf.decide.sequential.MAX_PASSES`). ``pairs_of`` and
    ``more_pairs`` name the unit and how to get more of it, where too few pairs leave no verdict (a load
    test pairs phases, not worker processes).
    """
    if len(base) != len(change):
        raise ValueError(f"{len(base)} base runs and {len(change)} change runs do not pair up block by block.")
    common: dict[str, Any] = {
        "baseline_median": float(np.median([r.value for r in base])) if base else math.nan,
        "current_median": float(np.median([r.value for r in change])) if change else math.nan,
        "min_effect": min_effect, "statistic": statistic, "direction": direction, "unit": unit, "alpha": alpha,
        "drift": _drift(base, change), "corrected": False}
    pairs = _pair_means(base, change)
    if len(pairs) < MIN_PROCESS_PAIRS:
        return LatencyComparison(
            Verdict.INCONCLUSIVE, ratio=math.nan, ratio_low=math.nan, ratio_high=math.nan, p_value=math.nan,
            reason=f"too few {pairs_of} ({len(pairs)}; at least {MIN_PROCESS_PAIRS}) to judge; {more_pairs}",
            **common)
    mean, spread, n = float(np.mean(pairs)), float(np.std(pairs, ddof=1)), len(pairs)
    error = spread / math.sqrt(n)
    if error > 0:
        t_up = mean / error
        p_up, p_down = float(stats.t.sf(t_up, n - 1)), float(stats.t.cdf(t_up, n - 1))
        half = float(stats.t.ppf(0.975, n - 1)) * error
    else:  # every pair gave the same ratio: certain of its sign, or of no change at all
        p_up, p_down = (0.0 if mean > 0 else 1.0), (0.0 if mean < 0 else 1.0)
        half = 0.0
    ratio = math.exp(mean)
    worse, p_worse, p_better = (ratio, p_up, p_down) if direction == "lower" else (1 / ratio, p_down, p_up)
    look = _look(math.log(worse), error, n - 1, len(base), processes, passes or MAX_PASSES, alpha, min_effect)
    if look is not None and look.final and look.detectable is not None and look.detectable > 1 + min_effect:
        look = _limits(look, base, change, Design(processes, alpha, passes or MAX_PASSES), min_effect)
    verdict, reason, p = latency_verdict(worse, p_worse, p_better, min_effect, alpha if look is None else look.level)
    return LatencyComparison(verdict, ratio=ratio, ratio_low=math.exp(mean - half),
                             ratio_high=math.exp(mean + half), p_value=p, reason=reason, log_se=error, df=n - 1,
                             look=look, **common)


def _look(worse: float, error: float, df: int, blocks: int, processes: int, passes: int, alpha: float,
          min_effect: float) -> Look | None:
    """The sequential design's look after ``blocks`` blocks (None without a design)."""
    if processes < MIN_PROCESS_PAIRS:
        return None
    design = Design(processes, alpha, passes)
    at = min(blocks, design.max_blocks)  # more blocks than the cap (a hand-made file): judged at the cap
    level = design.level(at)
    stop = Stop(int(stop_rule(worse, error, df, level, min_effect)))
    # What the sequence could have seen, not this look alone: the cap's t-test (its level, every process
    # pair) at this look's precision, which a sequence carried on to the cap would at least have had, and
    # never less than the minimum effect: below it the equivalence stop passes a change early by design
    # (simulated in tests/decide/test_sequential.py: at 1 + min_effect, 96-99 % caught).
    cap_test = detectable_ratio(error, processes - 1, min_effect, design.level(design.max_blocks))
    detectable = None if cap_test is None else max(1.0 + min_effect, cap_test)
    return Look(at - design.first_look + 1, blocks, design.max_blocks, level, stop, detectable,
                budgeted=design.passes < MAX_PASSES)


def _limits(look: Look, base: Sequence[RunFigure], change: Sequence[RunFigure], design: Design,
            min_effect: float) -> Look:
    """A final look that could not see its minimum effect, with what limited it: its blocks' spread
    within and between process pairs, and about how many processes a side would have seen it."""
    spread = block_spread(base, change)
    if spread is None:  # one pass (a budget's cap): the noise within a pair is unknown
        return look
    return replace(look, spread=spread, processes_needed=processes_to_detect(spread, design, min_effect))


def _drift(base: Sequence[RunFigure], change: Sequence[RunFigure]) -> float:
    ratios = [c.control / b.control for b, c in zip(base, change) if b.control and c.control]
    return float(np.median(ratios)) if ratios else 1.0

