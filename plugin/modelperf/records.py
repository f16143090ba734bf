"""The record types that flow from measuring to deciding, storing and reporting.

A :class:`Measurement` is plain data: numbers, samples and JSON-safe extras. It knows nothing of
pytest, of baselines or of how it was measured, so every layer can pass it around and the store
can write it as JSON without special cases. A :class:`TestResult` is one measurement with the
verdict of its comparison, and :class:`SessionResults` is everything a finished session hands to
the reports and writers. All three round-trip through JSON unchanged, which is how a pytest-xdist
worker (or any worker process) hands its results to the process that reports them.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

__all__ = ["RECORDED", "REGRESSED", "SCHEMA_VERSION", "Kind", "Measurement", "SessionResults", "TestResult"]

# Bump when the JSON layout of a stored Measurement changes; readers refuse unknown versions.
SCHEMA_VERSION = 1
# The verdict of a figure that was not compared and becomes a baseline; the others are decide.Verdict's values.
RECORDED = "recorded"
REGRESSED = "regressed"  # decide.Verdict.REGRESSED.value, spelled here so records imports nothing of ours


class Kind(str, Enum):
    """What a measurement is about; also the name of the marker that produces it."""

    LATENCY = "latency"
    MEMORY = "peak_memory"
    ACCURACY = "accuracy"


@dataclass(frozen=True)
class Measurement:
    """One figure for one test, with the raw data behind it.

    ``value`` is the headline (a median in seconds, a peak in bytes, an accuracy in [0, 1]).
    ``samples`` keeps the raw observations the headline came from: per-round seconds for latency,
    per-example correctness (0/1) for accuracy, a single peak for memory. ``control`` holds the
    seconds of the fixed control workload measured beside a latency test, so a later run can
    correct for how fast the machine is right now. ``model`` is ``"<name>@<weights-sha12>"`` or
    ``None`` when the test used no model fixture.
    """

    test_id: str
    kind: Kind
    metric: str
    unit: str
    value: float
    samples: tuple[float, ...] = ()
    control: tuple[float, ...] = ()
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The identity under which baselines and history file this figure."""
        return f"{self.test_id}::{self.metric}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["samples"] = list(self.samples)
        data["control"] = list(self.control)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        return cls(
            test_id=str(data["test_id"]),
            kind=Kind(data["kind"]),
            metric=str(data["metric"]),
            unit=str(data["unit"]),
            value=float(data["value"]),
            samples=tuple(float(x) for x in data.get("samples", ())),
            control=tuple(float(x) for x in data.get("control", ())),
            model=data.get("model"),
            extra=dict(data.get("extra", {})),
        )

    def summary(self) -> dict[str, float]:
        """Summary statistics of the samples (empty when there are fewer than two)."""
        if len(self.samples) < 2:
            return {}
        ordered = sorted(self.samples)
        quartiles = statistics.quantiles(ordered, n=20)
        return {
            "min": ordered[0],
            "median": statistics.median(ordered),
            "mean": statistics.fmean(ordered),
            "stddev": statistics.stdev(ordered),
            "p95": quartiles[-1],
            "max": ordered[-1],
            "n": float(len(ordered)),
        }


# Optional figures of a comparison, written to JSON only when present (the layout of --results-json).
_FIGURES = ("ratio", "ratio_low", "ratio_high", "drift", "p_value", "section")


@dataclass(frozen=True)
class TestResult:
    """One measured figure of one test and what its comparison with the baseline said.

    ``line`` is the sentence people read; ``baseline`` the compared baseline value (None when nothing was
    compared); ``ratio`` (with its interval ``ratio_low``-``ratio_high``), ``drift`` and ``p_value`` the
    latency figures; ``section`` a report section to
    attach to a failed test (memory's largest allocations); ``pid`` the process that measured it.
    """

    __test__ = False  # not a pytest test class, whatever its name

    measurement: Measurement
    line: str
    verdict: str = RECORDED
    baseline: float | None = None
    ratio: float | None = None
    drift: float | None = None
    p_value: float | None = None
    section: str | None = None
    pid: int = 0
    ratio_low: float | None = None  # the ratio's 95 % interval, what the verdict was made on
    ratio_high: float | None = None

    @property
    def regressed(self) -> bool:
        return self.verdict == REGRESSED

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"measurement": self.measurement.to_json(), "line": self.line,
                                "verdict": self.verdict, "baseline": self.baseline, "pid": self.pid}
        data.update({name: getattr(self, name) for name in _FIGURES if getattr(self, name) is not None})
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestResult:
        def number(name: str) -> float | None:
            return None if data.get(name) is None else float(data[name])

        return cls(Measurement.from_json(data["measurement"]), str(data["line"]), str(data["verdict"]),
                   number("baseline"), number("ratio"), number("drift"), number("p_value"),
                   None if data.get("section") is None else str(data["section"]), int(data.get("pid", 0)),
                   number("ratio_low"), number("ratio_high"))


@dataclass(frozen=True)
class SessionResults:
    """Everything a finished ``--benchmark`` session reports: results, models, machine and notes.

    ``models`` maps a model fixture name to its info (``ModelInfo.as_dict()``); ``sections`` maps a
    summary section's title to its lines, in the order they were added.
    """

    results: tuple[TestResult, ...] = ()
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    machine: Mapping[str, Any] = field(default_factory=dict)
    hardware_id: str = ""
    notes: tuple[str, ...] = ()
    sections: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    commit: str | None = None
    dirty: bool = False
    against: str | None = None  # the base side of an --against session ("main (1a2b3c4d5e)"), else None

    def to_json(self) -> dict[str, Any]:
        return {"results": [r.to_json() for r in self.results], "models": {k: dict(v) for k, v in self.models.items()},
                "machine": dict(self.machine), "hardware_id": self.hardware_id, "notes": list(self.notes),
                "sections": {k: list(v) for k, v in self.sections.items()}, "commit": self.commit, "dirty": self.dirty,
                "against": self.against}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionResults:
        return cls(tuple(TestResult.from_json(r) for r in data.get("results", ())),
                   {str(k): dict(v) for k, v in data.get("models", {}).items()}, dict(data.get("machine", {})),
                   str(data.get("hardware_id", "")), tuple(str(n) for n in data.get("notes", ())),
                   {str(k): tuple(str(x) for x in v) for k, v in data.get("sections", {}).items()},
                   data.get("commit"), bool(data.get("dirty", False)), data.get("against"))
