"""The figures of a load run: one record per request, and the run's summary.

Times are seconds on the client's monotonic clock, counted from the run's start. Streamed
responses are timed per chunk as they arrive; a server sends one chunk per token (llama-cpp-python,
vLLM and TGI do), so a chunk's arrival is a token's. Percentiles interpolate linearly between
order statistics (numpy's default), so small runs give the same numbers as other tools.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from modelperf.objectives import Metric, Objective
from modelperf.serve.arrivals import Limits

__all__ = [
    "LoadRun",
    "LoadSummary",
    "ObjectiveResult",
    "Percentiles",
    "RequestRecord",
    "figure_values",
    "joined",
    "percentile",
    "summarize",
]

SUMMARY_PERCENTILES = (50.0, 90.0, 99.0)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the client saw it. ``first_token_s`` is None for a response that is not
    streamed (a classifier's), ``end_s`` None for one that never finished."""

    index: int
    prompt_index: int
    scheduled_s: float | None  # when the arrival process wanted it sent (None: a closed-loop client)
    sent_s: float
    first_token_s: float | None
    end_s: float | None
    token_times_s: tuple[float, ...]
    output_tokens: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.end_s is not None

    @property
    def e2e_s(self) -> float | None:
        return None if not self.ok or self.end_s is None else self.end_s - self.sent_s

    @property
    def ttft_s(self) -> float | None:
        return None if not self.ok or self.first_token_s is None else self.first_token_s - self.sent_s

    @property
    def tpot_s(self) -> float | None:
        """Mean time per output token after the first (None with fewer than two tokens)."""
        if not self.ok or self.first_token_s is None or self.output_tokens < 2 or not self.token_times_s:
            return None
        return (self.token_times_s[-1] - self.first_token_s) / (self.output_tokens - 1)

    @property
    def itl_s(self) -> tuple[float, ...]:
        """Gaps between consecutive streamed tokens."""
        return tuple(b - a for a, b in itertools.pairwise(self.token_times_s)) if self.ok else ()


@dataclass(frozen=True)
class LoadRun:
    """Everything one bounded run sent and received."""

    target: str  # what was loaded, e.g. "llama at http://127.0.0.1:40123/v1/completions"
    pattern: str  # e.g. "Poisson 2/s (seed 0)" or "4 concurrent client(s)"
    limits: Limits
    requests: tuple[RequestRecord, ...]
    wall_s: float  # start to the last response or cut-off


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p90: float
    p99: float
    count: int  # how many values they summarise


@dataclass(frozen=True)
class ObjectiveResult:
    """One objective over a run: the observed percentile (failed requests count as infinitely slow)."""

    objective: Objective
    observed_s: float
    samples: int

    @property
    def held(self) -> bool:
        return self.observed_s <= self.objective.limit_s


@dataclass(frozen=True)
class LoadSummary:
    """A run's figures at p50/p90/p99, its throughput and, under objectives, its goodput."""

    sent: int
    completed: int
    failed: int
    ttft: Percentiles | None
    tpot: Percentiles | None
    itl: Percentiles | None
    e2e: Percentiles | None
    requests_per_s: float  # completed requests over the run's span
    output_tokens_per_s: float
    goodput: float | None  # share of sent requests meeting every objective; None without objectives
    objectives: tuple[ObjectiveResult, ...]
    mean_gap_s: float | None  # measured inter-arrival (send) times: mean and coefficient of variation
    gap_cv: float | None

    @property
    def held(self) -> bool:
        """Whether every objective's percentile held (True without objectives)."""
        return all(result.held for result in self.objectives)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; infinite values sort last."""
    if not values:
        raise ValueError("a percentile of no values is undefined: the run completed no request of this kind.")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if low == high or ordered[low] == ordered[high]:
        return ordered[low]
    if math.isinf(ordered[high]):
        return math.inf  # any weight on an infinitely slow request is infinitely slow
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _percentiles(values: Sequence[float]) -> Percentiles | None:
    if not values:
        return None
    p50, p90, p99 = (percentile(values, q) for q in SUMMARY_PERCENTILES)
    return Percentiles(p50, p90, p99, len(values))


def _request_value(record: RequestRecord, metric: Metric, q: float) -> float | None:
    """One request's figure for a per-request objective; for ITL its own q-th percentile gap."""
    if metric is Metric.ITL:
        gaps = record.itl_s
        return percentile(gaps, q) if gaps else None
    return {Metric.TTFT: record.ttft_s, Metric.TPOT: record.tpot_s, Metric.E2E: record.e2e_s}[metric]


def _run_values(records: Sequence[RequestRecord], metric: Metric) -> list[float]:
    """The run's values of ``metric`` with each failed request as +inf (ITL: every gap of every request)."""
    values: list[float] = []
    for record in records:
        if not record.ok:
            values.append(math.inf)
        elif metric is Metric.ITL:
            values.extend(record.itl_s)
        else:
            value = _request_value(record, metric, 50.0)
            if value is not None:
                values.append(value)
    return values


def _meets(record: RequestRecord, objectives: Sequence[Objective]) -> bool:
    if not record.ok:
        return False
    for objective in objectives:
        value = _request_value(record, objective.metric, objective.percentile)
        if value is not None and value > objective.limit_s:
            return False
    return True


def _gaps(records: Sequence[RequestRecord]) -> tuple[float | None, float | None]:
    sends = sorted(r.sent_s for r in records)
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    if len(gaps) < 2:
        return None, None
    mean = statistics.fmean(gaps)
    return mean, (statistics.stdev(gaps) / mean if mean > 0 else None)


def summarize(run: LoadRun, objectives: Sequence[Objective] = ()) -> LoadSummary:
    """The summary of ``run`` under ``objectives`` (none: no goodput)."""
    records = run.requests
    done = [r for r in records if r.ok]
    span_start = min((r.sent_s for r in records), default=0.0)
    span_end = max((r.end_s for r in done if r.end_s is not None), default=span_start)
    span = span_end - span_start
    tokens = sum(r.output_tokens for r in done)
    results = []
    for objective in objectives:
        values = _run_values(records, objective.metric)
        observed = percentile(values, objective.percentile) if values else math.inf
        results.append(ObjectiveResult(objective, observed, len(values)))
    mean_gap, cv = _gaps(records)
    return LoadSummary(
        sent=len(records),
        completed=len(done),
        failed=len(records) - len(done),
        ttft=_percentiles([v for r in done if (v := r.ttft_s) is not None]),
        tpot=_percentiles([v for r in done if (v := r.tpot_s) is not None]),
        itl=_percentiles([gap for r in done for gap in r.itl_s]),
        e2e=_percentiles([v for r in done if (v := r.e2e_s) is not None]),
        requests_per_s=len(done) / span if span > 0 else 0.0,
        output_tokens_per_s=tokens / span if span > 0 else 0.0,
        goodput=(sum(_meets(r, objectives) for r in records) / len(records)) if objectives and records else None,
        objectives=tuple(results),
        mean_gap_s=mean_gap,
        gap_cv=cv,
    )


def figure_values(records: Sequence[RequestRecord], figure: str, objectives: Sequence[Objective] = ()) -> list[float]:
    """The per-request values behind a load figure such as ``e2e_p50`` or ``goodput``: each completed
    request's time (every gap of every request for ``itl_*``), or 1/0 per sent request for whether it
    met every objective. Failed requests give no time: a comparison counts them itself."""
    if figure == "goodput":
        return [1.0 if _meets(record, objectives) else 0.0 for record in records]
    metric = Metric(figure.split("_", 1)[0])
    done = [record for record in records if record.ok]
    if metric is Metric.ITL:
        return [gap for record in done for gap in record.itl_s]
    return [value for record in done if (value := _request_value(record, metric, 50.0)) is not None]


def joined(runs: Sequence[LoadRun], pattern: str) -> LoadRun:
    """Several runs' requests as one run called ``pattern``, each run's times moved to follow the
    previous run's end, so the span and throughput count the time spent sending only (an
    ``--against`` phase's wait for the other side is left out)."""
    if len(runs) == 1:
        return replace(runs[0], pattern=pattern)
    records: list[RequestRecord] = []
    offset = 0.0
    for run in runs:
        for record in run.requests:
            records.append(replace(
                record, index=len(records), sent_s=record.sent_s + offset,
                scheduled_s=None if record.scheduled_s is None else record.scheduled_s + offset,
                first_token_s=None if record.first_token_s is None else record.first_token_s + offset,
                end_s=None if record.end_s is None else record.end_s + offset,
                token_times_s=tuple(t + offset for t in record.token_times_s)))
        offset += run.wall_s
    first = runs[0].limits
    limits = Limits(sum(r.limits.max_requests for r in runs), sum(r.limits.duration_s for r in runs),
                    first.request_timeout_s)
    return LoadRun(runs[0].target, pattern, limits, tuple(records), offset)
