"""The typed result records round-trip through JSON exactly: workers and reports rely on it."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from modelperf.records import Kind, Measurement, SessionResults, TestResult

_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_TEXT = st.text(max_size=12)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | _FLOATS | _TEXT,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                     max_leaves=8)

_MEASUREMENTS = st.builds(
    Measurement, test_id=_TEXT, kind=st.sampled_from(Kind), metric=_TEXT, unit=_TEXT, value=_FLOATS,
    samples=st.lists(_FLOATS, max_size=5).map(tuple), control=st.lists(_FLOATS, max_size=5).map(tuple),
    model=st.none() | _TEXT, extra=st.dictionaries(_TEXT, _JSON, max_size=4))
_OPTIONAL = st.none() | _FLOATS
_RESULTS = st.builds(TestResult, measurement=_MEASUREMENTS, line=_TEXT,
                     verdict=st.sampled_from(["recorded", "pass", "regressed", "improved", "inconclusive"]),
                     baseline=_OPTIONAL, ratio=_OPTIONAL, drift=_OPTIONAL, p_value=_OPTIONAL,
                     section=st.none() | _TEXT, pid=st.integers(min_value=0, max_value=2**22),
                     ratio_low=_OPTIONAL, ratio_high=_OPTIONAL)
_SESSIONS = st.builds(
    SessionResults, results=st.lists(_RESULTS, max_size=3).map(tuple),
    models=st.dictionaries(_TEXT, st.dictionaries(_TEXT, _JSON, max_size=3), max_size=2),
    machine=st.dictionaries(_TEXT, _JSON, max_size=3), hardware_id=_TEXT, notes=st.lists(_TEXT, max_size=3).map(tuple),
    sections=st.dictionaries(_TEXT, st.lists(_TEXT, max_size=3).map(tuple), max_size=2), commit=st.none() | _TEXT,
    dirty=st.booleans())


@given(_RESULTS)
def test_a_test_result_round_trips_through_json_text(result: TestResult) -> None:
    assert TestResult.from_json(json.loads(json.dumps(result.to_json()))) == result


@given(_SESSIONS)
def test_session_results_round_trip_through_json_text(session: SessionResults) -> None:
    assert SessionResults.from_json(json.loads(json.dumps(session.to_json()))) == session


def test_a_result_keeps_the_json_layout_of_earlier_exports() -> None:
    measurement = Measurement("t.py::test_a", Kind.LATENCY, "p10_s", "s", 0.01, (0.01,))
    data = TestResult(measurement, "median 10.0 ms", "pass", 0.011, ratio=0.9, pid=7).to_json()
    assert data == {"measurement": measurement.to_json(), "line": "median 10.0 ms", "verdict": "pass",
                    "baseline": 0.011, "ratio": 0.9, "pid": 7}
    assert TestResult.from_json(data).regressed is False
