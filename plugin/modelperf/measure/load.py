"""The ``load`` marker's instrument: bounded load against a served model, as typed Measurements.

The test body sends the load itself, through what the ``load`` fixture hands it (this module's
:class:`LoadRunner`): ``load.run(llama_server)`` runs the marker's arrival pattern (Poisson at
``rate``, or ``concurrency`` clients) for ``duration`` or ``max_requests``, or with ``max_rate=True``
searches the highest Poisson rate whose objectives hold. The gated figure becomes one
:class:`~modelperf.records.Measurement` (its per-request values as samples, every other figure in its
:class:`~modelperf.records.LoadDetail`); the judge compares it like every other figure.

Under ``--against`` (a paced run: :attr:`~modelperf.measure.instrument.RunPlan.pace` is set) each side
gets its share of the marker's ``duration`` and ``max_requests`` (half,
:data:`modelperf.ab.plan.LOAD_SHARE`, passed as the plan's ``round_scale``). A fixed-rate or concurrency
run is split into the marker's ``phases``, each with its own seeded arrivals, and the machine is handed
to the other side between them: the controller alternates the two sides' phases ABBA
(:func:`modelperf.ab.plan.phase_turns`), so a drift of the machine over the minute of a test falls on
both sides alike. Each phase after the first runs on a fresh server process: one server process can be
slower than the next for its whole life (where its weights land in memory), so the phase, not the
request, is the unit of variation, as the worker process is for latency. The phases' requests are pooled
into the figures; the gated figure of each phase alone goes into
:attr:`~modelperf.records.LoadDetail.phase_figures`, which the judge pairs with the base side's phase by
phase (both sides' phase ``k`` send the same arrivals and prompts). A max-rate search is handed over
between its trials instead: each trial is one rate held for the side's whole duration (split into
phases, a trial would say less of its rate), and each side's search picks its next rate from its own
trials, so the two sides' trials alternate without being split.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import ClassVar

from modelperf.markers import LoadOptions
from modelperf.measure.instrument import Instrument, MeasureContext, Pace, Target
from modelperf.models.base import Model
from modelperf.records import Kind, LoadDetail, LoadObjective, LoadPercentiles, Measurement
from modelperf.serve.arrivals import Concurrency, Limits, Pattern, Poisson
from modelperf.serve.figures import (
    LoadRun,
    LoadSummary,
    Percentiles,
    RequestRecord,
    figure_values,
    joined,
    percentile,
    summarize,
)
from modelperf.serve.search import RateSearch
from modelperf.serve.servers import Served

__all__ = ["FreshServer", "LoadError", "LoadInstrument", "LoadRunner"]

# Each request may take this many times the run's send window (at least 10 s, at most a minute)
# before it is cut off and counted as failed: an overloaded server's queue drains, a hung one does not.
_TIMEOUT_PER_DURATION = 2.0
_MIN_TIMEOUT_S, _MAX_TIMEOUT_S = 10.0, 60.0
_SEARCH_START = 1.0  # requests/s a max-rate search starts from when the marker gives no rate
_WARM_TOKENS = 2  # a fresh server's unmeasured first request: its prompt and one decoding step

# What the ``load`` fixture hands :meth:`LoadRunner.run` to replace a served model's server process by a
# fresh one between phases (a team's own server, which the plugin did not start, comes back as it is).
FreshServer = Callable[[Served], Served]


class LoadError(Exception):
    """A load run that gave no figure (no request completed, a search that found no rate); one sentence."""


def _percentiles(found: Percentiles | None) -> LoadPercentiles | None:
    return None if found is None else LoadPercentiles(found.p50, found.p90, found.p99, found.count)


def _objectives(summary: LoadSummary) -> tuple[LoadObjective, ...]:
    return tuple(LoadObjective(r.objective.key, r.objective.limit_s,
                               r.observed_s if math.isfinite(r.observed_s) else None, r.held)
                 for r in summary.objectives)


def _detail(run: LoadRun, summary: LoadSummary, pattern: str) -> LoadDetail:
    return LoadDetail(pattern, run.target, run.limits.duration_s, summary.sent, summary.completed, summary.failed,
                      summary.requests_per_s, summary.output_tokens_per_s, _percentiles(summary.ttft),
                      _percentiles(summary.tpot), _percentiles(summary.itl), _percentiles(summary.e2e),
                      summary.goodput, _objectives(summary))


class LoadRunner:
    """What a ``@pytest.mark.load`` test gets from the ``load`` fixture: ``run(server)`` sends the load."""

    def __init__(self, instrument: LoadInstrument) -> None:
        self._instrument = instrument
        self.options = instrument.options
        self.summary: LoadSummary | None = None
        self.search: RateSearch | None = None
        self._served: Served | None = None
        self._next_prompt = 0
        self._runs = 0
        self._phase_times: list[tuple[float, float]] = []  # epoch seconds each run (phase, trial) began and ended

    @property
    def limits(self) -> Limits:
        """This side's bounds: the marker's, or under ``--against`` the plan's share of its duration and
        requests (the marker's budget is both sides' together; see modelperf.ab.plan). A search's trials
        each hold their rate for that duration; a split run's phases share it."""
        duration = self.options.duration_s
        timeout = min(_MAX_TIMEOUT_S, max(_MIN_TIMEOUT_S, _TIMEOUT_PER_DURATION * duration))
        share = self._instrument.context.plan.round_scale
        return Limits(max(1, math.ceil(self.options.max_requests * share)), duration * share, timeout)

    @property
    def _pace(self) -> Pace | None:
        return self._instrument.context.plan.pace

    @property
    def phases(self) -> int:
        """How many phases a fixed-rate or concurrency run is split into: the marker's under --against, else one."""
        return self.options.phases if self._pace is not None else 1

    def _phase_limits(self, phases: int) -> Limits:
        whole = self.limits
        return Limits(math.ceil(whole.max_requests / phases), whole.duration_s / phases, whole.request_timeout_s)

    def pattern(self, rate: float | None = None, phase: int = 0) -> Pattern:
        """The arrivals of one run: phase ``k`` of a split run draws its Poisson arrivals from ``seed + k``."""
        if rate is not None or self.options.concurrency is None:
            return Poisson(rate if rate is not None else float(self.options.rate or _SEARCH_START),
                           self.options.seed + phase)
        return Concurrency(self.options.concurrency)

    def _label(self, runs: list[LoadRun]) -> str:
        if len(runs) == 1:
            return runs[0].pattern
        pattern = self.pattern()
        seeds = f" (seeds {self.options.seed}-{self.options.seed + len(runs) - 1})" if isinstance(pattern, Poisson) else ""
        return f"{pattern.label}{seeds}, {len(runs)} phases alternating with the other side's"

    def run(self, server: Served, fresh: FreshServer | None = None) -> LoadSummary | RateSearch:
        """Send the marker's load to ``server`` (a ``llama_server`` or ``distilbert_server`` fixture's value);
        returns the run's summary, or the search with ``max_rate=True``. One run per test. ``fresh``: how
        to get a fresh server process for each phase after the first under ``--against``."""
        if self._served is not None:
            raise LoadError("load.run() was called twice in one test: a load test measures one run; split it in two.")
        if not isinstance(server, Served):
            raise LoadError(f"load.run() takes a served model (the llama_server or distilbert_server fixture), "
                            f"not {type(server).__name__}.")
        self._served = server
        if self.options.max_rate:
            return self._search(server)
        phases = self.phases
        runs: list[LoadRun] = []
        for phase in range(phases):
            if phase:
                self._hand_over()
                if fresh is not None:  # started in this side's turn, so its start-up loads no other phase
                    server = self._served = fresh(server)
                    self._warm(server)
            runs.append(self._once(server, self.pattern(phase=phase), self._phase_limits(phases))[0])
        run = joined(runs, self._label(runs))
        summary = summarize(run, self.options.objectives)
        self.summary = summary
        measurement = self._measurement(run, summary, run.pattern, phases)
        if phases > 1 and measurement.load is not None:
            each = tuple(self._figure(r.requests)[1] for r in runs)
            measurement = replace(measurement, load=replace(measurement.load, phase_figures=each))
        self._instrument.record(measurement)
        return summary

    def _warm(self, server: Served) -> None:
        """Send a fresh server the last prompt its predecessor answered, unmeasured: its first request
        would otherwise pay for paging the weights in and an empty prompt cache, which a server that kept
        running would not, and leave the server's cache as the previous one's was. Two tokens, not the
        marker's: the prompt's pass and one decoding step touch every weight and build both compute
        graphs, and the next prompt shares no more with the cache than the chat template either way."""
        from modelperf.serve.client import run_load_sync

        timeout = self.limits.request_timeout_s
        run_load_sync(server.endpoint(min(_WARM_TOKENS, self.options.tokens)), Concurrency(1),
                      Limits(1, timeout, timeout), start_prompt=max(0, self._next_prompt - 1))

    def _hand_over(self) -> None:
        """Under --against, give the machine to the other side until it is this side's turn again."""
        if self._pace is not None:
            self._pace(now=True)

    def _once(self, server: Served, pattern: Pattern, limits: Limits | None = None) -> tuple[LoadRun, LoadSummary]:
        """One bounded run of ``pattern`` against ``server``."""
        from modelperf.serve.client import run_load_sync

        self._runs += 1
        endpoint = server.endpoint(self.options.tokens)
        began = time.time()
        run = run_load_sync(endpoint, pattern, limits or self.limits, start_prompt=self._next_prompt)
        self._phase_times.append((began, time.time()))
        self._next_prompt += len(run.requests)
        summary = summarize(run, self.options.objectives)
        if summary.completed == 0:
            server.check()  # a crashed server is the reason: say so, with its log
            first = next((r.error for r in run.requests if r.error), "no request was sent")
            raise LoadError(f"no request to {server.label} completed ({summary.sent} sent; the first error: {first}); "
                            + (f"see the server's log {server.log_path}." if server.log_path else
                               "check that the server answers."))
        return run, summary

    def _search(self, server: Served) -> RateSearch:
        from modelperf.serve.search import search_max_rate

        runs: dict[float, tuple[LoadRun, LoadSummary]] = {}

        def run_at(rate: float) -> LoadSummary:
            if runs:
                self._hand_over()
            runs[rate] = self._once(server, self.pattern(rate))
            return runs[rate][1]

        start = float(self.options.rate or _SEARCH_START)
        search = search_max_rate(run_at, start=start, max_runs=self.options.max_runs)
        self.search = search
        if search.max_rate is None:
            keys = ", ".join(o.key for o in self.options.objectives)
            tried = ", ".join(f"{t.rate:.3g}/s" for t in search.trials)
            raise LoadError(f"no arrival rate held the objectives ({keys}) at {server.label}; tried {tried}: lower "
                            "the starting rate=..., loosen slo=... or give max_runs=... more runs.")
        run, summary = runs[search.max_rate]
        self.summary = summary
        pattern = f"max-rate search from {start:g}/s, {len(search.trials)} runs of {self.limits.duration_s:g} s"
        if self._pace is not None:
            pattern += ", alternating with the other side's"
        measurement = self._measurement(run, summary, pattern, len(search.trials) if self._pace is not None else 1)
        detail = replace(measurement.load or _detail(run, summary, pattern), max_rate=search.max_rate,
                         failed_rate=search.failed_rate, trials=len(search.trials))
        if self.options.gated_figure == "max_rate":
            measurement = replace(measurement, value=search.max_rate, samples=(), unit="req/s")
        self._instrument.record(replace(measurement, load=detail, info={
            **measurement.info, "trials": [[t.rate, t.held, t.sent, t.completed] for t in search.trials]}))
        return search

    def _figure(self, requests: Sequence[RequestRecord]) -> tuple[list[float], float]:
        """The gated figure's per-request values over ``requests``, and the figure (a percentile, or goodput's share)."""
        figure = self.options.gated_figure
        values = figure_values(requests, figure, self.options.objectives)
        if not values:
            return values, math.nan
        return values, sum(values) / len(values) if figure == "goodput" else percentile(values, float(figure[-2:]))

    def _measurement(self, run: LoadRun, summary: LoadSummary, pattern: str, phases: int = 1) -> Measurement:
        figure = self.options.gated_figure
        if figure == "max_rate":  # filled in by the search
            values, value, unit = list[float](), 0.0, "req/s"
        else:
            values, value = self._figure(run.requests)
            if not values:
                raise LoadError(f"the run at {run.target} gave no {figure} values (a classifier streams no tokens): "
                                "gate e2e_p50 or another figure it has.")
            unit = "fraction" if figure == "goodput" else "s"
        target = self._instrument.target
        info = {"mean_gap_s": summary.mean_gap_s, "gap_cv": summary.gap_cv,
                "send_times_s": [round(r.sent_s, 6) for r in run.requests],
                "scheduled_s": [None if r.scheduled_s is None else round(r.scheduled_s, 6) for r in run.requests],
                "phase_times": [[round(began, 6), round(ended, 6)] for began, ended in self._phase_times]}
        return Measurement(target.test_id, Kind.LOAD, figure, unit, float(value), tuple(values), (),
                           None, load=replace(_detail(run, summary, pattern), phases=phases), info=info)

    def again(self, first: Measurement) -> Measurement | None:
        """``first`` pooled with a second run of the same load (not for a search, which is its own repeat)."""
        served = self._served
        if served is None or self.options.max_rate or first.load is None:
            return None
        try:
            run, summary = self._once(served, self.pattern())
        except LoadError:
            return None  # the second run failed outright: the first run's verdict stands
        second = self._measurement(run, summary, run.pattern)
        samples = first.samples + second.samples
        figure = first.metric
        value = sum(samples) / len(samples) if figure == "goodput" else percentile(samples, float(figure[-2:]))
        detail = replace(first.load, sent=first.load.sent + summary.sent,
                         completed=first.load.completed + summary.completed,
                         failed=first.load.failed + summary.failed,
                         pattern=f"{first.load.pattern}, run twice")
        return replace(first, value=value, samples=samples, load=detail)


class LoadInstrument(Instrument):
    """Bounded load against a served model, run by the test body through :class:`LoadRunner`."""

    marker: ClassVar[str] = "load"

    def __init__(self, target: Target, context: MeasureContext) -> None:
        super().__init__(target, context)
        assert isinstance(target.options, LoadOptions)
        self.options = target.options
        self.runner = LoadRunner(self)
        self._measurements: list[Measurement] = []

    def fixture_value(self, upstream: object = None) -> LoadRunner:
        return self.runner

    def record(self, measurement: Measurement) -> None:
        self._measurements.append(measurement)

    def start(self, models: Mapping[str, Model]) -> None:
        """Nothing to start: the body sends the load when it calls ``load.run(server)``."""

    def stop(self, failed: bool) -> tuple[Measurement, ...]:
        return () if failed else tuple(self._measurements)

    def remeasure(self, first: Measurement) -> Measurement | None:
        return self.runner.again(first)
