"""The records of a load test's figures: a model behind a server under a pattern of requests.

:class:`LoadDetail` is the typed detail of a ``load`` :class:`~modelperf.records.Measurement`: the
pattern, the requests sent and completed, the percentiles of each latency figure
(:class:`LoadPercentiles`), throughput, each objective with what was observed (:class:`LoadObjective`),
goodput, and for a max-rate search its bracket. Only the load path measures, judges and reports
them, and no other kind shares their percentile and objective records, so they stand apart;
:mod:`modelperf.records` re-exports them beside the other detail records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LoadDetail", "LoadObjective", "LoadPercentiles"]


@dataclass(frozen=True)
class LoadDetail:
    """A load run's figures: its pattern, bounds, the four latency figures' percentiles, throughput,
    objectives and goodput, and for a max-rate search its bracket. ``failed`` requests count as
    infinitely slow wherever the gated figure's samples are compared."""

    pattern: str  # e.g. "Poisson 2/s (seed 0)", "4 concurrent client(s)", "max-rate search from 1/s"
    server: str  # what was loaded: the endpoint's URL and tokens per request
    duration_s: float
    sent: int
    completed: int
    failed: int
    requests_per_s: float
    output_tokens_per_s: float
    ttft: LoadPercentiles | None = None
    tpot: LoadPercentiles | None = None
    itl: LoadPercentiles | None = None
    e2e: LoadPercentiles | None = None
    goodput: float | None = None
    objectives: tuple[LoadObjective, ...] = ()
    max_rate: float | None = None  # a search's highest rate that held, and the lowest above it that did not
    failed_rate: float | None = None
    trials: int = 0
    # Under --against, the run's phases, each a share of its duration and requests on a fresh server,
    # alternating with the other side's (ABBA); the figures pool every phase's requests. 1: one run.
    phases: int = 1
    # The gated figure of each phase's requests alone (under --against; empty otherwise): the verdict
    # pairs them with the base side's phase by phase, each phase pair a unit of variation.
    phase_figures: tuple[float, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadDetail:
        def number(name: str) -> float | None:
            return None if data.get(name) is None else float(data[name])

        return cls(str(data["pattern"]), str(data.get("server", "")), float(data["duration_s"]), int(data["sent"]),
                   int(data["completed"]), int(data["failed"]), float(data["requests_per_s"]),
                   float(data["output_tokens_per_s"]), ttft=LoadPercentiles.from_json(data.get("ttft")),
                   tpot=LoadPercentiles.from_json(data.get("tpot")), itl=LoadPercentiles.from_json(data.get("itl")),
                   e2e=LoadPercentiles.from_json(data.get("e2e")), goodput=number("goodput"),
                   objectives=tuple(LoadObjective.from_json(o) for o in data.get("objectives", ())),
                   max_rate=number("max_rate"), failed_rate=number("failed_rate"), trials=int(data.get("trials", 0)),
                   phases=int(data.get("phases", 1)),
                   phase_figures=tuple(float(v) for v in data.get("phase_figures", ())))


@dataclass(frozen=True)
class LoadPercentiles:
    """One latency figure of a load run over its completed requests (seconds)."""

    p50: float
    p90: float
    p99: float
    count: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> LoadPercentiles | None:
        if data is None:
            return None
        return cls(float(data["p50"]), float(data["p90"]), float(data["p99"]), int(data["count"]))


@dataclass(frozen=True)
class LoadObjective:
    """One objective of a load run, e.g. ``ttft_p99`` at most 0.5 s, and what the run observed."""

    key: str
    limit_s: float
    observed_s: float | None  # None: no request finished (JSON has no infinity)
    held: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadObjective:
        observed = data.get("observed_s")
        return cls(str(data["key"]), float(data["limit_s"]), None if observed is None else float(observed),
                   bool(data["held"]))
