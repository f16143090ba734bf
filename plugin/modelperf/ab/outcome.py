"""What ``--against``'s workers replied, read: a test's outcome, its figures, and a latency test's two sides.

:class:`~modelperf.ab.runner.AgainstRunner` runs a test on both sides' workers; the functions here
hold no worker and no state. :func:`outcome_of` is what a test's report says, from its change run;
:func:`measurements` the figures a reply carries; :func:`not_compared` one side's figure with the
sentence saying why it has nothing to compare with; :func:`pooled_sides` each side's runs of a latency
test pooled into the two figures the judge compares, the change's carrying the paired runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from modelperf import decide
from modelperf.ab.workers import Reply
from modelperf.judge import Reference, Rules, judge
from modelperf.markers import MARKERS, LatencyOptions
from modelperf.measure.latency import pool_runs
from modelperf.records import LatencyDetail, Measurement, PairedRuns, TestResult

__all__ = ["RULES", "TestOutcome", "first_line", "measurements", "not_compared", "outcome_of", "pooled_sides",
           "seconds_per_call"]


@dataclass
class TestOutcome:
    """What one test's report says, and the results it carries."""

    __test__ = False  # not a pytest test class, whatever its name

    outcome: str  # passed, failed or skipped
    longrepr: str = ""
    results: list[TestResult] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    # Why the base side measured nothing to compare with, when that is a fault there (not a new test).
    base_fault: str | None = None


def measurements(reply: Reply) -> list[Measurement]:
    """The figures a worker's reply carries."""
    return [TestResult.from_json(r).measurement for r in reply.results]


# Side by side: the base's figure is measured beside the change's, never stored.
RULES = Rules(side_by_side=True)


def not_compared(change: Measurement, why: str) -> TestResult:
    """The change side's figure alone, with the sentence saying why it has nothing to compare with."""
    return judge(change, Reference(None, why), MARKERS[change.kind.value](), RULES)


def first_line(text: str) -> str:
    """The line of a failed test's report that says why (its first ``E`` line, else its last line)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    return (errors or lines or ["no message"])[-1 if not errors else 0].removeprefix("E ").strip()[:300]


def outcome_of(change: Reply) -> TestOutcome:
    """The report of a test from its change run (results are added by the caller)."""
    if change.outcome == "died":
        return TestOutcome("failed", change.longrepr)
    return TestOutcome(change.outcome if change.outcome != "missing" else "failed", change.longrepr,
                       lines=list(change.lines), models=dict(change.models))


def pooled_sides(runs: Mapping[str, Sequence[Reply]], options: LatencyOptions, ref: str,
                 processes: int, passes: int = 0) -> tuple[Measurement, Measurement] | None:
    """(base, change): each side's runs pooled into one figure, the change's carrying the paired runs
    (run ``i`` came from process ``i % processes``, as the blocks go, each reduced by the change's
    marker's statistic on both sides) and the ``passes`` its design allowed; None when some run
    measured nothing."""
    sides = {side: [measurements(r) for r in replies] for side, replies in runs.items()}
    if any(not m for measured in sides.values() for m in measured):
        return None
    figures = {side: tuple(decide.run_of(m[0], i % processes, options.statistic)
                           for i, m in enumerate(measured)) for side, measured in sides.items()}
    paired = PairedRuns(ref, options.min_effect, options.statistic, figures["base"], figures["change"], processes,
                        passes)
    base, change = (pool_runs([m[0] for m in sides[side]]) for side in ("base", "change"))
    return base, replace(change, latency=replace(change.latency or LatencyDetail(), paired=paired))


def seconds_per_call(runs: Mapping[str, Sequence[Reply]]) -> float | None:
    """The test's time per call from the first block (the faster side's median round), or None
    before it; both sides get the same, so they choose the same rounds."""
    medians = []
    for side in ("base", "change"):
        measured = measurements(runs[side][0]) if runs[side] else []
        if measured and measured[0].samples:
            medians.append(statistics.median(measured[0].samples))
    return min(medians) if len(medians) == 2 else None
