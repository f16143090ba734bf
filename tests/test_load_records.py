"""A load figure's record round-trips through JSON, and records without one read as before."""

from __future__ import annotations

import json

from modelperf.records import (
    Judgement,
    Kind,
    LoadDetail,
    LoadObjective,
    LoadPercentiles,
    Measurement,
    TestResult,
    measurement_from_json,
)
from modelperf.vocab import Verdict

DETAIL = LoadDetail("Poisson 2/s (seed 0)", "http://127.0.0.1:8000/v1/completions (16 tokens per request)", 20.0,
                    40, 39, 1, 1.9, 30.4, LoadPercentiles(0.2, 0.4, 0.9, 39), LoadPercentiles(0.02, 0.03, 0.05, 39),
                    LoadPercentiles(0.02, 0.04, 0.08, 585), LoadPercentiles(0.5, 0.9, 1.4, 39), 0.95,
                    (LoadObjective("ttft_p99", 1.0, 0.9, True), LoadObjective("e2e_p99", 0.5, None, False)),
                    2.0, 2.8, 5)


def test_a_load_measurement_round_trips_through_json() -> None:
    measurement = Measurement("tests/test_x.py::test_served", Kind.LOAD, "e2e_p50", "s", 0.5, (0.4, 0.5, 0.6),
                              role="llama:max_rate", load=DETAIL, info={"mean_gap_s": 0.5})
    text = json.dumps(TestResult(measurement, Judgement(Verdict.PASS, "fine")).to_json(), allow_nan=False)
    assert TestResult.from_json(json.loads(text)).measurement == measurement
    assert measurement_from_json(json.loads(text)["measurement"]) == measurement


def test_a_schema_2_record_of_another_kind_has_no_load_detail() -> None:
    latency = Measurement("t::x", Kind.LATENCY, "p10_s", "s", 0.01, (0.01, 0.02))
    data = latency.to_json()
    assert "load" not in data
    assert measurement_from_json(data, schema=2).load is None
