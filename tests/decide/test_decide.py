"""Unit tests for modelperf.decide: drift-corrected latency, paired accuracy, memory tolerances."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelperf import decide
from modelperf.decide import (
    Verdict,
    compare_accuracy,
    compare_latency,
    compare_memory,
    compare_perplexity,
    confirm,
    should_confirm,
    wilson_interval,
)
from modelperf.records import AccuracyDetail, Kind, LatencyDetail, Measurement

MB = 1_000_000
# Each latency comparison bootstraps 2000 resamples; keep hypothesis runs short on 2 cores.
FAST = settings(max_examples=40, deadline=None)


def latency(samples: Any, control: Any = (), unit: str = "s") -> Measurement:
    values = tuple(float(x) for x in samples)
    return Measurement("t.py::test", Kind.LATENCY, "median_s", unit, float(np.median(values)), values,
                       tuple(float(x) for x in control))


def noisy(seed: int, median: float, n: int, cv: float) -> np.ndarray[Any, Any]:
    return median * np.random.default_rng(seed).lognormal(0.0, cv, n)


def correctness(right: int, n: int, example_ids: list[int] | None = None) -> Measurement:
    samples = tuple([1.0] * right + [0.0] * (n - right))
    detail = None
    if example_ids is not None:
        labels = tuple(1 for _ in example_ids)
        detail = AccuracyDetail("set", "", tuple(example_ids), labels, labels, tuple(1.0 for _ in example_ids), 0.0)
    return Measurement("t.py::acc", Kind.ACCURACY, "accuracy", "", right / n, samples, accuracy=detail)


# ------------------------------------------------------------------------------------------ latency

positive = st.floats(1e-5, 10.0, allow_nan=False, allow_infinity=False)


@FAST
@given(st.lists(positive, min_size=2, max_size=60), st.lists(positive, max_size=20),
       st.sampled_from(["lower", "higher"]), st.sampled_from(["median", "mean"]))
def test_identical_samples_never_regress(samples: list[float], control: list[float], direction: str,
                                         statistic: str) -> None:
    result = compare_latency(latency(samples, control), latency(samples, control), direction=direction,
                             statistic=statistic)
    assert result.verdict in (Verdict.PASS, Verdict.INCONCLUSIVE)
    assert result.verdict is Verdict.INCONCLUSIVE or result.ratio == pytest.approx(1.0)


@FAST
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(20, 60), cv=st.floats(0.0, 0.02),
       extra=st.floats(1.0, 3.0), min_effect=st.sampled_from([0.05, 0.10, 0.20]),
       direction=st.sampled_from(["lower", "higher"]))
def test_clear_slowdown_with_low_noise_always_regresses(seed: int, n: int, cv: float, extra: float,
                                                        min_effect: float, direction: str) -> None:
    factor = (1 + min_effect) * 1.05 * extra
    base, cur = noisy(seed, 0.0123, n, cv), noisy(seed + 1, 0.0123 * factor, n, cv)
    control = noisy(seed + 2, 0.003, 15, cv)
    if direction == "higher":  # a rate: a slowdown divides it
        base, cur, factor = 1 / base, 1 / cur, 1 / factor
    result = compare_latency(latency(base, control), latency(cur, control), min_effect=min_effect,
                             direction=direction)
    assert result.verdict is Verdict.REGRESSED, result.line()
    assert result.ratio == pytest.approx(factor, rel=0.1)


@FAST
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), cv=st.floats(0.0, 0.3),
       drift=st.floats(0.2, 5.0), direction=st.sampled_from(["lower", "higher"]))
def test_pure_machine_drift_never_regresses(seed: int, n: int, cv: float, drift: float, direction: str) -> None:
    samples, control = noisy(seed, 0.0123, n, cv), noisy(seed + 1, 0.003, 15, cv)
    current = samples * drift if direction == "lower" else samples / drift
    result = compare_latency(latency(samples, control), latency(current, control * drift), direction=direction)
    assert result.verdict in (Verdict.PASS, Verdict.INCONCLUSIVE)
    assert result.verdict is Verdict.INCONCLUSIVE or result.ratio == pytest.approx(1.0)
    assert result.drift == pytest.approx(drift)


def test_drift_is_reported_and_corrected() -> None:
    base, control = noisy(1, 0.0123, 30, 0.02), noisy(2, 0.003, 15, 0.02)
    result = compare_latency(latency(base, control), latency(base * 0.95 * 1.2, control * 0.95))
    assert result.verdict is Verdict.REGRESSED
    assert result.drift == pytest.approx(0.95)
    assert result.ratio == pytest.approx(1.2, rel=0.02)
    assert result.ratio_low < result.ratio < result.ratio_high


@pytest.mark.parametrize("drift", [0.80, 1.25])
def test_drift_beyond_the_trusted_range_is_inconclusive_not_a_verdict(drift: float) -> None:
    base, control = noisy(1, 0.0123, 30, 0.02), noisy(2, 0.003, 15, 0.02)
    result = compare_latency(latency(base, control), latency(base * drift * 1.2, control * drift))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "beyond the x1.15 that drift correction is trusted for" in result.line()
    assert f"machine ran the control x{drift:.2f}" in result.line()
    assert should_confirm(result)  # a quieter re-measurement may bring the drift back in range


def test_uncorrected_when_either_side_lacks_a_control() -> None:
    base = noisy(1, 0.0123, 30, 0.02)
    result = compare_latency(latency(base), latency(base * 1.2, noisy(2, 0.003, 15, 0.02)))
    assert result.drift == 1.0
    assert result.ratio == pytest.approx(1.2)


@pytest.mark.parametrize(("factor", "expected"), [
    (1.00, Verdict.PASS), (1.02, Verdict.PASS), (1.12, Verdict.REGRESSED), (0.88, Verdict.IMPROVED)])
def test_verdict_on_either_side_of_the_effect_threshold(factor: float, expected: Verdict) -> None:
    base, control = noisy(3, 0.0123, 40, 0.01), noisy(4, 0.003, 15, 0.01)
    result = compare_latency(latency(base, control), latency(noisy(5, 0.0123 * factor, 40, 0.01), control))
    assert result.verdict is expected, result.line()


def test_significant_but_small_slowdown_passes_and_says_so() -> None:
    base, control = noisy(3, 0.0123, 60, 0.005), noisy(4, 0.003, 15, 0.0)
    result = compare_latency(latency(base, control), latency(noisy(5, 0.0123 * 1.03, 60, 0.005), control))
    assert result.verdict is Verdict.PASS
    assert result.p_value < 0.001
    assert "significantly slower, but within the alarm line x1.060 of the 10 % minimum effect" in result.line()


@pytest.mark.parametrize(("n", "expected"), [(2, Verdict.INCONCLUSIVE), (decide.MIN_SAMPLES - 1, Verdict.INCONCLUSIVE),
                                             (decide.MIN_SAMPLES, Verdict.REGRESSED)])
def test_too_few_samples_to_judge_is_inconclusive(n: int, expected: Verdict) -> None:
    base = np.linspace(0.010, 0.011, n)
    result = compare_latency(latency(base), latency(base * 2))
    assert result.verdict is expected
    if expected is Verdict.INCONCLUSIVE:
        assert f"too few rounds ({n} baseline, {n} current; at least {decide.MIN_SAMPLES} a side)" in result.line()


def test_line_reads_as_one_sentence() -> None:
    base, control = noisy(1, 0.01231, 30, 0.01), noisy(2, 0.003, 15, 0.01)
    line = compare_latency(latency(base, control), latency(base * 1.15, control * 0.97)).line()
    assert line.startswith("median 12.")
    for part in ("ms -> 1", "drift-corrected p10 x1.1", "95% CI 1.", "p=", "machine drift x0.97",
                 "slower, past the alarm line x1.060 of the 10 % minimum effect"):
        assert part in line


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"statistic": "p95"}, "statistic='p95' is unknown; use one of p10, median, mean, p90, p99."),
    ({"direction": "up"}, "direction='up' is unknown; use 'lower'"),
    ({"min_effect": 0.0}, "min_effect=0.0 must lie in (0, 10)"),
    ({"min_effect": 10.0}, "min_effect=10.0 must lie in (0, 10)"),
    ({"alpha": 1.5}, "alpha=1.5 must lie in (0.00025, 1), the bootstrap's resolution"),
    ({"alpha": 0.0001}, "alpha=0.0001 must lie in (0.00025, 1)"),
    ({"session_spread": -0.01}, "session_spread=-0.01 must lie in [0, 1), e.g. 0.03"),
    ({"session_spread": 1.0}, "session_spread=1.0 must lie in [0, 1)"),
])
def test_bad_latency_arguments_raise_one_sentence(kwargs: dict[str, Any], message: str) -> None:
    m = latency([0.01] * 10)
    with pytest.raises(ValueError) as info:
        compare_latency(m, m, **kwargs)
    assert message in str(info.value)


def test_a_session_to_session_offset_is_no_verdict_once_sessions_vary() -> None:
    # Two tight sessions 6 % apart: within either session the rounds say "certainly faster", but one
    # process's offset from the next is of that size (docs/studies/stored-aa-2026-12-04.md, pair 5: x0.941).
    base, control = noisy(11, 0.40, 40, 0.01), noisy(12, 0.003, 20, 0.005)
    current = latency(base * 0.94, control)
    assert compare_latency(latency(base, control), current).verdict is Verdict.IMPROVED
    spread = compare_latency(latency(base, control), current, session_spread=0.03)
    assert spread.verdict is Verdict.PASS
    assert spread.ratio == pytest.approx(compare_latency(latency(base, control), current).ratio)
    assert "with 3 % between sessions" in spread.line()


@pytest.mark.parametrize("factor", [1.25, 0.75])
def test_a_large_change_still_gets_its_verdict_with_a_session_spread(factor: float) -> None:
    base, control = noisy(13, 0.40, 40, 0.01), noisy(14, 0.003, 20, 0.005)
    result = compare_latency(latency(base, control), latency(base * factor, control), session_spread=0.03)
    assert result.verdict is (Verdict.REGRESSED if factor > 1 else Verdict.IMPROVED)
    assert result.ratio_low < factor < result.ratio_high


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_non_positive_samples_raise_naming_the_test(bad: float) -> None:
    with pytest.raises(ValueError, match=r"baseline samples of 't.py::test' hold a value"):
        compare_latency(latency([0.01] * 9 + [bad]), latency([0.01] * 10))


def _comparison(verdict: Verdict) -> decide.LatencyComparison:
    return decide.LatencyComparison(verdict, 0.01, 0.012, 1.0, 1.2, 1.1, 1.3, 1e-6, 0.1, "median",
                                    reason="worse")


def _with_ratio(verdict: Verdict, ratio: float) -> decide.LatencyComparison:
    return replace(_comparison(verdict), ratio=ratio)


@pytest.mark.parametrize(("first", "pooled", "expected"), [
    (Verdict.REGRESSED, Verdict.REGRESSED, Verdict.REGRESSED),
    (Verdict.REGRESSED, Verdict.PASS, Verdict.PASS),
    (Verdict.REGRESSED, Verdict.INCONCLUSIVE, Verdict.INCONCLUSIVE),
])
def test_confirm_takes_the_pooled_verdict_of_a_screened_run(first: Verdict, pooled: Verdict, expected: Verdict) -> None:
    result = confirm(_comparison(first), _comparison(pooled))
    assert result.verdict is expected
    assert result.confirmed
    assert not should_confirm(result)


def test_confirm_keeps_a_clear_pass() -> None:
    first = _with_ratio(Verdict.PASS, 1.0)
    assert confirm(first, _comparison(Verdict.REGRESSED)) is first


@pytest.mark.parametrize(("verdict", "ratio", "expected"), [
    (Verdict.REGRESSED, 1.2, True),
    (Verdict.PASS, 1.0 + decide.SCREEN_SHARE * 0.1 + 1e-9, True),  # worse by the screen share: look again
    (Verdict.PASS, 1.0 + decide.SCREEN_SHARE * 0.1 - 1e-3, False),
    (Verdict.IMPROVED, 0.8, False),
    (Verdict.INCONCLUSIVE, 1.2, False),
    (Verdict.NOT_COMPARED, 1.2, False),
])
def test_should_confirm_regressions_and_screened_passes(verdict: Verdict, ratio: float, expected: bool) -> None:
    assert should_confirm(_with_ratio(verdict, ratio)) is expected


def test_confirm_says_how_many_re_measurements_it_took() -> None:
    result = confirm(_comparison(Verdict.REGRESSED), _comparison(Verdict.REGRESSED), remeasurements=3)
    assert result.reason.endswith("(confirmed by 3 re-measurements)")
    passed = confirm(_comparison(Verdict.REGRESSED), _with_ratio(Verdict.PASS, 1.0))
    assert passed.reason.endswith("(a first run looked worse; with a re-measurement it did not)")


def test_drift_limit_applies_only_to_corrected_comparisons() -> None:
    drifted = replace(_comparison(Verdict.INCONCLUSIVE), drift=1.5)
    assert drifted.drift_beyond_limit and should_confirm(drifted)
    side_by_side = replace(drifted, corrected=False)  # --against: the control is only reported
    assert not side_by_side.drift_beyond_limit and not should_confirm(side_by_side)


# ----------------------------------------------------------------------------------------- accuracy


@given(st.integers(0, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.floats(0.5, 0.999))
def test_wilson_bounds_contain_the_point_and_lie_in_unit_interval(kn: tuple[int, int], confidence: float) -> None:
    k, n = kn
    low, high = wilson_interval(k, n, confidence)
    assert 0.0 <= low <= high <= 1.0
    if n:
        assert low <= k / n <= high


@pytest.mark.parametrize(("k", "n", "confidence"), [(-1, 10, 0.95), (11, 10, 0.95), (1, 10, 1.0)])
def test_wilson_rejects_bad_arguments(k: int, n: int, confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(k, n, confidence)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=300))
def test_mcnemar_is_symmetric(pairs: list[tuple[bool, bool]]) -> None:
    a = Measurement("t", Kind.ACCURACY, "accuracy", "", 0.0, tuple(float(x) for x, _ in pairs))
    b = Measurement("t", Kind.ACCURACY, "accuracy", "", 0.0, tuple(float(y) for _, y in pairs))
    forward, backward = compare_accuracy(a, b), compare_accuracy(b, a)
    assert (forward.lost, forward.gained) == (backward.gained, backward.lost)
    if forward.lost == forward.gained:
        assert forward.verdict is backward.verdict is Verdict.PASS
        assert forward.p_value >= 0.5


def _flip(base: Measurement, lose: int, gain: int) -> Measurement:
    """The baseline with ``lose`` right answers turned wrong and ``gain`` wrong ones turned right."""
    samples = list(base.samples)
    right = [i for i, x in enumerate(samples) if x == 1.0]
    wrong = [i for i, x in enumerate(samples) if x == 0.0]
    for i in right[:lose]:
        samples[i] = 0.0
    for i in wrong[:gain]:
        samples[i] = 1.0
    return Measurement(base.test_id, base.kind, base.metric, base.unit, sum(samples) / len(samples),
                       tuple(samples))


@pytest.mark.parametrize(("lose", "gain", "kwargs", "expected"), [
    (0, 0, {}, Verdict.PASS),
    (1, 0, {}, Verdict.PASS),  # 0.895 >= 0.99 * 0.9 = 0.891
    (2, 0, {}, Verdict.REGRESSED),  # 0.890 < 0.891: the MLPerf-style fraction rule
    (4, 0, {"min_fraction": 0.5}, Verdict.PASS),  # 2-point drop, but McNemar p = 1/16 > 0.05
    (5, 0, {"min_fraction": 0.5}, Verdict.REGRESSED),  # p = 1/32 < 0.05 and drop 2.5 points
    (5, 5, {"min_fraction": 0.5}, Verdict.PASS),  # same accuracy, different examples
    (6, 0, {"min_fraction": 0.5, "min_drop": 0.05}, Verdict.PASS),  # significant but small
    (0, 6, {}, Verdict.IMPROVED),
])
def test_accuracy_verdict_on_either_side_of_thresholds(lose: int, gain: int, kwargs: dict[str, Any],
                                                       expected: Verdict) -> None:
    base = correctness(180, 200)
    result = compare_accuracy(base, _flip(base, lose, gain), **kwargs)
    assert result.verdict is expected, result.line()
    assert (result.lost, result.gained, result.n) == (lose, gain, 200)
    assert result.current_low <= result.current_accuracy <= result.current_high


@pytest.mark.parametrize(("current", "reason"), [
    (correctness(90, 100), "the baseline has 200 examples and this run 100"),
    (correctness(180, 200, list(range(1, 201))), "the example ids differ"),
    (Measurement("t", Kind.ACCURACY, "accuracy", "", 0.9), "a side has no per-example samples"),
])
def test_unpaired_accuracy_is_not_compared(current: Measurement, reason: str) -> None:
    base = correctness(180, 200, list(range(200)))
    result = compare_accuracy(base, current)
    assert result.verdict is Verdict.NOT_COMPARED
    assert reason in result.line()


def test_accuracy_rejects_non_binary_samples() -> None:
    base = correctness(1, 2)
    bad = Measurement("t.py::acc", Kind.ACCURACY, "accuracy", "", 0.5, (0.5, 1.0))
    with pytest.raises(ValueError, match="must be per-example 0/1 correctness"):
        compare_accuracy(base, bad)


@pytest.mark.parametrize(("kwargs", "name"), [({"min_drop": 1.0}, "min_drop"), ({"min_fraction": 0.0}, "min_fraction"),
                                              ({"alpha": 0.0}, "alpha")])
def test_bad_accuracy_arguments_raise(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}="):
        compare_accuracy(correctness(1, 2), correctness(1, 2), **kwargs)


# ------------------------------------------------------------------------------------------- memory


@pytest.mark.parametrize(("baseline", "current", "kwargs", "expected"), [
    (100 * MB, 110 * MB, {}, Verdict.PASS),  # exactly baseline + 10 %
    (100 * MB, 110 * MB + 1, {}, Verdict.REGRESSED),
    (100 * MB, 90 * MB, {}, Verdict.PASS),
    (100 * MB, 90 * MB - 1, {}, Verdict.IMPROVED),
    (None, 50 * MB, {"limit_bytes": 50 * MB}, Verdict.PASS),
    (None, 50 * MB + 1, {"limit_bytes": 50 * MB}, Verdict.REGRESSED),
    (100 * MB, 105 * MB, {"limit_bytes": 104 * MB}, Verdict.REGRESSED),  # the limit wins
    (100 * MB, 200 * MB, {"rel": None, "limit_bytes": 300 * MB}, Verdict.PASS),
    (None, 50 * MB, {}, Verdict.NOT_COMPARED),
])
def test_memory_verdict_on_either_side_of_thresholds(baseline: float | None, current: float,
                                                     kwargs: dict[str, Any], expected: Verdict) -> None:
    assert compare_memory(baseline, current, **kwargs).verdict is expected


def test_memory_line_names_figure_peak_baseline_and_tolerance() -> None:
    line = compare_memory(100 * 2**20, 120 * 2**20, figure="RSS growth").line()
    assert line == "RSS growth 120.0 MiB: above the baseline 100.0 MiB + 10% = 110.0 MiB"
    assert "over the limit of 1.0 GiB" in compare_memory(None, 2**31, limit_bytes=2**30).line()


@pytest.mark.parametrize(("args", "kwargs", "name"), [
    ((-1.0, 10.0), {}, "baseline_bytes"), ((1.0, math.nan), {}, "current_bytes"),
    ((1.0, 1.0), {"rel": -0.1}, "rel"), ((1.0, 1.0), {"limit_bytes": -5.0}, "limit_bytes")])
def test_bad_memory_arguments_raise(args: tuple[float, float], kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}="):
        compare_memory(*args, **kwargs)


# ----------------------------------------------------------------------------------- perplexity


@pytest.mark.parametrize(("current", "expected"), [(10.0, Verdict.PASS), (10.1, Verdict.PASS),
                                                   (10.1001, Verdict.REGRESSED), (9.8, Verdict.IMPROVED)])
def test_perplexity_tolerance(current: float, expected: Verdict) -> None:
    result = compare_perplexity(10.0, current)
    assert result.verdict is expected
    assert "perplexity 10 -> " in result.line()


# ------------------------------------------------------------------------------- between sessions


@FAST
@given(st.lists(st.lists(st.floats(-1, 1), min_size=1, max_size=6), min_size=1, max_size=5),
       st.lists(st.floats(-5, 5), min_size=5, max_size=5))
def test_pooled_spread_ignores_steps_between_groups(groups: list[list[float]], steps: list[float]) -> None:
    plain = decide.pooled_spread(groups)
    shifted = decide.pooled_spread([[x + step for x in group] for group, step in zip(groups, steps)])
    assert plain.df == shifted.df == sum(len(g) - 1 for g in groups)
    assert plain.sessions == sum(len(g) for g in groups)
    if plain.df:
        assert shifted.sd == pytest.approx(plain.sd, abs=1e-9)
    else:
        assert math.isnan(plain.sd) and math.isnan(shifted.sd)


def test_corrected_log_figure_is_the_statistic_over_its_control_figure() -> None:
    samples, control = noisy(21, 0.02, 30, 0.05), noisy(22, 0.005, 12, 0.05)
    tail = replace(latency(samples, control), latency=LatencyDetail("p90"))
    expected = math.log(np.quantile(samples, 0.9) / np.quantile(control, 0.9))  # a tail: the control's own p90
    assert decide.corrected_log_figure(tail) == pytest.approx(expected)
    floor = replace(latency(samples, control), latency=LatencyDetail("p10"))
    expected = math.log(np.quantile(samples, 0.1) / np.quantile(control, decide.CONTROL_QUANTILE))
    assert decide.corrected_log_figure(floor) == pytest.approx(expected)
    assert decide.corrected_log_figure(latency(samples)) is None  # no control rounds: nothing to correct by


def _interfered(seed: int, median: float, n: int, share: float, factor: float) -> np.ndarray[Any, Any]:
    """Rounds of one session where ``share`` of them (evenly spread) ran ``factor`` slower: interference."""
    rounds = noisy(seed, median, n, 0.01)
    if share:
        rounds[:: round(1 / share)] *= factor
    return rounds


@pytest.mark.parametrize("statistic", ["p90", "p99"])
def test_a_tail_is_corrected_by_the_controls_same_percentile_so_more_interference_is_no_change(
        statistic: str) -> None:
    # The current session had interference in a quarter of its rounds, the model's and the control's
    # alike (they are timed between each other): its tail grew, its floor did not.
    base = latency(_interfered(1, 0.012, 100, 0.0, 1.0), _interfered(2, 0.04, 60, 0.0, 1.0))
    current = latency(_interfered(3, 0.012, 100, 0.25, 1.4), _interfered(4, 0.04, 60, 0.25, 1.4))
    found = decide.compare_latency(base, current, statistic=statistic, min_effect=0.20)
    assert found.verdict is Verdict.PASS and found.ratio == pytest.approx(1.0, abs=0.05)
    assert found.drift == pytest.approx(1.0, abs=0.03) and found.tail_control == pytest.approx(1.4, rel=0.05)
    assert f"control {statistic} x{found.tail_control:.2f}" in found.line()
    # The floor leaves the interference in: the same tail would read as a 40 % regression.
    raw = float(np.quantile(current.samples, 0.9 if statistic == "p90" else 0.99)
                / np.quantile(base.samples, 0.9 if statistic == "p90" else 0.99))
    assert raw == pytest.approx(1.4, rel=0.05)


def test_the_lower_decile_is_still_corrected_by_the_floor_whatever_the_tail() -> None:
    base = latency(_interfered(1, 0.012, 100, 0.0, 1.0), _interfered(2, 0.04, 60, 0.0, 1.0))
    current = latency(_interfered(3, 0.012 * 1.3, 100, 0.25, 1.4), _interfered(4, 0.04, 60, 0.25, 1.4))
    found = decide.compare_latency(base, current, statistic="p10", min_effect=0.10)
    assert found.tail_control is None and "control p10" not in found.line()
    assert found.verdict is Verdict.REGRESSED and found.ratio == pytest.approx(1.3, rel=0.03)
