"""The measurement markers: their options, validation and help text.

``MARKERS`` maps each marker name to the frozen dataclass of its options. ``pytest --markers``
is generated from it and every marker's keyword arguments are checked against the dataclass's
fields, so an unknown or mistyped argument is an error naming the allowed ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from modelperf.units import parse_size
from modelperf.vocab import DIRECTIONS, MEMORY_FIGURES, STATISTICS

__all__ = ["MARKERS", "AccuracyOptions", "LatencyOptions", "MarkerError", "MarkerOptions", "MemoryOptions",
           "parse_marker"]

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


MarkerOptions = LatencyOptions | MemoryOptions | AccuracyOptions

MARKERS: dict[str, type[Any]] = {
    "latency": LatencyOptions,
    "peak_memory": MemoryOptions,
    "accuracy": AccuracyOptions,
}


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
