"""The gate benchmark's figures as typed, frozen records: per test, per mode, per results folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelperf.decide import wilson_interval

from ..studies import Machine

__all__ = ["COMPARED", "GateFigures", "ModeFigures", "Rate", "TestFigures"]

COMPARED = ("pass", "regressed", "improved", "inconclusive")  # verdicts of a test that both sides measured


@dataclass(frozen=True)
class Rate:
    """``count`` of ``of``, with the Wilson 95 % interval."""

    count: int
    of: int
    low: float
    high: float

    @classmethod
    def of_counts(cls, count: int, of: int) -> Rate:
        low, high = wilson_interval(count, of)
        return cls(count, of, low, high)

    @property
    def rate(self) -> float | None:
        return self.count / self.of if self.of else None

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "of": self.of, "rate": self.rate, "wilson95": [self.low, self.high]}


@dataclass(frozen=True)
class TestFigures:
    """One test's comparisons in one mode, and the spread of its paired ratio over sessions."""

    name: str
    regressed: int
    improved: int
    comparisons: int
    min_effect: float | None
    median_ratio: float | None  # of the ratios the sessions reported
    log_ratio_mean: float | None  # of the paired ratio recomputed from each session's runs
    log_ratio_sd: float | None  # its sd over sessions: how far one session's figure wanders
    log_ratio_control_sd: float | None  # the same, each run divided by its control floor first
    median_half_width: float | None  # half the width of the 95 % interval, in log, median over sessions
    median_half_width_control: float | None
    sessions_with_runs: int
    mean_passes: float | None  # passes of blocks a test took (a re-measurement adds one)
    max_passes: float | None
    # The verdicts' stated power: the smallest change each would have caught with 95 % probability
    # ("could detect >= x1.031"), median over sessions. A study checks it against the detection rate
    # measured at that size.
    median_detectable: float | None = None
    # Where a session's spread comes from (modelperf.decide.paired.block_spread), median over sessions,
    # in log: a block's noise around its process pair's mean (more passes average it away) and the pairs'
    # own offsets (only more process pairs do). Sessions that stopped within one pass give neither, so
    # these and the counts below describe the sessions that needed more: the noisier ones.
    median_block_sd: float | None = None
    median_pair_sd: float | None = None
    # The processes a side at which each session's design, at its spreads, would state the test's own
    # minimum effect, and 3 % (modelperf.decide.sequential.processes_to_detect); the lower median over
    # sessions; MAX_ADVISED_PROCESSES + 1 (65) stands for "more than 64".
    median_processes_needed: int | None = None
    median_processes_needed_small: int | None = None
    # How far one timed round of the change side strays from the next in the same run (sd of the log,
    # median over sessions): the machine's second-to-second noise, the floor under the block's spread.
    median_round_sd: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "name"}


@dataclass(frozen=True)
class ModeFigures:
    """Every session of one mode (``aa``, ``neighbour``, ``single``, ``slowdown-0.05``...)."""

    mode: str
    factor: float
    sessions: int
    unreadable_sessions: int
    skipped_results: int
    verdicts: Mapping[str, int]
    median_wall_s: float | None
    injected_processes: tuple[int, ...]  # per session with an injection log: processes that ran injected work
    false_alarms: Rate | None
    detection: Rate | None
    excluded_min_effect_above_factor: int
    excluded_no_min_effect: int
    tests: tuple[TestFigures, ...]

    @property
    def comparisons(self) -> int:
        return sum(self.verdicts.get(v, 0) for v in COMPARED)

    @property
    def not_compared(self) -> dict[str, int]:
        return {v: n for v, n in self.verdicts.items() if v not in COMPARED}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "sessions": self.sessions, "unreadable_sessions": self.unreadable_sessions,
            "skipped_results": self.skipped_results, "latency_comparisons": self.comparisons,
            **{v: self.verdicts.get(v, 0) for v in ("regressed", "improved", "inconclusive", "pass")},
            "not_compared": sum(self.not_compared.values()), "not_compared_verdicts": self.not_compared,
            "median_wall_s": self.median_wall_s, "injected_processes_per_session": list(self.injected_processes)}
        if self.false_alarms is not None:
            data["false_alarms"] = self.false_alarms.to_json()
        if self.detection is not None:
            data["detection"] = self.detection.to_json()
            data["detection_excluded_min_effect_above_factor"] = self.excluded_min_effect_above_factor
            data["detection_excluded_no_min_effect"] = self.excluded_no_min_effect
        data["tests"] = {t.name: t.to_json() for t in self.tests}
        return data


@dataclass(frozen=True)
class GateFigures:
    """A results directory's figures, per mode, and where the sessions ran."""

    results_dir: Path
    modes: tuple[ModeFigures, ...]
    revisions: tuple[str, ...]
    machine: Machine | None
    session_command: tuple[str, ...]  # one session's pytest command, as recorded

    def mode(self, name: str) -> ModeFigures | None:
        return next((m for m in self.modes if m.mode == name), None)

    @property
    def wall_ratio(self) -> float | None:
        """Median ``--against`` A/A wall time over the median single-side one: the price of the gate."""
        aa, single = self.mode("aa"), self.mode("single")
        if aa is None or single is None or not aa.median_wall_s or not single.median_wall_s:
            return None
        return aa.median_wall_s / single.median_wall_s

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"results_dir": str(self.results_dir), "revisions": list(self.revisions),
                                "machine": None if self.machine is None else self.machine.to_json(),
                                "modes": {m.mode: m.to_json() for m in self.modes}}
        if self.wall_ratio is not None:
            data["wall_ratio_against_over_single"] = self.wall_ratio
        return data
