"""Objectives: durations such as '500 ms' and keys such as 'ttft_p99' are read exactly or refused plainly."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.objectives import Metric, Objective, parse_duration, parse_objective_key, parse_slo

UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "MS": 1e-3, "s": 1.0, "sec": 1.0, "seconds": 1.0, "min": 60.0}
numbers = st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False, allow_infinity=False)


@given(number=numbers, unit=st.sampled_from(sorted(UNITS)), space=st.sampled_from(["", " ", "  "]))
def test_a_number_and_a_unit_read_as_seconds(number: object, unit: str, space: str) -> None:
    text = f"{number}{space}{unit}"
    assert math.isclose(parse_duration(text), float(str(number)) * UNITS[unit], rel_tol=1e-12, abs_tol=1e-15)


@given(value=st.floats(min_value=0, max_value=1e6, allow_nan=False) | st.integers(min_value=0, max_value=10**6))
def test_plain_numbers_are_seconds(value: float) -> None:
    assert parse_duration(value) == float(value)


@given(text=st.text(max_size=12))
def test_any_text_is_read_or_refused_with_one_sentence(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        message = str(exc)
        assert message.endswith(".") and "'2 min'" in message and message.count("\n") == 0
    else:
        assert math.isfinite(seconds) and seconds >= 0


@pytest.mark.parametrize(("text", "why"), [
    ("500", "has no unit"), ("-5 ms", "cannot be negative"), ("5 parsecs", "'parsecs' is not a time unit"),
    ("ms", "Cannot read"), ("1e400 s", "not a finite number"), (float("nan"), "not a finite number"),
])
def test_bad_durations_say_why(text: str | float, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_duration(text, where="slo['ttft_p99']")


def test_a_duration_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Cannot read the duration True"):
        parse_duration(True)  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "expected"), [
    ("ttft_p99", (Metric.TTFT, 99.0)), ("TPOT_p50", (Metric.TPOT, 50.0)), ("itl_p99.9", (Metric.ITL, 99.9)),
    ("e2e_p90", (Metric.E2E, 90.0)),
])
def test_objective_keys(key: str, expected: tuple[Metric, float]) -> None:
    assert parse_objective_key(key) == expected


@pytest.mark.parametrize(("key", "why"), [
    ("latency_p99", "write a figure"), ("ttft99", "write a figure"), ("ttft_p100", "between 0 and 100"),
    ("ttft_p0", "between 0 and 100"),
])
def test_bad_objective_keys_say_why(key: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_objective_key(key)


def test_an_slo_mapping_reads_in_order_with_its_keys() -> None:
    objectives = parse_slo({"ttft_p99": "500 ms", "tpot_p99": 0.05})
    assert objectives == (Objective(Metric.TTFT, 99.0, 0.5), Objective(Metric.TPOT, 99.0, 0.05))
    assert [o.key for o in objectives] == ["ttft_p99", "tpot_p99"]


@pytest.mark.parametrize(("slo", "why"), [
    ({"ttft_p99": "0 ms"}, "give a time above 0"), ({"ttft_p99": "1 s", "TTFT_p99": "2 s"}, "twice"),
    ({"ttft_p99": "soon"}, "given in the objective 'ttft_p99'"),
])
def test_bad_slos_say_why(slo: dict[str, str], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_slo(slo)
