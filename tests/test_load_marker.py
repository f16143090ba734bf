"""The `load` marker's options: what it accepts, what it refuses, and the one sentence it refuses with."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelperf.markers import DEFAULT_LOAD_FIGURE, LoadOptions, MarkerError, parse_marker
from modelperf.vocab import LOAD_FIGURES

WHERE = "tests/test_x.py::test_under_load"

durations = st.one_of(
    st.floats(min_value=0.001, max_value=3600, allow_nan=False),
    st.builds(lambda n, unit: f"{n:g} {unit}", st.floats(min_value=0.001, max_value=600), st.sampled_from(["s", "ms",
                                                                                                            "min"])),
)
anything = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=12), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2))


# A shared 2-core machine can make drawing slow; the property is about parsing, not speed.
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RELAXED
@given(rate=st.floats(min_value=1e-3, max_value=1e5), duration=durations, max_requests=st.integers(1, 100_000))
def test_any_positive_rate_duration_and_bound_is_kept(rate: float, duration: float | str, max_requests: int) -> None:
    options = parse_marker("load", (), {"rate": rate, "duration": duration, "max_requests": max_requests}, WHERE)
    assert options.rate == rate and options.max_requests == max_requests
    assert options.duration_s > 0
    assert options.gated_figure == DEFAULT_LOAD_FIGURE and options.gated_direction == "lower"


@RELAXED
@given(st.dictionaries(st.sampled_from(["rate", "concurrency", "duration", "max_requests", "slo", "max_rate",
                                        "max_runs", "tokens", "figure", "min_effect", "direction", "alpha", "seed"]),
                       anything, max_size=4))
def test_any_arguments_are_kept_or_refused_in_one_sentence_naming_the_test(kwargs: dict[str, Any]) -> None:
    try:
        options = parse_marker("load", (), kwargs, WHERE)
    except MarkerError as exc:
        text = str(exc)
        assert text.startswith(f"{WHERE}: @pytest.mark.load: ") and "\n" not in text and text.endswith(".")
        return
    assert isinstance(options, LoadOptions)
    assert options.duration_s > 0 and options.gated_figure in LOAD_FIGURES


@pytest.mark.parametrize(("kwargs", "fix"), [
    ({}, "give either rate=... "),
    ({"rate": 1.0, "concurrency": 2}, "exactly one of them"),
    ({"concurrency": 0}, "concurrency=0 must be a whole number of at least 1"),
    ({"rate": -1.0}, "rate=-1.0 must be a number between 0"),
    ({"rate": 1.0, "duration": "20"}, "has no unit"),
    ({"rate": 1.0, "duration": "0 s"}, "give a time above 0"),
    ({"rate": 1.0, "slo": {"ttft_p100": "1 s"}}, "give one between 0 and 100"),
    ({"rate": 1.0, "slo": {"latency_p99": "1 s"}}, "Cannot read the objective 'latency_p99'"),
    ({"rate": 1.0, "slo": "ttft_p99=1s"}, "is not a mapping"),
    ({"max_rate": True}, "max_rate=True needs objectives"),
    ({"max_rate": True, "concurrency": 2, "slo": {"e2e_p99": "1 s"}}, "takes no concurrency"),
    ({"rate": 1.0, "figure": "max_rate"}, "add max_rate=True"),
    ({"rate": 1.0, "figure": "goodput"}, "add slo={...}"),
    ({"rate": 1.0, "figure": "ttft_p95"}, "is not one of e2e_p50"),
    ({"rate": 1.0, "direction": "up"}, "is not one of lower, higher"),
    ({"rate": 1.0, "max_requests": 0}, "max_requests=0 must be a whole number of at least 1"),
    ({"rate": 1.0, "tokens": 1.5}, "tokens=1.5 must be a whole number"),
])
def test_bad_arguments_say_what_to_write(kwargs: dict[str, Any], fix: str) -> None:
    with pytest.raises(MarkerError, match="^" + WHERE) as raised:
        parse_marker("load", (), kwargs, WHERE)
    assert fix in str(raised.value)


@pytest.mark.parametrize(("kwargs", "figure", "direction"), [
    ({"concurrency": 4}, "e2e_p50", "lower"),
    ({"max_rate": True, "slo": {"ttft_p99": "2 s"}}, "max_rate", "higher"),
    ({"rate": 2.0, "slo": {"ttft_p99": "2 s"}, "figure": "goodput"}, "goodput", "higher"),
    ({"rate": 2.0, "figure": "tpot_p90", "direction": "higher"}, "tpot_p90", "higher"),
])
def test_the_gated_figure_and_its_direction_follow_the_mode(kwargs: dict[str, Any], figure: str,
                                                            direction: str) -> None:
    options = parse_marker("load", (), kwargs, WHERE)
    assert (options.gated_figure, options.gated_direction) == (figure, direction)
