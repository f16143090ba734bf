"""``--against``'s sequential design: look at the paired evidence after every block, stop once the verdict is sure.

A test's blocks (one run of a base process beside one run of a change process, see
:mod:`modelperf.decide.paired`) are looked at after each block from the third on, when the t-test over
process pairs has its :data:`~modelperf.vocab.MIN_PROCESS_PAIRS` pairs. At each look one of three
things happens:

- **regressed / improved**, from the end of the first pass over the processes on: the one-sided
  t-test over the pairs is significant at this look's *nominal level* and the ratio is past the
  alarm line (0.6 of ``min_effect``, as everywhere). Not before: a t-test of 3 to 5 pairs at the tiny
  level of an early look needs a t of 10 to 60, so those looks would spend alpha and catch nothing;
- **pass, equivalent**: the ``1 - 2 * FUTILITY`` interval of the ratio lies inside
  ``(1 / (1 + m), 1 + m)`` with ``m = EQUIVALENCE_SHARE * min_effect``: a change of that size, either
  way, is ruled out (a two one-sided tests equivalence check at ``FUTILITY`` each). The margin lies
  below the minimum effect so that a change *of* the minimum effect seldom stops here, however many
  looks the sequence takes (see :data:`EQUIVALENCE_SHARE`);
- otherwise another block, up to the design's cap (:data:`MAX_PASSES` passes over the processes, or
  fewer where a pass takes long: :func:`passes_within`); at the cap the verdict is the look's, a
  pass unless it is significant and past the line.

The nominal levels come from a group-sequential design with Lan-DeMets alpha spending: the marker's
``alpha`` (one-sided, for each direction) is spent over the looks by the Hwang-Shih-DeCani function
with gamma -4 (:func:`hsd_spending`, O'Brien-Fleming-like: little early, most at the cap, so a close
call loses little power against a single test at the cap) over the looks from the first pass's end,
the information time of a look being its share of the cap's blocks. The boundaries are the standard recursive numerical integration of the
score process (Jennison & Turnbull, *Group Sequential Methods*, 2000, ch. 19; Lan & DeMets,
Biometrika 70, 1983; Hwang, Shih & DeCani, Statistics in Medicine 9, 1990), and each z boundary is
used as a nominal one-sided p for the t-test of the look (Jennison & Turnbull §3.8). The equivalence
stops are non-binding: they only ever end a sequence without an alarm, so the false-alarm rate
stays at most ``alpha`` a direction. ``tests/decide/test_sequential.py`` checks both by simulation.

Counting blocks as information is exact when a block's noise dominates and conservative when a
process pair's own offset does (more blocks of the same pairs then add less information than
counted, so the looks are more alike than the boundaries assume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import numpy as np
from scipy import optimize, stats

from modelperf.decide._checks import Array
from modelperf.decide.latency import EFFECT_SHARE, detectable_ratio
from modelperf.vocab import MIN_PROCESS_PAIRS

__all__ = ["EQUIVALENCE_SHARE", "FUTILITY", "MAX_ADVISED_PROCESSES", "MAX_PASSES", "SPENDING_GAMMA", "BlockSpread",
           "Design", "Look", "Stop", "equivalent", "hsd_spending", "nominal_levels", "passes_within",
           "processes_to_detect", "stop_rule"]

# --against measures a close call for at most this many passes over its processes: at the block
# spread of the noisiest shipped test (Llama decode), 4 passes leave a tenth of 5 % slowdowns
# uncaught and 6 about half as many, while a test that is a clear pass stops long before
# (docs/concepts/design-measurements.md#against-passes).
MAX_PASSES = 6
# The Hwang-Shih-DeCani parameter of the alpha spending: -4 resembles O'Brien-Fleming's boundaries
# (and is gsDesign's default), keeping the cap's level near the single test's.
SPENDING_GAMMA = -4.0
# The equivalence stop rules out a change of this share of the minimum effect, at one-sided error
# FUTILITY a look. Its error is per look, not spent over the looks (a stop for a pass cannot add a
# false alarm), so at a margin of the whole minimum effect a change of exactly that size ended as a
# pass at some look in 3.5-5.5 % of simulated sequences (1 % a look, up to 60 looks): the gate caught 45 of 48
# +5 % slowdowns at 19a6e52, two of the misses Llama decode passing at x1.036 after 3 blocks and x1.020
# after 8. A margin of 0.7 keeps a change of the minimum effect well outside the region the stop
# accepts, so that looser per-look error still lets unchanged tests stop as early as before. Simulated
# at 10 processes a side (python benchmarks/sequential_simulation.py), at block spreads of 1-4 %: +5 %
# caught in 96.5-99.99 % of sequences (margin 1 and 1 % a look: 94.6-96.5 %), unchanged tests stopping
# after 3.1-9.1 blocks on average (3.3-9.3). Measured, the gate caught 47 of 48 at df03228, but its
# A/A tests took more blocks than at 509098f (decode 14.7 against 10.8 on average): real A/A ratios sit
# up to 2 % from 1, which the model lacks and the tighter margin feels (docs/trust.md#against-sequential),
# and the whole suite under --against took 2.26x a single run at 8d8e4e6, against 1.25x at 509098f with
# the old margin (docs/trust.md#what-against-costs).
EQUIVALENCE_SHARE = 0.7
FUTILITY = 0.05
# Points of the numerical integration's grid: boundaries within 0.3 % of a 1500-point grid's.
_GRID = 400
_GRID_SD = 9.0  # the grid's lower end, in standard deviations of the score
_LARGEST_Z = 12.0  # a look that spends nothing gets this boundary (no alarm is possible there)


def passes_within(budget: float, pass_seconds: float) -> int:
    """The passes a test's sequence may take when one pass over the processes takes ``pass_seconds``
    and the test has ``budget`` seconds (``--against-budget``; 0: no limit): as many as fit, at least
    one, at most :data:`MAX_PASSES`.

    The cap is fixed from the first blocks' times, before the first look, and the alpha spending is
    planned over it, so a shorter cap keeps the false-alarm bound; what it costs is precision, and the
    stated power says how much.
    """
    if not budget > 0 or not pass_seconds > 0:
        return MAX_PASSES
    return max(1, math.floor(min(budget / pass_seconds, MAX_PASSES)))  # min first: a tiny pass gives inf


def hsd_spending(t: float, alpha: float, gamma: float = SPENDING_GAMMA) -> float:
    """The share of ``alpha`` spent by information time ``t`` in [0, 1] (Hwang, Shih & DeCani 1990)."""
    t = min(max(t, 0.0), 1.0)
    if gamma == 0:
        return alpha * t
    return min(alpha, alpha * (1.0 - math.exp(-gamma * t)) / (1.0 - math.exp(-gamma)))  # never past alpha by rounding


@lru_cache(maxsize=64)
def nominal_levels(times: tuple[float, ...], alpha: float, gamma: float = SPENDING_GAMMA) -> tuple[float, ...]:
    """The nominal one-sided level of each look at information ``times`` (increasing, ending at 1):
    a standard normal statistic that crosses ``stats.norm.isf(level)`` at the first look where it
    does spends, over all looks, ``alpha`` as :func:`hsd_spending` allots it.

    The score process W(t) (independent normal increments, variance t under no change) is carried
    on a grid below each boundary; the boundary of each look is solved so that the probability of
    crossing it there, not having crossed before, is the alpha allotted to that look.
    """
    if not times or any(b <= a for a, b in zip((0.0, *times), times)) or times[-1] > 1.0 + 1e-12:
        raise ValueError(f"information times {times!r} must increase within (0, 1].")
    levels: list[float] = []
    carried: tuple[Array, Array] | None = None  # grid points, and the sub-density there times the trapezoid weights
    spent, previous = 0.0, 0.0
    for t in times:
        step = math.sqrt(t - previous)
        allotted = hsd_spending(t, alpha, gamma) - spent
        if allotted <= 1e-15:
            z = _LARGEST_Z
        else:
            z = float(optimize.brentq(_excess, -_LARGEST_Z, _LARGEST_Z, args=(t, step, carried, allotted),
                                      xtol=1e-10))
            spent += _crossing(z, t, step, carried)
        levels.append(float(stats.norm.sf(z)))
        points = np.linspace(-_GRID_SD * math.sqrt(t), z * math.sqrt(t), _GRID)
        weights = np.full(_GRID, points[1] - points[0])
        weights[[0, -1]] *= 0.5
        if carried is None:
            density = stats.norm.pdf(points / math.sqrt(t)) / math.sqrt(t)
        else:
            density = (stats.norm.pdf((points[:, None] - carried[0][None, :]) / step) / step) @ carried[1]
        carried, previous = (points, density * weights), t
    return tuple(levels)


def _crossing(z: float, t: float, step: float, carried: tuple[Array, Array] | None) -> float:
    """P(the score crosses z * sqrt(t) at time t, not having crossed before), from the carried sub-density."""
    if carried is None:
        return float(stats.norm.sf(z))
    grid, mass = carried
    return float(np.sum(mass * stats.norm.sf((z * math.sqrt(t) - grid) / step)))


def _excess(z: float, t: float, step: float, carried: tuple[Array, Array] | None, allotted: float) -> float:
    return _crossing(z, t, step, carried) - allotted


@dataclass(frozen=True)
class Design:
    """The looks of one test: ``processes`` pairs a pass, at most :data:`MAX_PASSES` passes."""

    processes: int
    alpha: float
    passes: int = MAX_PASSES

    @property
    def max_blocks(self) -> int:
        return self.processes * self.passes

    @property
    def first_look(self) -> int:
        return MIN_PROCESS_PAIRS

    def level(self, blocks: int) -> float:
        """The nominal one-sided level of the look after ``blocks`` blocks; 0 (no alarm possible) before
        the first pass is complete."""
        if not self.first_look <= blocks <= self.max_blocks:
            raise ValueError(f"no look after {blocks} blocks: looks run from {self.first_look} to {self.max_blocks}.")
        if blocks < self.processes:
            return 0.0
        looks = range(self.processes, self.max_blocks + 1)
        return nominal_levels(tuple(b / self.max_blocks for b in looks), self.alpha, SPENDING_GAMMA)[blocks - self.processes]


@dataclass(frozen=True)
class BlockSpread:
    """Where the spread of a paired comparison comes from, in log ratio (0.03: about 3 %); see
    :func:`modelperf.decide.paired.block_spread`.

    ``within``: the sd of one block's log ratio around its process pair's mean: the noise more passes
    over the same processes average away. ``between``: the sd of the pairs' own means beyond what
    their blocks' noise explains (one-way random effects, method of moments, floored at 0): an offset
    a pair keeps for the session, which only more process pairs average away.
    """

    within: float
    between: float
    pairs: int
    blocks: int


# The most processes a side that an underpowered verdict's advice names: each is a worker with its own
# models in memory, and past this count the machine is too noisy for the minimum effect, whatever it has.
MAX_ADVISED_PROCESSES = 64


def processes_to_detect(spread: BlockSpread, design: Design, min_effect: float) -> int | None:
    """About how many processes a side a design like ``design`` (its passes, its cap's level) needs for
    its cap's t-test to catch ``1 + min_effect`` with 95 % probability at these spreads; None past
    :data:`MAX_ADVISED_PROCESSES`.

    At the cap each pair's mean has variance ``between**2 + within**2 / passes``. The cap's level barely
    moves with the processes (at alpha 0.01 and 6 passes: 0.0060 at 10 a side, 0.0055 at 64), so the
    design's own level stands for all counts: one numerical integration, not one per count. The whole
    sequence catches that change a little less often than its cap's test alone (an early equivalence
    stop ends a few such sequences as a pass): simulated at block and pair spreads of 8 and 2 %, the
    14 processes named caught +5 % in 91.7 % of 2000 sequences (tests/decide/test_sequential.py).
    """
    level = design.level(design.max_blocks)
    pair_variance = spread.between**2 + spread.within**2 / design.passes
    for processes in range(MIN_PROCESS_PAIRS, MAX_ADVISED_PROCESSES + 1):
        cap = detectable_ratio(math.sqrt(pair_variance / processes), processes - 1, min_effect, level)
        if cap is not None and cap <= 1 + min_effect:
            return processes
    return None


class Stop(IntEnum):
    """Why a look ends the sequence (the codes :func:`stop_rule` returns)."""

    GO_ON = 0
    REGRESSED = 1
    IMPROVED = 2
    EQUIVALENT = 3


def equivalent(mean: Array | float, se: Array | float, df: int, min_effect: float) -> Array:
    """True where the ``1 - 2 * FUTILITY`` t interval of the mean log ratio lies inside
    +-log(1 + EQUIVALENCE_SHARE * min_effect)."""
    half = float(stats.t.isf(FUTILITY, df)) * np.asarray(se, dtype=float)
    bound = math.log1p(EQUIVALENCE_SHARE * min_effect)
    return np.asarray((np.asarray(mean) + half < bound) & (np.asarray(mean) - half > -bound))


def stop_rule(mean: Array | float, se: Array | float, df: int, level: float, min_effect: float) -> Array:
    """The :class:`Stop` code of a look, elementwise: ``mean`` and ``se`` of the log ratio ("worse"
    is positive) over ``df + 1`` process pairs, at the look's nominal one-sided ``level``.

    Pure and vectorised, so that the simulation in the tests runs the very rule the plugin runs.
    """
    mean = np.asarray(mean, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, mean / se, np.sign(mean) * np.inf)
    critical = float(stats.t.isf(level, df))
    line = math.log1p(EFFECT_SHARE * min_effect)  # the alarm line
    codes = np.full(np.broadcast(mean, se).shape, int(Stop.GO_ON))
    codes = np.where(equivalent(mean, se, df, min_effect), Stop.EQUIVALENT, codes)
    codes = np.where((t > critical) & (mean >= line), Stop.REGRESSED, codes)
    codes = np.where((t < -critical) & (mean <= -line), Stop.IMPROVED, codes)
    return codes


@dataclass(frozen=True)
class Look:
    """Where a sequence of blocks stood when it was judged: its look, blocks, level and whether it ends."""

    number: int  # 1 for the first look (after MIN_PROCESS_PAIRS blocks)
    blocks: int
    max_blocks: int
    level: float  # the nominal one-sided level of this look
    stop: Stop
    detectable: float | None  # the stated power at this look (see modelperf.decide.paired)
    budgeted: bool = False  # the cap is below MAX_PASSES passes: a pass took long (passes_within)
    # Where a final look that could not see its minimum effect lost its precision, and about how many
    # processes a side would have seen it (None: more than MAX_ADVISED_PROCESSES); unset otherwise.
    spread: BlockSpread | None = None
    processes_needed: int | None = None

    @property
    def final(self) -> bool:
        return self.stop != Stop.GO_ON or self.blocks >= self.max_blocks

    def text(self) -> str:
        why = {Stop.REGRESSED: "past the sequential boundary", Stop.IMPROVED: "past the sequential boundary",
               Stop.EQUIVALENT: f"its {100 - 200 * FUTILITY:g} % interval inside {100 * EQUIVALENCE_SHARE:g} % "
                                "of the minimum effect"}
        cap = "the cap --against-budget allowed" if self.budgeted else "the cap"
        ended = why.get(self.stop, cap if self.blocks >= self.max_blocks else "going on")
        return f"{self.blocks} of up to {self.max_blocks} blocks, look {self.number}: {ended}{self._limits()}"

    def _limits(self) -> str:
        if self.spread is None:
            return ""
        need = (f"about {self.processes_needed} processes a side (--against-processes) would see"
                if self.processes_needed is not None else
                f"more than {MAX_ADVISED_PROCESSES} processes a side would be needed to see")
        return (f"; its blocks varied {self.spread.within:.1%} within a process pair, the pairs "
                f"{self.spread.between:.1%} between them: {need} its minimum effect at this noise")
