"""The arrival schedule is the process it claims: Poisson at the rate asked, seeded, bounded."""

from __future__ import annotations

import itertools
import statistics

import pytest

from modelperf.serve.arrivals import Concurrency, Limits, Poisson, poisson_offsets

ARRIVALS = 20_000  # the mean of this many exponential gaps is within about 0.7 % of 1/r (one sd)


@pytest.mark.parametrize("rate", [0.5, 2.0, 37.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_gaps_have_mean_one_over_rate_and_unit_cv(rate: float, seed: int) -> None:
    offsets = poisson_offsets(rate, seed, max_requests=ARRIVALS, duration_s=float("inf"))
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    mean = statistics.fmean(gaps)
    assert abs(mean * rate - 1.0) < 0.05
    assert 0.9 < statistics.stdev(gaps) / mean < 1.1


def test_poisson_schedule_is_seeded_starts_at_zero_and_only_rises() -> None:
    first = poisson_offsets(3.0, 7, max_requests=100, duration_s=1e9)
    assert first == poisson_offsets(3.0, 7, max_requests=100, duration_s=1e9)
    assert first != poisson_offsets(3.0, 8, max_requests=100, duration_s=1e9)
    assert first[0] == 0.0 and all(b > a for a, b in itertools.pairwise(first))


@pytest.mark.parametrize(("max_requests", "duration_s", "expected"), [(5, 1e9, 5), (10_000, 10.0, None)])
def test_poisson_schedule_stops_at_the_request_count_or_the_duration(max_requests: int, duration_s: float,
                                                                    expected: int | None) -> None:
    offsets = poisson_offsets(10.0, 0, max_requests=max_requests, duration_s=duration_s)
    if expected is not None:
        assert len(offsets) == expected
    else:
        assert offsets[-1] < duration_s and 50 < len(offsets) < 200  # about rate x duration = 100


@pytest.mark.parametrize("make", [
    lambda: Poisson(0.0), lambda: Poisson(-1.0), lambda: Poisson(float("nan")), lambda: Concurrency(0),
    lambda: Concurrency(True), lambda: Limits(0, 1.0), lambda: Limits(5, 0.0), lambda: Limits(5, 1.0, float("inf")),
])
def test_patterns_and_limits_refuse_values_that_cannot_bound_a_run(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r": give e\.g\."):
        make()
