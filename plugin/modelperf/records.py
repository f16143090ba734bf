"""The one record type that flows from measuring to deciding, storing and reporting.

A :class:`Measurement` is plain data: numbers, samples and JSON-safe extras. It knows nothing of
pytest, of baselines or of how it was measured, so every layer can pass it around and the store
can write it as JSON without special cases.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

__all__ = ["SCHEMA_VERSION", "Kind", "Measurement"]

# Bump when the JSON layout of a stored Measurement changes; readers refuse unknown versions.
SCHEMA_VERSION = 1


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
