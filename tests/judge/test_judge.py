"""The one judge: every kind of figure, against a stored baseline and side by side, with no pytest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelperf.judge import AGAINST_MIN_EFFECT, Reference, Rules, judge, latency_comparison
from modelperf.markers import AccuracyOptions, LatencyOptions, MemoryOptions
from modelperf.records import (
    AccuracyDetail,
    Kind,
    LatencyDetail,
    Measurement,
    MemoryDetail,
    PairedRuns,
    RunFigure,
)
from modelperf.vocab import Verdict

SIDE_BY_SIDE = Rules(side_by_side=True)


def _latency(scale: float, seed: int = 1, rounds: int = 40) -> Measurement:
    rng = np.random.default_rng(seed)
    samples = tuple(float(x) for x in 0.010 * scale * np.exp(rng.normal(0.0, 0.01, rounds)))
    control = tuple(float(x) for x in 0.002 * np.exp(rng.normal(0.0, 0.01, 30)))
    return Measurement("t.py::t", Kind.LATENCY, "p10_s", "s", min(samples), samples, control,
                       latency=LatencyDetail("p10", rounds))


def _memory(peak: int, figure: str = "memray") -> Measurement:
    return Measurement("t.py::m", Kind.MEMORY, "memray_peak_bytes", "B", float(peak), (float(peak),),
                       memory=MemoryDetail(figure, peak, peak * 2, peak // 2))


def _accuracy(right: int, n: int = 200) -> Measurement:
    samples = tuple([1.0] * right + [0.0] * (n - right))
    ids = tuple(range(n))
    labels = tuple(1 for _ in ids)
    predictions = tuple(int(s) for s in samples)
    detail = AccuracyDetail("set", "ff", ids, labels, predictions, tuple(0.5 for _ in ids), 0.001)
    return Measurement("t.py::a", Kind.ACCURACY, "accuracy", "fraction", right / n, samples, accuracy=detail)


@pytest.mark.parametrize(("scale", "verdict"), [(1.0, Verdict.PASS), (1.3, Verdict.REGRESSED),
                                                (0.7, Verdict.IMPROVED)])
def test_a_stored_latency_baseline_is_judged_by_its_drift_corrected_ratio(scale: float, verdict: Verdict) -> None:
    result = judge(_latency(scale, seed=2), Reference(_latency(1.0)), LatencyOptions())
    assert result.verdict is verdict
    assert result.judgement.reference == _latency(1.0).value and result.judgement.ratio is not None
    assert result.judgement.ratio_low is not None and result.judgement.ratio_high is not None


def test_a_figure_with_no_baseline_is_recorded_with_the_reason() -> None:
    result = judge(_latency(1.0), Reference(None, "no baseline yet: recorded"), LatencyOptions())
    assert result.verdict is Verdict.RECORDED and result.line == "no baseline yet: recorded"


def test_side_by_side_a_figure_with_no_partner_is_not_compared() -> None:
    result = judge(_latency(1.0), Reference(None, "new test: not in main"), LatencyOptions(), SIDE_BY_SIDE)
    assert result.verdict is Verdict.NOT_COMPARED and result.line == "new test: not in main"


def _paired(factor: float) -> tuple[Measurement, Measurement]:
    base = tuple(RunFigure(i % 4, 0.010 * (1 + 0.002 * i), 0.002, 5) for i in range(8))
    change = tuple(RunFigure(r.process, r.value * factor, 0.002, 5) for r in base)
    runs = PairedRuns("main", AGAINST_MIN_EFFECT, "p10", base, change)
    return _latency(1.0), Measurement("t.py::t", Kind.LATENCY, "p10_s", "s", 0.010 * factor, (0.010 * factor,) * 40,
                                      latency=LatencyDetail("p10", 40, paired=runs))


@pytest.mark.parametrize(("factor", "verdict"), [(1.0, Verdict.PASS), (1.10, Verdict.REGRESSED)])
def test_paired_runs_are_judged_pair_by_pair_not_against_the_pooled_rounds(factor: float, verdict: Verdict) -> None:
    base, change = _paired(factor)
    options = LatencyOptions(min_effect=AGAINST_MIN_EFFECT)
    result = judge(change, Reference(base), options, SIDE_BY_SIDE)
    assert result.verdict is verdict
    assert result.judgement.ratio == pytest.approx(factor, rel=1e-9)
    assert latency_comparison(change, base, options, SIDE_BY_SIDE).corrected is False


def test_a_final_comparison_handed_in_is_the_one_judged() -> None:
    base, change = _paired(1.10)
    options = LatencyOptions(min_effect=AGAINST_MIN_EFFECT)
    passing = latency_comparison(*_paired(1.0)[::-1], options, SIDE_BY_SIDE)
    assert judge(change, Reference(base), options, SIDE_BY_SIDE, passing).verdict is Verdict.PASS


@pytest.mark.parametrize(("peak", "verdict"), [(1000, Verdict.PASS), (1200, Verdict.REGRESSED),
                                               (800, Verdict.IMPROVED)])
def test_peak_memory_is_judged_by_its_tolerance(peak: int, verdict: Verdict) -> None:
    result = judge(_memory(peak), Reference(_memory(1000)), MemoryOptions(rel=0.10))
    assert result.verdict is verdict and "memray peak" in result.line


def test_a_memory_limit_fails_even_with_nothing_to_compare_with() -> None:
    over = judge(_memory(2 * 2**20), Reference(None, "first run"), MemoryOptions(limit="1 MB"), SIDE_BY_SIDE)
    under = judge(_memory(2**19), Reference(None, "first run"), MemoryOptions(limit="1 MB"))
    assert over.verdict is Verdict.REGRESSED and "limit" in over.line
    assert under.verdict is Verdict.RECORDED and under.line.endswith("; first run")


def test_accuracy_is_paired_example_by_example() -> None:
    dropped = judge(_accuracy(150), Reference(_accuracy(180)), AccuracyOptions())
    same = judge(_accuracy(180), Reference(_accuracy(180)), AccuracyOptions())
    assert dropped.verdict is Verdict.REGRESSED and "McNemar" in dropped.line
    assert same.verdict is Verdict.PASS and "95% Wilson" in same.line


def test_perplexity_is_judged_by_its_tolerance_with_its_ratio() -> None:
    def ppl(value: float) -> Measurement:
        return Measurement("t.py::p", Kind.ACCURACY, "perplexity", "ppl", value, (value,))

    worse = judge(ppl(20.0), Reference(ppl(10.0)), AccuracyOptions(), SIDE_BY_SIDE)
    assert worse.verdict is Verdict.REGRESSED and worse.judgement.ratio == pytest.approx(2.0)
    assert judge(ppl(10.0), Reference(None, "first run"), AccuracyOptions()).line.startswith("perplexity 10.000")


@settings(max_examples=50, deadline=None)
@given(st.floats(0.5, 2.0), st.integers(0, 2**16))
def test_every_verdict_is_one_of_the_vocabulary_and_carries_a_sentence(scale: float, seed: int) -> None:
    result = judge(_latency(scale, seed=seed), Reference(_latency(1.0)), LatencyOptions())
    assert isinstance(result.verdict, Verdict) and result.line and "\n" not in result.line


def test_a_latency_verdict_states_the_smallest_slowdown_it_could_have_caught() -> None:
    tight = judge(_latency(1.0, seed=3), Reference(_latency(1.0)), LatencyOptions(min_effect=0.10))
    assert tight.judgement.detectable is not None and tight.judgement.min_effect == 0.10
    # It can never be below the alarm line, which a change must pass to be called regressed.
    assert tight.judgement.detectable >= 1 + 0.10 * 0.6
    assert f"could detect >= x{tight.judgement.detectable:.3f})" in tight.line


def _noisy(scale: float, seed: int) -> Measurement:
    rng = np.random.default_rng(seed)
    samples = tuple(float(x) for x in 0.010 * scale * np.exp(rng.normal(0.0, 0.25, 20)))
    return Measurement("t.py::t", Kind.LATENCY, "p10_s", "s", min(samples), samples, (0.002,) * 20,
                       latency=LatencyDetail("p10", 20))


def test_a_noisier_comparison_states_a_larger_detectable_change_and_says_it_is_underpowered() -> None:
    options = LatencyOptions(min_effect=0.05)
    tight = judge(_latency(1.0, seed=3), Reference(_latency(1.0)), options).judgement
    noisy = judge(_noisy(1.0, 4), Reference(_noisy(1.0, 5)), options).judgement
    assert tight.detectable is not None and noisy.detectable is not None
    assert noisy.detectable > tight.detectable
    assert noisy.underpowered and not tight.underpowered


@settings(max_examples=40, deadline=None)
@given(st.floats(1e-4, 0.5), st.one_of(st.none(), st.integers(2, 30)), st.sampled_from([0.03, 0.05, 0.10]))
def test_the_stated_power_grows_with_the_standard_error(log_se: float, df: int | None, min_effect: float) -> None:
    from modelperf.decide import detectable_ratio

    smaller = detectable_ratio(log_se, df, min_effect, 0.01)
    larger = detectable_ratio(log_se * 2, df, min_effect, 0.01)
    assert smaller is not None and larger is not None and larger > smaller >= 1 + 0.6 * min_effect


def test_a_stored_latency_verdict_uses_its_own_tests_spread_and_says_where_it_came_from() -> None:
    from modelperf.decide import PooledSpread, SpreadTable

    history = {("t.py::t", "p10"): PooledSpread(0.04, 10, 12)}
    rules = Rules(spreads=SpreadTable(default=0.03, history=history))
    result = judge(_latency(1.0, seed=2), Reference(_latency(1.0)), LatencyOptions(), rules)
    assert result.judgement.session_spread is not None and result.judgement.session_spread > 0.04
    assert "from 12 sessions of this test in the history" in result.line
    plain = judge(_latency(1.0, seed=2), Reference(_latency(1.0)), LatencyOptions())
    assert plain.judgement.session_spread == 0.0 and "between sessions" not in plain.line
    # The stated power is that of the interval the spread widened.
    assert result.judgement.detectable is not None and plain.judgement.detectable is not None
    assert result.judgement.detectable > plain.judgement.detectable


def _load(phase_figures: tuple[float, ...], failed: int = 0, pooled: float = 1.0) -> Measurement:
    from modelperf.records import LoadDetail

    samples = tuple(float(v) for v in np.linspace(0.5 * pooled, 1.5 * pooled, 40))
    detail = LoadDetail("4 concurrent client(s)", "llama", 20.0, 40 + failed, 40, failed, 2.0, 30.0,
                        phases=len(phase_figures) or 1, phase_figures=phase_figures)
    return Measurement("t.py::l", Kind.LOAD, "e2e_p50", "s", pooled, samples, load=detail)


PHASES = (1.00, 1.21, 0.93, 1.08, 0.97, 1.12, 1.03, 0.95)  # one process slower than the next, as servers are


@pytest.mark.parametrize(("factor", "verdict"), [(1.0, Verdict.PASS), (1.25, Verdict.REGRESSED),
                                                 (0.75, Verdict.IMPROVED)])
def test_a_load_test_under_against_is_judged_phase_pair_by_phase_pair(factor: float, verdict: Verdict) -> None:
    from modelperf.markers import LoadOptions

    # The pooled requests are the same on both sides; only the phase pairs carry the change.
    change = _load(tuple(v * factor * (1 + 0.01 * (k % 2)) for k, v in enumerate(PHASES)))
    found = judge(change, Reference(_load(PHASES)), LoadOptions(concurrency=2), SIDE_BY_SIDE)
    assert found.verdict is verdict
    assert "8 phase pairs, each phase on its own server process" in found.judgement.line
    assert found.judgement.detectable is not None and found.judgement.detectable > 1


def test_a_load_test_falls_back_to_its_requests_without_phase_pairs_to_judge() -> None:
    from modelperf.markers import LoadOptions

    options = LoadOptions(concurrency=2)
    for base, change in [(_load(()), _load(())),  # one phase a side (a stored baseline, or an old file)
                         (_load(PHASES), _load(PHASES[:4])),  # phases that do not pair up
                         (_load(PHASES), _load(PHASES, failed=3)),  # failed requests: infinitely slow, per request
                         (_load(PHASES[:2]), _load(PHASES[:2]))]:  # fewer pairs than a t-test over pairs needs
        found = judge(change, Reference(base), options, SIDE_BY_SIDE)
        assert "bootstrap over" in found.judgement.line and found.judgement.detectable is None
    stored = judge(_load(PHASES), Reference(_load(PHASES)), options, Rules())  # phases mean nothing across sessions
    assert "bootstrap over" in stored.judgement.line
