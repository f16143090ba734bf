"""How far one session's latency figure strays from another's of the same code, and the spread a verdict uses.

A stored comparison sets one session's figure against another's, so its interval must hold the
between-session spread of that figure (:func:`~modelperf.decide.latency.compare_latency`). That
spread differs by test and by statistic: on the 2-core VM the Llama tests' lower deciles moved
1.4-2.6 % (sd) between sessions and DistilBERT's 2-6 %, and tail percentiles more. So each figure
gets its own (:class:`SpreadTable`): the spread measured for its test and statistic in the history,
pooled within sessions of one code, once there are enough sessions; a default until then, larger
for tail percentiles; or the one value the user set.

A served load figure (:mod:`modelperf.decide.load`) gets its spread the same way. It has no control
workload to correct it, and on a shared machine it moves far more than a process's latency: in 20
stored sessions of one tree on the 2-core VM (2026-12-07) the suite's served medians moved 8-35 %
(sd), while the sessions' machine speed (the median of their control floors) moved 1.5 % and
dividing by it removed none of that: the interference sat in the minutes the server was loaded. One
default for every served figure would call that noise a change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from modelperf.figures import control_for, reducer
from modelperf.records import Measurement
from modelperf.vocab import LOAD_FIGURES, STATISTICS, Kind

__all__ = ["LOAD_SPREAD", "LOAD_TAIL_FACTOR", "MIN_SPREAD_DF", "SPREAD_CONFIDENCE", "SPREAD_FLOOR", "TAIL_SPREADS",
           "PooledSpread", "SessionSpread", "SpreadTable", "corrected_log_figure", "figure_name", "pooled_spread",
           "session_log_figure", "upper_spread"]

# Fewer degrees of freedom than this (sessions less groups) give an sd that could be half or twice the truth.
MIN_SPREAD_DF = 4
# A verdict uses this upper confidence bound of the pooled sd, not the sd itself: from few sessions the
# estimate is as likely to fall short as to overshoot, and falling short makes false alarms.
SPREAD_CONFIDENCE = 0.80
# Sessions that agree closer than this were more likely run back to back than on a machine that steady.
SPREAD_FLOOR = 0.005
# Defaults for tail percentiles until the history has enough sessions. In 24 A/A sessions of the suite
# (docs/studies/stored-aa-2026-12-04*), the largest pooled p90 spread was 6.5 % and p99's reached 10 %
# (47 % for a 20-round cold load), while p10's median was 1.9 %; and one A/A pair moved the inter-token
# p90 by 13.5 % (log). With 7 %, that move is 1.4 sd of the difference of two sessions: noise, not a change.
TAIL_SPREADS: Mapping[str, float] = {"p90": 0.07, "p99": 0.10}
# A served median's default until the history holds its own. Over the first ten stored sessions of one
# tree on the 2-core VM (docs/studies/stored-aa-2026-12-07*), the suite's served medians moved 10-15 %
# (sd, log) for DistilBERT and 17-40 % for Llama (8-12 % and 13-34 % over all 20); with the latency
# default of 3 %, one A/A pair called a DistilBERT median 19 % faster "improved". With 10 %, that move
# is 1.4 sd of two sessions' difference. Llama's move more: its first 5 sessions risk a false alarm.
LOAD_SPREAD = 0.10
# A served figure's default in units of the median's: a tail of a run's requests, or the share that met
# every objective, moves more from one session to the next than their median does.
LOAD_TAIL_FACTOR: Mapping[str, float] = {"p50": 1.0, "p90": 2.0, "p99": 4.0, "goodput": 2.0}


@dataclass(frozen=True)
class PooledSpread:
    """How far one session's corrected figure strays from another's of the same code: the pooled sd
    (log scale) over groups of sessions, and its degrees of freedom (sessions less groups)."""

    sd: float
    df: int
    sessions: int

    @property
    def enough(self) -> bool:
        """True when the history holds enough repeated sessions to trust the estimate."""
        return self.df >= MIN_SPREAD_DF and math.isfinite(self.sd)


@dataclass(frozen=True)
class SessionSpread:
    """The between-session spread one comparison used (sd of one session, log scale) and where it came from."""

    value: float
    source: str = ""

    def phrase(self) -> str:
        """``"with 7 % between sessions, the default for p90 ..."``, or "" for no spread."""
        if self.value <= 0 and not self.source:
            return ""
        return f"with {self.value * 100:.2g} % between sessions" + (f", {self.source}" if self.source else "")


def upper_spread(pooled: PooledSpread, confidence: float = SPREAD_CONFIDENCE) -> float:
    """The upper ``confidence`` bound of the sd behind ``pooled`` (chi-square on its degrees of freedom)."""
    from scipy import stats

    if pooled.df <= 0 or not math.isfinite(pooled.sd):
        return math.nan
    return pooled.sd * math.sqrt(pooled.df / float(stats.chi2.ppf(1.0 - confidence, pooled.df)))


@dataclass(frozen=True)
class SpreadTable:
    """The between-session spread of every stored comparison in a session, by test and statistic.

    ``configured``: a spread the user set, used for every figure (a served tail's scaled by
    :data:`LOAD_TAIL_FACTOR`). ``default``: the spread of a figure whose history is too short, raised to
    :data:`TAIL_SPREADS` for tail percentiles and to :data:`LOAD_SPREAD` for served figures. ``history``: the
    pooled spread of each (test id, statistic or served figure) read from the history; None when there is no
    history to read.
    """

    default: float = 0.03
    configured: float | None = None
    history: Mapping[tuple[str, str], PooledSpread] | None = None

    def for_figure(self, test_id: str, statistic: str) -> SessionSpread:
        """The spread a comparison of ``test_id``'s ``statistic`` (a latency statistic, or a load figure
        such as ``e2e_p90``) uses, with the words saying where it came from."""
        if statistic == "max_rate":
            return SessionSpread(0.0)  # a search is judged by its brackets, not by an interval to widen
        if statistic in LOAD_FIGURES:
            factor = LOAD_TAIL_FACTOR["goodput" if statistic == "goodput" else statistic.rsplit("_", 1)[-1]]
            if self.configured is not None:
                return SessionSpread(self.configured * factor, "set by --session-spread"
                                     + (f", x{factor:g} for {statistic}" if factor != 1 else ""))
            default = max(self.default, LOAD_SPREAD) * factor
        elif self.configured is not None:
            return SessionSpread(self.configured, "set by --session-spread")
        else:
            default = max(self.default, TAIL_SPREADS.get(statistic, 0.0))
        if self.history is None:
            return SessionSpread(default, f"the default for {statistic} (no history to estimate it from)")
        pooled = self.history.get((test_id, statistic))
        if pooled is None or not pooled.enough:
            held = 0 if pooled is None else pooled.sessions
            return SessionSpread(default, f"the default for {statistic} until {MIN_SPREAD_DF + 1} sessions of one "
                                          f"commit exist (the history holds {held} of this test)")
        value = max(upper_spread(pooled), SPREAD_FLOOR)
        return SessionSpread(value, f"the upper {SPREAD_CONFIDENCE * 100:.0f} % bound from {pooled.sessions} "
                                    f"sessions of this test in the history (sd {pooled.sd * 100:.2g} %)")


def corrected_log_figure(measurement: Measurement) -> float | None:
    """log(statistic / control figure) of a latency measurement, as :func:`compare_latency` corrects it
    (the floor, or a tail's own percentile: :func:`modelperf.figures.control_for`);
    None when it has no control rounds or no usable samples."""
    samples = np.asarray(measurement.samples, dtype=float)
    control = np.asarray(measurement.control, dtype=float)
    if samples.size == 0 or control.size == 0 or np.any(samples <= 0) or np.any(control <= 0):
        return None
    statistic = measurement.statistic if measurement.statistic in STATISTICS else "p10"
    return float(math.log(float(reducer(statistic)(samples)) / float(control_for(statistic, control))))


def figure_name(measurement: Measurement) -> str:
    """The name a figure's spread is filed under beside its test: a latency test's statistic, a load
    test's gated figure (``e2e_p50``)."""
    return measurement.metric if measurement.kind is Kind.LOAD else measurement.statistic


def session_log_figure(measurement: Measurement) -> float | None:
    """The log figure one session contributes to its test's between-session spread: a latency figure
    corrected as its comparison corrects it, a served figure as it is (it has no control). None for
    ``--against``'s figures (a side's run, or its phases, is not a session's figure); for a max-rate
    search (its trials ran at rates the session's own outcomes chose); for a load figure recorded without
    its run's detail (histories before 2026-12-07 dropped it, and with it what tells ``--against``'s
    phases from a session); and for a figure that is not a positive number (a goodput of 0 included)."""
    if measurement.kind is Kind.LATENCY:
        paired = measurement.latency is not None and measurement.latency.paired is not None
        return None if paired else corrected_log_figure(measurement)
    detail = measurement.load
    if measurement.kind is not Kind.LOAD or measurement.metric == "max_rate" or detail is None:
        return None
    if detail.phases > 1 or detail.trials > 0:
        return None
    value = float(measurement.value)
    return math.log(value) if math.isfinite(value) and value > 0 else None


def pooled_spread(groups: list[list[float]]) -> PooledSpread:
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
    return PooledSpread(math.sqrt(squares / df) if df else math.nan, df, sessions)
