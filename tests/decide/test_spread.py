"""The between-session spread a stored comparison uses: per test and statistic, and where it came from."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelperf import decide
from modelperf.decide import (
    LOAD_SPREAD,
    LOAD_TAIL_FACTOR,
    MIN_SPREAD_DF,
    TAIL_SPREADS,
    PooledSpread,
    SessionSpread,
    SpreadTable,
    figure_name,
    session_log_figure,
    upper_spread,
)
from modelperf.decide.spread import SPREAD_FLOOR
from modelperf.load_records import LoadDetail
from modelperf.records import Kind, LatencyDetail, Measurement
from modelperf.vocab import LOAD_FIGURES, STATISTICS

TEST = "t.py::test_tail"
sds = st.just(0.0) | st.floats(1e-6, 0.5)  # a subnormal sd only tests float rounding


@settings(max_examples=60, deadline=None)
@given(sds, st.integers(1, 200))
def test_a_verdict_uses_an_upper_bound_that_shrinks_towards_the_estimate_as_sessions_accumulate(
        sd: float, df: int) -> None:
    fewer, more = upper_spread(PooledSpread(sd, df, df + 1)), upper_spread(PooledSpread(sd, df + 1, df + 2))
    assert fewer >= more >= sd
    if sd > 0:
        assert fewer > sd  # never the bare estimate: from few sessions it falls short as often as not


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(STATISTICS), st.floats(0.0, 0.99), st.none() | sds, st.integers(0, 30))
def test_a_set_spread_is_used_for_every_test_and_says_so(statistic: str, configured: float, sd: float | None,
                                                        df: int) -> None:
    history = None if sd is None else {(TEST, statistic): PooledSpread(sd, df, df + 1)}
    used = SpreadTable(default=0.03, configured=configured, history=history).for_figure(TEST, statistic)
    assert used == SessionSpread(configured, "set by --session-spread")


@pytest.mark.parametrize("statistic", STATISTICS)
def test_without_history_the_default_is_larger_for_tail_percentiles(statistic: str) -> None:
    used = SpreadTable(default=0.03).for_figure(TEST, statistic)
    assert used.value == TAIL_SPREADS.get(statistic, 0.03)
    assert used.phrase() == (f"with {used.value * 100:.2g} % between sessions, the default for {statistic} "
                             "(no history to estimate it from)")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(STATISTICS), sds, st.integers(0, MIN_SPREAD_DF - 1))
def test_too_few_sessions_keep_the_default_and_say_how_many_there_are(statistic: str, sd: float, df: int) -> None:
    history = {(TEST, statistic): PooledSpread(sd, df, df + 2)}
    used = SpreadTable(default=0.03, history=history).for_figure(TEST, statistic)
    assert used.value == max(0.03, TAIL_SPREADS.get(statistic, 0.0))
    assert used.source == (f"the default for {statistic} until {MIN_SPREAD_DF + 1} sessions of one commit exist "
                           f"(the history holds {df + 2} of this test)")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(STATISTICS), sds, st.integers(MIN_SPREAD_DF, 100))
def test_enough_sessions_give_the_test_its_own_spread(statistic: str, sd: float, df: int) -> None:
    history = {(TEST, statistic): PooledSpread(sd, df, df + 3)}
    used = SpreadTable(default=0.03, history=history).for_figure(TEST, statistic)
    assert used.value == max(upper_spread(history[(TEST, statistic)]), SPREAD_FLOOR)
    assert f"from {df + 3} sessions of this test in the history" in used.phrase()
    # Another test, or this test's other statistic, has no history of its own: the default.
    other = "p10" if statistic != "p10" else "p90"
    assert SpreadTable(default=0.03, history=history).for_figure(TEST, other).source.startswith("the default")


def _p90(scale: float) -> Measurement:
    samples = tuple(0.010 * scale * (1 + 0.001 * (k % 7)) for k in range(40))
    return Measurement("t.py::t", Kind.LATENCY, "p90_s", "s", max(samples), samples, (0.002,) * 20,
                       latency=LatencyDetail("p90"))


def test_a_noisy_tail_history_widens_the_interval_and_the_stated_power() -> None:
    baseline, current = _p90(1.0), _p90(1.2)
    quiet = decide.compare_latency(baseline, current, statistic="p90", min_effect=0.2,
                                   session_spread=SessionSpread(0.03, "quiet"))
    noisy = decide.compare_latency(baseline, current, statistic="p90", min_effect=0.2,
                                   session_spread=SessionSpread(0.2, "noisy"))
    assert quiet.verdict is decide.Verdict.REGRESSED and noisy.verdict is decide.Verdict.PASS
    assert noisy.ratio_high - noisy.ratio_low > quiet.ratio_high - quiet.ratio_low
    assert quiet.detectable is not None and noisy.detectable is not None and noisy.detectable > quiet.detectable
    assert "; with 20 % between sessions, noisy)" in noisy.line()


def test_no_spread_says_nothing_about_sessions() -> None:
    assert SessionSpread(0.0).phrase() == ""
    assert math.isnan(upper_spread(PooledSpread(math.nan, 0, 1)))


SERVED = [f for f in LOAD_FIGURES if f != "max_rate"]


@pytest.mark.parametrize("figure", SERVED)
def test_a_served_figure_without_its_own_history_starts_from_the_served_default_scaled_for_its_percentile(
        figure: str) -> None:
    factor = LOAD_TAIL_FACTOR["goodput" if figure == "goodput" else figure.rsplit("_", 1)[-1]]
    assert SpreadTable(default=0.03).for_figure(TEST, figure).value == pytest.approx(LOAD_SPREAD * factor)
    assert SpreadTable(default=0.2).for_figure(TEST, figure).value == pytest.approx(0.2 * factor)
    configured = SpreadTable(default=0.03, configured=0.05).for_figure(TEST, figure)
    assert configured.value == pytest.approx(0.05 * factor) and configured.source.startswith("set by --session-spread")


def test_a_tail_of_served_requests_starts_wider_than_their_median() -> None:
    table = SpreadTable(default=0.03, history={})
    assert (table.for_figure(TEST, "e2e_p50").value < table.for_figure(TEST, "e2e_p90").value
            < table.for_figure(TEST, "ttft_p99").value)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SERVED), sds, st.integers(MIN_SPREAD_DF, 100))
def test_a_served_figure_with_enough_sessions_uses_its_own_spread_unscaled(figure: str, sd: float, df: int) -> None:
    # Its own spread already is that percentile's: scaling it for a tail would count the tail twice.
    history = {(TEST, figure): PooledSpread(sd, df, df + 1)}
    used = SpreadTable(default=0.03, history=history).for_figure(TEST, figure)
    assert used.value == max(upper_spread(history[(TEST, figure)]), SPREAD_FLOOR)
    assert f"from {df + 1} sessions of this test in the history" in used.source


def test_a_max_rate_search_gets_no_spread() -> None:
    assert SpreadTable(default=0.03, configured=0.1).for_figure(TEST, "max_rate") == SessionSpread(0.0)


def _served(value: float, figure: str = "e2e_p50", phases: int = 1) -> Measurement:
    detail = LoadDetail("Poisson 2/s (seed 0)", "http://127.0.0.1", 10.0, 20, 20, 0, 2.0, 20.0, phases=phases)
    return Measurement("t.py::test_served", Kind.LOAD, figure, "s", value, (value,) * 20, load=detail)


def test_a_session_contributes_its_served_figure_as_is_and_nothing_it_cannot_repeat() -> None:
    assert session_log_figure(_served(0.25)) == pytest.approx(math.log(0.25))
    assert figure_name(_served(0.25, "ttft_p90")) == "ttft_p90"
    assert session_log_figure(_served(0.25, phases=4)) is None  # --against's phases: a side, not a session
    assert session_log_figure(_served(2.0, "max_rate")) is None  # judged by its brackets
    assert session_log_figure(_served(0.0, "goodput")) is None and session_log_figure(_served(math.inf)) is None
    search = _served(0.25)
    assert search.load is not None
    assert session_log_figure(replace(search, load=replace(search.load, trials=3))) is None  # rates it chose
    assert session_log_figure(replace(search, load=None)) is None  # an old history's row: no way to tell phases
    assert figure_name(_p90(1.0)) == "p90"
    assert session_log_figure(_p90(1.0)) == decide.corrected_log_figure(_p90(1.0))
