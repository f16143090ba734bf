"""The measurement markers: their options, validation and help text.

``MARKERS`` maps each marker name to the frozen dataclass of its options. ``pytest --markers``
is generated from it and every marker's keyword arguments are checked against the dataclass's
fields, so an unknown or mistyped argument is an error naming the allowed ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from modelperf.objectives import Objective, parse_duration, parse_slo
from modelperf.units import parse_size
from modelperf.vocab import DIRECTIONS, LOAD_FIGURES, LOAD_HIGHER_BETTER, MEMORY_FIGURES, MIN_PROCESS_PAIRS, STATISTICS

__all__ = ["MARKERS", "AccuracyOptions", "LatencyOptions", "LoadOptions", "MarkerError", "MarkerOptions",
           "MemoryOptions", "parse_marker"]

# The bootstrap behind the latency p-value resolves p down to 1/4001 (decide.SMALLEST_ALPHA).
_SMALLEST_LATENCY_ALPHA = 0.0005


class MarkerError(ValueError):
    """A marker argument that cannot be used; the message names the test and the fix."""


@dataclass(frozen=True)
class LatencyOptions:
    """Compare this test's `benchmark` timing with the hardware's baseline, drift-corrected.

    min_effect: smallest slowdown worth failing for (default 0.10 = 10 %; 0.03 where the test's stated power,
    the summary's 'could detect' column, reaches x1.03);
    statistic: p10 | median | mean | p90 | p99 of the rounds (default p10, the lower decile, which
    interference on a shared machine moves least; p90/p99 gate tail latency); direction: lower | higher
    is better (default lower); alpha: significance level of the one-sided bootstrap test of the ratio
    (default 0.01); role: '<model>:<figure>' this figure is in the trade-off table, see report/tradeoff.py
    (default none).
    """

    min_effect: float = 0.10
    statistic: str = "p10"
    direction: str = "lower"
    alpha: float = 0.01
    role: str | None = None

    def validate(self) -> None:
        _check_choice("statistic", self.statistic, STATISTICS)
        _check_choice("direction", self.direction, DIRECTIONS)
        _check_range("min_effect", self.min_effect, 0.0, 10.0)
        _check_range("alpha", self.alpha, _SMALLEST_LATENCY_ALPHA, 0.5)
        _check_role(self.role)


@dataclass(frozen=True)
class MemoryOptions:
    """Measure the test body's peak memory with memray (native allocations included), in its own pass.

    limit: absolute ceiling such as "600 MB" (optional); rel: tolerance over this hardware's baseline
    (default 0.10); figure: which figure is asserted, memray (high-water of allocated bytes, mapped
    files counted whole; default) or rss (resident-set growth over the test body); warmup: run the
    body once untracked first (default True), so first-use allocations that an earlier test may
    already have paid (library initialisation, caches) never count and the figure does not depend
    on test order; role: '<model>:<figure>' this figure is in the trade-off table, see
    report/tradeoff.py (default none).
    """

    limit: str | None = None
    rel: float | None = 0.10
    figure: str = "memray"
    warmup: bool = True
    role: str | None = None

    def validate(self) -> None:
        _check_choice("figure", self.figure, MEMORY_FIGURES)
        if self.rel is not None:
            _check_range("rel", self.rel, 0.0, 100.0)
        if self.limit is not None:
            _ = self.limit_bytes  # parses the limit, so a bad size fails at setup, not after the test
        _check_role(self.role)

    @property
    def limit_bytes(self) -> int | None:
        if self.limit is None:
            return None
        try:
            return parse_size(str(self.limit), where="peak_memory(limit=...)")
        except ValueError as exc:
            raise MarkerError(str(exc)) from None


@dataclass(frozen=True)
class AccuracyOptions:
    """Compare the accuracy the test records through the `accuracy` fixture with the baseline, paired.

    min_drop: smallest accuracy drop worth failing for (default 0.02); min_fraction: fail when below
    this fraction of the baseline, MLPerf-style (default 0.99); alpha: McNemar significance (default 0.05);
    role: '<model>:<figure>' this figure is in the trade-off table, see report/tradeoff.py (default none).
    """

    min_drop: float = 0.02
    min_fraction: float = 0.99
    alpha: float = 0.05
    role: str | None = None

    def validate(self) -> None:
        _check_range("min_drop", self.min_drop, 0.0, 1.0)
        _check_range("min_fraction", self.min_fraction, 0.0, 1.0)
        _check_range("alpha", self.alpha, 0.0, 0.5)
        _check_role(self.role)


# The figure a load test gates unless its marker names one. The median end-to-end time is moved by
# both kinds of slowdown a change brings (more tokens per request, slower tokens), exists for a
# classifier too, and rests on half the requests where a p99 of a short run rests on one or two.
DEFAULT_LOAD_FIGURE = "e2e_p50"
_MAX_LOAD_REQUESTS = 100_000  # a bound, not a target: far beyond what a test's minutes can send
_MAX_LOAD_PHASES = 200  # each phase starts a server on each side: beyond this the starts are the test


@dataclass(frozen=True)
class LoadOptions:
    """Send load to a served model (`load.run(llama_server)`) and compare one of its figures with the baseline.

    rate: Poisson arrivals per second (with max_rate, the search's first rate; default 1/s there);
    concurrency: clients each sending its next request as soon as its last one ends, instead of rate;
    duration: how long requests are sent, e.g. "20 s"; max_requests: the most requests one run sends;
    slo: objectives such as {"ttft_p99": "500 ms", "tpot_p99": "50 ms"} (ttft, tpot, itl or e2e at a
    percentile), which give goodput; max_rate: search the highest Poisson rate whose objectives hold;
    max_runs: the most runs of the search, each of duration; tokens: tokens generated per completion
    request; figure: the gated figure, e2e, ttft, tpot or itl with _p50, _p90 or _p99, goodput or max_rate
    (default e2e_p50; max_rate in search mode); min_effect: smallest change worth failing for; direction:
    lower | higher is better (default: by the figure); alpha: significance level of the comparison; seed:
    of the Poisson arrivals; role: '<model>:max_rate' puts a search's rate in the trade-off table;
    phases: under --against, the phases each side's run is split into, each on a fresh server process
    and taking turns with the other side's, compared phase by phase (at least 3); there duration and
    max_requests are both sides' budget together, half a side (a search's trials hold each rate half as long).
    """

    rate: float | None = None
    concurrency: int | None = None
    duration: str | float = "20 s"
    max_requests: int = 200
    slo: Mapping[str, str | float] | None = None
    max_rate: bool = False
    max_runs: int = 5
    tokens: int = 16
    figure: str | None = None
    min_effect: float = 0.10
    direction: str | None = None
    alpha: float = 0.01
    seed: int = 0
    role: str | None = None
    phases: int = 4

    def validate(self) -> None:
        if not isinstance(self.max_rate, bool):
            raise MarkerError(f"max_rate={self.max_rate!r} must be True (search the highest rate) or False.")
        if self.max_rate and self.concurrency is not None:
            raise MarkerError("max_rate=True searches over Poisson rates and takes no concurrency: remove "
                              "concurrency=..., or max_rate=True to keep a fixed number of clients.")
        if not self.max_rate and (self.rate is None) == (self.concurrency is None):
            raise MarkerError("give either rate=... (Poisson arrivals per second, e.g. rate=2.0) or concurrency=... "
                              "(clients, e.g. concurrency=4), exactly one of them.")
        if self.rate is not None:
            _check_range("rate", self.rate, 0.0, 1e6)
        _check_count("concurrency", self.concurrency, 1)
        _check_count("max_requests", self.max_requests, 1, _MAX_LOAD_REQUESTS)
        _check_count("max_runs", self.max_runs, 1, 20)
        _check_count("tokens", self.tokens, 1, 4096)
        _check_count("seed", self.seed, 0)
        _check_count("phases", self.phases, MIN_PROCESS_PAIRS, _MAX_LOAD_PHASES)
        _ = self.duration_s, self.objectives  # parsed now, so a bad one fails at setup, not after the load
        if self.max_rate and not self.objectives:
            raise MarkerError("max_rate=True needs objectives to hold, e.g. slo={'ttft_p99': '2 s'}.")
        _check_choice("figure", self.gated_figure, LOAD_FIGURES)
        if self.gated_figure == "max_rate" and not self.max_rate:
            raise MarkerError("figure='max_rate' is measured by a search: add max_rate=True and slo={...}.")
        if self.gated_figure == "goodput" and not self.objectives:
            raise MarkerError("figure='goodput' is the share of requests meeting the objectives: add slo={...}.")
        if self.direction is not None:
            _check_choice("direction", self.direction, DIRECTIONS)
        _check_range("min_effect", self.min_effect, 0.0, 10.0)
        _check_range("alpha", self.alpha, _SMALLEST_LATENCY_ALPHA, 0.5)
        _check_role(self.role)

    @property
    def duration_s(self) -> float:
        try:
            seconds = parse_duration(self.duration, where="duration")
        except (TypeError, ValueError) as exc:
            raise MarkerError(str(exc)) from None
        if seconds <= 0:
            raise MarkerError(f"duration={self.duration!r} sends nothing: give a time above 0, e.g. '20 s'.")
        return seconds

    @property
    def objectives(self) -> tuple[Objective, ...]:
        if self.slo is None:
            return ()
        if not isinstance(self.slo, Mapping):
            raise MarkerError(f"slo={self.slo!r} is not a mapping: write e.g. slo={{'ttft_p99': '500 ms'}}.")
        try:
            return parse_slo(self.slo)
        except (TypeError, ValueError) as exc:
            raise MarkerError(str(exc)) from None

    @property
    def gated_figure(self) -> str:
        """The figure judged: the marker's, else max_rate in search mode and the median end-to-end time otherwise."""
        if self.figure is not None:
            return self.figure
        return "max_rate" if self.max_rate else DEFAULT_LOAD_FIGURE

    @property
    def gated_direction(self) -> str:
        if self.direction is not None:
            return self.direction
        return "higher" if self.gated_figure in LOAD_HIGHER_BETTER else "lower"


MarkerOptions = LatencyOptions | MemoryOptions | AccuracyOptions | LoadOptions

MARKERS: dict[str, type[Any]] = {
    "latency": LatencyOptions,
    "peak_memory": MemoryOptions,
    "accuracy": AccuracyOptions,
    "load": LoadOptions,
}


def _check_count(name: str, value: object, low: int, high: int | None = None) -> None:
    """None passes (an option not given); otherwise a whole number from ``low`` up to ``high``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        upper = f" and at most {high:,}" if high is not None else ""
        raise MarkerError(f"{name}={value!r} must be a whole number of at least {low}{upper}.")


def _check_role(role: object) -> None:
    if role is not None and (not isinstance(role, str) or not all(role.partition(":")[::2])):
        raise MarkerError(f"role={role!r} must read '<model>:<figure>', e.g. 'distilbert:batch1'.")


def _check_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise MarkerError(f"{name}={value!r} is not one of {', '.join(allowed)}.")


def _check_range(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
        raise MarkerError(f"{name}={value!r} must be a number between {low:g} and {high:g} (exclusive).")


def parse_marker(name: str, args: Sequence[Any], kwargs: Mapping[str, Any], where: str) -> Any:
    """Build and validate the options of marker ``name``; errors name the test and the allowed arguments."""
    cls = MARKERS[name]
    allowed = [f.name for f in fields(cls)]
    if args:
        raise MarkerError(f"{where}: @pytest.mark.{name} takes keyword arguments only ({', '.join(allowed)}).")
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise MarkerError(
            f"{where}: @pytest.mark.{name} got unknown argument(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed)}."
        )
    options = cls(**kwargs)
    try:
        options.validate()
    except MarkerError as exc:
        raise MarkerError(f"{where}: @pytest.mark.{name}: {exc}") from None
    return options


def marker_help(name: str) -> str:
    """The line ``pytest --markers`` shows: signature and the first docstring line."""
    cls = MARKERS[name]
    signature = ", ".join(f"{f.name}={f.default!r}" for f in fields(cls))
    summary = (cls.__doc__ or "").strip().splitlines()[0]
    return f"{name}({signature}): {summary}"
