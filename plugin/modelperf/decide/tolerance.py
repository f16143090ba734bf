"""Deterministic figures judged by a tolerance: peak memory (and its limit) and perplexity."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from modelperf.decide._checks import check_nonnegative as _check_nonnegative
from modelperf.units import format_size
from modelperf.vocab import Verdict

__all__ = ["MemoryComparison", "PerplexityComparison", "compare_memory", "compare_perplexity"]



@dataclass(frozen=True)
class MemoryComparison:
    """A peak-memory figure against a baseline (relative tolerance) and/or an absolute limit."""

    verdict: Verdict
    figure: str
    current_bytes: float
    baseline_bytes: float | None
    rel: float | None
    limit_bytes: float | None
    reason: str = ""

    def line(self) -> str:
        return f"{self.figure} {format_size(self.current_bytes)}: {self.reason}"


def _tolerance_verdict(baseline: float, current: float, rel: float) -> Verdict:
    """Deterministic figures (higher is worse): outside ``baseline * (1 +- rel)`` is a change."""
    if current > baseline * (1.0 + rel):
        return Verdict.REGRESSED
    return Verdict.IMPROVED if current < baseline * (1.0 - rel) else Verdict.PASS



def compare_memory(
    baseline_bytes: float | None,
    current_bytes: float,
    *,
    rel: float | None = 0.10,
    limit_bytes: float | None = None,
    figure: str = "memray peak",
) -> MemoryComparison:
    """Fail when ``current_bytes`` exceeds ``limit_bytes`` or ``baseline_bytes * (1 + rel)``.

    Peaks are deterministic enough that no statistics are needed: a fixed tolerance over the
    baseline and a hard limit. ``rel=None`` disables the baseline check. IMPROVED when the peak fell
    below ``baseline_bytes * (1 - rel)``; NOT_COMPARED with neither baseline nor limit.
    """
    for name, value in (("baseline_bytes", baseline_bytes), ("current_bytes", current_bytes),
                        ("limit_bytes", limit_bytes)):
        _check_nonnegative(name, value, "a finite number of bytes")
    _check_nonnegative("rel", rel, "None or a finite fraction (0.10 for 10 %)")
    made = functools.partial(MemoryComparison, figure=figure, current_bytes=current_bytes,
                             baseline_bytes=baseline_bytes, rel=rel, limit_bytes=limit_bytes)
    limit = "" if limit_bytes is None else f"the limit of {format_size(limit_bytes)}"
    if limit_bytes is not None and current_bytes > limit_bytes:
        return made(Verdict.REGRESSED, reason=f"over {limit}")
    if baseline_bytes is None or rel is None:
        if limit_bytes is None:
            return made(Verdict.NOT_COMPARED, reason="no baseline and no limit to compare with")
        return made(Verdict.PASS, reason=f"within {limit}")
    verdict = _tolerance_verdict(baseline_bytes, current_bytes, rel)
    versus = f"the baseline {format_size(baseline_bytes)} + {rel:.0%} = {format_size(baseline_bytes * (1 + rel))}"
    if verdict is Verdict.REGRESSED:
        return made(verdict, reason=f"above {versus}")
    if verdict is Verdict.IMPROVED:
        return made(verdict, reason=f"more than {rel:.0%} below the baseline {format_size(baseline_bytes)}")
    return made(verdict, reason=f"within {versus}" + (f" and {limit}" if limit else ""))


@dataclass(frozen=True)
class PerplexityComparison:
    """A perplexity (lower is better) against its baseline with a relative tolerance."""

    verdict: Verdict
    baseline: float
    current: float
    rel: float
    reason: str = ""

    def line(self) -> str:
        return f"perplexity {self.baseline:.4g} -> {self.current:.4g}: {self.reason}"


def compare_perplexity(baseline: float, current: float, *, rel: float = 0.01) -> PerplexityComparison:
    """Perplexity is deterministic for fixed weights and build, so a plain tolerance decides.

    1 % by default: thread-order float noise stays far below it, a coarser quantisation far above.
    """
    for name, value in (("baseline", baseline), ("current", current), ("rel", rel)):
        _check_nonnegative(name, value, "a finite number")
    verdict = _tolerance_verdict(baseline, current, rel)
    reason = {Verdict.REGRESSED: f"more than {rel:.0%} above the baseline",
              Verdict.IMPROVED: f"more than {rel:.0%} below the baseline"}.get(verdict, f"within {rel:.0%}")
    return PerplexityComparison(verdict, baseline, current, rel, reason)
