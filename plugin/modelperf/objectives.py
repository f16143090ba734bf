"""Latency objectives of a serving test: durations such as ``"500 ms"`` and keys such as ``ttft_p99``.

An objective says that one latency figure, at one percentile over a run's requests, stays at or
under a limit: ``{"ttft_p99": "500 ms", "tpot_p99": "50 ms"}`` reads "99 % of requests see their
first token within half a second, and 99 % generate later tokens at 50 ms each or faster".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

__all__ = ["Metric", "Objective", "parse_duration", "parse_objective_key", "parse_slo"]

# Seconds per unit; ASCII spellings first, then the micro sign people paste from documents.
_UNITS: dict[str, float] = {
    "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "usec": 1e-6,
    "ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
}
# ASCII digits only: \d would accept digits of other scripts, which nobody means in a duration.
_DURATION_RE = re.compile(r"\s*(?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+)\s*(?P<unit>[^\s0-9.]*)\s*")
_DURATION_HINT = "write a number and a unit such as '500 ms', '0.5 s' or '2 min'"
_KEY_RE = re.compile(r"(?P<metric>[a-z0-9]+)_p(?P<percentile>[0-9]+(?:\.[0-9]+)?)")


class Metric(str, Enum):
    """The latency figures an objective may name."""

    TTFT = "ttft"  # time to first token: request sent to first streamed token
    TPOT = "tpot"  # time per output token after the first, one request's mean
    ITL = "itl"  # inter-token latency: each gap between consecutive streamed tokens
    E2E = "e2e"  # end to end: request sent to the last byte of the response


@dataclass(frozen=True)
class Objective:
    """``metric`` at ``percentile`` (0-100, exclusive) must be at most ``limit_s`` seconds."""

    metric: Metric
    percentile: float
    limit_s: float

    @property
    def key(self) -> str:
        """The objective's name as users write it, e.g. ``ttft_p99``."""
        return f"{self.metric.value}_p{self.percentile:g}"


def parse_duration(text: str | float, *, where: str | None = None) -> float:
    """Seconds in ``text`` (``"500 ms"``, ``"0.5 s"``, ``"2 min"``); a plain int or float is seconds.

    A string without a unit is refused: "500" could mean milliseconds or seconds. ``where`` (e.g.
    ``"slo['ttft_p99']"``) is named in the error, one sentence raised as :class:`ValueError`.
    """
    origin = f" given in {where}" if where else ""
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise TypeError(f"Cannot read the duration {text!r}{origin}: {_DURATION_HINT}.")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _DURATION_RE.fullmatch(text)
        if match is None:
            negative = text.strip().startswith("-")
            reason = " (a duration cannot be negative)" if negative else ""
            raise ValueError(f"Cannot read the duration {text!r}{origin}{reason}: {_DURATION_HINT}.")
        unit = match["unit"]
        if not unit:
            raise ValueError(f"The duration {text!r}{origin} has no unit: {_DURATION_HINT}.")
        factor = _UNITS.get(unit, _UNITS.get(unit.lower()))
        if factor is None:
            raise ValueError(f"Cannot read the duration {text!r}{origin} ('{unit}' is not a time unit): "
                             f"{_DURATION_HINT}.")
        value = float(match["number"]) * factor
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"The duration {text!r}{origin} is not a finite number of seconds of at least 0: "
                         f"{_DURATION_HINT}.")
    return value


def parse_objective_key(key: str) -> tuple[Metric, float]:
    """(metric, percentile) of a key such as ``ttft_p99`` or ``itl_p99.9``."""
    match = _KEY_RE.fullmatch(key.strip().lower())
    names = ", ".join(m.value for m in Metric)
    if match is None or match["metric"] not in {m.value for m in Metric}:
        raise ValueError(f"Cannot read the objective {key!r}: write a figure ({names}), '_p' and a percentile, "
                         "e.g. 'ttft_p99' or 'tpot_p90'.")
    percentile = float(match["percentile"])
    if not 0 < percentile < 100:
        raise ValueError(f"The objective {key!r} names percentile {percentile:g}: give one between 0 and 100, "
                         "e.g. 'ttft_p99'.")
    return Metric(match["metric"]), percentile


def parse_slo(slo: Mapping[str, str | float]) -> tuple[Objective, ...]:
    """Objectives from a mapping such as ``{"ttft_p99": "500 ms", "tpot_p99": 0.05}``, in key order."""
    objectives = []
    for key, limit in slo.items():
        metric, percentile = parse_objective_key(key)
        seconds = parse_duration(limit, where=f"the objective {key!r}")
        if seconds <= 0:
            raise ValueError(f"The objective {key!r} has a limit of {limit!r}: give a time above 0, e.g. '500 ms'.")
        objectives.append(Objective(metric, percentile, seconds))
    keys = [o.key for o in objectives]
    if len(set(keys)) != len(keys):
        raise ValueError(f"The objectives {keys} name one figure and percentile twice: keep one limit for each.")
    return tuple(objectives)
