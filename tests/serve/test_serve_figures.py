"""Per-request figures, the run's summary, goodput, the max-rate search and the M/G/1 prediction."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.objectives import parse_slo
from modelperf.serve.arrivals import Limits
from modelperf.serve.figures import LoadRun, LoadSummary, RequestRecord, joined, percentile, summarize
from modelperf.serve.queueing import mg1_mean_wait, utilisation
from modelperf.serve.search import search_max_rate

LIMITS = Limits(100, 60.0)


def streamed(index: int, sent: float, first: float, gap: float, tokens: int) -> RequestRecord:
    times = tuple(first + gap * i for i in range(tokens))
    return RequestRecord(index, index % 3, sent, sent, first, times[-1] + 0.001, times, tokens)


def failed(index: int, sent: float) -> RequestRecord:
    return RequestRecord(index, 0, sent, sent, None, None, (), 0, "ReadTimeout")


def run_of(*records: RequestRecord) -> LoadRun:
    return LoadRun("stub", "test", LIMITS, records, 10.0)


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_agrees_with_numpy_linear(values: list[float], q: float) -> None:
    assert math.isclose(percentile(values, q), float(np.percentile(values, q)), rel_tol=1e-9, abs_tol=1e-6)


def test_percentile_of_failed_requests_is_infinite_once_it_reaches_them() -> None:
    values = [1.0] * 9 + [math.inf]
    assert percentile(values, 50) == 1.0
    assert percentile(values, 99) == math.inf


def test_a_streamed_request_gives_its_ttft_tpot_itl_and_e2e() -> None:
    record = streamed(0, sent=1.0, first=1.3, gap=0.05, tokens=5)
    assert record.ttft_s == pytest.approx(0.3)
    assert record.tpot_s == pytest.approx(0.05)
    assert record.itl_s == pytest.approx((0.05,) * 4)
    assert record.e2e_s == pytest.approx(0.501)
    assert failed(1, 0.0).ttft_s is None and failed(1, 0.0).itl_s == ()


def test_summary_counts_throughput_and_goodput_over_all_sent_requests() -> None:
    fast = [streamed(i, sent=float(i), first=i + 0.1, gap=0.01, tokens=11) for i in range(8)]
    slow = streamed(8, sent=8.0, first=9.0, gap=0.01, tokens=11)  # TTFT 1 s: misses a 500 ms objective
    summary = summarize(run_of(*fast, slow, failed(9, 9.0)), parse_slo({"ttft_p50": "500 ms", "tpot_p90": "20 ms"}))
    assert (summary.sent, summary.completed, summary.failed) == (10, 9, 1)
    assert summary.goodput == pytest.approx(0.8)
    assert summary.ttft is not None and summary.ttft.p50 == pytest.approx(0.1) and summary.ttft.count == 9
    assert summary.itl is not None and summary.itl.count == 9 * 10
    span = (slow.end_s or 0.0) - 0.0
    assert summary.requests_per_s == pytest.approx(9 / span)
    assert summary.output_tokens_per_s == pytest.approx(99 / span)
    # One failure in ten reaches the 90th percentile: a failed request counts as infinitely slow.
    assert [r.held for r in summary.objectives] == [True, False] and not summary.held


def test_failed_requests_count_as_infinitely_slow_for_an_objective() -> None:
    records = [streamed(i, float(i), i + 0.1, 0.01, 4) for i in range(98)] + [failed(98, 98.0), failed(99, 99.0)]
    summary = summarize(run_of(*records), parse_slo({"ttft_p99": "1 s"}))
    assert summary.objectives[0].observed_s == math.inf and not summary.held
    assert summarize(run_of(*records), parse_slo({"ttft_p90": "1 s"})).held


def test_measured_arrival_gaps_are_summarised() -> None:
    gaps = [random.Random(3).expovariate(2.0) for _ in range(3)]
    sends = np.cumsum([0.0, *gaps])
    summary = summarize(run_of(*(streamed(i, float(t), float(t) + 0.1, 0.01, 3) for i, t in enumerate(sends))))
    assert summary.mean_gap_s == pytest.approx(float(np.mean(gaps)))
    assert summary.gap_cv == pytest.approx(float(np.std(gaps, ddof=1) / np.mean(gaps)))
    assert summary.goodput is None and summary.objectives == ()


def fake_service(capacity: float) -> tuple[list[float], object]:
    """A run_at whose objective holds exactly below ``capacity`` requests/s."""
    tried: list[float] = []

    def run_at(rate: float) -> LoadSummary:
        tried.append(rate)
        observed = 0.1 if rate <= capacity else 2.0
        records = [streamed(i, float(i), i + observed, 0.01, 3) for i in range(20)]
        return summarize(run_of(*records), parse_slo({"ttft_p90": "1 s"}))

    return tried, run_at


@pytest.mark.parametrize("capacity", [0.3, 3.7, 50.0])
def test_max_rate_search_brackets_the_capacity_within_its_run_budget(capacity: float) -> None:
    tried, run_at = fake_service(capacity)
    search = search_max_rate(run_at, start=2.0, max_runs=12, tolerance=0.05)  # type: ignore[arg-type]
    assert len(tried) <= 12 and len(search.trials) == len(tried)
    assert search.max_rate is not None and search.failed_rate is not None
    assert search.max_rate <= capacity < search.failed_rate
    assert search.relative_bracket is not None and search.relative_bracket <= 0.05
    assert all(trial.sent == 20 and trial.held == (trial.rate <= capacity) for trial in search.trials)


def test_max_rate_search_reports_no_rate_when_none_holds_within_its_budget() -> None:
    tried, run_at = fake_service(0.0)
    search = search_max_rate(run_at, start=1.0, max_runs=3)  # type: ignore[arg-type]
    assert search.max_rate is None and search.failed_rate == pytest.approx(0.25) and len(tried) == 3


def test_pollaczek_khinchine_matches_the_textbook_queues() -> None:
    deterministic = [0.2] * 10  # M/D/1: W = rho S / (2 (1 - rho))
    assert utilisation(3.5, deterministic) == pytest.approx(0.7)
    assert mg1_mean_wait(3.5, deterministic) == pytest.approx(0.7 * 0.2 / (2 * 0.3))
    exponential = [0.0, 0.4]  # E[S] = 0.2, E[S^2] = 0.08 = 2 E[S]^2, as an exponential: M/M/1, W = rho / (mu - lambda)
    assert mg1_mean_wait(3.5, exponential) == pytest.approx(0.7 / (5.0 - 3.5))
    with pytest.raises(ValueError, match="no steady state"):
        mg1_mean_wait(5.0, deterministic)


def test_joined_phases_keep_every_request_in_order_and_count_sending_time_only() -> None:
    first = LoadRun("stub", "Poisson 2/s (seed 0)", Limits(3, 1.5), (streamed(0, 0.0, 0.2, 0.1, 3),
                                                                    streamed(1, 0.8, 1.0, 0.1, 3)), 2.0)
    second = LoadRun("stub", "Poisson 2/s (seed 1)", Limits(3, 1.5), (streamed(0, 0.0, 0.3, 0.1, 3),
                                                                     failed(1, 0.5)), 1.0)
    run = joined([first, second], "two phases")
    assert run.pattern == "two phases" and run.wall_s == 3.0
    assert (run.limits.max_requests, run.limits.duration_s) == (6, 3.0)
    assert [r.index for r in run.requests] == [0, 1, 2, 3]
    # The second phase's times follow the first's end (2 s in); each request's own figures are unchanged.
    assert [r.sent_s for r in run.requests] == pytest.approx([0.0, 0.8, 2.0, 2.5])
    assert [r.e2e_s for r in run.requests[:3]] == pytest.approx([r.e2e_s for r in (*first.requests, second.requests[0])])
    summary = summarize(run)
    assert (summary.sent, summary.completed, summary.failed) == (4, 3, 1)
    assert summary.requests_per_s == pytest.approx(3 / (2.0 + 0.3 + 0.2 + 0.001))
    assert joined([first], "one").requests == first.requests
