"""decide.load: a load figure against its reference, by a bootstrap over both runs' requests."""

from __future__ import annotations

import random

import pytest

from modelperf.decide.load import LoadRun, compare_load
from modelperf.decide.spread import SessionSpread
from modelperf.vocab import Verdict


def _run(scale: float, n: int = 60, seed: int = 0, failed: int = 0) -> LoadRun:
    draw = random.Random(seed)
    samples = tuple(scale * (0.5 + draw.expovariate(2.0)) for _ in range(n))
    ordered = sorted(samples)
    return LoadRun(ordered[n // 2], samples, failed)


@pytest.mark.parametrize("figure", ["e2e_p50", "ttft_p90", "tpot_p99"])
def test_the_same_requests_pass(figure: str) -> None:
    found = compare_load(_run(1.0), _run(1.0), figure=figure, unit="s", session_spread=0.03)
    assert found.verdict is Verdict.PASS and found.ratio == pytest.approx(1.0)


def test_three_times_slower_requests_regress_and_faster_ones_improve() -> None:
    assert compare_load(_run(1.0), _run(3.0, seed=1), figure="e2e_p50", unit="s").verdict is Verdict.REGRESSED
    assert compare_load(_run(3.0), _run(1.0, seed=1), figure="e2e_p50", unit="s").verdict is Verdict.IMPROVED


def test_failed_requests_count_as_infinitely_slow() -> None:
    # The completed requests are the same; 40 % of the current run's never finished.
    found = compare_load(_run(1.0), _run(1.0, failed=40), figure="e2e_p90", unit="s")
    assert found.verdict is Verdict.REGRESSED


def test_the_verdict_line_says_which_spread_it_used_and_where_it_came_from() -> None:
    spread = SessionSpread(0.12, "the upper 80 % bound from 9 sessions of this test in the history (sd 9 %)")
    stored = compare_load(_run(1.0), _run(1.0, seed=1), figure="e2e_p99", unit="s", session_spread=spread)
    assert "bootstrap over 60+60 requests" in stored.line()
    assert "widened by 12 % between sessions, the upper 80 % bound from 9 sessions" in stored.line()
    assert stored.session_spread == 0.12
    paired = compare_load(_run(1.0), _run(1.0, seed=1), figure="e2e_p99", unit="s", session_spread=spread,
                          side_by_side=True)
    assert "side by side" in paired.line() and paired.session_spread is None
    trusted = compare_load(_run(1.0), _run(1.0, seed=1), figure="e2e_p99", unit="s",
                           session_spread=SessionSpread(0.0, "set by --session-spread"))
    assert "not widened between sessions, set by --session-spread" in trusted.line()


def test_a_wider_between_session_spread_widens_the_interval_and_the_change_it_could_detect() -> None:
    quiet = compare_load(_run(1.0), _run(1.0, seed=1), figure="e2e_p50", unit="s", session_spread=0.03)
    noisy = compare_load(_run(1.0), _run(1.0, seed=1), figure="e2e_p50", unit="s", session_spread=0.3)
    assert noisy.ratio_high - noisy.ratio_low > quiet.ratio_high - quiet.ratio_low
    assert quiet.detectable is not None and noisy.detectable is not None and noisy.detectable > quiet.detectable
    assert "could detect >= x" in noisy.line()


def test_a_slowdown_inside_a_noisy_figure_s_spread_is_not_called_and_says_it_could_not_see_it() -> None:
    # 40 % slower requests (600 a run: the requests alone would show it), against a figure whose sessions
    # spread 40 %: a move that size is that figure's noise.
    base, slower = _run(1.0, n=600), _run(1.4, n=600, seed=1)
    found = compare_load(base, slower, figure="e2e_p50", unit="s", session_spread=0.4)
    assert found.verdict is Verdict.PASS
    assert found.detectable is not None and found.detectable > 1.4
    assert compare_load(base, slower, figure="e2e_p50", unit="s", session_spread=0.03).verdict is Verdict.REGRESSED


def test_side_by_side_bootstrap_states_no_power_it_cannot_know() -> None:
    found = compare_load(_run(1.0), _run(1.0, seed=1), figure="e2e_p50", unit="s", side_by_side=True)
    assert found.detectable is None and "could detect" not in found.line()


def test_goodput_is_higher_is_better() -> None:
    good = LoadRun(0.9, (1.0,) * 54 + (0.0,) * 6)
    bad = LoadRun(0.5, (1.0,) * 30 + (0.0,) * 30)
    found = compare_load(good, bad, figure="goodput", unit="fraction", direction="higher")
    assert found.verdict is Verdict.REGRESSED and "lower" in found.reason


@pytest.mark.parametrize(("current", "verdict"), [
    (LoadRun(2.0, (), max_rate=2.0, failed_rate=2.4), Verdict.PASS),  # brackets overlap
    (LoadRun(1.0, (), max_rate=1.0, failed_rate=1.2), Verdict.REGRESSED),  # fails where the baseline held
    (LoadRun(4.0, (), max_rate=4.0, failed_rate=4.8), Verdict.IMPROVED),  # holds where the baseline failed
    (LoadRun(0.0, (), max_rate=None, failed_rate=0.5), Verdict.INCONCLUSIVE),
])
def test_max_rates_are_compared_by_their_brackets(current: LoadRun, verdict: Verdict) -> None:
    baseline = LoadRun(2.0, (), max_rate=2.0, failed_rate=2.4)
    found = compare_load(baseline, current, figure="max_rate", unit="req/s", direction="higher")
    assert found.verdict is verdict and "brackets" in found.line()


def test_phase_pairs_need_three_and_say_how_to_get_them() -> None:
    from modelperf.decide.load import compare_load_phases

    found = compare_load_phases([1.0, 1.1], [1.0, 1.1], figure="e2e_p50", unit="s", baseline=1.0, current=1.0)
    assert found.verdict is Verdict.INCONCLUSIVE and "phase pairs" in found.reason and "phases=" in found.reason


def test_phase_pairs_of_a_higher_is_better_figure_regress_when_lower() -> None:
    from modelperf.decide.load import compare_load_phases

    base = [10.0, 11.0, 9.5, 10.5, 10.2]
    found = compare_load_phases(base, [v * 0.7 for v in base], figure="e2e_p50", unit="s", baseline=10.0,
                                current=7.0, direction="higher")
    assert found.verdict is Verdict.REGRESSED and "lower" in found.reason and found.ratio == pytest.approx(0.7)
