"""The typed result records round-trip through JSON exactly (workers and reports rely on it), and
records written in schema 1 (details as free-form ``extra`` keys) are read into the typed fields."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from modelperf.records import (
    AccuracyDetail,
    Judgement,
    Kind,
    LatencyDetail,
    Measurement,
    MemoryDetail,
    PairedRuns,
    RunFigure,
    SessionResults,
    TestResult,
    Verdict,
    measurement_from_json,
)

_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_TEXT = st.text(max_size=12)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | _FLOATS | _TEXT,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                     max_leaves=8)
_OPTIONAL = st.none() | _FLOATS
_INTS = st.integers(min_value=0, max_value=10**6)
_RUNS = st.lists(st.builds(RunFigure, process=_INTS, value=_FLOATS, control=_OPTIONAL, rounds=_INTS),
                 max_size=3).map(tuple)
_LATENCY = st.builds(LatencyDetail, statistic=st.sampled_from(["p10", "median", "p90"]), rounds=_INTS,
                     iterations=_INTS, control_version=st.none() | _TEXT, remeasured_rounds=_INTS,
                     remeasured_alone=st.booleans(), busy_factor=_OPTIONAL,
                     paired=st.none() | st.builds(PairedRuns, ref=_TEXT, min_effect=_FLOATS, statistic=_TEXT,
                                                  base=_RUNS, change=_RUNS))
_MEMORY = st.builds(MemoryDetail, figure=st.sampled_from(["memray", "rss"]), memray_peak_bytes=_INTS,
                    rss_peak_bytes=_INTS, rss_delta_bytes=_INTS)
_ACCURACY = st.builds(AccuracyDetail, dataset=_TEXT, dataset_sha256=_TEXT,
                      example_ids=st.lists(_INTS, max_size=3).map(tuple),
                      labels=st.lists(_INTS, max_size=3).map(tuple), predictions=st.lists(_INTS, max_size=3).map(tuple),
                      scores=st.lists(_FLOATS, max_size=3).map(tuple), seconds_per_example=_FLOATS)
_MEASUREMENTS = st.builds(
    Measurement, test_id=_TEXT, kind=st.sampled_from(Kind), metric=_TEXT, unit=_TEXT, value=_FLOATS,
    samples=st.lists(_FLOATS, max_size=5).map(tuple), control=st.lists(_FLOATS, max_size=5).map(tuple),
    model=st.none() | _TEXT, role=st.none() | _TEXT, latency=st.none() | _LATENCY, memory=st.none() | _MEMORY,
    accuracy=st.none() | _ACCURACY, info=st.dictionaries(_TEXT, _JSON, max_size=4))
_JUDGEMENTS = st.builds(Judgement, verdict=st.sampled_from(Verdict), line=_TEXT, reference=_OPTIONAL, ratio=_OPTIONAL,
                        ratio_low=_OPTIONAL, ratio_high=_OPTIONAL, drift=_OPTIONAL, p_value=_OPTIONAL)
_RESULTS = st.builds(TestResult, measurement=_MEASUREMENTS, judgement=_JUDGEMENTS, section=st.none() | _TEXT,
                     pid=st.integers(min_value=0, max_value=2**22))
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


# Records as the code before the typed details wrote them (schema 1), one per kind.
_V1_LATENCY = {"test_id": "t.py::test_a", "kind": "latency", "metric": "p10_s", "unit": "s", "value": 0.01,
               "samples": [0.01, 0.011], "control": [0.002], "model": "distilbert@abc",
               "extra": {"statistic": "p10", "rounds": 2, "iterations": 1, "control_version": "torch-v3",
                         "busy_factor": 1.3, "remeasured": 20, "role": "distilbert:batch1", "sentences_per_s": 99.5}}
_V1_MEMORY = {"test_id": "t.py::test_m", "kind": "peak_memory", "metric": "memray_peak_bytes", "unit": "B",
              "value": 1000.0, "samples": [1000.0], "control": [], "model": None,
              "extra": {"figure": "memray peak", "memray_peak_bytes": 1000, "rss_peak_bytes": 5000,
                        "rss_delta_bytes": 700}}
_V1_ACCURACY = {"test_id": "t.py::test_c", "kind": "accuracy", "metric": "accuracy", "unit": "fraction", "value": 0.5,
                "samples": [1.0, 0.0], "control": [], "model": "m",
                "extra": {"dataset": "set", "dataset_sha256": "ff", "example_ids": [3, 4], "labels": [1, 0],
                          "predictions": [1, 1], "scores": [0.9, 0.8], "seconds_per_example": 0.002, "n": 2}}


def test_a_schema_1_latency_record_reads_into_typed_fields() -> None:
    m = measurement_from_json(_V1_LATENCY, schema=1)
    assert m.latency == LatencyDetail("p10", 2, 1, "torch-v3", remeasured_rounds=20, busy_factor=1.3)
    assert m.role == "distilbert:batch1" and m.statistic == "p10"
    assert dict(m.info) == {"sentences_per_s": 99.5}  # the test's own figure stays, for display


def test_a_schema_1_memory_record_reads_into_typed_fields() -> None:
    m = measurement_from_json(_V1_MEMORY, schema=1)
    assert m.memory == MemoryDetail("memray", 1000, 5000, 700) and not m.info


def test_a_schema_1_accuracy_record_reads_into_typed_fields() -> None:
    m = measurement_from_json(_V1_ACCURACY, schema=1)
    assert m.accuracy == AccuracyDetail("set", "ff", (3, 4), (1, 0), (1, 1), (0.9, 0.8), 0.002)


def test_a_schema_1_results_json_entry_reads_with_its_verdict() -> None:
    data = {"measurement": _V1_LATENCY, "line": "median 10.0 ms", "verdict": "regressed", "baseline": 0.011,
            "ratio": 1.2, "ratio_low": 1.1, "ratio_high": 1.3, "pid": 7}
    result = TestResult.from_json(data)
    assert result.regressed and result.judgement.reference == 0.011 and result.judgement.ratio_high == 1.3
    assert result.measurement.latency is not None and result.measurement.latency.control_version == "torch-v3"
