"""A history of several runs on two machines, and a pull request's ``--against`` results, for report tests.

Seeded and fixed: the same figures every time, shaped like the suite's (latency in seconds with 20
rounds, memray peaks in bytes, per-example accuracy), with a lasting +6 % step on one machine, one
regressed run, and the first run of each machine recorded as the baseline.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from modelperf.records import Judgement, LatencyDetail, Measurement, SessionResults, TestResult
from modelperf.store.history import HistoryStore, RunInfo
from modelperf.vocab import Kind, Verdict

__all__ = ["AGAINST", "BATCH1", "DECODE", "MACHINES", "RUNS", "STEP_AT", "page_figures", "write_history",
           "write_results"]

MACHINES = ("x86_64-linux-ci-4core", "arm64-linux-graviton-2core")
RUNS = 12  # per machine
STEP_AT = 7  # on the first machine, batch-1 latency steps up by 6 % from this run on
BATCH1 = "tests/suite/test_latency.py::test_distilbert_batch1"
DECODE = "tests/suite/test_latency.py::test_llama_decode"
MEMORY = "tests/suite/test_memory.py::test_load_memory[distilbert]"
ACCURACY = "tests/suite/test_accuracy.py::test_distilbert_accuracy"
AGAINST = "main (1a2b3c4d5e)"
_DISTILBERT = "distilbert@0123456789ab"
_LLAMA = "llama@ba9876543210"


def _latency(rng: np.random.Generator, test: str, model: str, level: float, verdict: str) -> TestResult:
    run_level = level * float(np.exp(rng.normal(0.0, 0.004)))
    rounds = tuple(float(x) for x in run_level * np.exp(rng.normal(0.0, 0.02, 20)))
    return _judged(Measurement(test, Kind.LATENCY, "p10_s", "s", float(np.percentile(rounds, 10)), rounds,
                               model=model, latency=LatencyDetail("p10")), verdict)


def _judged(measurement: Measurement, verdict: str) -> TestResult:
    return TestResult(measurement, Judgement(Verdict(verdict), ""))


def _figures(rng: np.random.Generator, machine: int, run: int) -> list[TestResult]:
    slow = 1.0 if machine == 0 else 1.7  # the second machine is slower throughout
    verdict = "recorded" if run == 0 else "pass"
    batch1 = 0.0124 * slow * (1.06 if machine == 0 and run >= STEP_AT else 1.0)
    batch1_verdict = "regressed" if machine == 0 and run == STEP_AT + 1 else verdict
    peak = 412.0 * 2**20 * (1 + 0.002 * float(rng.normal()))
    correct = rng.random(400) < 0.87
    return [
        _latency(rng, BATCH1, _DISTILBERT, batch1, batch1_verdict),
        _latency(rng, DECODE, _LLAMA, 0.031 * slow, verdict),
        _judged(Measurement(MEMORY, Kind.MEMORY, "memray_peak_bytes", "B", peak, (peak,), model=_DISTILBERT),
                verdict),
        _judged(Measurement(ACCURACY, Kind.ACCURACY, "accuracy", "fraction", float(correct.mean()),
                            tuple(float(c) for c in correct), model=_DISTILBERT), verdict),
    ]


def write_history(path: Path) -> str:
    """A SQLite history of ``RUNS`` runs on each of ``MACHINES``, a day apart, interleaved in time."""
    rng = np.random.default_rng(7)
    with HistoryStore(str(path)) as store:
        for run in range(RUNS):
            for machine, hardware in enumerate(MACHINES):
                started = f"2026-03-{run + 1:02d}T0{2 + 3 * machine}:15:00+00:00"
                info = RunInfo(f"{machine}{run:03d}" + "0" * 28, started, hardware, commit=f"{run:02d}c0ffee{run:02d}ab")
                store.append(info, _figures(rng, machine, run))
    return str(path)


def write_results(path: Path) -> Path:
    """A pull request's ``--results-json``: paired latency ratios with intervals, memory and accuracy."""
    def latency(test: str, value: float, ratio: float, low: float, high: float, verdict: str) -> TestResult:
        measured = Measurement(test, Kind.LATENCY, "p10_s", "s", value, (value,) * 5)
        return TestResult(measured, Judgement(Verdict(verdict), f"x{ratio:.3f}", value / ratio, ratio=ratio,
                                              ratio_low=low, ratio_high=high))

    peak = Measurement(MEMORY, Kind.MEMORY, "memray_peak_bytes", "B", 415.0 * 2**20, (415.0 * 2**20,))
    accuracy = Measurement(ACCURACY, Kind.ACCURACY, "accuracy", "fraction", 0.8725, (1.0,) * 349 + (0.0,) * 51)
    session = SessionResults(
        results=(
            latency(BATCH1, 0.0139, 1.121, 1.094, 1.149, "regressed"),
            latency(DECODE, 0.0309, 0.996, 0.982, 1.011, "pass"),
            latency("tests/suite/test_latency.py::test_llama_batch1", 0.0512, 0.941, 0.921, 0.962, "improved"),
            TestResult(peak, Judgement(Verdict.PASS, "memory", 412.0 * 2**20, ratio=415.0 / 412.0)),
            TestResult(accuracy, Judgement(Verdict.PASS, "accuracy", 0.87)),
        ),
        hardware_id=MACHINES[0], commit="feedfacecafe", against=AGAINST,
    )
    path.write_text(json.dumps(session.to_json()), encoding="utf-8")
    return path


def page_figures(page: str) -> dict[str, Any]:
    """The plotly figures an HTML report hands its script, by the id of the element each is drawn in."""
    found = re.search(r'<script type="application/json" id="modelperf-data">(.*?)</script>', page, re.DOTALL)
    assert found is not None, "the page carries no figure data"
    figures: dict[str, Any] = json.loads(found[1])["figures"]
    return figures
