"""The highest arrival rate at which every objective's percentile still holds.

As MLPerf LoadGen's Server scenario does, the search runs whole load runs at trial rates: it
climbs by a factor from a starting rate until a rate fails (or lowers it until one holds), then
bisects between the highest rate that held and the lowest that failed, for a bounded number of
runs. The answer is that bracket, not a point: the highest passing rate is reported together with
the failing rate above it and the requests each trial sent, so a reader sees how sure it is.
Latency under load is noisy, so a rate that held once is not guaranteed to hold every time; the
requests at each trial say how much a percentile such as p99 could be trusted there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from modelperf.serve.figures import LoadSummary

__all__ = ["RateSearch", "RateTrial", "search_max_rate"]


@dataclass(frozen=True)
class RateTrial:
    rate: float
    held: bool
    sent: int
    completed: int
    observed_s: tuple[float, ...]  # each objective's observed percentile, in the objectives' order


@dataclass(frozen=True)
class RateSearch:
    """``max_rate`` held and ``failed_rate`` (the lowest above it) did not; either may be None when the
    search never found such a rate within its bounds."""

    max_rate: float | None
    failed_rate: float | None
    trials: tuple[RateTrial, ...]

    @property
    def relative_bracket(self) -> float | None:
        """How far apart the bracket's ends are, as a share of the rate that held (0.1: within 10 %)."""
        if self.max_rate is None or self.failed_rate is None:
            return None
        return self.failed_rate / self.max_rate - 1.0


def search_max_rate(run_at: Callable[[float], LoadSummary], *, start: float, max_runs: int = 6,
                    factor: float = 2.0, tolerance: float = 0.1, lowest: float = 1e-3) -> RateSearch:
    """Find the highest rate whose objectives hold, with at most ``max_runs`` calls of ``run_at(rate)``.

    ``run_at`` runs one bounded load at a rate and returns its summary (with objectives). The search
    stops early once the bracket is narrower than ``tolerance`` (relative), and never tries a rate
    below ``lowest``.
    """
    if not (start > 0 and factor > 1 and max_runs >= 1 and tolerance > 0):
        raise ValueError("search_max_rate needs start > 0, factor > 1, max_runs >= 1 and tolerance > 0.")
    trials: list[RateTrial] = []
    held_at: float | None = None
    failed_at: float | None = None

    def trial(rate: float) -> bool:
        summary = run_at(rate)
        observed = tuple(result.observed_s for result in summary.objectives)
        trials.append(RateTrial(rate, summary.held, summary.sent, summary.completed, observed))
        return summary.held

    rate = start
    while len(trials) < max_runs:
        if held_at is not None and failed_at is not None:
            if failed_at / held_at - 1.0 <= tolerance:
                break
            rate = math.sqrt(held_at * failed_at)  # bisection on a log scale: rates span decades
        elif held_at is not None:
            rate = held_at * factor
        elif failed_at is not None:
            rate = failed_at / factor
            if rate < lowest:
                break
        if trial(rate):
            held_at = rate if held_at is None else max(held_at, rate)
        else:
            failed_at = rate if failed_at is None else min(failed_at, rate)
    return RateSearch(held_at, failed_at, tuple(trials))
